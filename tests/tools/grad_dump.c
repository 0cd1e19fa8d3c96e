/* grad_dump.c - the training loss and every parameter's gradient for one
 * fixed batch of a model, for tests/torch_grad.py to check against PyTorch.
 *   grad_dump MODEL.gguf B T OUT.bin
 * OUT.bin: int32 B, T; B*T int32 inputs; B*T int32 targets; float64 loss;
 * then per tensor: int32 name length, name, int32 count, count float32. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/model.h"
#include "train/trainer.h"

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) { fprintf(stderr, "usage: grad_dump MODEL.gguf B T OUT.bin [recompute]\n"); return 2; }
    sm_error err;
    sm_model *m;
    if (sm_model_load(argv[1], NULL, &m, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
    int B = atoi(argv[2]), T = atoi(argv[3]);
    sm_train_config c;
    sm_trainer *t;
    if (sm_train_config_of(m, &c, &err) || sm_trainer_new(&c, B, T, 0, argc == 6, &t, &err) ||
        sm_trainer_load_weights(t, m, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    int32_t *x = malloc(sizeof *x * B * T), *y = malloc(sizeof *y * B * T);
    uint64_t s = 12345;
    for (int i = 0; i < B * T; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (int32_t)((s >> 33) % (uint64_t)c.hp.n_vocab);
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        y[i] = (int32_t)((s >> 33) % (uint64_t)c.hp.n_vocab);
    }
    double loss = sm_trainer_step_grads(t, x, y, 1);
    FILE *f = fopen(argv[4], "wb");
    fwrite(&B, 4, 1, f);
    fwrite(&T, 4, 1, f);
    fwrite(x, 4, (size_t)B * T, f);
    fwrite(y, 4, (size_t)B * T, f);
    fwrite(&loss, 8, 1, f);
    for (int p = 0; p < t->n_params; p++) {
        const sm_param *pp = &t->params[p];
        int32_t len = (int32_t)strlen(pp->name), count = pp->rows * pp->cols;
        fwrite(&len, 4, 1, f);
        fwrite(pp->name, 1, (size_t)len, f);
        fwrite(&count, 4, 1, f);
        fwrite(t->g + pp->offset, 4, (size_t)count, f);
    }
    fclose(f);
    sm_trainer_free(t);
    sm_model_free(m);
    free(x);
    free(y);
    return 0;
}

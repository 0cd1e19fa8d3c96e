/* grad_dump.c - the training loss and every parameter's gradient for one
 * fixed batch of a model, for tests/torch_grad.py to check against PyTorch.
 *   grad_dump MODEL.gguf B T OUT.bin [recompute] [bf16] [lora=RANK] [alpha=A] [targets=q,v,...] [nocache]
 * bf16: mixed precision (the weight matrices' products on BF16 operands).
 * OUT.bin: int32 B, T; B*T int32 inputs; B*T int32 targets; float64 loss;
 * then per tensor: int32 name length, name, int32 count, count float32.
 * With lora=RANK the model is a frozen base (of any element type) and the
 * tensors are the adapters NAME.lora_a / NAME.lora_b, drawn at random (B
 * too, so that every gradient is non-zero); their records carry count more
 * float32 after the gradient: the adapter's values. nocache: no F32 copies
 * of the frozen matrices (their products dequantize rows as they go). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/model.h"
#include "train/trainer.h"

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: grad_dump MODEL.gguf B T OUT.bin [recompute] [bf16] [lora=RANK] [alpha=A] "
                        "[targets=LIST] [nocache]\n");
        return 2;
    }
    int recompute = 0, rank = 0, mixed = 0, nocache = 0;
    float alpha = 0;
    const char *targets = NULL;
    for (int i = 5; i < argc; i++) {
        if (!strcmp(argv[i], "recompute")) recompute = 1;
        else if (!strcmp(argv[i], "bf16")) mixed = 1;
        else if (!strncmp(argv[i], "lora=", 5)) rank = atoi(argv[i] + 5);
        else if (!strncmp(argv[i], "alpha=", 6)) alpha = (float)atof(argv[i] + 6);
        else if (!strncmp(argv[i], "targets=", 8)) targets = argv[i] + 8;
        else if (!strcmp(argv[i], "nocache")) nocache = 1;
        else { fprintf(stderr, "grad_dump: unknown option %s\n", argv[i]); return 2; }
    }
    sm_error err;
    sm_model *m;
    sm_model_params mp = sm_model_default_params();
    mp.skip_repack = 1;
    if (sm_model_load(argv[1], &mp, &m, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
    int B = atoi(argv[2]), T = atoi(argv[3]);
    sm_train_config c;
    sm_trainer *t;
    if (sm_train_config_of(m, &c, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
    c.bf16_products = mixed;
    if (rank) {
        c.base = m;
        c.lora_rank = rank;
        c.lora_alpha = alpha;
        if (nocache) c.lora_cache_bytes = 0;
        if (!(c.lora_roles = sm_lora_roles_parse(targets, &err))) { fprintf(stderr, "%s\n", err.message); return 1; }
    }
    if (sm_trainer_new(&c, B, T, 0, recompute, &t, &err) || (!rank && sm_trainer_load_weights(t, m, &err))) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    uint64_t s = 12345;
    if (rank)   /* adapters of a size that changes the logits noticeably */
        for (size_t i = 0; i < t->n_floats; i++) t->w[i] = ((float)(lcg(&s) % 2001) / 1000.0f - 1.0f) * 0.3f;
    int32_t *x = malloc(sizeof *x * B * T), *y = malloc(sizeof *y * B * T);
    for (int i = 0; i < B * T; i++) {
        x[i] = (int32_t)(lcg(&s) % (uint64_t)c.hp.n_vocab);
        y[i] = (int32_t)(lcg(&s) % (uint64_t)c.hp.n_vocab);
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
        if (pp->lora) fwrite(t->w + pp->offset, 4, (size_t)count, f);
    }
    fclose(f);
    sm_trainer_free(t);
    sm_model_free(m);
    free(x);
    free(y);
    return 0;
}

/* dump_logits.c - writes a model's logits for a token sequence, computed
 * two ways: the whole prompt in one evaluation, and token by token through
 * the KV cache. Used by tests/parity_test.sh against the PyTorch reference.
 *   dump_logits MODEL TOKENS_CSV PROMPT_OUT DECODE_OUT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "smallmind.h"

static int write_floats(const char *path, const float *v, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(v, sizeof *v, n, f) == n;
    return fclose(f) == 0 && ok;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: dump_logits MODEL TOKENS_CSV PROMPT_OUT DECODE_OUT\n");
        return 2;
    }
    sm_token toks[4096];
    size_t n = 0;
    for (char *p = argv[2]; *p && n < 4096;) {
        toks[n++] = (sm_token)strtol(p, &p, 10);
        if (*p == ',') p++;
    }
    sm_error err;
    sm_model *m;
    if (sm_model_load(argv[1], NULL, &m, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
    sm_model_info info;
    sm_model_get_info(m, &info);
    size_t V = (size_t)info.n_vocab;
    float *all = malloc(n * V * sizeof *all), *dec = malloc(n * V * sizeof *dec);
    sm_session_params sp = sm_session_default_params();
    sp.n_ctx = (int)n;
    /* SM_KERNELS (read by the library) and SM_THREADS choose how it runs */
    if (getenv("SM_THREADS")) sp.n_threads = atoi(getenv("SM_THREADS"));
    /* SM_KV=f16, bf16 or q8_0: the KV cache's keys and values in that type */
    const char *kv = getenv("SM_KV");
    if (kv && !strcmp(kv, "f16")) sp.type_k = sp.type_v = SM_KV_F16;
    if (kv && !strcmp(kv, "bf16")) sp.type_k = sp.type_v = SM_KV_BF16;
    if (kv && !strcmp(kv, "q8_0")) sp.type_k = sp.type_v = SM_KV_Q8_0;
    sm_session *a, *b;
    if (sm_session_create(m, &sp, &a, &err) || sm_session_create(m, &sp, &b, &err) ||
        sm_session_eval_all(a, toks, n, all, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (sm_session_eval(b, &toks[i], 1, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
        memcpy(dec + i * V, sm_session_logits(b), V * sizeof *dec);
    }
    int ok = write_floats(argv[3], all, n * V) && write_floats(argv[4], dec, n * V);
    sm_session_free(a);
    sm_session_free(b);
    sm_model_free(m);
    free(all);
    free(dec);
    return ok ? 0 : 1;
}

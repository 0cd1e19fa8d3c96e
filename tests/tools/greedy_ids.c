/* greedy_ids.c - prints a model's greedy continuation of a token sequence as
 * comma-separated ids: evaluates the sequence, then N times appends the argmax of
 * the logits (the lowest id on ties) through the KV cache. Used by
 * tests/arch_test.sh against llama.cpp's continuations (tests/refs/arch).
 *   greedy_ids MODEL TOKENS_CSV N */
#include <stdio.h>
#include <stdlib.h>
#include "smallmind.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: greedy_ids MODEL TOKENS_CSV N\n");
        return 2;
    }
    sm_token toks[4096];
    size_t n = 0;
    for (char *p = argv[2]; *p && n < 4096;) {
        toks[n++] = (sm_token)strtol(p, &p, 10);
        if (*p == ',') p++;
    }
    int n_gen = atoi(argv[3]);
    if (n == 0 || n_gen < 1 || n + (size_t)n_gen > 4096) {
        fprintf(stderr, "greedy_ids: need 1 to 4096 tokens in all\n");
        return 2;
    }
    sm_error err;
    sm_model *m;
    if (sm_model_load(argv[1], NULL, &m, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
    sm_model_info info;
    sm_model_get_info(m, &info);
    sm_session_params sp = sm_session_default_params();
    sp.n_ctx = (int)n + n_gen;
    if (getenv("SM_THREADS")) sp.n_threads = atoi(getenv("SM_THREADS"));
    sm_session *s;
    if (sm_session_create(m, &sp, &s, &err) || sm_session_eval(s, toks, n, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    for (int k = 0; k < n_gen; k++) {
        const float *l = sm_session_logits(s);
        sm_token best = 0;
        for (int i = 1; i < info.n_vocab; i++)
            if (l[i] > l[best]) best = i;
        printf("%s%d", k ? "," : "", (int)best);
        if (k + 1 < n_gen && sm_session_eval(s, &best, 1, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
    }
    printf("\n");
    sm_session_free(s);
    sm_model_free(m);
    return 0;
}

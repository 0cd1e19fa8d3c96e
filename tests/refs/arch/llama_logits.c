/* llama_logits.c - records llama.cpp's outputs for SmallMind's reference files.
 * Written against llama.cpp's public header llama.h (c392e509) and compiled outside
 * the checkout by tests/refs/arch/make_refs.sh; SmallMind itself never links llama.cpp.
 *
 *   llama_logits MODEL TOKENS_CSV LOGITS_OUT GREEDY_OUT [N_GREEDY]
 *
 * Loads MODEL with an F32 KV cache (type_k = type_v = F32, no flash attention),
 * evaluates the token sequence in one batch with logits requested at every position
 * (teacher forcing), writes them to LOGITS_OUT as raw little-endian float32
 * (n_tokens x n_vocab), then continues greedily (argmax, lowest id on ties) for N_GREEDY
 * tokens (default 32), one token per decode through the KV cache, and writes the
 * generated ids to GREEDY_OUT, comma-separated. Threads: $LLAMA_THREADS (default 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

int main(int argc, char **argv) {
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: llama_logits MODEL TOKENS_CSV LOGITS_OUT GREEDY_OUT [N_GREEDY]\n");
        return 2;
    }
    int n_greedy = argc == 6 ? atoi(argv[5]) : 32;
    llama_token toks[4096];
    int n = 0;
    for (char *p = argv[2]; *p && n < 4096;) {
        toks[n++] = (llama_token)strtol(p, &p, 10);
        if (*p == ',') p++;
    }
    int threads = getenv("LLAMA_THREADS") ? atoi(getenv("LLAMA_THREADS")) : 1;

    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "llama_logits: cannot load %s\n", argv[1]); return 1; }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int n_vocab = llama_vocab_n_tokens(vocab);

    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(n + n_greedy);
    cp.n_batch = cp.n_ubatch = (uint32_t)n;
    cp.n_threads = cp.n_threads_batch = threads;
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
    cp.flash_attn = false;
    cp.no_perf = true;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "llama_logits: cannot create a context\n"); return 1; }

    struct llama_batch batch = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; i++) {
        batch.token[i] = toks[i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = n;
    if (llama_decode(ctx, batch)) { fprintf(stderr, "llama_logits: decode failed\n"); return 1; }
    FILE *f = fopen(argv[3], "wb");
    if (!f) { fprintf(stderr, "llama_logits: cannot write %s\n", argv[3]); return 1; }
    for (int i = 0; i < n; i++) fwrite(llama_get_logits_ith(ctx, i), sizeof(float), (size_t)n_vocab, f);
    if (fclose(f)) return 1;

    FILE *g = fopen(argv[4], "w");
    if (!g) { fprintf(stderr, "llama_logits: cannot write %s\n", argv[4]); return 1; }
    llama_token next = argmax(llama_get_logits_ith(ctx, n - 1), n_vocab);
    for (int k = 0; k < n_greedy; k++) {
        fprintf(g, "%s%d", k ? "," : "", next);
        if (k + 1 == n_greedy) break;
        batch.token[0] = next;
        batch.pos[0] = n + k;
        batch.n_seq_id[0] = 1;
        batch.seq_id[0][0] = 0;
        batch.logits[0] = 1;
        batch.n_tokens = 1;
        if (llama_decode(ctx, batch)) { fprintf(stderr, "llama_logits: decode failed\n"); return 1; }
        next = argmax(llama_get_logits_ith(ctx, 0), n_vocab);
    }
    fputc('\n', g);
    if (fclose(g)) return 1;
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}

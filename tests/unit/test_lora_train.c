/* test_lora_train.c - LoRA training's F32 copies of a quantized frozen base
 * (sm_train_config.lora_cache_bytes): with the default budget every matrix
 * is dequantized once at trainer creation, with a budget of 0 none is (each
 * product dequantizes it again, the path that was there first), with a
 * budget for the head alone only the head is. The loss and every adapter
 * gradient must be the same bits on all three, for Q8_0, Q4_0 and Q4_K
 * bases of both architectures (and one whose rows no block divides, which
 * quantizing leaves in a wider type), and on 1 and 2 threads. */
#include "test.h"
#include "model/model.h"
#include "train/trainer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define B 2
#define T 16

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* One step's loss and gradients (copied into *g) on a trainer with the given cache budget. */
static int grads(const sm_model *m, uint64_t budget, int threads, float *loss, float **g, size_t *n, size_t *cached) {
    sm_train_config c;
    sm_error err;
    if (sm_train_config_of(m, &c, &err)) return 0;
    c.base = m;
    c.lora_rank = 4;
    c.lora_alpha = 8;
    c.lora_roles = sm_lora_roles_parse(NULL, &err);
    c.lora_cache_bytes = budget;
    sm_trainer *t;
    if (sm_trainer_new(&c, B, T, threads, 0, &t, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 0;
    }
    uint64_t s = 7;
    for (size_t i = 0; i < t->n_floats; i++) t->w[i] = ((float)(lcg(&s) % 2001) / 1000.0f - 1.0f) * 0.3f;
    int32_t x[B * T], y[B * T];
    for (int i = 0; i < B * T; i++) {
        x[i] = (int32_t)(lcg(&s) % (uint64_t)c.hp.n_vocab);
        y[i] = (int32_t)(lcg(&s) % (uint64_t)c.hp.n_vocab);
    }
    *loss = sm_trainer_step_grads(t, x, y, 1);
    *n = t->n_floats;
    *cached = t->frozen_f32_floats;
    *g = malloc(*n * sizeof(float));
    if (*g) memcpy(*g, t->g, *n * sizeof(float));
    sm_trainer_free(t);
    return *g != NULL;
}

static void check_base(const char *arch, int dim, int ffn, int tied, const char *type) {
    char f32[64], q[64];
    snprintf(f32, sizeof f32, "/tmp/sm_lora_train_%d_f32.gguf", (int)getpid());
    snprintf(q, sizeof q, "/tmp/sm_lora_train_%d_q.gguf", (int)getpid());
    sm_init_params ip = sm_init_default_params();
    ip.arch = arch;
    ip.dim = dim;
    ip.n_layers = 2;
    ip.n_heads = 4;
    ip.n_kv_heads = strcmp(arch, "llama") ? 4 : 2;
    ip.ffn_dim = ffn;
    ip.n_ctx = 32;
    ip.n_vocab = 300;
    ip.tied = tied;
    ip.init_std = 0.2f;
    ip.seed = 5;
    sm_error err;
    int ok = sm_model_init_file(&ip, f32, &err) == SM_OK && sm_model_quantize_file(f32, q, type, NULL, NULL, &err) == SM_OK;
    unlink(f32);
    CHECKF(ok, "%s %s: %s", arch, type, err.message);
    if (!ok) return;
    sm_model_params mp = sm_model_default_params();
    mp.skip_repack = 1;
    sm_model *m = NULL;
    ok = sm_model_load(q, &mp, &m, &err) == SM_OK;
    unlink(q);
    CHECKF(ok, "%s %s: %s", arch, type, err.message);
    if (!ok) return;
    /* the head's copies (rows, and the transpose where the level has no
     * strided product), and nothing more: the head is taken first */
    int copies = (m->output.type == SM_GGML_F32 ? 0 : 1) + (sm_kernels_get(NULL)->gemm ? 0 : 1);
    uint64_t head_only = 4ull * copies * (((uint64_t)m->output.rows * m->output.cols + 15) & ~15ull);
    const uint64_t budgets[3] = {SM_TRAIN_LORA_CACHE_DEFAULT, 0, head_only};
    float loss[3][2], *g[3][2] = {{NULL}};
    size_t n[3][2], cached[3][2];
    for (int b = 0; b < 3; b++)
        for (int th = 0; th < 2; th++)
            CHECK(grads(m, budgets[b], th + 1, &loss[b][th], &g[b][th], &n[b][th], &cached[b][th]));
    if (!test_failed_now()) {
        CHECKF((copies ? cached[0][0] > cached[2][0] : cached[0][0] == 0) && cached[2][0] == head_only / 4 &&
                   cached[1][0] == 0,
               "%s %s: cached floats %zu, %zu, %zu", arch, type, cached[0][0], cached[1][0], cached[2][0]);
        for (int b = 0; b < 3; b++)
            for (int th = 0; th < 2; th++) {
                CHECKF(loss[b][th] == loss[0][0] && n[b][th] == n[0][0] &&
                           !memcmp(g[b][th], g[0][0], n[0][0] * sizeof(float)),
                       "%s %s: budget %d, %d threads: the loss %g (against %g) or the gradients differ", arch, type,
                       b, th + 1, loss[b][th], loss[0][0]);
            }
        double sq = 0;   /* the gradients are not all zero */
        for (size_t i = 0; i < n[0][0]; i++) sq += (double)g[0][0][i] * g[0][0][i];
        CHECK(sq > 0);
    }
    for (int b = 0; b < 3; b++)
        for (int th = 0; th < 2; th++) free(g[b][th]);
    sm_model_free(m);
}

TEST(lora_train_cached_base_same_bits) {
    check_base("llama", 64, 96, 0, "Q8_0");
    check_base("llama", 64, 96, 1, "Q4_0");
    check_base("llama", 48, 70, 1, "Q8_0");   /* rows no block divides: another type, or F32 read in place */
    check_base("llama", 256, 256, 0, "Q4_K");
    check_base("gpt2", 64, 96, 0, "Q8_0");
}

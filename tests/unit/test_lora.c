/* test_lora.c - LoRA adapters at run time and merged: a session with
 * adapters gives the logits of a model whose weights the test itself merged
 * (W + scale * alpha / rank * B A, computed here in double, written as a new
 * GGUF file), through the batch and the one-token paths; merge-lora's file
 * gives them too; nothing is allocated per token; bad adapter files and
 * misuse get clear errors. */
#include "test.h"
#include "io/gguf.h"
#include "io/gguf_write.h"
#include "core/mapfile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIM 64
#define FFN 96
#define VOCAB 300

static char dir[64];

static const char *tmp(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* A random llama base, F32, with llama.cpp's names. */
static int make_base(const char *path) {
    sm_init_params ip = sm_init_default_params();
    ip.arch = "llama";
    ip.dim = DIM;
    ip.n_layers = 2;
    ip.n_heads = 4;
    ip.n_kv_heads = 2;
    ip.ffn_dim = FFN;
    ip.n_ctx = 64;
    ip.n_vocab = VOCAB;
    ip.init_std = 0.2f;
    ip.seed = 11;
    sm_error err;
    if (sm_model_init_file(&ip, path, &err) != SM_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 0;
    }
    return 1;
}

typedef struct pair {
    const char *name;
    int rows, cols, rank;
    float *a, *b;   /* rank x cols, rows x rank */
} pair;

static float rnd(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return ((float)(*s >> 40) / 16777216.0f - 0.5f) * 0.4f;
}

static void fill_pair(pair *p, uint64_t seed) {
    p->a = malloc(sizeof(float) * p->rank * p->cols);
    p->b = malloc(sizeof(float) * p->rows * p->rank);
    for (int i = 0; i < p->rank * p->cols; i++) p->a[i] = rnd(&seed);
    for (int i = 0; i < p->rows * p->rank; i++) p->b[i] = rnd(&seed);
}

/* Writes an adapter: alpha < 0 leaves adapter.lora.alpha out. */
static int write_adapter(const char *path, pair *ps, int n, float alpha, const char *arch, const char *type) {
    sm_gguf_writer *w = sm_gguf_writer_new();
    sm_gguf_put_str(w, "general.architecture", arch);
    if (type) sm_gguf_put_str(w, "general.type", type);
    sm_gguf_put_str(w, "adapter.type", "lora");
    if (alpha >= 0) sm_gguf_put_f32(w, "adapter.lora.alpha", alpha);
    char names[16][2][96];
    for (int i = 0; i < n; i++) {
        snprintf(names[i][0], 96, "%s.lora_a", ps[i].name);
        snprintf(names[i][1], 96, "%s.lora_b", ps[i].name);
        uint64_t ne_a[2] = {(uint64_t)ps[i].cols, (uint64_t)ps[i].rank}, ne_b[2] = {(uint64_t)ps[i].rank, (uint64_t)ps[i].rows};
        if (ps[i].a) sm_gguf_add_tensor(w, names[i][0], 0, 2, ne_a, ps[i].a, sizeof(float) * ps[i].rank * ps[i].cols);
        if (ps[i].b) sm_gguf_add_tensor(w, names[i][1], 0, 2, ne_b, ps[i].b, sizeof(float) * ps[i].rank * ps[i].rows);
    }
    sm_error err;
    int ok = sm_gguf_writer_save(w, path, &err) == SM_OK;
    sm_gguf_writer_free(w);
    return ok;
}

/* The base with the adapters merged by this test, in double: W += s B A. */
static int write_merged(const char *base, const char *out, pair *const *sets, const int *counts, const float *scales,
                        int n_sets) {
    sm_mapped_file f;
    sm_gguf g;
    if (sm_map_file(base, &f, NULL) || sm_gguf_parse(f.data, f.size, &g, NULL)) return 0;
    sm_gguf_writer *w = sm_gguf_writer_new();
    for (uint64_t i = 0; i < g.n_kv; i++) sm_gguf_put_copy(w, &g.kv[i]);
    float *bufs[64] = {0};
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const sm_gguf_tensor *t = &g.tensors[i];
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        const void *data = t->data;
        for (int s = 0; s < n_sets; s++)
            for (int k = 0; k < counts[s]; k++) {
                const pair *p = &sets[s][k];
                if (strcmp(p->name, name)) continue;
                if (!bufs[i]) {
                    bufs[i] = malloc(t->n_bytes);
                    memcpy(bufs[i], t->data, t->n_bytes);
                }
                for (int r = 0; r < p->rows; r++)
                    for (int c = 0; c < p->cols; c++) {
                        double d = 0;
                        for (int j = 0; j < p->rank; j++) d += (double)p->b[r * p->rank + j] * p->a[j * p->cols + c];
                        bufs[i][r * p->cols + c] = (float)(bufs[i][r * p->cols + c] + scales[s] * d);
                    }
                data = bufs[i];
            }
        sm_gguf_add_tensor(w, name, t->type, (int)t->n_dims, t->ne, data, t->n_bytes);
    }
    int ok = sm_gguf_writer_save(w, out, NULL) == SM_OK;
    sm_gguf_writer_free(w);
    for (int i = 0; i < 64; i++) free(bufs[i]);
    sm_gguf_free(&g);
    sm_unmap_file(&f);
    return ok;
}

/* Logits of every position, whole batch or token by token. */
static float *logits_of(sm_session *s, const sm_token *toks, int n, int one_by_one) {
    float *out = malloc(sizeof(float) * n * VOCAB);
    sm_session_reset(s);
    if (!one_by_one) {
        if (sm_session_eval_all(s, toks, (size_t)n, out, NULL)) { free(out); return NULL; }
        return out;
    }
    for (int i = 0; i < n; i++) {
        if (sm_session_eval(s, toks + i, 1, NULL)) { free(out); return NULL; }
        memcpy(out + (size_t)i * VOCAB, sm_session_logits(s), sizeof(float) * VOCAB);
    }
    return out;
}

/* (written with branches: Debian's gcc 12 for AArch64 crashes vectorizing
 * the fmax reduction) */
static double rel_diff(const float *a, const float *b, int n) {
    double d = 0, m = 0;
    for (int i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]), r = fabs((double)b[i]);
        if (e > d) d = e;
        if (r > m) m = r;
    }
    return d / m;
}

/* The base and the adapters the tests share, made once. */
static pair p1[5] = {{"blk.0.attn_q.weight", DIM, DIM, 4, 0, 0},   {"blk.0.attn_v.weight", 32, DIM, 4, 0, 0},
                     {"blk.1.ffn_down.weight", DIM, FFN, 4, 0, 0}, {"blk.1.ffn_gate.weight", FFN, DIM, 4, 0, 0},
                     {"output.weight", VOCAB, DIM, 4, 0, 0}};
static pair p2[2] = {{"blk.0.attn_q.weight", DIM, DIM, 2, 0, 0}, {"blk.1.attn_output.weight", DIM, DIM, 2, 0, 0}};

static int setup(void) {
    if (dir[0]) return 1;
    snprintf(dir, sizeof dir, "/tmp/sm-lora-XXXXXX");
    if (!mkdtemp(dir) || !make_base(tmp("base.gguf"))) return 0;
    for (int i = 0; i < 5; i++) fill_pair(&p1[i], 100 + i);
    for (int i = 0; i < 2; i++) fill_pair(&p2[i], 200 + i);
    return write_adapter(tmp("a1.gguf"), p1, 5, 8.0f, "llama", "adapter") &&
           write_adapter(tmp("a2.gguf"), p2, 2, -1.0f, "llama", "adapter");
}

TEST(lora_session_equals_merged_weights) {
    REQUIRE(setup());
    /* adapter 1 (p1): alpha 8, rank 4, on q, v, gate, down and the output head */
    /* adapter 2: no alpha (scale alone), rank 2, on q of layer 0 again and o of layer 1 */
    /* scales: adapter 1 at 0.7 (0.7 * 8 / 4), adapter 2 at -1.5 (no alpha) */
    pair *sets[2] = {p1, p2};
    int counts[2] = {5, 2};
    float scales[2] = {0.7f * 8.0f / 4.0f, -1.5f};
    REQUIRE(write_merged(tmp("base.gguf"), tmp("merged.gguf"), sets, counts, scales, 2));

    sm_model *base = NULL, *merged = NULL;
    sm_error err;
    REQUIRE(sm_model_load(tmp("base.gguf"), NULL, &base, &err) == SM_OK);
    REQUIRE(sm_model_load(tmp("merged.gguf"), NULL, &merged, &err) == SM_OK);
    sm_adapter *a1 = NULL, *a2 = NULL;
    REQUIRE(sm_adapter_load(base, tmp("a1.gguf"), &a1, &err) == SM_OK);
    REQUIRE(sm_adapter_load(base, tmp("a2.gguf"), &a2, &err) == SM_OK);
    sm_adapter_info info;
    sm_adapter_get_info(a1, &info);
    CHECK(info.n_matrices == 5 && info.max_rank == 4 && info.alpha == 8.0f);
    sm_token toks[40];
    for (int i = 0; i < 40; i++) toks[i] = (sm_token)((i * 37 + 5) % VOCAB);
    for (int threads = 1; threads <= 2; threads++) {
        sm_session_params sp = sm_session_default_params();
        sp.n_threads = threads;
        sm_session *s = NULL, *sm = NULL;
        REQUIRE(sm_session_create(base, &sp, &s, &err) == SM_OK);
        REQUIRE(sm_session_create(merged, &sp, &sm, &err) == SM_OK);
        float *plain = logits_of(s, toks, 40, 0);
        REQUIRE(sm_session_set_adapter(s, a1, 0.7f, &err) == SM_OK);
        REQUIRE(sm_session_set_adapter(s, a2, -1.5f, &err) == SM_OK);
        float *ref = logits_of(sm, toks, 40, 0);
        for (int one = 0; one <= 1; one++) {
            float *got = logits_of(s, toks, 40, one);
            REQUIRE(got && ref && plain);
            double d = rel_diff(got, ref, 40 * VOCAB);
            CHECKF(d < 1e-4, "%d threads, %s: adapters vs merged weights: %.2e", threads, one ? "decode" : "batch", d);
            CHECKF(rel_diff(plain, ref, 40 * VOCAB) > 1e-2, "the adapters change nothing");
            free(got);
        }
        /* scale 0 removes an adapter; clearing removes all */
        REQUIRE(sm_session_set_adapter(s, a2, 0.0f, &err) == SM_OK);
        REQUIRE(sm_session_set_adapter(s, a1, 0.0f, &err) == SM_OK);
        float *again = logits_of(s, toks, 40, 0);
        CHECK(again && memcmp(again, plain, sizeof(float) * 40 * VOCAB) == 0);
        free(again);
        free(plain);
        free(ref);
        sm_session_free(s);
        sm_session_free(sm);
    }
    /* merge-lora's file: the same logits as the test's merge */
    const char *paths[2] = {tmp("a1.gguf"), tmp("a2.gguf")};
    float sc[2] = {0.7f, -1.5f};
    REQUIRE(sm_model_merge_lora_file(tmp("base.gguf"), paths, sc, 2, tmp("mine.gguf"), NULL, &err) == SM_OK);
    sm_model *mine = NULL;
    REQUIRE(sm_model_load(tmp("mine.gguf"), NULL, &mine, &err) == SM_OK);
    sm_session *s1 = NULL, *s2 = NULL;
    REQUIRE(sm_session_create(mine, NULL, &s1, &err) == SM_OK && sm_session_create(merged, NULL, &s2, &err) == SM_OK);
    float *l1 = logits_of(s1, toks, 40, 0), *l2 = logits_of(s2, toks, 40, 0);
    double d = rel_diff(l1, l2, 40 * VOCAB);
    CHECKF(d < 1e-5, "merge-lora vs the test's merge: %.2e", d);
    free(l1);
    free(l2);
    sm_session_free(s1);
    sm_session_free(s2);
    sm_model_free(mine);
    sm_adapter_free(a1);
    sm_adapter_free(a2);
    sm_model_free(merged);
    sm_model_free(base);
}

typedef struct counted {
    int n;
    unsigned long first, last;
} counted;

static int count_allocs(void *user, sm_token tok, const char *text, size_t len) {
    (void)text, (void)len;
    counted *c = user;
    if (tok >= 0) {
        if (c->n == 0) c->first = alloc_calls();
        c->last = alloc_calls();
        c->n++;
    }
    return 0;
}

TEST(lora_no_allocations_per_token) {
    REQUIRE(setup());
    sm_model *m = NULL;
    sm_adapter *a = NULL;
    REQUIRE(sm_model_load(tmp("base.gguf"), NULL, &m, NULL) == SM_OK);
    REQUIRE(sm_adapter_load(m, tmp("a1.gguf"), &a, NULL) == SM_OK);
    sm_session *s = NULL;
    REQUIRE(sm_session_create(m, NULL, &s, NULL) == SM_OK);
    REQUIRE(sm_session_set_adapter(s, a, 1.0f, NULL) == SM_OK);
    sm_generate_params gp = sm_generate_default_params();
    gp.n_predict = 30;
    gp.ignore_eos = 1;
    gp.sampler.temperature = 0;
    counted c = {0};
    REQUIRE(sm_generate(s, "abc", &gp, count_allocs, &c, NULL, NULL) == SM_OK);
    CHECKF(c.n == 30 && c.last == c.first, "%lu allocations over %d tokens", c.last - c.first, c.n);
    sm_session_free(s);
    sm_adapter_free(a);
    sm_model_free(m);
}

/* Loads path against base; the status, with the message checked for `want`. */
static sm_status load_err(sm_model *base, const char *path, const char *want) {
    sm_adapter *a = NULL;
    sm_error err = {0};
    sm_status st = sm_adapter_load(base, path, &a, &err);
    if (st == SM_OK) sm_adapter_free(a);
    else CHECKF(strstr(err.message, want) != NULL, "'%s' lacks '%s'", err.message, want);
    return st;
}

TEST(lora_bad_adapters) {
    REQUIRE(setup());
    sm_model *m = NULL;
    REQUIRE(sm_model_load(tmp("base.gguf"), NULL, &m, NULL) == SM_OK);
    pair ok = {"blk.0.attn_q.weight", DIM, DIM, 2, 0, 0};
    fill_pair(&ok, 9);
    REQUIRE(write_adapter(tmp("x.gguf"), &ok, 1, 2.0f, "llama", NULL));
    CHECK(load_err(m, tmp("x.gguf"), "general.type") == SM_ERR_FORMAT);
    REQUIRE(write_adapter(tmp("x.gguf"), &ok, 1, 2.0f, "gpt2", "adapter"));
    CHECK(load_err(m, tmp("x.gguf"), "not for a llama model") == SM_ERR_INVALID_ARG);
    pair half = ok;
    half.b = NULL;
    REQUIRE(write_adapter(tmp("x.gguf"), &half, 1, 2.0f, "llama", "adapter"));
    CHECK(load_err(m, tmp("x.gguf"), "missing its lora_b") == SM_ERR_FORMAT);
    pair wide = ok;
    wide.rows = DIM + 1;
    wide.b = calloc((size_t)wide.rows * wide.rank, sizeof(float));
    REQUIRE(write_adapter(tmp("x.gguf"), &wide, 1, 2.0f, "llama", "adapter"));
    CHECK(load_err(m, tmp("x.gguf"), "shapes") == SM_ERR_FORMAT);
    free(wide.b);
    pair none = ok;
    none.name = "blk.7.attn_q.weight";
    REQUIRE(write_adapter(tmp("x.gguf"), &none, 1, 2.0f, "llama", "adapter"));
    CHECK(load_err(m, tmp("x.gguf"), "does not exist in the base") == SM_ERR_FORMAT);
    pair embd = {"token_embd.weight", VOCAB, DIM, 2, 0, 0};
    fill_pair(&embd, 3);
    REQUIRE(write_adapter(tmp("x.gguf"), &embd, 1, 2.0f, "llama", "adapter"));
    CHECK(load_err(m, tmp("x.gguf"), "embeddings") == SM_ERR_UNSUPPORTED);
    free(embd.a), free(embd.b);
    CHECK(load_err(m, tmp("base.gguf"), "general.type") == SM_ERR_FORMAT);
    CHECK(load_err(m, tmp("nonexistent.gguf"), "nonexistent") == SM_ERR_IO);
    /* a session planned for a smaller rank, another model's session */
    REQUIRE(write_adapter(tmp("x.gguf"), &ok, 1, 2.0f, "llama", "adapter"));
    sm_adapter *a = NULL;
    REQUIRE(sm_adapter_load(m, tmp("x.gguf"), &a, NULL) == SM_OK);
    sm_session_params sp = sm_session_default_params();
    sp.lora_rank_max = 1;
    sm_session *s = NULL;
    sm_error err;
    REQUIRE(sm_session_create(m, &sp, &s, NULL) == SM_OK);
    CHECK(sm_session_set_adapter(s, a, 1.0f, &err) == SM_ERR_INVALID_ARG && strstr(err.message, "rank"));
    sm_session_free(s);
    sm_model *other = NULL;
    REQUIRE(sm_model_load(tmp("base.gguf"), NULL, &other, NULL) == SM_OK);
    REQUIRE(sm_session_create(other, NULL, &s, NULL) == SM_OK);
    CHECK(sm_session_set_adapter(s, a, 1.0f, &err) == SM_ERR_INVALID_ARG && strstr(err.message, "another model"));
    sm_session_free(s);
    sm_model_free(other);
    sm_adapter_free(a);
    free(ok.a), free(ok.b);
    sm_model_free(m);
}

/* init.c - writes a randomly initialised model of any shape, for either
 * architecture, with the metadata keys and tensor names llama.cpp uses. */
#include "model.h"
#include "core/alloc.h"
#include "core/error.h"
#include "io/gguf_write.h"
#include "core/rng.h"
#include "kernels/half.h"
#include "text/bpe.h"
#include "text/unicode.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

sm_init_params sm_init_default_params(void) {
    sm_init_params p;
    memset(&p, 0, sizeof p);
    p.arch = "llama";
    p.dim = 288;
    p.n_layers = 6;
    p.n_heads = 6;
    p.ffn_dim = 768;
    p.n_ctx = 256;
    p.n_vocab = 512;
    p.seed = 42;
    p.init_std = 0.02f;
    return p;
}

/* Every tensor's memory, freed after the file is written. */
typedef struct owned {
    void **p;
    int n, cap;
    int oom;
} owned;

static void *own(owned *o, size_t bytes) {
    if (o->n == o->cap) {
        int cap = o->cap ? o->cap * 2 : 64;
        void **p = sm_alloc((size_t)cap * sizeof *p);
        if (!p) { o->oom = 1; return NULL; }
        if (o->n) memcpy(p, o->p, (size_t)o->n * sizeof *p);
        sm_free(o->p);
        o->p = p;
        o->cap = cap;
    }
    void *m = sm_alloc(bytes ? bytes : 1);
    if (!m) { o->oom = 1; return NULL; }
    o->p[o->n++] = m;
    return m;
}

typedef struct builder {
    sm_gguf_writer *w;
    owned mem;
    uint64_t r;
    const sm_init_params *p;
} builder;

/* A weight matrix of rows x cols (GGUF shape [cols, rows]); returns its
 * data (NULL when out of memory). */
static const void *matrix(builder *b, const char *name, int cols, int rows, float std) {
    size_t n = (size_t)cols * rows;
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    if (b->p->f16) {
        uint16_t *d = own(&b->mem, n * 2);
        if (!d) return NULL;
        for (size_t i = 0; i < n; i++) d[i] = sm_fp32_to_fp16(sm_rng_normal(&b->r) * std);
        sm_gguf_add_tensor(b->w, name, SM_GGML_F16, 2, ne, d, n * 2);
        return d;
    }
    float *d = own(&b->mem, n * 4);
    if (!d) return NULL;
    for (size_t i = 0; i < n; i++) d[i] = sm_rng_normal(&b->r) * std;
    sm_gguf_add_tensor(b->w, name, SM_GGML_F32, 2, ne, d, n * 4);
    return d;
}

/* A vector that starts at `base` (1 for norm weights, 0 for biases), or
 * random around it with random_norms. */
static void vector(builder *b, const char *name, int n, float base) {
    float *d = own(&b->mem, (size_t)n * 4);
    if (!d) return;
    for (int i = 0; i < n; i++) d[i] = base + (b->p->random_norms ? 0.3f * sm_rng_normal(&b->r) : 0.0f);
    uint64_t ne[1] = {(uint64_t)n};
    sm_gguf_add_tensor(b->w, name, SM_GGML_F32, 1, ne, d, (size_t)n * 4);
}

/* The built-in vocabularies: every byte, the printable ASCII characters
 * and, for the rest of the requested size, placeholder tokens. */
static sm_status builtin_vocab(builder *b, int gpt2, int n_vocab, sm_error *err) {
    const char **tok = own(&b->mem, (size_t)n_vocab * sizeof *tok);
    float *score = own(&b->mem, (size_t)n_vocab * 4);
    int32_t *type = own(&b->mem, (size_t)n_vocab * 4);
    char *text = own(&b->mem, (size_t)n_vocab * 24);
    if (!tok || !score || !type || !text) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    int n = 0;
    char *t = text;
#define ADD(str, ty, sc) do { tok[n] = t; t += snprintf(t, 24, "%s", str) + 1; type[n] = (ty); score[n] = (sc); n++; } while (0)
    if (gpt2) {
        for (int x = 0; x < 256 && n < n_vocab; x++) {
            char u[8] = {0};
            sm_cp_to_utf8(sm_bpe_byte_to_cp((unsigned char)x), u);
            ADD(u, 1, 0.0f);
        }
        if (n < n_vocab) ADD("<|endoftext|>", 3, 0.0f);
    } else {
        ADD("<unk>", 2, 0.0f);
        ADD("<s>", 3, 0.0f);
        ADD("</s>", 3, 0.0f);
        for (int x = 0; x < 256 && n < n_vocab; x++) {
            char h[8];
            snprintf(h, sizeof h, "<0x%02X>", x);
            ADD(h, 6, 0.0f);
        }
        for (int c = 32; c < 127 && n < n_vocab; c++) {
            char s[4] = {(char)c, 0};
            ADD(c == ' ' ? "\xe2\x96\x81" : s, 1, -(float)(c - 31));
        }
    }
    while (n < n_vocab) {
        char s[24];
        snprintf(s, sizeof s, "<extra_%d>", n);
        ADD(s, 1, -1000.0f - (float)n);
    }
#undef ADD
    sm_gguf_put_str(b->w, "tokenizer.ggml.model", gpt2 ? "gpt2" : "llama");
    if (gpt2) sm_gguf_put_str(b->w, "tokenizer.ggml.pre", "gpt-2");
    sm_gguf_put_str_array(b->w, "tokenizer.ggml.tokens", tok, (size_t)n);
    sm_gguf_put_f32_array(b->w, "tokenizer.ggml.scores", score, (size_t)n);
    sm_gguf_put_i32_array(b->w, "tokenizer.ggml.token_type", type, (size_t)n);
    if (gpt2) {
        sm_gguf_put_str_array(b->w, "tokenizer.ggml.merges", NULL, 0);
        if (n_vocab > 256) {  /* 256 tokens hold the bytes only: no end-of-text token */
            sm_gguf_put_u32(b->w, "tokenizer.ggml.bos_token_id", 256);
            sm_gguf_put_u32(b->w, "tokenizer.ggml.eos_token_id", 256);
        }
    } else {
        sm_gguf_put_u32(b->w, "tokenizer.ggml.unknown_token_id", 0);
        sm_gguf_put_u32(b->w, "tokenizer.ggml.bos_token_id", 1);
        sm_gguf_put_u32(b->w, "tokenizer.ggml.eos_token_id", 2);
    }
    return SM_OK;
}

/* Copies every tokenizer.* entry of another file; returns its vocab size. */
static sm_status copied_vocab(builder *b, const char *path, int *n_vocab, sm_model **src, sm_error *err) {
    sm_model_params mp = sm_model_default_params();
    mp.skip_repack = 1;   /* only read, never run */
    sm_status st = sm_model_load(path, &mp, src, err);
    if (st) return st;
    if ((*src)->kind != SM_FORMAT_GGUF)
        return sm_fail(err, SM_ERR_INVALID_ARG, "--vocab-from needs a GGUF file, '%s' is not one", path);
    const sm_gguf *g = &(*src)->gguf;
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key.len > 10 && memcmp(g->kv[i].key.ptr, "tokenizer.", 10) == 0) sm_gguf_put_copy(b->w, &g->kv[i]);
    *n_vocab = (*src)->vocab.n;
    return SM_OK;
}

sm_status sm_model_init_file(const sm_init_params *p, const char *path, sm_error *err) {
    if (!p || !path) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_model_init_file: params and path are required");
    int gpt2 = p->arch && !strcmp(p->arch, "gpt2");
    if (!p->arch || (!gpt2 && strcmp(p->arch, "llama") != 0))
        return sm_fail(err, SM_ERR_INVALID_ARG, "architecture must be llama or gpt2");
    int kv_heads = gpt2 ? p->n_heads : (p->n_kv_heads ? p->n_kv_heads : p->n_heads);
    if (p->dim < 1 || p->dim > 65536 || p->n_layers < 1 || p->n_layers > 1024 || p->n_heads < 1 || p->ffn_dim < 1 ||
        p->ffn_dim > (1 << 20) || p->n_ctx < 1 || p->n_ctx > (1 << 20))
        return sm_fail(err, SM_ERR_INVALID_ARG, "model shape out of range");
    if (p->dim % p->n_heads != 0)
        return sm_fail(err, SM_ERR_INVALID_ARG, "dim %d is not a multiple of heads %d", p->dim, p->n_heads);
    if (kv_heads < 1 || p->n_heads % kv_heads != 0)
        return sm_fail(err, SM_ERR_INVALID_ARG, "heads %d is not a multiple of kv-heads %d", p->n_heads, kv_heads);
    int head_dim = p->dim / p->n_heads;
    if (!gpt2 && head_dim % 2 != 0)
        return sm_fail(err, SM_ERR_INVALID_ARG, "a llama model needs an even head size (dim / heads = %d)", head_dim);
    if (!(p->init_std > 0.0f && p->init_std < 100.0f))
        return sm_fail(err, SM_ERR_INVALID_ARG, "init std must be in (0, 100)");

    builder b = {sm_gguf_writer_new(), {0}, p->seed, p};
    sm_model *src = NULL;
    sm_status st = SM_OK;
    if (!b.w) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    const char *a = gpt2 ? "gpt2" : "llama";
    char key[96];
#define KEY(s) (snprintf(key, sizeof key, "%s." s, a), key)
    sm_gguf_put_str(b.w, "general.architecture", a);
    sm_gguf_put_str(b.w, "general.name", p->name ? p->name : "smallmind-init");
    sm_gguf_put_u32(b.w, "general.alignment", 32);
    sm_gguf_put_u32(b.w, "general.file_type", p->f16 ? 1 : 0);
    sm_gguf_put_u32(b.w, KEY("context_length"), (uint32_t)p->n_ctx);
    sm_gguf_put_u32(b.w, KEY("embedding_length"), (uint32_t)p->dim);
    sm_gguf_put_u32(b.w, KEY("block_count"), (uint32_t)p->n_layers);
    sm_gguf_put_u32(b.w, KEY("feed_forward_length"), (uint32_t)p->ffn_dim);
    sm_gguf_put_u32(b.w, KEY("attention.head_count"), (uint32_t)p->n_heads);
    if (gpt2) {
        sm_gguf_put_f32(b.w, KEY("attention.layer_norm_epsilon"), 1e-5f);
    } else {
        sm_gguf_put_u32(b.w, KEY("attention.head_count_kv"), (uint32_t)kv_heads);
        sm_gguf_put_u32(b.w, KEY("rope.dimension_count"), (uint32_t)head_dim);
        sm_gguf_put_f32(b.w, KEY("rope.freq_base"), 10000.0f);
        sm_gguf_put_f32(b.w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    }
#undef KEY
    int n_vocab = p->n_vocab;
    if (p->vocab_from) {
        st = copied_vocab(&b, p->vocab_from, &n_vocab, &src, err);
    } else if (n_vocab < (gpt2 ? 256 : 259) || n_vocab > (1 << 20)) {
        st = sm_fail(err, SM_ERR_INVALID_ARG, "the built-in %s vocabulary needs --vocab from %d to %d", a, gpt2 ? 256 : 259,
                     1 << 20);
    } else {
        st = builtin_vocab(&b, gpt2, n_vocab, err);
    }
    if (st) goto done;

    float std = p->init_std;
    int dim = p->dim, kv_dim = kv_heads * head_dim;
    const void *embd = matrix(&b, "token_embd.weight", dim, n_vocab, std);
    if (gpt2) matrix(&b, "position_embd.weight", dim, p->n_ctx, std);
    vector(&b, "output_norm.weight", dim, 1.0f);
    if (gpt2) vector(&b, "output_norm.bias", dim, 0.0f);
    if (!p->tied) {
        matrix(&b, "output.weight", dim, n_vocab, std);
    } else if (gpt2 && embd) {
        /* llama.cpp's gpt2 loader requires an output matrix: the tied head is
         * written out as a copy of the embedding */
        uint64_t ne[2] = {(uint64_t)dim, (uint64_t)n_vocab};
        sm_gguf_add_tensor(b.w, "output.weight", p->f16 ? SM_GGML_F16 : SM_GGML_F32, 2, ne, embd,
                           (size_t)dim * n_vocab * (p->f16 ? 2 : 4));
    }
    for (int l = 0; l < p->n_layers; l++) {
        char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%d." s, l), n)
        vector(&b, NAME("attn_norm.weight"), dim, 1.0f);
        if (gpt2) {
            vector(&b, NAME("attn_norm.bias"), dim, 0.0f);
            matrix(&b, NAME("attn_qkv.weight"), dim, 3 * dim, std);
            vector(&b, NAME("attn_qkv.bias"), 3 * dim, 0.0f);
            matrix(&b, NAME("attn_output.weight"), dim, dim, std);
            vector(&b, NAME("attn_output.bias"), dim, 0.0f);
            vector(&b, NAME("ffn_norm.weight"), dim, 1.0f);
            vector(&b, NAME("ffn_norm.bias"), dim, 0.0f);
            matrix(&b, NAME("ffn_up.weight"), dim, p->ffn_dim, std);
            vector(&b, NAME("ffn_up.bias"), p->ffn_dim, 0.0f);
            matrix(&b, NAME("ffn_down.weight"), p->ffn_dim, dim, std);
            vector(&b, NAME("ffn_down.bias"), dim, 0.0f);
        } else {
            matrix(&b, NAME("attn_q.weight"), dim, dim, std);
            matrix(&b, NAME("attn_k.weight"), dim, kv_dim, std);
            matrix(&b, NAME("attn_v.weight"), dim, kv_dim, std);
            matrix(&b, NAME("attn_output.weight"), dim, dim, std);
            vector(&b, NAME("ffn_norm.weight"), dim, 1.0f);
            matrix(&b, NAME("ffn_gate.weight"), dim, p->ffn_dim, std);
            matrix(&b, NAME("ffn_up.weight"), dim, p->ffn_dim, std);
            matrix(&b, NAME("ffn_down.weight"), p->ffn_dim, dim, std);
        }
#undef NAME
    }
    if (b.mem.oom) st = sm_fail(err, SM_ERR_NOMEM, "out of memory creating the model");
    else st = sm_gguf_writer_save(b.w, path, err);
done:
    for (int i = 0; i < b.mem.n; i++) sm_free(b.mem.p[i]);
    sm_free(b.mem.p);
    sm_gguf_writer_free(b.w);
    sm_model_free(src);
    return st;
}

/* init.c - writes a randomly initialised model of any shape and
 * architecture: the architecture's table (model/arch.h) gives the metadata
 * keys and the tensors, with the names llama.cpp uses. */
#include "model/model.h"
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
    p.n_expert_used = 2;
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

/* A weight matrix of rows x cols (GGUF shape [cols, rows]), or a stack of
 * mats of them ([cols, rows, mats]: experts) when mats > 0; returns its
 * data (NULL when out of memory). */
static const void *matrix(builder *b, const char *name, int cols, int rows, int mats, float std) {
    size_t n = (size_t)cols * rows * (mats > 0 ? (size_t)mats : 1);
    uint64_t ne[3] = {(uint64_t)cols, (uint64_t)rows, (uint64_t)mats};
    int dims = mats > 0 ? 3 : 2;
    if (b->p->f16) {
        uint16_t *d = own(&b->mem, n * 2);
        if (!d) return NULL;
        for (size_t i = 0; i < n; i++) d[i] = sm_fp32_to_fp16(sm_rng_normal(&b->r) * std);
        sm_gguf_add_tensor(b->w, name, SM_GGML_F16, dims, ne, d, n * 2);
        return d;
    }
    float *d = own(&b->mem, n * 4);
    if (!d) return NULL;
    for (size_t i = 0; i < n; i++) d[i] = sm_rng_normal(&b->r) * std;
    sm_gguf_add_tensor(b->w, name, SM_GGML_F32, dims, ne, d, n * 4);
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

/* One tensor of the architecture, started as its role says (random
 * matrices, norm weights 1, biases 0, or around them with random_norms);
 * returns its data (NULL when out of memory). */
static const void *init_tensor(builder *b, const sm_hparams *hp, const sm_arch_tensor *at, int layer) {
    const sm_role_info *ri = sm_role(at->role);
    char name[96];
    sm_tensor_name(at->role, layer, name, sizeof name);
    int64_t c64, r64;
    sm_arch_tensor_shape(hp, at, &c64, &r64);
    int cols = (int)c64, rows = (int)r64;
    if (ri->init == SM_INIT_RANDOM) return matrix(b, name, cols, rows, (int)sm_arch_tensor_mats(hp, at), b->p->init_std);
    vector(b, name, cols, ri->init == SM_INIT_ONE ? 1.0f : 0.0f);
    return NULL;
}

sm_status sm_model_init_file(const sm_init_params *p, const char *path, sm_error *err) {
    if (!p || !path) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_model_init_file: params and path are required");
    int arch = p->arch ? sm_arch_by_name(p->arch, strlen(p->arch)) : -1;
    if (arch < 0) {
        char names[432];   /* every architecture's name (sm_arch_names): what the 512-byte message holds */
        sm_arch_names(names, sizeof names);
        return sm_fail(err, SM_ERR_INVALID_ARG, "unknown architecture '%s' (supported: %s)", p->arch ? p->arch : "",
                       names);
    }
    const sm_arch_info *a = sm_arch_get(arch);
    if (p->dim < 1 || p->dim > 65536 || p->n_layers < 1 || p->n_layers > 1024 || p->n_heads < 1 || p->ffn_dim < 1 ||
        p->ffn_dim > (1 << 20) || p->n_ctx < 1 || p->n_ctx > (1 << 20))
        return sm_fail(err, SM_ERR_INVALID_ARG, "model shape out of range");
    sm_hparams hp = {.arch = arch, .n_ctx_train = p->n_ctx, .dim = p->dim, .n_layers = p->n_layers,
                     .n_heads = p->n_heads, .ffn_dim = p->ffn_dim, .rope_base = 10000.0f, .norm_eps = 1e-5f,
                     .n_kv_heads = sm_arch_has(a, SM_T_ATTN_QKV, NULL) || !p->n_kv_heads ? p->n_heads : p->n_kv_heads,
                     .n_expert = p->n_expert, .n_expert_used = p->n_expert ? p->n_expert_used : 0,
                     .ffn_exp = p->n_expert ? p->ffn_dim : 0};   /* each expert --ffn rows (qwen2moe's shared one too) */
    if (sm_arch_experts(a) == SM_EXPERTS_ALWAYS && !p->n_expert)
        return sm_fail(err, SM_ERR_INVALID_ARG, "a %s model is a mixture of experts: give --experts N", a->name);
    if (p->n_expert && !sm_arch_experts(a))
        return sm_fail(err, SM_ERR_INVALID_ARG, "a %s model has no experts (--experts is for llama, granitemoe, olmoe, "
                       "qwen2moe and qwen3moe)", a->name);
    if (p->n_expert < 0 || p->n_expert > 256 || (p->n_expert && (p->n_expert_used < 1 || p->n_expert_used > p->n_expert)))
        return sm_fail(err, SM_ERR_INVALID_ARG, "experts: give from 1 to 256 experts and from 1 to that many used per "
                       "token (--experts N --experts-used K)");
    sm_status st = sm_arch_finish_hparams(&hp, SM_ERR_INVALID_ARG, err);
    if (st) return st;
    if (!(p->init_std > 0.0f && p->init_std < 100.0f))
        return sm_fail(err, SM_ERR_INVALID_ARG, "init std must be in (0, 100)");

    builder b = {sm_gguf_writer_new(), {0}, p->seed, p};
    sm_model *src = NULL;
    if (!b.w) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    int gpt2 = a->byte_level_vocab;   /* the built-in vocabulary: byte-level BPE, as GPT-2's */
    sm_gguf_put_str(b.w, "general.architecture", a->name);
    sm_gguf_put_str(b.w, "general.name", p->name ? p->name : "smallmind-init");
    sm_gguf_put_u32(b.w, "general.alignment", 32);
    sm_gguf_put_u32(b.w, "general.file_type", p->f16 ? 1 : 0);
    sm_arch_write_hparams(b.w, &hp);
    int n_vocab = p->n_vocab;
    if (p->vocab_from) {
        st = copied_vocab(&b, p->vocab_from, &n_vocab, &src, err);
    } else if (n_vocab < (gpt2 ? 256 : 259) || n_vocab > (1 << 20)) {
        st = sm_fail(err, SM_ERR_INVALID_ARG, "the built-in %s vocabulary needs --vocab from %d to %d", a->name,
                     gpt2 ? 256 : 259, 1 << 20);
    } else {
        st = builtin_vocab(&b, gpt2, n_vocab, err);
    }
    if (st) goto done;
    hp.n_vocab = n_vocab;

    /* the tensors in the table's order: model-wide ones, then layer by layer */
    const void *embd = NULL;
    for (int i = 0; i < a->n_tensors; i++) {
        const sm_arch_tensor *at = &a->tensors[i];
        if (at->role >= SM_T_LAYER_FIRST || (at->role != SM_T_OUTPUT && (at->flags & SM_TF_OPTIONAL))) continue;
        if (at->role != SM_T_OUTPUT) {
            const void *d = init_tensor(&b, &hp, at, 0);
            if (at->role == SM_T_TOKEN_EMBD) embd = d;
        } else if (!p->tied) {
            init_tensor(&b, &hp, at, 0);
        } else if (a->write_tied_output && embd) {
            /* llama.cpp's loader wants an output matrix: the tied head is
             * written out as a copy of the embedding */
            uint64_t ne[2] = {(uint64_t)hp.dim, (uint64_t)n_vocab};
            sm_gguf_add_tensor(b.w, "output.weight", p->f16 ? SM_GGML_F16 : SM_GGML_F32, 2, ne, embd,
                               (size_t)hp.dim * n_vocab * (p->f16 ? 2 : 4));
        }
    }
    /* per layer the required tensors; with experts the router and stacks instead of a dense FFN */
    for (int l = 0; l < hp.n_layers; l++)
        for (int i = 0; i < a->n_tensors; i++) {
            const sm_arch_tensor *at = &a->tensors[i];
            int expert = at->role >= SM_T_FFN_GATE_INP && at->role <= SM_T_FFN_DOWN_EXPS;
            if (at->role < SM_T_LAYER_FIRST || ((at->flags & SM_TF_OPTIONAL) && !(expert && hp.n_expert)) ||
                ((at->flags & SM_TF_DENSE) && hp.n_expert))
                continue;
            init_tensor(&b, &hp, at, l);
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

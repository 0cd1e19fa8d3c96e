/* load.c - turns a GGUF or llama2.c file into an sm_model: checks the
 * hyperparameters, finds every tensor with the shape and type the
 * architecture needs, and builds the vocabulary. */
#include "model.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/error.h"
#include "io/llama2c.h"
#include "text/bpe.h"
#include "session.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

sm_model_params sm_model_default_params(void) {
    sm_model_params p = {0};
    return p;
}

/* ------------------------------------------------------------------ GGUF */

static sm_status get_hparam(const sm_gguf *g, const char *arch, const char *key, int64_t lo, int64_t hi,
                            int required, int64_t dflt, int *out, sm_error *err) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int64_t v;
    int r = sm_gguf_get_int(g, full, &v);
    if (r == 0) {
        if (required) return sm_fail(err, SM_ERR_FORMAT, "metadata key '%s' is missing", full);
        v = dflt;
    } else if (r < 0) {
        return sm_fail(err, SM_ERR_FORMAT, "metadata key '%s' is not an integer", full);
    }
    if (v < lo || v > hi)
        return sm_fail(err, SM_ERR_FORMAT, "metadata '%s' = %lld is out of range (%lld to %lld)", full,
                       (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return SM_OK;
}

static sm_status get_fparam(const sm_gguf *g, const char *arch, const char *key, double lo, double hi,
                            double dflt, float *out, sm_error *err) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    double v;
    int r = sm_gguf_get_float(g, full, &v);
    if (r == 0) v = dflt;
    else if (r < 0) return sm_fail(err, SM_ERR_FORMAT, "metadata key '%s' is not a number", full);
    if (!(v >= lo && v <= hi))
        return sm_fail(err, SM_ERR_FORMAT, "metadata '%s' = %g is out of range (%g to %g)", full, v, lo, hi);
    *out = (float)v;
    return SM_OK;
}

static sm_status check_elem_alignment(const sm_gguf_tensor *t, const char *name, sm_error *err) {
    size_t align = t->type == SM_GGML_F32 ? 4 : 2;  /* quantized blocks start with fp16 fields */
    if ((uintptr_t)t->data % align != 0)
        return sm_fail(err, SM_ERR_FORMAT, "tensor '%s' data is not aligned to %zu bytes", name, align);
    return SM_OK;
}

static sm_status find_matrix(const sm_gguf *g, const char *name, int cols, int rows, int optional,
                             sm_matrix *m, sm_error *err) {
    memset(m, 0, sizeof *m);
    const sm_gguf_tensor *t = sm_gguf_find_tensor(g, name);
    if (!t) return optional ? SM_OK : sm_fail(err, SM_ERR_FORMAT, "tensor '%s' is missing", name);
    if (t->n_dims != 2 || t->ne[0] != (uint64_t)cols || t->ne[1] != (uint64_t)rows)
        return sm_fail(err, SM_ERR_FORMAT, "tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%d, %d]",
                       name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                       (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], cols, rows);
    if (!sm_matrix_type_supported(t->type))
        return sm_fail(err, SM_ERR_UNSUPPORTED,
                       "tensor '%s' has type %s, which SmallMind cannot run (supported: F32, F16, Q8_0, Q4_0, Q4_K, Q6_K)",
                       name, sm_ggml_type_name(t->type));
    sm_status st = check_elem_alignment(t, name, err);
    if (st) return st;
    m->data = t->data;
    m->type = t->type;
    m->rows = rows;
    m->cols = cols;
    return SM_OK;
}

static sm_status find_vector(const sm_gguf *g, const char *name, int n, const float **out, sm_error *err) {
    const sm_gguf_tensor *t = sm_gguf_find_tensor(g, name);
    if (!t) return sm_fail(err, SM_ERR_FORMAT, "tensor '%s' is missing", name);
    if (t->n_elements != (uint64_t)n || t->ne[0] != (uint64_t)n)
        return sm_fail(err, SM_ERR_FORMAT, "tensor '%s' has %llu elements, expected %d", name,
                       (unsigned long long)t->n_elements, n);
    if (t->type != SM_GGML_F32)
        return sm_fail(err, SM_ERR_UNSUPPORTED, "norm tensor '%s' has type %s; only F32 is supported", name,
                       sm_ggml_type_name(t->type));
    sm_status st = check_elem_alignment(t, name, err);
    if (st) return st;
    *out = t->data;
    return SM_OK;
}

/* Adds to the model's load warning (several are joined with "; "). */
static void add_warning(sm_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_warning(sm_model *m, const char *fmt, ...) {
    size_t n = strlen(m->warning);
    if (n + 3 >= sizeof m->warning) return;
    if (n) { memcpy(m->warning + n, "; ", 3); n += 2; }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->warning + n, sizeof m->warning - n, fmt, ap);
    va_end(ap);
}

static sm_status attach_bpe(sm_model *m, sm_error *err) {
    const sm_gguf *g = &m->gguf;
    const sm_gguf_kv *mk = sm_gguf_find(g, "tokenizer.ggml.merges");
    if (!mk || mk->type != SM_GGUF_ARRAY || mk->arr_type != SM_GGUF_STRING)
        return sm_fail(err, SM_ERR_FORMAT, "a gpt2 tokenizer needs 'tokenizer.ggml.merges' (a string array)");
    sm_text_span *merges = sm_alloc((size_t)(mk->arr_n ? mk->arr_n : 1) * sizeof *merges);
    if (!merges) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    const unsigned char *cur = mk->arr_data;
    for (uint64_t i = 0; i < mk->arr_n; i++) {
        sm_gguf_str s = sm_gguf_arr_next_str(&cur);
        merges[i] = (sm_text_span){s.ptr, (size_t)s.len};
    }
    sm_gguf_str pre = {NULL, 0};
    if (sm_gguf_get_str(g, "tokenizer.ggml.pre", &pre) < 0) pre.ptr = NULL;
    int fallback = 0;
    sm_status st = sm_bpe_attach(&m->vocab, pre.ptr, (size_t)pre.len, merges, (size_t)mk->arr_n, &fallback, err);
    sm_free(merges);
    if (st) return st;
    if (fallback)
        add_warning(m, "unknown pre-tokenizer '%.*s': using the gpt-2 split", (int)(pre.len > 64 ? 64 : pre.len),
                    pre.ptr ? pre.ptr : "");
    return SM_OK;
}

static sm_status load_gguf_vocab(sm_model *m, sm_error *err) {
    const sm_gguf *g = &m->gguf;
    sm_gguf_str model;
    int r = sm_gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (r <= 0) return sm_fail(err, SM_ERR_FORMAT, "metadata key 'tokenizer.ggml.model' is missing or not a string");
    int kind;
    if (sm_gguf_str_eq(model, "llama")) kind = SM_VOCAB_SPM_MARKED;
    else if (sm_gguf_str_eq(model, "gpt2")) kind = SM_VOCAB_BPE;
    else
        return sm_fail(err, SM_ERR_UNSUPPORTED, "tokenizer model '%.*s' is not supported (supported: llama, gpt2)",
                       (int)(model.len > 64 ? 64 : model.len), model.ptr);
    const sm_gguf_kv *toks = sm_gguf_find(g, "tokenizer.ggml.tokens");
    if (!toks || toks->type != SM_GGUF_ARRAY || toks->arr_type != SM_GGUF_STRING)
        return sm_fail(err, SM_ERR_FORMAT, "metadata 'tokenizer.ggml.tokens' is missing or not a string array");
    if (toks->arr_n == 0 || toks->arr_n > (1u << 24))
        return sm_fail(err, SM_ERR_FORMAT, "vocabulary has %llu tokens", (unsigned long long)toks->arr_n);
    int n = (int)toks->arr_n;
    const sm_gguf_kv *scores = sm_gguf_find(g, "tokenizer.ggml.scores");
    const sm_gguf_kv *types = sm_gguf_find(g, "tokenizer.ggml.token_type");
    if (scores && (scores->type != SM_GGUF_ARRAY || scores->arr_n != (uint64_t)n ||
                   (scores->arr_type != SM_GGUF_FLOAT32 && scores->arr_type != SM_GGUF_FLOAT64)))
        return sm_fail(err, SM_ERR_FORMAT, "metadata 'tokenizer.ggml.scores' must be %d floats", n);
    if (types && (types->type != SM_GGUF_ARRAY || types->arr_n != (uint64_t)n || types->arr_type == SM_GGUF_STRING ||
                  types->arr_type == SM_GGUF_ARRAY))
        return sm_fail(err, SM_ERR_FORMAT, "metadata 'tokenizer.ggml.token_type' must be %d integers", n);
    sm_vocab_entry *e = sm_alloc((size_t)n * sizeof *e);
    if (!e) return sm_fail(err, SM_ERR_NOMEM, "out of memory reading the vocabulary");
    const unsigned char *cur = toks->arr_data;
    for (int i = 0; i < n; i++) {
        sm_gguf_str s = sm_gguf_arr_next_str(&cur);
        if (s.len > 4096) {
            sm_free(e);
            return sm_fail(err, SM_ERR_FORMAT, "token %d is %llu bytes long", i, (unsigned long long)s.len);
        }
        e[i].text = s.ptr;
        e[i].len = (uint32_t)s.len;
        e[i].score = scores ? (float)sm_gguf_arr_float(scores, (uint64_t)i) : 0.0f;
        int64_t t = types ? sm_gguf_arr_int(types, (uint64_t)i) : 0;
        e[i].type = (t >= 0 && t <= SM_TOK_BYTE) ? (int)t : SM_TOK_UNDEFINED;
    }
    sm_status st = sm_vocab_build(&m->vocab, e, n, kind, err);
    sm_free(e);
    if (st) return st;
    if (kind == SM_VOCAB_BPE && (st = attach_bpe(m, err))) return st;
    const char *id_keys[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                             "tokenizer.ggml.unknown_token_id"};
    int32_t *id_dst[] = {&m->vocab.bos, &m->vocab.eos, &m->vocab.unk};
    for (int k = 0; k < 3; k++) {
        int64_t v;
        int rr = sm_gguf_get_int(g, id_keys[k], &v);
        if (rr < 0 || (rr > 0 && (v < 0 || v >= n)))
            return sm_fail(err, SM_ERR_FORMAT, "metadata '%s' is not a token id below %d", id_keys[k], n);
        if (rr > 0) *id_dst[k] = (int32_t)v;
    }
    if (sm_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &m->vocab.add_bos) < 0)
        return sm_fail(err, SM_ERR_FORMAT, "metadata 'tokenizer.ggml.add_bos_token' is not a bool");
    if (sm_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &m->vocab.add_space_prefix) < 0)
        return sm_fail(err, SM_ERR_FORMAT, "metadata 'tokenizer.ggml.add_space_prefix' is not a bool");
    if (m->vocab.bos < 0) m->vocab.add_bos = 0;
    return SM_OK;
}

/* The keys every architecture has, under its own prefix, and the head size they imply. */
static sm_status get_common_hparams(const sm_gguf *g, const char *a, int max_ctx, sm_hparams *hp, sm_error *err) {
    sm_status st;
    if ((st = get_hparam(g, a, "context_length", 1, max_ctx, 1, 0, &hp->n_ctx_train, err)) ||
        (st = get_hparam(g, a, "embedding_length", 1, 1 << 16, 1, 0, &hp->dim, err)) ||
        (st = get_hparam(g, a, "block_count", 1, 1024, 1, 0, &hp->n_layers, err)) ||
        (st = get_hparam(g, a, "feed_forward_length", 1, 1 << 20, 1, 0, &hp->ffn_dim, err)) ||
        (st = get_hparam(g, a, "attention.head_count", 1, hp->dim, 1, 0, &hp->n_heads, err)))
        return st;
    if (hp->dim % hp->n_heads != 0)
        return sm_fail(err, SM_ERR_FORMAT, "embedding length %d is not a multiple of head count %d", hp->dim,
                       hp->n_heads);
    hp->head_dim = hp->dim / hp->n_heads;
    return SM_OK;
}

static sm_status load_gguf_llama(sm_model *m, sm_error *err) {
    const sm_gguf *g = &m->gguf;
    sm_hparams *hp = &m->hp;
    const char *a = m->arch;
    sm_status st;
    hp->arch = SM_ARCH_LLAMA;
    if ((st = get_common_hparams(g, a, 1 << 24, hp, err)) ||
        (st = get_hparam(g, a, "attention.head_count_kv", 1, hp->n_heads, 0, hp->n_heads, &hp->n_kv_heads, err)))
        return st;
    if (hp->n_heads % hp->n_kv_heads != 0)
        return sm_fail(err, SM_ERR_FORMAT, "head count %d is not a multiple of KV head count %d", hp->n_heads,
                       hp->n_kv_heads);
    if ((st = get_hparam(g, a, "rope.dimension_count", 0, hp->head_dim, 0, hp->head_dim, &hp->rope_dim, err)) ||
        (st = get_fparam(g, a, "rope.freq_base", 1e-3, 1e12, 10000.0, &hp->rope_base, err)) ||
        (st = get_fparam(g, a, "attention.layer_norm_rms_epsilon", 0.0, 1.0, 1e-5, &hp->norm_eps, err)))
        return st;
    if (hp->rope_dim % 2 != 0)
        return sm_fail(err, SM_ERR_FORMAT, "rope dimension count %d is odd", hp->rope_dim);
    hp->n_vocab = m->vocab.n;
    int kv_dim = hp->n_kv_heads * hp->head_dim;
    if ((st = find_matrix(g, "token_embd.weight", hp->dim, hp->n_vocab, 0, &m->tok_embd, err)) ||
        (st = find_vector(g, "output_norm.weight", hp->dim, &m->output_norm, err)) ||
        (st = find_matrix(g, "output.weight", hp->dim, hp->n_vocab, 1, &m->output, err)))
        return st;
    if (!m->output.data) m->output = m->tok_embd;  /* tied embeddings */
    m->layers = sm_calloc((size_t)hp->n_layers, sizeof *m->layers);
    if (!m->layers) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    for (int l = 0; l < hp->n_layers; l++) {
        sm_layer *L = &m->layers[l];
        char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%d." s, l), n)
        if ((st = find_vector(g, NAME("attn_norm.weight"), hp->dim, &L->attn_norm, err)) ||
            (st = find_matrix(g, NAME("attn_q.weight"), hp->dim, hp->dim, 0, &L->wq, err)) ||
            (st = find_matrix(g, NAME("attn_k.weight"), hp->dim, kv_dim, 0, &L->wk, err)) ||
            (st = find_matrix(g, NAME("attn_v.weight"), hp->dim, kv_dim, 0, &L->wv, err)) ||
            (st = find_matrix(g, NAME("attn_output.weight"), hp->dim, hp->dim, 0, &L->wo, err)) ||
            (st = find_vector(g, NAME("ffn_norm.weight"), hp->dim, &L->ffn_norm, err)) ||
            (st = find_matrix(g, NAME("ffn_gate.weight"), hp->dim, hp->ffn_dim, 0, &L->w_gate, err)) ||
            (st = find_matrix(g, NAME("ffn_up.weight"), hp->dim, hp->ffn_dim, 0, &L->w_up, err)) ||
            (st = find_matrix(g, NAME("ffn_down.weight"), hp->ffn_dim, hp->dim, 0, &L->w_down, err)))
            return st;
#undef NAME
    }
    return SM_OK;
}

static sm_status load_gguf_gpt2(sm_model *m, sm_error *err) {
    const sm_gguf *g = &m->gguf;
    sm_hparams *hp = &m->hp;
    const char *a = m->arch;
    sm_status st;
    hp->arch = SM_ARCH_GPT2;
    if ((st = get_common_hparams(g, a, 1 << 20, hp, err)) ||
        (st = get_fparam(g, a, "attention.layer_norm_epsilon", 0.0, 1.0, 1e-5, &hp->norm_eps, err)))
        return st;
    hp->n_kv_heads = hp->n_heads;
    hp->n_vocab = m->vocab.n;
    int dim = hp->dim, ffn = hp->ffn_dim;
    if ((st = find_matrix(g, "token_embd.weight", dim, hp->n_vocab, 0, &m->tok_embd, err)) ||
        (st = find_matrix(g, "position_embd.weight", dim, hp->n_ctx_train, 0, &m->pos_embd, err)) ||
        (st = find_vector(g, "output_norm.weight", dim, &m->output_norm, err)) ||
        (st = find_vector(g, "output_norm.bias", dim, &m->output_norm_b, err)) ||
        (st = find_matrix(g, "output.weight", dim, hp->n_vocab, 1, &m->output, err)))
        return st;
    if (!m->output.data) m->output = m->tok_embd;
    m->layers = sm_calloc((size_t)hp->n_layers, sizeof *m->layers);
    if (!m->layers) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    for (int l = 0; l < hp->n_layers; l++) {
        sm_layer *L = &m->layers[l];
        char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%d." s, l), n)
        if ((st = find_vector(g, NAME("attn_norm.weight"), dim, &L->attn_norm, err)) ||
            (st = find_vector(g, NAME("attn_norm.bias"), dim, &L->attn_norm_b, err)) ||
            (st = find_matrix(g, NAME("attn_qkv.weight"), dim, 3 * dim, 0, &L->wqkv, err)) ||
            (st = find_vector(g, NAME("attn_qkv.bias"), 3 * dim, &L->b_qkv, err)) ||
            (st = find_matrix(g, NAME("attn_output.weight"), dim, dim, 0, &L->wo, err)) ||
            (st = find_vector(g, NAME("attn_output.bias"), dim, &L->b_o, err)) ||
            (st = find_vector(g, NAME("ffn_norm.weight"), dim, &L->ffn_norm, err)) ||
            (st = find_vector(g, NAME("ffn_norm.bias"), dim, &L->ffn_norm_b, err)) ||
            (st = find_matrix(g, NAME("ffn_up.weight"), dim, ffn, 0, &L->w_up, err)) ||
            (st = find_vector(g, NAME("ffn_up.bias"), ffn, &L->b_up, err)) ||
            (st = find_matrix(g, NAME("ffn_down.weight"), ffn, dim, 0, &L->w_down, err)) ||
            (st = find_vector(g, NAME("ffn_down.bias"), dim, &L->b_down, err)))
            return st;
#undef NAME
    }
    return SM_OK;
}

/* general.alignment may be as small as 1 (valid GGUF), which can leave
 * tensor data at addresses the kernels cannot read floats and fp16 fields
 * from; such a file's tensors are copied into aligned memory of the model. */
static sm_status align_tensor_data(sm_model *m, sm_error *err) {
    sm_gguf *g = &m->gguf;
    uint64_t total = 0;
    int misaligned = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        if (!g->tensors[i].data) continue;
        misaligned |= (uintptr_t)g->tensors[i].data % 4 != 0;
        total += (g->tensors[i].n_bytes + 63) / 64 * 64;
    }
    if (!misaligned) return SM_OK;
    unsigned char *mem = total <= SIZE_MAX ? sm_alloc_aligned((size_t)total) : NULL;
    if (!mem)
        return sm_fail(err, SM_ERR_NOMEM, "out of memory copying the %.1f MiB of tensors that general.alignment %llu "
                       "leaves unaligned", (double)total / 1048576.0, (unsigned long long)g->alignment);
    size_t at = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        sm_gguf_tensor *t = &g->tensors[i];
        if (!t->data) continue;
        memcpy(mem + at, t->data, (size_t)t->n_bytes);
        t->data = mem + at;
        at += (size_t)(t->n_bytes + 63) / 64 * 64;
    }
    m->aligned_mem = mem;
    return SM_OK;
}

static sm_status load_gguf(sm_model *m, const void *data, size_t size, sm_error *err) {
    sm_status st = sm_gguf_parse(data, size, &m->gguf, err);
    if (st) return st;
    if ((st = align_tensor_data(m, err))) return st;
    snprintf(m->format, sizeof m->format, "GGUF v%u", (unsigned)m->gguf.version);
    sm_gguf_str s;
    int r = sm_gguf_get_str(&m->gguf, "general.architecture", &s);
    if (r < 0) return sm_fail(err, SM_ERR_FORMAT, "metadata 'general.architecture' is not a string");
    if (r == 0) return sm_fail(err, SM_ERR_FORMAT, "metadata 'general.architecture' is missing");
    snprintf(m->arch, sizeof m->arch, "%.*s", (int)(s.len > 31 ? 31 : s.len), s.ptr);
    if (sm_gguf_get_str(&m->gguf, "general.name", &s) > 0)
        snprintf(m->name, sizeof m->name, "%.*s", (int)(s.len > 127 ? 127 : s.len), s.ptr);
    if ((st = load_gguf_vocab(m, err))) return st;
    if (m->gguf.n_tensors == 0) return SM_OK;  /* a vocabulary-only file */
    if (!strcmp(m->arch, "llama")) st = load_gguf_llama(m, err);
    else if (!strcmp(m->arch, "gpt2")) st = load_gguf_gpt2(m, err);
    else
        return sm_fail(err, SM_ERR_UNSUPPORTED, "architecture '%s' is not supported (supported: llama, gpt2)",
                       m->arch);
    if (st) return st;
    const int64_t *ov = m->gguf.overlap;
    if (ov[0] >= 0) {
        sm_gguf_str a = m->gguf.tensors[ov[0]].name, b = m->gguf.tensors[ov[1]].name;
        add_warning(m, "tensors '%.*s' and '%.*s' overlap in the file (it is probably damaged)",
                    (int)(a.len > 40 ? 40 : a.len), a.ptr, (int)(b.len > 40 ? 40 : b.len), b.ptr);
    }
    for (uint64_t i = 0; i < m->gguf.n_tensors; i++) {
        m->n_params += m->gguf.tensors[i].n_elements;
        m->weights_bytes += m->gguf.tensors[i].n_bytes;
    }
    m->has_weights = 1;
    return SM_OK;
}

/* -------------------------------------------------------------- llama2.c */

static sm_matrix stacked(const float *base, int layer, int rows, int cols) {
    sm_matrix m = {base + (size_t)layer * rows * cols, SM_GGML_F32, rows, cols, NULL};
    return m;
}

static sm_status load_llama2c(sm_model *m, const void *data, size_t size, const void *tok, size_t tok_size,
                              sm_error *err) {
    sm_llama2c_model c;
    sm_status st = sm_llama2c_parse(data, size, &c, err);
    if (st) return st;
    if (!tok) return sm_fail(err, SM_ERR_INVALID_ARG, "a llama2.c model needs its tokenizer: pass -z TOKENIZER.bin");
    sm_llama2c_token *toks;
    if ((st = sm_llama2c_parse_tokenizer(tok, tok_size, c.vocab_size, &toks, err))) return st;
    sm_vocab_entry *e = sm_alloc((size_t)c.vocab_size * sizeof *e);
    if (!e) {
        sm_free(toks);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < c.vocab_size; i++) e[i] = (sm_vocab_entry){toks[i].text, toks[i].len, toks[i].score, 0};
    st = sm_vocab_build(&m->vocab, e, c.vocab_size, SM_VOCAB_SPM_PLAIN, err);
    sm_free(e);
    sm_free(toks);
    if (st) return st;
    /* llama2.c's convention: 0 = <unk>, 1 = BOS, 2 = EOS. */
    m->vocab.bos = c.vocab_size > 1 ? 1 : -1;
    m->vocab.eos = c.vocab_size > 2 ? 2 : -1;
    strcpy(m->arch, "llama");
    strcpy(m->format, "llama2.c");
    m->hp.arch = SM_ARCH_LLAMA;
    memcpy(m->l2c_header, data, sizeof m->l2c_header);
    sm_hparams *hp = &m->hp;
    hp->n_vocab = c.vocab_size;
    hp->n_ctx_train = c.seq_len;
    hp->dim = c.dim;
    hp->n_layers = c.n_layers;
    hp->n_heads = c.n_heads;
    hp->n_kv_heads = c.n_kv_heads;
    hp->head_dim = c.dim / c.n_heads;
    hp->ffn_dim = c.hidden_dim;
    hp->rope_dim = hp->head_dim;
    hp->rope_base = 10000.0f;
    hp->norm_eps = 1e-5f;
    int kv_dim = hp->n_kv_heads * hp->head_dim;
    m->tok_embd = (sm_matrix){c.token_embedding, SM_GGML_F32, c.vocab_size, c.dim, NULL};
    m->output = (sm_matrix){c.wcls, SM_GGML_F32, c.vocab_size, c.dim, NULL};
    m->output_norm = c.rms_final;
    m->layers = sm_calloc((size_t)hp->n_layers, sizeof *m->layers);
    if (!m->layers) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    for (int l = 0; l < hp->n_layers; l++) {
        sm_layer *L = &m->layers[l];
        L->attn_norm = c.rms_att + (size_t)l * c.dim;
        L->ffn_norm = c.rms_ffn + (size_t)l * c.dim;
        L->wq = stacked(c.wq, l, c.dim, c.dim);
        L->wk = stacked(c.wk, l, kv_dim, c.dim);
        L->wv = stacked(c.wv, l, kv_dim, c.dim);
        L->wo = stacked(c.wo, l, c.dim, c.dim);
        L->w_gate = stacked(c.w1, l, c.hidden_dim, c.dim);
        L->w_down = stacked(c.w2, l, c.dim, c.hidden_dim);
        L->w_up = stacked(c.w3, l, c.hidden_dim, c.dim);
    }
    m->weights_bytes = size - 28;
    m->n_params = m->weights_bytes / 4 - (uint64_t)c.seq_len * hp->head_dim;  /* freq_cis is not a parameter */
    m->has_weights = 1;
    return SM_OK;
}

/* ---------------------------------------------------------------- public */

sm_status sm_model_load_buffers(const void *data, size_t size, const void *tok, size_t tok_size, sm_model **out,
                                sm_error *err) {
    *out = NULL;
    sm_model *m = sm_calloc(1, sizeof *m);
    if (!m) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    sm_status st;
    if (size >= 4 && memcmp(data, "GGUF", 4) == 0) {
        m->kind = SM_FORMAT_GGUF;
        st = load_gguf(m, data, size, err);
    } else {
        m->kind = SM_FORMAT_LLAMA2C;
        st = load_llama2c(m, data, size, tok, tok_size, err);
    }
    if (st) {
        sm_model_free(m);
        return st;
    }
    *out = m;
    return SM_OK;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

sm_status sm_model_load(const char *path, const sm_model_params *params, sm_model **out, sm_error *err) {
    if (out) *out = NULL;
    if (!path || !out) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_model_load: path and out are required");
    sm_model_params p = params ? *params : sm_model_default_params();
    uint64_t t0 = sm_now_ns();
    sm_mapped_file f, tf = {0};
    sm_status st = sm_map_file(path, &f, err);
    if (st) return st;
    int is_gguf = f.size >= 4 && memcmp(f.data, "GGUF", 4) == 0;
    if (!is_gguf && p.tokenizer_path) {
        if ((st = sm_map_file(p.tokenizer_path, &tf, err))) {
            sm_unmap_file(&f);
            return st;
        }
    }
    st = sm_model_load_buffers(f.data, f.size, tf.data, tf.size, out, err);
    if (st) {
        sm_error_prefix(err, "%s", path);
        sm_unmap_file(&f);
        sm_unmap_file(&tf);
        return st;
    }
    if (!p.skip_repack) sm_model_interleave(*out);
    (*out)->file = f;
    (*out)->tok_file = tf;
    if (!(*out)->name[0]) snprintf((*out)->name, sizeof (*out)->name, "%s", base_name(path));
    (*out)->load_ns = sm_now_ns() - t0;
    return SM_OK;
}

void sm_model_free(sm_model *m) {
    if (!m) return;
    sm_gguf_free(&m->gguf);
    sm_vocab_free(&m->vocab);
    sm_free(m->layers);
    sm_free(m->x16_mem);
    sm_free(m->aligned_mem);
    sm_unmap_file(&m->file);
    sm_unmap_file(&m->tok_file);
    sm_free(m);
}

void sm_model_get_info(const sm_model *m, sm_model_info *info) {
    memset(info, 0, sizeof *info);
    info->format = m->format;
    info->arch = m->arch;
    info->name = m->name;
    info->n_vocab = m->vocab.n;
    info->n_ctx_train = m->hp.n_ctx_train;
    info->dim = m->hp.dim;
    info->n_layers = m->hp.n_layers;
    info->n_heads = m->hp.n_heads;
    info->n_kv_heads = m->hp.n_kv_heads;
    info->ffn_dim = m->hp.ffn_dim;
    info->has_weights = m->has_weights;
    info->bos = m->vocab.bos;
    info->eos = m->vocab.eos;
    info->add_bos = m->vocab.add_bos;
    info->n_params = m->n_params;
    info->warning = m->warning[0] ? m->warning : NULL;
    info->weights_bytes = m->weights_bytes;
}

/* load.c - turns a GGUF or llama2.c file into an sm_model. For GGUF the
 * architecture's table (arch.h) says which metadata keys to read and which
 * tensors to find, with what shapes; every tensor is checked against it.
 * The vocabulary is built by vocab_gguf.c, llama2.c files by
 * load_llama2c.c. */
#include "model.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/error.h"
#include "session.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

sm_model_params sm_model_default_params(void) {
    sm_model_params p = {0};
    return p;
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
    unsigned char *mem = total <= SIZE_MAX ? sm_alloc_huge((size_t)total) : NULL;
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

static sm_status check_elem_alignment(const sm_gguf_tensor *t, const char *name, sm_error *err) {
    size_t align = t->type == SM_GGML_F32 ? 4 : 2;  /* quantized blocks start with fp16 fields */
    if ((uintptr_t)t->data % align != 0)
        return sm_fail(err, SM_ERR_FORMAT, "tensor '%s' data is not aligned to %zu bytes", name, align);
    return SM_OK;
}

/* Finds one tensor of the architecture and points its slot at the data
 * (marking it in used, one byte per tensor of the file). */
static sm_status find_tensor(sm_model *m, const sm_arch_tensor *at, int layer, uint8_t *used, sm_error *err) {
    int role = at->role, optional = at->flags & (SM_TF_OPTIONAL | SM_TF_DEFAULT);
    char name[96];
    sm_tensor_name(role, layer, name, sizeof name);
    int64_t cols, rows;
    sm_arch_tensor_shape(&m->hp, at, &cols, &rows);
    const sm_gguf_tensor *t = sm_gguf_find_tensor(&m->gguf, name);
    if (!t && (at->flags & (SM_TF_FUSED | SM_TF_DENSE))) {
        /* Q, K and V apart instead of fused, or experts instead of a dense FFN (checked in load_gguf_tensors) */
        char alt[96];
        sm_tensor_name(at->flags & SM_TF_FUSED ? SM_T_ATTN_Q : SM_T_FFN_GATE_INP, layer, alt, sizeof alt);
        optional = sm_gguf_find_tensor(&m->gguf, alt) != NULL;
    }
    if (!t) return optional ? SM_OK : sm_fail(err, SM_ERR_FORMAT, "tensor '%s' is missing", name);
    used[t - m->gguf.tensors] = 1;
    sm_matrix *mat = sm_model_matrix(m, role, layer);
    int64_t mats = sm_arch_tensor_mats(&m->hp, at);   /* experts: a stack of matrices, one matrix of mats x rows */
    if (mat) {
        if (mats > 0 && (t->n_dims != 3 || t->ne[0] != (uint64_t)cols || t->ne[1] != (uint64_t)rows ||
                         t->ne[2] != (uint64_t)mats))
            return sm_fail(err, SM_ERR_FORMAT, "tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%lld, %lld, "
                           "%lld] (expert_count %d)", name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                           (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], (long long)cols, (long long)rows,
                           (long long)mats, m->hp.n_expert);
        if (mats == 0 && (t->n_dims != 2 || t->ne[0] != (uint64_t)cols || t->ne[1] != (uint64_t)rows))
            return sm_fail(err, SM_ERR_FORMAT, "tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%lld, %lld]",
                           name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                           (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], (long long)cols, (long long)rows);
        if (mats > 0 && (uint64_t)rows * (uint64_t)mats > INT32_MAX)
            return sm_fail(err, SM_ERR_UNSUPPORTED, "tensor '%s' stacks more rows than SmallMind handles", name);
        if (mats > 0) rows *= mats;   /* the stack as one matrix of mats x rows */
        if (!sm_type_runnable(t->type)) {
            char list[160];
            sm_type_runnable_list(list, sizeof list);
            return sm_fail(err, SM_ERR_UNSUPPORTED, "tensor '%s' has type %s, which SmallMind cannot run (supported: %s)",
                           name, sm_type_name(t->type), list);
        }
        sm_status st = check_elem_alignment(t, name, err);
        if (st) return st;
        *mat = (sm_matrix){t->data, t->type, (int)rows, (int)cols, NULL};
        return SM_OK;
    }
    /* a vector, or a [cols, rows] block of them (stablelm 12B's per-head norms) */
    if (t->n_elements != (uint64_t)cols * (uint64_t)rows || t->ne[0] != (uint64_t)cols ||
        (rows > 1 && (t->n_dims != 2 || t->ne[1] != (uint64_t)rows)))
        return sm_fail(err, SM_ERR_FORMAT, "tensor '%s' has %llu elements, expected %lld", name,
                       (unsigned long long)t->n_elements, (long long)(cols * rows));
    if (t->type != SM_GGML_F32)
        return sm_fail(err, SM_ERR_UNSUPPORTED, "norm tensor '%s' has type %s; only F32 is supported", name,
                       sm_type_name(t->type));
    sm_status st = check_elem_alignment(t, name, err);
    if (st) return st;
    *sm_model_vector(m, role, layer) = t->data;
    return SM_OK;
}

/* Every tensor the architecture's table lists, model-wide ones first. */
static sm_status load_gguf_tensors(sm_model *m, sm_error *err) {
    const sm_arch_info *a = sm_arch_get(m->hp.arch);
    m->layers = sm_calloc((size_t)m->hp.n_layers, sizeof *m->layers);
    uint8_t *used = sm_calloc((size_t)m->gguf.n_tensors, 1);
    if (!m->layers || !used) {
        sm_free(used);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    }
    sm_status st = SM_OK;
    for (int i = 0; i < a->n_tensors && !st; i++) {
        int n = a->tensors[i].role < SM_T_LAYER_FIRST ? 1 : m->hp.n_layers;
        for (int l = 0; l < n && !st; l++) st = find_tensor(m, &a->tensors[i], l, used, err);
    }
    /* a tensor the architecture does not have (a variant this code does not run, such as
     * StableLM 2 12B's q/k norms) would be left out silently: refused, as llama.cpp refuses it;
     * a training checkpoint's optimizer moments ("opt.m.", "opt.v.": the trainer reads them) are not
     * the model's */
    for (uint64_t i = 0; i < m->gguf.n_tensors && !st; i++)
        if (!used[i] && !sm_gguf_str_starts(m->gguf.tensors[i].name, "opt.m.") &&
            !sm_gguf_str_starts(m->gguf.tensors[i].name, "opt.v."))
            st = sm_fail(err, SM_ERR_UNSUPPORTED, "tensor '%.*s' is not one a %s model has here: this variant of the "
                         "architecture is not supported", (int)(m->gguf.tensors[i].name.len > 80 ? 80 : m->gguf.tensors[i].name.len),
                         m->gguf.tensors[i].name.ptr, a->name);
    sm_free(used);
    if (st) return st;
    /* where Q, K and V may come fused or apart (phi2): one or the other, each bias with its matrix */
    for (int l = 0; l < m->hp.n_layers; l++) {
        const sm_layer *L = &m->layers[l];
        int apart = L->wq.data && L->wk.data && L->wv.data, any_apart = L->wq.data || L->wk.data || L->wv.data;
        int mixed = l > 0 && !L->wqkv.data != !m->layers[0].wqkv.data;
        if ((L->wqkv.data ? any_apart : !apart) || mixed)
            return sm_fail(err, SM_ERR_FORMAT, "layer %d: Q, K and V must be one blk.%d.attn_qkv.weight or all of attn_q, "
                           "attn_k and attn_v, the same in every layer (this file has %s)", l, l,
                           mixed ? "layers of both kinds" : L->wqkv.data ? "both" : "part of them");
        if ((L->b_qkv && !L->wqkv.data) || ((L->b_q || L->b_k || L->b_v) && !any_apart))
            return sm_fail(err, SM_ERR_FORMAT, "layer %d has a Q/K/V bias without its weight", l);
        /* experts (the router and every stack, gated) or a dense FFN, the same in every layer */
        int router = L->ffn_gate_inp.data != NULL, stacks = !!L->gate_exps.data + !!L->up_exps.data + !!L->down_exps.data;
        int kinds = router != !!m->layers[0].ffn_gate_inp.data;
        if ((router && stacks != 3) || (!router && stacks) || kinds)
            return sm_fail(err, SM_ERR_UNSUPPORTED, "layer %d: a mixture of experts needs blk.%d.ffn_gate_inp and the "
                           "gate, up and down expert stacks, in every layer (this file has %s)", l, l,
                           kinds ? "layers of both kinds" : router ? "not every stack" : "stacks without a router");
        if (router && (m->hp.n_expert < 1 || m->hp.n_expert_used < 1))
            return sm_fail(err, SM_ERR_FORMAT, "layer %d has experts but metadata '%s.expert_count' or "
                           "'expert_used_count' is missing", l, sm_arch_get(m->hp.arch)->name);
        if (router && (L->w_gate.data || L->w_up.data || L->w_down.data || L->b_gate || L->b_up || L->b_down))
            return sm_fail(err, SM_ERR_FORMAT, "layer %d has both experts and a dense FFN", l);
    }
    if (!m->output.data) m->output = m->tok_embd;  /* tied embeddings */
    return SM_OK;
}

/* What makes a parsed GGUF file a model: architecture, vocabulary,
 * hyperparameters, tensors. */
static sm_status load_gguf_model(sm_model *m, sm_error *err) {
    sm_status st;
    sm_gguf_str s;
    int r = sm_gguf_get_str(&m->gguf, "general.architecture", &s);
    if (r < 0) return sm_fail(err, SM_ERR_FORMAT, "metadata 'general.architecture' is not a string");
    if (r == 0) return sm_fail(err, SM_ERR_FORMAT, "metadata 'general.architecture' is missing");
    snprintf(m->arch, sizeof m->arch, "%.*s", (int)(s.len > 31 ? 31 : s.len), s.ptr);
    if (sm_gguf_get_str(&m->gguf, "general.name", &s) > 0)
        snprintf(m->name, sizeof m->name, "%.*s", (int)(s.len > 127 ? 127 : s.len), s.ptr);
    if ((st = sm_model_load_gguf_vocab(m, err))) return st;
    if (m->gguf.n_tensors == 0) return SM_OK;  /* a vocabulary-only file */
    int arch = sm_arch_by_name(m->arch, strlen(m->arch));
    if (arch < 0) {
        char names[432];   /* every architecture's name (sm_arch_names): what the 512-byte message holds */
        sm_arch_names(names, sizeof names);
        return sm_fail(err, SM_ERR_UNSUPPORTED, "architecture '%s' is not supported (supported: %s)", m->arch, names);
    }
    m->hp.arch = arch;
    m->hp.n_vocab = m->vocab.n;
    if ((st = sm_arch_read_hparams(&m->gguf, &m->hp, err)) || (st = load_gguf_tensors(m, err))) return st;
    const sm_arch_info *ai = sm_arch_get(arch);
    if (ai->norm_plain || ai->norm == SM_NORM_LAYER) {   /* dim ones, then dim (or a head's, if more) zeros */
        int dim = m->hp.dim, nz = m->hp.head_dim > dim ? m->hp.head_dim : dim;
        if (!(m->plain_norm = sm_calloc((size_t)dim + (size_t)nz, sizeof(float))))
            return sm_fail(err, SM_ERR_NOMEM, "out of memory");
        for (int i = 0; i < dim; i++) m->plain_norm[i] = 1.0f;
        const float *ones = m->plain_norm, *zeros = m->plain_norm + dim;
        if (ai->norm_plain) {   /* olmo: LayerNorm without weight or bias, as weight 1, bias 0 */
            m->output_norm = ones;
            for (int l = 0; l < m->hp.n_layers; l++) m->layers[l].attn_norm = m->layers[l].ffn_norm = ones;
        }
        /* a LayerNorm whose bias the file leaves out (mpt; olmo): bias 0 */
        if (m->output_norm && !m->output_norm_b) m->output_norm_b = zeros;
        for (int l = 0; l < m->hp.n_layers; l++) {
            sm_layer *L = &m->layers[l];
            if (L->attn_norm && !L->attn_norm_b) L->attn_norm_b = zeros;
            if (L->ffn_norm && !L->ffn_norm_b) L->ffn_norm_b = zeros;
        }
    }
    /* stablelm 12B: a file without the FFN's norm (SM_TF_DEFAULT) runs attention and the FFN in parallel from
     * the attention's norm, as llama.cpp's build_stablelm does */
    int fn_flags = 0;
    if (sm_arch_has(ai, SM_T_FFN_NORM, &fn_flags) && (fn_flags & SM_TF_DEFAULT)) {
        int with = 0;
        for (int l = 0; l < m->hp.n_layers; l++) with += m->layers[l].ffn_norm != NULL;
        if (with != 0 && with != m->hp.n_layers)
            return sm_fail(err, SM_ERR_FORMAT, "%d of %d layers have blk.N.ffn_norm.weight: all or none must",
                           with, m->hp.n_layers);
        if (with == 0) m->hp.parallel_residual = 1;
    }
    if (ai->pos == SM_POS_ALIBI && m->hp.max_alibi_bias > 0) {   /* once, not per token */
        if (!(m->alibi_slopes = sm_calloc((size_t)m->hp.n_heads, sizeof(float))))
            return sm_fail(err, SM_ERR_NOMEM, "out of memory");
        for (int h = 0; h < m->hp.n_heads; h++) m->alibi_slopes[h] = sm_alibi_slope_of(m->hp.n_heads, m->hp.max_alibi_bias, h);
    }
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

/* With inspect, a file SmallMind cannot run (an unknown architecture or
 * tokenizer, a weight type without kernels) still loads, for its listing:
 * the reason goes to m->unsupported and the model has no weights. */
static sm_status load_gguf(sm_model *m, const void *data, size_t size, int inspect, sm_error *err) {
    sm_status st = sm_gguf_parse(data, size, &m->gguf, err);
    if (st) return st;
    if ((st = align_tensor_data(m, err))) return st;
    snprintf(m->format, sizeof m->format, "GGUF v%u", (unsigned)m->gguf.version);
    sm_error why = {0};
    st = load_gguf_model(m, &why);
    if (st && inspect && st != SM_ERR_NOMEM) {
        snprintf(m->unsupported, sizeof m->unsupported, "%s", why.message);
        m->has_weights = 0;
        return SM_OK;
    }
    if (st && err) *err = why;
    return st;
}


static sm_status load_buffers(const void *data, size_t size, const void *tok, size_t tok_size, int inspect,
                              sm_model **out, sm_error *err) {
    *out = NULL;
    sm_model *m = sm_calloc(1, sizeof *m);
    if (!m) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    sm_status st;
    if (size >= 4 && memcmp(data, "GGUF", 4) == 0) {
        m->kind = SM_FORMAT_GGUF;
        st = load_gguf(m, data, size, inspect, err);
    } else {
        m->kind = SM_FORMAT_LLAMA2C;
        st = sm_model_load_llama2c(m, data, size, tok, tok_size, err);
    }
    if (st) {
        sm_model_free(m);
        return st;
    }
    sm_model_compute_id(m, data, size, tok, tok_size);
    *out = m;
    return SM_OK;
}

sm_status sm_model_load_buffers(const void *data, size_t size, const void *tok, size_t tok_size, sm_model **out,
                                sm_error *err) {
    return load_buffers(data, size, tok, tok_size, 0, out, err);
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
    sm_status st = p.no_mmap ? sm_read_file(path, &f, err) : sm_map_file(path, &f, err);
    if (st) return st;
    int is_gguf = f.size >= 4 && memcmp(f.data, "GGUF", 4) == 0;
    if (!is_gguf && p.tokenizer_path) {
        if ((st = sm_map_file(p.tokenizer_path, &tf, err))) {
            sm_unmap_file(&f);
            return st;
        }
    }
    st = load_buffers(f.data, f.size, tf.data, tf.size, p.inspect, out, err);
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
    sm_free(m->plain_norm);
    sm_free(m->alibi_slopes);
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
    if (m->has_weights && m->layers && m->layers[0].ffn_gate_inp.data) {
        info->n_expert = m->hp.n_expert;
        info->n_expert_used = m->hp.n_expert_used;
    }
    info->has_weights = m->has_weights;
    info->bos = m->vocab.bos;
    info->eos = m->vocab.eos;
    info->fim_pre = m->vocab.fim[SM_FIM_PRE], info->fim_suf = m->vocab.fim[SM_FIM_SUF];
    info->fim_mid = m->vocab.fim[SM_FIM_MID], info->fim_rep = m->vocab.fim[SM_FIM_REP];
    info->fim_sep = m->vocab.fim[SM_FIM_SEP];
    info->add_bos = m->vocab.add_bos;
    info->n_params = m->n_params;
    info->warning = m->warning[0] ? m->warning : NULL;
    info->unsupported = m->unsupported[0] ? m->unsupported : NULL;
    info->weights_bytes = m->weights_bytes;
}

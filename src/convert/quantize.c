/* quantize.c - converts a model's weight matrices to another element type
 * and writes the result as a new GGUF file (atomically). */
#include "convert.h"
#include "model/model.h"
#include "core/alloc.h"
#include "core/error.h"
#include "io/gguf_write.h"
#include "quant_mix.h"

#include <stdio.h>
#include <string.h>

/* llama.cpp's general.file_type values */
enum { FTYPE_F16 = 1, FTYPE_Q4_0 = 2, FTYPE_Q8_0 = 7, FTYPE_Q4_K_M = 15, FTYPE_Q6_K = 18 };
enum { FTYPE_Q4_1 = 3, FTYPE_Q5_0 = 8, FTYPE_Q5_1 = 9, FTYPE_IQ4_NL = 25, FTYPE_BF16 = 32 };
enum { FTYPE_Q3_K_M = 12, FTYPE_Q5_K_M = 17 };

static int writable(uint32_t type) { return sm_type(type) && sm_type(type)->from_float_ref; }

/* The single types `smallmind quantize` accepts (besides llama-quantize's
 * mixes, quant_mix.c): the type of the matrices, of the output matrix, and
 * the file type recorded. */
static const struct qtype { const char *name; uint32_t type, out, ftype; } qtypes[] = {
    {"F16", SM_GGML_F16, SM_GGML_F16, FTYPE_F16},      {"Q8_0", SM_GGML_Q8_0, SM_GGML_Q8_0, FTYPE_Q8_0},
    {"Q4_0", SM_GGML_Q4_0, SM_GGML_Q4_0, FTYPE_Q4_0},  {"Q4_K", SM_GGML_Q4_K, SM_GGML_Q6_K, FTYPE_Q4_K_M},
    {"Q4_0_MIXED", SM_GGML_Q4_0, SM_GGML_Q6_K, FTYPE_Q4_0},
    {"Q3_K", SM_GGML_Q3_K, SM_GGML_Q6_K, FTYPE_Q3_K_M}, {"Q5_K", SM_GGML_Q5_K, SM_GGML_Q6_K, FTYPE_Q5_K_M},
    {"Q4_1", SM_GGML_Q4_1, SM_GGML_Q4_1, FTYPE_Q4_1},  {"Q5_0", SM_GGML_Q5_0, SM_GGML_Q5_0, FTYPE_Q5_0},
    {"Q5_1", SM_GGML_Q5_1, SM_GGML_Q5_1, FTYPE_Q5_1},  {"IQ4_NL", SM_GGML_IQ4_NL, SM_GGML_IQ4_NL, FTYPE_IQ4_NL},
    {"BF16", SM_GGML_BF16, SM_GGML_BF16, FTYPE_BF16},
    {"F32", SM_GGML_F32, SM_GGML_F32, 0},   /* dequantized weights (reference values, for tests) */
};
#define N_QTYPES (sizeof qtypes / sizeof qtypes[0])

int sm_quant_type_parse(const char *t, uint32_t *type, uint32_t *output_type, uint32_t *ftype) {
    for (size_t i = 0; i < N_QTYPES; i++) {
        size_t n = strlen(qtypes[i].name);
        int eq = strlen(t) == n;
        for (size_t k = 0; eq && k < n; k++) eq = (t[k] & ~0x20) == (qtypes[i].name[k] & ~0x20) || t[k] == qtypes[i].name[k];
        if (eq) { *type = qtypes[i].type; *output_type = qtypes[i].out; *ftype = qtypes[i].ftype; return 1; }
    }
    return 0;
}

/* "F16, Q8_0, ... or BF16" */
static void type_names(char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_QTYPES && n < cap; i++) {
        int w = snprintf(buf + n, cap - n, "%s%s", i == 0 ? "" : i + 1 == N_QTYPES ? " or " : ", ", qtypes[i].name);
        if (w < 0) break;
        n += (size_t)w;
    }
}

uint32_t sm_convert_fit(uint32_t to, int64_t cols) {
    if (cols % sm_type(to)->blck) to = SM_GGML_Q8_0;
    if (cols % sm_type(to)->blck) to = SM_GGML_F16;
    return to;
}

sm_status sm_convert_tensor(const sm_gguf_tensor *t, const char *name, uint32_t to, float *row,
                            sm_convert_row_edit edit, void *user, unsigned char **out, size_t *bytes, sm_error *err) {
    const sm_type_traits *from = sm_type(t->type), *dst_t = sm_type(to);
    *out = NULL;
    if (!from->to_float || !dst_t->from_float_ref)
        return sm_fail(err, SM_ERR_UNSUPPORTED, "cannot convert %s from %s to %s", name, from->name, dst_t->name);
    int cols = (int)t->ne[0];
    uint64_t rows = t->n_elements / (uint64_t)cols;
    size_t row_bytes = sm_type_row_bytes(to, cols), src_bytes = sm_type_row_bytes(t->type, cols);
    unsigned char *dst = sm_alloc((size_t)rows * row_bytes);
    if (!dst) return sm_fail(err, SM_ERR_NOMEM, "out of memory converting %s", name);
    for (uint64_t r = 0; r < rows; r++) {
        from->to_float(row, (const char *)t->data + r * src_bytes, cols);
        if (edit) edit(user, row, (int)r, cols);
        dst_t->from_float_ref(dst + r * row_bytes, row, cols);
    }
    *out = dst;
    *bytes = (size_t)rows * row_bytes;
    return SM_OK;
}

sm_status sm_model_quantize_file(const char *in_path, const char *out_path, const char *type_name,
                                 void (*progress)(void *, int, int, const char *), void *user, sm_error *err) {
    uint32_t type = 0, out_type = 0, ftype = 0;
    /* llama-quantize's mixes first (Q6_K is one), then the single types */
    const sm_quant_mix *mix = sm_quant_mix_find(type_name);
    if (mix) {
        ftype = mix->ftype;
    } else if (!type_name || !sm_quant_type_parse(type_name, &type, &out_type, &ftype)) {
        char names[256];
        type_names(names, sizeof names);
        return sm_fail(err, SM_ERR_INVALID_ARG, "unknown type '%s' (use %s, or a llama-quantize mix: %s)",
                       type_name ? type_name : "", names, sm_quant_mix_names());
    }
    sm_model *m = NULL;
    sm_model_params mp = sm_model_default_params();
    mp.skip_repack = 1;   /* only read, never run */
    sm_status st = sm_model_load(in_path, &mp, &m, err);
    if (st) return st;
    if (m->kind != SM_FORMAT_GGUF || !m->has_weights) {
        sm_model_free(m);
        return sm_fail(err, SM_ERR_INVALID_ARG, "'%s' is not a GGUF model with weights", in_path);
    }
    const sm_gguf *g = &m->gguf;
    sm_gguf_writer *w = sm_gguf_writer_new();
    void **bufs = sm_calloc((size_t)g->n_tensors + 1, sizeof *bufs);
    float *row = NULL;
    if (!w || !bufs) { st = sm_fail(err, SM_ERR_NOMEM, "out of memory"); goto done; }
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const sm_gguf_kv *kv = &g->kv[i];
        if (sm_gguf_str_eq(kv->key, "general.file_type") || sm_gguf_str_eq(kv->key, "general.quantization_version"))
            continue;
        sm_gguf_put_copy(w, kv);
    }
    sm_gguf_put_u32(w, "general.file_type", ftype);
    sm_gguf_put_u32(w, "general.quantization_version", 2);
    int max_cols = 1;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if ((int)g->tensors[i].ne[0] > max_cols) max_cols = (int)g->tensors[i].ne[0];
    sm_mix_model mm = {m->hp.n_layers, m->hp.n_kv_heads > 0 ? m->hp.n_heads / m->hp.n_kv_heads : 1, 0, m->hp.n_expert};
    for (uint64_t i = 0; i < g->n_tensors; i++) mm.has_output |= sm_gguf_str_eq(g->tensors[i].name, "output.weight");
    row = sm_alloc((size_t)max_cols * sizeof(float));
    if (!row) { st = sm_fail(err, SM_ERR_NOMEM, "out of memory"); goto done; }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sm_gguf_tensor *t = &g->tensors[i];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(t->name.len > 255 ? 255 : t->name.len), t->name.ptr);
        uint32_t to = t->type;
        if (mix) {
            if (sm_quant_mix_converts(name, (int)t->n_dims) && sm_type_runnable(t->type))
                to = sm_quant_mix_type(mix, name, (int64_t)t->ne[0], &mm, writable);
        } else if ((t->n_dims == 2 || t->n_dims == 3) && sm_type_runnable(t->type) && !strstr(name, "ffn_gate_inp") &&
                   !strstr(name, "_norm.weight")) {
            /* matrices and stacks of them (experts), not a mixture of experts' router nor a block of norm
             * weights (stablelm 12B's per-head ones), as llama-quantize */
            int is_output = !strcmp(name, "output.weight");
            to = is_output ? out_type : type;
            to = sm_convert_fit(to, (int64_t)t->ne[0]);
        }
        if (to == t->type) {
            sm_gguf_add_tensor(w, name, t->type, (int)t->n_dims, t->ne, t->data, t->n_bytes);
        } else {
            unsigned char *dst = NULL;
            size_t bytes = 0;
            if ((st = sm_convert_tensor(t, name, to, row, NULL, NULL, &dst, &bytes, err))) goto done;
            bufs[i] = dst;
            sm_gguf_add_tensor(w, name, to, (int)t->n_dims, t->ne, dst, bytes);
        }
        if (progress) progress(user, (int)i + 1, (int)g->n_tensors, name);
    }
    st = sm_gguf_writer_save(w, out_path, err);
done:
    if (bufs)
        for (uint64_t i = 0; i < g->n_tensors; i++) sm_free(bufs[i]);
    sm_free(bufs);
    sm_free(row);
    sm_gguf_writer_free(w);
    sm_model_free(m);
    return st;
}

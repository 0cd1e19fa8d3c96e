/* merge_lora.c - bakes LoRA adapters into a model's weights (what
 * llama.cpp's llama-export-lora does): every adapted matrix becomes
 * W + sum_i scale_i * alpha_i / rank_i * B_i A_i, row by row dequantized to
 * F32, summed, and quantized back to its own type or to the one asked for;
 * the rest is copied (or converted). The result is written atomically. */
#include "convert.h"
#include "model/lora.h"
#include "core/alloc.h"
#include "core/error.h"
#include "io/gguf_write.h"

#include <stdio.h>
#include <string.h>

#define MAX_ADAPTERS 16

/* Adds each adapter's row `row` of scale * B A to out (cols floats). */
static void add_deltas(float *out, sm_adapter *const *ad, const float *scales, int n, const char *name, int row,
                       int cols) {
    for (int i = 0; i < n; i++)
        for (int k = 0; k < ad[i]->n_pairs; k++) {
            const sm_lora_pair *p = &ad[i]->pairs[k];
            char pname[96];
            sm_tensor_name(p->role, p->layer < 0 ? 0 : p->layer, pname, sizeof pname);
            if (strcmp(pname, name)) continue;
            float s = sm_lora_pair_scale(ad[i], p, scales ? scales[i] : 1.0f);
            for (int j = 0; j < p->rank; j++) {
                float b = s * p->bt[(size_t)j * p->rows + row];
                const float *a = p->a + (size_t)j * cols;
                for (int c = 0; c < cols; c++) out[c] += b * a[c];
            }
        }
}

/* add_deltas as sm_convert_tensor's row edit */
typedef struct deltas_ctx {
    sm_adapter *const *ad;
    const float *scales;
    int n;
    const char *name;
} deltas_ctx;

static void add_deltas_row(void *user, float *row, int r, int cols) {
    const deltas_ctx *d = user;
    add_deltas(row, d->ad, d->scales, d->n, d->name, r, cols);
}

static int adapted(sm_adapter *const *ad, int n, const char *name) {
    for (int i = 0; i < n; i++)
        for (int k = 0; k < ad[i]->n_pairs; k++) {
            char pname[96];
            sm_tensor_name(ad[i]->pairs[k].role, ad[i]->pairs[k].layer < 0 ? 0 : ad[i]->pairs[k].layer, pname,
                           sizeof pname);
            if (!strcmp(pname, name)) return 1;
        }
    return 0;
}

sm_status sm_model_merge_lora_file(const char *base_path, const char *const *adapter_paths, const float *scales,
                                   int n_adapters, const char *out_path, const char *type_name, sm_error *err) {
    uint32_t type = 0, out_type = 0, ftype = 0;
    int convert_all = type_name != NULL;
    if (n_adapters < 1 || n_adapters > MAX_ADAPTERS || !adapter_paths || !base_path || !out_path)
        return sm_fail(err, SM_ERR_INVALID_ARG, "merging needs a base, 1 to %d adapters and an output", MAX_ADAPTERS);
    if (type_name && (!strcmp(type_name, "F32") || !strcmp(type_name, "f32"))) {
        type = out_type = SM_GGML_F32;
    } else if (type_name && !sm_quant_type_parse(type_name, &type, &out_type, &ftype)) {
        return sm_fail(err, SM_ERR_INVALID_ARG,
                       "unknown type '%s' (use one of the single types `smallmind quantize` names, such as F32, F16, "
                       "Q8_0, Q4_0, Q4_K; llama-quantize's mixes are not taken here)", type_name);
    }
    sm_model *m = NULL;
    sm_model_params mp = sm_model_default_params();
    mp.skip_repack = 1;
    sm_status st = sm_model_load(base_path, &mp, &m, err);
    if (st) return st;
    sm_adapter *ad[MAX_ADAPTERS] = {0};
    sm_gguf_writer *w = NULL;
    void **bufs = NULL;
    float *row = NULL;
    const sm_gguf *g = &m->gguf;
    if (m->kind != SM_FORMAT_GGUF || !m->has_weights) {
        st = sm_fail(err, SM_ERR_INVALID_ARG, "'%s' is not a GGUF model with weights", base_path);
        goto done;
    }
    const char *tmpl = NULL;
    for (int i = 0; i < n_adapters; i++) {
        if ((st = sm_adapter_load(m, adapter_paths[i], &ad[i], err))) goto done;
        if (!tmpl) tmpl = ad[i]->chat_template;
    }
    w = sm_gguf_writer_new();
    bufs = sm_calloc((size_t)g->n_tensors + 1, sizeof *bufs);
    int max_cols = 1;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if ((int)g->tensors[i].ne[0] > max_cols) max_cols = (int)g->tensors[i].ne[0];
    row = sm_alloc((size_t)max_cols * sizeof(float));
    if (!w || !bufs || !row) { st = sm_fail(err, SM_ERR_NOMEM, "out of memory"); goto done; }
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const sm_gguf_kv *kv = &g->kv[i];
        if (convert_all && (sm_gguf_str_eq(kv->key, "general.file_type") ||
                            sm_gguf_str_eq(kv->key, "general.quantization_version")))
            continue;
        sm_gguf_put_copy(w, kv);
    }
    if (convert_all) {
        sm_gguf_put_u32(w, "general.file_type", ftype);
        if (type != SM_GGML_F32) sm_gguf_put_u32(w, "general.quantization_version", 2);
    }
    if (tmpl && !sm_gguf_find(g, "tokenizer.chat_template")) sm_gguf_put_str(w, "tokenizer.chat_template", tmpl);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sm_gguf_tensor *t = &g->tensors[i];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(t->name.len > 255 ? 255 : t->name.len), t->name.ptr);
        int matrix = t->n_dims == 2 && sm_type_runnable(t->type), delta = matrix && adapted(ad, n_adapters, name);
        uint32_t to = t->type;
        if (matrix && convert_all) {
            to = !strcmp(name, "output.weight") ? out_type : type;
            to = sm_convert_fit(to, (int64_t)t->ne[0]);   /* as quantize does */
        }
        if (!delta && to == t->type) {
            sm_gguf_add_tensor(w, name, t->type, (int)t->n_dims, t->ne, t->data, t->n_bytes);
            continue;
        }
        deltas_ctx dc = {ad, scales, n_adapters, name};
        unsigned char *dst = NULL;
        size_t bytes = 0;
        if ((st = sm_convert_tensor(t, name, to, row, delta ? add_deltas_row : NULL, &dc, &dst, &bytes, err))) goto done;
        bufs[i] = dst;
        sm_gguf_add_tensor(w, name, to, (int)t->n_dims, t->ne, dst, bytes);
    }
    st = sm_gguf_writer_save(w, out_path, err);
done:
    if (bufs)
        for (uint64_t i = 0; i < g->n_tensors; i++) sm_free(bufs[i]);
    sm_free(bufs);
    sm_free(row);
    sm_gguf_writer_free(w);
    for (int i = 0; i < n_adapters && i < MAX_ADAPTERS; i++) sm_adapter_free(ad[i]);
    sm_model_free(m);
    return st;
}

/* adapter.c - loading a LoRA adapter in llama.cpp's GGUF adapter format
 * against a base model. The format, as llama.cpp's convert_lora_to_gguf.py
 * writes it and src/llama-adapter.cpp reads it (c392e509):
 *   general.type = "adapter", adapter.type = "lora",
 *   general.architecture = the base model's, adapter.lora.alpha (f32; absent = 0),
 *   for each adapted base tensor NAME two tensors NAME.lora_a with ne = [cols, rank]
 *   (rank rows of the base's input width) and NAME.lora_b with ne = [rank, rows];
 *   tensors ending in _norm.weight are ignored, any other name is an error.
 * Both are converted to F32 here (B transposed); the file is not kept open. */
#include "lora.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/mapfile.h"

#include <stdio.h>
#include <string.h>

static int ends_with(sm_gguf_str s, const char *suffix) {
    size_t n = strlen(suffix);
    return s.len >= n && memcmp(s.ptr + s.len - n, suffix, n) == 0;
}

static int str_is(const sm_gguf *g, const char *key, const char *want) {
    sm_gguf_str s;
    return sm_gguf_get_str(g, key, &s) == 1 && sm_gguf_str_eq(s, want);
}

/* The tensor NAME + suffix of the adapter, and its index (for marking it used). */
static const sm_gguf_tensor *find_part(const sm_gguf *g, const char *name, const char *suffix, uint64_t *index) {
    char full[160];
    snprintf(full, sizeof full, "%s%s", name, suffix);
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (sm_gguf_str_eq(g->tensors[i].name, full)) {
            *index = i;
            return &g->tensors[i];
        }
    return NULL;
}

static sm_status convert(const sm_gguf_tensor *t, float *out, const char *what, sm_error *err) {
    const sm_type_traits *tt = sm_type(t->type);
    if (!tt || !tt->to_float || !t->data)
        return sm_fail(err, SM_ERR_UNSUPPORTED, "LoRA tensor '%s' has type %s, which cannot be read", what,
                       sm_type_name(t->type));
    int cols = (int)t->ne[0];
    size_t rb = sm_type_row_bytes(t->type, cols);
    for (uint64_t r = 0; r < t->ne[1]; r++) tt->to_float(out + r * (uint64_t)cols, (const char *)t->data + r * rb, cols);
    return SM_OK;
}

/* One pass over the base model's matrices: count (out == NULL) or fill. */
static sm_status match(sm_adapter *ad, const sm_gguf *g, uint8_t *used, int fill, size_t *floats, sm_error *err) {
    sm_model *m = (sm_model *)ad->model;
    const sm_arch_info *arch = sm_arch_get(m->hp.arch);
    size_t off = 0;
    int n = 0;
    for (int i = 0; i < arch->n_tensors; i++) {
        int role = arch->tensors[i].role, global = role < SM_T_LAYER_FIRST;
        for (int l = 0; l < (global ? 1 : m->hp.n_layers); l++) {
            char name[96];
            sm_tensor_name(role, l, name, sizeof name);
            uint64_t ia = 0, ib = 0;
            const sm_gguf_tensor *a = find_part(g, name, ".lora_a", &ia), *b = find_part(g, name, ".lora_b", &ib);
            if (!a && !b) continue;
            if (!a || !b)
                return sm_fail(err, SM_ERR_FORMAT, "LoRA tensor pair for '%s' is missing its %s", name,
                               a ? "lora_b" : "lora_a");
            if (role == SM_T_TOKEN_EMBD || role == SM_T_POS_EMBD)
                return sm_fail(err, SM_ERR_UNSUPPORTED, "adapters of the embeddings ('%s') are not supported", name);
            if (role == SM_T_FFN_GATE_EXPS || role == SM_T_FFN_UP_EXPS || role == SM_T_FFN_DOWN_EXPS)
                return sm_fail(err, SM_ERR_UNSUPPORTED, "adapters of a mixture of experts' experts ('%s') are not "
                               "supported", name);
            const sm_matrix *w = sm_model_matrix(m, role, l);
            if (!w || !w->data || !sm_gguf_find_tensor(&m->gguf, name))
                return sm_fail(err, SM_ERR_FORMAT, "LoRA tensor '%s' does not exist in the base model", name);
            if (a->n_dims != 2 || b->n_dims != 2 || a->ne[0] != (uint64_t)w->cols || b->ne[1] != (uint64_t)w->rows)
                return sm_fail(err, SM_ERR_FORMAT,
                               "LoRA tensors of '%s' have shapes [%llu, %llu] and [%llu, %llu]; the base is [%d, %d]",
                               name, (unsigned long long)a->ne[0], (unsigned long long)a->ne[1],
                               (unsigned long long)b->ne[0], (unsigned long long)b->ne[1], w->cols, w->rows);
            if (a->ne[1] != b->ne[0] || a->ne[1] < 1 || a->ne[1] > 65536)
                return sm_fail(err, SM_ERR_FORMAT, "LoRA tensors of '%s' disagree on the rank (%llu and %llu)", name,
                               (unsigned long long)a->ne[1], (unsigned long long)b->ne[0]);
            int rank = (int)a->ne[1];
            used[ia] = used[ib] = 1;
            if (fill) {
                sm_lora_pair *p = &ad->pairs[n];
                *p = (sm_lora_pair){w, role, global ? -1 : l, rank, w->rows, w->cols, ad->mem + off, NULL};
                p->bt = p->a + (size_t)rank * w->cols;
                char what[112];
                snprintf(what, sizeof what, "%s.lora_a", name);
                sm_status st = convert(a, p->a, what, err);
                if (st) return st;
                /* B (rows x rank) read row by row into a temporary place: the end of bt */
                snprintf(what, sizeof what, "%s.lora_b", name);
                float *tmp = ad->mem + off + (size_t)rank * (w->cols + w->rows);
                if ((st = convert(b, tmp, what, err))) return st;
                for (int r = 0; r < w->rows; r++)
                    for (int j = 0; j < rank; j++) p->bt[(size_t)j * w->rows + r] = tmp[(size_t)r * rank + j];
                if (rank > ad->max_rank) ad->max_rank = rank;
            }
            off += (size_t)rank * (w->cols + w->rows);
            n++;
        }
    }
    *floats = off;
    ad->n_pairs = n;
    return SM_OK;
}

static sm_status load_gguf(sm_adapter *ad, const sm_gguf *g, sm_error *err) {
    const sm_model *m = ad->model;
    if (!str_is(g, "general.type", "adapter")) return sm_fail(err, SM_ERR_FORMAT, "general.type is not 'adapter'");
    if (!str_is(g, "adapter.type", "lora")) return sm_fail(err, SM_ERR_UNSUPPORTED, "adapter.type is not 'lora'");
    if (!str_is(g, "general.architecture", m->arch))
        return sm_fail(err, SM_ERR_INVALID_ARG, "the adapter is not for a %s model", m->arch);
    double alpha = 0;
    if (sm_gguf_get_float(g, "adapter.lora.alpha", &alpha) < 0)
        return sm_fail(err, SM_ERR_FORMAT, "adapter.lora.alpha is not a number");
    ad->alpha = (float)alpha;
    uint8_t *used = sm_calloc((size_t)g->n_tensors + 1, 1);
    if (!used) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    size_t floats = 0, max_b = 0;
    sm_status st = match(ad, g, used, 0, &floats, err);
    for (uint64_t i = 0; !st && i < g->n_tensors; i++) {
        const sm_gguf_tensor *t = &g->tensors[i];
        if (t->n_dims == 2 && ends_with(t->name, ".lora_b") && t->n_elements > max_b) max_b = t->n_elements;
        if (used[i] || ends_with(t->name, "_norm.weight")) continue;
        int lora = ends_with(t->name, ".lora_a") || ends_with(t->name, ".lora_b");
        st = sm_fail(err, SM_ERR_FORMAT, lora ? "LoRA tensor '%.*s' does not exist in the base model"
                                              : "tensor '%.*s' is not a LoRA tensor (.lora_a / .lora_b)",
                     (int)(t->name.len > 120 ? 120 : t->name.len), t->name.ptr);
    }
    if (!st) {
        ad->pairs = sm_calloc((size_t)ad->n_pairs + 1, sizeof *ad->pairs);
        ad->mem = sm_alloc_aligned((floats + max_b + 1) * sizeof(float));   /* + room to read one B */
        if (!ad->pairs || !ad->mem) st = sm_fail(err, SM_ERR_NOMEM, "out of memory for the adapter");
    }
    if (!st) st = match(ad, g, used, 1, &floats, err);
    if (!st && ad->n_pairs == 0) st = sm_fail(err, SM_ERR_FORMAT, "the adapter has no LoRA tensors");
    sm_gguf_str tmpl;
    if (!st && sm_gguf_get_str(g, "tokenizer.chat_template", &tmpl) == 1) {
        if (!(ad->chat_template = sm_alloc(tmpl.len + 1))) st = sm_fail(err, SM_ERR_NOMEM, "out of memory");
        else {
            memcpy(ad->chat_template, tmpl.ptr, tmpl.len);
            ad->chat_template[tmpl.len] = '\0';
        }
    }
    sm_free(used);
    return st;
}

sm_status sm_adapter_load_buffer(const sm_model *model, const void *data, size_t size, sm_adapter **out,
                                 sm_error *err) {
    *out = NULL;
    if (!model || !model->has_weights || model->kind != SM_FORMAT_GGUF)
        return sm_fail(err, SM_ERR_INVALID_ARG, "an adapter needs a GGUF base model with weights");
    sm_adapter *ad = sm_calloc(1, sizeof *ad);
    if (!ad) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    ad->model = model;
    sm_gguf g;
    sm_status st = sm_gguf_parse(data, size, &g, err);
    if (!st) {
        st = load_gguf(ad, &g, err);
        sm_gguf_free(&g);
    }
    if (st) {
        sm_adapter_free(ad);
        return st;
    }
    *out = ad;
    return SM_OK;
}

sm_status sm_adapter_load(const sm_model *model, const char *path, sm_adapter **out, sm_error *err) {
    if (!out) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_adapter_load: out is NULL");
    *out = NULL;
    if (!path) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_adapter_load: no path");
    sm_mapped_file f;
    sm_status st = sm_map_file(path, &f, err);
    if (st) return st;
    st = sm_adapter_load_buffer(model, f.data, f.size, out, err);
    sm_unmap_file(&f);
    if (st) sm_error_prefix(err, "%s", path);
    return st;
}

void sm_adapter_free(sm_adapter *ad) {
    if (!ad) return;
    sm_free(ad->pairs);
    sm_free(ad->mem);
    sm_free(ad->chat_template);
    sm_free(ad);
}

void sm_adapter_get_info(const sm_adapter *ad, sm_adapter_info *info) {
    memset(info, 0, sizeof *info);
    info->alpha = ad->alpha;
    info->n_matrices = ad->n_pairs;
    info->max_rank = ad->max_rank;
    info->chat_template = ad->chat_template;
}

float sm_lora_pair_scale(const sm_adapter *a, const sm_lora_pair *p, float scale) {
    return a->alpha != 0.0f ? scale * a->alpha / (float)p->rank : scale;
}

const sm_lora_pair *sm_lora_find(const sm_adapter *a, const sm_matrix *w) {
    for (int i = 0; i < a->n_pairs; i++)
        if (a->pairs[i].target == w) return &a->pairs[i];
    return NULL;
}

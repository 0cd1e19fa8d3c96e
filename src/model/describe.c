/* describe.c - metadata and tensor listings of a loaded model, rendered as
 * text for `smallmind inspect` and for API users. */
#include "model.h"

#include <stdio.h>
#include <string.h>

/* Printable, quoted, escaped and shortened. */
static size_t render_str(char *out, size_t cap, const char *s, uint64_t len, size_t max_chars) {
    size_t w = 0;
    if (cap < 8) { if (cap) out[0] = '\0'; return 0; }
    out[w++] = '"';
    for (uint64_t i = 0; i < len && w + 8 < cap; i++) {
        if (i >= max_chars) { memcpy(out + w, "...", 3); w += 3; break; }
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { out[w++] = '\\'; out[w++] = (char)c; }
        else if (c == '\n') { out[w++] = '\\'; out[w++] = 'n'; }
        else if (c == '\t') { out[w++] = '\\'; out[w++] = 't'; }
        else if (c < 0x20 || c == 0x7F) w += (size_t)snprintf(out + w, cap - w, "\\x%02x", c);
        else out[w++] = (char)c;
    }
    out[w++] = '"';
    out[w] = '\0';
    return w;
}

static size_t render_scalar(char *out, size_t cap, uint32_t type, const unsigned char *p) {
    switch (type) {
    case SM_GGUF_UINT8: return (size_t)snprintf(out, cap, "%u", p[0]);
    case SM_GGUF_INT8: return (size_t)snprintf(out, cap, "%d", (int8_t)p[0]);
    case SM_GGUF_BOOL: return (size_t)snprintf(out, cap, "%s", p[0] ? "true" : "false");
    case SM_GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); return (size_t)snprintf(out, cap, "%u", v); }
    case SM_GGUF_INT16: { int16_t v; memcpy(&v, p, 2); return (size_t)snprintf(out, cap, "%d", v); }
    case SM_GGUF_UINT32: { uint32_t v; memcpy(&v, p, 4); return (size_t)snprintf(out, cap, "%u", v); }
    case SM_GGUF_INT32: { int32_t v; memcpy(&v, p, 4); return (size_t)snprintf(out, cap, "%d", v); }
    case SM_GGUF_FLOAT32: { float v; memcpy(&v, p, 4); return (size_t)snprintf(out, cap, "%g", v); }
    case SM_GGUF_UINT64: { uint64_t v; memcpy(&v, p, 8); return (size_t)snprintf(out, cap, "%llu", (unsigned long long)v); }
    case SM_GGUF_INT64: { int64_t v; memcpy(&v, p, 8); return (size_t)snprintf(out, cap, "%lld", (long long)v); }
    case SM_GGUF_FLOAT64: { double v; memcpy(&v, p, 8); return (size_t)snprintf(out, cap, "%g", v); }
    }
    return (size_t)snprintf(out, cap, "?");
}

static const char *l2c_fields[] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                                   "seq_len"};

int sm_model_meta_count(const sm_model *m) {
    return m->kind == SM_FORMAT_GGUF ? (int)m->gguf.n_kv : 7;
}

int sm_model_meta(const sm_model *m, int i, char *key, size_t key_cap, char *type, size_t type_cap, char *value,
                  size_t value_cap) {
    if (i < 0 || i >= sm_model_meta_count(m) || value_cap < 64) return 0;
    if (m->kind != SM_FORMAT_GGUF) {
        snprintf(key, key_cap, "llama2c.%s", l2c_fields[i]);
        snprintf(type, type_cap, "i32");
        snprintf(value, value_cap, "%d", m->l2c_header[i]);
        return 1;
    }
    const sm_gguf_kv *kv = &m->gguf.kv[i];
    snprintf(key, key_cap, "%.*s", (int)(kv->key.len > 1000 ? 1000 : kv->key.len), kv->key.ptr);
    if (kv->type == SM_GGUF_STRING) {
        snprintf(type, type_cap, "string");
        render_str(value, value_cap, kv->v.s.ptr, kv->v.s.len, 60);
    } else if (kv->type == SM_GGUF_ARRAY) {
        snprintf(type, type_cap, "%s[%llu]", sm_gguf_type_name(kv->arr_type), (unsigned long long)kv->arr_n);
        size_t w = (size_t)snprintf(value, value_cap, "[");
        const unsigned char *cur = kv->arr_data;
        uint64_t shown = kv->arr_n < 6 ? kv->arr_n : 6;
        for (uint64_t k = 0; k < shown && kv->arr_type != SM_GGUF_ARRAY && w + 40 < value_cap; k++) {
            if (k) w += (size_t)snprintf(value + w, value_cap - w, ", ");
            if (kv->arr_type == SM_GGUF_STRING) {
                sm_gguf_str s = sm_gguf_arr_next_str(&cur);
                w += render_str(value + w, value_cap - w - 8, s.ptr, s.len, 20);
            } else {
                uint64_t es = kv->arr_type == SM_GGUF_UINT8 || kv->arr_type == SM_GGUF_INT8 || kv->arr_type == SM_GGUF_BOOL ? 1
                            : kv->arr_type == SM_GGUF_UINT16 || kv->arr_type == SM_GGUF_INT16 ? 2
                            : kv->arr_type == SM_GGUF_UINT64 || kv->arr_type == SM_GGUF_INT64 || kv->arr_type == SM_GGUF_FLOAT64 ? 8 : 4;
                w += render_scalar(value + w, value_cap - w, kv->arr_type, kv->arr_data + k * es);
            }
        }
        snprintf(value + w, value_cap - w, "%s]", kv->arr_n > shown || kv->arr_type == SM_GGUF_ARRAY ? ", ..." : "");
    } else {
        snprintf(type, type_cap, "%s", sm_gguf_type_name(kv->type));
        unsigned char raw[8];
        if (kv->type == SM_GGUF_FLOAT32) { float f = (float)kv->v.f; memcpy(raw, &f, 4); }
        else memcpy(raw, &kv->v, 8);
        render_scalar(value, value_cap, kv->type, raw);
    }
    return 1;
}

/* llama2.c weight arrays in file order: name, elements (stacked over layers). */
static int l2c_tensor(const sm_model *m, int i, sm_tensor_info *t) {
    const sm_hparams *hp = &m->hp;
    uint64_t dim = (uint64_t)hp->dim, hid = (uint64_t)hp->ffn_dim, L = (uint64_t)hp->n_layers;
    uint64_t kv = (uint64_t)hp->n_kv_heads * hp->head_dim, V = (uint64_t)hp->n_vocab;
    uint64_t fc = (uint64_t)hp->n_ctx_train * hp->head_dim / 2;
    struct { const char *name; uint64_t a, b, c; } rows[] = {
        {"token_embedding", dim, V, 1}, {"rms_att", dim, L, 1}, {"wq", dim, dim, L}, {"wk", dim, kv, L},
        {"wv", dim, kv, L}, {"wo", dim, dim, L}, {"rms_ffn", dim, L, 1}, {"w1", dim, hid, L},
        {"w2", hid, dim, L}, {"w3", dim, hid, L}, {"rms_final", dim, 1, 1}, {"freq_cis_real", fc, 1, 1},
        {"freq_cis_imag", fc, 1, 1}, {"wcls", dim, V, 1},
    };
    int n = m->l2c_header[5] < 0 ? 14 : 13;
    if (i < 0 || i >= n) return 0;
    uint64_t off = 28;
    for (int k = 0; k < i; k++) off += rows[k].a * rows[k].b * rows[k].c * 4;
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", rows[i].name);
    t->type = "F32";
    t->ne[0] = rows[i].a; t->ne[1] = rows[i].b; t->ne[2] = rows[i].c; t->ne[3] = 1;
    t->n_dims = rows[i].c > 1 ? 3 : rows[i].b > 1 ? 2 : 1;
    t->offset = off;
    t->n_bytes = rows[i].a * rows[i].b * rows[i].c * 4;
    return 1;
}

int sm_model_tensor_count(const sm_model *m) {
    if (m->kind == SM_FORMAT_GGUF) return (int)m->gguf.n_tensors;
    return m->l2c_header[5] < 0 ? 14 : 13;
}

int sm_model_tensor(const sm_model *m, int i, sm_tensor_info *t) {
    if (m->kind != SM_FORMAT_GGUF) return l2c_tensor(m, i, t);
    if (i < 0 || (uint64_t)i >= m->gguf.n_tensors) return 0;
    const sm_gguf_tensor *g = &m->gguf.tensors[i];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%.*s", (int)(g->name.len > 127 ? 127 : g->name.len), g->name.ptr);
    t->type = sm_type_name(g->type);
    t->n_dims = (int)g->n_dims;
    memcpy(t->ne, g->ne, sizeof t->ne);
    t->offset = m->gguf.data_offset + g->offset;
    t->n_bytes = g->n_bytes;
    return 1;
}

int sm_token_text(const sm_model *m, sm_token id, const char **text) {
    if (id < 0 || id >= m->vocab.n) return -1;
    *text = m->vocab.block + m->vocab.text_off[id];
    return (int)m->vocab.text_len[id];
}

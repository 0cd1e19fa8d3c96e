/* gguf.c - GGUF header parser (see gguf.h for the contract).
 *
 * The format: magic "GGUF", u32 version, u64 tensor count, u64 metadata
 * count, then metadata (key string, u32 type, value), then tensor infos
 * (name, u32 n_dims, u64 dims[n_dims], u32 ggml type, u64 offset), padding to
 * general.alignment, then the data section. All little-endian. */
#include "gguf.h"
#include "core/alloc.h"
#include "core/error.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct cursor {
    const unsigned char *p, *end;
} cursor;

static size_t remaining(const cursor *c) { return (size_t)(c->end - c->p); }

static int take(cursor *c, void *dst, size_t n) {
    if (remaining(c) < n) return 0;
    memcpy(dst, c->p, n);
    c->p += n;
    return 1;
}

static int take_u32(cursor *c, uint32_t *v) { return take(c, v, 4); }
static int take_u64(cursor *c, uint64_t *v) { return take(c, v, 8); }

static int take_str(cursor *c, sm_gguf_str *s) {
    uint64_t len;
    if (!take_u64(c, &len)) return 0;
    if (len > remaining(c)) return 0;
    s->ptr = (const char *)c->p;
    s->len = len;
    c->p += len;
    return 1;
}

static size_t scalar_size(uint32_t type) {
    switch (type) {
    case SM_GGUF_UINT8: case SM_GGUF_INT8: case SM_GGUF_BOOL: return 1;
    case SM_GGUF_UINT16: case SM_GGUF_INT16: return 2;
    case SM_GGUF_UINT32: case SM_GGUF_INT32: case SM_GGUF_FLOAT32: return 4;
    case SM_GGUF_UINT64: case SM_GGUF_INT64: case SM_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

const char *sm_gguf_type_name(uint32_t type) {
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    return type < SM_GGUF_TYPE_COUNT ? names[type] : "?";
}

int sm_gguf_str_eq(sm_gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

int sm_gguf_str_starts(sm_gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len >= n && memcmp(s.ptr, c, n) == 0;
}

/* Skips (validating) the payload of an array; nested arrays are allowed to a
 * small depth so a hostile file cannot recurse us off the stack. */
static int skip_array(cursor *c, uint32_t type, uint64_t n, int depth) {
    size_t es = scalar_size(type);
    if (es) {
        if (n > remaining(c) / es) return 0;
        c->p += n * es;
        return 1;
    }
    if (type == SM_GGUF_STRING) {
        for (uint64_t i = 0; i < n; i++) {
            sm_gguf_str s;
            if (!take_str(c, &s)) return 0;
        }
        return 1;
    }
    if (type == SM_GGUF_ARRAY && depth < 4) {
        for (uint64_t i = 0; i < n; i++) {
            uint32_t t;
            uint64_t m;
            if (!take_u32(c, &t) || !take_u64(c, &m)) return 0;
            if (!skip_array(c, t, m, depth + 1)) return 0;
        }
        return 1;
    }
    return 0;
}

static sm_status parse_kv(cursor *c, sm_gguf_kv *kv, uint64_t index, sm_error *err) {
    if (!take_str(c, &kv->key))
        return sm_fail(err, SM_ERR_FORMAT, "metadata entry %llu: key runs past the end of the file",
                       (unsigned long long)index);
    if (!take_u32(c, &kv->type))
        return sm_fail(err, SM_ERR_FORMAT, "metadata '%.*s': file ends before its type",
                       (int)(kv->key.len > 200 ? 200 : kv->key.len), kv->key.ptr);
    int klen = (int)(kv->key.len > 200 ? 200 : kv->key.len);
    uint32_t t = kv->type;
    kv->raw = c->p - 4;
    size_t es = scalar_size(t);
    if (es) {
        unsigned char raw[8] = {0};
        if (!take(c, raw, es))
            return sm_fail(err, SM_ERR_FORMAT, "metadata '%.*s': value runs past the end of the file", klen, kv->key.ptr);
        switch (t) {
        case SM_GGUF_UINT8: case SM_GGUF_BOOL: kv->v.u = raw[0]; break;
        case SM_GGUF_INT8: kv->v.i = (int8_t)raw[0]; break;
        case SM_GGUF_UINT16: { uint16_t x; memcpy(&x, raw, 2); kv->v.u = x; break; }
        case SM_GGUF_INT16: { int16_t x; memcpy(&x, raw, 2); kv->v.i = x; break; }
        case SM_GGUF_UINT32: { uint32_t x; memcpy(&x, raw, 4); kv->v.u = x; break; }
        case SM_GGUF_INT32: { int32_t x; memcpy(&x, raw, 4); kv->v.i = x; break; }
        case SM_GGUF_FLOAT32: { float x; memcpy(&x, raw, 4); kv->v.f = x; break; }
        case SM_GGUF_UINT64: memcpy(&kv->v.u, raw, 8); break;
        case SM_GGUF_INT64: memcpy(&kv->v.i, raw, 8); break;
        case SM_GGUF_FLOAT64: memcpy(&kv->v.f, raw, 8); break;
        }
        if (t == SM_GGUF_BOOL && kv->v.u > 1)
            return sm_fail(err, SM_ERR_FORMAT, "metadata '%.*s': bool value %u is not 0 or 1", klen,
                           kv->key.ptr, (unsigned)kv->v.u);
        return SM_OK;
    }
    if (t == SM_GGUF_STRING) {
        if (!take_str(c, &kv->v.s))
            return sm_fail(err, SM_ERR_FORMAT, "metadata '%.*s': string runs past the end of the file", klen, kv->key.ptr);
        return SM_OK;
    }
    if (t == SM_GGUF_ARRAY) {
        if (!take_u32(c, &kv->arr_type) || !take_u64(c, &kv->arr_n))
            return sm_fail(err, SM_ERR_FORMAT, "metadata '%.*s': array header runs past the end of the file", klen, kv->key.ptr);
        if (kv->arr_type >= SM_GGUF_TYPE_COUNT)
            return sm_fail(err, SM_ERR_FORMAT, "metadata '%.*s': unknown array element type %u", klen,
                           kv->key.ptr, kv->arr_type);
        kv->arr_data = c->p;
        if (!skip_array(c, kv->arr_type, kv->arr_n, 0))
            return sm_fail(err, SM_ERR_FORMAT,
                           "metadata '%.*s': array of %llu %s elements runs past the end of the file", klen,
                           kv->key.ptr, (unsigned long long)kv->arr_n, sm_gguf_type_name(kv->arr_type));
        return SM_OK;
    }
    return sm_fail(err, SM_ERR_FORMAT, "metadata '%.*s': unknown value type %u", klen, kv->key.ptr, t);
}

static sm_status parse_tensor_info(cursor *c, sm_gguf_tensor *t, uint64_t index, sm_error *err) {
    if (!take_str(c, &t->name))
        return sm_fail(err, SM_ERR_FORMAT, "tensor %llu: name runs past the end of the file",
                       (unsigned long long)index);
    int nlen = (int)(t->name.len > 200 ? 200 : t->name.len);
    if (!take_u32(c, &t->n_dims))
        return sm_fail(err, SM_ERR_FORMAT, "tensor '%.*s': file ends in its header", nlen, t->name.ptr);
    if (t->n_dims < 1 || t->n_dims > 4)
        return sm_fail(err, SM_ERR_FORMAT, "tensor '%.*s': %u dimensions (1 to 4 allowed)", nlen,
                       t->name.ptr, t->n_dims);
    uint64_t n = 1;
    for (uint32_t d = 0; d < 4; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (!take_u64(c, &t->ne[d]))
            return sm_fail(err, SM_ERR_FORMAT, "tensor '%.*s': file ends in its header", nlen, t->name.ptr);
        if (t->ne[d] == 0 || t->ne[d] > (1ull << 40))
            return sm_fail(err, SM_ERR_FORMAT, "tensor '%.*s': dimension %u is %llu", nlen, t->name.ptr, d,
                           (unsigned long long)t->ne[d]);
        if (n > UINT64_MAX / t->ne[d])
            return sm_fail(err, SM_ERR_FORMAT, "tensor '%.*s': element count overflows", nlen, t->name.ptr);
        n *= t->ne[d];
    }
    t->n_elements = n;
    if (!take_u32(c, &t->type) || !take_u64(c, &t->offset))
        return sm_fail(err, SM_ERR_FORMAT, "tensor '%.*s': file ends in its header", nlen, t->name.ptr);
    const sm_type_traits *tt = sm_type(t->type);
    if (!tt)
        return sm_fail(err, SM_ERR_FORMAT, "tensor '%.*s': unknown tensor type %u", nlen, t->name.ptr, t->type);
    uint64_t be = tt->blck, bb = tt->bytes;
    t->n_bytes = 0;
    if (be) {
        if (t->ne[0] % be != 0)
            return sm_fail(err, SM_ERR_FORMAT, "tensor '%.*s': row of %llu is not a multiple of %s's block of %llu",
                           nlen, t->name.ptr, (unsigned long long)t->ne[0], tt->name,
                           (unsigned long long)be);
        uint64_t blocks = n / be;
        if (blocks > UINT64_MAX / bb)
            return sm_fail(err, SM_ERR_FORMAT, "tensor '%.*s': byte size overflows", nlen, t->name.ptr);
        t->n_bytes = blocks * bb;
    }
    return SM_OK;
}

static uint64_t hash_str(sm_gguf_str s) {
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < s.len; i++) h = (h ^ (unsigned char)s.ptr[i]) * 1099511628211ull;
    return h;
}

/* Returns the index of the first name that repeats an earlier one, or -1.
 * Hashing keeps a hostile file with many entries from costing n^2. */
static int64_t find_duplicate(const void *items, size_t stride, size_t name_off, uint64_t n, int *nomem) {
    *nomem = 0;
    if (n < 2) return -1;
    size_t cap = 16;
    while (cap < n * 2) cap *= 2;
    int64_t *slots = sm_alloc(cap * sizeof *slots);
    if (!slots) { *nomem = 1; return -1; }
    for (size_t i = 0; i < cap; i++) slots[i] = -1;
    int64_t dup = -1;
    for (uint64_t i = 0; i < n && dup < 0; i++) {
        sm_gguf_str s;
        memcpy(&s, (const char *)items + i * stride + name_off, sizeof s);
        size_t h = (size_t)hash_str(s) & (cap - 1);
        while (slots[h] >= 0) {
            sm_gguf_str o;
            memcpy(&o, (const char *)items + (size_t)slots[h] * stride + name_off, sizeof o);
            if (o.len == s.len && memcmp(o.ptr, s.ptr, s.len) == 0) { dup = (int64_t)i; break; }
            h = (h + 1) & (cap - 1);
        }
        if (dup < 0) slots[h] = (int64_t)i;
    }
    sm_free(slots);
    return dup;
}

typedef struct span {
    uint64_t start, end;
    int64_t index;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start ? 1 : (x->index > y->index) - (x->index < y->index);
}

/* Finds two tensors whose data overlap (sorted by offset, each one is
 * compared with the furthest end before it). Returns 0 when out of memory. */
static int find_overlap(sm_gguf *g) {
    g->overlap[0] = g->overlap[1] = -1;
    span *s = sm_alloc((size_t)(g->n_tensors ? g->n_tensors : 1) * sizeof *s);
    if (!s) return 0;
    size_t n = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].n_bytes)
            s[n++] = (span){g->tensors[i].offset, g->tensors[i].offset + g->tensors[i].n_bytes, (int64_t)i};
    qsort(s, n, sizeof *s, cmp_span);
    size_t far = 0;   /* the span reaching furthest so far */
    for (size_t i = 1; i < n && g->overlap[0] < 0; i++) {
        if (s[i].start < s[far].end) {
            g->overlap[0] = s[far].index;
            g->overlap[1] = s[i].index;
        }
        if (s[i].end > s[far].end) far = i;
    }
    sm_free(s);
    return 1;
}

sm_status sm_gguf_parse(const void *data, size_t size, sm_gguf *g, sm_error *err) {
    memset(g, 0, sizeof *g);
    cursor c = {data, (const unsigned char *)data + size};
    char magic[4];
    if (!take(&c, magic, 4))
        return sm_fail(err, SM_ERR_FORMAT, "file is %zu bytes, too short for a GGUF header", size);
    if (memcmp(magic, "GGUF", 4) != 0)
        return sm_fail(err, SM_ERR_FORMAT, "not a GGUF file (bad magic)");
    if (!take_u32(&c, &g->version))
        return sm_fail(err, SM_ERR_FORMAT, "file ends before the GGUF version");
    if (g->version == 1)
        return sm_fail(err, SM_ERR_UNSUPPORTED, "GGUF version 1 is not supported (only 2 and 3); convert the file again");
    if (g->version != 2 && g->version != 3) {
        if ((g->version & 0xFFFF) == 0)
            return sm_fail(err, SM_ERR_UNSUPPORTED, "big-endian GGUF files are not supported");
        return sm_fail(err, SM_ERR_UNSUPPORTED, "GGUF version %u is not supported (only 2 and 3)", g->version);
    }
    if (!take_u64(&c, &g->n_tensors) || !take_u64(&c, &g->n_kv))
        return sm_fail(err, SM_ERR_FORMAT, "file ends inside the GGUF header");
    /* Each entry needs at least 12 bytes; a count the file cannot hold is
     * refused before it sizes an allocation. */
    if (g->n_kv > remaining(&c) / 12)
        return sm_fail(err, SM_ERR_FORMAT, "metadata count %llu does not fit in a %zu-byte file",
                       (unsigned long long)g->n_kv, size);
    if (g->n_tensors > remaining(&c) / 28)
        return sm_fail(err, SM_ERR_FORMAT, "tensor count %llu does not fit in a %zu-byte file",
                       (unsigned long long)g->n_tensors, size);
    g->kv = sm_calloc((size_t)g->n_kv, sizeof *g->kv);
    g->tensors = sm_calloc((size_t)g->n_tensors, sizeof *g->tensors);
    if (!g->kv || !g->tensors) {
        sm_gguf_free(g);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory reading the GGUF header");
    }
    sm_status st;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        if ((st = parse_kv(&c, &g->kv[i], i, err)) != SM_OK) goto fail;
        g->kv[i].raw_len = (size_t)(c.p - g->kv[i].raw);
    }
    int nomem;
    int64_t dup = find_duplicate(g->kv, sizeof *g->kv, offsetof(sm_gguf_kv, key), g->n_kv, &nomem);
    if (nomem) { st = sm_fail(err, SM_ERR_NOMEM, "out of memory reading the GGUF header"); goto fail; }
    if (dup >= 0) {
        sm_gguf_str k = g->kv[dup].key;
        st = sm_fail(err, SM_ERR_FORMAT, "metadata key '%.*s' appears twice", (int)(k.len > 200 ? 200 : k.len), k.ptr);
        goto fail;
    }
    g->alignment = 32;
    const sm_gguf_kv *al = sm_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != SM_GGUF_UINT32 || al->v.u == 0 || (al->v.u & (al->v.u - 1)) != 0 || al->v.u > 65536) {
            st = sm_fail(err, SM_ERR_FORMAT, "general.alignment must be a u32 power of two up to 65536");
            goto fail;
        }
        g->alignment = al->v.u;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if ((st = parse_tensor_info(&c, &g->tensors[i], i, err)) != SM_OK) goto fail;

    uint64_t header_end = (uint64_t)(c.p - (const unsigned char *)data);
    uint64_t data_off = (header_end + g->alignment - 1) / g->alignment * g->alignment;
    g->data_offset = data_off;
    g->base = data;
    g->size = size;
    if (g->n_tensors > 0 && data_off > size) {
        st = sm_fail(err, SM_ERR_FORMAT, "file is truncated: it ends before the tensor data (at %llu of %zu bytes)",
                     (unsigned long long)data_off, size);
        goto fail;
    }
    uint64_t data_size = g->n_tensors > 0 ? size - data_off : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        sm_gguf_tensor *t = &g->tensors[i];
        int nlen = (int)(t->name.len > 200 ? 200 : t->name.len);
        if (t->offset % g->alignment != 0) {
            st = sm_fail(err, SM_ERR_FORMAT, "tensor '%.*s': offset %llu is not aligned to %llu", nlen, t->name.ptr,
                         (unsigned long long)t->offset, (unsigned long long)g->alignment);
            goto fail;
        }
        if (t->offset > data_size || t->n_bytes > data_size - t->offset) {
            st = sm_fail(err, SM_ERR_FORMAT,
                         "file is truncated or corrupt: tensor '%.*s' (%llu bytes at offset %llu) ends past the "
                         "end of the file",
                         nlen, t->name.ptr, (unsigned long long)t->n_bytes, (unsigned long long)t->offset);
            goto fail;
        }
        t->data = t->n_bytes ? (const unsigned char *)data + data_off + t->offset : NULL;
    }
    dup = find_duplicate(g->tensors, sizeof *g->tensors, offsetof(sm_gguf_tensor, name), g->n_tensors, &nomem);
    if (nomem) { st = sm_fail(err, SM_ERR_NOMEM, "out of memory reading the GGUF header"); goto fail; }
    if (dup >= 0) {
        sm_gguf_str k = g->tensors[dup].name;
        st = sm_fail(err, SM_ERR_FORMAT, "tensor name '%.*s' appears twice", (int)(k.len > 200 ? 200 : k.len), k.ptr);
        goto fail;
    }
    if (!find_overlap(g)) { st = sm_fail(err, SM_ERR_NOMEM, "out of memory reading the GGUF header"); goto fail; }
    return SM_OK;
fail:
    sm_gguf_free(g);
    return st;
}

void sm_gguf_free(sm_gguf *g) {
    sm_free(g->kv);
    sm_free(g->tensors);
    g->kv = NULL;
    g->tensors = NULL;
    g->n_kv = g->n_tensors = 0;
}

const sm_gguf_kv *sm_gguf_find(const sm_gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (sm_gguf_str_eq(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const sm_gguf_tensor *sm_gguf_find_tensor(const sm_gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (sm_gguf_str_eq(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

static int is_signed_type(uint32_t t) {
    return t == SM_GGUF_INT8 || t == SM_GGUF_INT16 || t == SM_GGUF_INT32 || t == SM_GGUF_INT64;
}

static int is_unsigned_type(uint32_t t) {
    return t == SM_GGUF_UINT8 || t == SM_GGUF_UINT16 || t == SM_GGUF_UINT32 || t == SM_GGUF_UINT64;
}

int sm_gguf_get_int(const sm_gguf *g, const char *key, int64_t *out) {
    const sm_gguf_kv *kv = sm_gguf_find(g, key);
    if (!kv) return 0;
    if (is_signed_type(kv->type)) { *out = kv->v.i; return 1; }
    if (is_unsigned_type(kv->type)) {
        if (kv->v.u > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)kv->v.u;
        return 1;
    }
    return -1;
}

int sm_gguf_get_float(const sm_gguf *g, const char *key, double *out) {
    const sm_gguf_kv *kv = sm_gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type == SM_GGUF_FLOAT32 || kv->type == SM_GGUF_FLOAT64) { *out = kv->v.f; return 1; }
    if (is_signed_type(kv->type)) { *out = (double)kv->v.i; return 1; }
    if (is_unsigned_type(kv->type)) { *out = (double)kv->v.u; return 1; }
    return -1;
}

int sm_gguf_get_bool(const sm_gguf *g, const char *key, int *out) {
    const sm_gguf_kv *kv = sm_gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type != SM_GGUF_BOOL) return -1;
    *out = kv->v.u != 0;
    return 1;
}

int sm_gguf_get_str(const sm_gguf *g, const char *key, sm_gguf_str *out) {
    const sm_gguf_kv *kv = sm_gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type != SM_GGUF_STRING) return -1;
    *out = kv->v.s;
    return 1;
}

double sm_gguf_arr_float(const sm_gguf_kv *kv, uint64_t i) {
    if (kv->arr_type == SM_GGUF_FLOAT32) {
        float f;
        memcpy(&f, kv->arr_data + i * 4, 4);
        return f;
    }
    if (kv->arr_type == SM_GGUF_FLOAT64) {
        double d;
        memcpy(&d, kv->arr_data + i * 8, 8);
        return d;
    }
    return (double)sm_gguf_arr_int(kv, i);
}

/* Converting NaN or a huge value to an integer is undefined in C. */
static int64_t float_to_int(double d) {
    return (d >= -9.0e18 && d <= 9.0e18) ? (int64_t)d : 0;
}

int64_t sm_gguf_arr_int(const sm_gguf_kv *kv, uint64_t i) {
    const unsigned char *p = kv->arr_data;
    switch (kv->arr_type) {
    case SM_GGUF_UINT8: case SM_GGUF_BOOL: return p[i];
    case SM_GGUF_INT8: return (int8_t)p[i];
    case SM_GGUF_UINT16: { uint16_t x; memcpy(&x, p + i * 2, 2); return x; }
    case SM_GGUF_INT16: { int16_t x; memcpy(&x, p + i * 2, 2); return x; }
    case SM_GGUF_UINT32: { uint32_t x; memcpy(&x, p + i * 4, 4); return x; }
    case SM_GGUF_INT32: { int32_t x; memcpy(&x, p + i * 4, 4); return x; }
    case SM_GGUF_UINT64: case SM_GGUF_INT64: { int64_t x; memcpy(&x, p + i * 8, 8); return x; }
    case SM_GGUF_FLOAT32: { float f; memcpy(&f, p + i * 4, 4); return float_to_int(f); }
    case SM_GGUF_FLOAT64: { double d; memcpy(&d, p + i * 8, 8); return float_to_int(d); }
    default: return 0;
    }
}

sm_gguf_str sm_gguf_arr_next_str(const unsigned char **pos) {
    sm_gguf_str s;
    uint64_t len;
    memcpy(&len, *pos, 8);
    s.ptr = (const char *)*pos + 8;
    s.len = len;
    *pos += 8 + len;
    return s;
}

/* gguf_write.c - see gguf_write.h. */
#include "gguf_write.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/outfile.h"

#include <string.h>

#define ALIGNMENT 32

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

typedef struct tensor_ref {
    const void *data;
    size_t n_bytes;
} tensor_ref;

struct sm_gguf_writer {
    buf kv, info;
    uint64_t n_kv, n_tensors;
    tensor_ref *tensors;
    size_t tensors_cap;
    uint64_t data_size;
    int oom;
};

static void put(sm_gguf_writer *w, buf *b, const void *d, size_t n) {
    if (w->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = (b->n + n) * 2 + 256;
        unsigned char *p = sm_alloc(cap);
        if (!p) { w->oom = 1; return; }
        if (b->n) memcpy(p, b->p, b->n);
        sm_free(b->p);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u32(sm_gguf_writer *w, buf *b, uint32_t v) { put(w, b, &v, 4); }
static void put_u64(sm_gguf_writer *w, buf *b, uint64_t v) { put(w, b, &v, 8); }
static void put_string(sm_gguf_writer *w, buf *b, const char *s) {
    put_u64(w, b, strlen(s));
    put(w, b, s, strlen(s));
}
static void put_key(sm_gguf_writer *w, const char *key, uint32_t type) {
    put_string(w, &w->kv, key);
    put_u32(w, &w->kv, type);
    w->n_kv++;
}

sm_gguf_writer *sm_gguf_writer_new(void) { return sm_calloc(1, sizeof(sm_gguf_writer)); }

void sm_gguf_writer_free(sm_gguf_writer *w) {
    if (!w) return;
    sm_free(w->kv.p);
    sm_free(w->info.p);
    sm_free(w->tensors);
    sm_free(w);
}

void sm_gguf_put_u32(sm_gguf_writer *w, const char *key, uint32_t v) {
    put_key(w, key, SM_GGUF_UINT32);
    put_u32(w, &w->kv, v);
}

void sm_gguf_put_u64(sm_gguf_writer *w, const char *key, uint64_t v) {
    put_key(w, key, SM_GGUF_UINT64);
    put_u64(w, &w->kv, v);
}

void sm_gguf_put_f32(sm_gguf_writer *w, const char *key, float v) {
    put_key(w, key, SM_GGUF_FLOAT32);
    put(w, &w->kv, &v, 4);
}

void sm_gguf_put_bool(sm_gguf_writer *w, const char *key, int v) {
    unsigned char b = v ? 1 : 0;
    put_key(w, key, SM_GGUF_BOOL);
    put(w, &w->kv, &b, 1);
}

void sm_gguf_put_str(sm_gguf_writer *w, const char *key, const char *v) {
    put_key(w, key, SM_GGUF_STRING);
    put_string(w, &w->kv, v);
}

static void put_array_head(sm_gguf_writer *w, const char *key, uint32_t type, size_t n) {
    put_key(w, key, SM_GGUF_ARRAY);
    put_u32(w, &w->kv, type);
    put_u64(w, &w->kv, n);
}

void sm_gguf_put_str_array(sm_gguf_writer *w, const char *key, const char *const *v, size_t n) {
    put_array_head(w, key, SM_GGUF_STRING, n);
    for (size_t i = 0; i < n; i++) put_string(w, &w->kv, v[i]);
}

void sm_gguf_put_f32_array(sm_gguf_writer *w, const char *key, const float *v, size_t n) {
    put_array_head(w, key, SM_GGUF_FLOAT32, n);
    put(w, &w->kv, v, n * 4);
}

void sm_gguf_put_i32_array(sm_gguf_writer *w, const char *key, const int32_t *v, size_t n) {
    put_array_head(w, key, SM_GGUF_INT32, n);
    put(w, &w->kv, v, n * 4);
}

void sm_gguf_put_copy(sm_gguf_writer *w, const sm_gguf_kv *kv) {
    put_u64(w, &w->kv, kv->key.len);
    put(w, &w->kv, kv->key.ptr, kv->key.len);
    put(w, &w->kv, kv->raw, kv->raw_len);
    w->n_kv++;
}

void sm_gguf_add_tensor(sm_gguf_writer *w, const char *name, uint32_t type, int n_dims, const uint64_t *ne,
                        const void *data, size_t n_bytes) {
    if (w->n_tensors == w->tensors_cap) {
        size_t cap = w->tensors_cap ? w->tensors_cap * 2 : 64;
        tensor_ref *t = sm_alloc(cap * sizeof *t);
        if (!t) { w->oom = 1; return; }
        if (w->n_tensors) memcpy(t, w->tensors, w->n_tensors * sizeof *t);
        sm_free(w->tensors);
        w->tensors = t;
        w->tensors_cap = cap;
    }
    put_string(w, &w->info, name);
    put_u32(w, &w->info, (uint32_t)n_dims);
    for (int d = 0; d < n_dims; d++) put_u64(w, &w->info, ne[d]);
    put_u32(w, &w->info, type);
    put_u64(w, &w->info, w->data_size);
    w->tensors[w->n_tensors++] = (tensor_ref){data, n_bytes};
    w->data_size += (n_bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
}

/* The file goes through core/outfile: only a regular file (or a link's
 * target) is replaced, atomically, and every write is checked. */
sm_status sm_gguf_writer_save(sm_gguf_writer *w, const char *path, sm_error *err) {
    if (w->oom) return sm_fail(err, SM_ERR_NOMEM, "out of memory building '%s'", path);
    static const char zeros[ALIGNMENT];
    sm_output *o;
    sm_status st = sm_output_open(path, &o, err);
    if (st) return st;
    unsigned char head[24];
    memcpy(head, "GGUF", 4);
    uint32_t version = 3;
    memcpy(head + 4, &version, 4);
    memcpy(head + 8, &w->n_tensors, 8);
    memcpy(head + 16, &w->n_kv, 8);
    size_t header = sizeof head + w->kv.n + w->info.n;
    if (!(st = sm_output_write(o, head, sizeof head, err)) && !(st = sm_output_write(o, w->kv.p, w->kv.n, err)) &&
        !(st = sm_output_write(o, w->info.p, w->info.n, err)))
        st = sm_output_write(o, zeros, (ALIGNMENT - header % ALIGNMENT) % ALIGNMENT, err);
    for (uint64_t i = 0; !st && i < w->n_tensors; i++) {
        size_t n = w->tensors[i].n_bytes;
        if (!(st = sm_output_write(o, w->tensors[i].data, n, err)))
            st = sm_output_write(o, zeros, (ALIGNMENT - n % ALIGNMENT) % ALIGNMENT, err);
    }
    if (st) {
        sm_output_discard(o);
        return st;
    }
    return sm_output_commit(o, err);
}

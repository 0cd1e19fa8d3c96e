/* gguf.h - a validating, zero-copy reader of GGUF v2/v3 files.
 *
 * sm_gguf_parse() walks the whole header once, checks every length, count,
 * offset and dimension against the buffer and for overflow, and records
 * pointers into the buffer. After it succeeds, every accessor below is safe
 * on any input: nothing is read past the buffer. */
#ifndef SM_IO_GGUF_H
#define SM_IO_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include "smallmind.h"
#include "kernels/types.h"   /* element types: the tensor table names them */

enum sm_gguf_type {
    SM_GGUF_UINT8 = 0, SM_GGUF_INT8 = 1, SM_GGUF_UINT16 = 2, SM_GGUF_INT16 = 3,
    SM_GGUF_UINT32 = 4, SM_GGUF_INT32 = 5, SM_GGUF_FLOAT32 = 6, SM_GGUF_BOOL = 7,
    SM_GGUF_STRING = 8, SM_GGUF_ARRAY = 9, SM_GGUF_UINT64 = 10, SM_GGUF_INT64 = 11,
    SM_GGUF_FLOAT64 = 12, SM_GGUF_TYPE_COUNT
};

typedef struct sm_gguf_str {
    const char *ptr;   /* not NUL-terminated */
    uint64_t len;
} sm_gguf_str;

typedef struct sm_gguf_kv {
    sm_gguf_str key;
    uint32_t type;
    union {
        uint64_t u;   /* unsigned integers and bool */
        int64_t i;    /* signed integers */
        double f;     /* float32 and float64 */
        sm_gguf_str s;
    } v;
    /* arrays */
    uint32_t arr_type;
    uint64_t arr_n;
    const unsigned char *arr_data;  /* first element */
    /* the value as stored (u32 type, then the payload), for copying it */
    const unsigned char *raw;
    size_t raw_len;
} sm_gguf_kv;

typedef struct sm_gguf_tensor {
    sm_gguf_str name;
    uint32_t n_dims;
    uint64_t ne[4];        /* ne[0] is the fastest-varying dimension */
    uint32_t type;
    uint64_t offset;       /* from the start of the data section */
    uint64_t n_elements;
    uint64_t n_bytes;      /* 0 when the type's block size is not known */
    const void *data;      /* NULL when n_bytes is 0 */
} sm_gguf_tensor;

typedef struct sm_gguf {
    uint32_t version;
    uint64_t n_kv, n_tensors;
    sm_gguf_kv *kv;
    sm_gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t data_offset;
    const unsigned char *base;
    size_t size;
    /* two tensors whose bytes overlap (indices), or -1: the file is valid
     * as far as each tensor goes, but probably damaged */
    int64_t overlap[2];
} sm_gguf;

sm_status sm_gguf_parse(const void *data, size_t size, sm_gguf *out, sm_error *err);
void sm_gguf_free(sm_gguf *g);

const char *sm_gguf_type_name(uint32_t type);

const sm_gguf_kv *sm_gguf_find(const sm_gguf *g, const char *key);
const sm_gguf_tensor *sm_gguf_find_tensor(const sm_gguf *g, const char *name);
int sm_gguf_str_eq(sm_gguf_str s, const char *c);
/* Whether s begins with c. */
int sm_gguf_str_starts(sm_gguf_str s, const char *c);

/* Typed getters: return 1 and set *out when the key exists with a
 * compatible type and the value fits; 0 when absent; -1 when present but of
 * the wrong type or out of range. */
int sm_gguf_get_int(const sm_gguf *g, const char *key, int64_t *out);
int sm_gguf_get_float(const sm_gguf *g, const char *key, double *out);
int sm_gguf_get_bool(const sm_gguf *g, const char *key, int *out);
int sm_gguf_get_str(const sm_gguf *g, const char *key, sm_gguf_str *out);

/* Array element access (caller checks index < arr_n and arr_type). */
double sm_gguf_arr_float(const sm_gguf_kv *kv, uint64_t i);
int64_t sm_gguf_arr_int(const sm_gguf_kv *kv, uint64_t i);
/* Iterates a string array: *cursor starts at kv->arr_data. */
sm_gguf_str sm_gguf_arr_next_str(const unsigned char **cursor);

#endif

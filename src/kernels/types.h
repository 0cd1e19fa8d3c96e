/* types.h - one table of facts about every ggml element type, indexed by
 * the type's number (ggml's type_traits idea; the numbering is part of the
 * GGUF format): name, block size, bytes per block, the reference
 * dequantizer and quantizer, the format the activations take for integer
 * dot products, and each kernel level's slots (matrix x vector, fast
 * quantize/dequantize, the 16-row interleaved layout).
 *
 * Adding a weight type is one entry in types.c plus its kernels. */
#ifndef SM_KERNELS_TYPES_H
#define SM_KERNELS_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* ggml tensor types (numbers fixed by the file format). */
enum sm_ggml_type {
    SM_GGML_F32 = 0, SM_GGML_F16 = 1, SM_GGML_Q4_0 = 2, SM_GGML_Q4_1 = 3,
    SM_GGML_Q5_0 = 6, SM_GGML_Q5_1 = 7, SM_GGML_Q8_0 = 8, SM_GGML_Q8_1 = 9,
    SM_GGML_Q2_K = 10, SM_GGML_Q3_K = 11, SM_GGML_Q4_K = 12, SM_GGML_Q5_K = 13,
    SM_GGML_Q6_K = 14, SM_GGML_Q8_K = 15, SM_GGML_IQ2_XXS = 16, SM_GGML_IQ2_XS = 17,
    SM_GGML_IQ3_XXS = 18, SM_GGML_IQ1_S = 19, SM_GGML_IQ4_NL = 20, SM_GGML_IQ3_S = 21,
    SM_GGML_IQ2_S = 22, SM_GGML_IQ4_XS = 23, SM_GGML_I8 = 24, SM_GGML_I16 = 25,
    SM_GGML_I32 = 26, SM_GGML_I64 = 27, SM_GGML_F64 = 28, SM_GGML_IQ1_M = 29,
    SM_GGML_BF16 = 30, SM_GGML_TQ1_0 = 34, SM_GGML_TQ2_0 = 35,
    SM_GGML_TYPE_COUNT = 40
};

/* Kernel levels, from the portable reference up. A level without a slot
 * uses the one below it (kernel_table.fallback). */
enum sm_kernel_level { SM_LEVEL_SCALAR, SM_LEVEL_NEON, SM_LEVEL_AVX2, SM_LEVEL_AVX512, SM_LEVEL_COUNT };

/* out[r] = row r of w . x for `rows` rows of `cols` columns; x is in the
 * type's activation format (vec_dot_type): floats, or Q8_0 / Q8_K blocks. */
typedef void (*sm_matvec_fn)(float *out, const void *w, const void *x, int rows, int cols);
/* The same on the 16-row interleaved layout (interleave.h); xsum holds
 * the activation blocks' sums. rows is a multiple of 16. */
typedef void (*sm_matvec_x16_fn)(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
/* The same against a batch: c[i * ldc + r] = row r . x_i (+= with
 * accumulate) for n activation rows, row i at xq + i * xq_stride bytes with
 * its block sums at xsum + i * xsum_stride. Each value (without accumulate)
 * equals what matvec_x16 gives for that row alone. */
typedef void (*sm_batch_x16_fn)(float *c, size_t ldc, const void *w, const void *xq, size_t xq_stride,
                                const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols, int accumulate);
/* The matrix x vector product against several activation rows in one pass
 * over the weights: outs[i][r] = row r . x_i for i < n (n <= SM_MATVEC_N,
 * x_i at x + i * x_stride floats), each value bit for bit what the same
 * level's matvec gives for x_i alone. */
#define SM_MATVEC_N 9
typedef void (*sm_matvec_n_fn)(float *const *outs, const void *w, const float *x, size_t x_stride, int n, int rows,
                               int cols);
typedef void (*sm_to_float_fn)(float *out, const void *in, int n);      /* n elements */
typedef void (*sm_from_float_fn)(void *out, const float *in, int n);    /* n a multiple of the block */
/* One interleaved group of 16 rows to floats, row after row (16 x cols);
 * the _cols variant column after column (out[16 x + r], cols x 16: the
 * strided product's weight block, read in place by the level's gemm_x16). */
typedef void (*sm_dequant_x16_fn)(float *out, const void *group, int cols);
typedef void (*sm_interleave_fn)(void *dst, const void *src, int rows, int cols);

typedef struct sm_type_kernels {
    sm_matvec_fn matvec;
    sm_from_float_fn from_float;     /* fast quantizer (activation formats; F16: the KV cache's rows) */
    sm_to_float_fn to_float;         /* fast dequantizer (prefill products) */
    sm_matvec_x16_fn matvec_x16;
    sm_matvec_n_fn matvec_n;         /* F32 activations only; from matvec's own level */
    sm_batch_x16_fn batch_x16;       /* integer prefill products on the 16-row layout */
    sm_dequant_x16_fn dequant_x16;
    sm_dequant_x16_fn dequant_x16_cols;
} sm_type_kernels;

typedef struct sm_type_traits {
    const char *name;                /* NULL: not a ggml type number */
    uint32_t blck, bytes;            /* elements and bytes per block; 0: layout unknown to us */
    uint32_t vec_dot_type;           /* format x takes in matvec */
    sm_to_float_fn to_float;         /* reference dequantizer (NULL: cannot read it) */
    sm_from_float_fn from_float_ref; /* reference quantizer (NULL: cannot write it) */
    sm_interleave_fn interleave_x16; /* the 16-row layout, or NULL */
    sm_type_kernels level[SM_LEVEL_COUNT];
} sm_type_traits;

/* The entry for a type number, or NULL when ggml defines no such type. */
const sm_type_traits *sm_type(uint32_t type);
/* Its name, or NULL. */
const char *sm_type_name(uint32_t type);
/* A type by name ("Q4_K", case-insensitive); -1 when unknown. */
int sm_type_by_name(const char *name);
/* Bytes of n elements (n a multiple of the block), 0 when the layout is unknown. */
size_t sm_type_row_bytes(uint32_t type, int64_t n);
/* Whether weights of this type can be run: a reference dequantizer and a
 * scalar matrix x vector kernel. */
int sm_type_runnable(uint32_t type);
/* "F32, F16, ..." - the runnable types, for error messages. */
void sm_type_runnable_list(char *buf, size_t cap);

#endif

/* kernels.h - numeric building blocks of a forward pass. They know nothing
 * of models: vectors, matrices (row-major, `rows` outputs of `cols` inputs)
 * and element types. */
#ifndef SM_KERNELS_KERNELS_H
#define SM_KERNELS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* out[r] = sum_c w[r*cols + c] * x[c] */
void sm_matvec_f32(float *out, const void *w, const void *x, int rows, int cols);
void sm_matvec_f16(float *out, const void *w, const void *x, int rows, int cols);
/* C[m][n] = sum_k A[m][k] * B[n][k]: a batch of m inputs through a weight
 * matrix B of n rows (the prefill shape). */
void sm_matmul_f32(float *c, const float *a, const float *b, int m, int n, int k);

void sm_softmax(float *x, int n);
/* GELU, tanh approximation (as GPT-2), in place. */
void sm_gelu(float *x, int n);
/* out[i] = silu(gate[i]) * up[i] */
void sm_swiglu(float *out, const float *gate, const float *up, int n);
void sm_add(float *x, const float *y, int n);
/* Rotates consecutive pairs (x[2i], x[2i+1]) of each of n_heads heads by
 * the angles whose cos/sin are given for the first rot_dim dims. */
void sm_rope(float *x, int n_heads, int head_dim, int rot_dim, const float *cos_t, const float *sin_t);
/* The same rotation on the pairs (x[i], x[i + rot_dim/2]) (GPT-NeoX's layout). */
void sm_rope_neox(float *x, int n_heads, int head_dim, int rot_dim, const float *cos_t, const float *sin_t);
/* x = cap * tanh(x / cap) */
void sm_softcap(float *x, int n, float cap);
/* x = min(max(x, -c), c) (olmo's and mpt's clamp_kqv) */
void sm_clamp(float *x, float c, size_t n);
/* ALiBi: x[i] += slope * (d0 + i), the scores of keys d0, d0 + 1, ... positions from the query (d0 <= 0) */
void sm_alibi(float *x, int n, float slope, int d0);
void sm_mul(float *x, const float *y, int n);   /* x *= y */
void sm_scale(float *x, float a, int n);        /* x *= a */
void sm_f16_to_f32_row(float *out, const void *in, int n);
void sm_f32_to_f16_row(void *out, const float *in, int n);
void sm_f32_copy_row(float *out, const void *in, int n);
void sm_f32_store_row(void *out, const float *in, int n);

#endif

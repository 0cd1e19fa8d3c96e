/* simd_legacy.h - the SIMD kernels of the types in quant_legacy.h (Q4_1,
 * Q5_0, Q5_1, IQ4_NL, the Q8_1 activations, BF16), from
 * kernels_x86_legacy.c and kernels_neon_legacy.c, for the type table
 * (types.c). Each has a portable reference with the same signature in
 * quant_legacy.c or interleave_legacy.c. */
#ifndef SM_KERNELS_SIMD_LEGACY_H
#define SM_KERNELS_SIMD_LEGACY_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
void sm_matvec_q4_1_avx2(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q5_0_avx2(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q5_1_avx2(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_iq4_nl_avx2(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_bf16_avx2(float *out, const void *w, const void *x, int rows, int cols);
void sm_quantize_q8_1_avx2(void *out, const float *x, int n);
void sm_dequantize_q4_1_avx2(float *out, const void *in, int n);
void sm_dequantize_q5_0_avx2(float *out, const void *in, int n);
void sm_dequantize_q5_1_avx2(float *out, const void *in, int n);
void sm_dequantize_iq4_nl_avx2(float *out, const void *in, int n);
void sm_bf16_to_f32_avx2(float *out, const void *in, int n);
void sm_matvec_q4_1_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_matvec_q5_0_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_matvec_q5_1_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_matvec_iq4_nl_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
/* a group's rows as floats, column after column (out[16 x + r]) */
void sm_dequantize_q4_1x16_cols_avx2(float *out, const void *group, int cols);
void sm_dequantize_q5_0x16_cols_avx2(float *out, const void *group, int cols);
void sm_dequantize_q5_1x16_cols_avx2(float *out, const void *group, int cols);
void sm_dequantize_iq4_nlx16_cols_avx2(float *out, const void *group, int cols);

void sm_matvec_q4_1_avx512(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q5_0_avx512(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q5_1_avx512(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_iq4_nl_avx512(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q4_1_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_matvec_q5_0_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_matvec_q5_1_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_matvec_iq4_nl_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_batch_q4_1_x16_avx512(float *c, size_t ldc, const void *w, const void *xq, size_t xq_stride,
                              const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols, int accumulate);
void sm_batch_q5_0_x16_avx512(float *c, size_t ldc, const void *w, const void *xq, size_t xq_stride,
                              const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols, int accumulate);
void sm_batch_q5_1_x16_avx512(float *c, size_t ldc, const void *w, const void *xq, size_t xq_stride,
                              const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols, int accumulate);
void sm_batch_iq4_nl_x16_avx512(float *c, size_t ldc, const void *w, const void *xq, size_t xq_stride,
                                const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols, int accumulate);
void sm_dequantize_q4_1x16_avx512(float *out, const void *group, int cols);
void sm_dequantize_q5_0x16_avx512(float *out, const void *group, int cols);
void sm_dequantize_q5_1x16_avx512(float *out, const void *group, int cols);
void sm_dequantize_iq4_nlx16_avx512(float *out, const void *group, int cols);
void sm_bf16_to_f32_avx512(float *out, const void *in, int n);
#endif

#if defined(__aarch64__)
void sm_matvec_q4_1_neon(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q5_0_neon(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q5_1_neon(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_iq4_nl_neon(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_bf16_neon(float *out, const void *w, const void *x, int rows, int cols);
void sm_quantize_q8_1_neon(void *out, const float *x, int n);
void sm_bf16_to_f32_neon(float *out, const void *in, int n);
#endif

#endif

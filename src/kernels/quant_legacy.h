/* quant_legacy.h - ggml's other 32-element block formats (beside Q4_0 and
 * Q8_0 in quant.h) and the BF16 element type: block layouts bit-exact with
 * ggml (ggml/src/ggml-common.h), the reference quantizers (ggml's rounding
 * rules, ggml-quants.c, so files match llama-quantize's), dequantizers,
 * integer dots against 8-bit activations, and the scalar matrix x vector
 * kernels the SIMD variants are tested against.
 *
 *   Q4_1:   fp16 d, fp16 m, 16 bytes of nibbles;      x = q * d + m
 *   Q5_0:   fp16 d, 32 high bits, 16 bytes of nibbles; x = (q - 16) * d
 *   Q5_1:   fp16 d, fp16 m, 32 high bits, nibbles;     x = q * d + m
 *   IQ4_NL: fp16 d, 16 bytes of nibbles;              x = d * kvalues[q]
 *   Q8_1:   (activations of Q4_1/Q5_1 dots) fp16 d, fp16 s = d * sum(q),
 *           32 int8 q; x = q * d
 *   BF16:   the top 16 bits of an IEEE binary32
 * In every 4-bit block the low nibble of byte j is element j and the high
 * nibble element j + 16; in the 5-bit ones bit j of the 32-bit high word
 * (little endian) is the fifth bit of element j. */
#ifndef SM_KERNELS_QUANT_LEGACY_H
#define SM_KERNELS_QUANT_LEGACY_H

#include <stdint.h>
#include <string.h>
#include "quant.h"

typedef struct { uint16_t d, m; uint8_t qs[SM_QK / 2]; } sm_block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[SM_QK / 2]; } sm_block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[SM_QK / 2]; } sm_block_q5_1;
typedef struct { uint16_t d; uint8_t qs[SM_QK / 2]; } sm_block_iq4_nl;
typedef struct { uint16_t d, s; int8_t qs[SM_QK]; } sm_block_q8_1;

_Static_assert(sizeof(sm_block_q4_1) == 20, "Q4_1 block");
_Static_assert(sizeof(sm_block_q5_0) == 22, "Q5_0 block");
_Static_assert(sizeof(sm_block_q5_1) == 24, "Q5_1 block");
_Static_assert(sizeof(sm_block_iq4_nl) == 18, "IQ4_NL block");
_Static_assert(sizeof(sm_block_q8_1) == 36, "Q8_1 block");

/* IQ4_NL's 16 code values (ggml's kvalues_iq4nl: a non-linear grid, denser
 * near zero, as the format defines it). */
extern const int8_t sm_iq4nl_values[16];

/* n a multiple of 32; block arguments are void pointers (the type table's
 * slot signatures). */
void sm_quantize_q4_1(void *y, const float *x, int n);
void sm_quantize_q5_0(void *y, const float *x, int n);
void sm_quantize_q5_1(void *y, const float *x, int n);
void sm_quantize_iq4_nl(void *y, const float *x, int n);
void sm_quantize_q8_1(void *y, const float *x, int n);
void sm_dequantize_q4_1(float *y, const void *x, int n);
void sm_dequantize_q5_0(float *y, const void *x, int n);
void sm_dequantize_q5_1(float *y, const void *x, int n);
void sm_dequantize_iq4_nl(float *y, const void *x, int n);
void sm_dequantize_q8_1(float *y, const void *x, int n);

/* BF16 rows (any n). fp32 -> bf16 rounds to nearest even; NaN stays a
 * (quiet) NaN; subnormals are kept. */
void sm_bf16_to_f32_row(float *y, const void *x, int n);
void sm_f32_to_bf16_row(void *y, const float *x, int n);

static inline float sm_bf16_to_fp32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The 5-bit code of element j of a Q5_0/Q5_1 block. */
static inline int sm_q5_code(const uint8_t *qs, const uint8_t *qh, int j) {
    uint32_t h;
    memcpy(&h, qh, sizeof h);
    int lo = j < 16 ? qs[j] & 0x0F : qs[j - 16] >> 4;
    return lo | (int)(((h >> j) & 1) << 4);
}

/* Reference dots of a weight row with 8-bit activations: integer sums
 * within each block, then the block's scales (and, for the formats with a
 * minimum, m times the activation block's s). */
float sm_dot_q4_1_q8_1(const sm_block_q4_1 *w, const sm_block_q8_1 *x, int n);
float sm_dot_q5_0_q8_0(const sm_block_q5_0 *w, const sm_block_q8_0 *x, int n);
float sm_dot_q5_1_q8_1(const sm_block_q5_1 *w, const sm_block_q8_1 *x, int n);
float sm_dot_iq4_nl_q8_0(const sm_block_iq4_nl *w, const sm_block_q8_0 *x, int n);

/* Scalar matrix x vector kernels: each row's reference dot (BF16: against
 * float activations). */
void sm_matvec_q4_1_scalar(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q5_0_scalar(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q5_1_scalar(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_iq4_nl_scalar(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_bf16(float *out, const void *w, const void *x, int rows, int cols);

#endif

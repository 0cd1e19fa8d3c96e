/* quant_k.h - the 256-element super-block formats beyond Q4_K/Q6_K (bit-exact
 * with ggml's; layouts from ggml/src/ggml-common.h, reading order from
 * ggml-quants.c's dequantizers), their reference quantizers (ggml's search
 * algorithms, rewritten from their description), dequantizers and integer
 * dots against Q8_K activations; plus ggml-style searching quantizers for
 * Q4_K and Q6_K and the declarations of every K-format SIMD kernel.
 *
 * Element e of a block (0..255) below: h = e / 128, k = (e % 128) / 32,
 * l = e % 32, j = the sub-block (e / 16 or e / 32).
 *
 *   Q2_K (84 bytes): 16 sub-blocks of 16; scales[j] = scale (low nibble) and
 *        min (high nibble); 2-bit code (qs[32h + l] >> 2k) & 3;
 *        x = d * sc * q - dmin * m
 *   Q3_K (110 bytes): 16 sub-blocks of 16; 6-bit signed scales (value - 32):
 *        low 4 bits in scales[j] (j < 8) or scales[j - 8] >> 4, high 2 bits
 *        at scales[8 + j % 4] >> 2 (j / 4); code = the Q2_K 2 bits + 4 *
 *        the bit (hmask[l] >> (4h + k)) & 1, minus 4; x = d * sc * q
 *   Q5_K (176 bytes): Q4_K's scales and mins; 4 low bits as Q4_K's (byte
 *        32 (e / 64) + l, low nibble for even sub-blocks of 32, high for odd)
 *        and a fifth bit (qh[l] >> (e / 32)) & 1; x = d * sc * q - dmin * m
 *   IQ4_XS (136 bytes): 8 sub-blocks of 32, 6-bit scales (value - 32): low
 *        4 bits in scales_l[j / 2] >> 4 (j % 2), high 2 bits in scales_h >> 2j;
 *        sub-block j's codes in qs[16j..16j + 15], element i < 16 in the low
 *        nibble of byte i, i >= 16 in the high nibble of byte i - 16; a code
 *        indexes the non-linear table sm_iq4nl_values; x = d * sc * value */
#ifndef SM_KERNELS_QUANT_K_H
#define SM_KERNELS_QUANT_K_H

#include <stdint.h>
#include "quant.h"

typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } sm_block_q2_K;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } sm_block_q3_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } sm_block_q5_K;
typedef struct { uint16_t d, scales_h; uint8_t scales_l[4]; uint8_t qs[128]; } sm_block_iq4_xs;

_Static_assert(sizeof(sm_block_q2_K) == 84, "Q2_K block");
_Static_assert(sizeof(sm_block_q3_K) == 110, "Q3_K block");
_Static_assert(sizeof(sm_block_q5_K) == 176, "Q5_K block");
_Static_assert(sizeof(sm_block_iq4_xs) == 136, "IQ4_XS block");

/* ggml's kvalues_iq4nl: the 16 levels of IQ4_NL and IQ4_XS. */
extern const int8_t sm_iq4nl_values[16];

/* Reference conversions of n elements (a multiple of 256), with the type
 * table's slot signatures. */
void sm_quantize_q2_K(void *y, const float *x, int n);
void sm_quantize_q3_K(void *y, const float *x, int n);
void sm_quantize_q5_K(void *y, const float *x, int n);
void sm_quantize_iq4_xs(void *y, const float *x, int n);
void sm_dequantize_q2_K(float *y, const void *x, int n);
void sm_dequantize_q3_K(float *y, const void *x, int n);
void sm_dequantize_q5_K(float *y, const void *x, int n);
void sm_dequantize_iq4_xs(float *y, const void *x, int n);
/* Q4_K and Q6_K with ggml's reference search (weighted least-squares scale
 * and min for Q4_K, a scan of 19 candidate scales for Q6_K): closer to the
 * input than quant.c's single-pass quantizers, and what llama-quantize does
 * without an importance matrix. */
void sm_quantize_q4_K_fit(void *y, const float *x, int n);
void sm_quantize_q6_K_fit(void *y, const float *x, int n);

/* Reference dots of a weight row with Q8_K activations, in integers within
 * each block (the codes' offsets and mins through the activations' sums). */
float sm_dot_q2_K_q8_K(const sm_block_q2_K *w, const sm_block_q8_K *x, int n);
float sm_dot_q3_K_q8_K(const sm_block_q3_K *w, const sm_block_q8_K *x, int n);
float sm_dot_q5_K_q8_K(const sm_block_q5_K *w, const sm_block_q8_K *x, int n);
float sm_dot_iq4_xs_q8_K(const sm_block_iq4_xs *w, const sm_block_q8_K *x, int n);

void sm_matvec_q2_K_scalar(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q3_K_scalar(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q5_K_scalar(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_iq4_xs_scalar(float *out, const void *w, const void *xq, int rows, int cols);

/* The 16 signed 6-bit scales of a Q3_K block (value - 32). */
static inline void sm_q3_K_scales(const uint8_t *s, int8_t *out) {
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? s[j] & 0x0F : s[j - 8] >> 4, hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

/* The 8 signed 6-bit scales of an IQ4_XS block (value - 32). */
static inline void sm_iq4_xs_scales(const sm_block_iq4_xs *b, int8_t *out) {
    for (int j = 0; j < 8; j++)
        out[j] = (int8_t)((((b->scales_l[j / 2] >> (4 * (j % 2))) & 0x0F) | (((b->scales_h >> (2 * j)) & 3) << 4)) - 32);
}

/* The SIMD variants (kernels_x86_k.c, kernels_neon_k.c), each tested against
 * the reference dots above (tests/unit/test_types_k.c). */
#if defined(__x86_64__)
void sm_matvec_q4_K_avx2(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q6_K_avx2(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q2_K_avx2(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q3_K_avx2(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q5_K_avx2(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_iq4_xs_avx2(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q2_K_avx512(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q3_K_avx512(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q4_K_avx512(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q5_K_avx512(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q6_K_avx512(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_iq4_xs_avx512(float *out, const void *w, const void *xq, int rows, int cols);
void sm_quantize_q8_K_avx2(void *y, const float *x, int n);
void sm_dequantize_q2_K_avx2(float *y, const void *x, int n);
void sm_dequantize_q3_K_avx2(float *y, const void *x, int n);
void sm_dequantize_q4_K_avx2(float *y, const void *x, int n);
void sm_dequantize_q5_K_avx2(float *y, const void *x, int n);
void sm_dequantize_q6_K_avx2(float *y, const void *x, int n);
void sm_dequantize_iq4_xs_avx2(float *y, const void *x, int n);
#endif
#if defined(__aarch64__)
void sm_matvec_q2_K_neon(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q3_K_neon(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q4_K_neon(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q5_K_neon(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q6_K_neon(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_iq4_xs_neon(float *out, const void *w, const void *xq, int rows, int cols);
#endif

#endif

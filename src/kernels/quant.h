/* quant.h - GGUF's quantized block formats (bit-exact with ggml's): the
 * reference quantize, dequantize and dot-product routines that the SIMD
 * kernels are tested against.
 *
 *   Q8_0: fp16 scale d, 32 x int8;              x = q * d
 *   Q4_0: fp16 scale d, 16 bytes of nibbles;    x = (q - 8) * d; low nibbles
 *         are elements 0-15, high nibbles 16-31
 *   Q4_K: 256 elements: fp16 d, fp16 dmin, 12 bytes of 6-bit scales and mins
 *         for 8 sub-blocks of 32, 128 bytes of nibbles; x = d*sc*q - dmin*m
 *   Q6_K: 256 elements: 128 bytes low nibbles, 64 bytes of 2-bit highs,
 *         16 int8 scales, fp16 d; x = d * scale * (q - 32)
 *   Q8_K: (activations for K-quant dots) f32 d, 256 x int8, 16 int16 sums */
#ifndef SM_KERNELS_QUANT_H
#define SM_KERNELS_QUANT_H

#include <stddef.h>
#include <stdint.h>

#define SM_QK 32
#define SM_QK_K 256

typedef struct { uint16_t d; int8_t qs[SM_QK]; } sm_block_q8_0;
typedef struct { uint16_t d; uint8_t qs[SM_QK / 2]; } sm_block_q4_0;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[SM_QK_K / 2]; } sm_block_q4_K;
typedef struct { uint8_t ql[SM_QK_K / 2]; uint8_t qh[SM_QK_K / 4]; int8_t scales[SM_QK_K / 16]; uint16_t d; } sm_block_q6_K;
typedef struct { float d; int8_t qs[SM_QK_K]; int16_t bsums[SM_QK_K / 16]; } sm_block_q8_K;

_Static_assert(sizeof(sm_block_q8_0) == 34, "Q8_0 block");
_Static_assert(sizeof(sm_block_q4_0) == 18, "Q4_0 block");
_Static_assert(sizeof(sm_block_q4_K) == 144, "Q4_K block");
_Static_assert(sizeof(sm_block_q6_K) == 210, "Q6_K block");
_Static_assert(sizeof(sm_block_q8_K) == 292, "Q8_K block");

/* n must be a multiple of the block size. The signatures are those of
 * the type table's slots (types.h): blocks are passed as void pointers. */
void sm_quantize_q8_0(void *y, const float *x, int n);
void sm_quantize_q4_0(void *y, const float *x, int n);
void sm_quantize_q4_K(void *y, const float *x, int n);
void sm_quantize_q6_K(void *y, const float *x, int n);
void sm_dequantize_q8_0(float *y, const void *x, int n);
void sm_dequantize_q4_0(float *y, const void *x, int n);
void sm_dequantize_q4_K(float *y, const void *x, int n);
void sm_dequantize_q6_K(float *y, const void *x, int n);
void sm_dequantize_q8_K(float *y, const void *x, int n);

/* Activations for the K-quant dots: one f32 scale per 256 (d = max|x| /
 * 127) and the sums of each 16 codes, which carry the K-quants' offsets
 * (Q4_K's mins, Q6_K's -32) out of the inner loops. */
void sm_quantize_q8_K(void *y, const float *x, int n);

/* Reference dots of a weight row with Q8_0- or Q8_K-quantized activations,
 * in integers within each block as the SIMD kernels do. */
float sm_dot_q8_0_q8_0(const sm_block_q8_0 *w, const sm_block_q8_0 *x, int n);
float sm_dot_q4_0_q8_0(const sm_block_q4_0 *w, const sm_block_q8_0 *x, int n);
float sm_dot_q4_K_q8_K(const sm_block_q4_K *w, const sm_block_q8_K *x, int n);
float sm_dot_q6_K_q8_K(const sm_block_q6_K *w, const sm_block_q8_K *x, int n);

/* The scalar matrix x vector kernels: each row's reference dot. */
void sm_matvec_q8_0_scalar(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q4_0_scalar(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q4_K_scalar(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q6_K_scalar(float *out, const void *w, const void *xq, int rows, int cols);

/* 6-bit scale and min j of a Q4_K block's packed 12 bytes (inline: the
 * matrix x vector kernels unpack 8 per block). */
static inline void sm_q4_K_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

#endif

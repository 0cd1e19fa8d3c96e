/* interleave_k.h - 256-element super-block weights (Q4_K, Q5_K, IQ4_XS, Q6_K) re-laid
 * out sixteen rows at a time for the AVX-512 VNNI matrix x vector kernels
 * (and Q4_K's AVX2 ones, kernels_x86_kx16_avx2.c, in two 8-row halves), as
 * interleave.h does for Q4_0 (read it first): a super-block of 16 rows
 * sits together and each 4 bytes of a row's codes share a 32-bit lane with
 * the same 4 bytes of the other 15 rows, so one 512-bit load feeds one
 * vpdpbusd for 16 rows x 4 columns. Each group is exactly as large as its
 * 16 GGUF blocks (the loader and the matmul address it by row bytes).
 *
 * Q4_K group, super-block b:
 *   d[16], dmin[16] the rows' fp16 scales
 *   sclo[h][r][i]   row r's sub-block 4h + i (h = 0, 1; i = 0..3): the low 4
 *                   bits of its 6-bit scale, and in the high nibble those
 *                   of its 6-bit min
 *   schi[r][i]      the top 2 bits of scale i (bits 0-1), scale i + 4
 *                   (2-3), min i (4-5) and min i + 4 (6-7)
 *                   so all 16 rows' scales come out as bytes with a few
 *                   shifts and masks per super-block, already in lanes
 *   qs[c][r][4]     chunk c = bytes 4c..4c+3 of row r's GGUF qs: the low
 *                   nibbles are elements 64(c / 8) + 4(c % 8) + 0..3
 *                   (sub-block 2(c / 8)), the high ones 32 further on
 * The mins meet the activations' 16-element sums (Q8_K bsums).
 *
 * Q5_K group, super-block b: Q4_K's d, dmin, sclo, schi and qs, and
 *   qh[m][r][4]     chunk m = bytes 4m..4m+3 of row r's GGUF qh: bit 2k of
 *                   byte i is the fifth bit of the low nibble of qs chunk
 *                   8k + m, byte i; bit 2k + 1 that of its high nibble
 *
 * IQ4_XS group, super-block b:
 *   d[16]           the rows' fp16 scales
 *   sh[r]           the top 2 bits of row r's eight 6-bit scales, placed so
 *                   that a mask and a shift line them up with sl's lanes:
 *                   bits 0-1 scale 6, 2-3 scale 2, 4-5 scale 0, 6-7 scale 4,
 *                   8-9 scale 7, 10-11 scale 3, 12-13 scale 1, 14-15 scale 5
 *   sl[r][i]        the low 4 bits of scale i (low nibble) and of scale
 *                   i + 4 (high nibble)
 *   qs[c][r][4]     chunk c = bytes 4c..4c+3 of row r's GGUF qs: sub-block
 *                   c / 4, the low nibbles its elements 4(c % 4) + 0..3, the
 *                   high ones 16 further on
 * The kernel looks a code's value up as value + 128 (unsigned) and removes
 * the 128 with the activations' sums.
 *
 * Q6_K group, super-block b:
 *   d[16]           the rows' fp16 scales
 *   sc[j][r]        row r's signed scale of sub-block j (16 elements), so
 *                   one sign-extending load gives sub-block j's 16 rows
 *   ql[c][r][4]     chunk c = bytes 4c..4c+3 of row r's GGUF ql
 *   qh[c][r][4]     chunk c = bytes 4c..4c+3 of row r's GGUF qh
 * Element 128h + 32k + 4m + i (h = 0, 1; k = 0..3; m = 0..7; i = 0..3;
 * the order of sm_dequantize_q6_K) is the low nibble of ql chunk 16h + 8(k & 1) + m (k < 2) or its high nibble
 * (k >= 2), and bits 2k, 2k + 1 of qh chunk 8h + m, byte i. The kernel uses
 * the 6-bit code unsigned (0..63) and removes 32 times each sub-block's
 * activation sum (bsums). */
#ifndef SM_KERNELS_INTERLEAVE_K_H
#define SM_KERNELS_INTERLEAVE_K_H

#include <stddef.h>
#include <stdint.h>
#include "quant.h"
#include "quant_k.h"
#include "interleave.h"

typedef struct {
    uint16_t d[SM_X16], dmin[SM_X16];
    uint8_t sclo[2][SM_X16][4];
    uint8_t schi[SM_X16][4];
    uint8_t qs[32][SM_X16][4];
} sm_block_q4_Kx16;

typedef struct {
    uint16_t d[SM_X16], dmin[SM_X16];
    uint8_t sclo[2][SM_X16][4];
    uint8_t schi[SM_X16][4];
    uint8_t qh[8][SM_X16][4];
    uint8_t qs[32][SM_X16][4];
} sm_block_q5_Kx16;

typedef struct {
    uint16_t d[SM_X16], sh[SM_X16];
    uint8_t sl[SM_X16][4];
    uint8_t qs[32][SM_X16][4];
} sm_block_iq4_xsx16;

/* Q6_K's code chunks in the order the products read them: for half h and
 * chunk m (0-7) of it, ql chunk 16h + m, ql chunk 16h + 8 + m and qh chunk
 * 8h + m side by side, so a super-block is read as one sequential stream.
 * With ql and qh apart (three streams through each block) the decode
 * product read 10 GB/s from memory on Zen 4, where Q4_K reads 25; in this
 * order 22-24 (a 160000 x 768 matrix, one thread). SM_Q6X16_QL/QH name a
 * chunk by its number in the plain block. */
typedef struct {
    uint16_t d[SM_X16];
    int8_t sc[16][SM_X16];
    uint8_t q[16][3][SM_X16][4];   /* [8h + m][ql 16h + m, ql 16h + 8 + m, qh 8h + m] */
} sm_block_q6_Kx16;
#define SM_Q6X16_QL(blk, c) ((blk)->q[((c) >> 4) * 8 + ((c) & 7)][((c) >> 3) & 1])
#define SM_Q6X16_QH(blk, c) ((blk)->q[c][2])
/* bytes from one chunk to the next of the same kind (m to m + 1) */
#define SM_Q6X16_CHUNK_STRIDE (3 * SM_X16 * 4)

_Static_assert(sizeof(sm_block_q4_Kx16) == 16 * sizeof(sm_block_q4_K), "Q4_K x16 block");
_Static_assert(sizeof(sm_block_q5_Kx16) == 16 * sizeof(sm_block_q5_K), "Q5_K x16 block");
_Static_assert(sizeof(sm_block_q6_Kx16) == 16 * sizeof(sm_block_q6_K), "Q6_K x16 block");
_Static_assert(sizeof(sm_block_iq4_xsx16) == 16 * sizeof(sm_block_iq4_xs), "IQ4_XS x16 block");

/* rows a multiple of 16, cols of 256 (the type table's interleave_x16). */
void sm_interleave_q4_K(void *dst, const void *src, int rows, int cols);
void sm_interleave_q5_K(void *dst, const void *src, int rows, int cols);
void sm_interleave_iq4_xs(void *dst, const void *src, int rows, int cols);
void sm_interleave_q6_K(void *dst, const void *src, int rows, int cols);
/* One group's 16 rows as floats, row after row (out: 16 x cols). */
void sm_dequantize_q4_Kx16(float *out, const void *group, int cols);
void sm_dequantize_q5_Kx16(float *out, const void *group, int cols);
void sm_dequantize_iq4_xsx16(float *out, const void *group, int cols);
void sm_dequantize_q6_Kx16(float *out, const void *group, int cols);
/* Row r's 6-bit scale and min of sub-block j (0..7) in a Q4_K group. */
void sm_q4_Kx16_scale_min(const sm_block_q4_Kx16 *g, int r, int j, uint8_t *sc, uint8_t *m);
/* The same in a Q5_K group (the same packing). */
void sm_q5_Kx16_scale_min(const sm_block_q5_Kx16 *g, int r, int j, uint8_t *sc, uint8_t *m);
/* Row r's signed scale of sub-block j (value - 32) in an IQ4_XS group. */
int sm_iq4_xsx16_scale(const sm_block_iq4_xsx16 *g, int r, int j);

/* The AVX-512 VNNI kernels (kernels_x86_kx16.c) on this layout: matrix x
 * vector against Q8_K activations (xsum unused: the bsums serve), and the
 * group dequantizers for prefill. */
#if defined(__x86_64__)
void sm_matvec_q4_K_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_matvec_q4_K_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_dequantize_q4_Kx16_avx2(float *out, const void *group, int cols);
void sm_matvec_iq4_xs_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_dequantize_iq4_xsx16_avx2(float *out, const void *group, int cols);
void sm_batch_q4_K_x16_avx512(float *c, size_t ldc, const void *w, const void *xq, size_t xq_stride,
                              const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols, int accumulate);
void sm_dequantize_q4_Kx16_avx512(float *out, const void *group, int cols);
void sm_matvec_q5_K_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_batch_q5_K_x16_avx512(float *c, size_t ldc, const void *w, const void *xq, size_t xq_stride,
                              const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols, int accumulate);
void sm_dequantize_q5_Kx16_avx512(float *out, const void *group, int cols);
void sm_matvec_iq4_xs_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_batch_iq4_xs_x16_avx512(float *c, size_t ldc, const void *w, const void *xq, size_t xq_stride,
                              const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols, int accumulate);
void sm_dequantize_iq4_xsx16_avx512(float *out, const void *group, int cols);
void sm_matvec_q6_K_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_batch_q6_K_x16_avx512(float *c, size_t ldc, const void *w, const void *xq, size_t xq_stride,
                              const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols, int accumulate);
void sm_dequantize_q6_Kx16_avx512(float *out, const void *group, int cols);
#endif

#endif

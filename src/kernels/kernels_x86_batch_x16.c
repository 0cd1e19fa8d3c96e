/* kernels_x86_batch_x16.c - integer (VNNI) products of the interleaved
 * Q4_0 and Q8_0 layouts (interleave.h) against a batch of activation rows
 * quantized to Q8_0: the prefill path for those types.
 *
 * The one-token kernel (sm_matvec_*_x16_avx512) loads a 16-row chunk and
 * uses it once. Here each chunk is loaded once per tile of 8 tokens and
 * feeds 8 VNNI instructions, one per token, each taking that token's 4
 * activation bytes broadcast from memory. Per token and block the int32
 * sums start at minus the code offset times the block's sum and one
 * multiply-add applies the scales, in the order the one-token kernel uses:
 * every result equals, bit for bit, what sm_matvec_*_x16_avx512 gives for
 * that token alone (the test checks this and the scalar reference). */
#include "kernels.h"
#include "quant.h"
#include "interleave.h"
#include "simd.h"

#include <string.h>

#if defined(__x86_64__)
#include "x86_isa.h"

#define AVX512 SM_TARGET_AVX512
#define INLINE inline __attribute__((always_inline))

#define TILE 8   /* tokens per tile: 8 float and 8 int32 accumulators */

/* Rows of one 16-row group (nb blocks of gb bytes: 16 fp16 scales, then
 * the chunks) against tokens [0, T) of the batch. q4 selects the Q4_0
 * unpacking (4 loads of two nibble chunks) over Q8_0's (8 loads). */
static AVX512 INLINE void group_tile(float *c, size_t ldc, const uint8_t *g, size_t gb, const uint8_t *xq,
                                     size_t xq_stride, const int32_t *xsum, size_t xsum_stride, int T, int nb,
                                     int q4, int accumulate) {
    const __m512i low = _mm512_set1_epi8(0x0F);
    const int offset = q4 ? 8 : 128;
    __m512 acc[TILE];
SM_UNROLL(8)
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++, g += gb) {
        const uint8_t *qs = g + SM_X16 * sizeof(uint16_t);
        size_t xb = (size_t)b * sizeof(sm_block_q8_0);
        __m512i s[TILE];
SM_UNROLL(8)
        for (int t = 0; t < T; t++) s[t] = _mm512_set1_epi32(-offset * xsum[(size_t)t * xsum_stride + b]);
        if (q4) {
SM_UNROLL(4)
            for (int k = 0; k < 4; k++) {
                __m512i v = _mm512_loadu_si512(qs + 64 * k);
                __m512i lo = _mm512_and_si512(v, low), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
SM_UNROLL(8)
                for (int t = 0; t < T; t++) {
                    const int8_t *xs = ((const sm_block_q8_0 *)(xq + (size_t)t * xq_stride + xb))->qs;
                    s[t] = _mm512_dpbusd_epi32(s[t], lo, _mm512_set1_epi32(sm_load_i32(xs + 4 * k)));
                    s[t] = _mm512_dpbusd_epi32(s[t], hi, _mm512_set1_epi32(sm_load_i32(xs + 16 + 4 * k)));
                }
            }
        } else {
SM_UNROLL(8)
            for (int k = 0; k < 8; k++) {
                __m512i v = _mm512_loadu_si512(qs + 64 * k);
SM_UNROLL(8)
                for (int t = 0; t < T; t++) {
                    const int8_t *xs = ((const sm_block_q8_0 *)(xq + (size_t)t * xq_stride + xb))->qs;
                    s[t] = _mm512_dpbusd_epi32(s[t], v, _mm512_set1_epi32(sm_load_i32(xs + 4 * k)));
                }
            }
        }
        __m512 d16 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g));
SM_UNROLL(8)
        for (int t = 0; t < T; t++) {
            uint16_t xd;
            memcpy(&xd, xq + (size_t)t * xq_stride + xb, sizeof xd);
            __m512 d = _mm512_mul_ps(d16, _mm512_set1_ps(_cvtsh_ss(xd)));
            acc[t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s[t]), acc[t]);
        }
    }
SM_UNROLL(8)
    for (int t = 0; t < T; t++) {
        float *p = c + (size_t)t * ldc;
        _mm512_storeu_ps(p, accumulate ? _mm512_add_ps(_mm512_loadu_ps(p), acc[t]) : acc[t]);
    }
}

/* Every group against every token: tiles of 8 tokens, then 4, 2, 1. */
static AVX512 INLINE void batch_x16(float *c, size_t ldc, const void *w, size_t gb, const void *xq, size_t xq_stride,
                                    const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols, int q4,
                                    int accumulate) {
    int nb = cols / SM_QK;
    const uint8_t *xb = xq;
    for (int r = 0; r < rows; r += SM_X16) {
        const uint8_t *g = (const uint8_t *)w + (size_t)(r / SM_X16) * nb * gb;
        int i = 0;
        for (; i + TILE <= n; i += TILE)
            group_tile(c + (size_t)i * ldc + r, ldc, g, gb, xb + (size_t)i * xq_stride, xq_stride,
                       xsum + (size_t)i * xsum_stride, xsum_stride, TILE, nb, q4, accumulate);
        if (n - i >= 4) {
            group_tile(c + (size_t)i * ldc + r, ldc, g, gb, xb + (size_t)i * xq_stride, xq_stride,
                       xsum + (size_t)i * xsum_stride, xsum_stride, 4, nb, q4, accumulate);
            i += 4;
        }
        if (n - i >= 2) {
            group_tile(c + (size_t)i * ldc + r, ldc, g, gb, xb + (size_t)i * xq_stride, xq_stride,
                       xsum + (size_t)i * xsum_stride, xsum_stride, 2, nb, q4, accumulate);
            i += 2;
        }
        if (n - i >= 1)
            group_tile(c + (size_t)i * ldc + r, ldc, g, gb, xb + (size_t)i * xq_stride, xq_stride,
                       xsum + (size_t)i * xsum_stride, xsum_stride, 1, nb, q4, accumulate);
    }
}

AVX512 void sm_batch_q4_0_x16_avx512(float *c, size_t ldc, const void *w, const void *xq, size_t xq_stride,
                                     const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols,
                                     int accumulate) {
    batch_x16(c, ldc, w, sizeof(sm_block_q4_0x16), xq, xq_stride, xsum, xsum_stride, n, rows, cols, 1, accumulate);
}

AVX512 void sm_batch_q8_0_x16_avx512(float *c, size_t ldc, const void *w, const void *xq, size_t xq_stride,
                                     const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols,
                                     int accumulate) {
    batch_x16(c, ldc, w, sizeof(sm_block_q8_0x16), xq, xq_stride, xsum, xsum_stride, n, rows, cols, 0, accumulate);
}

#endif

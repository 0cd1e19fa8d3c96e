/* kernels_x86_x16_avx2.c - integer products of the interleaved Q4_0
 * layout (interleave.h) for AVX2 hosts without VNNI (AMD Zen 3, Intel
 * before Ice Lake): decode (matvec_x16) and prefill (batch_x16).
 *
 * A 256-bit load of one chunk holds 4 bytes of 8 rows' block; against the
 * activation's 4 bytes broadcast to every lane, _mm256_maddubs_epi16 gives
 * each row two int16 pair sums. A block's 8 nibble chunks (4 low, 4 high)
 * add up in int16 - at most 8 x 2 x 15 x 128 = 30720, no saturation - and
 * one _mm256_madd_epi16 with ones makes each row's int32 sum. As in the
 * VNNI kernels the code offset (8) comes off with the activation block's
 * sum, then one multiply-add applies the scales. The batch kernel does the
 * same per token in the same order: each of its results equals, bit for
 * bit, the one-token kernel's (test_simd.c checks it and the scalar
 * reference). */
#include "kernels.h"
#include "quant.h"
#include "interleave.h"
#include "simd.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define INLINE inline __attribute__((always_inline))

#define TILE 4   /* tokens per batch tile: 4 float and 4 int16 accumulators */

static INLINE int32_t load_i32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

AVX2 static INLINE float half_to_float(const void *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

/* The int16 pair sums of 8 rows (half h of the group's block qs) against
 * one token's activation block xs. */
AVX2 static INLINE __m256i block_sums16(const uint8_t *qs, int h, const int8_t *xs) {
    const __m256i low = _mm256_set1_epi8(0x0F);
    __m256i s = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 64 * c + 32 * h));
        __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(lo, _mm256_set1_epi32(load_i32(xs + 4 * c))));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi, _mm256_set1_epi32(load_i32(xs + 16 + 4 * c))));
    }
    return s;
}

/* acc + (w scales x x scale) (int32 sum of s16's pairs - 8 xsum) */
AVX2 static INLINE __m256 block_to_acc(__m256 acc, __m256i s16, int32_t xsum, __m256 dw, float dx) {
    __m256i s32 = _mm256_add_epi32(_mm256_madd_epi16(s16, _mm256_set1_epi16(1)), _mm256_set1_epi32(-8 * xsum));
    return _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(dx)), _mm256_cvtepi32_ps(s32), acc);
}

AVX2 void sm_matvec_q4_0_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols) {
    const sm_block_q4_0x16 *g = w;
    const sm_block_q8_0 *x = xq;
    int nb = cols / SM_QK;
    for (int r = 0; r < rows; r += SM_X16, g += nb) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        for (int b = 0; b < nb; b++) {
            float dx = half_to_float(&x[b].d);
            __m256 d0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g[b].d));
            __m256 d1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g[b].d + 8)));
            a0 = block_to_acc(a0, block_sums16(g[b].qs, 0, x[b].qs), xsum[b], d0, dx);
            a1 = block_to_acc(a1, block_sums16(g[b].qs, 1, x[b].qs), xsum[b], d1, dx);
        }
        _mm256_storeu_ps(out + r, a0);
        _mm256_storeu_ps(out + r + 8, a1);
    }
}

/* Half h (8 rows) of one group against T <= TILE tokens: each chunk is
 * loaded and unpacked once for the T tokens. */
AVX2 static INLINE void half_tile(float *c, size_t ldc, const sm_block_q4_0x16 *g, int h, const uint8_t *xq,
                                  size_t xq_stride, const int32_t *xsum, size_t xsum_stride, int T, int nb,
                                  int accumulate) {
    const __m256i low = _mm256_set1_epi8(0x0F);
    __m256 acc[TILE];
SM_UNROLL(4)
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        size_t xb = (size_t)b * sizeof(sm_block_q8_0);
        __m256i s[TILE];
SM_UNROLL(4)
        for (int t = 0; t < T; t++) s[t] = _mm256_setzero_si256();
SM_UNROLL(4)
        for (int k = 0; k < 4; k++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(g[b].qs + 64 * k + 32 * h));
            __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
SM_UNROLL(4)
            for (int t = 0; t < T; t++) {
                const int8_t *xs = ((const sm_block_q8_0 *)(xq + (size_t)t * xq_stride + xb))->qs;
                s[t] = _mm256_add_epi16(s[t], _mm256_maddubs_epi16(lo, _mm256_set1_epi32(load_i32(xs + 4 * k))));
                s[t] = _mm256_add_epi16(s[t], _mm256_maddubs_epi16(hi, _mm256_set1_epi32(load_i32(xs + 16 + 4 * k))));
            }
        }
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g[b].d + 8 * h)));
SM_UNROLL(4)
        for (int t = 0; t < T; t++)
            acc[t] = block_to_acc(acc[t], s[t], xsum[(size_t)t * xsum_stride + b],
                                  dw, half_to_float(xq + (size_t)t * xq_stride + xb));
    }
SM_UNROLL(4)
    for (int t = 0; t < T; t++) {
        float *p = c + (size_t)t * ldc;
        _mm256_storeu_ps(p, accumulate ? _mm256_add_ps(_mm256_loadu_ps(p), acc[t]) : acc[t]);
    }
}

AVX2 void sm_batch_q4_0_x16_avx2(float *c, size_t ldc, const void *w, const void *xq, size_t xq_stride,
                                 const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols, int accumulate) {
    int nb = cols / SM_QK;
    const uint8_t *xb = xq;
    for (int r = 0; r < rows; r += SM_X16) {
        const sm_block_q4_0x16 *g = (const sm_block_q4_0x16 *)w + (size_t)(r / SM_X16) * nb;
        for (int h = 0; h < 2; h++) {
            int i = 0;
            for (; i + TILE <= n; i += TILE)
                half_tile(c + (size_t)i * ldc + r + 8 * h, ldc, g, h, xb + (size_t)i * xq_stride, xq_stride,
                          xsum + (size_t)i * xsum_stride, xsum_stride, TILE, nb, accumulate);
            for (; i < n; i++)
                half_tile(c + (size_t)i * ldc + r + 8 * h, ldc, g, h, xb + (size_t)i * xq_stride, xq_stride,
                          xsum + (size_t)i * xsum_stride, xsum_stride, 1, nb, accumulate);
        }
    }
}

#endif

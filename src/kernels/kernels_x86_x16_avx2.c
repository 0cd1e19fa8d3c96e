/* kernels_x86_x16_avx2.c - integer products of the interleaved Q4_0 and
 * Q8_0 layouts (interleave.h) for AVX2 hosts without VNNI (AMD Zen 3,
 * Intel before Ice Lake): decode (matvec_x16) of both, prefill (batch_x16)
 * of Q4_0; Q8_0 prompts dequantize the layout column after column for the
 * float product (the faster one there).
 *
 * A 256-bit load of one chunk holds 4 bytes of 8 rows' block; against the
 * activation's 4 bytes broadcast to every lane, _mm256_maddubs_epi16 gives
 * each row two int16 pair sums of nibbles times activation bytes. Q4_0's
 * 8 nibble chunks (4 low, 4 high) add up in int16 - at most 8 x 2 x 15 x
 * 128 = 30720, no saturation - and one _mm256_madd_epi16 with ones makes
 * each row's int32 sum. Q8_0's unsigned codes (code + 128) would saturate
 * maddubs, so each is split as lo + 16 hi: its 8 chunks' low and high
 * nibble sums add up apart (each within the same bound) and meet in int32,
 * the high ones through a madd with 16. As in the VNNI kernels the code
 * offset (8 or 128) comes off with the activation block's sum, then one
 * multiply-add applies the scales. The Q4_0 batch kernel does the
 * same per token in the same order: each of its results equals, bit for
 * bit, the one-token kernel's (test_simd.c checks it and the scalar
 * reference). */
#include "kernels.h"
#include "quant.h"
#include "interleave.h"
#include "simd.h"

#include <string.h>

#if defined(__x86_64__)
#include "x86_isa.h"

#define AVX2 SM_TARGET_AVX2
#define INLINE inline __attribute__((always_inline))

#define TILE 4   /* tokens per Q4_0 batch tile: 4 float and 4 int16 accumulators */

AVX2 static INLINE float half_to_float(const void *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

/* Row group bytes: 16 fp16 scales, then the chunks. */
#define QS(g) ((const uint8_t *)(g) + SM_X16 * sizeof(uint16_t))

/* One chunk k (4 columns of 8 rows, unpacked into its low and high
 * nibbles) against one token's activation block xs: into a the low
 * nibbles' int16 pair sums (Q4_0: the high nibbles', columns 16 + 4k..,
 * too; same bound), into b Q8_0's high nibbles' (the same columns, weighed
 * 16 by sums_i32). */
AVX2 static INLINE void chunk_sums(__m256i *a, __m256i *b, __m256i lo, __m256i hi, const int8_t *xs, int k, int q4) {
    __m256i x = _mm256_set1_epi32(sm_load_i32(xs + 4 * k));
    *a = _mm256_add_epi16(*a, _mm256_maddubs_epi16(lo, x));
    if (q4) *a = _mm256_add_epi16(*a, _mm256_maddubs_epi16(hi, _mm256_set1_epi32(sm_load_i32(xs + 16 + 4 * k))));
    else *b = _mm256_add_epi16(*b, _mm256_maddubs_epi16(hi, x));
}

/* The int32 sums (codes x activations, before the offset) of a block */
AVX2 static INLINE __m256i sums_i32(__m256i a, __m256i b, int q4) {
    __m256i s = _mm256_madd_epi16(a, _mm256_set1_epi16(1));
    return q4 ? s : _mm256_add_epi32(s, _mm256_madd_epi16(b, _mm256_set1_epi16(16)));
}

/* Chunk k of half h (8 rows) of a group block's chunks qs, as nibbles */
AVX2 static INLINE void unpack_chunk(const uint8_t *qs, int h, int k, __m256i *lo, __m256i *hi) {
    const __m256i low = _mm256_set1_epi8(0x0F);
    __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 64 * k + 32 * h));
    *lo = _mm256_and_si256(v, low);
    *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
}

/* Half h (8 rows) of one group block's chunks qs against one token's
 * activation block xs. */
AVX2 static INLINE __m256i block_sums(const uint8_t *qs, int h, const int8_t *xs, int q4) {
    __m256i a = _mm256_setzero_si256(), b = a, lo, hi;
    for (int k = 0; k < (q4 ? 4 : 8); k++) {
        unpack_chunk(qs, h, k, &lo, &hi);
        chunk_sums(&a, &b, lo, hi, xs, k, q4);
    }
    return sums_i32(a, b, q4);
}

/* acc + (w scales x x scale) (s32 - offset xsum) */
AVX2 static INLINE __m256 block_to_acc(__m256 acc, __m256i s32, int32_t offset_xsum, __m256 dw, float dx) {
    s32 = _mm256_add_epi32(s32, _mm256_set1_epi32(-offset_xsum));
    return _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(dx)), _mm256_cvtepi32_ps(s32), acc);
}

/* One block b of a group (w) against the token's block, into the group's
 * two accumulators (rows 0-7, 8-15) */
AVX2 static INLINE void block_step(__m256 *a0, __m256 *a1, const uint8_t *w, size_t gb, const sm_block_q8_0 *xb,
                                   int32_t offset_xsum, int q4) {
    SM_PREFETCH_AHEAD(w, gb);
    float dx = half_to_float(&xb->d);
    __m256 d0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w));
    __m256 d1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w + 1));
    *a0 = block_to_acc(*a0, block_sums(QS(w), 0, xb->qs, q4), offset_xsum, d0, dx);
    *a1 = block_to_acc(*a1, block_sums(QS(w), 1, xb->qs, q4), offset_xsum, d1, dx);
}

/* One token: every group, both halves. gb: bytes per group block. Two
 * groups at a time, half the rows apart (two sequential streams through
 * memory; the 16-bit kernel below reads four), each summed as alone. */
AVX2 static INLINE void matvec_x16(float *out, const uint8_t *w, size_t gb, const void *xq, const int32_t *xsum,
                                   int rows, int cols, int q4) {
    const sm_block_q8_0 *x = xq;
    int nb = cols / SM_QK, offset = q4 ? 8 : 128;
    int groups = rows / SM_X16, half = groups / 2;
    size_t gbytes = (size_t)nb * gb, apart = (size_t)half * gbytes;
    for (int i = 0; i < half; i++) {
        const uint8_t *p = w + (size_t)i * gbytes, *q = p + apart;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, c0 = a0, c1 = a0;
        for (int b = 0; b < nb; b++, p += gb, q += gb) {
            block_step(&a0, &a1, p, gb, &x[b], offset * xsum[b], q4);
            block_step(&c0, &c1, q, gb, &x[b], offset * xsum[b], q4);
        }
        float *o = out + (size_t)i * SM_X16, *o2 = o + (size_t)half * SM_X16;
        _mm256_storeu_ps(o, a0);
        _mm256_storeu_ps(o + 8, a1);
        _mm256_storeu_ps(o2, c0);
        _mm256_storeu_ps(o2 + 8, c1);
    }
    if (groups % 2) {
        const uint8_t *p = w + (size_t)(groups - 1) * gbytes;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        for (int b = 0; b < nb; b++, p += gb) block_step(&a0, &a1, p, gb, &x[b], offset * xsum[b], q4);
        _mm256_storeu_ps(out + (size_t)(groups - 1) * SM_X16, a0);
        _mm256_storeu_ps(out + (size_t)(groups - 1) * SM_X16 + 8, a1);
    }
}

AVX2 void sm_matvec_q4_0_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols) {
    matvec_x16(out, w, sizeof(sm_block_q4_0x16), xq, xsum, rows, cols, 1);
}

AVX2 void sm_matvec_q8_0_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols) {
    matvec_x16(out, w, sizeof(sm_block_q8_0x16), xq, xsum, rows, cols, 0);
}

/* Q4_0, half h (8 rows) of one group against T <= TILE tokens: each chunk
 * is loaded and unpacked once for the T tokens; each token's int32 sums
 * are block_sums' (integer sums: exact in any order). (Q8_0 prompts take
 * the float product on this level: its two maddubs per 32 products made
 * the integer one 10 % slower than dequantizing.) */
AVX2 static INLINE void half_tile(float *c, size_t ldc, const uint8_t *g, size_t gb, int h, const uint8_t *xq,
                                  size_t xq_stride, const int32_t *xsum, size_t xsum_stride, int T, int nb,
                                  int accumulate) {
    __m256 acc[TILE];
SM_UNROLL(4)
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++, g += gb) {
        size_t xb = (size_t)b * sizeof(sm_block_q8_0);
        __m256i sa[TILE];   /* chunk_sums' a */
SM_UNROLL(4)
        for (int t = 0; t < T; t++) sa[t] = _mm256_setzero_si256();
SM_UNROLL(4)
        for (int k = 0; k < 4; k++) {
            __m256i lo, hi;
            unpack_chunk(QS(g), h, k, &lo, &hi);
SM_UNROLL(4)
            for (int t = 0; t < T; t++)
                chunk_sums(&sa[t], NULL, lo, hi, ((const sm_block_q8_0 *)(xq + (size_t)t * xq_stride + xb))->qs, k, 1);
        }
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g + h));
SM_UNROLL(4)
        for (int t = 0; t < T; t++) {
            acc[t] = block_to_acc(acc[t], sums_i32(sa[t], sa[t], 1), 8 * xsum[(size_t)t * xsum_stride + b], dw,
                                  half_to_float(xq + (size_t)t * xq_stride + xb));
        }
    }
SM_UNROLL(4)
    for (int t = 0; t < T; t++) {
        float *p = c + (size_t)t * ldc;
        _mm256_storeu_ps(p, accumulate ? _mm256_add_ps(_mm256_loadu_ps(p), acc[t]) : acc[t]);
    }
}

AVX2 void sm_batch_q4_0_x16_avx2(float *c, size_t ldc, const void *w, const void *xq, size_t xq_stride,
                                 const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols, int accumulate) {
    const size_t gb = sizeof(sm_block_q4_0x16);
    int nb = cols / SM_QK, tile = TILE;
    const uint8_t *xb = xq;
    for (int r = 0; r < rows; r += SM_X16) {
        const uint8_t *g = (const uint8_t *)w + (size_t)(r / SM_X16) * nb * gb;
        for (int h = 0; h < 2; h++) {
            int i = 0;
            for (; i + tile <= n; i += tile)
                half_tile(c + (size_t)i * ldc + r + 8 * h, ldc, g, gb, h, xb + (size_t)i * xq_stride, xq_stride,
                          xsum + (size_t)i * xsum_stride, xsum_stride, tile, nb, accumulate);
            for (; i < n; i++)
                half_tile(c + (size_t)i * ldc + r + 8 * h, ldc, g, gb, h, xb + (size_t)i * xq_stride, xq_stride,
                          xsum + (size_t)i * xsum_stride, xsum_stride, 1, nb, accumulate);
        }
    }
}

/* F16 on its interleaved layout (sm_interleave_f16), one token: per column
 * the 16 rows' halves (two 16-byte loads, converted) times the activation
 * broadcast, no per-row reduction. Four groups at a time, a quarter of the
 * rows apart, two accumulators each (eight chains of multiply-adds keep the
 * FMA units busy): four long sequential streams through memory keep more
 * requests in flight than one (Zen 3, one core: 18-21 GB/s from one
 * stream, 22-25 from two or four; decode 1.27-1.32x at the 15M shape and
 * 1.06-1.07x at 110M over two streams, which were 1.13-1.33x over one;
 * four adjacent rows of the row-major layout, four short streams, were
 * slower than one). x is the input as floats (F16's activation format).
 * Every other column each stream asks for the line 1 KiB ahead (+7-15 % at
 * one stream; 2-16 KiB ahead was slower than none). BF16 uses the same
 * layout (sm_interleave_f16 moves 16-bit elements) and the same loop; a
 * bf16 widens to a float by a 16-bit shift. */
#define PREFETCH_16BIT 1024
AVX2 static INLINE __m256 widen8(const uint16_t *p, int bf16) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return bf16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)) : _mm256_cvtph_ps(h);
}

/* Groups i, i + q, i + 2q and i + 3q (q: a quarter of the groups) side by
 * side, two accumulators each (rows 0-7, 8-15); the groups past the last
 * whole quarter by themselves, summed in the same order. */
AVX2 static INLINE void matvec_16bit_x16(float *out, const uint16_t *w, const float *x, int rows, int cols, int bf16) {
    int groups = rows / SM_X16, q = groups / 4;
    size_t gsize = (size_t)SM_X16 * cols, apart = (size_t)q * gsize;
    for (int i = 0; i < q; i++) {
        const uint16_t *p = w + (size_t)i * gsize;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
        for (int c = 0; c < cols; c++, p += SM_X16) {
            __m256 xc = _mm256_broadcast_ss(x + c);
            if (!(c & 1)) {
                _mm_prefetch((const char *)p + PREFETCH_16BIT, _MM_HINT_T0);
                _mm_prefetch((const char *)(p + apart) + PREFETCH_16BIT, _MM_HINT_T0);
                _mm_prefetch((const char *)(p + 2 * apart) + PREFETCH_16BIT, _MM_HINT_T0);
                _mm_prefetch((const char *)(p + 3 * apart) + PREFETCH_16BIT, _MM_HINT_T0);
            }
            a0 = _mm256_fmadd_ps(widen8(p, bf16), xc, a0);
            a1 = _mm256_fmadd_ps(widen8(p + 8, bf16), xc, a1);
            b0 = _mm256_fmadd_ps(widen8(p + apart, bf16), xc, b0);
            b1 = _mm256_fmadd_ps(widen8(p + apart + 8, bf16), xc, b1);
            c0 = _mm256_fmadd_ps(widen8(p + 2 * apart, bf16), xc, c0);
            c1 = _mm256_fmadd_ps(widen8(p + 2 * apart + 8, bf16), xc, c1);
            d0 = _mm256_fmadd_ps(widen8(p + 3 * apart, bf16), xc, d0);
            d1 = _mm256_fmadd_ps(widen8(p + 3 * apart + 8, bf16), xc, d1);
        }
        float *o = out + (size_t)i * SM_X16;
        size_t oq = (size_t)q * SM_X16;
        _mm256_storeu_ps(o, a0); _mm256_storeu_ps(o + 8, a1);
        _mm256_storeu_ps(o + oq, b0); _mm256_storeu_ps(o + oq + 8, b1);
        _mm256_storeu_ps(o + 2 * oq, c0); _mm256_storeu_ps(o + 2 * oq + 8, c1);
        _mm256_storeu_ps(o + 3 * oq, d0); _mm256_storeu_ps(o + 3 * oq + 8, d1);
    }
    for (int g = 4 * q; g < groups; g++) {
        const uint16_t *p = w + (size_t)g * gsize;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        for (int c = 0; c < cols; c++, p += SM_X16) {
            __m256 xc = _mm256_broadcast_ss(x + c);
            if (!(c & 1)) _mm_prefetch((const char *)p + PREFETCH_16BIT, _MM_HINT_T0);
            a0 = _mm256_fmadd_ps(widen8(p, bf16), xc, a0);
            a1 = _mm256_fmadd_ps(widen8(p + 8, bf16), xc, a1);
        }
        _mm256_storeu_ps(out + (size_t)g * SM_X16, a0);
        _mm256_storeu_ps(out + (size_t)g * SM_X16 + 8, a1);
    }
}

AVX2 void sm_matvec_f16_x16_avx2(float *out, const void *w, const void *xv, const int32_t *xsum, int rows, int cols) {
    (void)xsum;
    matvec_16bit_x16(out, w, xv, rows, cols, 0);
}

AVX2 void sm_matvec_bf16_x16_avx2(float *out, const void *w, const void *xv, const int32_t *xsum, int rows, int cols) {
    (void)xsum;
    matvec_16bit_x16(out, w, xv, rows, cols, 1);
}

/* Q8_0 groups as floats for prefill (where the float product beats the
 * integer one: two maddubs per 32 products), column after column
 * (out[16 x + r]: the strided product's weight block, read in place by
 * sm_gemm_x16_avx2): each chunk's 4 columns of 16 rows (sm_chunk_columns),
 * then (code - 128) * d as sm_dequantize_q8_0x16 computes it. */
AVX2 void sm_dequantize_q8_0x16_cols_avx2(float *out, const void *group, int cols) {
    const sm_block_q8_0x16 *g = group;
    const __m256i bias = _mm256_set1_epi32(128);
    for (int b = 0; b < cols / SM_QK; b++) {
        __m256 d0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g[b].d));
        __m256 d1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g[b].d + 1));
        for (int c = 0; c < SM_QK / 4; c++) {
            __m128i col[4];
            sm_chunk_columns(g[b].qs + 64 * c, col);
SM_UNROLL(4)
            for (int j = 0; j < 4; j++) {
                float *y = out + (size_t)(b * SM_QK + 4 * c + j) * SM_X16;
                __m256i lo = _mm256_sub_epi32(_mm256_cvtepu8_epi32(col[j]), bias);
                __m256i hi = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(col[j], 8)), bias);
                _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(lo), d0));
                _mm256_storeu_ps(y + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(hi), d1));
            }
        }
    }
}

#endif

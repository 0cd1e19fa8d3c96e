/* kernels_x86_kx16_avx2.c - the one-token products of the interleaved Q4_K
 * and IQ4_XS layouts (interleave_k.h) for AVX2 hosts without VNNI (AMD Zen 3, Intel
 * before Ice Lake), the AVX-512 kernel of kernels_x86_kx16.c read as two
 * 8-row halves, and the layout's dequantizer for prefill. A 256-bit load of one chunk holds 4 code bytes of 8 rows;
 * _mm256_maddubs_epi16 against the 4 activation bytes broadcast gives each
 * row two int16 pair sums. A sub-block's 8 chunks add up in int16 (at most
 * 8 x 2 x 15 x 128 = 30720: no saturation), and one _mm256_madd_epi16 with
 * the rows' 6-bit scales (each in both halves of its row's lane) makes the
 * int32 sums, scaled. The mins meet the activations' 16-element sums the
 * same way. Each row's result is that of sm_matvec_q4_K_scalar up to the
 * order of float sums (tests/unit/test_types_k.c). */
#include "interleave_k.h"
#include "quant_k.h"
#include "simd.h"

#include <string.h>

#if defined(__x86_64__)
#include "x86_isa.h"

#define AVX2 SM_TARGET_AVX2
#define INLINE inline __attribute__((always_inline))

/* 4 bytes (activations, or two int16 sums) broadcast as one int32 */
AVX2 static INLINE __m256i bcast4(const void *p) { return _mm256_set1_epi32(sm_load_i32(p)); }

/* byte i of each 32-bit lane, zero-extended into both of its 16-bit halves */
AVX2 static INLINE __m256i byte_of_lane_x2(__m256i v, int i) {
    const __m256i base = _mm256_setr_epi32((int)0xFF00FF00u, (int)0xFF04FF04u, (int)0xFF08FF08u, (int)0xFF0CFF0Cu,
                                           (int)0xFF00FF00u, (int)0xFF04FF04u, (int)0xFF08FF08u, (int)0xFF0CFF0Cu);
    return _mm256_shuffle_epi8(v, _mm256_add_epi32(base, _mm256_set1_epi32(i * 0x00010001)));
}

/* Half h's 8 rows' 6-bit scales (sc[q], byte i of lane r: row 8h + r's
 * sub-block 4q + i) and mins (mn[q]) of one super-block. */
AVX2 static INLINE void q4_K_scales(const sm_block_q4_Kx16 *g, int h, __m256i sc[2], __m256i mn[2]) {
    const __m256i low = _mm256_set1_epi8(0x0F), top = _mm256_set1_epi8(0x30);
    __m256i l0 = _mm256_loadu_si256((const __m256i *)g->sclo[0][8 * h]);
    __m256i l1 = _mm256_loadu_si256((const __m256i *)g->sclo[1][8 * h]);
    __m256i hi = _mm256_loadu_si256((const __m256i *)g->schi[8 * h]);
    sc[0] = _mm256_or_si256(_mm256_and_si256(l0, low), _mm256_and_si256(_mm256_slli_epi16(hi, 4), top));
    sc[1] = _mm256_or_si256(_mm256_and_si256(l1, low), _mm256_and_si256(_mm256_slli_epi16(hi, 2), top));
    mn[0] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low), _mm256_and_si256(hi, top));
    mn[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low), _mm256_and_si256(_mm256_srli_epi16(hi, 2), top));
}

/* Half h of one super-block against its activations x: acc + d (scaled
 * sums) - dmin (mins x activation sums). Chunk 8k + c holds the low
 * nibbles of elements 64k + 4c.. (sub-block 2k) and the high nibbles of
 * the elements 32 further on (sub-block 2k + 1). */
AVX2 static INLINE __m256 q4_K_half(__m256 acc, const sm_block_q4_Kx16 *g, int h, const sm_block_q8_K *x) {
    const __m256i low = _mm256_set1_epi8(0x0F);
    const int8_t *xs = x->qs;
    __m256i sc[2], mn[2];
    q4_K_scales(g, h, sc, mn);
    __m256i isum = _mm256_setzero_si256(), imin = _mm256_setzero_si256();
SM_UNROLL(4)
    for (int k = 0; k < 4; k++) {
        __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
SM_UNROLL(8)
        for (int c = 0; c < 8; c++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)g->qs[8 * k + c][8 * h]);
            lo = _mm256_add_epi16(lo, _mm256_maddubs_epi16(_mm256_and_si256(v, low), bcast4(xs + 64 * k + 4 * c)));
            hi = _mm256_add_epi16(hi, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), low),
                                                           bcast4(xs + 64 * k + 32 + 4 * c)));
        }
        int j0 = 2 * k, j1 = 2 * k + 1;
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(lo, byte_of_lane_x2(sc[j0 / 4], j0 % 4)));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(hi, byte_of_lane_x2(sc[j1 / 4], j1 % 4)));
    }
SM_UNROLL(8)
    for (int j = 0; j < 8; j++)
        imin = _mm256_add_epi32(imin, _mm256_madd_epi16(byte_of_lane_x2(mn[j / 4], j % 4), bcast4(x->bsums + 2 * j)));
    __m256 dx = _mm256_set1_ps(x->d);
    __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g->d + 8 * h))), dx);
    __m256 dm = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g->dmin + 8 * h))), dx);
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum), acc);
    return _mm256_fnmadd_ps(dm, _mm256_cvtepi32_ps(imin), acc);
}

AVX2 void sm_matvec_q4_K_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols) {
    (void)xsum;
    const sm_block_q4_Kx16 *g = w;
    const sm_block_q8_K *x = xq;
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r += SM_X16, g += nb) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        for (int b = 0; b < nb; b++) {
            SM_PREFETCH_AHEAD(&g[b], sizeof g[b]);
            a0 = q4_K_half(a0, &g[b], 0, &x[b]);
            a1 = q4_K_half(a1, &g[b], 1, &x[b]);
        }
        _mm256_storeu_ps(out + r, a0);
        _mm256_storeu_ps(out + r + 8, a1);
    }
}

/* 8 codes c (int32) as d1 * c - n1, stored at y (sm_dequantize_q4_K's
 * arithmetic, so the floats are its floats) */
AVX2 static INLINE void store_codes(float *y, __m256i c, float d1, float n1) {
    _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(d1), _mm256_cvtepi32_ps(c)), _mm256_set1_ps(n1)));
}

/* A group's 16 rows as floats for prefill, as the AVX-512 dequantizer of
 * kernels_x86_kx16.c: quad after quad of rows, so four rows are written
 * from start to end; per super-block each row's sub-block factors
 * (d * scale, dmin * min) go to a small table first. */
AVX2 void sm_dequantize_q4_Kx16_avx2(float *out, const void *group, int cols) {
    const sm_block_q4_Kx16 *g = group;
    const __m256i low = _mm256_set1_epi32(0x0F), word = _mm256_set1_epi32(0xFFFF);
    float d1[8][SM_X16], n1[8][SM_X16];
    for (int l = 0; l < 4; l++)
        for (int b = 0; b < cols / SM_QK_K; b++) {
            int h = l / 2;   /* the half (8 rows) this quad is in */
            __m256i sc[2], mn[2];
            q4_K_scales(&g[b], h, sc, mn);
            __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g[b].d + 8 * h)));
            __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g[b].dmin + 8 * h)));
            for (int j = 0; j < 8; j++) {
                __m256i s = _mm256_and_si256(byte_of_lane_x2(sc[j / 4], j % 4), word);
                __m256i m = _mm256_and_si256(byte_of_lane_x2(mn[j / 4], j % 4), word);
                _mm256_storeu_ps(d1[j] + 8 * h, _mm256_mul_ps(d, _mm256_cvtepi32_ps(s)));
                _mm256_storeu_ps(n1[j] + 8 * h, _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(m)));
            }
            for (int k = 0; k < 4; k++)
                for (int hc = 0; hc < 2; hc++) {
                    __m128i u[4];
                    sm_transpose_quad(g[b].qs[8 * k + 4 * hc][4 * l], u);
SM_UNROLL(4)
                    for (int t = 0; t < 4; t++) {
                        int r = 4 * l + t;
                        float *y = out + (size_t)r * cols + b * SM_QK_K + 64 * k + 16 * hc;
                        __m256i v0 = _mm256_cvtepu8_epi32(u[t]), v1 = _mm256_cvtepu8_epi32(_mm_srli_si128(u[t], 8));
                        store_codes(y, _mm256_and_si256(v0, low), d1[2 * k][r], n1[2 * k][r]);
                        store_codes(y + 8, _mm256_and_si256(v1, low), d1[2 * k][r], n1[2 * k][r]);
                        store_codes(y + 32, _mm256_srli_epi32(v0, 4), d1[2 * k + 1][r], n1[2 * k + 1][r]);
                        store_codes(y + 40, _mm256_srli_epi32(v1, 4), d1[2 * k + 1][r], n1[2 * k + 1][r]);
                    }
                }
        }
}

/* ------------------------------------------------------------------ IQ4_XS
 * The same two 8-row halves on IQ4_XS's layout. A code's value + 128 (1 to
 * 241, unsigned) would overflow maddubs' pair sums, so two byte look-ups
 * split it as lo + 16 hi (each at most 15): a sub-block's 4 chunks give 8
 * maddubs per part, at most 8 x 2 x 15 x 128 = 30720 in int16. Per
 * sub-block the parts meet in int32 (hi weighed 16), the 128 comes off
 * with the activations' sums, and the rows' signed scales multiply; one
 * multiply-add per super-block applies d. The AVX-512 kernel's sums, so
 * each row's result is sm_matvec_iq4_xs_scalar's up to the order of float
 * sums (tests/unit/test_types_k.c). */

/* byte i of each 32-bit lane, zero-extended to the lane */
AVX2 static INLINE __m256i byte_of_lane(__m256i v, int i) {
    const __m256i base = _mm256_setr_epi32((int)0xFFFFFF00u, (int)0xFFFFFF04u, (int)0xFFFFFF08u, (int)0xFFFFFF0Cu,
                                           (int)0xFFFFFF00u, (int)0xFFFFFF04u, (int)0xFFFFFF08u, (int)0xFFFFFF0Cu);
    return _mm256_shuffle_epi8(v, _mm256_add_epi32(base, _mm256_set1_epi32(i)));
}

/* Half h's 8 rows' 6-bit scales: byte i of lane r of sc[0] is row 8h + r's
 * scale i, of sc[1] its scale 4 + i (interleave_k.h's sh / sl packing). */
AVX2 static INLINE void iq4_xs_scales(const sm_block_iq4_xsx16 *g, int h, __m256i sc[2]) {
    const __m256i low = _mm256_set1_epi8(0x0F);
    __m256i l = _mm256_loadu_si256((const __m256i *)g->sl[8 * h]);
    __m256i t = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(g->sh + 8 * h)));
    sc[0] = _mm256_or_si256(_mm256_and_si256(l, low),
                            _mm256_or_si256(_mm256_and_si256(t, _mm256_set1_epi32(0x3030)),
                                            _mm256_and_si256(_mm256_slli_epi32(t, 18), _mm256_set1_epi32(0x30300000))));
    sc[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l, 4), low),
                            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(t, 2), _mm256_set1_epi32(0x3030)),
                                            _mm256_and_si256(_mm256_slli_epi32(t, 20), _mm256_set1_epi32(0x30300000))));
}

AVX2 static INLINE __m256 iq4_xs_half(__m256 acc, const sm_block_iq4_xsx16 *g, int h, const sm_block_q8_K *x,
                                      __m256i tlo, __m256i thi) {
    const __m256i low = _mm256_set1_epi8(0x0F), bias = _mm256_set1_epi32(32);
    const int8_t *xs = x->qs;
    __m256i sc[2];
    iq4_xs_scales(g, h, sc);
    __m256i isum = _mm256_setzero_si256();
SM_UNROLL(8)
    for (int j = 0; j < 8; j++) {
        __m256i a = _mm256_setzero_si256(), b = a;
SM_UNROLL(4)
        for (int c = 0; c < 4; c++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)g->qs[4 * j + c][8 * h]);
            __m256i nl = _mm256_and_si256(v, low), nh = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
            __m256i x0 = bcast4(xs + 32 * j + 4 * c), x1 = bcast4(xs + 32 * j + 16 + 4 * c);
            a = _mm256_add_epi16(a, _mm256_maddubs_epi16(_mm256_shuffle_epi8(tlo, nl), x0));
            a = _mm256_add_epi16(a, _mm256_maddubs_epi16(_mm256_shuffle_epi8(tlo, nh), x1));
            b = _mm256_add_epi16(b, _mm256_maddubs_epi16(_mm256_shuffle_epi8(thi, nl), x0));
            b = _mm256_add_epi16(b, _mm256_maddubs_epi16(_mm256_shuffle_epi8(thi, nh), x1));
        }
        __m256i s = _mm256_add_epi32(_mm256_madd_epi16(a, _mm256_set1_epi16(1)), _mm256_madd_epi16(b, _mm256_set1_epi16(16)));
        s = _mm256_add_epi32(s, _mm256_set1_epi32(-128 * (x->bsums[2 * j] + x->bsums[2 * j + 1])));
        isum = _mm256_add_epi32(isum, _mm256_mullo_epi32(s, _mm256_sub_epi32(byte_of_lane(sc[j / 4], j % 4), bias)));
    }
    __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g->d + 8 * h))), _mm256_set1_ps(x->d));
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum), acc);
}

AVX2 void sm_matvec_iq4_xs_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols) {
    (void)xsum;
    const sm_block_iq4_xsx16 *g = w;
    const sm_block_q8_K *x = xq;
    __m256i tlo, thi;
    sm_iq4nl_split_avx2(sm_iq4nl_values, &tlo, &thi);
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r += SM_X16, g += nb) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        for (int b = 0; b < nb; b++) {
            SM_PREFETCH_AHEAD(&g[b], sizeof g[b]);
            a0 = iq4_xs_half(a0, &g[b], 0, &x[b], tlo, thi);
            a1 = iq4_xs_half(a1, &g[b], 1, &x[b], tlo, thi);
        }
        _mm256_storeu_ps(out + r, a0);
        _mm256_storeu_ps(out + r + 8, a1);
    }
}

/* The group's rows as floats: sm_dequantize_iq4_xs's arithmetic, (d *
 * (scale - 32)) * value, quad after quad of rows as the Q4_K one; a
 * sub-block's 4 chunks transpose into each row's 16 code bytes (low
 * nibbles its elements 0-15, high ones 16-31). */
AVX2 void sm_dequantize_iq4_xsx16_avx2(float *out, const void *group, int cols) {
    const sm_block_iq4_xsx16 *g = group;
    const __m128i values = _mm_loadu_si128((const __m128i *)sm_iq4nl_values), low = _mm_set1_epi8(0x0F);
    const __m256i bias = _mm256_set1_epi32(32);
    float dl[8][SM_X16];
    for (int l = 0; l < 4; l++)
        for (int b = 0; b < cols / SM_QK_K; b++) {
            int h = l / 2;
            __m256i sc[2];
            iq4_xs_scales(&g[b], h, sc);
            __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g[b].d + 8 * h)));
            for (int j = 0; j < 8; j++)
                _mm256_storeu_ps(dl[j] + 8 * h,
                                 _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(byte_of_lane(sc[j / 4], j % 4), bias))));
            for (int j = 0; j < 8; j++) {
                __m128i u[4];
                sm_transpose_quad(g[b].qs[4 * j][4 * l], u);
SM_UNROLL(4)
                for (int t = 0; t < 4; t++) {
                    int r = 4 * l + t;
                    __m256 f = _mm256_set1_ps(dl[j][r]);
                    float *y = out + (size_t)r * cols + b * SM_QK_K + 32 * j;
                    __m128i lo = _mm_shuffle_epi8(values, _mm_and_si128(u[t], low));
                    __m128i hi = _mm_shuffle_epi8(values, _mm_and_si128(_mm_srli_epi16(u[t], 4), low));
                    _mm256_storeu_ps(y, _mm256_mul_ps(f, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
                    _mm256_storeu_ps(y + 8, _mm256_mul_ps(f, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
                    _mm256_storeu_ps(y + 16, _mm256_mul_ps(f, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
                    _mm256_storeu_ps(y + 24, _mm256_mul_ps(f, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
                }
            }
        }
}

#endif

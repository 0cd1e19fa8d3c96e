/* kernels_x86_kx16.c - AVX-512 VNNI kernels of the 16-row interleaved
 * super-block layouts (interleave_k.h): matrix x vector products against
 * Q8_K activations and the group dequantizers for prefill. Each function
 * carries its own target attribute (the type table picks by CPU); each is
 * tested against the reference dots and dequantizers in
 * tests/unit/test_types_k.c. */
#include "interleave_k.h"
#include "simd.h"
#include "quant_k.h"

#include <string.h>

#if defined(__x86_64__)
#include "x86_isa.h"

#define AVX512 SM_TARGET_AVX512

/* 4 activation bytes (or 2 int16 sums) as one int32, broadcast */
AVX512 static inline __m512i bcast4(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm512_set1_epi32(v);
}

/* byte i of each 32-bit lane, zero-extended (as int32): a byte shuffle
 * whose control is byte 4q + i then three zeroing bytes (-1) per lane q */
AVX512 static inline __m512i byte_of_lane(__m512i v, int i) {
    const __m512i base = _mm512_broadcast_i32x4(_mm_setr_epi32((int)0xFFFFFF00u, (int)0xFFFFFF04u, (int)0xFFFFFF08u, (int)0xFFFFFF0Cu));
    return _mm512_shuffle_epi8(v, _mm512_add_epi32(base, _mm512_set1_epi32(i)));
}
/* byte i of each 32-bit lane, zero-extended into both 16-bit halves */
AVX512 static inline __m512i byte_of_lane_x2(__m512i v, int i) {
    const __m512i base = _mm512_broadcast_i32x4(_mm_setr_epi32((int)0xFF00FF00u, (int)0xFF04FF04u, (int)0xFF08FF08u, (int)0xFF0CFF0Cu));
    return _mm512_shuffle_epi8(v, _mm512_add_epi32(base, _mm512_set1_epi32(i * 0x00010001)));
}

/* The 16 rows' 6-bit scales (sc[0]: sub-blocks 0-3, sc[1]: 4-7, byte i of
 * lane r = row r's sub-block 4h + i) and mins (mn[h]) of one super-block. */
AVX512 static inline void k4_scales(const uint8_t (*sclo)[SM_X16][4], const uint8_t (*schi)[4], __m512i sc[2], __m512i mn[2]) {
    const __m512i low = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30);
    __m512i l0 = _mm512_loadu_si512(sclo[0]), l1 = _mm512_loadu_si512(sclo[1]), h = _mm512_loadu_si512(schi);
    sc[0] = _mm512_or_si512(_mm512_and_si512(l0, low), _mm512_and_si512(_mm512_slli_epi16(h, 4), top));
    sc[1] = _mm512_or_si512(_mm512_and_si512(l1, low), _mm512_and_si512(_mm512_slli_epi16(h, 2), top));
    mn[0] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l0, 4), low), _mm512_and_si512(h, top));
    mn[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l1, 4), low), _mm512_and_si512(_mm512_srli_epi16(h, 2), top));
}
AVX512 static inline void q4_K_scales(const sm_block_q4_Kx16 *g, __m512i sc[2], __m512i mn[2]) {
    k4_scales(g->sclo, g->schi, sc, mn);
}

/* Q4_K, sixteen rows per pass. Per super-block and pair of sub-blocks k:
 * 8 loads of 16 rows x 4 code bytes; the low nibbles meet the activations
 * of sub-block 2k, the high nibbles - masked in place, so worth 16 times
 * their code - those of 2k + 1 (the sum is shifted back, exactly, once).
 * Each sub-block's int32 sums take the rows' scales by one multiply; the
 * mins meet the activations' 16-element sums in pairs (vpdpwssd). */
AVX512 void sm_matvec_q4_K_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows,
                                      int cols) {
    (void)xsum;
    const sm_block_q4_Kx16 *g = w;
    const sm_block_q8_K *x = xq;
    const __m512i low = _mm512_set1_epi8(0x0F), high = _mm512_set1_epi8((char)0xF0);
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r += SM_X16, g += nb) {
        __m512 acc = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const int8_t *xs = x[b].qs;
            __m512i sc[2], mn[2];
            q4_K_scales(&g[b], sc, mn);
            __m512i isum = _mm512_setzero_si512(), imin = _mm512_setzero_si512();
SM_UNROLL(4)
            for (int k = 0; k < 4; k++) {
                __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
SM_UNROLL(8)
                for (int c = 0; c < 8; c++) {
                    __m512i v = _mm512_loadu_si512(g[b].qs[8 * k + c]);
                    lo = _mm512_dpbusd_epi32(lo, _mm512_and_si512(v, low), bcast4(xs + 64 * k + 4 * c));
                    hi = _mm512_dpbusd_epi32(hi, _mm512_and_si512(v, high), bcast4(xs + 64 * k + 32 + 4 * c));
                }
                int j0 = 2 * k, j1 = 2 * k + 1;
                isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(lo, byte_of_lane(sc[j0 / 4], j0 % 4)));
                isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(_mm512_srai_epi32(hi, 4), byte_of_lane(sc[j1 / 4], j1 % 4)));
            }
SM_UNROLL(8)
            for (int j = 0; j < 8; j++) imin = _mm512_dpwssd_epi32(imin, byte_of_lane_x2(mn[j / 4], j % 4), bcast4(x[b].bsums + 2 * j));
            __m512 dx = _mm512_set1_ps(x[b].d);
            __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].d)), dx);
            __m512 dm = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].dmin)), dx);
            acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(isum), acc);
            acc = _mm512_fnmadd_ps(dm, _mm512_cvtepi32_ps(imin), acc);
        }
        _mm512_storeu_ps(out + r, acc);
    }
}

/* Dequantizing a group for prefill, four rows (a quad) at a time so that
 * the stores stream along few rows: four 16-byte loads (4 code bytes of
 * each of the quad's rows, from four chunks) are transposed by two rounds
 * of unpacks into 16 consecutive code bytes per row, which widen to 16
 * int32 and leave as whole 16-float stores. Each row's per-sub-block
 * factors come broadcast from a small table. */

/* sm_dequantize_q4_K's arithmetic: (d * scale) * code - dmin * min. Quad
 * after quad, so that four rows are written from start to end (the factors
 * of a super-block are recomputed per quad: a few dozen instructions). */
AVX512 void sm_dequantize_q4_Kx16_avx512(float *out, const void *group, int cols) {
    const sm_block_q4_Kx16 *g = group;
    const __m512i low = _mm512_set1_epi32(0x0F);
    float d1[8][SM_X16], n1[8][SM_X16];
    for (int l = 0; l < 4; l++)
        for (int b = 0; b < cols / SM_QK_K; b++) {
            __m512i sc[2], mn[2];
            q4_K_scales(&g[b], sc, mn);
            __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].d));
            __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].dmin));
            for (int j = 0; j < 8; j++) {
                _mm512_storeu_ps(d1[j], _mm512_mul_ps(d, _mm512_cvtepi32_ps(byte_of_lane(sc[j / 4], j % 4))));
                _mm512_storeu_ps(n1[j], _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(byte_of_lane(mn[j / 4], j % 4))));
            }
            for (int k = 0; k < 4; k++)
                for (int h = 0; h < 2; h++) {
                    __m128i u[4];
                    sm_transpose_quad(g[b].qs[8 * k + 4 * h][4 * l], u);
SM_UNROLL(4)
                    for (int t = 0; t < 4; t++) {
                        int r = 4 * l + t;
                        __m512i v = _mm512_cvtepu8_epi32(u[t]);
                        float *y = out + (size_t)r * cols + b * SM_QK_K + 64 * k + 16 * h;
                        __m512 lo = _mm512_cvtepi32_ps(_mm512_and_si512(v, low)), hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4));
                        _mm512_storeu_ps(y, _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(d1[2 * k][r]), lo), _mm512_set1_ps(n1[2 * k][r])));
                        _mm512_storeu_ps(y + 32, _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(d1[2 * k + 1][r]), hi),
                                                               _mm512_set1_ps(n1[2 * k + 1][r])));
                    }
                }
        }
}

/* Q5_K (Q4_K's scales, mins and nibbles plus a fifth bit per code in qh),
 * sixteen rows per pass: the nibbles go as Q4_K's (the high ones masked
 * in place, worth 16x); the fifth bits meet the same activations in their
 * own sums, masked in place out of the qh chunk that serves the code chunk
 * (bit 2k for the low nibbles of chunk 8k + m, 2k + 1 for the high ones),
 * so worth 2^(2k) and 2^(2k+1) times their bit; once per sub-block the bit
 * sums are brought to 16x (exact shifts: every term is a multiple of the
 * power of two) and added. Scales and mins as Q4_K's. */
AVX512 static inline __m512i pow2_to_16(__m512i v, int p) {
    return p < 4 ? _mm512_slli_epi32(v, 4 - p) : p > 4 ? _mm512_srai_epi32(v, p - 4) : v;
}

AVX512 void sm_matvec_q5_K_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows,
                                      int cols) {
    (void)xsum;
    const sm_block_q5_Kx16 *g = w;
    const sm_block_q8_K *x = xq;
    const __m512i low = _mm512_set1_epi8(0x0F), high = _mm512_set1_epi8((char)0xF0);
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r += SM_X16, g += nb) {
        __m512 acc = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const int8_t *xs = x[b].qs;
            __m512i sc[2], mn[2];
            k4_scales(g[b].sclo, g[b].schi, sc, mn);
            __m512i isum = _mm512_setzero_si512(), imin = _mm512_setzero_si512();
SM_UNROLL(4)
            for (int k = 0; k < 4; k++) {
                const __m512i blo = _mm512_set1_epi8((char)(1 << (2 * k))), bhi = _mm512_set1_epi8((char)(2 << (2 * k)));
                __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
                __m512i hl = _mm512_setzero_si512(), hh = _mm512_setzero_si512();
SM_UNROLL(8)
                for (int c = 0; c < 8; c++) {
                    __m512i v = _mm512_loadu_si512(g[b].qs[8 * k + c]), q = _mm512_loadu_si512(g[b].qh[c]);
                    __m512i xl = bcast4(xs + 64 * k + 4 * c), xh = bcast4(xs + 64 * k + 32 + 4 * c);
                    lo = _mm512_dpbusd_epi32(lo, _mm512_and_si512(v, low), xl);
                    hi = _mm512_dpbusd_epi32(hi, _mm512_and_si512(v, high), xh);
                    hl = _mm512_dpbusd_epi32(hl, _mm512_and_si512(q, blo), xl);
                    hh = _mm512_dpbusd_epi32(hh, _mm512_and_si512(q, bhi), xh);
                }
                int j0 = 2 * k, j1 = 2 * k + 1;
                __m512i s0 = _mm512_add_epi32(lo, pow2_to_16(hl, 2 * k));
                __m512i s1 = _mm512_add_epi32(_mm512_srai_epi32(hi, 4), pow2_to_16(hh, 2 * k + 1));
                isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(s0, byte_of_lane(sc[j0 / 4], j0 % 4)));
                isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(s1, byte_of_lane(sc[j1 / 4], j1 % 4)));
            }
SM_UNROLL(8)
            for (int j = 0; j < 8; j++) imin = _mm512_dpwssd_epi32(imin, byte_of_lane_x2(mn[j / 4], j % 4), bcast4(x[b].bsums + 2 * j));
            __m512 dx = _mm512_set1_ps(x[b].d);
            __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].d)), dx);
            __m512 dm = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].dmin)), dx);
            acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(isum), acc);
            acc = _mm512_fnmadd_ps(dm, _mm512_cvtepi32_ps(imin), acc);
        }
        _mm512_storeu_ps(out + r, acc);
    }
}

/* sm_dequantize_q5_K's arithmetic: (d * scale) * code - dmin * min; quad
 * after quad as the Q4_K one. Chunks 8k + 4h.. of qs and 4h.. of qh
 * transpose into 16 consecutive bytes per row: elements 64k + 16h + 0..15
 * (low nibbles, qh bit 2k) and 32 further on (high nibbles, bit 2k + 1). */
AVX512 void sm_dequantize_q5_Kx16_avx512(float *out, const void *group, int cols) {
    const sm_block_q5_Kx16 *g = group;
    const __m512i low = _mm512_set1_epi32(0x0F), b16 = _mm512_set1_epi32(16);
    float d1[8][SM_X16], n1[8][SM_X16];
    for (int l = 0; l < 4; l++)
        for (int b = 0; b < cols / SM_QK_K; b++) {
            __m512i sc[2], mn[2];
            k4_scales(g[b].sclo, g[b].schi, sc, mn);
            __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].d));
            __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].dmin));
            for (int j = 0; j < 8; j++) {
                _mm512_storeu_ps(d1[j], _mm512_mul_ps(d, _mm512_cvtepi32_ps(byte_of_lane(sc[j / 4], j % 4))));
                _mm512_storeu_ps(n1[j], _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(byte_of_lane(mn[j / 4], j % 4))));
            }
            for (int h = 0; h < 2; h++) {
                __m128i uh[4];
                sm_transpose_quad(g[b].qh[4 * h][4 * l], uh);
                for (int k = 0; k < 4; k++) {
                    __m128i u[4];
                    sm_transpose_quad(g[b].qs[8 * k + 4 * h][4 * l], u);
SM_UNROLL(4)
                    for (int t = 0; t < 4; t++) {
                        int r = 4 * l + t;
                        __m512i v = _mm512_cvtepu8_epi32(u[t]), q = _mm512_cvtepu8_epi32(uh[t]);
                        /* the fifth bits moved to bit 4 */
                        __m512i q0 = _mm512_and_si512(_mm512_srli_epi32(_mm512_slli_epi32(q, 4), 2 * k), b16);
                        __m512i q1 = _mm512_and_si512(_mm512_srli_epi32(_mm512_slli_epi32(q, 3), 2 * k), b16);
                        float *y = out + (size_t)r * cols + b * SM_QK_K + 64 * k + 16 * h;
                        __m512 lo = _mm512_cvtepi32_ps(_mm512_or_si512(_mm512_and_si512(v, low), q0));
                        __m512 hi = _mm512_cvtepi32_ps(_mm512_or_si512(_mm512_srli_epi32(v, 4), q1));
                        _mm512_storeu_ps(y, _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(d1[2 * k][r]), lo), _mm512_set1_ps(n1[2 * k][r])));
                        _mm512_storeu_ps(y + 32, _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(d1[2 * k + 1][r]), hi),
                                                               _mm512_set1_ps(n1[2 * k + 1][r])));
                    }
                }
            }
        }
}

/* IQ4_XS: the 16 rows' signed scales of sub-blocks 0-3 (sc[0]) and 4-7
 * (sc[1]) as bytes (value + 32; byte i of lane r = row r's sub-block
 * 4h + i), from the low nibbles in sl and the top bits in sh, whose
 * placement (interleave_k.h) needs one mask and one shift per half. */
AVX512 static inline void iq4_xs_scales(const sm_block_iq4_xsx16 *g, __m512i sc[2]) {
    const __m512i low = _mm512_set1_epi8(0x0F);
    __m512i l = _mm512_loadu_si512(g->sl), h = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)g->sh));
    sc[0] = _mm512_or_si512(_mm512_and_si512(l, low),
                            _mm512_or_si512(_mm512_and_si512(h, _mm512_set1_epi32(0x3030)),
                                            _mm512_and_si512(_mm512_slli_epi32(h, 18), _mm512_set1_epi32(0x30300000))));
    sc[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), low),
                            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(h, 2), _mm512_set1_epi32(0x3030)),
                                            _mm512_and_si512(_mm512_slli_epi32(h, 20), _mm512_set1_epi32(0x30300000))));
}

/* IQ4_XS, sixteen rows per pass. Per sub-block j: 4 loads of 16 rows x 4
 * code bytes; both nibbles pick their value + 128 (unsigned) by a byte
 * shuffle and meet the activations in vpdpbusd, the sums starting at -128
 * times the sub-block's activation sum; one multiply applies the rows'
 * scales. */
AVX512 void sm_matvec_iq4_xs_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows,
                                       int cols) {
    (void)xsum;
    const sm_block_iq4_xsx16 *g = w;
    const sm_block_q8_K *x = xq;
    const __m512i low = _mm512_set1_epi8(0x0F), bias = _mm512_set1_epi32(32);
    const __m512i table = _mm512_add_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)sm_iq4nl_values)),
                                          _mm512_set1_epi8((char)0x80));
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r += SM_X16, g += nb) {
        __m512 acc = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const int8_t *xs = x[b].qs;
            __m512i sc[2];
            iq4_xs_scales(&g[b], sc);
            __m512i isum = _mm512_setzero_si512();
SM_UNROLL(8)
            for (int j = 0; j < 8; j++) {
                __m512i s0 = _mm512_set1_epi32(-128 * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1])), s1 = _mm512_setzero_si512();
SM_UNROLL(4)
                for (int c = 0; c < 4; c++) {
                    __m512i v = _mm512_loadu_si512(g[b].qs[4 * j + c]);
                    s0 = _mm512_dpbusd_epi32(s0, _mm512_shuffle_epi8(table, _mm512_and_si512(v, low)), bcast4(xs + 32 * j + 4 * c));
                    s1 = _mm512_dpbusd_epi32(s1, _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(v, 4), low)),
                                             bcast4(xs + 32 * j + 16 + 4 * c));
                }
                __m512i scale = _mm512_sub_epi32(byte_of_lane(sc[j / 4], j % 4), bias);
                isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), scale));
            }
            __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].d)), _mm512_set1_ps(x[b].d));
            acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(isum), acc);
        }
        _mm512_storeu_ps(out + r, acc);
    }
}

/* sm_dequantize_iq4_xs's arithmetic: (d * scale) * value; quad after quad
 * as the Q4_K one. A sub-block's 4 chunks transpose into its 16 code bytes
 * per row: the low nibbles are its elements 0-15, the high ones 16-31. */
AVX512 void sm_dequantize_iq4_xsx16_avx512(float *out, const void *group, int cols) {
    const sm_block_iq4_xsx16 *g = group;
    const __m512i low = _mm512_set1_epi32(0x0F), bias = _mm512_set1_epi32(32);
    const __m512 values = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)sm_iq4nl_values)));
    float dl[8][SM_X16];
    for (int l = 0; l < 4; l++)
        for (int b = 0; b < cols / SM_QK_K; b++) {
            __m512i sc[2];
            iq4_xs_scales(&g[b], sc);
            __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].d));
            for (int j = 0; j < 8; j++)
                _mm512_storeu_ps(dl[j], _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_sub_epi32(byte_of_lane(sc[j / 4], j % 4), bias))));
            for (int j = 0; j < 8; j++) {
                __m128i u[4];
                sm_transpose_quad(g[b].qs[4 * j][4 * l], u);
SM_UNROLL(4)
                for (int t = 0; t < 4; t++) {
                    int r = 4 * l + t;
                    __m512i v = _mm512_cvtepu8_epi32(u[t]);
                    __m512 f = _mm512_set1_ps(dl[j][r]);
                    float *y = out + (size_t)r * cols + b * SM_QK_K + 32 * j;
                    _mm512_storeu_ps(y, _mm512_mul_ps(f, _mm512_permutexvar_ps(_mm512_and_si512(v, low), values)));
                    _mm512_storeu_ps(y + 16, _mm512_mul_ps(f, _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), values)));
                }
            }
        }
}

/* Q6_K, sixteen rows per pass. Per half h and chunk m: loads of ql chunks
 * 16h + m and 16h + 8 + m and qh chunk 8h + m (16 rows x 4 bytes each)
 * give the 6-bit codes of four 4-column pieces (k = 0..3); the top bits of
 * k = 0, 1 come through a byte shuffle of the low qh nibble (a table), of
 * k = 2 and 3 by masks (k = 3 is taken as 4 times its code, the nibble
 * shifted under the top bits, and its sums shifted back, exactly, once per
 * sub-block: a shift fewer per 4 pieces). Each 16-element sub-block's sums
 * start at -32 times its activation sum and take the rows' scales (one
 * sign-extending load) by one multiply. */
AVX512 void sm_matvec_q6_K_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows,
                                     int cols) {
    (void)xsum;
    const sm_block_q6_Kx16 *g = w;
    const sm_block_q8_K *x = xq;
    const __m512i low = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30);
    const __m512i top4 = _mm512_set1_epi8(0x3C), high2 = _mm512_set1_epi8((char)0xC0);
    const __m512i t0 = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 16, 32, 48, 0, 16, 32, 48, 0, 16, 32, 48, 0, 16, 32, 48));
    const __m512i t1 = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 0, 0, 0, 16, 16, 16, 16, 32, 32, 32, 32, 48, 48, 48, 48));
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r += SM_X16, g += nb) {
        __m512 acc = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const int8_t *xs = x[b].qs;
            __m512i isum = _mm512_setzero_si512();
SM_UNROLL(2)
            for (int h = 0; h < 2; h++)
SM_UNROLL(2)
                for (int mh = 0; mh < 2; mh++) {
                    __m512i s[4];
                    for (int k = 0; k < 4; k++) s[k] = _mm512_set1_epi32((k == 3 ? -128 : -32) * x[b].bsums[8 * h + 2 * k + mh]);
SM_UNROLL(4)
                    for (int m4 = 0; m4 < 4; m4++) {
                        int m = 4 * mh + m4;
                        __m512i a = _mm512_loadu_si512(SM_Q6X16_QL(&g[b], 16 * h + m)), bq = _mm512_loadu_si512(SM_Q6X16_QL(&g[b], 16 * h + 8 + m));
                        __m512i hq = _mm512_loadu_si512(SM_Q6X16_QH(&g[b], 8 * h + m)), hl = _mm512_and_si512(hq, low);
                        __m512i c0 = _mm512_or_si512(_mm512_and_si512(a, low), _mm512_shuffle_epi8(t0, hl));
                        __m512i c1 = _mm512_or_si512(_mm512_and_si512(bq, low), _mm512_shuffle_epi8(t1, hl));
                        __m512i c2 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(a, 4), low), _mm512_and_si512(hq, top));
                        /* k = 3 as 4 times its code: the high nibble moved to bits 2-5
                         * under its top bits, which stay at 6-7 (one shift, not two) */
                        __m512i c3 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(bq, 2), top4), _mm512_and_si512(hq, high2));
                        const int8_t *xp = xs + 128 * h + 4 * m;
                        s[0] = _mm512_dpbusd_epi32(s[0], c0, bcast4(xp));
                        s[1] = _mm512_dpbusd_epi32(s[1], c1, bcast4(xp + 32));
                        s[2] = _mm512_dpbusd_epi32(s[2], c2, bcast4(xp + 64));
                        s[3] = _mm512_dpbusd_epi32(s[3], c3, bcast4(xp + 96));
                    }
                    s[3] = _mm512_srai_epi32(s[3], 2);   /* exact: every term was a multiple of 4 */
                    for (int k = 0; k < 4; k++) {
                        __m512i scale = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)g[b].sc[8 * h + 2 * k + mh]));
                        isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(s[k], scale));
                    }
                }
            __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].d)), _mm512_set1_ps(x[b].d));
            acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(isum), acc);
        }
        _mm512_storeu_ps(out + r, acc);
    }
}

/* sm_dequantize_q6_K's arithmetic: (d * scale) * (code - 32). Per
 * super-block the 16 rows' factors go to a small table once; then quad
 * after quad of rows, chunks 4mh..4mh+3 of half h transpose (as Q4_K's, the
 * chunks SM_Q6X16_CHUNK_STRIDE apart)
 * into 16 consecutive bytes per row of ql (both k parities) and of qh,
 * whose codes are the elements 128h + 32k + 16mh + 0..15. */
AVX512 void sm_dequantize_q6_Kx16_avx512(float *out, const void *group, int cols) {
    const sm_block_q6_Kx16 *g = group;
    const __m128i low = _mm_set1_epi8(0x0F), top = _mm_set1_epi8(0x30);
    const __m512i bias = _mm512_set1_epi32(32);
    float dl[16][SM_X16];
    for (int b = 0; b < cols / SM_QK_K; b++) {
        __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].d));
        for (int j = 0; j < 16; j++)
            _mm512_storeu_ps(dl[j], _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)g[b].sc[j])))));
        for (int l = 0; l < 4; l++)
            for (int h = 0; h < 2; h++)
                for (int mh = 0; mh < 2; mh++) {
                    __m128i ua[4], ub[4], uh[4];
                    sm_transpose_quad_stride(SM_Q6X16_QL(&g[b], 16 * h + 4 * mh)[4 * l], SM_Q6X16_CHUNK_STRIDE, ua);
                    sm_transpose_quad_stride(SM_Q6X16_QL(&g[b], 16 * h + 8 + 4 * mh)[4 * l], SM_Q6X16_CHUNK_STRIDE, ub);
                    sm_transpose_quad_stride(SM_Q6X16_QH(&g[b], 8 * h + 4 * mh)[4 * l], SM_Q6X16_CHUNK_STRIDE, uh);
SM_UNROLL(4)
                    for (int t = 0; t < 4; t++) {
                        int r = 4 * l + t;
                        __m128i a = ua[t], bq = ub[t], hq = uh[t], c[4];
                        c[0] = _mm_or_si128(_mm_and_si128(a, low), _mm_and_si128(_mm_slli_epi16(hq, 4), top));
                        c[1] = _mm_or_si128(_mm_and_si128(bq, low), _mm_and_si128(_mm_slli_epi16(hq, 2), top));
                        c[2] = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(a, 4), low), _mm_and_si128(hq, top));
                        c[3] = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(bq, 4), low), _mm_and_si128(_mm_srli_epi16(hq, 2), top));
                        float *y = out + (size_t)r * cols + b * SM_QK_K + 128 * h + 16 * mh;
                        for (int k = 0; k < 4; k++) {
                            __m512 q = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(c[k]), bias));
                            _mm512_storeu_ps(y + 32 * k, _mm512_mul_ps(_mm512_set1_ps(dl[8 * h + 2 * k + mh][r]), q));
                        }
                    }
                }
    }
}


/* ------------------------------------------------ against a batch (prefill)
 * The same arithmetic against several tokens' Q8_K rows: each loaded and
 * unpacked chunk of a super-block feeds one VNNI instruction per token of a
 * tile (4 tokens for Q4_K, 3 for Q6_K: what the registers hold), and every
 * token's sums and scales are applied in the one-token kernel's order, so
 * each result is bit for bit what sm_matvec_*_x16_avx512 gives that token. */
#define INLINE inline __attribute__((always_inline))
#define Q8K(xq, stride, t, b) ((const sm_block_q8_K *)((const uint8_t *)(xq) + (size_t)(t) * (stride)) + (b))

/* Q4_K/Q5_K's end of a super-block, per token: the mins meet the
 * activations' 16-element sums in pairs, then the scales and the mins'
 * scales apply (the one-token kernels' order). */
AVX512 static INLINE void k4_block_to_acc(__m512 *acc, const __m512i *isum, const __m512i mn[2], const uint16_t *dp,
                                          const uint16_t *dminp, const void *xq, size_t xq_stride, int T, int b) {
    __m512i imin[4];
SM_UNROLL(4)
    for (int t = 0; t < T; t++) imin[t] = _mm512_setzero_si512();
SM_UNROLL(8)
    for (int j = 0; j < 8; j++) {
        __m512i m = byte_of_lane_x2(mn[j / 4], j % 4);
SM_UNROLL(4)
        for (int t = 0; t < T; t++) imin[t] = _mm512_dpwssd_epi32(imin[t], m, bcast4(Q8K(xq, xq_stride, t, b)->bsums + 2 * j));
    }
    __m512 d16 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)dp));
    __m512 dm16 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)dminp));
SM_UNROLL(4)
    for (int t = 0; t < T; t++) {
        __m512 dx = _mm512_set1_ps(Q8K(xq, xq_stride, t, b)->d);
        __m512 d = _mm512_mul_ps(d16, dx), dm = _mm512_mul_ps(dm16, dx);
        acc[t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(isum[t]), acc[t]);
        acc[t] = _mm512_fnmadd_ps(dm, _mm512_cvtepi32_ps(imin[t]), acc[t]);
    }
}

/* A tile's 16 results per token into its rows of c (added with accumulate). */
AVX512 static INLINE void store_tile(float *c, size_t ldc, const __m512 *acc, int T, int accumulate) {
SM_UNROLL(6)
    for (int t = 0; t < T; t++) {
        float *p = c + (size_t)t * ldc;
        _mm512_storeu_ps(p, accumulate ? _mm512_add_ps(_mm512_loadu_ps(p), acc[t]) : acc[t]);
    }
}

AVX512 static INLINE void q4_K_batch_tile(float *c, size_t ldc, const sm_block_q4_Kx16 *g, const void *xq,
                                          size_t xq_stride, int T, int nb, int accumulate) {
    const __m512i low = _mm512_set1_epi8(0x0F), high = _mm512_set1_epi8((char)0xF0);
    __m512 acc[4];
SM_UNROLL(4)
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512i sc[2], mn[2], isum[4], lo[4], hi[4];
        q4_K_scales(&g[b], sc, mn);
SM_UNROLL(4)
        for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
SM_UNROLL(4)
        for (int k = 0; k < 4; k++) {
SM_UNROLL(4)
            for (int t = 0; t < T; t++) lo[t] = hi[t] = _mm512_setzero_si512();
SM_UNROLL(8)
            for (int ch = 0; ch < 8; ch++) {
                __m512i v = _mm512_loadu_si512(g[b].qs[8 * k + ch]);
                __m512i vl = _mm512_and_si512(v, low), vh = _mm512_and_si512(v, high);
SM_UNROLL(4)
                for (int t = 0; t < T; t++) {
                    const int8_t *xs = Q8K(xq, xq_stride, t, b)->qs + 64 * k + 4 * ch;
                    lo[t] = _mm512_dpbusd_epi32(lo[t], vl, bcast4(xs));
                    hi[t] = _mm512_dpbusd_epi32(hi[t], vh, bcast4(xs + 32));
                }
            }
            int j0 = 2 * k, j1 = 2 * k + 1;
            __m512i s0 = byte_of_lane(sc[j0 / 4], j0 % 4), s1 = byte_of_lane(sc[j1 / 4], j1 % 4);
SM_UNROLL(4)
            for (int t = 0; t < T; t++) {
                isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(lo[t], s0));
                isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(_mm512_srai_epi32(hi[t], 4), s1));
            }
        }
        k4_block_to_acc(acc, isum, mn, g[b].d, g[b].dmin, xq, xq_stride, T, b);
    }
    store_tile(c, ldc, acc, T, accumulate);
}

#ifndef Q6K_TILE
#define Q6K_TILE 3   /* 4 spills: the 4 unpacked chunks and 4 sums per token fill the registers */
#endif
AVX512 static INLINE void q6_K_batch_tile(float *c, size_t ldc, const sm_block_q6_Kx16 *g, const void *xq,
                                          size_t xq_stride, int T, int nb, int accumulate) {
    const __m512i low = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30);
    const __m512i top4 = _mm512_set1_epi8(0x3C), high2 = _mm512_set1_epi8((char)0xC0);
    const __m512i t0 = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 16, 32, 48, 0, 16, 32, 48, 0, 16, 32, 48, 0, 16, 32, 48));
    const __m512i t1 = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 0, 0, 0, 16, 16, 16, 16, 32, 32, 32, 32, 48, 48, 48, 48));
    __m512 acc[Q6K_TILE];
SM_UNROLL(4)
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512i isum[Q6K_TILE];
SM_UNROLL(4)
        for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
SM_UNROLL(2)
        for (int h = 0; h < 2; h++)
SM_UNROLL(2)
            for (int mh = 0; mh < 2; mh++) {
                __m512i sk[Q6K_TILE][4];
SM_UNROLL(4)
                for (int t = 0; t < T; t++) {
                    const int16_t *bs = Q8K(xq, xq_stride, t, b)->bsums;
                    for (int k = 0; k < 4; k++) sk[t][k] = _mm512_set1_epi32((k == 3 ? -128 : -32) * bs[8 * h + 2 * k + mh]);
                }
SM_UNROLL(4)
                for (int m4 = 0; m4 < 4; m4++) {
                    int m = 4 * mh + m4;
                    __m512i a = _mm512_loadu_si512(SM_Q6X16_QL(&g[b], 16 * h + m)), bq = _mm512_loadu_si512(SM_Q6X16_QL(&g[b], 16 * h + 8 + m));
                    __m512i hq = _mm512_loadu_si512(SM_Q6X16_QH(&g[b], 8 * h + m)), hl = _mm512_and_si512(hq, low);
                    __m512i c0 = _mm512_or_si512(_mm512_and_si512(a, low), _mm512_shuffle_epi8(t0, hl));
                    __m512i c1 = _mm512_or_si512(_mm512_and_si512(bq, low), _mm512_shuffle_epi8(t1, hl));
                    __m512i c2 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(a, 4), low), _mm512_and_si512(hq, top));
                    __m512i c3 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(bq, 2), top4), _mm512_and_si512(hq, high2));
SM_UNROLL(4)
                    for (int t = 0; t < T; t++) {
                        const int8_t *xp = Q8K(xq, xq_stride, t, b)->qs + 128 * h + 4 * m;
                        sk[t][0] = _mm512_dpbusd_epi32(sk[t][0], c0, bcast4(xp));
                        sk[t][1] = _mm512_dpbusd_epi32(sk[t][1], c1, bcast4(xp + 32));
                        sk[t][2] = _mm512_dpbusd_epi32(sk[t][2], c2, bcast4(xp + 64));
                        sk[t][3] = _mm512_dpbusd_epi32(sk[t][3], c3, bcast4(xp + 96));
                    }
                }
SM_UNROLL(4)
                for (int k = 0; k < 4; k++) {
                    __m512i scale = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)g[b].sc[8 * h + 2 * k + mh]));
SM_UNROLL(4)
                    for (int t = 0; t < T; t++) {
                        __m512i sum = k == 3 ? _mm512_srai_epi32(sk[t][3], 2) : sk[t][k];   /* exact: multiples of 4 */
                        isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(sum, scale));
                    }
                }
            }
        __m512 d16 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].d));
SM_UNROLL(4)
        for (int t = 0; t < T; t++) {
            __m512 d = _mm512_mul_ps(d16, _mm512_set1_ps(Q8K(xq, xq_stride, t, b)->d));
            acc[t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(isum[t]), acc[t]);
        }
    }
    store_tile(c, ldc, acc, T, accumulate);
}

AVX512 static INLINE void q5_K_batch_tile(float *c, size_t ldc, const sm_block_q5_Kx16 *g, const void *xq,
                                          size_t xq_stride, int T, int nb, int accumulate) {
    const __m512i low = _mm512_set1_epi8(0x0F), high = _mm512_set1_epi8((char)0xF0);
    __m512 acc[3];
SM_UNROLL(3)
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512i sc[2], mn[2], isum[3];
        k4_scales(g[b].sclo, g[b].schi, sc, mn);
SM_UNROLL(3)
        for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
SM_UNROLL(4)
        for (int k = 0; k < 4; k++) {
            const __m512i blo = _mm512_set1_epi8((char)(1 << (2 * k))), bhi = _mm512_set1_epi8((char)(2 << (2 * k)));
            __m512i lo[3], hi[3], hl[3], hh[3];
SM_UNROLL(3)
            for (int t = 0; t < T; t++) lo[t] = hi[t] = hl[t] = hh[t] = _mm512_setzero_si512();
SM_UNROLL(8)
            for (int ch = 0; ch < 8; ch++) {
                __m512i v = _mm512_loadu_si512(g[b].qs[8 * k + ch]), q = _mm512_loadu_si512(g[b].qh[ch]);
                __m512i vl = _mm512_and_si512(v, low), vh = _mm512_and_si512(v, high);
                __m512i ql = _mm512_and_si512(q, blo), qh = _mm512_and_si512(q, bhi);
SM_UNROLL(3)
                for (int t = 0; t < T; t++) {
                    const int8_t *xs = Q8K(xq, xq_stride, t, b)->qs + 64 * k + 4 * ch;
                    __m512i xl = bcast4(xs), xh = bcast4(xs + 32);
                    lo[t] = _mm512_dpbusd_epi32(lo[t], vl, xl);
                    hi[t] = _mm512_dpbusd_epi32(hi[t], vh, xh);
                    hl[t] = _mm512_dpbusd_epi32(hl[t], ql, xl);
                    hh[t] = _mm512_dpbusd_epi32(hh[t], qh, xh);
                }
            }
            int j0 = 2 * k, j1 = 2 * k + 1;
            __m512i c0 = byte_of_lane(sc[j0 / 4], j0 % 4), c1 = byte_of_lane(sc[j1 / 4], j1 % 4);
SM_UNROLL(3)
            for (int t = 0; t < T; t++) {
                __m512i s0 = _mm512_add_epi32(lo[t], pow2_to_16(hl[t], 2 * k));
                __m512i s1 = _mm512_add_epi32(_mm512_srai_epi32(hi[t], 4), pow2_to_16(hh[t], 2 * k + 1));
                isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(s0, c0));
                isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(s1, c1));
            }
        }
        k4_block_to_acc(acc, isum, mn, g[b].d, g[b].dmin, xq, xq_stride, T, b);
    }
    store_tile(c, ldc, acc, T, accumulate);
}

AVX512 static INLINE void iq4_xs_batch_tile(float *c, size_t ldc, const sm_block_iq4_xsx16 *g, const void *xq,
                                           size_t xq_stride, int T, int nb, int accumulate) {
    const __m512i low = _mm512_set1_epi8(0x0F), bias = _mm512_set1_epi32(32);
    const __m512i table = _mm512_add_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)sm_iq4nl_values)),
                                          _mm512_set1_epi8((char)0x80));
    __m512 acc[6];
SM_UNROLL(6)
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512i sc[2], isum[6];
        iq4_xs_scales(&g[b], sc);
SM_UNROLL(6)
        for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
SM_UNROLL(8)
        for (int j = 0; j < 8; j++) {
            __m512i s[6];
SM_UNROLL(6)
            for (int t = 0; t < T; t++) {
                const int16_t *bs = Q8K(xq, xq_stride, t, b)->bsums;
                s[t] = _mm512_set1_epi32(-128 * (bs[2 * j] + bs[2 * j + 1]));
            }
SM_UNROLL(4)
            for (int ch = 0; ch < 4; ch++) {
                __m512i v = _mm512_loadu_si512(g[b].qs[4 * j + ch]);
                __m512i lo = _mm512_shuffle_epi8(table, _mm512_and_si512(v, low));
                __m512i hi = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(v, 4), low));
SM_UNROLL(6)
                for (int t = 0; t < T; t++) {
                    const int8_t *xs = Q8K(xq, xq_stride, t, b)->qs + 32 * j + 4 * ch;
                    s[t] = _mm512_dpbusd_epi32(s[t], lo, bcast4(xs));
                    s[t] = _mm512_dpbusd_epi32(s[t], hi, bcast4(xs + 16));
                }
            }
            __m512i scale = _mm512_sub_epi32(byte_of_lane(sc[j / 4], j % 4), bias);
SM_UNROLL(6)
            for (int t = 0; t < T; t++) isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(s[t], scale));
        }
        __m512 d16 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].d));
SM_UNROLL(6)
        for (int t = 0; t < T; t++) {
            __m512 d = _mm512_mul_ps(d16, _mm512_set1_ps(Q8K(xq, xq_stride, t, b)->d));
            acc[t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(isum[t]), acc[t]);
        }
    }
    store_tile(c, ldc, acc, T, accumulate);
}

/* Every 16-row group against tiles of TILE tokens, then the rest in
 * tiles of 2 and 1. */
#define K_BATCH(NAME, G_T, TILE)                                                                           \
    AVX512 void sm_batch_##NAME##_x16_avx512(float *c, size_t ldc, const void *w, const void *xq,            \
                                             size_t xq_stride, const int32_t *xsum, size_t xsum_stride, int n, \
                                             int rows, int cols, int accumulate) {                           \
        (void)xsum;                                                                                          \
        (void)xsum_stride;                                                                                   \
        int nb = cols / SM_QK_K;                                                                             \
        const G_T *g = w;                                                                                    \
        for (int r = 0; r < rows; r += SM_X16, g += nb) {                                                    \
            int i = 0;                                                                                       \
            for (; i + TILE <= n; i += TILE)                                                                 \
                NAME##_batch_tile(c + (size_t)i * ldc + r, ldc, g, Q8K(xq, xq_stride, i, 0), xq_stride, TILE, nb, \
                                  accumulate);                                                               \
            for (; i + 2 <= n; i += 2)                                                                       \
                NAME##_batch_tile(c + (size_t)i * ldc + r, ldc, g, Q8K(xq, xq_stride, i, 0), xq_stride, 2, nb,  \
                                  accumulate);                                                               \
            if (i < n)                                                                                       \
                NAME##_batch_tile(c + (size_t)i * ldc + r, ldc, g, Q8K(xq, xq_stride, i, 0), xq_stride, 1, nb,  \
                                  accumulate);                                                               \
        }                                                                                                    \
    }
K_BATCH(q4_K, sm_block_q4_Kx16, 4)
K_BATCH(q5_K, sm_block_q5_Kx16, 3)
K_BATCH(q6_K, sm_block_q6_Kx16, Q6K_TILE)
K_BATCH(iq4_xs, sm_block_iq4_xsx16, 6)

#endif

/* kernels_x86_k.c - AVX2 and AVX-512 VNNI kernels of the 256-element
 * super-block formats (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS) against Q8_K
 * activations, and the AVX2 Q8_K activation quantizer. The kernels are
 * written once (kernels_x86_k_body.h) and built for both levels; each
 * function carries its target attribute, so the file builds with plain
 * flags and the type table picks what the CPU has. Tested against the
 * reference dots of quant.c/quant_k.c in tests/unit/test_types_k.c. */
#include "quant_k.h"
#include "simd.h"

#include <string.h>

#if defined(__x86_64__)
#include "x86_isa.h"

#define AVX2_ATTR SM_TARGET_AVX2
#define AVX512_ATTR SM_TARGET_AVX512

/* Q4_K/Q5_K's 12 bytes of 6-bit scales and mins as 16 bytes: scales 0-7,
 * then mins 0-7 (the packing sm_q4_K_scale_min reads, four at a time). */
AVX2_ATTR static inline __m128i k4_unpack(const uint8_t *s) {
    uint32_t a[3];
    memcpy(a, s, 12);
    uint32_t sc_lo = a[0] & 0x3F3F3F3Fu, mn_lo = a[1] & 0x3F3F3F3Fu;
    uint32_t sc_hi = (a[2] & 0x0F0F0F0Fu) | (((a[0] >> 6) & 0x03030303u) << 4);
    uint32_t mn_hi = ((a[2] >> 4) & 0x0F0F0F0Fu) | (((a[1] >> 6) & 0x03030303u) << 4);
    return _mm_set_epi32((int)mn_hi, (int)mn_lo, (int)sc_hi, (int)sc_lo);
}

/* Q3_K's 16 signed scales (sm_q3_K_scales, four at a time). */
AVX2_ATTR static inline __m128i q3_K_scales_sse(const uint8_t *s) {
    uint32_t a[3];
    memcpy(a, s, 12);
    uint32_t v0 = (a[0] & 0x0F0F0F0Fu) | ((a[2] & 0x03030303u) << 4);
    uint32_t v1 = (a[1] & 0x0F0F0F0Fu) | (((a[2] >> 2) & 0x03030303u) << 4);
    uint32_t v2 = ((a[0] >> 4) & 0x0F0F0F0Fu) | (((a[2] >> 4) & 0x03030303u) << 4);
    uint32_t v3 = ((a[1] >> 4) & 0x0F0F0F0Fu) | (((a[2] >> 6) & 0x03030303u) << 4);
    return _mm_sub_epi8(_mm_set_epi32((int)v3, (int)v2, (int)v1, (int)v0), _mm_set1_epi8(32));
}

/* IQ4_XS's 8 signed scales as int16: low nibbles from scales_l, the two
 * high bits of scale j from bits 2j of scales_h (a multiply by 2^(14 - 2j)
 * and a shift right by 14 isolate them per lane). */
AVX2_ATTR static inline __m128i iq4_xs_scales16(const sm_block_iq4_xs *b) {
    uint32_t l4;
    memcpy(&l4, b->scales_l, 4);
    __m128i bytes = _mm_cvtepu8_epi16(_mm_cvtsi32_si128((int)l4));
    __m128i lo = _mm_unpacklo_epi16(_mm_and_si128(bytes, _mm_set1_epi16(0x0F)), _mm_srli_epi16(bytes, 4));
    __m128i hi = _mm_srli_epi16(_mm_mullo_epi16(_mm_set1_epi16((short)b->scales_h),
                                                _mm_setr_epi16(1 << 14, 1 << 12, 1 << 10, 1 << 8, 1 << 6, 1 << 4, 1 << 2, 1)), 14);
    return _mm_sub_epi16(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi16(32));
}

/* Same codes as sm_quantize_q8_K (scale max|x| / 127, x * (1/d) rounded half
 * away from zero as roundf does: truncate, then step away when the dropped
 * fraction is at least one half), 32 at a time; block sums through sad. */
AVX2_ATTR void sm_quantize_q8_K_avx2(void *yv, const float *x, int n) {
    sm_block_q8_K *y = yv;
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    for (int b = 0; b < n / SM_QK_K; b++, x += SM_QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int i = 0; i < SM_QK_K; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4), d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        y[b].d = d;
        __m256 vid = _mm256_set1_ps(id);
        for (int g = 0; g < SM_QK_K; g += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; k++) {
                __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + g + 8 * k), vid);
                __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
                __m256 away = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(v, t)), half, _CMP_GE_OQ);
                t = _mm256_add_ps(t, _mm256_and_ps(away, _mm256_or_ps(one, _mm256_and_ps(sign, v))));
                q[k] = _mm256_cvttps_epi32(t);
            }
            __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(y[b].qs + g), p);
            /* sums of 8 biased bytes, two per 16-code group */
            __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(p, _mm256_set1_epi8((char)0x80)), _mm256_setzero_si256());
            int64_t s[4];
            _mm256_storeu_si256((__m256i *)s, sad);
            y[b].bsums[g / 16] = (int16_t)(s[0] + s[1] - 16 * 128);
            y[b].bsums[g / 16 + 1] = (int16_t)(s[2] + s[3] - 16 * 128);
        }
    }
}

/* ------------------------------------------------- AVX2 dequantizers
 * For the prompt path (rows to floats, then the float matrix kernel). Each
 * value is computed as the reference computes it (the sub-block's scale
 * d * sc and min dmin * m in float, then scale * code - min), so the output
 * is bit-identical to quant.c/quant_k.c's. */

/* 16 signed codes times a, minus b (b = 0: no min), to y[0..15] */
AVX2_ATTR static inline void put16(float *y, __m128i q, float a, float b) {
    __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), f1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)));
    _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(va, f0), vb));
    _mm256_storeu_ps(y + 8, _mm256_sub_ps(_mm256_mul_ps(va, f1), vb));
}

/* 32 codes: the low lane's 16 with scale a0 / min b0, the high lane's with a1 / b1 */
AVX2_ATTR static inline void put32(float *y, __m256i q, float a0, float b0, float a1, float b1) {
    put16(y, _mm256_castsi256_si128(q), a0, b0);
    put16(y + 16, _mm256_extracti128_si256(q, 1), a1, b1);
}

AVX2_ATTR void sm_dequantize_q2_K_avx2(float *y, const void *xv, int n) {
    const sm_block_q2_K *x = xv;
    const __m256i three = _mm256_set1_epi8(3);
    for (int b = 0; b < n / SM_QK_K; b++) {
        float d = _cvtsh_ss(x[b].d), dmin = _cvtsh_ss(x[b].dmin);
        for (int h = 0; h < 2; h++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * h));
            for (int k = 0; k < 4; k++, y += 32, q = _mm256_srli_epi16(q, 2)) {
                const uint8_t *s = x[b].scales + 8 * h + 2 * k;
                put32(y, _mm256_and_si256(q, three), d * (s[0] & 0x0F), dmin * (s[0] >> 4), d * (s[1] & 0x0F), dmin * (s[1] >> 4));
            }
        }
    }
}

AVX2_ATTR void sm_dequantize_q3_K_avx2(float *y, const void *xv, int n) {
    const sm_block_q3_K *x = xv;
    const __m256i three = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    for (int b = 0; b < n / SM_QK_K; b++) {
        int8_t sc[16];
        sm_q3_K_scales(x[b].scales, sc);
        float d = _cvtsh_ss(x[b].d);
        __m256i hm = _mm256_loadu_si256((const __m256i *)x[b].hmask);
        for (int h = 0; h < 2; h++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * h));
            for (int k = 0; k < 4; k++, y += 32, q = _mm256_srli_epi16(q, 2), hm = _mm256_srli_epi16(hm, 1)) {
                /* bit 4h + k of hmask has been shifted down to bit 0 */
                __m256i hb = _mm256_and_si256(_mm256_slli_epi16(hm, 2), four);
                __m256i c = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(q, three), hb), four);
                put32(y, c, d * sc[8 * h + 2 * k], 0.0f, d * sc[8 * h + 2 * k + 1], 0.0f);
            }
        }
    }
}

AVX2_ATTR void sm_dequantize_q4_K_avx2(float *y, const void *xv, int n) {
    const sm_block_q4_K *x = xv;
    const __m256i low = _mm256_set1_epi8(0x0F);
    for (int b = 0; b < n / SM_QK_K; b++) {
        float d = _cvtsh_ss(x[b].d), dmin = _cvtsh_ss(x[b].dmin);
        uint8_t sm[16];
        _mm_storeu_si128((__m128i *)sm, k4_unpack(x[b].scales));
        for (int c = 0; c < 4; c++, y += 64) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * c));
            float d0 = d * sm[2 * c], m0 = dmin * sm[8 + 2 * c], d1 = d * sm[2 * c + 1], m1 = dmin * sm[9 + 2 * c];
            put32(y, _mm256_and_si256(q, low), d0, m0, d0, m0);
            put32(y + 32, _mm256_and_si256(_mm256_srli_epi16(q, 4), low), d1, m1, d1, m1);
        }
    }
}

AVX2_ATTR void sm_dequantize_q5_K_avx2(float *y, const void *xv, int n) {
    const sm_block_q5_K *x = xv;
    const __m256i low = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    for (int b = 0; b < n / SM_QK_K; b++) {
        float d = _cvtsh_ss(x[b].d), dmin = _cvtsh_ss(x[b].dmin);
        uint8_t sm[16];
        _mm_storeu_si128((__m128i *)sm, k4_unpack(x[b].scales));
        __m256i hb = _mm256_loadu_si256((const __m256i *)x[b].qh);
        for (int c = 0; c < 4; c++, y += 64, hb = _mm256_srli_epi16(hb, 2)) {
            /* bits 2c and 2c + 1 of qh have been shifted down to bits 0 and 1 */
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * c));
            __m256i u0 = _mm256_or_si256(_mm256_and_si256(q, low), _mm256_and_si256(_mm256_slli_epi16(hb, 4), b4));
            __m256i u1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), low), _mm256_and_si256(_mm256_slli_epi16(hb, 3), b4));
            float d0 = d * sm[2 * c], m0 = dmin * sm[8 + 2 * c], d1 = d * sm[2 * c + 1], m1 = dmin * sm[9 + 2 * c];
            put32(y, u0, d0, m0, d0, m0);
            put32(y + 32, u1, d1, m1, d1, m1);
        }
    }
}

AVX2_ATTR void sm_dequantize_q6_K_avx2(float *y, const void *xv, int n) {
    const sm_block_q6_K *x = xv;
    const __m256i low = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(0x30), off = _mm256_set1_epi8(32);
    for (int b = 0; b < n / SM_QK_K; b++) {
        float d = _cvtsh_ss(x[b].d);
        for (int h = 0; h < 2; h++, y += 128) {
            const uint8_t *ql = x[b].ql + 64 * h;
            const int8_t *sc = x[b].scales + 8 * h;
            __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i hq = _mm256_loadu_si256((const __m256i *)(x[b].qh + 32 * h));
            __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, low), _mm256_and_si256(_mm256_slli_epi16(hq, 4), two)),
                _mm256_or_si256(_mm256_and_si256(l1, low), _mm256_and_si256(_mm256_slli_epi16(hq, 2), two)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low), _mm256_and_si256(hq, two)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low), _mm256_and_si256(_mm256_srli_epi16(hq, 2), two)),
            };
            for (int k = 0; k < 4; k++)
                put32(y + 32 * k, _mm256_sub_epi8(q[k], off), d * sc[2 * k], 0.0f, d * sc[2 * k + 1], 0.0f);
        }
    }
}

AVX2_ATTR void sm_dequantize_iq4_xs_avx2(float *y, const void *xv, int n) {
    const sm_block_iq4_xs *x = xv;
    const __m128i values = _mm_loadu_si128((const __m128i *)sm_iq4nl_values), low = _mm_set1_epi8(0x0F);
    for (int b = 0; b < n / SM_QK_K; b++) {
        int8_t sc[8];
        sm_iq4_xs_scales(&x[b], sc);
        float d = _cvtsh_ss(x[b].d);
        for (int j = 0; j < 8; j++, y += 32) {
            __m128i q = _mm_loadu_si128((const __m128i *)(x[b].qs + 16 * j));
            float dl = d * sc[j];
            put16(y, _mm_shuffle_epi8(values, _mm_and_si128(q, low)), dl, 0.0f);
            put16(y + 16, _mm_shuffle_epi8(values, _mm_and_si128(_mm_srli_epi16(q, 4), low)), dl, 0.0f);
        }
    }
}

/* AVX2: int16 pairs times scales, widened to int32 and added. */
#define KATTR AVX2_ATTR
#define KNAME(name) name##_avx2
#define KACC(acc, p, s) _mm256_add_epi32((acc), _mm256_madd_epi16((p), (s)))
#define KSPLIT 0   /* the compiler reassociates the adds itself */
#define KPREFETCH SM_PREFETCH_AHEAD   /* Zen 3: Q6_K decode +26-42 % (docs/BENCHMARKS.md) */
#include "kernels_x86_k_body.h"
#undef KATTR
#undef KNAME
#undef KACC
#undef KSPLIT
#undef KPREFETCH
#undef PICK16
#undef PICK16_2

/* AVX-512 VNNI: vpdpwssd does the pair products and the accumulation. */
#define KATTR AVX512_ATTR
#define KNAME(name) name##_avx512
#define KACC(acc, p, s) _mm256_dpwssd_epi32((acc), (p), (s))
#define KSPLIT 1
#define KPREFETCH(p, bytes) ((void)0)   /* not measured on an AVX-512 host */
#include "kernels_x86_k_body.h"

#endif

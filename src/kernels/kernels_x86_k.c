/* kernels_x86_k.c - AVX2 and AVX-512 VNNI kernels of the 256-element
 * super-block formats (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS) against Q8_K
 * activations, and the AVX2 Q8_K activation quantizer. The kernels are
 * written once (kernels_x86_k_body.h) and built for both levels; each
 * function carries its target attribute, so the file builds with plain
 * flags and the type table picks what the CPU has. Tested against the
 * reference dots of quant.c/quant_k.c in tests/unit/test_types_k.c. */
#include "quant_k.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX2_ATTR __attribute__((target("avx2,fma,f16c")))
#define AVX512_ATTR __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")))

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

/* AVX2: int16 pairs times scales, widened to int32 and added. */
#define KATTR AVX2_ATTR
#define KNAME(name) name##_avx2
#define KACC(acc, p, s) _mm256_add_epi32((acc), _mm256_madd_epi16((p), (s)))
#define KBODY_Q4_K 0   /* AVX2 Q4_K and Q6_K live in kernels_x86.c */
#define KBODY_Q6_K 0
#include "kernels_x86_k_body.h"
#undef KATTR
#undef KNAME
#undef KACC
#undef KBODY_Q4_K
#undef KBODY_Q6_K
#undef PICK16
#undef PICK16_2

/* AVX-512 VNNI: vpdpwssd does the pair products and the accumulation. */
#define KATTR AVX512_ATTR
#define KNAME(name) name##_avx512
#define KACC(acc, p, s) _mm256_dpwssd_epi32((acc), (p), (s))
#define KBODY_Q4_K 1
#define KBODY_Q6_K 1
#include "kernels_x86_k_body.h"

#endif

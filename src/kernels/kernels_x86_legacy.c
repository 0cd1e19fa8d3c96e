/* kernels_x86_legacy.c - AVX2 (+FMA, F16C) and AVX-512 (+VNNI)
 * kernels of the types in quant_legacy.h: matrix x vector products of
 * Q4_1/Q5_1 against Q8_1 activations and of Q5_0/IQ4_NL against Q8_0, the
 * 16-row interleaved variants (interleave_legacy.h), BF16 products against
 * floats (AVX2; AVX-512's share the F16 kernel in kernels_x86.c), the Q8_1
 * activation quantizer, and row / group dequantizers for prefill. Each function carries its own target attribute (the dispatcher
 * picks by CPU); each is tested against the scalar reference in
 * tests/unit/test_types_legacy.c. */
#include "quant_legacy.h"
#include "simd.h"
#include "interleave_legacy.h"
#include "half.h"
#include "types.h"

#include <stddef.h>
#include <string.h>

#if defined(__x86_64__)
#include "x86_isa.h"

#define AVX2 SM_TARGET_AVX2
#define AVX512 SM_TARGET_AVX512

AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ------------------------------------------------ unpacking a block (AVX2) */

/* 32 nibbles as bytes 0..15: the low nibbles are elements 0-15, the high
 * ones 16-31. */
AVX2 static inline __m256i nibbles32(const uint8_t *qs) {
    __m128i b = _mm_loadu_si128((const __m128i *)qs);
    const __m128i low = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), low), _mm_and_si128(b, low));
}

/* 0x10 in byte j where bit j of the 32-bit word is set: each byte takes its
 * word byte (j / 8) by a shuffle, then tests its own bit. */
AVX2 static inline __m256i fifth_bits32(const uint8_t *qh) {
    uint32_t h;
    memcpy(&h, qh, 4);
    const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h), pick);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), _mm256_set1_epi8(0x10));
}

AVX2 static inline __m256i iq4nl_table256(void) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sm_iq4nl_values));
}

/* Each format's block as 32 bytes of codes: unsigned for Q4_1/Q5_1, signed
 * for Q5_0 (q - 16) and IQ4_NL (the table values). */
#define CODES_Q4_1(blk) nibbles32((blk)->qs)
#define CODES_Q5_1(blk) _mm256_or_si256(nibbles32((blk)->qs), fifth_bits32((blk)->qh))
#define CODES_Q5_0(blk) _mm256_sub_epi8(CODES_Q5_1(blk), _mm256_set1_epi8(16))
#define CODES_IQ4_NL(blk) _mm256_shuffle_epi8(table, nibbles32((blk)->qs))

/* Integer dots of 32 code bytes with 32 activation bytes, as 8 int32 sums:
 * maddubs multiplies unsigned by signed bytes (no int16 overflow: codes
 * are at most 31, or |v| <= 127 after the sign trick), VNNI does the same
 * and the widening in one instruction. */
AVX2 static inline __m256i dot_u8_avx2(__m256i w, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
}
AVX2 static inline __m256i dot_s8_avx2(__m256i w, __m256i x) {
    return dot_u8_avx2(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}
AVX512 static inline __m256i dot_u8_vnni(__m256i w, __m256i x) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x);
}
AVX512 static inline __m256i dot_s8_vnni(__m256i w, __m256i x) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}

/* One row at a time, two blocks per step into two accumulators (the fmadd
 * chains overlap). MIN adds the minimum's term of block b to `mins`. */
#define LEGACY_MATVEC(W_T, X_T, CODES, DOT, MIN)                                                        \
    const X_T *x = xq;                                                                                   \
    int nb = cols / SM_QK;                                                                               \
    for (int r = 0; r < rows; r++) {                                                                     \
        const W_T *wr = (const W_T *)w + (size_t)r * nb;                                                 \
        __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};                                      \
        float mins = 0.0f;                                                                               \
        for (int b = 0; b < nb; b++) {                                                                   \
            __m256i dot = DOT(CODES(&wr[b]), _mm256_loadu_si256((const __m256i *)x[b].qs));              \
            float scale = _cvtsh_ss(wr[b].d) * _cvtsh_ss(x[b].d);                                        \
            acc[b & 1] = _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(dot), acc[b & 1]);    \
            MIN;                                                                                         \
        }                                                                                                \
        out[r] = hsum256(_mm256_add_ps(acc[0], acc[1])) + mins;                                          \
    }
#define WITH_MIN (mins += _cvtsh_ss(wr[b].m) * _cvtsh_ss(x[b].s))
#define NO_MIN ((void)0)

AVX2 void sm_matvec_q4_1_avx2(float *out, const void *w, const void *xq, int rows, int cols) {
    LEGACY_MATVEC(sm_block_q4_1, sm_block_q8_1, CODES_Q4_1, dot_u8_avx2, WITH_MIN)
}
AVX2 void sm_matvec_q5_1_avx2(float *out, const void *w, const void *xq, int rows, int cols) {
    LEGACY_MATVEC(sm_block_q5_1, sm_block_q8_1, CODES_Q5_1, dot_u8_avx2, WITH_MIN)
}
AVX2 void sm_matvec_q5_0_avx2(float *out, const void *w, const void *xq, int rows, int cols) {
    LEGACY_MATVEC(sm_block_q5_0, sm_block_q8_0, CODES_Q5_0, dot_s8_avx2, NO_MIN)
}
AVX2 void sm_matvec_iq4_nl_avx2(float *out, const void *w, const void *xq, int rows, int cols) {
    const __m256i table = iq4nl_table256();
    LEGACY_MATVEC(sm_block_iq4_nl, sm_block_q8_0, CODES_IQ4_NL, dot_s8_avx2, NO_MIN)
}

/* The AVX-512 level's kernels for rows outside whole interleaved groups. */
AVX512 void sm_matvec_q4_1_avx512(float *out, const void *w, const void *xq, int rows, int cols) {
    LEGACY_MATVEC(sm_block_q4_1, sm_block_q8_1, CODES_Q4_1, dot_u8_vnni, WITH_MIN)
}
AVX512 void sm_matvec_q5_1_avx512(float *out, const void *w, const void *xq, int rows, int cols) {
    LEGACY_MATVEC(sm_block_q5_1, sm_block_q8_1, CODES_Q5_1, dot_u8_vnni, WITH_MIN)
}
AVX512 void sm_matvec_q5_0_avx512(float *out, const void *w, const void *xq, int rows, int cols) {
    LEGACY_MATVEC(sm_block_q5_0, sm_block_q8_0, CODES_Q5_0, dot_s8_vnni, NO_MIN)
}
AVX512 void sm_matvec_iq4_nl_avx512(float *out, const void *w, const void *xq, int rows, int cols) {
    const __m256i table = iq4nl_table256();
    LEGACY_MATVEC(sm_block_iq4_nl, sm_block_q8_0, CODES_IQ4_NL, dot_s8_vnni, NO_MIN)
}

/* ------------------------------------------------ Q8_1 activations (AVX2) */

/* roundf's rule exactly (half away from zero): truncate, then step away
 * from zero when the dropped fraction is at least one half. */
AVX2 static inline __m256i round_away(__m256 s) {
    __m256 t = _mm256_round_ps(s, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 up = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(s, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    __m256 step = _mm256_and_ps(up, _mm256_or_ps(_mm256_and_ps(s, sign), _mm256_set1_ps(1.0f)));
    return _mm256_cvtps_epi32(_mm256_add_ps(t, step));
}

AVX2 void sm_quantize_q8_1_avx2(void *out, const float *x, int n) {
    sm_block_q8_1 *y = out;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < n / SM_QK; b++, x += SM_QK) {
        __m256 v[4], m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float d = _mm_cvtss_f32(m4) / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        __m256i q[4];
        for (int k = 0; k < 4; k++) q[k] = round_away(_mm256_mul_ps(v[k], _mm256_set1_ps(id)));
        /* int32 -> int8 (values within -127..127), back in element order */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[b].qs, p);
        __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
        y[b].d = sm_fp32_to_fp16(d);
        y[b].s = sm_fp32_to_fp16((float)_mm_cvtsi128_si32(s4) * d);
    }
}

/* ------------------------------------------------ rows to floats (AVX2)
 * The same arithmetic as the reference (a multiply, then an add: no fused
 * multiply-add), so the floats are identical. */
AVX2 static inline void store_codes(float *y, __m256i codes, float d, float m, int with_min) {
    __m128i lo = _mm256_castsi256_si128(codes), hi = _mm256_extracti128_si256(codes, 1);
    __m128i part[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
    for (int k = 0; k < 4; k++) {
        __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(part[k])), vd);
        _mm256_storeu_ps(y + 8 * k, with_min ? _mm256_add_ps(f, vm) : f);
    }
}

#define LEGACY_TO_FLOAT(W_T, CODES, M, WITH)                                                \
    const W_T *x = in;                                                                       \
    for (int b = 0; b < n / SM_QK; b++) store_codes(out + b * SM_QK, CODES(&x[b]), _cvtsh_ss(x[b].d), M, WITH);

AVX2 void sm_dequantize_q4_1_avx2(float *out, const void *in, int n) {
    LEGACY_TO_FLOAT(sm_block_q4_1, CODES_Q4_1, _cvtsh_ss(x[b].m), 1)
}
AVX2 void sm_dequantize_q5_1_avx2(float *out, const void *in, int n) {
    LEGACY_TO_FLOAT(sm_block_q5_1, CODES_Q5_1, _cvtsh_ss(x[b].m), 1)
}
AVX2 void sm_dequantize_q5_0_avx2(float *out, const void *in, int n) {
    LEGACY_TO_FLOAT(sm_block_q5_0, CODES_Q5_0, 0.0f, 0)
}
AVX2 void sm_dequantize_iq4_nl_avx2(float *out, const void *in, int n) {
    const __m256i table = iq4nl_table256();
    LEGACY_TO_FLOAT(sm_block_iq4_nl, CODES_IQ4_NL, 0.0f, 0)
}

/* ---------------------------------------------- interleaved groups (AVX2)
 * The same layout (interleave_legacy.h) for hosts without VNNI. One token:
 * a 256-bit load of chunk c holds 4 bytes of 8 rows' block; against the
 * activation's 4 bytes broadcast to every lane, _mm256_maddubs_epi16 gives
 * each row two int16 pair sums. The chunk sums add up in int16 within
 * 32767: Q4_1's 8 nibble chunks at most 8 x 2 x 15 x 128 = 30720; Q5's
 * 5-bit codes go in two sums of 4 chunks (low and high nibbles apart, at
 * most 4 x 2 x 31 x 128 = 31744 each); IQ4_NL's unsigned values (value +
 * 128, up to 241) are split as lo + 16 hi by two table look-ups, each part
 * summed apart (as Q8_0's codes are in kernels_x86_x16_avx2.c). Then one
 * _mm256_madd_epi16 per sum makes each row's int32, the offset (Q5_0 16,
 * IQ4_NL 128) comes off with the activation block's sum, one multiply-add
 * applies the scales and, for Q4_1/Q5_1, a second one the minimums times
 * the Q8_1 block's s, as the AVX-512 kernels below do. KIND: 0 Q4_1, 1
 * Q5_1, 2 Q5_0, 3 IQ4_NL, a constant in each caller. */
enum { KIND_Q4_1, KIND_Q5_1, KIND_Q5_0, KIND_IQ4_NL };
#define INLINE inline __attribute__((always_inline))

/* Half h (8 rows) of one group block (chunks qs, fifth bits qh) against one
 * token's activation block xs: each row's int32 sum of codes x activations
 * (unsigned codes, before the offset). */
AVX2 static INLINE __m256i x16_half_sums(const uint8_t *qs, const uint8_t *qh, int h, const int8_t *xs, __m256i tlo,
                                         __m256i thi, int kind) {
    const __m256i low = _mm256_set1_epi8(0x0F), five = _mm256_set1_epi8(0x10);
    __m256i a = _mm256_setzero_si256(), b = a, fh = a;
    if (kind == KIND_Q5_1 || kind == KIND_Q5_0) fh = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
SM_UNROLL(4)
    for (int c = 0; c < 4; c++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 64 * c + 32 * h));
        __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
        __m256i x0 = _mm256_set1_epi32(sm_load_i32(xs + 4 * c)), x1 = _mm256_set1_epi32(sm_load_i32(xs + 16 + 4 * c));
        if (kind == KIND_Q4_1) {
            a = _mm256_add_epi16(a, _mm256_maddubs_epi16(lo, x0));
            a = _mm256_add_epi16(a, _mm256_maddubs_epi16(hi, x1));
        } else if (kind == KIND_IQ4_NL) {
            a = _mm256_add_epi16(a, _mm256_maddubs_epi16(_mm256_shuffle_epi8(tlo, lo), x0));
            a = _mm256_add_epi16(a, _mm256_maddubs_epi16(_mm256_shuffle_epi8(tlo, hi), x1));
            b = _mm256_add_epi16(b, _mm256_maddubs_epi16(_mm256_shuffle_epi8(thi, lo), x0));
            b = _mm256_add_epi16(b, _mm256_maddubs_epi16(_mm256_shuffle_epi8(thi, hi), x1));
        } else {
            /* bit c of each qh byte to bit 4 (low nibbles), bit 4 + c to bit 4
             * (high ones); 16-bit shifts never carry into bit 4 */
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_sll_epi16(fh, _mm_cvtsi32_si128(4 - c)), five));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_srl_epi16(fh, _mm_cvtsi32_si128(c)), five));
            a = _mm256_add_epi16(a, _mm256_maddubs_epi16(lo, x0));
            b = _mm256_add_epi16(b, _mm256_maddubs_epi16(hi, x1));
        }
    }
    __m256i s = _mm256_madd_epi16(a, _mm256_set1_epi16(1));
    if (kind == KIND_Q5_1 || kind == KIND_Q5_0) s = _mm256_add_epi32(s, _mm256_madd_epi16(b, _mm256_set1_epi16(1)));
    if (kind == KIND_IQ4_NL) s = _mm256_add_epi32(s, _mm256_madd_epi16(b, _mm256_set1_epi16(16)));
    return s;
}

/* The running sums of one group: rows 0-7 and 8-15, and their minimums' */
typedef struct x16_acc {
    __m256 a0, a1, m0, m1;
} x16_acc;

/* One group block w (gb bytes: scales, minimums at m_off, fifth bits at
 * qh_off, chunks at qs_off; the offsets a type lacks unused) against the
 * token's block x (xb_sum: its xsum), into acc. */
AVX2 static INLINE void x16_block_avx2(x16_acc *acc, const uint8_t *w, size_t gb, size_t m_off, size_t qh_off,
                                       size_t qs_off, const uint8_t *x, int32_t xb_sum, __m256i tlo, __m256i thi,
                                       int kind) {
    const int with_min = kind == KIND_Q4_1 || kind == KIND_Q5_1;
    const int offset = kind == KIND_Q5_0 ? 16 : kind == KIND_IQ4_NL ? 128 : 0;
    SM_PREFETCH_AHEAD(w, gb);
    uint16_t hd;
    memcpy(&hd, x, sizeof hd);
    __m256 dx = _mm256_set1_ps(_cvtsh_ss(hd));
    const int8_t *xs = (const int8_t *)x + (with_min ? 4 : 2);
    __m256i off = _mm256_set1_epi32(offset ? -offset * xb_sum : 0);
    __m256i s0 = x16_half_sums(w + qs_off, w + qh_off, 0, xs, tlo, thi, kind);
    __m256i s1 = x16_half_sums(w + qs_off, w + qh_off, 1, xs, tlo, thi, kind);
    if (offset) s0 = _mm256_add_epi32(s0, off), s1 = _mm256_add_epi32(s1, off);
    __m256 d0 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w)), dx);
    __m256 d1 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w + 1)), dx);
    acc->a0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(s0), acc->a0);
    acc->a1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(s1), acc->a1);
    if (with_min) {
        uint16_t hs;
        memcpy(&hs, x + 2, sizeof hs);
        __m256 sx = _mm256_set1_ps(_cvtsh_ss(hs));
        acc->m0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + m_off))), sx, acc->m0);
        acc->m1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + m_off) + 1)), sx, acc->m1);
    }
}

AVX2 static INLINE void x16_store(float *out, x16_acc a) {
    _mm256_storeu_ps(out, _mm256_add_ps(a.a0, a.m0));
    _mm256_storeu_ps(out + 8, _mm256_add_ps(a.a1, a.m1));
}

/* Every group of the rows; two at a time, half the rows apart (two
 * sequential streams through memory, as the Q4_0/Q8_0 kernels of
 * kernels_x86_x16_avx2.c read), each summed as alone; an odd last group by
 * itself. */
AVX2 static INLINE void x16_matvec_avx2(float *out, const uint8_t *w, size_t gb, size_t m_off, size_t qh_off,
                                        size_t qs_off, const void *xq, const int32_t *xsum, int rows, int cols,
                                        int kind) {
    const int with_min = kind == KIND_Q4_1 || kind == KIND_Q5_1;
    const size_t xb = with_min ? sizeof(sm_block_q8_1) : sizeof(sm_block_q8_0);
    __m256i tlo = _mm256_setzero_si256(), thi = tlo;
    if (kind == KIND_IQ4_NL) sm_iq4nl_split_avx2(sm_iq4nl_values, &tlo, &thi);
    int nb = cols / SM_QK, groups = rows / SM_X16, half = groups / 2;
    size_t gbytes = (size_t)nb * gb, apart = (size_t)half * gbytes;
    const x16_acc zero = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int i = 0; i < half; i++) {
        const uint8_t *p = w + (size_t)i * gbytes, *q = p + apart;
        x16_acc a = zero, c = zero;
        for (int b = 0; b < nb; b++, p += gb, q += gb) {
            const uint8_t *x = (const uint8_t *)xq + (size_t)b * xb;
            x16_block_avx2(&a, p, gb, m_off, qh_off, qs_off, x, xsum[b], tlo, thi, kind);
            x16_block_avx2(&c, q, gb, m_off, qh_off, qs_off, x, xsum[b], tlo, thi, kind);
        }
        x16_store(out + (size_t)i * SM_X16, a);
        x16_store(out + (size_t)(i + half) * SM_X16, c);
    }
    if (groups % 2) {
        const uint8_t *p = w + (size_t)(groups - 1) * gbytes;
        x16_acc a = zero;
        for (int b = 0; b < nb; b++, p += gb)
            x16_block_avx2(&a, p, gb, m_off, qh_off, qs_off, (const uint8_t *)xq + (size_t)b * xb, xsum[b], tlo, thi,
                           kind);
        x16_store(out + (size_t)(groups - 1) * SM_X16, a);
    }
}

#define X16_AVX2(G_T, M_OFF, QH_OFF, KIND)                                                                  \
    x16_matvec_avx2(out, w, sizeof(G_T), M_OFF, QH_OFF, offsetof(G_T, qs), xq, xsum, rows, cols, KIND)
AVX2 void sm_matvec_q4_1_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols) {
    X16_AVX2(sm_block_q4_1x16, offsetof(sm_block_q4_1x16, m), 0, KIND_Q4_1);
}
AVX2 void sm_matvec_q5_1_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols) {
    X16_AVX2(sm_block_q5_1x16, offsetof(sm_block_q5_1x16, m), offsetof(sm_block_q5_1x16, qh), KIND_Q5_1);
}
AVX2 void sm_matvec_q5_0_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols) {
    X16_AVX2(sm_block_q5_0x16, 0, offsetof(sm_block_q5_0x16, qh), KIND_Q5_0);
}
AVX2 void sm_matvec_iq4_nl_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols) {
    X16_AVX2(sm_block_iq4_nlx16, 0, 0, KIND_IQ4_NL);
}

/* 16 rows' codes of one column (bytes, signed) as floats: rows 0-7 times
 * d0 (plus m0), rows 8-15 times d1 (plus m1), store_codes' arithmetic */
AVX2 static INLINE void store_column(float *y, __m128i codes, __m256 d0, __m256 d1, __m256 m0, __m256 m1, int with_min) {
    __m256 f0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(codes)), d0);
    __m256 f1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(codes, 8))), d1);
    _mm256_storeu_ps(y, with_min ? _mm256_add_ps(f0, m0) : f0);
    _mm256_storeu_ps(y + 8, with_min ? _mm256_add_ps(f1, m1) : f1);
}

/* A group's rows as floats for prefill, column after column (out[16 x +
 * r], the strided product's weight block, read in place by
 * sm_gemm_x16_avx2), the row dequantizer's floats bit for bit: chunk c's
 * columns (sm_chunk_columns) give columns 4c + j (low nibbles) and 16 + 4c
 * + j (high ones); the re-packed qh, taken apart the same way, gives byte j
 * of every row, whose bit c and 4 + c are those columns' fifth bits. */
AVX2 static INLINE void x16_dequant_cols_avx2(float *out, const uint8_t *g, size_t gb, size_t m_off, size_t qh_off,
                                              size_t qs_off, int cols, int kind) {
    const __m128i low = _mm_set1_epi8(0x0F), one = _mm_set1_epi8(1);
    const __m128i table = _mm_loadu_si128((const __m128i *)sm_iq4nl_values);
    const int with_min = kind == KIND_Q4_1 || kind == KIND_Q5_1, five = kind == KIND_Q5_1 || kind == KIND_Q5_0;
    for (int b = 0; b < cols / SM_QK; b++, g += gb) {
        __m256 d0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        __m256 d1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g + 1));
        __m256 m0 = _mm256_setzero_ps(), m1 = m0;
        if (with_min) {
            m0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + m_off)));
            m1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + m_off) + 1));
        }
        __m128i qh[4];
        if (five) sm_chunk_columns(g + qh_off, qh);
        for (int c = 0; c < 4; c++) {
            __m128i col[4];
            sm_chunk_columns(g + qs_off + 64 * c, col);
SM_UNROLL(4)
            for (int j = 0; j < 4; j++) {
                __m128i lo = _mm_and_si128(col[j], low), hi = _mm_and_si128(_mm_srli_epi16(col[j], 4), low);
                if (five) {
                    lo = _mm_or_si128(lo, _mm_slli_epi16(_mm_and_si128(_mm_srl_epi16(qh[j], _mm_cvtsi32_si128(c)), one), 4));
                    hi = _mm_or_si128(hi, _mm_slli_epi16(_mm_and_si128(_mm_srl_epi16(qh[j], _mm_cvtsi32_si128(4 + c)), one), 4));
                }
                if (kind == KIND_Q5_0) {
                    lo = _mm_sub_epi8(lo, _mm_set1_epi8(16));
                    hi = _mm_sub_epi8(hi, _mm_set1_epi8(16));
                }
                if (kind == KIND_IQ4_NL) {
                    lo = _mm_shuffle_epi8(table, lo);
                    hi = _mm_shuffle_epi8(table, hi);
                }
                store_column(out + (size_t)(b * SM_QK + 4 * c + j) * SM_X16, lo, d0, d1, m0, m1, with_min);
                store_column(out + (size_t)(b * SM_QK + 16 + 4 * c + j) * SM_X16, hi, d0, d1, m0, m1, with_min);
            }
        }
    }
}

#define X16_DEQUANT_COLS_AVX2(G_T, M_OFF, QH_OFF, KIND)                                                     \
    x16_dequant_cols_avx2(out, group, sizeof(G_T), M_OFF, QH_OFF, offsetof(G_T, qs), cols, KIND)
AVX2 void sm_dequantize_q4_1x16_cols_avx2(float *out, const void *group, int cols) {
    X16_DEQUANT_COLS_AVX2(sm_block_q4_1x16, offsetof(sm_block_q4_1x16, m), 0, KIND_Q4_1);
}
AVX2 void sm_dequantize_q5_1x16_cols_avx2(float *out, const void *group, int cols) {
    X16_DEQUANT_COLS_AVX2(sm_block_q5_1x16, offsetof(sm_block_q5_1x16, m), offsetof(sm_block_q5_1x16, qh), KIND_Q5_1);
}
AVX2 void sm_dequantize_q5_0x16_cols_avx2(float *out, const void *group, int cols) {
    X16_DEQUANT_COLS_AVX2(sm_block_q5_0x16, 0, offsetof(sm_block_q5_0x16, qh), KIND_Q5_0);
}
AVX2 void sm_dequantize_iq4_nlx16_cols_avx2(float *out, const void *group, int cols) {
    X16_DEQUANT_COLS_AVX2(sm_block_iq4_nlx16, 0, 0, KIND_IQ4_NL);
}

/* ------------------------------------------- interleaved groups (AVX-512) */

/* The fifth bits of chunk c, lined up with its nibbles (interleave_legacy.h):
 * bit c of each byte moves to bit 4 for the low nibbles, bit 4 + c for the
 * high ones. 16-bit shifts carry bits across bytes, but never into bit 4. */
AVX512 static inline __m512i fifth_lo(__m512i h, int c) {
    return _mm512_and_si512(_mm512_sll_epi16(h, _mm_cvtsi32_si128(4 - c)), _mm512_set1_epi8(0x10));
}
AVX512 static inline __m512i fifth_hi(__m512i h, int c) {
    return _mm512_and_si512(_mm512_srl_epi16(h, _mm_cvtsi32_si128(c)), _mm512_set1_epi8(0x10));
}

/* Sixteen rows per pass. Per block: for each chunk c, the codes of columns
 * 4c..4c+3 and 16+4c.. of all 16 rows (two 512-bit vectors) meet the 4
 * activation bytes broadcast to every lane in one vpdpbusd each; then one
 * multiply-add applies the rows' scales, and for Q4_1/Q5_1 a second one the
 * minimums times the activation block's s (MIN, on m_). X16_STEP is block b
 * of the group block GB into ACC and ACCM; CODE_LO/CODE_HI make chunk c's
 * unsigned codes from its nibble vector v (and h, the fifth bits). */
#define X16_STEP(G_T, GB, ACC, ACCM, LOAD_H, CODE_LO, CODE_HI, INIT, MIN)                                 \
    do {                                                                                                 \
        const G_T *gb = (GB);                                                                            \
        const int8_t *xs = x[b].qs;                                                                      \
        __m512i h = LOAD_H;                                                                              \
        __m512i s0 = INIT, s1 = _mm512_setzero_si512();                                                  \
        __m512 m_ = ACCM;                                                                                \
        (void)h;                                                                                         \
        for (int c = 0; c < 4; c++) {                                                                    \
            __m512i v = _mm512_loadu_si512(gb->qs + 64 * c);                                             \
            s0 = _mm512_dpbusd_epi32(s0, CODE_LO, _mm512_set1_epi32(sm_load_i32(xs + 4 * c)));           \
            s1 = _mm512_dpbusd_epi32(s1, CODE_HI, _mm512_set1_epi32(sm_load_i32(xs + 16 + 4 * c)));      \
        }                                                                                                \
        __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)gb->d)),            \
                                 _mm512_set1_ps(_cvtsh_ss(x[b].d)));                                     \
        ACC = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), ACC);                     \
        MIN;                                                                                             \
        ACCM = m_;                                                                                       \
    } while (0)
/* Two groups at a time, half the groups apart: two sequential streams, the
 * AVX2 kernels' order (against every group in order: 1.14-1.32x on Zen 3,
 * Q5_0 decode 1.18-1.20x on Intel Ice Lake); an odd last group alone. */
#define X16_MATVEC(G_T, X_T, LOAD_H, CODE_LO, CODE_HI, INIT, MIN)                                       \
    const G_T *g = w;                                                                                    \
    const X_T *x = xq;                                                                                   \
    const __m512i low = _mm512_set1_epi8(0x0F);                                                          \
    int nb = cols / SM_QK, groups = rows / SM_X16, half = groups / 2;                                    \
    for (int i = 0; i < half; i++) {                                                                     \
        const G_T *p = g + (size_t)i * nb, *q = p + (size_t)half * nb;                                   \
        __m512 a = _mm512_setzero_ps(), am = a, e = a, em = a;                                           \
        for (int b = 0; b < nb; b++) {                                                                   \
            X16_STEP(G_T, p + b, a, am, LOAD_H, CODE_LO, CODE_HI, INIT, MIN);                            \
            X16_STEP(G_T, q + b, e, em, LOAD_H, CODE_LO, CODE_HI, INIT, MIN);                            \
        }                                                                                                \
        _mm512_storeu_ps(out + (size_t)i * SM_X16, _mm512_add_ps(a, am));                                \
        _mm512_storeu_ps(out + (size_t)(i + half) * SM_X16, _mm512_add_ps(e, em));                       \
    }                                                                                                    \
    for (int k = 2 * half; k < groups; k++) {                                                            \
        const G_T *p = g + (size_t)k * nb;                                                               \
        __m512 a = _mm512_setzero_ps(), am = a;                                                          \
        for (int b = 0; b < nb; b++) X16_STEP(G_T, p + b, a, am, LOAD_H, CODE_LO, CODE_HI, INIT, MIN);   \
        _mm512_storeu_ps(out + (size_t)k * SM_X16, _mm512_add_ps(a, am));                                \
    }
#define NIB_LO _mm512_and_si512(v, low)
#define NIB_HI _mm512_and_si512(_mm512_srli_epi16(v, 4), low)
#define X16_MIN m_ = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)gb->m)), _mm512_set1_ps(_cvtsh_ss(x[b].s)), m_)
#define X16_ARGS float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols

AVX512 static void q4_1_x16(X16_ARGS) {
    X16_MATVEC(sm_block_q4_1x16, sm_block_q8_1, _mm512_setzero_si512(), NIB_LO, NIB_HI, _mm512_setzero_si512(), X16_MIN)
}

AVX512 static void q5_1_x16(X16_ARGS) {
    X16_MATVEC(sm_block_q5_1x16, sm_block_q8_1, _mm512_loadu_si512(gb->qh), _mm512_or_si512(NIB_LO, fifth_lo(h, c)),
               _mm512_or_si512(NIB_HI, fifth_hi(h, c)), _mm512_setzero_si512(), X16_MIN)
}

/* Q5_0's codes are q + 16: the sums start at -16 times the block's sum. */
AVX512 static void q5_0_x16(X16_ARGS) {
    X16_MATVEC(sm_block_q5_0x16, sm_block_q8_0, _mm512_loadu_si512(gb->qh), _mm512_or_si512(NIB_LO, fifth_lo(h, c)),
               _mm512_or_si512(NIB_HI, fifth_hi(h, c)), _mm512_set1_epi32(-16 * xsum[b]), (void)0)
}

/* IQ4_NL: a nibble picks its value + 128 (1..241, unsigned) by a byte
 * shuffle; the sums start at -128 times the block's sum. */
AVX512 static void iq4_nl_x16(X16_ARGS) {
    const __m512i table = _mm512_add_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)sm_iq4nl_values)),
                                          _mm512_set1_epi8((char)0x80));
    X16_MATVEC(sm_block_iq4_nlx16, sm_block_q8_0, _mm512_setzero_si512(), _mm512_shuffle_epi8(table, NIB_LO),
               _mm512_shuffle_epi8(table, NIB_HI), _mm512_set1_epi32(-128 * xsum[b]), (void)0)
}

AVX512 void sm_matvec_q4_1_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols) {
    q4_1_x16(out, w, xq, xsum, rows, cols);
}

AVX512 void sm_matvec_q5_1_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols) {
    q5_1_x16(out, w, xq, xsum, rows, cols);
}

AVX512 void sm_matvec_q5_0_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols) {
    q5_0_x16(out, w, xq, xsum, rows, cols);
}

AVX512 void sm_matvec_iq4_nl_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols) {
    iq4_nl_x16(out, w, xq, xsum, rows, cols);
}

/* The same against a batch (prefill): each chunk, loaded and unpacked
 * once, meets the activations of a tile of tokens, one VNNI instruction
 * each; every token's sums, scales and minimums are applied in the order
 * above, so its results are bit for bit the one-token kernel's. INIT and
 * MIN read token t's xsum row (xs_t) and activation block (xb). Tiles of
 * 6 tokens (2 float accumulators and one int32 sum each), then 4, 2, 1. */
#define X16_BATCH(NAME, G_T, X_T, LOAD_H, CODE_LO, CODE_HI, INIT, MIN)                                     \
    AVX512 static INLINE void NAME##_tile(float *out, size_t ldc, const G_T *g, const uint8_t *xq, size_t xqs,  \
                                          const int32_t *xsum, size_t xss, int T, int nb, int accumulate) {   \
        const __m512i low = _mm512_set1_epi8(0x0F);                                                          \
        __m512 acc[6], accm[6];                                                                              \
        SM_UNROLL(6) for (int t = 0; t < T; t++) acc[t] = accm[t] = _mm512_setzero_ps();          \
        for (int b = 0; b < nb; b++) {                                                                       \
            __m512i h = LOAD_H, s[6];                                                                        \
            (void)h;                                                                                         \
            SM_UNROLL(6) for (int t = 0; t < T; t++) {                                            \
                const int32_t *xs_t = xsum + (size_t)t * xss;                                                \
                (void)xs_t;                                                                                  \
                s[t] = INIT;                                                                                 \
            }                                                                                                \
            SM_UNROLL(4) for (int c = 0; c < 4; c++) {                                            \
                __m512i v = _mm512_loadu_si512(g[b].qs + 64 * c), lo = CODE_LO, hi = CODE_HI;                \
                SM_UNROLL(6) for (int t = 0; t < T; t++) {                                        \
                    const int8_t *xs = ((const X_T *)(xq + (size_t)t * xqs) + b)->qs;                        \
                    s[t] = _mm512_dpbusd_epi32(s[t], lo, _mm512_set1_epi32(sm_load_i32(xs + 4 * c)));           \
                    s[t] = _mm512_dpbusd_epi32(s[t], hi, _mm512_set1_epi32(sm_load_i32(xs + 16 + 4 * c)));      \
                }                                                                                            \
            }                                                                                                \
            __m512 d16 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].d));                       \
            SM_UNROLL(6) for (int t = 0; t < T; t++) {                                            \
                const X_T *xb = (const X_T *)(xq + (size_t)t * xqs) + b;                                     \
                __m512 d = _mm512_mul_ps(d16, _mm512_set1_ps(_cvtsh_ss(xb->d)));                             \
                acc[t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s[t]), acc[t]);                               \
                MIN;                                                                                         \
            }                                                                                                \
        }                                                                                                    \
        SM_UNROLL(6) for (int t = 0; t < T; t++) {                                                \
            float *p = out + (size_t)t * ldc;                                                                \
            __m512 r = _mm512_add_ps(acc[t], accm[t]);                                                       \
            _mm512_storeu_ps(p, accumulate ? _mm512_add_ps(_mm512_loadu_ps(p), r) : r);                      \
        }                                                                                                    \
    }                                                                                                        \
    AVX512 void sm_batch_##NAME##_x16_avx512(float *c, size_t ldc, const void *w, const void *xq, size_t xqs,  \
                                             const int32_t *xsum, size_t xss, int n, int rows, int cols,      \
                                             int accumulate) {                                               \
        int nb = cols / SM_QK;                                                                               \
        const G_T *g = w;                                                                                    \
        for (int r = 0; r < rows; r += SM_X16, g += nb) {                                                    \
            int i = 0;                                                                                       \
            for (; i + 6 <= n; i += 6)                                                                       \
                NAME##_tile(c + (size_t)i * ldc + r, ldc, g, (const uint8_t *)xq + (size_t)i * xqs, xqs,     \
                            xsum ? xsum + (size_t)i * xss : NULL, xss, 6, nb, accumulate);                   \
            for (int tn = 4; tn >= 1; tn /= 2)                                                               \
                if (n - i >= tn) {                                                                           \
                    NAME##_tile(c + (size_t)i * ldc + r, ldc, g, (const uint8_t *)xq + (size_t)i * xqs, xqs, \
                                xsum ? xsum + (size_t)i * xss : NULL, xss, tn, nb, accumulate);              \
                    i += tn;                                                                                 \
                }                                                                                            \
        }                                                                                                    \
    }
#define X16_BATCH_MIN                                                                                     \
    accm[t] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].m)),             \
                              _mm512_set1_ps(_cvtsh_ss(xb->s)), accm[t])

X16_BATCH(q4_1, sm_block_q4_1x16, sm_block_q8_1, _mm512_setzero_si512(), NIB_LO, NIB_HI, _mm512_setzero_si512(),
          X16_BATCH_MIN)
X16_BATCH(q5_1, sm_block_q5_1x16, sm_block_q8_1, _mm512_loadu_si512(g[b].qh), _mm512_or_si512(NIB_LO, fifth_lo(h, c)),
          _mm512_or_si512(NIB_HI, fifth_hi(h, c)), _mm512_setzero_si512(), X16_BATCH_MIN)
X16_BATCH(q5_0, sm_block_q5_0x16, sm_block_q8_0, _mm512_loadu_si512(g[b].qh), _mm512_or_si512(NIB_LO, fifth_lo(h, c)),
          _mm512_or_si512(NIB_HI, fifth_hi(h, c)), _mm512_set1_epi32(-16 * xs_t[b]), (void)0)
#define IQ4_NL_TABLE                                                                                      \
    _mm512_add_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)sm_iq4nl_values)),             \
                    _mm512_set1_epi8((char)0x80))
X16_BATCH(iq4_nl, sm_block_iq4_nlx16, sm_block_q8_0, _mm512_setzero_si512(), _mm512_shuffle_epi8(IQ4_NL_TABLE, NIB_LO),
          _mm512_shuffle_epi8(IQ4_NL_TABLE, NIB_HI), _mm512_set1_epi32(-128 * xs_t[b]), (void)0)

/* Dequantizing a group for prefill: each 16-byte load holds 4 columns of 4
 * rows (rows 4q..4q+3 of chunk c), widened to 16 int32 lanes; the result
 * leaves as four 4-float pieces, one per row. The arithmetic is the
 * reference's (multiply, then add). */
#define STORE_4_ROWS(dst, v, ld)                                                \
    do {                                                                        \
        _mm_storeu_ps((dst), _mm512_castps512_ps128(v));                        \
        _mm_storeu_ps((dst) + (ld), _mm512_extractf32x4_ps((v), 1));            \
        _mm_storeu_ps((dst) + 2 * (size_t)(ld), _mm512_extractf32x4_ps((v), 2)); \
        _mm_storeu_ps((dst) + 3 * (size_t)(ld), _mm512_extractf32x4_ps((v), 3)); \
    } while (0)

/* the 16 rows' values of quad q, each repeated for its four columns */
AVX512 static inline __m512 quad(__m512 v16, int q) {
    __m512i idx = _mm512_add_epi32(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3), _mm512_set1_epi32(4 * q));
    return _mm512_permutexvar_ps(idx, v16);
}

/* KIND: 0 Q4_1, 1 Q5_1, 2 Q5_0, 3 IQ4_NL (a compile-time constant in each
 * caller, so the branches fold away). */
AVX512 static inline void dequant_x16(float *out, const uint16_t *dp, const uint16_t *mp, const uint8_t *qh,
                                      const uint8_t *qs, int cols, int b, int kind) {
    const __m512i low = _mm512_set1_epi32(0x0F), one = _mm512_set1_epi32(1);
    const __m512 values = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)sm_iq4nl_values)));
    __m512 d16 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)dp));
    __m512 m16 = mp ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)mp)) : _mm512_setzero_ps();
    for (int q = 0; q < 4; q++) {
        __m512 d = quad(d16, q), m = quad(m16, q);
        float *row = out + (size_t)4 * q * cols + b * SM_QK;
        __m512i h = qh ? _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qh + 16 * q))) : _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 64 * c + 16 * q)));
            __m512i lo = _mm512_and_si512(v, low), hi = _mm512_srli_epi32(v, 4);
            if (kind != 3 && qh) {
                lo = _mm512_or_si512(lo, _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h, c), one), 4));
                hi = _mm512_or_si512(hi, _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h, 4 + c), one), 4));
            }
            __m512 flo, fhi;
            if (kind == 3) {
                flo = _mm512_mul_ps(d, _mm512_permutexvar_ps(lo, values));
                fhi = _mm512_mul_ps(d, _mm512_permutexvar_ps(hi, values));
            } else {
                if (kind == 2) {
                    lo = _mm512_sub_epi32(lo, _mm512_set1_epi32(16));
                    hi = _mm512_sub_epi32(hi, _mm512_set1_epi32(16));
                }
                flo = _mm512_mul_ps(_mm512_cvtepi32_ps(lo), d);
                fhi = _mm512_mul_ps(_mm512_cvtepi32_ps(hi), d);
                if (kind < 2) {
                    flo = _mm512_add_ps(flo, m);
                    fhi = _mm512_add_ps(fhi, m);
                }
            }
            STORE_4_ROWS(row + 4 * c, flo, cols);
            STORE_4_ROWS(row + 16 + 4 * c, fhi, cols);
        }
    }
}

AVX512 void sm_dequantize_q4_1x16_avx512(float *out, const void *group, int cols) {
    const sm_block_q4_1x16 *g = group;
    for (int b = 0; b < cols / SM_QK; b++) dequant_x16(out, g[b].d, g[b].m, NULL, g[b].qs, cols, b, 0);
}
AVX512 void sm_dequantize_q5_1x16_avx512(float *out, const void *group, int cols) {
    const sm_block_q5_1x16 *g = group;
    for (int b = 0; b < cols / SM_QK; b++) dequant_x16(out, g[b].d, g[b].m, g[b].qh, g[b].qs, cols, b, 1);
}
AVX512 void sm_dequantize_q5_0x16_avx512(float *out, const void *group, int cols) {
    const sm_block_q5_0x16 *g = group;
    for (int b = 0; b < cols / SM_QK; b++) dequant_x16(out, g[b].d, NULL, g[b].qh, g[b].qs, cols, b, 2);
}
AVX512 void sm_dequantize_iq4_nlx16_avx512(float *out, const void *group, int cols) {
    const sm_block_iq4_nlx16 *g = group;
    for (int b = 0; b < cols / SM_QK; b++) dequant_x16(out, g[b].d, NULL, NULL, g[b].qs, cols, b, 3);
}

/* ------------------------------------------------------------------ BF16
 * (widened by simd.h's sm_bf16x8 / sm_bf16x16) */

AVX2 void sm_bf16_to_f32_avx2(float *out, const void *inv, int n) {
    const uint16_t *in = inv;
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, sm_bf16x8(in + i));
    for (; i < n; i++) out[i] = sm_bf16_to_fp32(in[i]);
}

AVX512 void sm_bf16_to_f32_avx512(float *out, const void *inv, int n) {
    const uint16_t *in = inv;
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, sm_bf16x16(in + i));
    for (; i < n; i++) out[i] = sm_bf16_to_fp32(in[i]);
}

/* One row at a time, as one sequential stream (the AVX-512 level widens BF16
 * in the F16 decode kernel: kernels_x86.c). */
AVX2 void sm_matvec_bf16_avx2(float *out, const void *wv, const void *xv, int rows, int cols) {
    const uint16_t *w = wv;
    const float *x = xv;
    int full = cols & ~31;
    for (int r = 0; r < rows; r++) {
        const uint16_t *wr = w + (size_t)r * cols;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c < full; c += 32) {
            a0 = _mm256_fmadd_ps(sm_bf16x8(wr + c), _mm256_loadu_ps(x + c), a0);
            a1 = _mm256_fmadd_ps(sm_bf16x8(wr + c + 8), _mm256_loadu_ps(x + c + 8), a1);
            a2 = _mm256_fmadd_ps(sm_bf16x8(wr + c + 16), _mm256_loadu_ps(x + c + 16), a2);
            a3 = _mm256_fmadd_ps(sm_bf16x8(wr + c + 24), _mm256_loadu_ps(x + c + 24), a3);
        }
        float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (int c = full; c < cols; c++) s += sm_bf16_to_fp32(wr[c]) * x[c];
        out[r] = s;
    }
}

#endif

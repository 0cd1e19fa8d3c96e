/* kernels_x86_k_body.h - the K-format matrix x vector kernels against Q8_K
 * activations, written once and included twice by kernels_x86_k.c: for
 * AVX2 (KATTR = its target, KACC = madd + add) and for AVX-512 VNNI (KACC =
 * vpdpwssd, which multiplies int16 pairs and accumulates in one step).
 *
 * Each 256-element block: maddubs multiplies unsigned codes by the signed
 * activations into int16 pair sums (no overflow: codes <= 63, |x| <= 127),
 * KACC weights them by the sub-block's scale (int16, broadcast by a byte
 * shuffle from the block's unpacked scales) into int32 lanes, and the block
 * ends with one float multiply-add by the two fp16/f32 scales. Codes' offsets
 * and mins come from the activations' 16-element sums.
 *
 * Expects: KATTR, KNAME(name), KACC(acc, p16, s16), KSPLIT (1: keep two
 * accumulation chains where KACC has a long latency), KPREFETCH(p, bytes)
 * (the weights ahead of a block, or nothing), and the helpers of
 * kernels_x86_k.c. */

/* Sum of 8 floats. */
KATTR static inline float KNAME(hsum_ps)(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* int16 element e of each 128-bit lane, broadcast over that lane (a byte
 * shuffle control). */
#define PICK16(e) _mm256_set1_epi16((short)(((2 * (e) + 1) << 8) | (2 * (e))))
/* int16 element a over the low lane and b over the high lane */
#define PICK16_2(a, b) _mm256_set_m128i(_mm_set1_epi16((short)(((2 * (b) + 1) << 8) | (2 * (b)))), \
                                        _mm_set1_epi16((short)(((2 * (a) + 1) << 8) | (2 * (a)))))

/* Four groups of 32 codes (shifts 0, 2, 4, 6 of the same 32 bytes) against
 * 128 activations; s holds the 8 scales of this half in each lane, group k
 * takes scale 2k in its low lane and 2k + 1 in its high lane. Inlined with
 * the codes already unpacked, so each half is straight-line code. */
KATTR static inline __m256i KNAME(dot4x32)(__m256i isum, __m256i c0, __m256i c1, __m256i c2, __m256i c3, __m256i s,
                                           const int8_t *xs) {
    __m256i p0 = _mm256_maddubs_epi16(c0, _mm256_loadu_si256((const __m256i *)xs));
    __m256i p1 = _mm256_maddubs_epi16(c1, _mm256_loadu_si256((const __m256i *)(xs + 32)));
    __m256i p2 = _mm256_maddubs_epi16(c2, _mm256_loadu_si256((const __m256i *)(xs + 64)));
    __m256i p3 = _mm256_maddubs_epi16(c3, _mm256_loadu_si256((const __m256i *)(xs + 96)));
#if KSPLIT
    /* two accumulation chains: vpdpwssd's latency would serialize one */
    __m256i other = KACC(_mm256_setzero_si256(), p1, _mm256_shuffle_epi8(s, PICK16_2(2, 3)));
    isum = KACC(isum, p0, _mm256_shuffle_epi8(s, PICK16_2(0, 1)));
    isum = KACC(isum, p2, _mm256_shuffle_epi8(s, PICK16_2(4, 5)));
    other = KACC(other, p3, _mm256_shuffle_epi8(s, PICK16_2(6, 7)));
    return _mm256_add_epi32(isum, other);
#else
    isum = KACC(isum, p0, _mm256_shuffle_epi8(s, PICK16_2(0, 1)));
    isum = KACC(isum, p1, _mm256_shuffle_epi8(s, PICK16_2(2, 3)));
    isum = KACC(isum, p2, _mm256_shuffle_epi8(s, PICK16_2(4, 5)));
    return KACC(isum, p3, _mm256_shuffle_epi8(s, PICK16_2(6, 7)));
#endif
}

/* Q2_K: 2-bit codes by shifts of 64 bytes; scale low nibble, min high. */
KATTR static inline __m256i KNAME(q2_K_half)(__m256i isum, const uint8_t *qs, __m256i s, const int8_t *xs) {
    const __m256i three = _mm256_set1_epi8(3);
    __m256i q = _mm256_loadu_si256((const __m256i *)qs);
    return KNAME(dot4x32)(isum, _mm256_and_si256(q, three), _mm256_and_si256(_mm256_srli_epi16(q, 2), three),
                          _mm256_and_si256(_mm256_srli_epi16(q, 4), three), _mm256_and_si256(_mm256_srli_epi16(q, 6), three), s, xs);
}

KATTR void KNAME(sm_matvec_q2_K)(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_K *x = xq;
    const __m128i nib = _mm_set1_epi8(0x0F);
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r++) {
        const sm_block_q2_K *wr = (const sm_block_q2_K *)w + (size_t)r * nb;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            KPREFETCH(&wr[b], sizeof wr[b]);
            __m128i s8 = _mm_loadu_si128((const __m128i *)wr[b].scales);
            __m256i sc = _mm256_cvtepu8_epi16(_mm_and_si128(s8, nib));
            __m256i mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s8, 4), nib));
            __m256i mins = _mm256_madd_epi16(mn, _mm256_loadu_si256((const __m256i *)x[b].bsums));
            /* the mins enter with -dmin, in the same accumulator */
            acc = _mm256_fmadd_ps(_mm256_set1_ps(-x[b].d * _cvtsh_ss(wr[b].dmin)), _mm256_cvtepi32_ps(mins), acc);
            __m128i slo = _mm256_castsi256_si128(sc), shi = _mm256_extracti128_si256(sc, 1);
            __m256i isum = KNAME(q2_K_half)(_mm256_setzero_si256(), wr[b].qs, _mm256_set_m128i(slo, slo), x[b].qs);
            isum = KNAME(q2_K_half)(isum, wr[b].qs + 32, _mm256_set_m128i(shi, shi), x[b].qs + 128);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(x[b].d * _cvtsh_ss(wr[b].d)), _mm256_cvtepi32_ps(isum), acc);
        }
        out[r] = KNAME(hsum_ps)(acc);
    }
}

/* Q3_K: unsigned codes u = 2 low bits | high bit << 2 (0..7) stand for
 * u - 4: sum sc * (u.x) - 4 * sum sc * (sum x). hm holds the high bits with
 * this half's shift k at bit k. */
KATTR static inline __m256i KNAME(q3_K_half)(__m256i isum, const uint8_t *qs, __m256i hm, __m256i s, const int8_t *xs) {
    const __m256i three = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    __m256i q = _mm256_loadu_si256((const __m256i *)qs);
    __m256i u0 = _mm256_or_si256(_mm256_and_si256(q, three), _mm256_and_si256(_mm256_slli_epi16(hm, 2), four));
    __m256i u1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2), three), _mm256_and_si256(_mm256_slli_epi16(hm, 1), four));
    __m256i u2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), three), _mm256_and_si256(hm, four));
    __m256i u3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 6), three), _mm256_and_si256(_mm256_srli_epi16(hm, 1), four));
    return KNAME(dot4x32)(isum, u0, u1, u2, u3, s, xs);
}

KATTR void KNAME(sm_matvec_q3_K)(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_K *x = xq;
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r++) {
        const sm_block_q3_K *wr = (const sm_block_q3_K *)w + (size_t)r * nb;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            KPREFETCH(&wr[b], sizeof wr[b]);
            __m256i sc = _mm256_cvtepi8_epi16(q3_K_scales_sse(wr[b].scales));
            __m256i isum = _mm256_slli_epi32(_mm256_madd_epi16(sc, _mm256_loadu_si256((const __m256i *)x[b].bsums)), 2);
            isum = _mm256_sub_epi32(_mm256_setzero_si256(), isum);
            __m256i hm = _mm256_loadu_si256((const __m256i *)wr[b].hmask);
            __m128i slo = _mm256_castsi256_si128(sc), shi = _mm256_extracti128_si256(sc, 1);
            isum = KNAME(q3_K_half)(isum, wr[b].qs, hm, _mm256_set_m128i(slo, slo), x[b].qs);
            isum = KNAME(q3_K_half)(isum, wr[b].qs + 32, _mm256_srli_epi16(hm, 4), _mm256_set_m128i(shi, shi), x[b].qs + 128);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(x[b].d * _cvtsh_ss(wr[b].d)), _mm256_cvtepi32_ps(isum), acc);
        }
        out[r] = KNAME(hsum_ps)(acc);
    }
}

/* Q4_K and Q5_K share the scales/mins step: the 8 mins times the pair sums
 * of the activations' 16 sums go to accm; returns the 8 scales as int16 in
 * both lanes. */
KATTR static inline __m256i KNAME(k4_scales_mins)(const uint8_t *scales, const sm_block_q8_K *x, float dmin, __m256 *accm) {
    __m128i sm = k4_unpack(scales);                       /* 8 scales, 8 mins (bytes) */
    __m256i s16 = _mm256_cvtepu8_epi16(sm);
    __m128i m = _mm256_extracti128_si256(s16, 1);
    __m256i mm = _mm256_set_m128i(_mm_unpackhi_epi16(m, m), _mm_unpacklo_epi16(m, m));   /* m0 m0 m1 m1 ... */
    __m256i mins = _mm256_madd_epi16(mm, _mm256_loadu_si256((const __m256i *)x->bsums));
    *accm = _mm256_fmadd_ps(_mm256_set1_ps(x->d * dmin), _mm256_cvtepi32_ps(mins), *accm);
    return _mm256_permute4x64_epi64(s16, 0x44);
}

KATTR void KNAME(sm_matvec_q4_K)(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_K *x = xq;
    const __m256i low = _mm256_set1_epi8(0x0F);
    __m256i pk[8];
    for (int e = 0; e < 8; e++) pk[e] = PICK16(e);
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r++) {
        const sm_block_q4_K *wr = (const sm_block_q4_K *)w + (size_t)r * nb;
        __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            KPREFETCH(&wr[b], sizeof wr[b]);
            __m256i s = KNAME(k4_scales_mins)(wr[b].scales, &x[b], _cvtsh_ss(wr[b].dmin), &accm);
            __m256i isum = _mm256_setzero_si256(), isum1 = isum;
            for (int c = 0; c < 4; c++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(wr[b].qs + 32 * c));
                const int8_t *xs = x[b].qs + 64 * c;
                __m256i p0 = _mm256_maddubs_epi16(_mm256_and_si256(q, low), _mm256_loadu_si256((const __m256i *)xs));
                __m256i p1 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), low), _mm256_loadu_si256((const __m256i *)(xs + 32)));
                isum = KACC(isum, p0, _mm256_shuffle_epi8(s, pk[2 * c]));
                isum1 = KACC(isum1, p1, _mm256_shuffle_epi8(s, pk[2 * c + 1]));
            }
            isum = _mm256_add_epi32(isum, isum1);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(x[b].d * _cvtsh_ss(wr[b].d)), _mm256_cvtepi32_ps(isum), acc);
        }
        out[r] = KNAME(hsum_ps)(_mm256_sub_ps(acc, accm));
    }
}

/* Q5_K: Q4_K's nibbles with the fifth bit of sub-block j from bit j of qh. */
KATTR void KNAME(sm_matvec_q5_K)(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_K *x = xq;
    const __m256i low = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    __m256i pk[8];
    for (int e = 0; e < 8; e++) pk[e] = PICK16(e);
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r++) {
        const sm_block_q5_K *wr = (const sm_block_q5_K *)w + (size_t)r * nb;
        __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            KPREFETCH(&wr[b], sizeof wr[b]);
            __m256i s = KNAME(k4_scales_mins)(wr[b].scales, &x[b], _cvtsh_ss(wr[b].dmin), &accm);
            __m256i hb = _mm256_loadu_si256((const __m256i *)wr[b].qh);
            __m256i isum = _mm256_setzero_si256(), isum1 = isum;
            /* bit 2c (low nibbles) and 2c + 1 (high nibbles) of qh move to bit 4 */
#define Q5_CHUNK(c, H0, H1)                                                                                           \
    do {                                                                                                              \
        __m256i q = _mm256_loadu_si256((const __m256i *)(wr[b].qs + 32 * (c)));                                       \
        const int8_t *xs = x[b].qs + 64 * (c);                                                                        \
        __m256i u0 = _mm256_or_si256(_mm256_and_si256(q, low), _mm256_and_si256(H0, b4));                            \
        __m256i u1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), low), _mm256_and_si256(H1, b4));       \
        isum = KACC(isum, _mm256_maddubs_epi16(u0, _mm256_loadu_si256((const __m256i *)xs)), _mm256_shuffle_epi8(s, pk[2 * (c)])); \
        isum1 = KACC(isum1, _mm256_maddubs_epi16(u1, _mm256_loadu_si256((const __m256i *)(xs + 32))), _mm256_shuffle_epi8(s, pk[2 * (c) + 1])); \
    } while (0)
            Q5_CHUNK(0, _mm256_slli_epi16(hb, 4), _mm256_slli_epi16(hb, 3));
            Q5_CHUNK(1, _mm256_slli_epi16(hb, 2), _mm256_slli_epi16(hb, 1));
            Q5_CHUNK(2, hb, _mm256_srli_epi16(hb, 1));
            Q5_CHUNK(3, _mm256_srli_epi16(hb, 2), _mm256_srli_epi16(hb, 3));
#undef Q5_CHUNK
            isum = _mm256_add_epi32(isum, isum1);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(x[b].d * _cvtsh_ss(wr[b].d)), _mm256_cvtepi32_ps(isum), acc);
        }
        out[r] = KNAME(hsum_ps)(_mm256_sub_ps(acc, accm));
    }
}

/* Q6_K: 6-bit codes (4 low bits in ql, 2 high in qh) stand for q - 32. */
KATTR static inline __m256i KNAME(q6_K_half)(__m256i isum, const uint8_t *ql, const uint8_t *qh, __m256i s, const int8_t *xs) {
    const __m256i low = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(0x30);
    __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    __m256i hq = _mm256_loadu_si256((const __m256i *)qh);
    __m256i q0 = _mm256_or_si256(_mm256_and_si256(l0, low), _mm256_and_si256(_mm256_slli_epi16(hq, 4), two));
    __m256i q1 = _mm256_or_si256(_mm256_and_si256(l1, low), _mm256_and_si256(_mm256_slli_epi16(hq, 2), two));
    __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low), _mm256_and_si256(hq, two));
    __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low), _mm256_and_si256(_mm256_srli_epi16(hq, 2), two));
    return KNAME(dot4x32)(isum, q0, q1, q2, q3, s, xs);
}

KATTR void KNAME(sm_matvec_q6_K)(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_K *x = xq;
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r++) {
        const sm_block_q6_K *wr = (const sm_block_q6_K *)w + (size_t)r * nb;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            KPREFETCH(&wr[b], sizeof wr[b]);
            __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wr[b].scales));
            __m256i isum = _mm256_slli_epi32(_mm256_madd_epi16(sc, _mm256_loadu_si256((const __m256i *)x[b].bsums)), 5);
            isum = _mm256_sub_epi32(_mm256_setzero_si256(), isum);
            __m128i slo = _mm256_castsi256_si128(sc), shi = _mm256_extracti128_si256(sc, 1);
            isum = KNAME(q6_K_half)(isum, wr[b].ql, wr[b].qh, _mm256_set_m128i(slo, slo), x[b].qs);
            isum = KNAME(q6_K_half)(isum, wr[b].ql + 64, wr[b].qh + 32, _mm256_set_m128i(shi, shi), x[b].qs + 128);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(x[b].d * _cvtsh_ss(wr[b].d)), _mm256_cvtepi32_ps(isum), acc);
        }
        out[r] = KNAME(hsum_ps)(acc);
    }
}

/* IQ4_XS: each code looks up its signed level (a byte shuffle of the 16-entry
 * table); signed x signed goes through maddubs as |level| times x with the
 * level's sign. A 128-bit lane holds 16 elements of one sub-block. */
KATTR void KNAME(sm_matvec_iq4_xs)(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_K *x = xq;
    const __m256i low = _mm256_set1_epi8(0x0F);
    const __m256i values = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sm_iq4nl_values));
    const __m256i absval = _mm256_abs_epi8(values);
    __m256i pk[8];
    for (int e = 0; e < 8; e++) pk[e] = PICK16(e);
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r++) {
        const sm_block_iq4_xs *wr = (const sm_block_iq4_xs *)w + (size_t)r * nb;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            KPREFETCH(&wr[b], sizeof wr[b]);
            __m256i s = _mm256_broadcastsi128_si256(iq4_xs_scales16(&wr[b]));
            __m256i isum = _mm256_setzero_si256(), isum1 = isum;
            for (int j = 0; j < 8; j += 2) {
                __m128i q = _mm_loadu_si128((const __m128i *)(wr[b].qs + 16 * j));
                __m128i q1 = _mm_loadu_si128((const __m128i *)(wr[b].qs + 16 * j + 16));
                __m256i c = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low);   /* elements 0-15 | 16-31 */
                __m256i c1 = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q1, 4), q1), low);
                __m256i xv = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * j));
                __m256i xv1 = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * j + 32));
                __m256i p = _mm256_maddubs_epi16(_mm256_shuffle_epi8(absval, c), _mm256_sign_epi8(xv, _mm256_shuffle_epi8(values, c)));
                __m256i p1 = _mm256_maddubs_epi16(_mm256_shuffle_epi8(absval, c1), _mm256_sign_epi8(xv1, _mm256_shuffle_epi8(values, c1)));
                isum = KACC(isum, p, _mm256_shuffle_epi8(s, pk[j]));
                isum1 = KACC(isum1, p1, _mm256_shuffle_epi8(s, pk[j + 1]));
            }
            acc = _mm256_fmadd_ps(_mm256_set1_ps(x[b].d * _cvtsh_ss(wr[b].d)), _mm256_cvtepi32_ps(_mm256_add_epi32(isum, isum1)), acc);
        }
        out[r] = KNAME(hsum_ps)(acc);
    }
}

/* kernels_x86.c - AVX2 (+FMA, F16C) and AVX-512 (+VNNI) variants of the
 * matrix x vector kernels. Each function carries its own target attribute,
 * so the file builds with plain flags and the dispatcher (dispatch.c) picks
 * what the CPU has at run time. Tested against kernels_scalar.c/quant.c. */
#include "kernels.h"
#include "quant.h"
#include "quant_legacy.h"
#include "half.h"
#include "interleave.h"
#include "simd.h"
#include "dispatch.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include "x86_isa.h"

#define AVX2 SM_TARGET_AVX2
#define AVX512 SM_TARGET_AVX512
#define AVX512BF16 SM_TARGET_AVX512BF16

AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---------------------------------------------------------------- AVX2 */

/* Four rows at a time share each load of x, and the four are a quarter of
 * the rows apart: four long sequential streams through memory instead of
 * one (or four short ones side by side), which keeps more DRAM requests in
 * flight. On the Zen 3 host, decoding from a file-backed mapping larger
 * than L3 on one core: 26-31 GB/s against 16-18 for four adjacent rows of
 * 288 columns, 19-21 at 768 columns and 25-28 at 2048 (the probe's
 * single-stream read: 23). Each row's sum is the same as before, in the
 * same order. */
AVX2 void sm_matvec_f32_avx2(float *out, const void *wdata, const void *xdata, int rows, int cols) {
    const float *w = wdata, *x = xdata;
    int q = rows / 4;
    size_t apart = (size_t)q * cols;
    for (int r = 0; r < q; r++) {
        const float *w0 = w + (size_t)r * cols, *w1 = w0 + apart, *w2 = w1 + apart, *w3 = w2 + apart;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int c = 0;
        for (; c + 8 <= cols; c += 8) {
            __m256 xv = _mm256_loadu_ps(x + c);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + c), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + c), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + c), xv, a3);
        }
        float s0 = hsum256(a0), s1 = hsum256(a1), s2 = hsum256(a2), s3 = hsum256(a3);
        for (; c < cols; c++) { s0 += w0[c] * x[c]; s1 += w1[c] * x[c]; s2 += w2[c] * x[c]; s3 += w3[c] * x[c]; }
        out[r] = s0; out[r + q] = s1; out[r + 2 * q] = s2; out[r + 3 * q] = s3;
    }
    for (int r = 4 * q; r < rows; r++) {
        const float *wr = w + (size_t)r * cols;
        __m256 a = _mm256_setzero_ps();
        int c = 0;
        for (; c + 8 <= cols; c += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(wr + c), _mm256_loadu_ps(x + c), a);
        float s = hsum256(a);
        for (; c < cols; c++) s += wr[c] * x[c];
        out[r] = s;
    }
}

/* Several inputs per pass over the weights (types.h's matvec_n): the rows
 * above, four a quarter apart, against two inputs at a time (8
 * accumulators of the 16 registers); every sum is sm_matvec_f32_avx2's, in
 * its order, so each input gets the bits it gets alone. */
AVX2 static inline __attribute__((always_inline)) void matvec_f32_n_group(float *const *outs, const float *const *w4,
                                                                        const float *x, size_t xs, int n, int cols,
                                                                        int r, int q, int nw) {
    for (int j0 = 0; j0 < n; j0 += 2) {
        const float *xa = x + (size_t)j0 * xs, *xb = j0 + 1 < n ? xa + xs : xa;
        __m256 a[4], b[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) a[i] = b[i] = _mm256_setzero_ps();
        int c = 0;
        for (; c + 8 <= cols; c += 8) {
            __m256 va = _mm256_loadu_ps(xa + c), vb = _mm256_loadu_ps(xb + c);
#pragma GCC unroll 4
            for (int i = 0; i < nw; i++) {
                __m256 wv = _mm256_loadu_ps(w4[i] + c);
                a[i] = _mm256_fmadd_ps(wv, va, a[i]);
                b[i] = _mm256_fmadd_ps(wv, vb, b[i]);
            }
        }
        for (int i = 0; i < nw; i++) {
            float sa = hsum256(a[i]), sb = hsum256(b[i]);
            for (int cc = c; cc < cols; cc++) {
                sa += w4[i][cc] * xa[cc];
                sb += w4[i][cc] * xb[cc];
            }
            outs[j0][r + i * q] = sa;
            if (j0 + 1 < n) outs[j0 + 1][r + i * q] = sb;
        }
    }
}

AVX2 void sm_matvec_f32_n_avx2(float *const *outs, const void *wdata, const float *x, size_t x_stride, int n, int rows,
                               int cols) {
    const float *w = wdata;
    int q = rows / 4;
    size_t apart = (size_t)q * cols;
    for (int r = 0; r < q; r++) {
        const float *w4[4] = {w + (size_t)r * cols, w + (size_t)r * cols + apart, w + (size_t)r * cols + 2 * apart,
                              w + (size_t)r * cols + 3 * apart};
        matvec_f32_n_group(outs, w4, x, x_stride, n, cols, r, q, 4);
    }
    for (int r = 4 * q; r < rows; r++) {
        const float *w4[4] = {w + (size_t)r * cols, NULL, NULL, NULL};
        matvec_f32_n_group(outs, w4, x, x_stride, n, cols, r, 0, 1);
    }
}

AVX2 void sm_matvec_f16_avx2(float *out, const void *wdata, const void *xdata, int rows, int cols) {
    const uint16_t *w = wdata;
    const float *x = xdata;
    for (int r = 0; r < rows; r++) {
        const uint16_t *wr = w + (size_t)r * cols;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int c = 0;
        for (; c + 16 <= cols; c += 16) {
            a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wr + c))), _mm256_loadu_ps(x + c), a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wr + c + 8))), _mm256_loadu_ps(x + c + 8), a1);
        }
        float s = hsum256(_mm256_add_ps(a0, a1));
        for (; c < cols; c++) s += sm_fp16_to_fp32(wr[c]) * x[c];
        out[r] = s;
    }
}

/* Signed int8 dot of 32 pairs, as 8 int32 partial sums: |w| (unsigned)
 * times x with w's sign, multiplied in pairs and widened. */
AVX2 static inline __m256i dot32_i8_avx2(__m256i w, __m256i x) {
    __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

AVX2 static inline __m256i unpack_q4_avx2(const uint8_t *qs) {
    __m128i b = _mm_loadu_si128((const __m128i *)qs);
    __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0F)), hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0F));
    return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

/* One row at a time, one 32-element block per 256-bit step: the integer dot
 * of the block, converted and scaled by both blocks' fp16 scales. LOAD_W
 * turns a weight block into 32 signed bytes; DOT is the ISA's int8 dot. */
#define QUANT_MATVEC(BLOCK_T, LOAD_W, DOT)                                                           \
    const sm_block_q8_0 *x = xq;                                                                      \
    int nb = cols / SM_QK;                                                                            \
    for (int r = 0; r < rows; r++) {                                                                  \
        const BLOCK_T *wr = (const BLOCK_T *)w + (size_t)r * nb;                                      \
        __m256 acc = _mm256_setzero_ps();                                                             \
        for (int b = 0; b < nb; b++) {                                                                \
            __m256i d = DOT(LOAD_W(wr[b].qs), _mm256_loadu_si256((const __m256i *)x[b].qs));          \
            float scale = _cvtsh_ss(wr[b].d) * _cvtsh_ss(x[b].d);                                     \
            acc = _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(d), acc);                 \
        }                                                                                             \
        out[r] = hsum256(acc);                                                                        \
    }

#define LOAD_Q8(qs) _mm256_loadu_si256((const __m256i *)(qs))

AVX2 void sm_matvec_q8_0_avx2(float *out, const void *w, const void *xq, int rows, int cols) {
    QUANT_MATVEC(sm_block_q8_0, LOAD_Q8, dot32_i8_avx2)
}

AVX2 void sm_matvec_q4_0_avx2(float *out, const void *w, const void *xq, int rows, int cols) {
    QUANT_MATVEC(sm_block_q4_0, unpack_q4_avx2, dot32_i8_avx2)
}

AVX2 void sm_quantize_q8_0_avx2(void *out, const float *x, int n) {
    sm_block_q8_0 *y = out;
    for (int b = 0; b < n / SM_QK; b++, x += SM_QK) {
        __m256 v[4], m = _mm256_setzero_ps();
        const __m256 sign = _mm256_set1_ps(-0.0f);
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4), d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        y[b].d = sm_fp32_to_fp16(d);
        /* round half away from zero, as roundf in the reference */
        for (int k = 0; k < 4; k++) {
            __m256 s = _mm256_mul_ps(v[k], _mm256_set1_ps(id));
            __m256 half = _mm256_or_ps(_mm256_and_ps(s, sign), _mm256_set1_ps(0.5f));
            __m256i q = _mm256_cvttps_epi32(_mm256_add_ps(s, half));
            int32_t t[8];
            _mm256_storeu_si256((__m256i *)t, q);
            for (int i = 0; i < 8; i++) y[b].qs[8 * k + i] = (int8_t)t[i];
        }
    }
}

/* -------------------------------------------------------------- AVX-512 */

/* Decode streams the weights from memory once per token, four rows at a
 * time sharing each load of x: rows r, r + q, r + 2q and r + 3q (q a
 * quarter of the call's rows), four long sequential streams through
 * memory, the order of the AVX2 kernel above. Against four adjacent rows
 * it read 1.3-2x faster on Zen 3 (AVX2) and 1.1-1.3x on Intel Ice Lake
 * (F32/F16 decode, 110M/124M shapes). On Intel each F16 stream also gets
 * a software prefetch 2 KiB ahead (1.2-1.5x there; F32's were 0.9-1.06x,
 * so it has none); not on AMD. BF16 takes the same kernel, its halves
 * widened by a shift (on Zen 4, 110M-shape decode at one thread, 100-114
 * tok/s against 82-100 for one row at a time through vdpbf16ps with the
 * input split in two BF16 parts, in 5 alternating runs; on Intel it has the
 * F16 kernel's prefetches, where four adjacent prefetched rows measured
 * 1.3x one stream before). sm_matvec_f16_variant_avx512 and
 * sm_matvec_bf16_variant_avx512 take either choice on any host, for the
 * tests: the prefetches must not change a bit. */
#define PREFETCH_BYTES 2048

AVX512 static inline void matvec_f32_rows4(float *out, const float *w, const float *x, int rows, int cols) {
    int full = cols & ~15, d = rows / 4;
    __mmask16 tail = (__mmask16)((1u << (cols - full)) - 1);
    for (int r0 = 0; r0 < d; r0++) {
        const float *w0 = w + (size_t)r0 * cols, *w1 = w0 + (size_t)d * cols, *w2 = w1 + (size_t)d * cols,
                    *w3 = w2 + (size_t)d * cols;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c < full; c += 16) {
            __m512 xv = _mm512_loadu_ps(x + c);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + c), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + c), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + c), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + c), xv, a3);
        }
        if (tail) {
            __m512 xv = _mm512_maskz_loadu_ps(tail, x + full);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w0 + full), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w1 + full), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w2 + full), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w3 + full), xv, a3);
        }
        out[r0] = _mm512_reduce_add_ps(a0);
        out[r0 + d] = _mm512_reduce_add_ps(a1);
        out[r0 + 2 * d] = _mm512_reduce_add_ps(a2);
        out[r0 + 3 * d] = _mm512_reduce_add_ps(a3);
    }
    for (int r = rows / 4 * 4; r < rows; r++) {
        const float *wr = w + (size_t)r * cols;
        __m512 a = _mm512_setzero_ps();
        for (int c = 0; c < full; c += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(wr + c), _mm512_loadu_ps(x + c), a);
        if (tail) a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, wr + full), _mm512_maskz_loadu_ps(tail, x + full), a);
        out[r] = _mm512_reduce_add_ps(a);
    }
}

/* Several activation rows in one pass over the weights (types.h's
 * matvec_n): each group of rows (a fraction of the call's rows apart, as
 * above) meets every input, so the rows stream from memory once for all of
 * them (speculative decoding's check of a draft, several sessions'
 * one-token rows): 4 rows x 6 inputs of accumulators, or 3 x 9 for 7 to 9
 * inputs (the default draft of 8 and its last token in one pass). Every
 * sum takes matvec_f32_rows4's operations in its order (F16 and BF16:
 * matvec_h16_rows4's, the halves widened in registers): the same bits per
 * input, whatever rows share a group. The weights' element (here and in
 * the strided product, whose dot tile takes BF16 as pairs of columns): */
enum { ELEM_F32, ELEM_F16, ELEM_BF16, ELEM_BF16_PAIRS, ELEM_F32_PAIRS };   /* F32_PAIRS: F32 rounded to BF16 pairs */

/* 16 halves widened to floats: F16 (vcvtph2ps) or BF16 (a 16-bit shift, exact) */
AVX512 static inline __m512 widen_h16(__m256i h, int elem) {
    return elem == ELEM_BF16 ? sm_bf16x16_bits(h) : _mm512_cvtph_ps(h);
}

AVX512 static inline __m512 load_w(const void *w, int c, int elem) {
    return elem != ELEM_F32 ? widen_h16(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + c)), elem)
                            : _mm512_loadu_ps((const float *)w + c);
}

AVX512 static inline __m512 load_w_tail(const void *w, int c, __mmask16 tail, int elem) {
    return elem != ELEM_F32 ? widen_h16(_mm256_maskz_loadu_epi16(tail, (const uint16_t *)w + c), elem)
                            : _mm512_maskz_loadu_ps(tail, (const float *)w + c);
}

/* Rows w4[0 .. nw) (row r + q d for w4[q]) against inputs j < n of nt
 * (gr x nt accumulators; gr, nt constants) */
AVX512 static inline __attribute__((always_inline)) void matvec_n_rows(float *const *outs, const void *const *w4,
                                                                      const float *x, size_t xs, int n, int cols,
                                                                      int r, int d, int nw, int elem, int gr, int nt) {
    int full = cols & ~15;
    __mmask16 tail = (__mmask16)((1u << (cols - full)) - 1);
    __m512 acc[4][9];
#pragma GCC unroll 4
    for (int q = 0; q < gr; q++)
#pragma GCC unroll 9
        for (int j = 0; j < nt; j++) acc[q][j] = _mm512_setzero_ps();
    for (int c = 0; c < full; c += 16) {
        __m512 wv[4];
#pragma GCC unroll 4
        for (int q = 0; q < gr; q++) wv[q] = q < nw ? load_w(w4[q], c, elem) : _mm512_setzero_ps();
#pragma GCC unroll 9
        for (int j = 0; j < nt; j++) {
            __m512 xv = _mm512_loadu_ps(x + (size_t)(j < n ? j : 0) * xs + c);
            /* one load per input: else gcc folds it into each of the group's FMAs, and at 3 x 9
             * the loads, not memory, set the pace (emulated, a vector is not one register) */
#if !defined(SM_EMULATE_AVX512)
            __asm__("" : "+v"(xv));
#endif
#pragma GCC unroll 4
            for (int q = 0; q < gr; q++) acc[q][j] = _mm512_fmadd_ps(wv[q], xv, acc[q][j]);
        }
    }
    if (tail) {
        __m512 wv[4];
#pragma GCC unroll 4
        for (int q = 0; q < gr; q++) wv[q] = q < nw ? load_w_tail(w4[q], full, tail, elem) : _mm512_setzero_ps();
#pragma GCC unroll 9
        for (int j = 0; j < nt; j++) {
            __m512 xv = _mm512_maskz_loadu_ps(tail, x + (size_t)(j < n ? j : 0) * xs + full);
#pragma GCC unroll 4
            for (int q = 0; q < gr; q++) acc[q][j] = _mm512_fmadd_ps(wv[q], xv, acc[q][j]);
        }
    }
    for (int j = 0; j < n; j++)
        for (int q = 0; q < nw; q++) outs[j][r + q * d] = _mm512_reduce_add_ps(acc[q][j]);
}

/* Every row in groups of gr rows rows / gr apart, then the rows past them
 * one at a time, against n <= nt inputs */
AVX512 static inline __attribute__((always_inline)) void matvec_n_groups(float *const *outs, const char *w, size_t rb,
                                                                        const float *x, size_t xs, int n, int rows,
                                                                        int cols, int elem, int gr, int nt) {
    int d = rows / gr;
    for (int r0 = 0; r0 < d; r0++) {
        const void *w4[4] = {w + (size_t)r0 * rb, w + (size_t)(r0 + d) * rb, w + (size_t)(r0 + 2 * d) * rb,
                             gr > 3 ? w + (size_t)(r0 + 3 * d) * rb : NULL};
        matvec_n_rows(outs, w4, x, xs, n, cols, r0, d, gr, elem, gr, nt);
    }
    for (int r = d * gr; r < rows; r++) {
        const void *w4[4] = {w + (size_t)r * rb, NULL, NULL, NULL};
        matvec_n_rows(outs, w4, x, xs, n, cols, r, 0, 1, elem, gr, nt);
    }
}

AVX512 static inline __attribute__((always_inline)) void matvec_n(float *const *outs, const void *wv, const float *x,
                                                                 size_t xs, int n, int rows, int cols, int elem) {
    size_t rb = (size_t)cols * (elem != ELEM_F32 ? sizeof(uint16_t) : sizeof(float));
    if (n <= 6) matvec_n_groups(outs, wv, rb, x, xs, n, rows, cols, elem, 4, 6);
    else matvec_n_groups(outs, wv, rb, x, xs, n, rows, cols, elem, 3, 9);
}

AVX512 void sm_matvec_f32_n_avx512(float *const *outs, const void *w, const float *x, size_t x_stride, int n,
                                   int rows, int cols) {
    matvec_n(outs, w, x, x_stride, n, rows, cols, ELEM_F32);
}

AVX512 void sm_matvec_f16_n_avx512(float *const *outs, const void *w, const float *x, size_t x_stride, int n,
                                   int rows, int cols) {
    matvec_n(outs, w, x, x_stride, n, rows, cols, ELEM_F16);
}

AVX512 void sm_matvec_bf16_n_avx512(float *const *outs, const void *w, const float *x, size_t x_stride, int n,
                                    int rows, int cols) {
    matvec_n(outs, w, x, x_stride, n, rows, cols, ELEM_BF16);
}

#define F16_FMA(acc, xv, load) acc = _mm512_fmadd_ps(widen_h16(load, elem), xv, acc)
AVX512 static inline __attribute__((always_inline)) void matvec_h16_rows4(float *out, const uint16_t *w,
                                                                         const float *x, int rows, int cols,
                                                                         int prefetch, int elem) {
    int full = cols & ~15, d = rows / 4;
    __mmask16 tail = (__mmask16)((1u << (cols - full)) - 1);
    for (int r0 = 0; r0 < d; r0++) {
        const uint16_t *w0 = w + (size_t)r0 * cols, *w1 = w0 + (size_t)d * cols, *w2 = w1 + (size_t)d * cols,
                       *w3 = w2 + (size_t)d * cols;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c < full; c += 16) {
            __m512 xv = _mm512_loadu_ps(x + c);
            if (prefetch && !(c & 31)) {   /* once per 64-byte line */
                _mm_prefetch((const char *)(w0 + c) + PREFETCH_BYTES, _MM_HINT_T0);
                _mm_prefetch((const char *)(w1 + c) + PREFETCH_BYTES, _MM_HINT_T0);
                _mm_prefetch((const char *)(w2 + c) + PREFETCH_BYTES, _MM_HINT_T0);
                _mm_prefetch((const char *)(w3 + c) + PREFETCH_BYTES, _MM_HINT_T0);
            }
            F16_FMA(a0, xv, _mm256_loadu_si256((const __m256i *)(w0 + c)));
            F16_FMA(a1, xv, _mm256_loadu_si256((const __m256i *)(w1 + c)));
            F16_FMA(a2, xv, _mm256_loadu_si256((const __m256i *)(w2 + c)));
            F16_FMA(a3, xv, _mm256_loadu_si256((const __m256i *)(w3 + c)));
        }
        if (tail) {
            __m512 xv = _mm512_maskz_loadu_ps(tail, x + full);
            F16_FMA(a0, xv, _mm256_maskz_loadu_epi16(tail, w0 + full));
            F16_FMA(a1, xv, _mm256_maskz_loadu_epi16(tail, w1 + full));
            F16_FMA(a2, xv, _mm256_maskz_loadu_epi16(tail, w2 + full));
            F16_FMA(a3, xv, _mm256_maskz_loadu_epi16(tail, w3 + full));
        }
        out[r0] = _mm512_reduce_add_ps(a0);
        out[r0 + d] = _mm512_reduce_add_ps(a1);
        out[r0 + 2 * d] = _mm512_reduce_add_ps(a2);
        out[r0 + 3 * d] = _mm512_reduce_add_ps(a3);
    }
    for (int r = rows / 4 * 4; r < rows; r++) {
        const uint16_t *wr = w + (size_t)r * cols;
        __m512 a = _mm512_setzero_ps();
        for (int c = 0; c < full; c += 16) F16_FMA(a, _mm512_loadu_ps(x + c), _mm256_loadu_si256((const __m256i *)(wr + c)));
        if (tail) F16_FMA(a, _mm512_maskz_loadu_ps(tail, x + full), _mm256_maskz_loadu_epi16(tail, wr + full));
        out[r] = _mm512_reduce_add_ps(a);
    }
}
#undef F16_FMA

AVX512 void sm_matvec_f16_variant_avx512(int prefetch, float *out, const void *w, const void *x, int rows, int cols) {
    if (prefetch) matvec_h16_rows4(out, w, x, rows, cols, 1, ELEM_F16);
    else matvec_h16_rows4(out, w, x, rows, cols, 0, ELEM_F16);
}

AVX512 void sm_matvec_bf16_variant_avx512(int prefetch, float *out, const void *w, const void *x, int rows,
                                          int cols) {
    if (prefetch) matvec_h16_rows4(out, w, x, rows, cols, 1, ELEM_BF16);
    else matvec_h16_rows4(out, w, x, rows, cols, 0, ELEM_BF16);
}

AVX512 void sm_matvec_f32_avx512(float *out, const void *w, const void *x, int rows, int cols) {
    matvec_f32_rows4(out, w, x, rows, cols);
}

AVX512 void sm_matvec_f16_avx512(float *out, const void *w, const void *x, int rows, int cols) {
    sm_matvec_f16_variant_avx512(sm_x86_decode_prefetch(), out, w, x, rows, cols);
}

AVX512 void sm_matvec_bf16_avx512(float *out, const void *w, const void *x, int rows, int cols) {
    sm_matvec_bf16_variant_avx512(sm_x86_decode_prefetch(), out, w, x, rows, cols);
}

/* VNNI: one instruction multiplies unsigned by signed bytes and sums
 * groups of four into int32. */
AVX512 static inline __m256i dot32_i8_vnni(__m256i w, __m256i x) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}

AVX512 void sm_matvec_q8_0_avx512(float *out, const void *w, const void *xq, int rows, int cols) {
    QUANT_MATVEC(sm_block_q8_0, LOAD_Q8, dot32_i8_vnni)
}

AVX512 void sm_matvec_q4_0_avx512(float *out, const void *w, const void *xq, int rows, int cols) {
    QUANT_MATVEC(sm_block_q4_0, unpack_q4_avx2, dot32_i8_vnni)
}

/* Sixteen rows at a time on the interleaved layout (interleave.h): per
 * block, 4 (Q4_0) or 8 (Q8_0) loads each feed VNNI products for 16 rows,
 * the int32 sums start at minus the code offset times the activation
 * block's sum, and one multiply-add applies the 16 rows' scales. */
AVX512 static inline __m512 x16_block_avx512(__m512 acc, const uint8_t *gb, const sm_block_q8_0 *xb, int32_t xsum_b,
                                            int q4) {
    const int8_t *xs = xb->qs;
    __m512i s0 = _mm512_set1_epi32((q4 ? -8 : -128) * xsum_b), s1 = _mm512_setzero_si512();
    if (q4) {
        const sm_block_q4_0x16 *g = (const sm_block_q4_0x16 *)gb;
        const __m512i low = _mm512_set1_epi8(0x0F);
        for (int c = 0; c < 4; c++) {
            __m512i v = _mm512_loadu_si512(g->qs + 64 * c);
            s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(v, low), _mm512_set1_epi32(sm_load_i32(xs + 4 * c)));
            s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(_mm512_srli_epi16(v, 4), low),
                                     _mm512_set1_epi32(sm_load_i32(xs + 16 + 4 * c)));
        }
    } else {
        const sm_block_q8_0x16 *g = (const sm_block_q8_0x16 *)gb;
        for (int c = 0; c < 8; c += 2) {
            s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(g->qs + 64 * c), _mm512_set1_epi32(sm_load_i32(xs + 4 * c)));
            s1 = _mm512_dpbusd_epi32(s1, _mm512_loadu_si512(g->qs + 64 * c + 64),
                                     _mm512_set1_epi32(sm_load_i32(xs + 4 * c + 4)));
        }
    }
    /* both group layouts start with the 16 rows' fp16 scales */
    __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)gb)), _mm512_set1_ps(_cvtsh_ss(xb->d)));
    return _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), acc);
}

/* Two groups at a time, half the groups apart: two sequential streams
 * through memory, as the AVX2 kernels read them (against every group in
 * order: 1.07-1.30x on Zen 3, 1.08-1.31x decode on Intel Ice Lake); an odd
 * last group alone. */
AVX512 static inline void matvec_x16_avx512(float *out, const uint8_t *w, const void *xq, const int32_t *xsum, int rows,
                                            int cols, int q4) {
    const sm_block_q8_0 *x = xq;
    size_t gb = q4 ? sizeof(sm_block_q4_0x16) : sizeof(sm_block_q8_0x16);
    int nb = cols / SM_QK, groups = rows / SM_X16, half = groups / 2;
    size_t gbytes = (size_t)nb * gb;
    for (int i = 0; i < half; i++) {
        const uint8_t *p = w + (size_t)i * gbytes, *q = p + (size_t)half * gbytes;
        __m512 a = _mm512_setzero_ps(), c = a;
        for (int b = 0; b < nb; b++) {
            a = x16_block_avx512(a, p + (size_t)b * gb, &x[b], xsum[b], q4);
            c = x16_block_avx512(c, q + (size_t)b * gb, &x[b], xsum[b], q4);
        }
        _mm512_storeu_ps(out + (size_t)i * SM_X16, a);
        _mm512_storeu_ps(out + (size_t)(i + half) * SM_X16, c);
    }
    for (int g = 2 * half; g < groups; g++) {
        const uint8_t *p = w + (size_t)g * gbytes;
        __m512 a = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++) a = x16_block_avx512(a, p + (size_t)b * gb, &x[b], xsum[b], q4);
        _mm512_storeu_ps(out + (size_t)g * SM_X16, a);
    }
}

AVX512 void sm_matvec_q4_0_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols) {
    matvec_x16_avx512(out, w, xq, xsum, rows, cols, 1);
}

AVX512 void sm_matvec_q8_0_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols) {
    matvec_x16_avx512(out, w, xq, xsum, rows, cols, 0);
}

/* Dequantizing for the prefill products: four rows' 4-column pieces come
 * out of each 16-byte load (interleave.h), so each result vector is stored
 * as four 4-float pieces, one per row. */
#define STORE_4_ROWS(dst, v, ld)                                                \
    do {                                                                        \
        _mm_storeu_ps((dst), _mm512_castps512_ps128(v));                        \
        _mm_storeu_ps((dst) + (ld), _mm512_extractf32x4_ps((v), 1));            \
        _mm_storeu_ps((dst) + 2 * (size_t)(ld), _mm512_extractf32x4_ps((v), 2)); \
        _mm_storeu_ps((dst) + 3 * (size_t)(ld), _mm512_extractf32x4_ps((v), 3)); \
    } while (0)

/* the scales of rows 4q..4q+3, each repeated for its four columns */
AVX512 static inline __m512 quad_scales(__m512 d16, int q) {
    __m512i idx = _mm512_add_epi32(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3), _mm512_set1_epi32(4 * q));
    return _mm512_permutexvar_ps(idx, d16);
}

AVX512 void sm_dequantize_q4_0x16_avx512(float *out, const void *group, int cols) {
    const sm_block_q4_0x16 *g = group;
    const __m128i low = _mm_set1_epi8(0x0F);
    const __m512i eight = _mm512_set1_epi32(8);
    for (int b = 0; b < cols / SM_QK; b++) {
        __m512 d16 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].d));
        for (int q = 0; q < 4; q++) {
            __m512 d = quad_scales(d16, q);
            float *row = out + (size_t)4 * q * cols + b * SM_QK;
            for (int c = 0; c < 4; c++) {
                __m128i v = _mm_loadu_si128((const __m128i *)(g[b].qs + 64 * c + 16 * q));
                __m512i lo = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_and_si128(v, low)), eight);
                __m512i hi = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(v, 4), low)), eight);
                STORE_4_ROWS(row + 4 * c, _mm512_mul_ps(_mm512_cvtepi32_ps(lo), d), cols);
                STORE_4_ROWS(row + 16 + 4 * c, _mm512_mul_ps(_mm512_cvtepi32_ps(hi), d), cols);
            }
        }
    }
}

AVX512 void sm_dequantize_q8_0x16_avx512(float *out, const void *group, int cols) {
    const sm_block_q8_0x16 *g = group;
    const __m512i bias = _mm512_set1_epi32(128);
    for (int b = 0; b < cols / SM_QK; b++) {
        __m512 d16 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g[b].d));
        for (int q = 0; q < 4; q++) {
            __m512 d = quad_scales(d16, q);
            float *row = out + (size_t)4 * q * cols + b * SM_QK;
            for (int c = 0; c < 8; c++) {
                __m128i v = _mm_loadu_si128((const __m128i *)(g[b].qs + 64 * c + 16 * q));
                __m512i x = _mm512_sub_epi32(_mm512_cvtepu8_epi32(v), bias);
                STORE_4_ROWS(row + 4 * c, _mm512_mul_ps(_mm512_cvtepi32_ps(x), d), cols);
            }
        }
    }
}

AVX512 void sm_f16_to_f32_avx512(float *out, const void *inv, int n) {
    const uint16_t *in = inv;
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(in + i))));
    for (; i < n; i++) out[i] = _cvtsh_ss(in[i]);
}

AVX2 void sm_f16_to_f32_avx2(float *out, const void *inv, int n) {
    const uint16_t *in = inv;
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i))));
    for (; i < n; i++) out[i] = _cvtsh_ss(in[i]);
}

/* F32 to F16, rounded to nearest even (as sm_fp32_to_fp16): the KV cache's F16 rows. */
AVX512 void sm_f32_to_f16_avx512(void *outv, const float *in, int n) {
    uint16_t *out = outv;
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(out + i), _mm512_cvtps_ph(_mm512_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) out[i] = sm_fp32_to_fp16(in[i]);
}

AVX2 void sm_f32_to_f16_avx2(void *outv, const float *in, int n) {
    uint16_t *out = outv;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) out[i] = sm_fp32_to_fp16(in[i]);
}

/* ------------------------------------------------- elementwise and attention
 * exp(x) = 2^n * e^r with n = round(x / ln 2) and |r| <= ln2 / 2: a degree-6
 * Taylor polynomial in r is accurate to about 2 ulp there. */
#define LN2_HI 0.693145751953125f
#define LN2_LO 1.428606765330187e-06f

AVX512 static inline __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.4426950408889634f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

AVX2 static inline __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.4426950408889634f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* gelu(x) = x - x / (1 + e^(2u)), u = sqrt(2/pi) (x + 0.044715 x^3):
 * the same as 0.5 x (1 + tanh u), without cancelling when u is large. */
AVX512 void sm_gelu_avx512(float *x, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m512 u = _mm512_mul_ps(_mm512_set1_ps(2 * 0.7978845608028654f),
                                 _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), v), _mm512_mul_ps(v, v), v));
        __m512 e = exp512(u);
        _mm512_storeu_ps(x + i, _mm512_sub_ps(v, _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), e))));
    }
    if (i < n) sm_gelu(x + i, n - i);
}

AVX2 void sm_gelu_avx2(float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 u = _mm256_mul_ps(_mm256_set1_ps(2 * 0.7978845608028654f),
                                 _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), v), _mm256_mul_ps(v, v), v));
        __m256 e = exp256(u);
        _mm256_storeu_ps(x + i, _mm256_sub_ps(v, _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e))));
    }
    if (i < n) sm_gelu(x + i, n - i);
}

AVX512 void sm_swiglu_avx512(float *out, const float *g, const float *u, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(g + i);
        __m512 s = _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
        _mm512_storeu_ps(out + i, _mm512_mul_ps(s, _mm512_loadu_ps(u + i)));
    }
    if (i < n) sm_swiglu(out + i, g + i, u + i, n - i);
}

/* with s = sigmoid(g): dg = dh u s (1 + g (1 - s)), du = dh g s (set, not added) */
AVX512 void sm_swiglu_grad_avx512(float *dg, float *du, const float *g, const float *u, const float *dh, int n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(g + i), d = _mm512_loadu_ps(dh + i), uv = _mm512_loadu_ps(u + i);
        __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
        __m512 ds = _mm512_mul_ps(_mm512_mul_ps(d, uv), _mm512_mul_ps(s, _mm512_fmadd_ps(v, _mm512_sub_ps(one, s), one)));
        _mm512_storeu_ps(dg + i, ds);
        _mm512_storeu_ps(du + i, _mm512_mul_ps(d, _mm512_mul_ps(v, s)));
    }
    for (; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-g[i])), silu = g[i] * s;
        dg[i] = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        du[i] = dh[i] * silu;
    }
}

AVX2 void sm_swiglu_avx2(float *out, const float *g, const float *u, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(g + i);
        __m256 s = _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), exp256(_mm256_sub_ps(_mm256_setzero_ps(), v))));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    if (i < n) sm_swiglu(out + i, g + i, u + i, n - i);
}

AVX512 void sm_softmax_avx512(float *x, int n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
    float max = _mm512_reduce_max_ps(m);
    for (int j = i; j < n; j++) max = x[j] > max ? x[j] : max;
    __m512 vmax = _mm512_set1_ps(max), sum = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmax));
        _mm512_storeu_ps(x + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    float s = _mm512_reduce_add_ps(sum);
    for (int j = i; j < n; j++) { x[j] = expf(x[j] - max); s += x[j]; }
    __m512 inv = _mm512_set1_ps(1.0f / s);
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
    for (int j = i; j < n; j++) x[j] *= 1.0f / s;
}

AVX512 float sm_exp_sum_avx512(float *x, float shift, int n) {
    __m512 vs = _mm512_set1_ps(shift), sum = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vs));
        _mm512_storeu_ps(x + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vs));
        _mm512_mask_storeu_ps(x + i, k, e);
        sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(k, e));
    }
    return _mm512_reduce_add_ps(sum);
}

AVX512 float sm_scale_max_avx512(float *x, float scale, int n) {
    __m512 s = _mm512_set1_ps(scale), m = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), s);
        _mm512_storeu_ps(x + i, v);
        m = _mm512_max_ps(m, v);
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), s);
        _mm512_mask_storeu_ps(x + i, k, v);
        m = _mm512_mask_max_ps(m, k, m, v);
    }
    return _mm512_reduce_max_ps(m);
}

/* the dot product is the level's dot (sm_dot_f32_avx2 at both x86 levels) */
AVX512 void sm_softmax_bwd_avx512(float *ds, const float *p, float scale, int n) {
    __m512 dot = _mm512_set1_ps(sm_dot_f32_avx2(p, ds, n)), s = _mm512_set1_ps(scale);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(p + i), _mm512_sub_ps(_mm512_loadu_ps(ds + i), dot));
        _mm512_storeu_ps(ds + i, _mm512_mul_ps(v, s));
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + i), _mm512_sub_ps(_mm512_maskz_loadu_ps(k, ds + i), dot));
        _mm512_mask_storeu_ps(ds + i, k, _mm512_mul_ps(v, s));
    }
}

/* RoPE's rotation of n pairs (dispatch.h's rope_pairs): cosines and sines
 * spread to both lanes of their pair, the sine negated on the even lanes
 * (exactly: a sign flip), the pairs swapped, then x c + swapped s with the
 * products rounded apart, as the scalar level computes them; the last
 * pairs by the scalar reference. */
AVX512 void sm_rope_pairs_avx512(float *x, const float *c, const float *s, float sign, int n) {
    const __m512i spread = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const __m512 even_neg = _mm512_castsi512_ps(_mm512_set_epi32(0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN,
                                                                0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN));
    const __m256 sg = _mm256_set1_ps(sign);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m512 cc = _mm512_permutexvar_ps(spread, _mm512_castps256_ps512(_mm256_loadu_ps(c + i)));
        __m256 si = _mm256_mul_ps(sg, _mm256_loadu_ps(s + i));
        __m512 ss = _mm512_xor_ps(_mm512_permutexvar_ps(spread, _mm512_castps256_ps512(si)), even_neg);
        __m512 v = _mm512_loadu_ps(x + 2 * i);
        __m512 sw = _mm512_permute_ps(v, 0xB1);
        _mm512_storeu_ps(x + 2 * i, _mm512_add_ps(_mm512_mul_ps(v, cc), _mm512_mul_ps(sw, ss)));
    }
    if (i < n) sm_rope_pairs_scalar(x + 2 * i, c + i, s + i, sign, n - i);
}

AVX2 void sm_rope_pairs_avx2(float *x, const float *c, const float *s, float sign, int n) {
    const __m256i spread = _mm256_set_epi32(3, 3, 2, 2, 1, 1, 0, 0);
    const __m256 even_neg = _mm256_castsi256_ps(_mm256_set_epi32(0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN));
    const __m128 sg = _mm_set1_ps(sign);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256 cc = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(c + i)), spread);
        __m128 si = _mm_mul_ps(sg, _mm_loadu_ps(s + i));
        __m256 ss = _mm256_xor_ps(_mm256_permutevar8x32_ps(_mm256_castps128_ps256(si), spread), even_neg);
        __m256 v = _mm256_loadu_ps(x + 2 * i);
        __m256 sw = _mm256_permute_ps(v, 0xB1);
        _mm256_storeu_ps(x + 2 * i, _mm256_add_ps(_mm256_mul_ps(v, cc), _mm256_mul_ps(sw, ss)));
    }
    if (i < n) sm_rope_pairs_scalar(x + 2 * i, c + i, s + i, sign, n - i);
}

AVX2 float sm_scale_max_avx2(float *x, float scale, int n) {
    __m256 s = _mm256_set1_ps(scale), m = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), s);
        _mm256_storeu_ps(x + i, v);
        m = _mm256_max_ps(m, v);
    }
    float lanes[8], max = -INFINITY;
    _mm256_storeu_ps(lanes, m);
    for (int j = 0; j < 8; j++) max = lanes[j] > max ? lanes[j] : max;
    for (; i < n; i++) {
        x[i] *= scale;
        if (x[i] > max) max = x[i];
    }
    return max;
}

AVX2 void sm_softmax_bwd_avx2(float *ds, const float *p, float scale, int n) {
    float d = sm_dot_f32_avx2(p, ds, n);
    __m256 dot = _mm256_set1_ps(d), s = _mm256_set1_ps(scale);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(p + i), _mm256_sub_ps(_mm256_loadu_ps(ds + i), dot));
        _mm256_storeu_ps(ds + i, _mm256_mul_ps(v, s));
    }
    for (; i < n; i++) ds[i] = p[i] * (ds[i] - d) * scale;
}

AVX2 float sm_exp_sum_avx2(float *x, float shift, int n) {
    __m256 vs = _mm256_set1_ps(shift), sum = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float s = hsum256(sum);
    for (; i < n; i++) { x[i] = expf(x[i] - shift); s += x[i]; }
    return s;
}

AVX2 void sm_softmax_avx2(float *x, int n) {
    float max = x[0];
    for (int j = 1; j < n; j++) max = x[j] > max ? x[j] : max;
    __m256 vmax = _mm256_set1_ps(max), sum = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float s = hsum256(sum);
    for (int j = i; j < n; j++) { x[j] = expf(x[j] - max); s += x[j]; }
    float inv = 1.0f / s;
    for (int j = 0; j < n; j++) x[j] *= inv;
}

AVX2 float sm_dot_f32_avx2(const float *a, const float *b, int n) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    float s = hsum256(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

AVX2 void sm_axpy_f32_avx2(float *y, float a, const float *x, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

/* The same two on an F16 row (an F16 KV cache's), widened by F16C as read:
 * the sums of sm_dot_f32_avx2 / sm_axpy_f32_avx2 on the widened row. */
AVX2 float sm_dot_f16_avx2(const float *a, const void *bv, int n) {
    const uint16_t *b = bv;
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i))), acc);
    float s = hsum256(acc);
    for (; i < n; i++) s += a[i] * _cvtsh_ss(b[i]);
    return s;
}

AVX2 void sm_axpy_f16_avx2(float *y, float a, const void *xv, int n) {
    const uint16_t *x = xv;
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * _cvtsh_ss(x[i]);
}

/* ... and on a BF16 row: each half widened exactly by a 16-bit shift. */
AVX2 static inline __m256 widen_bf16x8(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

AVX2 float sm_dot_bf16_avx2(const float *a, const void *bv, int n) {
    const uint16_t *b = bv;
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), widen_bf16x8(b + i), acc);
    float s = hsum256(acc);
    for (; i < n; i++) s += a[i] * sm_bf16_to_fp32(b[i]);
    return s;
}

AVX2 void sm_axpy_bf16_avx2(float *y, float a, const void *xv, int n) {
    const uint16_t *x = xv;
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, widen_bf16x8(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * sm_bf16_to_fp32(x[i]);
}

/* ... and on a Q8_0 row (n a multiple of 32): eight values at a time
 * widened to floats and multiplied by their block's scale (exact). */
AVX2 static inline __m256 widen_q8x8(const int8_t *q, __m256 d) {
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)q))), d);
}

AVX2 float sm_dot_q8_0_avx2(const float *a, const void *bv, int n) {
    const sm_block_q8_0 *b = bv;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n; i += SM_QK, b++) {
        __m256 d = _mm256_set1_ps(_cvtsh_ss(b->d));   /* F16C: the same value as sm_fp16_to_fp32, no call */
        for (int j = 0; j < SM_QK; j += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + j), widen_q8x8(b->qs + j, d), acc);
    }
    return hsum256(acc);
}

AVX2 void sm_axpy_q8_0_avx2(float *y, float a, const void *xv, int n) {
    const sm_block_q8_0 *x = xv;
    __m256 va = _mm256_set1_ps(a);
    for (int i = 0; i < n; i += SM_QK, x++) {
        __m256 d = _mm256_set1_ps(_cvtsh_ss(x->d));
        for (int j = 0; j < SM_QK; j += 8)
            _mm256_storeu_ps(y + i + j, _mm256_fmadd_ps(va, widen_q8x8(x->qs + j, d), _mm256_loadu_ps(y + i + j)));
    }
}
#endif

/* ------------------------------------------------------------ matmul
 * c[t * ldc + r] = dot(a[t * k ...], w[r * k ...]) for t < m tokens and
 * r < n weight rows: 4 rows x 4 tokens per register tile, so each load of
 * a weight vector serves four tokens and each token vector four rows. */
#if defined(__x86_64__)
AVX512 void sm_matmul_f32_avx512(float *c, const float *a, const float *w, int m, int n, int k, int ldc) {
    int full = k & ~15;
    __mmask16 tail = (__mmask16)((1u << (k - full)) - 1);
    for (int r = 0; r < n; r += 4) {
        int nr = n - r < 4 ? n - r : 4;
        const float *wr[4];
        for (int i = 0; i < 4; i++) wr[i] = w + (size_t)(r + (i < nr ? i : 0)) * k;
        for (int t = 0; t < m; t += 4) {
            int nt = m - t < 4 ? m - t : 4;
            const float *at[4];
            for (int j = 0; j < 4; j++) at[j] = a + (size_t)(t + (j < nt ? j : 0)) * k;
            __m512 acc[4][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) acc[i][j] = _mm512_setzero_ps();
            for (int x = 0; x < full; x += 16) {
                __m512 w0 = _mm512_loadu_ps(wr[0] + x), w1 = _mm512_loadu_ps(wr[1] + x);
                __m512 w2 = _mm512_loadu_ps(wr[2] + x), w3 = _mm512_loadu_ps(wr[3] + x);
                for (int j = 0; j < 4; j++) {
                    __m512 av = _mm512_loadu_ps(at[j] + x);
                    acc[0][j] = _mm512_fmadd_ps(w0, av, acc[0][j]);
                    acc[1][j] = _mm512_fmadd_ps(w1, av, acc[1][j]);
                    acc[2][j] = _mm512_fmadd_ps(w2, av, acc[2][j]);
                    acc[3][j] = _mm512_fmadd_ps(w3, av, acc[3][j]);
                }
            }
            if (tail) {
                __m512 wv[4];
                for (int i = 0; i < 4; i++) wv[i] = _mm512_maskz_loadu_ps(tail, wr[i] + full);
                for (int j = 0; j < 4; j++) {
                    __m512 av = _mm512_maskz_loadu_ps(tail, at[j] + full);
                    for (int i = 0; i < 4; i++) acc[i][j] = _mm512_fmadd_ps(wv[i], av, acc[i][j]);
                }
            }
            for (int j = 0; j < nt; j++)
                for (int i = 0; i < nr; i++) c[(size_t)(t + j) * ldc + r + i] = _mm512_reduce_add_ps(acc[i][j]);
        }
    }
}

AVX2 void sm_matmul_f32_avx2(float *c, const float *a, const float *w, int m, int n, int k, int ldc) {
    int full = k & ~7;
    for (int r = 0; r < n; r += 4) {
        int nr = n - r < 4 ? n - r : 4;
        const float *wr[4];
        for (int i = 0; i < 4; i++) wr[i] = w + (size_t)(r + (i < nr ? i : 0)) * k;
        for (int t = 0; t < m; t += 2) {
            int nt = m - t < 2 ? m - t : 2;
            const float *a0 = a + (size_t)t * k, *a1 = a + (size_t)(t + (nt > 1)) * k;
            __m256 acc[4][2];
            for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
            for (int x = 0; x < full; x += 8) {
                __m256 v0 = _mm256_loadu_ps(a0 + x), v1 = _mm256_loadu_ps(a1 + x);
                for (int i = 0; i < 4; i++) {
                    __m256 wv = _mm256_loadu_ps(wr[i] + x);
                    acc[i][0] = _mm256_fmadd_ps(wv, v0, acc[i][0]);
                    acc[i][1] = _mm256_fmadd_ps(wv, v1, acc[i][1]);
                }
            }
            for (int j = 0; j < nt; j++)
                for (int i = 0; i < nr; i++) {
                    float s = hsum256(acc[i][j]);
                    const float *aj = j ? a1 : a0;
                    for (int x = full; x < k; x++) s += wr[i][x] * aj[x];
                    c[(size_t)(t + j) * ldc + r + i] = s;
                }
        }
    }
}
#endif

/* ------------------------------------------------------- packed matmul
 * The batch's activations are packed once per product, transposed in
 * panels of 16 tokens: panel[p][x][j] = a[16 p + j][x]. A tile of 8 weight
 * rows (9 KB at k = 288: it stays in L1) then meets every panel: each step
 * is one panel load and 8 FMAs with the weights broadcast, and the 16
 * token results of a row leave through one masked scatter. */
#if defined(__x86_64__)
AVX512 void sm_pack_a_avx512(float *packed, const float *a, int m, int k) {
    for (int p = 0; p < (m + 15) / 16; p++) {
        float *dst = packed + (size_t)p * k * 16;
        for (int x = 0; x < k; x++)
            for (int j = 0; j < 16; j++) {
                int t = 16 * p + j;
                dst[(size_t)x * 16 + j] = t < m ? a[(size_t)t * k + x] : 0.0f;
            }
    }
}

/* Register tile: 8 weight rows by 32 tokens (two packed panels), 16
 * accumulators; per column of k that is 2 panel loads and 8 broadcasts for
 * 16 FMAs, so the two FMA ports, not the load ports, set the pace. A last
 * odd panel takes an 8 x 16 tile. */
AVX512 void sm_matmul_packed_avx512(float *c, const float *packed, const float *w, int m, int n, int k, int ldc) {
    __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                     _mm512_set1_epi32(ldc));
    int panels = (m + 15) / 16;
    for (int r = 0; r < n; r += 8) {
        int nr = n - r < 8 ? n - r : 8;
        const float *wr[8];
        for (int i = 0; i < 8; i++) wr[i] = w + (size_t)(r + (i < nr ? i : 0)) * k;
        for (int p = 0; p < panels; p += 2) {
            int two = p + 1 < panels;
            const float *pa = packed + (size_t)p * k * 16, *pb = two ? pa + (size_t)k * 16 : pa;
            __m512 a[8], b[8];
            for (int i = 0; i < 8; i++) a[i] = b[i] = _mm512_setzero_ps();
            for (int x = 0; x < k; x++) {
                __m512 va = _mm512_loadu_ps(pa + (size_t)x * 16), vb = _mm512_loadu_ps(pb + (size_t)x * 16);
#define ROW_FMA(i)                                     \
    do {                                               \
        __m512 wv = _mm512_set1_ps(wr[i][x]);          \
        a[i] = _mm512_fmadd_ps(wv, va, a[i]);          \
        b[i] = _mm512_fmadd_ps(wv, vb, b[i]);          \
    } while (0)
                /* spelled out: at -O2 a loop here keeps a[] and b[] in memory */
                ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3); ROW_FMA(4); ROW_FMA(5); ROW_FMA(6); ROW_FMA(7);
#undef ROW_FMA
            }
            for (int h = 0; h < 1 + two; h++) {
                int t0 = 16 * (p + h), nt = m - t0 < 16 ? m - t0 : 16;
                __mmask16 mask = (__mmask16)((1u << nt) - 1);
                float *base = c + (size_t)t0 * ldc + r;
                for (int i = 0; i < nr; i++) _mm512_mask_i32scatter_ps(base + i, mask, idx, h ? b[i] : a[i], 4);
            }
        }
    }
}
#endif

/* ------------------------------------------------------- strided gemm
 * c[t][r] (+)= sum over x of a(t, x) w(r, x) with either operand in either
 * orientation (a(t, x) = a[t rs + x cs]), so training's products need no
 * transposed copies and accumulate into their gradients in place. The
 * batch is packed once into panels of SM_GEMM_MR tokens (panel[x][j] =
 * a(MR p + j, x)); each thread packs blocks of SM_GEMM_NR weight rows by
 * up to SM_GEMM_KC columns (block[x][i] = w(r + i, x0 + x), at most 128
 * KiB, on the caller's stack: the pool's workers get at least 2 MiB; from
 * L2 it easily feeds the 128 bytes per 24 FMAs the tile reads)
 * and runs a run of panels against it. The register tile is 12 tokens by
 * 32 rows: 24 accumulators, and per column of k 2 loads and 12 broadcasts
 * for 24 FMAs; the 12 x 32 results leave as contiguous rows of c. Every
 * element is the same sum in the same order (columns in order, KC at a
 * time) whatever rows a thread takes, so results do not depend on the
 * thread count. */
#if defined(__x86_64__)
/* r[i] = lane i of each of v[0..15] (a 16 x 16 transpose in registers: the
 * loops unrolled, or -O2 keeps v and t in memory and the pack runs 3x slower) */
AVX512 static inline __attribute__((always_inline)) void transpose16(__m512 v[16]) {
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 16; i += 4) {
        v[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        v[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        v[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        v[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    /* v[4 g + c] now holds, per 128-bit lane L, column 4 L + c' of rows 4 g .. 4 g + 3 */
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(v[i], v[4 + i], 0x88);
        t[4 + i] = _mm512_shuffle_f32x4(v[i], v[4 + i], 0xdd);
        t[8 + i] = _mm512_shuffle_f32x4(v[8 + i], v[12 + i], 0x88);
        t[12 + i] = _mm512_shuffle_f32x4(v[8 + i], v[12 + i], 0xdd);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        v[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        v[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
        v[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
        v[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xdd);
    }
}

AVX512 void sm_gemm_pack_avx512(float *packed, const float *a, size_t rs, size_t cs, int m, int k, int p0, int p1) {
    if (rs == 1) {   /* a panel's tokens are contiguous: 12 floats per column, and the next panel's follow them */
        int full = m / SM_GEMM_MR < p1 ? m / SM_GEMM_MR : p1;   /* the panels of 12 tokens */
        /* eight panels at a time, so each column is read as one stretch of 96 floats (whole cache
         * lines, in order) and not as 12 floats of a line the next panel reads again */
        for (int g0 = p0; g0 < full; g0 += 8) {
            int g1 = g0 + 8 < full ? g0 + 8 : full;
            for (int x = 0; x < k; x++) {
                const float *src = a + (size_t)x * cs + (size_t)g0 * SM_GEMM_MR;
                for (int p = g0; p < g1; p++, src += SM_GEMM_MR)
                    _mm512_mask_storeu_ps(packed + ((size_t)p * k + x) * SM_GEMM_MR, 0x0fff,
                                          _mm512_maskz_loadu_ps(0x0fff, src));
            }
        }
        if (full > p0) p0 = full;
    }
    for (int p = p0; p < p1; p++) {
        float *dst = packed + (size_t)p * k * SM_GEMM_MR;
        int rows = m - SM_GEMM_MR * p < SM_GEMM_MR ? m - SM_GEMM_MR * p : SM_GEMM_MR;
        const float *src = a + (size_t)p * SM_GEMM_MR * rs;
        int x = 0;
        if (cs == 1)   /* a's rows are contiguous: 16 columns at a time through a transpose */
            for (; x + 16 <= k; x += 16) {
                __m512 v[16];
#pragma GCC unroll 16
                for (int j = 0; j < 16; j++) v[j] = _mm512_setzero_ps();
                if (rows == SM_GEMM_MR) {
#pragma GCC unroll 16
                    for (int j = 0; j < SM_GEMM_MR; j++) v[j] = _mm512_loadu_ps(src + (size_t)j * rs + x);
                } else
                    for (int j = 0; j < rows; j++) v[j] = _mm512_loadu_ps(src + (size_t)j * rs + x);
                transpose16(v);
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++) _mm512_mask_storeu_ps(dst + (size_t)(x + i) * SM_GEMM_MR, 0x0fff, v[i]);
            }
        for (int j = 0; j < SM_GEMM_MR; j++) {
            const float *sj = src + (size_t)j * rs;
            for (int xx = x; xx < k; xx++) dst[(size_t)xx * SM_GEMM_MR + j] = j < rows ? sj[(size_t)xx * cs] : 0.0f;
        }
    }
}

/* A tile's sums leave: rows j < mr of c, columns < nr, added to what c
 * holds (load) or not; streamed, a whole 12 x 32 tile to aligned rows of c,
 * past the caches (SM_GEMM_STREAM). */
AVX512 static inline __attribute__((always_inline)) void gemm_tile_store(float *c, int ldc, __m512 *lo, __m512 *hi,
                                                                        int mr, int nr, int load, int wide,
                                                                        int stream) {
    if (stream) {
        for (int j = 0; j < SM_GEMM_MR; j++) {
            _mm512_stream_ps(c + (size_t)j * ldc, lo[j]);
            _mm512_stream_ps(c + (size_t)j * ldc + 16, hi[j]);
        }
        return;
    }
    __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
    for (int j = 0; j < mr; j++) {
        float *cj = c + (size_t)j * ldc;
        if (load) lo[j] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cj), lo[j]);
        _mm512_mask_storeu_ps(cj, m0, lo[j]);
        if (wide) {
            if (load) hi[j] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cj + 16), hi[j]);
            _mm512_mask_storeu_ps(cj + 16, m1, hi[j]);
        }
    }
}

/* One 12 x 32 tile over kc columns: c rows j < mr, columns < nr; with
 * wide 0, for a block's last 16 rows or fewer (nr <= 16), only the first of
 * the block's two vectors per column: half the FMAs, each sum the same.
 * Token j's column x is ap[x sx + j st]: a packed panel (sx 12, st 1) or
 * 12 rows of the batch read in place (sx 1, st the row stride). With rows
 * 8 or 4 (mr <= rows: a batch's last panel), only that many tokens' FMAs:
 * the sums of those tokens the same. */
AVX512 static inline __attribute__((always_inline)) void gemm_tile(float *c, int ldc, const float *ap, size_t sx,
                                                                  size_t st, const float *wp, int kc, int rows, int mr,
                                                                  int nr, int load, int wide, int stream) {
    __m512 lo[SM_GEMM_MR], hi[SM_GEMM_MR];
    for (int j = 0; j < SM_GEMM_MR; j++) lo[j] = hi[j] = _mm512_setzero_ps();
    /* four columns per trip: the same sums, fewer loop instructions between
     * the FMAs (3-10 % faster on Ice Lake, docs/BENCHMARKS.md) */
#pragma GCC unroll 4
    for (int x = 0; x < kc; x++) {
        __m512 w0 = _mm512_load_ps(wp + (size_t)x * SM_GEMM_NR);
        __m512 w1 = wide ? _mm512_load_ps(wp + (size_t)x * SM_GEMM_NR + 16) : w0;
        const float *av = ap + (size_t)x * sx;
#define TOKEN_FMA(j)                                           \
    do {                                                       \
        if ((j) < rows) {                                      \
            __m512 b = _mm512_set1_ps(av[(size_t)(j) * st]);   \
            lo[j] = _mm512_fmadd_ps(b, w0, lo[j]);             \
            if (wide) hi[j] = _mm512_fmadd_ps(b, w1, hi[j]);   \
        }                                                      \
    } while (0)
        /* spelled out, as in the packed kernel above, to keep lo[] and hi[] in registers */
        TOKEN_FMA(0); TOKEN_FMA(1); TOKEN_FMA(2); TOKEN_FMA(3); TOKEN_FMA(4); TOKEN_FMA(5);
        TOKEN_FMA(6); TOKEN_FMA(7); TOKEN_FMA(8); TOKEN_FMA(9); TOKEN_FMA(10); TOKEN_FMA(11);
#undef TOKEN_FMA
    }
    gemm_tile_store(c, ldc, lo, hi, mr, nr, load, wide, stream);
}

/* the tile's variants, by tile width (32 or 16 rows), where the tokens
 * come from (a packed panel, or rows read in place with stride st) and how
 * the results leave (stored, or streamed: a whole tile, aligned); a packed
 * panel of 8 or 4 tokens or fewer (a batch's last) takes a tile of that many */
#define GEMM_TILE_ARGS float *c, int ldc, const float *ap, size_t st, const float *wp, int kc, int mr, int nr, int load
#define GEMM_TILE_PACKED(rows, cols)                                                       \
    AVX512 __attribute__((noinline)) static void gemm_tile_##rows##x##cols(GEMM_TILE_ARGS) { \
        (void)st;                                                                          \
        gemm_tile(c, ldc, ap, SM_GEMM_MR, 1, wp, kc, rows, mr, nr, load, cols == 32, 0);   \
    }
GEMM_TILE_PACKED(12, 32)
GEMM_TILE_PACKED(12, 16)
GEMM_TILE_PACKED(8, 32)
GEMM_TILE_PACKED(8, 16)
GEMM_TILE_PACKED(4, 32)
GEMM_TILE_PACKED(4, 16)
#undef GEMM_TILE_PACKED
AVX512 __attribute__((noinline)) static void gemm_tile_12x32_stream(GEMM_TILE_ARGS) {
    gemm_tile(c, ldc, ap, SM_GEMM_MR, 1, wp, kc, SM_GEMM_MR, SM_GEMM_MR, SM_GEMM_NR, 0, 1, 1);
}
AVX512 __attribute__((noinline)) static void gemm_tile_rows_12x32(GEMM_TILE_ARGS) {
    gemm_tile(c, ldc, ap, 1, st, wp, kc, SM_GEMM_MR, SM_GEMM_MR, nr, load, 1, 0);
}
AVX512 __attribute__((noinline)) static void gemm_tile_rows_12x16(GEMM_TILE_ARGS) {
    gemm_tile(c, ldc, ap, 1, st, wp, kc, SM_GEMM_MR, SM_GEMM_MR, nr, load, 0, 0);
}
AVX512 __attribute__((noinline)) static void gemm_tile_rows_12x32_stream(GEMM_TILE_ARGS) {
    gemm_tile(c, ldc, ap, 1, st, wp, kc, SM_GEMM_MR, SM_GEMM_MR, SM_GEMM_NR, 0, 1, 1);
}
typedef void gemm_tile_fn(GEMM_TILE_ARGS);
/* [tokens: up to 4, 8, 12][block rows: up to 16, 32] */
static gemm_tile_fn *const gemm_tiles_packed[3][2] = {
    {gemm_tile_4x16, gemm_tile_4x32}, {gemm_tile_8x16, gemm_tile_8x32}, {gemm_tile_12x16, gemm_tile_12x32}};
#undef GEMM_TILE_ARGS

/* The tile with BF16 weights against the batch rounded to BF16 (gemm_bf16's
 * dot variant): per pair of columns xp, token j's pair ap[12 xp + j] (two
 * BF16 in 32 bits, the lower column in the low half) meets the pairs of the
 * block's 32 rows, wp[32 xp + i], in one vdpbf16ps: 32 multiply-adds per
 * instruction where the FMA above does 16. */
AVX512BF16 static inline __attribute__((always_inline)) void gemm_tile_pairs(float *c, int ldc, const float *ap,
                                                                            const float *wp, int kp, int rows, int mr,
                                                                            int nr, int load, int wide) {
    __m512 lo[SM_GEMM_MR], hi[SM_GEMM_MR];
    for (int j = 0; j < SM_GEMM_MR; j++) lo[j] = hi[j] = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int x = 0; x < kp; x++) {
        __m512bh w0 = (__m512bh)_mm512_load_si512(wp + (size_t)x * SM_GEMM_NR);
        __m512bh w1 = wide ? (__m512bh)_mm512_load_si512(wp + (size_t)x * SM_GEMM_NR + 16) : w0;
        const float *av = ap + (size_t)x * SM_GEMM_MR;
#define TOKEN_DOT(j)                                           \
    do {                                                       \
        if ((j) < rows) {                                      \
            __m512bh b = (__m512bh)_mm512_set1_ps(av[j]);      \
            lo[j] = _mm512_dpbf16_ps(lo[j], b, w0);            \
            if (wide) hi[j] = _mm512_dpbf16_ps(hi[j], b, w1);  \
        }                                                      \
    } while (0)
        TOKEN_DOT(0); TOKEN_DOT(1); TOKEN_DOT(2); TOKEN_DOT(3); TOKEN_DOT(4); TOKEN_DOT(5);
        TOKEN_DOT(6); TOKEN_DOT(7); TOKEN_DOT(8); TOKEN_DOT(9); TOKEN_DOT(10); TOKEN_DOT(11);
#undef TOKEN_DOT
    }
    gemm_tile_store(c, ldc, lo, hi, mr, nr, load, wide, 0);
}
#define GEMM_TILE_PAIRS(rows, cols)                                                                    \
    AVX512BF16 __attribute__((noinline)) static void gemm_tile_pairs_##rows##x##cols(                   \
        float *c, int ldc, const float *ap, const float *wp, int kp, int mr, int nr, int load) {        \
        gemm_tile_pairs(c, ldc, ap, wp, kp, rows, mr, nr, load, cols == 32);                             \
    }
GEMM_TILE_PAIRS(12, 32)
GEMM_TILE_PAIRS(12, 16)
GEMM_TILE_PAIRS(8, 32)
GEMM_TILE_PAIRS(8, 16)
GEMM_TILE_PAIRS(4, 32)
GEMM_TILE_PAIRS(4, 16)
#undef GEMM_TILE_PAIRS
typedef void gemm_tile_pairs_fn(float *c, int ldc, const float *ap, const float *wp, int kp, int mr, int nr, int load);
/* [tokens: up to 4, 8, 12][block rows: up to 16, 32], as gemm_tiles_packed */
static gemm_tile_pairs_fn *const gemm_tiles_pairs[3][2] = {{gemm_tile_pairs_4x16, gemm_tile_pairs_4x32},
                                                           {gemm_tile_pairs_8x16, gemm_tile_pairs_8x32},
                                                           {gemm_tile_pairs_12x16, gemm_tile_pairs_12x32}};

/* 16 pairs of floats as BF16 pairs, rounded to nearest even (vcvtne2ps2bf16):
 * lane i holds BF16(lo[i]) in its low half and BF16(hi[i]) in its high one */
AVX512BF16 static inline __m512 bf16_pairs(__m512 lo, __m512 hi) {
    __m512i h = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);   /* lo's 16 BF16, then hi's */
    __m512i l0 = _mm512_cvtepu16_epi32(_mm512_castsi512_si256(h));
    __m512i l1 = _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(h, 1));
    return _mm512_castsi512_ps(_mm512_or_si512(l0, _mm512_slli_epi32(l1, 16)));
}

/* The batch's packed panels (panel[x][j], 12 floats per column), kc columns
 * of n panels pstride floats apart, as pairs for that tile: pairs[p][xp][j]
 * = BF16(panel[2 xp][j]) | BF16(panel[2 xp + 1][j]) << 16, rounded to
 * nearest even (vcvtne2ps2bf16), a missing last column zero. */
AVX512BF16 __attribute__((noinline)) static void gemm_panels_to_pairs(float *pairs, const float *slice,
                                                                     size_t pstride, int n, int kc) {
    int kp = (kc + 1) / 2;
    for (int p = 0; p < n; p++) {
        const float *src = slice + (size_t)p * pstride;
        float *dst = pairs + (size_t)p * kp * SM_GEMM_MR;
        for (int x = 0; x < kp; x++) {
            __m512 a0 = _mm512_maskz_loadu_ps(0x0fff, src + (size_t)2 * x * SM_GEMM_MR);
            __m512 a1 = 2 * x + 1 < kc ? _mm512_maskz_loadu_ps(0x0fff, src + (size_t)(2 * x + 1) * SM_GEMM_MR)
                                       : _mm512_setzero_ps();
            _mm512_mask_storeu_ps(dst + (size_t)x * SM_GEMM_MR, 0x0fff, bf16_pairs(a0, a1));
        }
    }
}

/* block[x][i] = w(r + i, x0 + x) for i < nr (zero beyond), x < kc */
AVX512 static void gemm_pack_block(float *block, const float *wb, size_t rs, size_t cs, int nr, int kc) {
    if (rs == 1) {   /* the block's rows are contiguous in each column */
        __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
        __mmask16 m1 = nr >= 32 ? 0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
        for (int x = 0; x < kc; x++) {
            const float *src = wb + (size_t)x * cs;
            _mm512_store_ps(block + (size_t)x * SM_GEMM_NR, _mm512_maskz_loadu_ps(m0, src));
            _mm512_store_ps(block + (size_t)x * SM_GEMM_NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
        }
        return;
    }
    int x = 0;
    if (cs == 1)   /* rows contiguous: 16 rows by 16 columns at a time through a transpose */
        for (; x + 16 <= kc; x += 16)
            for (int h = 0; h < SM_GEMM_NR; h += 16) {
                __m512 v[16];
                for (int i = 0; i < 16; i++) {
                    /* a weight matrix read once per batch comes from memory: 32 rows, 32 streams */
                    _mm_prefetch((const char *)(wb + (size_t)(h + i) * rs + x + 64), _MM_HINT_T0);
                    v[i] = h + i < nr ? _mm512_loadu_ps(wb + (size_t)(h + i) * rs + x) : _mm512_setzero_ps();
                }
                transpose16(v);
                for (int j = 0; j < 16; j++) _mm512_store_ps(block + (size_t)(x + j) * SM_GEMM_NR + h, v[j]);
            }
    for (int i = 0; i < SM_GEMM_NR; i++) {
        const float *src = wb + (size_t)i * rs;
        for (int xx = x; xx < kc; xx++) block[xx * SM_GEMM_NR + i] = i < nr ? src[(size_t)xx * cs] : 0.0f;
    }
}

/* The same for 16-bit weights stored by rows (w(r, x) = wb[r rs + x]),
 * F16 or BF16, converted as they are packed (both conversions are exact,
 * so the block holds what gemm_pack_block gives on the weights widened to
 * F32): a prompt needs no F32 copy of them. */
AVX512 static void gemm_pack_block_h16(float *block, const uint16_t *wb, size_t rs, int nr, int kc, int elem) {
    int x = 0;
    for (; x + 16 <= kc; x += 16)
        for (int h = 0; h < SM_GEMM_NR; h += 16) {
            __m512 v[16];
            for (int i = 0; i < 16; i++)
                v[i] = h + i < nr
                           ? widen_h16(_mm256_loadu_si256((const __m256i *)(wb + (size_t)(h + i) * rs + x)), elem)
                           : _mm512_setzero_ps();
            transpose16(v);
            for (int j = 0; j < 16; j++) _mm512_store_ps(block + (size_t)(x + j) * SM_GEMM_NR + h, v[j]);
        }
    for (int i = 0; i < SM_GEMM_NR; i++) {
        const uint16_t *src = wb + (size_t)i * rs;
        for (int xx = x; xx < kc; xx++)
            block[xx * SM_GEMM_NR + i] = i >= nr                ? 0.0f
                                         : elem == ELEM_BF16 ? sm_bf16_to_fp32(src[xx])
                                                             : sm_fp16_to_fp32(src[xx]);
    }
}

/* The same for the dot tile: block[xp][i] = the BF16 pair (w(r + i, x0 + 2 xp),
 * w(r + i, x0 + 2 xp + 1)) in 32 bits, lower column low, as stored (BF16
 * rows are pairs already: the transpose of the F32 block, on pairs). */
AVX512 static void gemm_pack_block_pairs(float *block, const uint16_t *wb, size_t rs, int nr, int kc) {
    int x = 0;
    for (; x + 32 <= kc; x += 32)
        for (int h = 0; h < SM_GEMM_NR; h += 16) {
            __m512 v[16];
            for (int i = 0; i < 16; i++)
                v[i] = h + i < nr ? _mm512_castsi512_ps(_mm512_loadu_si512(wb + (size_t)(h + i) * rs + x))
                                  : _mm512_setzero_ps();
            transpose16(v);
            for (int j = 0; j < 16; j++) _mm512_store_ps(block + (size_t)(x / 2 + j) * SM_GEMM_NR + h, v[j]);
        }
    for (int i = 0; i < SM_GEMM_NR; i++) {
        const uint16_t *src = wb + (size_t)i * rs;
        for (int xx = x; xx < kc; xx += 2) {
            uint32_t pair = i >= nr ? 0 : src[xx] | (xx + 1 < kc ? (uint32_t)src[xx + 1] << 16 : 0);
            memcpy(block + (size_t)(xx / 2) * SM_GEMM_NR + i, &pair, sizeof pair);
        }
    }
}

/* Rows i < nr (at most 16) of src, rs floats apart, 32 columns each: each
 * row's columns rounded to BF16 (nearest even) as one vector of 16 pairs, in
 * memory order (as BF16 rows are stored), then transposed: v[j] holds the
 * rows' pair j (columns 2 j and 2 j + 1), rows past nr zero. */
AVX512BF16 static inline __attribute__((always_inline)) void rows_to_pairs16(__m512 v[16], const float *src, size_t rs,
                                                                            int nr) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        v[i] = i < nr ? (__m512)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + (size_t)i * rs + 16),
                                                    _mm512_loadu_ps(src + (size_t)i * rs))
                      : _mm512_setzero_ps();
    transpose16(v);
}

/* The same pairs from a batch read in place (a(t, x) = a[t a_rs + x a_cs],
 * m tokens from a's first, rows past m zero), n panels of kc columns: the
 * batch rounded once, with no F32 panels packed first. Rows (a_cs = 1): 32
 * columns of a token rounded into one vector of 16 pairs (in memory order),
 * then 16 tokens' pairs transposed (the last columns one pair at a time).
 * Columns (a_rs = 1): each pair of columns' 12 tokens of a panel rounded
 * together, every panel of the run before the next pair of columns (each
 * column read in order). */
AVX512BF16 __attribute__((noinline)) static void gemm_batch_to_pairs(float *pairs, const float *a, size_t a_rs,
                                                                    size_t a_cs, int m, int kc, int n) {
    int kp = (kc + 1) / 2;
    if (a_cs != 1) {   /* the caller's a_rs = 1 */
        for (int xp = 0; xp < kp; xp++) {
            const float *c0 = a + (size_t)2 * xp * a_cs, *c1 = c0 + a_cs;
            for (int p = 0; p < n; p++) {
                int mr = m - SM_GEMM_MR * p < SM_GEMM_MR ? m - SM_GEMM_MR * p : SM_GEMM_MR;
                __mmask16 mk = (__mmask16)((1u << mr) - 1);
                /* the next pair of columns' same tokens, a pair of columns ahead (short runs of lines) */
                _mm_prefetch((const char *)(c0 + 2 * a_cs + (size_t)p * SM_GEMM_MR), _MM_HINT_T0);
                _mm_prefetch((const char *)(c1 + 2 * a_cs + (size_t)p * SM_GEMM_MR), _MM_HINT_T0);
                __m512 lo = _mm512_maskz_loadu_ps(mk, c0 + (size_t)p * SM_GEMM_MR);
                __m512 hi = 2 * xp + 1 < kc ? _mm512_maskz_loadu_ps(mk, c1 + (size_t)p * SM_GEMM_MR)
                                            : _mm512_setzero_ps();
                _mm512_mask_storeu_ps(pairs + ((size_t)p * kp + xp) * SM_GEMM_MR, 0x0fff, bf16_pairs(lo, hi));
            }
        }
        return;
    }
    for (int p = 0; p < n; p++) {
        int mr = m - SM_GEMM_MR * p < SM_GEMM_MR ? m - SM_GEMM_MR * p : SM_GEMM_MR;
        const float *src = a + (size_t)p * SM_GEMM_MR * a_rs;
        float *dst = pairs + (size_t)p * kp * SM_GEMM_MR;
        int x = 0;
        for (; x + 32 <= kc; x += 32) {
            __m512 v[16];
            rows_to_pairs16(v, src + x, a_rs, mr);
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++) _mm512_mask_storeu_ps(dst + (size_t)(x / 2 + j) * SM_GEMM_MR, 0x0fff, v[j]);
        }
        for (int xp = x / 2; xp < kp; xp++) {
            float lo[16] = {0}, hi[16] = {0};
            for (int i = 0; i < mr; i++) {
                lo[i] = src[(size_t)i * a_rs + 2 * xp];
                hi[i] = 2 * xp + 1 < kc ? src[(size_t)i * a_rs + 2 * xp + 1] : 0.0f;
            }
            _mm512_mask_storeu_ps(dst + (size_t)xp * SM_GEMM_MR, 0x0fff,
                                  bf16_pairs(_mm512_loadu_ps(lo), _mm512_loadu_ps(hi)));
        }
    }
}

/* The same for F32 weights with any strides, rounded to BF16 (nearest even)
 * as they are packed (the strided product with both operands rounded) into
 * dst (block is the caller's room for an F32 block, apart from dst). Columns stored
 * contiguously (rs = 1): each pair of them rounded into one row of pairs.
 * Rows stored contiguously (cs = 1): 32 columns of a row rounded into one
 * vector of 16 pairs (in memory order, as BF16 rows are stored), then 16
 * rows of pairs transposed, as gemm_pack_block_pairs does. Otherwise, and
 * the last columns of rows: the F32 block, then each pair of its columns
 * into one row of pairs. */
AVX512BF16 __attribute__((noinline)) static void gemm_pack_block_f32_pairs(float *dst, float *block, const float *wb,
                                                                          size_t rs, size_t cs, int nr, int kc) {
    int x = 0;
    if (rs == 1) {
        __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
        __mmask16 m1 = nr >= 32 ? 0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
        for (int xp = 0; xp < (kc + 1) / 2; xp++) {
            const float *c0 = wb + (size_t)2 * xp * cs, *c1 = c0 + cs;
            int odd = 2 * xp + 1 < kc;
            __m512 lo0 = _mm512_maskz_loadu_ps(m0, c0), lo1 = _mm512_maskz_loadu_ps(m1, c0 + 16);
            __m512 hi0 = odd ? _mm512_maskz_loadu_ps(m0, c1) : _mm512_setzero_ps();
            __m512 hi1 = odd ? _mm512_maskz_loadu_ps(m1, c1 + 16) : _mm512_setzero_ps();
            _mm512_storeu_ps(dst + (size_t)xp * SM_GEMM_NR, bf16_pairs(lo0, hi0));
            _mm512_storeu_ps(dst + (size_t)xp * SM_GEMM_NR + 16, bf16_pairs(lo1, hi1));
        }
        return;
    }
    if (cs == 1)
        for (; x + 32 <= kc; x += 32)
            for (int h = 0; h < SM_GEMM_NR; h += 16) {
                __m512 v[16];
                for (int i = 0; i < 16 && h + i < nr; i++)   /* weights read once per product come from memory */
                    _mm_prefetch((const char *)(wb + (size_t)(h + i) * rs + x + 64), _MM_HINT_T0);
                rows_to_pairs16(v, wb + (size_t)h * rs + x, rs, nr - h);
                for (int j = 0; j < 16; j++) _mm512_storeu_ps(dst + (size_t)(x / 2 + j) * SM_GEMM_NR + h, v[j]);
            }
    if (x == kc) return;
    int rest = kc - x;
    gemm_pack_block(block, wb + (size_t)x * cs, rs, cs, nr, rest);
    for (int xp = 0; xp < (rest + 1) / 2; xp++)
        for (int h = 0; h < SM_GEMM_NR; h += 16) {
            __m512 a0 = _mm512_load_ps(block + (size_t)2 * xp * SM_GEMM_NR + h);
            __m512 a1 = 2 * xp + 1 < rest ? _mm512_load_ps(block + (size_t)(2 * xp + 1) * SM_GEMM_NR + h)
                                          : _mm512_setzero_ps();
            _mm512_storeu_ps(dst + (size_t)(x / 2 + xp) * SM_GEMM_NR + h, bf16_pairs(a0, a1));
        }
}

/* Loops, outside in: column blocks of KC (in order: that is each sum's
 * order), runs of panels whose slice of the packed batch stays in L2,
 * blocks of 32 weight rows (packed once per run, kept in L2: up to 128 KiB), panels.
 * F32 weights rounded for the dot tile (ELEM_F32_PAIRS) are rounded once per
 * column block instead, whatever the number of runs: all their blocks into
 * scratch after the batch's run (SM_GEMM_MIXED_W_BYTES), in chunks of rows
 * when they do not fit, each chunk before the runs (the batch's runs are
 * rounded again for every chunk: a chunk is thousands of rows).
 * The batch comes packed, or with a (read in place): rows (a_cs = 1) go
 * to the tile as they are, 12 at a time (a last panel of fewer is packed
 * on the stack), and a batch read by columns is packed a run at a time
 * into scratch as the loops reach it (BLIS's order). For the dot tile
 * (ELEM_BF16_PAIRS) each run of the packed batch is rounded into scratch as
 * BF16 pairs (SM_GEMM_PAIRS_BYTES, into pairs), once per run, before its weight
 * blocks; with F32 weights rounded too (ELEM_F32_PAIRS) a batch read in place
 * by rows or by columns is rounded into pairs a run at a time straight from
 * a, and one with other strides packed in F32 first. The weights (elem):
 * F32 with any strides, or F16 / BF16 stored by rows. */
AVX512 static inline __attribute__((always_inline)) void gemm_loops(float *c, int ldc, const float *packed,
                                                                   const float *a, size_t a_rs, size_t a_cs,
                                                                   float *scratch, float *pairs, int m, const void *w,
                                                                   size_t rs, size_t cs, int n, int k, int flags,
                                                                   int elem) {
    float block[SM_GEMM_NR * SM_GEMM_KC] __attribute__((aligned(64)));
    float tail[SM_GEMM_MR * SM_GEMM_KC] __attribute__((aligned(64)));
    int dot = elem == ELEM_BF16_PAIRS || elem == ELEM_F32_PAIRS;
    int panels = (m + SM_GEMM_MR - 1) / SM_GEMM_MR, direct = a && a_cs == 1 && !dot;
    size_t esize = elem == ELEM_F32 || elem == ELEM_F32_PAIRS ? sizeof(float) : sizeof(uint16_t);
    /* k split into equal blocks of at most KC (multiples of 16): no short last block */
    int nblk = (k + SM_GEMM_KC - 1) / SM_GEMM_KC, step = ((k + nblk - 1) / nblk + 15) & ~15;
    int run = dot ? sm_gemm_run_panels(SM_GEMM_MR, step / 2, SM_GEMM_PAIRS_BYTES)
                  : sm_gemm_run_panels(SM_GEMM_MR, step, SM_GEMM_RUN_BYTES);
    /* the results stream past the caches when asked, each written once (one column block), aligned
     * (the dot tile has no streaming store: there the flag is only a hint) */
    int stream = !dot && (flags & SM_GEMM_STREAM) && !(flags & SM_GEMM_ACCUMULATE) && nblk == 1 &&
                 ((uintptr_t)c & 63) == 0 && (ldc & 15) == 0;
    /* F32 weights rounded once per column block (chunk rows at a time) into wpairs: in scratch after the
     * batch's run, aligned for the tile's loads */
    float *wpairs = NULL;
    if (elem == ELEM_F32_PAIRS)
        wpairs = (float *)(((uintptr_t)(scratch + 2 * SM_GEMM_PAIRS_BYTES / sizeof(float)) + 63) & ~(uintptr_t)63);
    size_t wblock = (size_t)SM_GEMM_NR * ((step + 1) / 2);   /* floats per rounded block */
    int chunk = wpairs ? (int)(SM_GEMM_MIXED_W_BYTES / sizeof(float) / wblock) * SM_GEMM_NR : n;
    for (int x0 = 0; x0 < k; x0 += step) {
        int kc = k - x0 < step ? k - x0 : step, load = (flags & SM_GEMM_ACCUMULATE) || x0 > 0;
        for (int n0 = 0; n0 < n; n0 += chunk) {
            int n1 = n - n0 < chunk ? n : n0 + chunk;
            for (int r = n0; wpairs && r < n1; r += SM_GEMM_NR)
                gemm_pack_block_f32_pairs(wpairs + (size_t)(r - n0) / SM_GEMM_NR * wblock, block,
                                          (const float *)w + (size_t)r * rs + (size_t)x0 * cs, rs, cs,
                                          n1 - r < SM_GEMM_NR ? n1 - r : SM_GEMM_NR, kc);
            for (int p0 = 0; p0 < panels; p0 += run) {
                int p1 = p0 + run < panels ? p0 + run : panels;
                const float *slice = NULL;   /* panel p0 of this column block, packed */
                size_t pstride = (size_t)k * SM_GEMM_MR;
                if (direct) {
                    if (p1 == panels && m % SM_GEMM_MR)
                        sm_gemm_pack_avx512(tail, a + (size_t)(panels - 1) * SM_GEMM_MR * a_rs + x0, a_rs, 1,
                                            m % SM_GEMM_MR, kc, 0, 1);
                } else if (a && dot && (a_cs == 1 || a_rs == 1)) {
                    gemm_batch_to_pairs(pairs, a + (size_t)p0 * SM_GEMM_MR * a_rs + (size_t)x0 * a_cs, a_rs, a_cs,
                                        m - p0 * SM_GEMM_MR, kc, p1 - p0);
                    slice = pairs, pstride = (size_t)(kc + 1) / 2 * SM_GEMM_MR;
                } else if (a) {
                    sm_gemm_pack_avx512(scratch, a + (size_t)p0 * SM_GEMM_MR * a_rs + (size_t)x0 * a_cs, a_rs, a_cs,
                                        m - p0 * SM_GEMM_MR, kc, 0, p1 - p0);
                    slice = scratch, pstride = (size_t)kc * SM_GEMM_MR;
                } else {
                    slice = packed + (size_t)x0 * SM_GEMM_MR + (size_t)p0 * pstride;
                }
                if (dot && slice != pairs) {   /* not rounded straight from a above */
                    gemm_panels_to_pairs(pairs, slice, pstride, p1 - p0, kc);
                    slice = pairs, pstride = (size_t)(kc + 1) / 2 * SM_GEMM_MR;
                }
                for (int r = n0; r < n1; r += SM_GEMM_NR) {
                    int nr = n1 - r < SM_GEMM_NR ? n1 - r : SM_GEMM_NR;
                    const char *wb = (const char *)w + ((size_t)r * rs + (size_t)x0 * cs) * esize;
                    const float *blk = block;
                    if (wpairs) blk = wpairs + (size_t)(r - n0) / SM_GEMM_NR * wblock;
                    else if (elem == ELEM_F32) gemm_pack_block(block, (const float *)wb, rs, cs, nr, kc);
                    else if (elem == ELEM_BF16_PAIRS) gemm_pack_block_pairs(block, (const uint16_t *)wb, rs, nr, kc);
                    else gemm_pack_block_h16(block, (const uint16_t *)wb, rs, nr, kc, elem);
                    /* rows stored contiguously come from memory: the next block's lines are
                     * fetched into L2, a share before each tile, while this block's tiles run
                     * (without, packing waited on memory: a quarter of a prompt's products) */
                    int rows_next = n1 - r - SM_GEMM_NR < SM_GEMM_NR ? n1 - r - SM_GEMM_NR : SM_GEMM_NR;
                    if (cs != 1 || wpairs) rows_next = 0;   /* <= 0: no next block, not stored by rows, or rounded */
                    sm_block_prefetch next = sm_block_prefetch_plan(wb + SM_GEMM_NR * rs * esize, rs * esize,
                                                                    (int)(((size_t)kc * esize + 63) / 64), rows_next,
                                                                    p1 - p0);
                    for (int p = p0; p < p1; p++) {
                        const char *line;
                        for (int q = 0; q < next.per && (line = sm_block_prefetch_next(&next)); q++)
                            _mm_prefetch(line, _MM_HINT_T1);
                        int mr = m - SM_GEMM_MR * p < SM_GEMM_MR ? m - SM_GEMM_MR * p : SM_GEMM_MR;
                        float *cp = c + (size_t)p * SM_GEMM_MR * ldc + r;
                        int whole = stream && mr == SM_GEMM_MR && nr == SM_GEMM_NR;
                        if (dot) {
                            gemm_tiles_pairs[(mr - 1) / 4][nr > 16](cp, ldc, slice + (size_t)(p - p0) * pstride, blk,
                                                                     (kc + 1) / 2, mr, nr, load);
                        } else if (direct && mr == SM_GEMM_MR) {
                            const float *ar = a + (size_t)p * SM_GEMM_MR * a_rs + x0;
                            (whole     ? gemm_tile_rows_12x32_stream
                             : nr > 16 ? gemm_tile_rows_12x32
                                       : gemm_tile_rows_12x16)(cp, ldc, ar, a_rs, block, kc, mr, nr, load);
                        } else {
                            const float *ap = direct ? tail : slice + (size_t)(p - p0) * pstride;
                            (whole ? gemm_tile_12x32_stream : gemm_tiles_packed[(mr - 1) / 4][nr > 16])(
                                cp, ldc, ap, 0, block, kc, mr, nr, load);
                        }
                    }
                }
            }
        }
    }
    if (stream) _mm_sfence();   /* the streamed stores are seen before whatever this thread does next */
}

AVX512 void sm_gemm_avx512(float *c, int ldc, const float *packed, int m, const float *w, size_t rs, size_t cs, int n,
                           int k, int flags) {
    gemm_loops(c, ldc, packed, NULL, 0, 0, NULL, NULL, m, w, rs, cs, n, k, flags, ELEM_F32);
}

AVX512 void sm_gemm_f16_avx512(float *c, int ldc, const float *packed, int m, const uint16_t *w, size_t rs, int n,
                               int k, int accumulate) {
    gemm_loops(c, ldc, packed, NULL, 0, 0, NULL, NULL, m, w, rs, 1, n, k, accumulate ? SM_GEMM_ACCUMULATE : 0,
               ELEM_F16);
}

/* BF16 weights against the batch rounded to BF16, through vdpbf16ps (the
 * loops inlined here, where the CPU's BF16 instructions may be used) */
AVX512BF16 static void gemm_bf16_dot(float *c, int ldc, const float *packed, int m, const uint16_t *w, size_t rs,
                                     int n, int k, int accumulate) {
    float pairs[SM_GEMM_PAIRS_BYTES / sizeof(float)] __attribute__((aligned(64)));
    gemm_loops(c, ldc, packed, NULL, 0, 0, NULL, pairs, m, w, rs, 1, n, k, accumulate ? SM_GEMM_ACCUMULATE : 0,
               ELEM_BF16_PAIRS);
}

AVX512 void sm_gemm_bf16_variant_avx512(int dot, float *c, int ldc, const float *packed, int m, const uint16_t *w,
                                        size_t rs, int n, int k, int accumulate) {
    if (dot && sm_x86_has("avx512bf16"))
        gemm_bf16_dot(c, ldc, packed, m, w, rs, n, k, accumulate);
    else
        gemm_loops(c, ldc, packed, NULL, 0, 0, NULL, NULL, m, w, rs, 1, n, k, accumulate ? SM_GEMM_ACCUMULATE : 0,
                   ELEM_BF16);
}

/* Where vdpbf16ps does twice the FMA's multiply-adds per cycle (AMD Zen 4),
 * the dot variant: the batch rounded to BF16, as llama.cpp's BF16 product
 * rounds it; elsewhere (Intel, where the instruction runs at the FMA's rate,
 * or a CPU without it) widening, the same sums as gemm. */
int sm_gemm_bf16_takes_dot_avx512(void) {
    __builtin_cpu_init();
    return !__builtin_cpu_is("intel") && sm_x86_has("avx512bf16");
}

AVX512 void sm_gemm_bf16_avx512(float *c, int ldc, const float *packed, int m, const uint16_t *w, size_t rs, int n,
                                int k, int accumulate) {
    sm_gemm_bf16_variant_avx512(sm_gemm_bf16_takes_dot_avx512(), c, ldc, packed, m, w, rs, n, k, accumulate);
}

AVX512 void sm_gemm_strided_avx512(float *c, int ldc, const float *a, size_t a_rs, size_t a_cs, int m, const float *w,
                                   size_t rs, size_t cs, int n, int k, int flags, float *scratch) {
    gemm_loops(c, ldc, NULL, a, a_rs, a_cs, scratch, NULL, m, w, rs, cs, n, k, flags, ELEM_F32);
}

/* Mixed precision's product (dispatch.h's gemm_mixed): gemm_strided's, or
 * gemm's on a packed batch (packed set, a NULL), with both operands rounded
 * to BF16 (nearest even) and each pair of columns' exact products summed in
 * F32 by vdpbf16ps. Only on a CPU with AVX512_BF16 (sm_kernels_mixed). */
AVX512BF16 void sm_gemm_mixed_avx512(float *c, int ldc, const float *packed, const float *a, size_t a_rs, size_t a_cs,
                                     int m, const float *w, size_t rs, size_t cs, int n, int k, int flags,
                                     float *scratch) {
    float pairs[SM_GEMM_PAIRS_BYTES / sizeof(float)] __attribute__((aligned(64)));
    gemm_loops(c, ldc, packed, a, a_rs, a_cs, scratch, pairs, m, w, rs, cs, n, k, flags, ELEM_F32_PAIRS);
}
#endif


/* AdamW (dispatch.h), 16 parameters at a time with the scalar version's
 * operations in its order, none fused: the same bits. */
#if defined(__x86_64__)
AVX512 void sm_adamw_avx512(float *w, float *g, float *m, float *v, size_t n, const struct sm_adamw_step *a) {
    const __m512 scale = _mm512_set1_ps(a->scale), b1 = _mm512_set1_ps(a->beta1), b2 = _mm512_set1_ps(a->beta2);
    const __m512 k1 = _mm512_set1_ps(1.0f - a->beta1), k2 = _mm512_set1_ps(1.0f - a->beta2);
    const __m512 c1 = _mm512_set1_ps(a->c1), c2 = _mm512_set1_ps(a->c2), lr = _mm512_set1_ps(a->lr);
    const __m512 eps = _mm512_set1_ps(a->eps), wd = _mm512_set1_ps(a->weight_decay);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 gi = _mm512_mul_ps(_mm512_loadu_ps(g + i), scale);
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_loadu_ps(m + i)), _mm512_mul_ps(k1, gi));
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_loadu_ps(v + i)), _mm512_mul_ps(_mm512_mul_ps(k2, gi), gi));
        __m512 mh = _mm512_div_ps(mi, c1), vh = _mm512_div_ps(vi, c2), wi = _mm512_loadu_ps(w + i);
        __m512 step = _mm512_add_ps(_mm512_div_ps(mh, _mm512_add_ps(_mm512_sqrt_ps(vh), eps)), _mm512_mul_ps(wd, wi));
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        _mm512_storeu_ps(w + i, _mm512_sub_ps(wi, _mm512_mul_ps(lr, step)));
        _mm512_storeu_ps(g + i, _mm512_setzero_ps());
    }
    if (i < n) sm_adamw_scalar(w + i, g + i, m + i, v + i, n - i, a);
}
#endif

/* d/dx gelu(x) = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) du/dx, with
 * tanh u = 1 - 2 / (1 + e^(2u)); dinp = dout * that. */
#if defined(__x86_64__)
AVX512 void sm_gelu_grad_avx512(float *dinp, const float *inp, const float *dout, int n) {
    int i = 0;
    const __m512 c = _mm512_set1_ps(0.7978845608028654f), k = _mm512_set1_ps(0.044715f), one = _mm512_set1_ps(1.0f);
    const __m512 half = _mm512_set1_ps(0.5f), two = _mm512_set1_ps(2.0f), k3 = _mm512_set1_ps(3.0f * 0.044715f);
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(inp + i), x2 = _mm512_mul_ps(x, x);
        __m512 u = _mm512_mul_ps(c, _mm512_fmadd_ps(_mm512_mul_ps(k, x2), x, x));
        __m512 th = _mm512_sub_ps(one, _mm512_div_ps(two, _mm512_add_ps(one, exp512(_mm512_add_ps(u, u)))));
        __m512 du = _mm512_mul_ps(c, _mm512_fmadd_ps(k3, x2, one));
        __m512 g = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_fnmadd_ps(th, th, one)), du,
                                   _mm512_mul_ps(half, _mm512_add_ps(one, th)));
        _mm512_storeu_ps(dinp + i, _mm512_mul_ps(_mm512_loadu_ps(dout + i), g));
    }
    for (; i < n; i++) {
        float x = inp[i], u = 0.7978845608028654f * (x + 0.044715f * x * x * x), th = tanhf(u);
        float du = 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = dout[i] * (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du);
    }
}
#endif

/* The AVX2 level's training kernels: the AVX-512 ones above, 8 lanes wide. */
#if defined(__x86_64__)
AVX2 void sm_gelu_grad_avx2(float *dinp, const float *inp, const float *dout, int n) {
    int i = 0;
    const __m256 c = _mm256_set1_ps(0.7978845608028654f), k = _mm256_set1_ps(0.044715f), one = _mm256_set1_ps(1.0f);
    const __m256 half = _mm256_set1_ps(0.5f), two = _mm256_set1_ps(2.0f), k3 = _mm256_set1_ps(3.0f * 0.044715f);
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(inp + i), x2 = _mm256_mul_ps(x, x);
        __m256 u = _mm256_mul_ps(c, _mm256_fmadd_ps(_mm256_mul_ps(k, x2), x, x));
        __m256 th = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(one, exp256(_mm256_add_ps(u, u)))));
        __m256 du = _mm256_mul_ps(c, _mm256_fmadd_ps(k3, x2, one));
        __m256 g = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_fnmadd_ps(th, th, one)), du,
                                   _mm256_mul_ps(half, _mm256_add_ps(one, th)));
        _mm256_storeu_ps(dinp + i, _mm256_mul_ps(_mm256_loadu_ps(dout + i), g));
    }
    for (; i < n; i++) {
        float x = inp[i], u = 0.7978845608028654f * (x + 0.044715f * x * x * x), th = tanhf(u);
        float du = 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = dout[i] * (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du);
    }
}

AVX2 void sm_swiglu_grad_avx2(float *dg, float *du, const float *g, const float *u, const float *dh, int n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(g + i), d = _mm256_loadu_ps(dh + i), uv = _mm256_loadu_ps(u + i);
        __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), v))));
        __m256 ds = _mm256_mul_ps(_mm256_mul_ps(d, uv), _mm256_mul_ps(s, _mm256_fmadd_ps(v, _mm256_sub_ps(one, s), one)));
        _mm256_storeu_ps(dg + i, ds);
        _mm256_storeu_ps(du + i, _mm256_mul_ps(d, _mm256_mul_ps(v, s)));
    }
    for (; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-g[i])), silu = g[i] * s;
        dg[i] = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        du[i] = dh[i] * silu;
    }
}

/* AdamW with the scalar version's operations in its order, none fused:
 * the same bits. */
AVX2 void sm_adamw_avx2(float *w, float *g, float *m, float *v, size_t n, const struct sm_adamw_step *a) {
    const __m256 scale = _mm256_set1_ps(a->scale), b1 = _mm256_set1_ps(a->beta1), b2 = _mm256_set1_ps(a->beta2);
    const __m256 k1 = _mm256_set1_ps(1.0f - a->beta1), k2 = _mm256_set1_ps(1.0f - a->beta2);
    const __m256 c1 = _mm256_set1_ps(a->c1), c2 = _mm256_set1_ps(a->c2), lr = _mm256_set1_ps(a->lr);
    const __m256 eps = _mm256_set1_ps(a->eps), wd = _mm256_set1_ps(a->weight_decay);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gi = _mm256_mul_ps(_mm256_loadu_ps(g + i), scale);
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(k1, gi));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(_mm256_mul_ps(k2, gi), gi));
        __m256 mh = _mm256_div_ps(mi, c1), vh = _mm256_div_ps(vi, c2), wi = _mm256_loadu_ps(w + i);
        __m256 step = _mm256_add_ps(_mm256_div_ps(mh, _mm256_add_ps(_mm256_sqrt_ps(vh), eps)), _mm256_mul_ps(wd, wi));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        _mm256_storeu_ps(w + i, _mm256_sub_ps(wi, _mm256_mul_ps(lr, step)));
        _mm256_storeu_ps(g + i, _mm256_setzero_ps());
    }
    if (i < n) sm_adamw_scalar(w + i, g + i, m + i, v + i, n - i, a);
}
#endif

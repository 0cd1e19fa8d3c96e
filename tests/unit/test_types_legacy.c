/* test_types_legacy.c - the types of src/kernels/quant_legacy.h (Q4_1,
 * Q5_0, Q5_1, IQ4_NL, BF16 and the Q8_1 activations): blocks built by hand
 * from ggml's format description decode to the values worked out here;
 * quantizing and dequantizing stays within each format's error bound; the
 * integer dots equal the float dots of the dequantized operands; every
 * kernel level (and the 16-row interleaved layout) matches the scalar
 * reference; llama-quantize's bytes and llama.cpp's dequantization of them
 * (tests/refs/legacy_types/llamacpp.txt) are reproduced; and a model
 * quantized to each type runs on every level and tracks the F32 model. */
#include "test.h"
#include "kernels/dispatch.h"
#include "kernels/half.h"
#include "kernels/quant.h"
#include "kernels/quant_legacy.h"
#include "kernels/interleave_legacy.h"
#include "kernels/simd_legacy.h"
#include "kernels/simd.h"
#include "kernels/types.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static const uint32_t QTYPES[] = {SM_GGML_Q4_1, SM_GGML_Q5_0, SM_GGML_Q5_1, SM_GGML_IQ4_NL};
#define N_QTYPES (sizeof QTYPES / sizeof QTYPES[0])

static float urand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) / 16777216.0);   /* [0, 1) */
}
static float grand(uint64_t *s) {   /* standard normal (Box-Muller) */
    float u = urand(s), v = urand(s);
    return sqrtf(-2.0f * logf(u + 1e-12f)) * cosf(6.2831853f * v);
}

static sm_type_kernels K(const sm_kernel_table *kt, uint32_t type) {
    sm_type_kernels k;
    sm_kernels_for_type(kt, type, &k);
    return k;
}

static uint64_t fnv(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
#define FNV0 0xcbf29ce484222325ull

static uint16_t h16(float f) { return sm_fp32_to_fp16(f); }

/* ------------------------------------------------ hand-built blocks */

TEST(legacy_hand_built_blocks) {
    float y[32];
    /* Q4_1: d = 0.5, m = -2; byte j holds element j (low nibble j) and
     * element j + 16 (high nibble 15 - j): x = q d + m */
    sm_block_q4_1 a = {h16(0.5f), h16(-2.0f), {0}};
    for (int j = 0; j < 16; j++) a.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    sm_dequantize_q4_1(y, &a, 32);
    CHECK(y[0] == -2.0f && y[1] == -1.5f && y[15] == 5.5f && y[16] == 5.5f && y[31] == -2.0f && y[20] == 3.5f);

    /* Q5_0: d = 0.25; fifth bits: byte 0 = 0x01 (element 0), byte 1 = 0x80
     * (element 15), byte 2 = 0xFF (elements 16-23), byte 3 = 0; x = (q - 16) d */
    sm_block_q5_0 b = {h16(0.25f), {0x01, 0x80, 0xFF, 0x00}, {0}};
    for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    sm_dequantize_q5_0(y, &b, 32);
    /* e0: 0|16 -> 0; e1: 1 -> -15; e15: 15|16 = 31 -> 15; e16: 15|16 -> 15;
     * e20: 11|16 = 27 -> 11; e24: nibble 7, no bit -> -9; e31: 0 -> -16 */
    CHECK(y[0] == 0.0f && y[1] == -3.75f && y[15] == 3.75f && y[16] == 3.75f && y[20] == 2.75f && y[24] == -2.25f &&
          y[31] == -4.0f);

    /* Q5_1: the same codes without the offset, d = 2, m = 0.5: x = q d + m */
    sm_block_q5_1 c = {h16(2.0f), h16(0.5f), {0x01, 0x80, 0xFF, 0x00}, {0}};
    memcpy(c.qs, b.qs, 16);
    sm_dequantize_q5_1(y, &c, 32);
    CHECK(y[0] == 32.5f && y[1] == 2.5f && y[15] == 62.5f && y[20] == 54.5f && y[24] == 14.5f && y[31] == 0.5f);

    /* IQ4_NL: d = 2; x = d * value[q] with ggml's table
     * {-127,-104,-83,-65,-49,-35,-22,-10,1,13,25,38,53,69,89,113} */
    sm_block_iq4_nl e = {h16(2.0f), {0}};
    e.qs[0] = 0x0F; e.qs[1] = 0x87; e.qs[2] = 0x3C;
    sm_dequantize_iq4_nl(y, &e, 32);
    CHECK(y[0] == 226.0f && y[16] == -254.0f && y[1] == -20.0f && y[17] == 2.0f && y[2] == 106.0f && y[18] == -130.0f &&
          y[3] == -254.0f);

    /* Q8_1: x = j - 16: amax 16, d = 16/127, codes round(x / d), and s, the
     * scaled sum of the codes, is the sum of the values within half a step
     * per element */
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    sm_block_q8_1 q;
    sm_quantize_q8_1(&q, x, 32);
    float d = sm_fp16_to_fp32(q.d);
    CHECK(q.d == h16(16.0f / 127.0f) && q.qs[0] == -127 && q.qs[16] == 0 && q.qs[31] == 119 && q.qs[17] == 8);
    CHECKF(fabsf(sm_fp16_to_fp32(q.s) - (-16.0f)) <= 16 * d, "q8_1 s = %g", sm_fp16_to_fp32(q.s));

    /* BF16: the top half of the float; rounding to nearest, ties to even */
    uint16_t hb[6] = {0x3F80, 0xC040, 0x7F80, 0x0001, 0xFF80, 0x8000};
    float want[6] = {1.0f, -3.0f, INFINITY, 0x1p-133f, -INFINITY, -0.0f};
    sm_bf16_to_f32_row(y, hb, 6);
    for (int i = 0; i < 6; i++) CHECKF(memcmp(&y[i], &want[i], 4) == 0, "bf16 %04x -> %g", hb[i], y[i]);
    uint32_t in_bits[8] = {0x3F808000u, 0x3F818000u, 0x3F808001u, 0x7F7FFFFFu, 0x7FC00001u, 0x7F800001u, 0x00000001u, 0xBF7FFFFFu};
    uint16_t out_want[8] = {0x3F80, 0x3F82, 0x3F81, 0x7F80, 0x7FC0, 0x7FC0, 0x0000, 0xBF80};
    float fin[8];
    uint16_t got[8];
    memcpy(fin, in_bits, sizeof fin);
    sm_f32_to_bf16_row(got, fin, 8);
    for (int i = 0; i < 8; i++) CHECKF(got[i] == out_want[i], "f32 %08x -> bf16 %04x, want %04x", in_bits[i], got[i], out_want[i]);
}

/* ------------------------------------------------ round trips */

/* Block-wise error bounds from the formats' definitions: Q4_1/Q5_1 round
 * to the nearest of 2^b steps spanning [min, max] (half a step, plus the
 * fp16 rounding of d and m); Q5_0 steps of |max|/16 (one step where the
 * value opposite the largest is clamped at code 31); IQ4_NL has no such
 * bound: its error must be below Q4_0's at the same size on Gaussian data
 * and a block on its grid must come back exactly. */
TEST(legacy_round_trip_bounds) {
    uint64_t seed = 3;
    int n = 32 * 512;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    void *q = malloc((size_t)n * 2);
    for (int i = 0; i < n; i++) x[i] = grand(&seed) * (i < n / 2 ? 1.0f : 0.01f) + (i % 96 < 32 ? 0.5f : 0.0f);
    for (int k = 0; k < 3; k++) {
        uint32_t t = k == 0 ? SM_GGML_Q4_1 : k == 1 ? SM_GGML_Q5_1 : SM_GGML_Q5_0;
        sm_type(t)->from_float_ref(q, x, n);
        sm_type(t)->to_float(y, q, n);
        int bad = 0;
        for (int b = 0; b < n / 32; b++) {
            float lo = x[32 * b], hi = lo, amax = 0;
            for (int j = 0; j < 32; j++) {
                lo = fminf(lo, x[32 * b + j]);
                hi = fmaxf(hi, x[32 * b + j]);
                amax = fmaxf(amax, fabsf(x[32 * b + j]));
            }
            double bound;
            if (t == SM_GGML_Q5_0) bound = amax / 16.0 * (1 + 1e-3) + 1e-7;
            else {
                int top = t == SM_GGML_Q4_1 ? 15 : 31;
                double d = (hi - lo) / top;
                bound = d / 2 + (top * d + fabs(lo)) / 2048.0 + 1e-7;
            }
            for (int j = 0; j < 32; j++) bad += fabs((double)x[32 * b + j] - y[32 * b + j]) > bound;
        }
        CHECKF(bad == 0, "%s: %d elements beyond the bound", sm_type_name(t), bad);
    }
    /* IQ4_NL against Q4_0 (both 4.5 bits per weight) on Gaussian blocks */
    for (int i = 0; i < n; i++) x[i] = grand(&seed);
    double e_nl = 0, e_40 = 0, ss = 0;
    sm_quantize_iq4_nl(q, x, n);
    sm_dequantize_iq4_nl(y, q, n);
    for (int i = 0; i < n; i++) { e_nl += (x[i] - y[i]) * (double)(x[i] - y[i]); ss += (double)x[i] * x[i]; }
    sm_quantize_q4_0(q, x, n);
    sm_dequantize_q4_0(y, q, n);
    for (int i = 0; i < n; i++) e_40 += (x[i] - y[i]) * (double)(x[i] - y[i]);
    CHECKF(e_nl < e_40 && sqrt(e_nl / ss) < 0.12, "IQ4_NL rms error %g vs Q4_0 %g", sqrt(e_nl / ss), sqrt(e_40 / ss));
    /* values on the grid (scale 0.5, every code, largest magnitude -127 * 0.5) */
    for (int j = 0; j < 32; j++) x[j] = 0.5f * sm_iq4nl_values[(j * 7) % 16];
    x[5] = -63.5f;
    sm_quantize_iq4_nl(q, x, 32);
    sm_dequantize_iq4_nl(y, q, 32);
    CHECKF(memcmp(x, y, 32 * sizeof(float)) == 0, "IQ4_NL grid block: %g %g %g", y[0], y[1], y[5]);
    /* a block below 1e-15: scale 0, every code the one nearest 0 (value 1) */
    for (int j = 0; j < 32; j++) x[j] = 1e-17f * (float)(j - 7);
    sm_quantize_iq4_nl(q, x, 32);
    const sm_block_iq4_nl *z = q;
    int all8 = z->d == 0;
    for (int j = 0; j < 16; j++) all8 &= z->qs[j] == 0x88;
    CHECK(all8);
    /* Q4_1/Q5_1 of a constant block: d = 0, every value the minimum */
    for (int j = 0; j < 32; j++) x[j] = -1.25f;
    sm_quantize_q5_1(q, x, 32);
    sm_dequantize_q5_1(y, q, 32);
    CHECK(y[0] == -1.25f && y[31] == -1.25f && ((sm_block_q5_1 *)q)->d == 0);
    /* BF16 round trip: within half a unit in the last place of bf16's 8-bit
     * significand, 2^-8 of the value at most */
    for (int i = 0; i < n; i++) x[i] = grand(&seed) * 100.0f;
    sm_f32_to_bf16_row(q, x, n);
    sm_bf16_to_f32_row(y, q, n);
    int bad = 0;
    for (int i = 0; i < n; i++) bad += fabsf(x[i] - y[i]) > fabsf(x[i]) * 0x1p-8f;
    CHECKF(bad == 0, "bf16: %d values beyond half an ulp", bad);
    free(x); free(y); free(q);
}

/* ------------------------------------------------ integer dots */

/* The activation format's reference quantizer and dequantizer. */
static void act_quantize(uint32_t act, void *y, const float *x, int n) { sm_type(act)->from_float_ref(y, x, n); }
static void act_dequantize(uint32_t act, float *y, const void *x, int n) { sm_type(act)->to_float(y, x, n); }

/* Q8_1 carries s = d * sum(q) as fp16, so a dot may differ from the exact
 * float dot by |m| times half an fp16 unit of d * sum(q) per block
 * (relative 2^-11), plus a denormal's absolute step. */
static double s_rounding(uint32_t t, const void *w, const void *xa, int n) {
    if (t != SM_GGML_Q4_1 && t != SM_GGML_Q5_1) return 0;
    const sm_block_q8_1 *x = xa;
    double e = 0;
    for (int b = 0; b < n / 32; b++) {
        uint16_t m = t == SM_GGML_Q4_1 ? ((const sm_block_q4_1 *)w)[b].m : ((const sm_block_q5_1 *)w)[b].m;
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += x[b].qs[j];
        e += fabs(sm_fp16_to_fp32(m)) * (fabs((double)sum * sm_fp16_to_fp32(x[b].d)) * 0x1p-11 + 0x1p-25);
    }
    return e;
}

TEST(legacy_integer_dot_equals_float_dot) {
    uint64_t seed = 9;
    int n = 32 * 48;
    float *w = malloc(sizeof(float) * n), *x = malloc(sizeof(float) * n), *wd = malloc(sizeof(float) * n), *xd = malloc(sizeof(float) * n);
    void *wq = malloc((size_t)n * 2), *xq = malloc((size_t)n * 2);
    for (size_t k = 0; k < N_QTYPES; k++) {
        uint32_t t = QTYPES[k], act = sm_type(t)->vec_dot_type;
        CHECK(act == (t == SM_GGML_Q4_1 || t == SM_GGML_Q5_1 ? SM_GGML_Q8_1 : SM_GGML_Q8_0));
        for (int trial = 0; trial < 20; trial++) {
            for (int i = 0; i < n; i++) {
                w[i] = grand(&seed) + (trial & 1 ? 0.7f : 0.0f);
                x[i] = grand(&seed) * (trial & 2 ? 5.0f : 1.0f);
            }
            sm_type(t)->from_float_ref(wq, w, n);
            act_quantize(act, xq, x, n);
            sm_type(t)->to_float(wd, wq, n);
            act_dequantize(act, xd, xq, n);
            double exact = 0, mag = 0;
            for (int i = 0; i < n; i++) { exact += (double)wd[i] * xd[i]; mag += fabs((double)wd[i] * xd[i]); }
            float got;
            K(sm_kernels_get("scalar"), t).matvec(&got, wq, xq, 1, n);
            double tol = 1e-5 * mag + s_rounding(t, wq, xq, n) * 1.01 + 1e-6;
            CHECKF(fabs(got - exact) <= tol, "%s trial %d: %g vs %g (tol %g)", sm_type_name(t), trial, got, exact, tol);
        }
    }
    free(w); free(x); free(wd); free(xd); free(wq); free(xq);
}

/* ------------------------------------------------ every level */

/* Codes at their extremes in a block: all nibbles and fifth bits set
 * (hi = 1) or clear, with a large scale. */
static void extreme_block(uint32_t t, void *blk, int hi) {
    uint8_t nib = hi ? 0xFF : 0x00, bits = hi ? 0xFF : 0x00;
    switch (t) {
    case SM_GGML_Q4_1: { sm_block_q4_1 *b = blk; memset(b->qs, nib, 16); b->d = h16(7.5f); b->m = h16(-60.0f); break; }
    case SM_GGML_Q5_0: { sm_block_q5_0 *b = blk; memset(b->qs, nib, 16); memset(b->qh, bits, 4); b->d = h16(-6.0f); break; }
    case SM_GGML_Q5_1: { sm_block_q5_1 *b = blk; memset(b->qs, nib, 16); memset(b->qh, bits, 4); b->d = h16(3.0f); b->m = h16(-50.0f); break; }
    case SM_GGML_IQ4_NL: { sm_block_iq4_nl *b = blk; memset(b->qs, nib, 16); b->d = h16(0.75f); break; }
    }
}

/* Activation codes at their extremes (+-127) in block b; Q8_1's s follows. */
static void extreme_activations(uint32_t act, void *xq, int b, int sign) {
    if (act == SM_GGML_Q8_0) {
        sm_block_q8_0 *x = (sm_block_q8_0 *)xq + b;
        for (int j = 0; j < 32; j++) x->qs[j] = (int8_t)(sign * (j % 5 ? 127 : -127));
    } else {
        sm_block_q8_1 *x = (sm_block_q8_1 *)xq + b;
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += x->qs[j] = (int8_t)(sign * (j % 5 ? 127 : -127));
        x->s = h16((float)sum * sm_fp16_to_fp32(x->d));
    }
}

TEST(legacy_simd_match_reference) {
    const sm_kernel_table *all[8];
    int nl = sm_kernels_available(all, 8);
    int shapes[][2] = {{1, 32}, {3, 64}, {5, 96}, {16, 256}, {17, 288}, {33, 768}, {48, 2048}, {7, 4096}, {64, 512}};
    uint64_t seed = 77;
    for (size_t k = 0; k < N_QTYPES; k++) {
        uint32_t t = QTYPES[k], act = sm_type(t)->vec_dot_type;
        size_t bb = sm_type(t)->bytes, ab = sm_type(act)->bytes;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int r = shapes[s][0], c = shapes[s][1], nb = c / 32;
            float *w = malloc(sizeof(float) * r * c), *x = malloc(sizeof(float) * c), *wd = malloc(sizeof(float) * r * c);
            float *xd = malloc(sizeof(float) * c), *ref = malloc(sizeof(float) * r), *got = malloc(sizeof(float) * r);
            float *f = malloc(sizeof(float) * 16 * c), *g = malloc(sizeof(float) * 16 * c);
            char *wq = malloc(bb * r * nb), *xq = malloc(ab * nb), *xq2 = malloc(ab * nb), *wi = malloc(bb * r * nb);
            int32_t *xsum = malloc(sizeof(int32_t) * nb);
            for (int i = 0; i < r * c; i++) w[i] = grand(&seed) * (i % 97 == 0 ? 8.0f : 1.0f) + (s & 1 ? 0.3f : 0.0f);
            for (int i = 0; i < c; i++) x[i] = grand(&seed);
            /* block 0: scale exactly 1 and halves, where rounding rules differ */
            x[0] = 127.0f;
            for (int i = 1; i < 32; i++) x[i] = (float)(i - 16) + 0.5f;
            for (int i = 0; i < r; i++) sm_type(t)->from_float_ref(wq + bb * nb * i, w + (size_t)i * c, c);
            extreme_block(t, wq, 1);
            if (r > 1) extreme_block(t, wq + bb * nb, 0);
            act_quantize(act, xq, x, c);
            extreme_activations(act, xq, 0, 1);
            if (nb > 1) extreme_activations(act, xq, nb - 1, -1);
            sm_type(t)->to_float(wd, wq, r * c);
            act_dequantize(act, xd, xq, c);
            K(all[0], t).matvec(ref, wq, xq, r, c);
            /* the scalar kernel is the reference dot */
            for (int i = 0; i < r; i++) {
                double mag = 0, exact = 0;
                for (int j = 0; j < c; j++) {
                    exact += (double)wd[(size_t)i * c + j] * xd[j];
                    mag += fabs((double)wd[(size_t)i * c + j] * xd[j]);
                }
                double tol = 1e-5 * mag + 1.01 * s_rounding(t, wq + bb * nb * i, xq, c) + 1e-6;
                CHECKF(fabs(ref[i] - exact) <= tol, "%s scalar %dx%d row %d: %g vs %g", sm_type_name(t), r, c, i, ref[i], exact);
            }
            for (int v = 1; v < nl; v++) {
                sm_type_kernels kv = K(all[v], t);
                kv.matvec(got, wq, xq, r, c);
                for (int i = 0; i < r; i++) {
                    double mag = 0;
                    for (int j = 0; j < c; j++) mag += fabs((double)wd[(size_t)i * c + j] * xd[j]);
                    CHECKF(fabs(got[i] - ref[i]) <= 1e-5 * mag + 1e-6, "%s %s %dx%d row %d: %g vs %g", all[v]->name,
                           sm_type_name(t), r, c, i, got[i], ref[i]);
                }
                /* prefill's dequantizer: the reference's floats, bit for bit */
                float *rows_f = malloc(sizeof(float) * r * c);
                kv.to_float(rows_f, wq, r * c);
                CHECKF(memcmp(rows_f, wd, sizeof(float) * r * c) == 0, "%s %s to_float %dx%d differs", all[v]->name,
                       sm_type_name(t), r, c);
                free(rows_f);
                /* the activation quantizer: the reference's bytes */
                K(all[v], act).from_float(xq2, x, c);
                char *xr = malloc(ab * nb);
                act_quantize(act, xr, x, c);
                if (act == SM_GGML_Q8_1) CHECKF(memcmp(xq2, xr, ab * nb) == 0, "%s Q8_1 from_float %d differs", all[v]->name, c);
                free(xr);
                /* the interleaved layout, where this level reads one */
                if (r >= 16 && kv.matvec_x16) {
                    int rr = r / 16 * 16;
                    sm_type(t)->interleave_x16(wi, wq, rr, c);
                    sm_q8_0_block_sums(xsum, (const sm_block_q8_0 *)xq, nb);
                    kv.matvec_x16(got, wi, xq, xsum, rr, c);
                    for (int i = 0; i < rr; i++) {
                        double mag = 0;
                        for (int j = 0; j < c; j++) mag += fabs((double)wd[(size_t)i * c + j] * xd[j]);
                        CHECKF(fabs(got[i] - ref[i]) <= 1e-5 * mag + 1e-6, "%s %s x16 %dx%d row %d: %g vs %g",
                               all[v]->name, sm_type_name(t), r, c, i, got[i], ref[i]);
                    }
                    for (int grp = 0; grp < rr / 16; grp++) {
                        const char *gp = wi + bb * nb * 16 * grp;
                        kv.dequant_x16(f, gp, c);
                        K(all[0], t).dequant_x16(g, gp, c);
                        CHECKF(memcmp(f, wd + (size_t)grp * 16 * c, sizeof(float) * 16 * c) == 0 &&
                                   memcmp(g, f, sizeof(float) * 16 * c) == 0,
                               "%s %s dequant_x16 group %d of %dx%d differs", all[v]->name, sm_type_name(t), grp, r, c);
                        if (kv.dequant_x16_cols) {   /* column after column: the same floats */
                            kv.dequant_x16_cols(g, gp, c);
                            int diff = 0;
                            for (int col = 0; col < c; col++)
                                for (int i = 0; i < 16; i++)
                                    diff += memcmp(&g[col * 16 + i], &f[(size_t)i * c + col], sizeof(float)) != 0;
                            CHECKF(diff == 0, "%s %s dequant_x16_cols group %d of %dx%d: %d values differ", all[v]->name,
                                   sm_type_name(t), grp, r, c, diff);
                        }
                    }
                }
            }
            free(w); free(x); free(wd); free(xd); free(ref); free(got); free(f); free(g);
            free(wq); free(xq); free(xq2); free(wi); free(xsum);
        }
    }
}

/* The integer prefill products (batch_x16) of the types with an
 * interleaved layout: against a batch of activation rows (Q8_0 or Q8_1, a
 * stride past each row), every token's results are bit for bit the same
 * level's one-token x16 kernel's, and within the bound of the scalar
 * reference on the GGUF rows; with accumulate they add to what c held; c
 * outside the rows and the batch stays as it was. Token counts cover the
 * 6-token tiles and each remainder. */
TEST(legacy_batch_x16_match_one_token) {
    const sm_kernel_table *all[8];
    int nl = sm_kernels_available(all, 8), levels = 0;
    int shapes[][3] = {{16, 256, 1}, {32, 768, 7}, {48, 288, 11}, {16, 2048, 4}, {32, 64, 13}, {128, 128, 20}, {256, 128, 20}, {128, 256, 20}};
    uint64_t seed = 91;
    for (size_t k = 0; k < N_QTYPES; k++) {
        uint32_t t = QTYPES[k], act = sm_type(t)->vec_dot_type;
        if (!sm_type(t)->interleave_x16) continue;
        size_t bb = sm_type(t)->bytes, ab = sm_type(act)->bytes;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int r = shapes[s][0], c = shapes[s][1], m = shapes[s][2], nb = c / 32, ldc = r + 7;
            size_t xqs = ab * nb + 10, xss = (size_t)nb + 3;
            float *w = malloc(sizeof(float) * r * c), *x = malloc(sizeof(float) * c), *wd = malloc(sizeof(float) * r * c);
            float *xd = malloc(sizeof(float) * c), *ref = malloc(sizeof(float) * r), *one = malloc(sizeof(float) * r);
            float *got = malloc(sizeof(float) * (size_t)ldc * (m + 1)), *before = malloc(sizeof(float) * (size_t)ldc * (m + 1));
            char *wq = malloc(bb * r * nb), *wi = malloc(bb * r * nb), *xq = calloc((size_t)m, xqs);
            int32_t *xsum = calloc((size_t)m * xss, sizeof(int32_t));
            for (int i = 0; i < r * c; i++) w[i] = grand(&seed) * (i % 97 == 0 ? 8.0f : 1.0f) + (s & 1 ? 0.3f : 0.0f);
            for (int i = 0; i < r; i++) sm_type(t)->from_float_ref(wq + bb * nb * i, w + (size_t)i * c, c);
            extreme_block(t, wq, 1);
            extreme_block(t, wq + bb * nb, 0);
            sm_type(t)->to_float(wd, wq, r * c);
            sm_type(t)->interleave_x16(wi, wq, r, c);
            for (int i = 0; i < m; i++) {
                char *xi = xq + (size_t)i * xqs;
                for (int j = 0; j < c; j++) x[j] = grand(&seed) * (i % 3 + 1);
                act_quantize(act, xi, x, c);
                if (i == 1) extreme_activations(act, xi, 0, 1);
                if (i == 2) extreme_activations(act, xi, nb - 1, -1);
                if (act == SM_GGML_Q8_0) sm_q8_0_block_sums(xsum + (size_t)i * xss, (const sm_block_q8_0 *)xi, nb);
            }
            for (int v = 0; v < nl; v++) {
                sm_type_kernels kv = K(all[v], t);
                if (!kv.batch_x16) continue;
                levels++;
                for (int acc = 0; acc < 2; acc++) {
                    for (int i = 0; i < ldc * (m + 1); i++) before[i] = got[i] = grand(&seed);
                    kv.batch_x16(got, (size_t)ldc, wi, xq, xqs, xsum, xss, m, r, c, acc);
                    int exact = 0, near = 0, kept = 0;
                    for (int i = 0; i < m; i++) {
                        const char *xi = xq + (size_t)i * xqs;
                        kv.matvec_x16(one, wi, xi, xsum + (size_t)i * xss, r, c);
                        K(all[0], t).matvec(ref, wq, xi, r, c);
                        act_dequantize(act, xd, xi, c);
                        for (int j = 0; j < r; j++) {
                            double mag = 0;
                            for (int q = 0; q < c; q++) mag += fabs((double)wd[(size_t)j * c + q] * xd[q]);
                            float g = got[(size_t)i * ldc + j], b = before[(size_t)i * ldc + j];
                            if (!acc) exact += memcmp(&g, &one[j], sizeof g) != 0;
                            near += !(fabs((double)g - (acc ? b : 0.0f) - ref[j]) <= 1e-5 * mag + 1e-5 * (fabs(b) + 1));
                        }
                        for (int j = r; j < ldc; j++) kept += got[(size_t)i * ldc + j] != before[(size_t)i * ldc + j];
                    }
                    for (int j = 0; j < ldc; j++) kept += got[(size_t)m * ldc + j] != before[(size_t)m * ldc + j];
                    CHECKF(exact == 0 && near == 0 && kept == 0,
                           "%s %s batch_x16 %dx%d, %d tokens, accumulate %d: %d differ from the one-token kernel, %d "
                           "from the reference, %d outside the output changed",
                           all[v]->name, sm_type_name(t), r, c, m, acc, exact, near, kept);
                }
            }
            free(w); free(x); free(wd); free(xd); free(ref); free(one); free(got); free(before);
            free(wq); free(wi); free(xq); free(xsum);
        }
    }
    if (!levels) printf("     (no kernel level on this CPU has the integer batch products)\n");
}

TEST(legacy_bf16_simd_match_reference) {
    const sm_kernel_table *all[8];
    int nl = sm_kernels_available(all, 8);
    int shapes[][2] = {{1, 1}, {3, 7}, {4, 16}, {5, 31}, {7, 33}, {13, 100}, {64, 64}, {9, 1001}, {33, 4096}, {19, 33}};
    uint64_t seed = 5;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int r = shapes[s][0], c = shapes[s][1];
        float *w = malloc(sizeof(float) * r * c), *wd = malloc(sizeof(float) * r * c), *x = malloc(sizeof(float) * c);
        float *ref = malloc(sizeof(float) * r), *got = malloc(sizeof(float) * r), *fd = malloc(sizeof(float) * r * c);
        uint16_t *wb = malloc(2 * (size_t)r * c);
        for (int i = 0; i < r * c; i++) w[i] = grand(&seed) * (i % 13 == 0 ? 1e4f : 1.0f);
        for (int i = 0; i < c; i++) x[i] = grand(&seed) * (i % 7 == 0 ? 1e-3f : 1.0f);
        sm_f32_to_bf16_row(wb, w, r * c);
        sm_bf16_to_f32_row(wd, wb, r * c);
        /* the scalar kernel against double sums of the widened weights */
        K(all[0], SM_GGML_BF16).matvec(ref, wb, x, r, c);
        for (int v = 0; v < nl; v++) {
            K(all[v], SM_GGML_BF16).matvec(got, wb, x, r, c);
            for (int i = 0; i < r; i++) {
                double exact = 0, mag = 0;
                for (int j = 0; j < c; j++) {
                    exact += (double)wd[(size_t)i * c + j] * x[j];
                    mag += fabs((double)wd[(size_t)i * c + j] * x[j]);
                }
                CHECKF(fabs(got[i] - exact) <= 1e-5 * mag + 1e-30, "%s bf16 %dx%d row %d: %g vs %g", all[v]->name, r, c, i,
                       got[i], exact);
            }
            K(all[v], SM_GGML_BF16).to_float(fd, wb, r * c);
            CHECKF(memcmp(fd, wd, sizeof(float) * r * c) == 0, "%s bf16 to_float %dx%d differs", all[v]->name, r, c);
            /* the interleaved copy's kernel, where the level has one: whole 16-row groups */
            sm_type_kernels kv = K(all[v], SM_GGML_BF16);
            int rr = r / 16 * 16;
            if (kv.matvec_x16 && rr) {
                uint16_t *wi = malloc(2 * (size_t)rr * c);
                sm_type(SM_GGML_BF16)->interleave_x16(wi, wb, rr, c);
                kv.matvec_x16(got, wi, x, NULL, rr, c);
                for (int i = 0; i < rr; i++) {
                    double exact = 0, mag = 0;
                    for (int j = 0; j < c; j++) {
                        exact += (double)wd[(size_t)i * c + j] * x[j];
                        mag += fabs((double)wd[(size_t)i * c + j] * x[j]);
                    }
                    CHECKF(fabs(got[i] - exact) <= 1e-5 * mag + 1e-30, "%s bf16 x16 %dx%d row %d: %g vs %g", all[v]->name,
                           rr, c, i, got[i], exact);
                }
                free(wi);
            }
        }
#if defined(__x86_64__)
        /* with and without the prefetches, whichever this host's vendor takes */
        for (int v = 0; v < 2 && sm_kernels_get("avx512"); v++) {
            sm_matvec_bf16_variant_avx512(v, got, wb, x, r, c);
            for (int i = 0; i < r; i++) {
                double exact = 0, mag = 0;
                for (int j = 0; j < c; j++) {
                    exact += (double)wd[(size_t)i * c + j] * x[j];
                    mag += fabs((double)wd[(size_t)i * c + j] * x[j]);
                }
                CHECKF(fabs(got[i] - exact) <= 1e-5 * mag + 1e-30, "avx512 bf16 variant %d %dx%d row %d: %g vs %g", v, r, c,
                       i, got[i], exact);
            }
        }
#endif
        free(w); free(wd); free(x); free(ref); free(got); free(fd); free(wb);
    }
}

/* ------------------------------------------------ llama.cpp's own bytes */

/* The formula tests/refs/legacy_types/gen.py writes into the model it
 * hands llama-quantize (row kinds by r % 8: scaled uniform, x0.37, cubes or
 * zeros, constants, a spike, bf16 rounding ties, tiny values, non-negative). */
static void legacy_source(float *out, int rows, int cols) {
    for (uint32_t i = 0; i < (uint32_t)rows * (uint32_t)cols; i++) {
        uint32_t u = i * 2654435761u + 0x9E3779B9u;
        u ^= u >> 15;
        u *= 0x2C1B3C6Du;
        u ^= u >> 12;
        float v = (float)((int32_t)(u >> 8) - 8388608) / 8388608.0f;
        int r = (int)(i / (uint32_t)cols), c = (int)(i % (uint32_t)cols);
        switch (r % 8) {
        case 0: v = v * ldexpf(1.0f, (r / 8) % 5 - 2); break;
        case 1: v = v * 0.37f; break;
        case 2: v = r % 16 == 2 ? 0.0f : v * v * v; break;
        case 3: v = r % 16 == 3 ? 0.25f : -1.5f; break;
        case 4: v = c == 7 ? 3.0f : v * 0.01f; break;
        case 5: {
            uint32_t bits = 0x3E000000u | (u & 0x007F0000u) | 0x8000u | (u & 0x80000000u);
            memcpy(&v, &bits, 4);
            break;
        }
        case 6: v = v * 0x1p-70f; break;
        default: v = (v + 1.0f) * 0.5f; break;
        }
        out[i] = v;
    }
}

static int hexval(char ch) { return ch >= 'a' ? ch - 'a' + 10 : ch - '0'; }

/* The value after "KEY " on the line starting with "PREFIX TYPE", as a
 * pointer into text; NULL when absent. */
static const char *field(const char *text, const char *prefix, const char *type, const char *key) {
    char head[64];
    snprintf(head, sizeof head, "\n%s %s ", prefix, type);
    const char *line = strstr(text, head);
    if (!line) return NULL;
    line += strlen(head);
    if (!key) return line;
    const char *eol = strchr(line, '\n'), *p = strstr(line, key);
    return p && (!eol || p < eol) ? p + strlen(key) + 1 : NULL;
}

static uint64_t hex64(const char *p) { return p ? strtoull(p, NULL, 16) : 0; }

TEST(legacy_llamacpp_quantize_and_dequantize) {
    char *ref = read_file("tests/refs/legacy_types/llamacpp.txt", NULL);
    if (!ref) SKIP("tests/refs/legacy_types/llamacpp.txt is absent (run from the checkout)");
    int rows = 0, cols = 0, slice = 0, group = 0;
    const char *sh = strstr(ref, "\nshape ");
    REQUIRE(sh && sscanf(sh, "\nshape %d %d slice %d group %d", &rows, &cols, &slice, &group) == 4);
    size_t n = (size_t)rows * cols;
    float *src = malloc(sizeof(float) * n), *deq = malloc(sizeof(float) * n);
    unsigned char *ours = malloc(n * 2), *theirs = malloc(n * 2);
    legacy_source(src, rows, cols);
    const char *names[] = {"Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "BF16"};
    const sm_kernel_table *all[8];
    int nl = sm_kernels_available(all, 8);
    for (int k = 0; k < 5; k++) {
        int t = sm_type_by_name(names[k]);
        const sm_type_traits *tt = sm_type((uint32_t)t);
        REQUIRE(field(ref, "type", names[k], NULL));
        size_t rb = sm_type_row_bytes((uint32_t)t, cols), total = rb * rows;
        /* our quantizer gives llama-quantize's bytes, group by group */
        for (int r = 0; r < rows; r++) tt->from_float_ref(ours + rb * r, src + (size_t)r * cols, cols);
        const char *gp = field(ref, "groups", names[k], NULL);
        REQUIRE(gp);
        int diff = 0, first = -1;
        for (int gi = 0; gi < rows / group; gi++) {
            uint64_t want = strtoull(gp, (char **)&gp, 16);
            if (fnv(ours + rb * group * gi, rb * group, FNV0) != want) { diff++; if (first < 0) first = gi; }
        }
        CHECKF(diff == 0, "%s: %d of %d groups of %d rows differ from llama-quantize's bytes (first: rows %d..)", names[k],
               diff, rows / group, group, first * group);
        CHECKF(fnv(ours, total, FNV0) == hex64(field(ref, "type", names[k], "bytes")), "%s: the tensor's bytes differ", names[k]);
        /* our dequantizer on those bytes gives llama.cpp's floats */
        tt->to_float(deq, ours, (int)n);
        CHECKF(fnv(deq, n * 4, FNV0) == hex64(field(ref, "type", names[k], "floats")), "%s: dequantized floats differ from llama.cpp's",
               names[k]);
        /* and on llama-quantize's own first blocks, on every level */
        const char *hx = field(ref, "hex", names[k], NULL);
        REQUIRE(hx);
        size_t sl_elems = (size_t)slice * tt->blck, sl_bytes = (size_t)slice * tt->bytes;
        for (size_t i = 0; i < sl_bytes; i++) theirs[i] = (unsigned char)(hexval(hx[2 * i]) << 4 | hexval(hx[2 * i + 1]));
        uint64_t want = hex64(field(ref, "type", names[k], "slice"));
        for (int v = 0; v < nl; v++) {
            K(all[v], (uint32_t)t).to_float(deq, theirs, (int)sl_elems);
            CHECKF(fnv(deq, sl_elems * 4, FNV0) == want, "%s %s: llama-quantize's first %d blocks dequantize differently",
                   all[v]->name, names[k], slice);
        }
    }
    free(src); free(deq); free(ours); free(theirs); free(ref);
}

/* ------------------------------------------------ a whole model */

/* *m = max(*m, v), as a plain if: gcc 12's AArch64 vectoriser crashes on
 * these loops written with fmax. */
static void widen(double *m, double v) {
    if (v > *m) *m = v;
}

/* The bytes of the last eval_logits session's interleaved weight copy. */
static uint64_t last_interleaved;

static int eval_logits(const char *path, const char *level, int threads, const sm_token *toks, int np, int nd, float *out,
                       int n_vocab) {
    sm_model *m = NULL;
    sm_session *s = NULL;
    if (sm_model_load(path, NULL, &m, NULL) != SM_OK) return 0;
    sm_session_params sp = sm_session_default_params();
    sp.kernels = level;
    sp.n_threads = threads;
    int ok = sm_session_create(m, &sp, &s, NULL) == SM_OK &&
             (np == 0 || sm_session_eval_all(s, toks, (size_t)np, out, NULL) == SM_OK);
    /* then token by token through the KV cache */
    for (int i = 0; ok && i < nd; i++) {
        ok = sm_session_eval(s, toks + np + i, 1, NULL) == SM_OK;
        if (ok) memcpy(out + (size_t)(np + i) * n_vocab, sm_session_logits(s), sizeof(float) * n_vocab);
    }
    sm_memory_info mi;
    if (ok) sm_session_memory(s, &mi);
    last_interleaved = ok ? mi.weights_interleaved : 0;
    sm_session_free(s);
    sm_model_free(m);
    return ok;
}

/* A random llama model (dims multiples of 32; 500 output rows, so the last
 * 4 rows miss the 16-row groups) quantized to each type: on every kernel
 * level and 1 and 2 threads the prompt's and the decoded tokens' logits
 * agree with the scalar level's (AVX-512 reading the 16-row copy of the
 * quantized types, whose prompt takes integer products: against the scalar
 * level fed one token at a time), and they track the F32 model's as well as
 * the format's resolution allows, judged against the types that were
 * there before (Q8_0, Q4_0): BF16 (8 significant bits) beats Q8_0; Q4_1
 * (a minimum and 16 levels) and IQ4_NL (a grid fitted to the weights) beat
 * Q4_0 at the same size; the 5-bit formats beat every 4-bit one. The
 * absolute bounds are 1.5 x the weights' relative rms error (Gaussian
 * blocks of 32: 0.23 % bf16, 3.9 % 5-bit, 7.9 % 4-bit) times the logits'
 * amplification of it in this model (about 4, measured with BF16). */
/* whether the AVX-512 level's gemm_bf16 takes its dot variant here */
static int bf16_dot_host(void) {
#if defined(__x86_64__)
    return sm_gemm_bf16_takes_dot_avx512();
#else
    return 0;
#endif
}

TEST(legacy_models_track_f32) {
    char dir[] = "/tmp/sm_legacy_XXXXXX";
    REQUIRE(mkdtemp(dir));
    char f32[64], path[64];
    snprintf(f32, sizeof f32, "%s/f32.gguf", dir);
    sm_init_params ip = sm_init_default_params();
    ip.dim = 128; ip.n_layers = 2; ip.n_heads = 4; ip.n_kv_heads = 2; ip.ffn_dim = 256; ip.n_ctx = 64;
    ip.n_vocab = 500; ip.seed = 11; ip.init_std = 0.09f;
    REQUIRE(sm_model_init_file(&ip, f32, NULL) == SM_OK);
    enum { NP = 20, ND = 6, NV = 500 };
    sm_token toks[NP + ND];
    for (int i = 0; i < NP + ND; i++) toks[i] = (sm_token)((i * 131 + 7) % NV);
    float *base = malloc(sizeof(float) * (NP + ND) * NV), *lg = malloc(sizeof(float) * (NP + ND) * NV);
    float *sc = malloc(sizeof(float) * (NP + ND) * NV), *sc1 = malloc(sizeof(float) * (NP + ND) * NV);
    REQUIRE(eval_logits(f32, "scalar", 1, toks, NP, ND, base, NV));
    enum { BF16, Q5_1, Q5_0, Q4_1, IQ4_NL, Q8_0, Q4_0, NT };
    const char *names[NT] = {"BF16", "Q5_1", "Q5_0", "Q4_1", "IQ4_NL", "Q8_0", "Q4_0"};
    const double limit[NT] = {0.014, 0.24, 0.24, 0.48, 0.48, 1, 1};
    double err[NT];
    const sm_kernel_table *all[8];
    int nl = sm_kernels_available(all, 8);
    /* the copy is made at load, for the level the model is loaded for (the
     * best one, or SM_KERNELS's) */
    const sm_kernel_table *load_kt = sm_kernels_get(NULL);
    int loaded_avx512 = load_kt && !strcmp(load_kt->name, "avx512");
    for (int k = 0; k < NT; k++) {
        snprintf(path, sizeof path, "%s/%s.gguf", dir, names[k]);
        REQUIRE(sm_model_quantize_file(f32, path, names[k], NULL, NULL, NULL) == SM_OK);
        REQUIRE(eval_logits(path, "scalar", 1, toks, NP, ND, sc, NV));
        double se = 0, ss = 0, dot = 0, sb = 0;
        for (int i = 0; i < (NP + ND) * NV; i++) {
            se += (sc[i] - (double)base[i]) * (sc[i] - base[i]);
            ss += (double)base[i] * base[i];
            sb += (double)sc[i] * sc[i];
            dot += (double)sc[i] * base[i];
        }
        err[k] = sqrt(se / ss);
        printf("     %-6s logits vs F32: relative rms error %.4f, cosine %.6f\n", names[k], err[k], dot / sqrt(ss * sb));
        CHECKF(err[k] < limit[k], "%s: relative rms error %g against F32", names[k], err[k]);
        double top = 0;
        for (int i = 0; i < (NP + ND) * NV; i++) widen(&top, fabs(sc[i]));
        /* the scalar level one token at a time: integer dots against each
         * row's input rounded to 8 bits, which is what a prompt on the
         * 16-row copy takes too (its batch products) */
        if (k != BF16 && k < Q8_0) REQUIRE(eval_logits(path, "scalar", 1, toks, 0, NP + ND, sc1, NV));
        for (int v = 1; v < nl && k < Q8_0; v++)
            for (int th = 1; th <= 2; th++) {
                REQUIRE(eval_logits(path, all[v]->name, th, toks, NP, ND, lg, NV));
                /* the quantized types read a 16-row copy on AVX-512 VNNI */
                int copy = !strcmp(all[v]->name, "avx512") && (loaded_avx512 || last_interleaved > 0) && k != BF16;
                if (copy) CHECKF(last_interleaved > 0, "%s: no interleaved copy on the avx512 level", names[k]);
                const float *want = copy ? sc1 : sc;
                double worst = 0, de = 0, dw = 0, fe = 0, fw = 0;
                for (int i = 0; i < (NP + ND) * NV; i++) {
                    widen(&worst, fabs(lg[i] - (double)want[i]));
                    de += (lg[i] - (double)want[i]) * (lg[i] - want[i]);
                    dw += (double)want[i] * want[i];
                    fe += (lg[i] - (double)base[i]) * (lg[i] - base[i]);
                    fw += (double)base[i] * base[i];
                }
                /* BF16 prompts on the AVX-512 level of a host that takes gemm_bf16's dot
                 * variant: the batch rounded to BF16 too, as llama.cpp rounds it; within 1 %
                 * (relative rms) of the scalar level and as close to F32 as BF16 allows */
                if (k == BF16 && !strcmp(all[v]->name, "avx512") && bf16_dot_host()) {
                    CHECKF(sqrt(de / dw) <= 1e-2 && sqrt(fe / fw) < limit[BF16],
                           "BF16 avx512 (dot) %d threads: relative rms %g from scalar, %g from F32", th,
                           sqrt(de / dw), sqrt(fe / fw));
                    continue;
                }
                /* One token at a time and on the copy, each row's input is
                 * rounded to 8 bits; where the two paths' floats differ in the
                 * last bit (the order of a sum), a value on a half step can
                 * round the other way, and this small random model carries
                 * that on: up to about 1 % of the largest logit (Q5_1, whose
                 * 16-row kernel sums scales and minimums apart). Elsewhere
                 * the bound is 0.1 %. */
                double bound = copy ? 2e-2 : 1e-3;
                CHECKF(worst <= bound * top && (!copy || sqrt(de / dw) <= 1e-2),
                       "%s %s %d threads: logits differ from scalar%s by %g (max %g; relative rms %g)", names[k],
                       all[v]->name, th, copy ? " (one token at a time)" : "", worst, top, sqrt(de / dw));
            }
        unlink(path);
    }
    CHECKF(err[BF16] < err[Q8_0], "BF16 %g, Q8_0 %g", err[BF16], err[Q8_0]);
    CHECKF(err[Q4_1] < err[Q4_0] && err[IQ4_NL] < err[Q4_0], "Q4_1 %g, IQ4_NL %g, Q4_0 %g", err[Q4_1], err[IQ4_NL], err[Q4_0]);
    CHECKF(fmax(err[Q5_0], err[Q5_1]) < fmin(err[Q4_1], err[IQ4_NL]), "Q5_0 %g, Q5_1 %g, Q4_1 %g, IQ4_NL %g", err[Q5_0],
           err[Q5_1], err[Q4_1], err[IQ4_NL]);
    unlink(f32);
    rmdir(dir);
    free(base); free(lg); free(sc); free(sc1);
}

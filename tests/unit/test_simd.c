/* test_simd.c - every kernel variant this CPU can run against the scalar
 * reference, on random and ragged shapes; quantized formats decoded from
 * blocks built by hand from the format description. */
#include "test.h"
#include "kernels/dispatch.h"
#include "kernels/types.h"
#include "kernels/half.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/quant_legacy.h"
#include "kernels/interleave.h"
#include "kernels/simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) / 16777216.0) * 2.0f - 1.0f;
}

/* A kernel level's kernels for one element type (the type table's slots,
 * with the levels below filling the gaps, as a session sees them). */
static sm_type_kernels K(const sm_kernel_table *kt, uint32_t type) {
    sm_type_kernels k;
    sm_kernels_for_type(kt, type, &k);
    return k;
}

/* |a - b| within tol times the sum of |w x| of the row */
static int close_enough(float a, float b, double scale, double tol) { return fabs((double)a - b) <= tol * scale + 1e-6; }

TEST(simd_matvec_f32_f16_match_scalar) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8);
    REQUIRE(n >= 1 && !strcmp(all[0]->name, "scalar"));
    int shapes[][2] = {{1, 1}, {3, 7}, {5, 15}, {4, 16}, {7, 17}, {13, 100}, {64, 64}, {65, 172}, {9, 1001}, {33, 4096},
                       {16, 1}, {32, 3}, {48, 768}};
    uint64_t seed = 11;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int r = shapes[k][0], c = shapes[k][1];
        float *w = malloc(sizeof(float) * r * c), *x = malloc(sizeof(float) * c);
        uint16_t *wh = malloc(2 * (size_t)r * c);
        float *ref = malloc(sizeof(float) * r), *refh = malloc(sizeof(float) * r), *got = malloc(sizeof(float) * r);
        double *scale = malloc(sizeof(double) * r);
        for (int i = 0; i < r * c; i++) { w[i] = frand(&seed); wh[i] = sm_fp32_to_fp16(w[i]); }
        for (int i = 0; i < c; i++) x[i] = frand(&seed);
        for (int i = 0; i < r; i++) {
            scale[i] = 0;
            for (int j = 0; j < c; j++) scale[i] += fabs((double)w[(size_t)i * c + j] * x[j]);
        }
        K(all[0], SM_GGML_F32).matvec(ref, w, x, r, c);
        K(all[0], SM_GGML_F16).matvec(refh, wh, x, r, c);
        for (int v = 1; v < n; v++) {
            K(all[v], SM_GGML_F32).matvec(got, w, x, r, c);
            for (int i = 0; i < r; i++) CHECKF(close_enough(got[i], ref[i], scale[i], 1e-5), "%s f32 %dx%d row %d", all[v]->name, r, c, i);
            K(all[v], SM_GGML_F16).matvec(got, wh, x, r, c);
            for (int i = 0; i < r; i++) CHECKF(close_enough(got[i], refh[i], scale[i], 1e-5), "%s f16 %dx%d row %d", all[v]->name, r, c, i);
            /* the 16-row layout's kernel on the whole groups (decode reads the copy) */
            sm_type_kernels kf = K(all[v], SM_GGML_F16);
            if (kf.matvec_x16 && r >= 16) {
                uint16_t *wi = malloc(2 * (size_t)r * c);
                sm_type(SM_GGML_F16)->interleave_x16(wi, wh, r, c);
                int groups = r / 16 * 16;
                for (int i = 0; i < groups; i++) got[i] = NAN;
                kf.matvec_x16(got, wi, x, NULL, groups, c);
                for (int i = 0; i < groups; i++)
                    CHECKF(close_enough(got[i], refh[i], scale[i], 1e-5), "%s f16 x16 %dx%d row %d: %g vs %g", all[v]->name,
                           r, c, i, (double)got[i], (double)refh[i]);
                free(wi);
            }
        }
#if defined(__x86_64__)
        /* the AVX-512 F16 kernel with and without the software prefetches,
         * whichever this host's vendor takes: each within reach of the
         * reference, and the two the same bits */
        if (sm_kernels_get("avx512")) {
            float *other = malloc(sizeof(float) * r);
            for (int pf = 0; pf < 2; pf++) {
                float *o = pf ? got : other;
                for (int i = 0; i < r; i++) o[i] = NAN;
                sm_matvec_f16_variant_avx512(pf, o, wh, x, r, c);
                for (int i = 0; i < r; i++)
                    CHECKF(close_enough(o[i], refh[i], scale[i], 1e-5), "avx512 f16 %s prefetch %dx%d row %d",
                           pf ? "with" : "without", r, c, i);
            }
            CHECKF(!memcmp(got, other, sizeof(float) * r), "avx512 f16 %dx%d: the prefetches change the sums", r, c);
            free(other);
        }
#endif
        free(w); free(x); free(wh); free(ref); free(refh); free(got); free(scale);
    }
}

TEST(simd_quantized_matvec_match_scalar) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8);
    int shapes[][2] = {{1, 32}, {3, 64}, {7, 96}, {16, 256}, {33, 768}, {5, 2048}, {9, 288}, {4, 32}};
    uint64_t seed = 5;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int r = shapes[k][0], c = shapes[k][1], nb = c / SM_QK;
        float *w = malloc(sizeof(float) * r * c), *x = malloc(sizeof(float) * c);
        sm_block_q8_0 *w8 = malloc(sizeof *w8 * (size_t)r * nb), *x8 = malloc(sizeof *x8 * nb), *x8b = malloc(sizeof *x8b * nb);
        sm_block_q4_0 *w4 = malloc(sizeof *w4 * (size_t)r * nb);
        float *ref = malloc(sizeof(float) * r), *got = malloc(sizeof(float) * r);
        for (int i = 0; i < r * c; i++) w[i] = frand(&seed) * 3.0f;
        for (int i = 0; i < c; i++) x[i] = frand(&seed);
        for (int i = 0; i < r; i++) {
            sm_quantize_q8_0(w8 + (size_t)i * nb, w + (size_t)i * c, c);
            sm_quantize_q4_0(w4 + (size_t)i * nb, w + (size_t)i * c, c);
        }
        K(all[0], SM_GGML_Q8_0).from_float(x8, x, c);

        for (int v = 1; v < n; v++) {
            /* activation quantization: same scales, codes within one step */
            K(all[v], SM_GGML_Q8_0).from_float(x8b, x, c);
            int off = 0;
            for (int b = 0; b < nb; b++) {
                off += x8b[b].d != x8[b].d;
                for (int i = 0; i < SM_QK; i++) off += abs(x8b[b].qs[i] - x8[b].qs[i]) > 1;
            }
            CHECKF(off == 0, "%s quantize_q8_0 differs in %d places", all[v]->name, off);
        }
        for (int pass = 0; pass < 2; pass++) {
            const void *wq = pass ? (const void *)w4 : (const void *)w8;
            K(all[0], SM_GGML_Q8_0).matvec(ref, w8, x8, r, c);
            if (pass) K(all[0], SM_GGML_Q4_0).matvec(ref, w4, x8, r, c);
            for (int v = 1; v < n; v++) {
                if (pass) K(all[v], SM_GGML_Q4_0).matvec(got, wq, x8, r, c);
                else K(all[v], SM_GGML_Q8_0).matvec(got, wq, x8, r, c);
                for (int i = 0; i < r; i++)
                    CHECKF(fabsf(got[i] - ref[i]) <= 1e-4f * (fabsf(ref[i]) + 1.0f), "%s %s %dx%d row %d: %g vs %g",
                           all[v]->name, pass ? "q4_0" : "q8_0", r, c, i, got[i], ref[i]);
            }
        }
        free(w); free(x); free(w8); free(x8); free(x8b); free(w4); free(ref); free(got);
    }
}

/* The interleaved 16-row layout: dequantizing a group gives exactly the
 * rows the GGUF layout gives, and each level's interleaved kernel (where it
 * has one) matches the scalar reference on the GGUF layout. */
TEST(interleaved_q4_0_q8_0_match_gguf_layout) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8), levels = 0;
    int shapes[][2] = {{16, 32}, {32, 64}, {48, 96}, {16, 768}, {80, 288}, {64, 2048}};
    uint64_t seed = 23;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int r = shapes[k][0], c = shapes[k][1], nb = c / SM_QK;
        float *w = malloc(sizeof(float) * r * c), *x = malloc(sizeof(float) * c);
        float *ref = malloc(sizeof(float) * r), *got = malloc(sizeof(float) * r);
        float *rowf = malloc(sizeof(float) * c * 16), *grpf = malloc(sizeof(float) * c * 16);
        sm_block_q8_0 *w8 = malloc(sizeof *w8 * (size_t)r * nb), *x8 = malloc(sizeof *x8 * nb);
        sm_block_q4_0 *w4 = malloc(sizeof *w4 * (size_t)r * nb);
        sm_block_q8_0x16 *i8 = malloc(sizeof *w8 * (size_t)r * nb);
        sm_block_q4_0x16 *i4 = malloc(sizeof *w4 * (size_t)r * nb);
        int32_t *xsum = malloc(sizeof(int32_t) * nb);
        for (int i = 0; i < r * c; i++) w[i] = frand(&seed) * 3.0f;
        for (int i = 0; i < c; i++) x[i] = frand(&seed);
        for (int i = 0; i < r; i++) {
            sm_quantize_q8_0(w8 + (size_t)i * nb, w + (size_t)i * c, c);
            sm_quantize_q4_0(w4 + (size_t)i * nb, w + (size_t)i * c, c);
        }
        /* extreme codes: -128 and -127 in Q8_0, 0 and 15 in Q4_0 */
        w8[0].qs[0] = -128; w8[0].qs[1] = 127; w4[0].qs[0] = 0xF0;
        sm_interleave_q8_0(i8, w8, r, c);
        sm_interleave_q4_0(i4, w4, r, c);
        int bad = 0;
        for (int g = 0; g < r / 16; g++) {
            sm_dequantize_q8_0x16(grpf, i8 + (size_t)g * nb, c);
            for (int i = 0; i < 16; i++) sm_dequantize_q8_0(rowf + (size_t)i * c, w8 + (size_t)(g * 16 + i) * nb, c);
            bad += memcmp(grpf, rowf, sizeof(float) * 16 * c) != 0;
            sm_dequantize_q4_0x16(grpf, i4 + (size_t)g * nb, c);
            for (int i = 0; i < 16; i++) sm_dequantize_q4_0(rowf + (size_t)i * c, w4 + (size_t)(g * 16 + i) * nb, c);
            bad += memcmp(grpf, rowf, sizeof(float) * 16 * c) != 0;
        }
        CHECKF(bad == 0, "%dx%d: %d groups dequantize differently", r, c, bad);
        /* every level's group dequantizer gives the same floats, bit for bit */
        for (int v = 0; v < n; v++) {
            bad = 0;
            for (int g = 0; g < r / 16; g++) {
                sm_dequantize_q8_0x16(rowf, i8 + (size_t)g * nb, c);
                K(all[v], SM_GGML_Q8_0).dequant_x16(grpf, i8 + (size_t)g * nb, c);
                bad += memcmp(grpf, rowf, sizeof(float) * 16 * c) != 0;
                if (K(all[v], SM_GGML_Q8_0).dequant_x16_cols) {   /* column after column: the same floats */
                    K(all[v], SM_GGML_Q8_0).dequant_x16_cols(grpf, i8 + (size_t)g * nb, c);
                    for (int col = 0; col < c; col++)
                        for (int i = 0; i < 16; i++) bad += memcmp(&grpf[col * 16 + i], &rowf[(size_t)i * c + col], sizeof(float)) != 0;
                }
                sm_dequantize_q4_0x16(rowf, i4 + (size_t)g * nb, c);
                K(all[v], SM_GGML_Q4_0).dequant_x16(grpf, i4 + (size_t)g * nb, c);
                bad += memcmp(grpf, rowf, sizeof(float) * 16 * c) != 0;
            }
            CHECKF(bad == 0, "%s %dx%d: %d groups dequantize differently", all[v]->name, r, c, bad);
        }
        sm_quantize_q8_0(x8, x, c);
        x8[0].qs[0] = -128;   /* the activation extreme too */
        sm_q8_0_block_sums(xsum, x8, nb);
        for (int v = 0; v < n; v++) {
            if (!K(all[v], SM_GGML_Q4_0).matvec_x16) continue;
            levels += k == 0;
            for (int pass = 0; pass < 2; pass++) {
                if (!K(all[v], pass ? SM_GGML_Q4_0 : SM_GGML_Q8_0).matvec_x16) continue;
                if (pass) { K(all[0], SM_GGML_Q4_0).matvec(ref, w4, x8, r, c); K(all[v], SM_GGML_Q4_0).matvec_x16(got, i4, x8, xsum, r, c); }
                else { K(all[0], SM_GGML_Q8_0).matvec(ref, w8, x8, r, c); K(all[v], SM_GGML_Q8_0).matvec_x16(got, i8, x8, xsum, r, c); }
                for (int i = 0; i < r; i++)
                    CHECKF(fabsf(got[i] - ref[i]) <= 1e-4f * (fabsf(ref[i]) + 1.0f), "%s %s x16 %dx%d row %d: %g vs %g",
                           all[v]->name, pass ? "q4_0" : "q8_0", r, c, i, got[i], ref[i]);
            }
        }
        free(w); free(x); free(ref); free(got); free(rowf); free(grpf); free(w8); free(x8); free(w4); free(i8); free(i4); free(xsum);
    }
    if (!levels) printf("     (no kernel level on this CPU reads the interleaved layout; only the layout was checked)\n");
}

/* The integer prefill products (batch_x16): against a batch of activation
 * rows, each token's results are bit for bit what the same level's
 * one-token interleaved kernel gives for it (so prefill and decode agree),
 * and within rounding of the scalar reference on the GGUF layout; with
 * accumulate they are added to what c held; columns past the rows and rows
 * past the batch are left alone. Token counts cover the 8-token tiles and
 * every remainder path (4, 2, 1). */
TEST(batch_x16_integer_products_match) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8), levels = 0;
    int shapes[][3] = {{16, 32, 1}, {32, 64, 3}, {48, 96, 8}, {16, 768, 13}, {80, 288, 15}, {64, 2048, 22}};
    uint64_t seed = 29;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int r = shapes[k][0], c = shapes[k][1], m = shapes[k][2], nb = c / SM_QK, ldc = r + 5;
        size_t xqs = sizeof(sm_block_q8_0) * (size_t)nb + 6, xss = (size_t)nb + 1;  /* strides past a row */
        float *w = malloc(sizeof(float) * r * c), *x = malloc(sizeof(float) * c * m);
        float *ref = malloc(sizeof(float) * r), *one = malloc(sizeof(float) * r);
        float *got = malloc(sizeof(float) * (size_t)ldc * (m + 1)), *before = malloc(sizeof(float) * (size_t)ldc * (m + 1));
        sm_block_q8_0 *w8 = malloc(sizeof *w8 * (size_t)r * nb);
        sm_block_q4_0 *w4 = malloc(sizeof *w4 * (size_t)r * nb);
        sm_block_q8_0x16 *i8 = malloc(sizeof *w8 * (size_t)r * nb);
        sm_block_q4_0x16 *i4 = malloc(sizeof *w4 * (size_t)r * nb);
        char *xq = calloc((size_t)m, xqs);
        int32_t *xsum = calloc((size_t)m * xss, sizeof(int32_t));
        for (int i = 0; i < r * c; i++) w[i] = frand(&seed) * 3.0f;
        for (int i = 0; i < c * m; i++) x[i] = frand(&seed);
        for (int i = 0; i < r; i++) {
            sm_quantize_q8_0(w8 + (size_t)i * nb, w + (size_t)i * c, c);
            sm_quantize_q4_0(w4 + (size_t)i * nb, w + (size_t)i * c, c);
        }
        w8[0].qs[0] = -128; w8[0].qs[1] = 127; w4[0].qs[0] = 0xF0;   /* extreme codes */
        sm_interleave_q8_0(i8, w8, r, c);
        sm_interleave_q4_0(i4, w4, r, c);
        for (int t = 0; t < m; t++) {
            sm_block_q8_0 *xt = (sm_block_q8_0 *)(xq + (size_t)t * xqs);
            sm_quantize_q8_0(xt, x + (size_t)t * c, c);
            xt[0].qs[0] = -128;
            sm_q8_0_block_sums(xsum + (size_t)t * xss, xt, nb);
        }
        for (int v = 0; v < n; v++) {
            for (int pass = 0; pass < 2; pass++) {
                uint32_t type = pass ? SM_GGML_Q4_0 : SM_GGML_Q8_0;
                sm_type_kernels kv = K(all[v], type), k0 = K(all[0], type);
                const void *wi = pass ? (const void *)i4 : (const void *)i8, *wg = pass ? (const void *)w4 : (const void *)w8;
                if (!kv.batch_x16) continue;
                levels += k == 0 && pass == 1;   /* Q4_0: every level with the products has it */
                for (int acc = 0; acc < 2; acc++) {
                    for (int i = 0; i < ldc * (m + 1); i++) before[i] = got[i] = frand(&seed);
                    kv.batch_x16(got, (size_t)ldc, wi, xq, xqs, xsum, xss, m, r, c, acc);
                    int exact = 0, near = 0, kept = 0;
                    for (int t = 0; t < m; t++) {
                        const void *xt = xq + (size_t)t * xqs;
                        kv.matvec_x16(one, wi, xt, xsum + (size_t)t * xss, r, c);
                        k0.matvec(ref, wg, xt, r, c);
                        for (int i = 0; i < r; i++) {
                            float g = got[(size_t)t * ldc + i], b = before[(size_t)t * ldc + i];
                            if (!acc) exact += memcmp(&g, &one[i], sizeof g) != 0;
                            near += !(fabsf(g - (acc ? b : 0.0f) - ref[i]) <= 1e-4f * (fabsf(ref[i]) + fabsf(b) + 1.0f));
                        }
                        for (int i = r; i < ldc; i++) kept += got[(size_t)t * ldc + i] != before[(size_t)t * ldc + i];
                    }
                    for (int i = 0; i < ldc; i++) kept += got[(size_t)m * ldc + i] != before[(size_t)m * ldc + i];
                    CHECKF(exact == 0 && near == 0 && kept == 0,
                           "%s %s batch_x16 %dx%d, %d tokens, accumulate %d: %d differ from the one-token kernel, "
                           "%d from the reference, %d outside the output changed",
                           all[v]->name, pass ? "q4_0" : "q8_0", r, c, m, acc, exact, near, kept);
                }
            }
        }
        free(w); free(x); free(ref); free(one); free(got); free(before); free(w8); free(w4); free(i8); free(i4);
        free(xq); free(xsum);
    }
    if (!levels) printf("     (no kernel level on this CPU has the integer batch products)\n");
}

/* Training's AdamW update: every level gives the scalar level's bits (the
 * same operations, none fused), on lengths around the vector width, with
 * and without weight decay; the gradients are cleared. The scalar level is
 * checked against the formula in float64 within float rounding. */
TEST(simd_adamw_matches_scalar_bit_for_bit) {
    const sm_kernel_table *all[8];
    int nl = sm_kernels_available(all, 8);
    size_t lens[] = {1, 15, 16, 17, 33, 1000, 4099};
    uint64_t seed = 41;
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        float *w0 = malloc(sizeof(float) * n), *g0 = malloc(sizeof(float) * n), *m0 = malloc(sizeof(float) * n);
        float *v0 = malloc(sizeof(float) * n), *w[2], *g[2], *m[2], *v[2];
        for (int k = 0; k < 2; k++) {
            w[k] = malloc(sizeof(float) * n); g[k] = malloc(sizeof(float) * n);
            m[k] = malloc(sizeof(float) * n); v[k] = malloc(sizeof(float) * n);
        }
        for (size_t i = 0; i < n; i++) {
            w0[i] = frand(&seed); g0[i] = frand(&seed) * 3.0f; m0[i] = frand(&seed) * 0.1f;
            v0[i] = fabsf(frand(&seed)) * 0.01f;
        }
        for (int wd = 0; wd < 2; wd++) {
            sm_adamw_step st = {0.7f, 0.9f, 0.95f, 1.0f - 0.9f * 0.9f * 0.9f, 1.0f - 0.95f * 0.95f * 0.95f, 3e-3f, 1e-8f,
                                wd ? 0.1f : 0.0f};
            for (int v_ = 0; v_ < nl; v_++) {
                int k = v_ == 0 ? 0 : 1;
                memcpy(w[k], w0, sizeof(float) * n); memcpy(g[k], g0, sizeof(float) * n);
                memcpy(m[k], m0, sizeof(float) * n); memcpy(v[k], v0, sizeof(float) * n);
                all[v_]->adamw(w[k], g[k], m[k], v[k], n, &st);
                if (v_ == 0) {
                    int far = 0;
                    for (size_t i = 0; i < n; i++) {
                        double gi = (double)g0[i] * st.scale, mi = 0.9 * m0[i] + 0.1 * gi, vi = 0.95 * v0[i] + 0.05 * gi * gi;
                        double want = w0[i] - st.lr * (mi / st.c1 / (sqrt(vi / st.c2) + st.eps) + st.weight_decay * w0[i]);
                        far += fabs(w[0][i] - want) > 1e-6 * (fabs(want) + 1e-3) + 1e-7 || g[0][i] != 0.0f;
                    }
                    CHECKF(far == 0, "scalar adamw, n %zu, decay %d: %d of the updates are not the formula's", n, wd, far);
                    continue;
                }
                int differ = memcmp(w[0], w[1], sizeof(float) * n) != 0 || memcmp(m[0], m[1], sizeof(float) * n) != 0 ||
                             memcmp(v[0], v[1], sizeof(float) * n) != 0 || memcmp(g[0], g[1], sizeof(float) * n) != 0;
                CHECKF(!differ, "%s adamw, n %zu, decay %d: not the scalar level's bits", all[v_]->name, n, wd);
            }
        }
        free(w0); free(g0); free(m0); free(v0);
        for (int k = 0; k < 2; k++) { free(w[k]); free(g[k]); free(m[k]); free(v[k]); }
    }
}

/* Training's norms (LayerNorm and RMSNorm, forward, input gradient, weight
 * and bias gradients): every level gives the scalar level's bits, on
 * lengths around the vector widths, with the bias or weight gradient
 * absent; the scalar level is checked against the formulas in float64. */
TEST(simd_norms_match_scalar_bit_for_bit) {
    const sm_kernel_table *all[8];
    int nl = sm_kernels_available(all, 8);
    int lens[] = {1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 288, 1027};
    uint64_t seed = 43;
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        int n = lens[li];
        size_t bytes = sizeof(float) * (size_t)n;
        float *x = malloc(bytes), *w = malloc(bytes), *b = malloc(bytes), *dy = malloc(bytes), *dx0 = malloc(bytes);
        float *out[2], *dx[2], *dw[2], *db[2];
        for (int k = 0; k < 2; k++) { out[k] = malloc(bytes); dx[k] = malloc(bytes); dw[k] = malloc(bytes); db[k] = malloc(bytes); }
        for (int i = 0; i < n; i++) {
            x[i] = frand(&seed) * 2.0f + 0.5f; w[i] = 1.0f + frand(&seed) * 0.5f; b[i] = frand(&seed) * 0.1f;
            dy[i] = frand(&seed); dx0[i] = frand(&seed) * 0.1f;
        }
        for (int ln = 0; ln < 2; ln++)
            for (int v_ = 0; v_ < nl; v_++) {
                int k = v_ == 0 ? 0 : 1;
                float mean[2] = {0, 0}, rstd = 0;
                all[v_]->norm_fwd(out[k], mean, &rstd, x, w, b, n, 1e-5f, ln);
                memcpy(dx[k], dx0, bytes);
                all[v_]->norm_bwd(dx[k], dy, x, w, mean[0], rstd, n, ln);
                for (int i = 0; i < n; i++) { dw[k][i] = db[k][i] = 0.25f; }
                all[v_]->norm_cols_bwd(dw[k], ln ? db[k] : NULL, dy, x, mean[0], rstd, n, ln);
                all[v_]->norm_cols_bwd(dw[k], ln ? db[k] : NULL, dy, x, mean[0], rstd, n, ln);   /* twice: adds */
                if (ln) all[v_]->norm_cols_bwd(NULL, db[k], dy, x, mean[0], rstd, n, ln);   /* the bias alone */
                CHECKF(mean[1] == 0, "%s norm_fwd wrote past mean", all[v_]->name);
                if (v_ == 0) {   /* the formulas in float64 */
                    double s = 0, sq = 0, sd = 0, sdn = 0, sdwx = 0;
                    for (int i = 0; i < n; i++) s += x[i];
                    double mu = ln ? s / n : 0;
                    for (int i = 0; i < n; i++) sq += (x[i] - mu) * (x[i] - mu);
                    double r = 1.0 / sqrt(sq / n + 1e-5);
                    int far = fabs(rstd - r) > 1e-6 * r || (ln && fabs(mean[0] - mu) > 1e-6 * (fabs(mu) + 1));
                    for (int i = 0; i < n; i++) {
                        double xh = (x[i] - mu) * r;
                        sd += (double)w[i] * dy[i]; sdn += (double)w[i] * dy[i] * xh; sdwx += (double)dy[i] * w[i] * x[i];
                    }
                    for (int i = 0; i < n; i++) {
                        double xh = (x[i] - mu) * r, y = ln ? xh * w[i] + b[i] : x[i] * r * w[i];
                        double g = ln ? (w[i] * dy[i] - sd / n - xh * sdn / n) * r : r * w[i] * dy[i] - x[i] * r * r * r / n * sdwx;
                        double gw = 0.25 + 2 * dy[i] * xh, gb = 0.25 + 3.0 * dy[i];
                        far += fabs(out[0][i] - y) > 1e-5 * (fabs(y) + 1) || fabs(dx[0][i] - dx0[i] - g) > 1e-5 * (fabs(g) + 1) ||
                               fabs(dw[0][i] - gw) > 1e-5 * (fabs(gw) + 1) || (ln && fabs(db[0][i] - gb) > 1e-5 * (fabs(gb) + 1));
                    }
                    CHECKF(far == 0, "scalar %s, n %d: %d values are not the formula's", ln ? "layernorm" : "rmsnorm", n, far);
                    continue;
                }
                int differ = memcmp(out[0], out[1], bytes) || memcmp(dx[0], dx[1], bytes) || memcmp(dw[0], dw[1], bytes) ||
                             (ln && memcmp(db[0], db[1], bytes));
                CHECKF(!differ, "%s %s, n %d: not the scalar level's bits", all[v_]->name, ln ? "layernorm" : "rmsnorm", n);
            }
        free(x); free(w); free(b); free(dy); free(dx0);
        for (int k = 0; k < 2; k++) { free(out[k]); free(dx[k]); free(dw[k]); free(db[k]); }
    }
}

TEST(simd_f16_to_f32_bit_exact) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8);
    uint16_t in[1000];
    float ref[1000], got[1000];
    /* every exponent, both signs, subnormals, infinities and NaNs */
    for (int i = 0; i < 1000; i++) in[i] = (uint16_t)(i * 65.537 + (i & 1) * 0x8000);
    in[3] = 0x7C00; in[4] = 0xFC00; in[5] = 0x0001; in[6] = 0x8000;
    int lens[] = {1, 7, 8, 15, 16, 17, 33, 1000};
    for (int v = 0; v < n; v++)
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            sm_f16_to_f32_row(ref, in, lens[k]);
            K(all[v], SM_GGML_F16).to_float(got, in, lens[k]);
            int bad = 0;
            for (int i = 0; i < lens[k]; i++)   /* NaN payloads may differ */
                bad += memcmp(ref + i, got + i, sizeof(float)) != 0 && !(isnan(ref[i]) && isnan(got[i]));
            CHECKF(bad == 0, "%s f16_to_f32 n=%d: %d values differ", all[v]->name, lens[k], bad);
        }
}

TEST(simd_f32_to_f16_bit_exact) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8);
    float in[1000];
    uint16_t ref[1000], got[1000];
    /* both signs, every F16 exponent and beyond (overflow to infinity, subnormals, underflow to
     * zero), ties that round to even either way, infinities and NaN */
    uint64_t r = 5;
    for (int i = 0; i < 1000; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        float mant = 1.0f + (float)(r >> 41) / (float)(1 << 23);
        in[i] = ldexpf(mant, (int)(i % 48) - 30) * (i & 1 ? -1.0f : 1.0f);
    }
    in[3] = INFINITY; in[4] = -INFINITY; in[5] = NAN; in[6] = 0.0f; in[7] = -0.0f;
    in[8] = 1.0f + ldexpf(1.0f, -11);             /* halfway to the next F16: stays (even) */
    in[9] = 1.0f + 3 * ldexpf(1.0f, -11);         /* halfway: up (to even) */
    in[10] = 65520.0f;                            /* rounds to infinity */
    in[11] = ldexpf(1.0f, -25);                   /* half the smallest subnormal: to zero */
    in[12] = ldexpf(1.5f, -25);                   /* past half: the smallest subnormal */
    in[13] = ldexpf(3.0f, -24);                   /* a subnormal tie: to even */
    int lens[] = {1, 7, 8, 15, 16, 17, 33, 1000};
    for (int v = 0; v < n; v++)
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            sm_f32_to_f16_row(ref, in, lens[k]);
            K(all[v], SM_GGML_F16).from_float(got, in, lens[k]);
            int bad = 0;
            for (int i = 0; i < lens[k]; i++) {
                int nan = (ref[i] & 0x7C00) == 0x7C00 && (ref[i] & 0x3FF) && (got[i] & 0x7C00) == 0x7C00 && (got[i] & 0x3FF);
                bad += ref[i] != got[i] && !nan;   /* NaN payloads may differ */
            }
            CHECKF(bad == 0, "%s f32_to_f16 n=%d: %d values differ", all[v]->name, lens[k], bad);
        }
}

/* K-quant integer dots: the reference (integers within a block, offsets
 * through the activation sums) against the plain float dot of the
 * dequantized row with the dequantized activations, and every level's
 * kernel against the reference. */
TEST(kquant_integer_dots_match) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8);
    int shapes[][2] = {{1, 256}, {3, 512}, {7, 768}, {16, 2048}};
    uint64_t seed = 31;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int r = shapes[k][0], c = shapes[k][1], nb = c / SM_QK_K;
        float *w = malloc(sizeof(float) * r * c), *x = malloc(sizeof(float) * c), *row = malloc(sizeof(float) * c);
        float *xd = malloc(sizeof(float) * c), *ref = malloc(sizeof(float) * r), *got = malloc(sizeof(float) * r);
        sm_block_q4_K *w4 = malloc(sizeof *w4 * (size_t)r * nb);
        sm_block_q6_K *w6 = malloc(sizeof *w6 * (size_t)r * nb);
        sm_block_q8_K *xq = malloc(sizeof *xq * nb);
        for (int i = 0; i < r * c; i++) w[i] = frand(&seed) * 2.0f + 0.3f;
        for (int i = 0; i < c; i++) x[i] = frand(&seed);
        x[5] = -1.5f;   /* a block whose extreme is negative */
        for (int i = 0; i < r; i++) {
            sm_quantize_q4_K(w4 + (size_t)i * nb, w + (size_t)i * c, c);
            sm_quantize_q6_K(w6 + (size_t)i * nb, w + (size_t)i * c, c);
        }
        sm_quantize_q8_K(xq, x, c);
        int badsum = 0;
        for (int b = 0; b < nb; b++)
            for (int g = 0; g < 16; g++) {
                int sum = 0;
                for (int i = 0; i < 16; i++) {
                    sum += xq[b].qs[16 * g + i];
                    xd[b * SM_QK_K + 16 * g + i] = xq[b].qs[16 * g + i] * xq[b].d;
                }
                badsum += sum != xq[b].bsums[g];
            }
        CHECKF(badsum == 0, "%d Q8_K block sums wrong", badsum);
        for (int pass = 0; pass < 2; pass++) {
            for (int i = 0; i < r; i++) {
                double plain = 0, mag = 0;
                if (pass) sm_dequantize_q6_K(row, w6 + (size_t)i * nb, c);
                else sm_dequantize_q4_K(row, w4 + (size_t)i * nb, c);
                for (int j = 0; j < c; j++) { plain += (double)row[j] * xd[j]; mag += fabs((double)row[j] * xd[j]); }
                ref[i] = pass ? sm_dot_q6_K_q8_K(w6 + (size_t)i * nb, xq, c) : sm_dot_q4_K_q8_K(w4 + (size_t)i * nb, xq, c);
                CHECKF(fabs(ref[i] - plain) <= 1e-5 * mag + 1e-5, "%s reference dot %dx%d row %d: %g vs %g",
                       pass ? "q6_K" : "q4_K", r, c, i, ref[i], plain);
            }
            for (int v = 0; v < n; v++) {
                if (pass) K(all[v], SM_GGML_Q6_K).matvec(got, w6, xq, r, c);
                else K(all[v], SM_GGML_Q4_K).matvec(got, w4, xq, r, c);
                for (int i = 0; i < r; i++)
                    CHECKF(fabsf(got[i] - ref[i]) <= 1e-4f * (fabsf(ref[i]) + 1.0f), "%s %s %dx%d row %d: %g vs %g",
                           all[v]->name, pass ? "q6_K" : "q4_K", r, c, i, got[i], ref[i]);
            }
        }
        free(w); free(x); free(row); free(xd); free(ref); free(got); free(w4); free(w6); free(xq);
    }
}

TEST(dequantize_hand_built_blocks) {
    /* Q8_0: d = 0.5, q = i - 16 */
    sm_block_q8_0 b8;
    b8.d = 0x3800;
    for (int i = 0; i < 32; i++) b8.qs[i] = (int8_t)(i - 16);
    float y[256];
    sm_dequantize_q8_0(y, &b8, 32);
    for (int i = 0; i < 32; i++) CHECK(y[i] == (i - 16) * 0.5f);
    /* Q4_0: d = 2, byte i holds element i (low nibble) and element i + 16 */
    sm_block_q4_0 b4;
    b4.d = 0x4000;
    for (int i = 0; i < 16; i++) b4.qs[i] = (uint8_t)(i | ((15 - i) << 4));
    sm_dequantize_q4_0(y, &b4, 32);
    for (int i = 0; i < 16; i++) CHECK(y[i] == (i - 8) * 2.0f && y[i + 16] == (7 - i) * 2.0f);
    /* Q4_K: d = 1, dmin = 0.5; sub-block j has scale sc[j] and min m[j]
     * (6 bits each, packed as the format describes); every code is j + 1 */
    uint8_t sc[8] = {1, 2, 3, 4, 40, 50, 60, 63}, mn[8] = {0, 1, 2, 3, 17, 33, 48, 62};
    sm_block_q4_K bk;
    bk.d = 0x3C00;
    bk.dmin = 0x3800;
    for (int j = 0; j < 4; j++) {
        bk.scales[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        bk.scales[j + 4] = (uint8_t)((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
        bk.scales[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
    }
    for (int chunk = 0; chunk < 4; chunk++)
        for (int l = 0; l < 32; l++) bk.qs[chunk * 32 + l] = (uint8_t)((2 * chunk + 1) | ((2 * chunk + 2) << 4));
    sm_dequantize_q4_K(y, &bk, 256);
    int bad = 0;
    for (int j = 0; j < 8; j++)
        for (int l = 0; l < 32; l++) bad += y[32 * j + l] != 1.0f * sc[j] * (j + 1) - 0.5f * mn[j];
    CHECKF(bad == 0, "%d Q4_K values differ", bad);
    /* Q6_K: d = 0.25, scale of sub-block j (16 values) = j - 8; value k of
     * the block has code c = k % 64, stored as 4 low bits in ql and 2 high
     * bits in qh at the positions the format gives */
    sm_block_q6_K b6;
    memset(&b6, 0, sizeof b6);
    b6.d = 0x3400;
    for (int j = 0; j < 16; j++) b6.scales[j] = (int8_t)(j - 8);
    for (int k = 0; k < 256; k++) {
        int c = k % 64, half = k / 128, idx = k % 128, quarter = idx / 32, l = idx % 32;
        uint8_t *ql = b6.ql + 64 * half, *qh = b6.qh + 32 * half;
        int byte = l + (quarter & 1) * 32, shift_lo = (quarter >> 1) * 4;
        ql[byte] |= (uint8_t)((c & 15) << shift_lo);
        qh[l] |= (uint8_t)((c >> 4) << (2 * quarter));
    }
    sm_dequantize_q6_K(y, &b6, 256);
    bad = 0;
    for (int k = 0; k < 256; k++) bad += y[k] != 0.25f * (k / 16 - 8) * (k % 64 - 32);
    CHECKF(bad == 0, "%d Q6_K values differ", bad);
}

/* Bounds from the step sizes: mean error about a quarter step of the
 * block range (Q8_0 1/254, Q4_0 1/16, Q4_K 1/15 of a sub-block, Q6_K 1/64). */
TEST(quantize_round_trip_error_is_bounded) {
    uint64_t seed = 9;
    float x[512], y[512];
    for (int i = 0; i < 512; i++) x[i] = frand(&seed) * (1 + i % 7);
    struct { const char *name; double tol; } kinds[] = {{"q8_0", 0.006}, {"q4_0", 0.1}, {"q4_K", 0.1}, {"q6_K", 0.03}};
    for (int k = 0; k < 4; k++) {
        union { sm_block_q8_0 a[16]; sm_block_q4_0 b[16]; sm_block_q4_K c[2]; sm_block_q6_K d[2]; } q;
        if (k == 0) { sm_quantize_q8_0(q.a, x, 512); sm_dequantize_q8_0(y, q.a, 512); }
        if (k == 1) { sm_quantize_q4_0(q.b, x, 512); sm_dequantize_q4_0(y, q.b, 512); }
        if (k == 2) { sm_quantize_q4_K(q.c, x, 512); sm_dequantize_q4_K(y, q.c, 512); }
        if (k == 3) { sm_quantize_q6_K(q.d, x, 512); sm_dequantize_q6_K(y, q.d, 512); }
        double err = 0, mag = 0;
        for (int i = 0; i < 512; i++) { err += fabs(x[i] - y[i]); mag += fabs(x[i]); }
        CHECKF(err / mag < kinds[k].tol, "%s: mean relative error %.4f", kinds[k].name, err / mag);
    }
}

TEST(kernel_selection_by_name) {
    CHECK(sm_kernels_get("scalar") && !strcmp(sm_kernels_get("scalar")->name, "scalar"));
    CHECK(sm_kernels_get("no-such-level") == NULL);
    CHECK(sm_kernels_get(NULL) != NULL);
}

/* An F16 or BF16 cache's row kernels: at every level, dot_f16 / axpy_f16
 * and dot_bf16 / axpy_bf16 give the bits the level's dot and axpy give on
 * the row widened to F32. */
TEST(simd_f16_row_dot_and_axpy_are_the_widened_rows) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8);
    uint64_t seed = 9;
    int lens[] = {1, 7, 8, 16, 33, 100, 1027};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        int len = lens[k];
        float *a = malloc(sizeof(float) * len), *w = malloc(sizeof(float) * len);
        float *r = malloc(sizeof(float) * len), *g = malloc(sizeof(float) * len);
        uint16_t *h = malloc(sizeof(uint16_t) * len);
        for (int bf = 0; bf < 2; bf++) {
            for (int i = 0; i < len; i++) {
                a[i] = frand(&seed) * 4.0f;
                float x = frand(&seed) * 3.0f;
                if (bf) sm_f32_to_bf16_row(&h[i], &x, 1);
                else h[i] = sm_fp32_to_fp16(x);
                w[i] = bf ? sm_bf16_to_fp32(h[i]) : sm_fp16_to_fp32(h[i]);
            }
            for (int v = 0; v < n; v++) {
                const sm_kernel_table *t = all[v];
                float want = t->dot(a, w, len), got = bf ? t->dot_bf16(a, h, len) : t->dot_f16(a, h, len);
                CHECKF(!memcmp(&want, &got, sizeof want), "%s dot_%s len %d: %.9g, widened %.9g", t->name,
                       bf ? "bf16" : "f16", len, got, want);
                for (int i = 0; i < len; i++) r[i] = g[i] = 0.5f * a[i];
                t->axpy(r, 0.37f, w, len);
                if (bf) t->axpy_bf16(g, 0.37f, h, len);
                else t->axpy_f16(g, 0.37f, h, len);
                CHECKF(!memcmp(r, g, sizeof(float) * len), "%s axpy_%s len %d", t->name, bf ? "bf16" : "f16", len);
            }
        }
        free(a); free(w); free(r); free(g); free(h);
    }
}

/* The same for a Q8_0 row (a Q8_0 KV cache's): dot_q8_0 and axpy_q8_0 give
 * dot's and axpy's bits on the row dequantized, at every level. */
TEST(simd_q8_0_row_dot_and_axpy_are_the_dequantized_rows) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8);
    uint64_t seed = 13;
    int lens[] = {32, 64, 96, 1024};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        int len = lens[k];
        float *a = malloc(sizeof(float) * len), *x = malloc(sizeof(float) * len), *w = malloc(sizeof(float) * len);
        float *r = malloc(sizeof(float) * len), *g = malloc(sizeof(float) * len);
        sm_block_q8_0 *q = malloc(sizeof(sm_block_q8_0) * (len / SM_QK));
        REQUIRE(a && x && w && r && g && q);
        for (int i = 0; i < len; i++) {
            a[i] = frand(&seed) * 4.0f;
            x[i] = frand(&seed) * (1.0f + (float)(i / SM_QK));   /* each block its own scale */
        }
        sm_quantize_q8_0(q, x, len);
        sm_dequantize_q8_0(w, q, len);
        for (int v = 0; v < n; v++) {
            const sm_kernel_table *t = all[v];
            float want = t->dot(a, w, len), got = t->dot_q8_0(a, q, len);
            CHECKF(!memcmp(&want, &got, sizeof want), "%s dot_q8_0 len %d: %.9g, dequantized %.9g", t->name, len, got,
                   want);
            for (int i = 0; i < len; i++) r[i] = g[i] = 0.5f * a[i];
            t->axpy(r, 0.37f, w, len);
            t->axpy_q8_0(g, 0.37f, q, len);
            CHECKF(!memcmp(r, g, sizeof(float) * len), "%s axpy_q8_0 len %d", t->name, len);
        }
        free(a); free(x); free(w); free(r); free(g); free(q);
    }
}

TEST(simd_elementwise_and_attention_match_scalar) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8);
    uint64_t seed = 3;
    int lens[] = {1, 7, 16, 33, 100, 1027};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        int len = lens[k];
        float *a = malloc(sizeof(float) * len), *b = malloc(sizeof(float) * len);
        float *r = malloc(sizeof(float) * len), *g = malloc(sizeof(float) * len);
        for (int i = 0; i < len; i++) { a[i] = frand(&seed) * 6.0f; b[i] = frand(&seed) * 3.0f; }
        for (int v = 1; v < n; v++) {
            const sm_kernel_table *t = all[v], *s = all[0];
            int bad = 0;
            memcpy(r, a, sizeof(float) * len); s->gelu(r, len);
            memcpy(g, a, sizeof(float) * len); t->gelu(g, len);
            for (int i = 0; i < len; i++) bad += fabsf(r[i] - g[i]) > 2e-6f * (1 + fabsf(r[i]));
            CHECKF(bad == 0, "%s gelu len %d", t->name, len);
            s->swiglu(r, a, b, len);
            t->swiglu(g, a, b, len);
            for (int i = 0; i < len; i++) bad += fabsf(r[i] - g[i]) > 2e-6f * (1 + fabsf(r[i]));
            CHECKF(bad == 0, "%s swiglu len %d", t->name, len);
            {   /* the backward: both gradients are set, whatever the buffers held (different garbage here) */
                float *rg = malloc(sizeof(float) * len), *gg = malloc(sizeof(float) * len);
                for (int i = 0; i < len; i++) { r[i] = 0.25f * b[i]; g[i] = 7.0f; rg[i] = -0.5f * a[i]; gg[i] = NAN; }
                s->swiglu_grad(r, rg, a, b, b, len);   /* dh = b */
                t->swiglu_grad(g, gg, a, b, b, len);
                for (int i = 0; i < len; i++)
                    bad += fabsf(r[i] - g[i]) > 4e-6f * (1 + fabsf(r[i])) || fabsf(rg[i] - gg[i]) > 4e-6f * (1 + fabsf(rg[i]));
                CHECKF(bad == 0, "%s swiglu_grad len %d", t->name, len);
                for (int i = 0; i < len; i++) { r[i] = 0.25f * b[i]; g[i] = NAN; }
                s->gelu_grad(r, a, b, len);   /* dout = b */
                t->gelu_grad(g, a, b, len);
                /* gelu' to 4e-6 (absolute: the vector kernels' tanh u = 1 - 2 / (1 + e^(2u)) is -1 exactly
                 * below u = -8.3, x = -4.97, where gelu' is still -2e-6), times dout */
                for (int i = 0; i < len; i++) bad += fabsf(r[i] - g[i]) > 4e-6f * (fabsf(r[i]) + fabsf(b[i]));
                CHECKF(bad == 0, "%s gelu_grad len %d", t->name, len);
                free(rg); free(gg);
            }
            memcpy(r, a, sizeof(float) * len); s->softmax(r, len);
            memcpy(g, a, sizeof(float) * len); t->softmax(g, len);
            for (int i = 0; i < len; i++) bad += fabsf(r[i] - g[i]) > 2e-6f * (r[i] + 1e-6f) + 1e-9f;
            CHECKF(bad == 0, "%s softmax len %d", t->name, len);
            double scale = 0;
            for (int i = 0; i < len; i++) scale += fabs((double)a[i] * b[i]);
            CHECKF(fabs(s->dot(a, b, len) - t->dot(a, b, len)) <= 1e-5 * scale + 1e-6, "%s dot len %d", t->name, len);
            memcpy(r, b, sizeof(float) * len); s->axpy(r, 0.37f, a, len);
            memcpy(g, b, sizeof(float) * len); t->axpy(g, 0.37f, a, len);
            for (int i = 0; i < len; i++) bad += fabsf(r[i] - g[i]) > 1e-6f * (1 + fabsf(r[i]));
            CHECKF(bad == 0, "%s axpy len %d", t->name, len);
            /* attention's row kernels: x *= scale and the largest (the same products: exact), and softmax's
             * backward against float64 (p a softmax row, ds = b) */
            memcpy(r, a, sizeof(float) * len);
            memcpy(g, a, sizeof(float) * len);
            float mr = s->scale_max(r, 0.17f, len), mg = t->scale_max(g, 0.17f, len), want = -INFINITY;
            for (int i = 0; i < len; i++) want = fmaxf(want, a[i] * 0.17f);
            CHECKF(mr == want && mg == want && !memcmp(r, g, sizeof(float) * len), "%s scale_max len %d", t->name, len);
            float *p = malloc(sizeof(float) * len);
            memcpy(p, a, sizeof(float) * len);
            s->softmax(p, len);
            double dot = 0;
            for (int i = 0; i < len; i++) dot += (double)p[i] * b[i];
            for (int l = 0; l < 2; l++) {
                float *o = l ? g : r;
                memcpy(o, b, sizeof(float) * len);
                (l ? t : s)->softmax_bwd(o, p, 0.17f, len);
                for (int i = 0; i < len; i++) {
                    double e = p[i] * (b[i] - dot) * 0.17;
                    bad += fabs(o[i] - e) > 2e-6 * (fabs(p[i]) * (fabs(b[i]) + fabs(dot)) * 0.17) + 1e-12;
                }
            }
            CHECKF(bad == 0, "%s softmax_bwd len %d", t->name, len);
            free(p);
        }
        free(a); free(b); free(r); free(g);
    }
}

/* Training's RoPE rotation (rope_pairs) at every level: the scalar level's
 * bits, both directions (sign 1 and -1), every tail length; and the scalar
 * level against a rotation computed in double (a pair rotated by an angle
 * keeps its length; rotated back it returns). */
TEST(simd_rope_pairs_match_scalar) {
    const sm_kernel_table *all[8];
    int nk = sm_kernels_available(all, 8);
    uint64_t seed = 11;
    enum { MAX = 45 };
    float x[2 * MAX], c[MAX], s[MAX], r[2 * MAX], g[2 * MAX];
    for (int i = 0; i < MAX; i++) {
        double th = frand(&seed) * 6.3;
        c[i] = (float)cos(th);
        s[i] = (float)sin(th);
    }
    for (int i = 0; i < 2 * MAX; i++) x[i] = frand(&seed) * 4.0f;
    for (int n = 0; n <= MAX; n++)
        for (int sg = -1; sg <= 1; sg += 2) {
            memcpy(r, x, sizeof x);
            all[0]->rope_pairs(r, c, s, (float)sg, n);
            double worst = 0;
            for (int i = 0; i < n; i++) {
                double x0 = x[2 * i], x1 = x[2 * i + 1], ss = sg * (double)s[i];
                worst = fmax(worst, fabs(r[2 * i] - (x0 * c[i] - x1 * ss)) + fabs(r[2 * i + 1] - (x0 * ss + x1 * c[i])));
            }
            CHECKF(worst < 1e-5, "scalar rope_pairs n %d sign %d: off by %g from the rotation in double", n, sg, worst);
            CHECKF(!memcmp(r + 2 * n, x + 2 * n, sizeof(float) * 2 * (MAX - n)), "scalar rope_pairs wrote past n %d", n);
            for (int v = 1; v < nk; v++) {
                memcpy(g, x, sizeof x);
                all[v]->rope_pairs(g, c, s, (float)sg, n);
                CHECKF(!memcmp(r, g, sizeof x), "%s rope_pairs n %d sign %d differs from the scalar level", all[v]->name,
                       n, sg);
            }
        }
    /* rotated forward then back: the pairs come back to within rounding */
    for (int v = 0; v < nk; v++) {
        memcpy(g, x, sizeof x);
        all[v]->rope_pairs(g, c, s, 1.0f, MAX);
        all[v]->rope_pairs(g, c, s, -1.0f, MAX);
        double worst = 0;
        for (int i = 0; i < 2 * MAX; i++) worst = fmax(worst, fabs(g[i] - x[i]));
        CHECKF(worst < 1e-5, "%s rope_pairs there and back: off by %g", all[v]->name, worst);
    }
}

/* The strided product against a double-precision sum: both operands by
 * rows and by columns, shapes with tails in every dimension (tokens not a
 * multiple of the panel, rows not of the block, columns not of 16 or of the
 * column block), accumulating or not, and c's padding left alone. */
TEST(simd_gemm_strided_matches_reference) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8), levels = 0;
    int shapes[][3] = {{1, 1, 1}, {12, 32, 16}, {13, 33, 17}, {25, 70, 300}, {128, 32, 128}, {37, 96, 513}, {7, 5, 3},
                       {9, 20, 40}, {3, 17, 65}, {10, 33, 24},   /* last panels of 3 and 4 tokens (AVX2's small tile) */
                       {16, 24, 33},   /* a last panel of 4 tokens (AVX-512's 4-token tile) */
                       {1100, 40, 290}};   /* the last: runs of panels (a batch slice over 1 MiB) */
    uint64_t seed = 33;
    for (int v = 0; v < n; v++) {
        const sm_kernel_table *kt = all[v];
        if (!kt->gemm) continue;
        levels++;
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int layout = 0; layout < 4; layout++)
                for (int acc = 0; acc < 2; acc++) {
                    int m = shapes[si][0], rows = shapes[si][1], k = shapes[si][2], ldc = rows + 5;
                    int ta = layout & 1, tw = layout >> 1;   /* stored by columns */
                    size_t a_rs = ta ? 1 : (size_t)k + 3, a_cs = ta ? (size_t)m + 2 : 1;
                    size_t w_rs = tw ? 1 : (size_t)k + 1, w_cs = tw ? (size_t)rows + 4 : 1;
                    size_t asz = ta ? a_cs * k : a_rs * m, wsz = tw ? w_cs * k : w_rs * rows;
                    float *a = malloc(sizeof(float) * asz), *w = malloc(sizeof(float) * wsz);
                    float *c = malloc(sizeof(float) * (size_t)m * ldc), *c0 = malloc(sizeof(float) * (size_t)m * ldc);
                    int mp = (m + kt->gemm_mr - 1) / kt->gemm_mr;
                    float *packed = malloc(sizeof(float) * (size_t)mp * kt->gemm_mr * k);
                    for (size_t i = 0; i < asz; i++) a[i] = frand(&seed);
                    for (size_t i = 0; i < wsz; i++) w[i] = frand(&seed);
                    for (int i = 0; i < m * ldc; i++) c0[i] = c[i] = frand(&seed);
                    /* packed in two calls, as two threads would */
                    kt->gemm_pack(packed, a, a_rs, a_cs, m, k, 0, mp / 2);
                    kt->gemm_pack(packed, a, a_rs, a_cs, m, k, mp / 2, mp);
                    kt->gemm(c, ldc, packed, m, w, w_rs, w_cs, rows, k, acc);
                    int bad = 0;
                    for (int t = 0; t < m; t++)
                        for (int r = 0; r < ldc; r++) {
                            float got = c[(size_t)t * ldc + r];
                            if (r >= rows) { bad += got != c0[(size_t)t * ldc + r]; continue; }
                            double ref = acc ? c0[(size_t)t * ldc + r] : 0.0, mag = fabs(ref);
                            for (int x = 0; x < k; x++) {
                                double p = (double)a[t * a_rs + x * a_cs] * w[r * w_rs + x * w_cs];
                                ref += p; mag += fabs(p);
                            }
                            bad += fabs(got - ref) > 1e-6 * mag + 1e-7;
                        }
                    CHECKF(bad == 0, "%s gemm %dx%dx%d layout %d acc %d: %d bad", kt->name, m, rows, k, layout, acc, bad);
                    free(a); free(w); free(c); free(c0); free(packed);
                }
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) CHECKF(levels > 0, "the AVX-512 level has no strided product");
#endif
}

/* The strided product reading the batch in place (gemm_strided: rows
 * straight into the tile, a last partial panel packed; columns packed a
 * run at a time) gives the packed product's bits: every layout, with runs
 * of panels (a slice over the run's bytes) and several column blocks (with
 * a partial last panel too),
 * accumulating or not, results streamed past the caches (aligned c) or not
 * (unaligned c: the flag is then ignored), and called per run of tokens as
 * the threads split them; c's padding is left alone. */
TEST(simd_gemm_in_place_equals_packed) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8), levels = 0;
    int shapes[][3] = {{1100, 40, 290}, {60, 33, 1100}, {64, 40, 1100}, {37, 70, 64}, {5, 3, 7}, {300, 16, 800}};
    uint64_t seed = 41;
    for (int v = 0; v < n; v++) {
        const sm_kernel_table *kt = all[v];
        if (!kt->gemm_strided) continue;
        levels++;
        float *scratch = malloc(sizeof(float) * kt->gemm_scratch);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int layout = 0; layout < 4; layout++)
                for (int mode = 0; mode < 4; mode++) {   /* 0, accumulate, stream aligned, stream unaligned */
                    int m = shapes[si][0], rows = shapes[si][1], k = shapes[si][2], ldc = (rows + 15) / 16 * 16 + 16;
                    int flags = mode == 1 ? SM_GEMM_ACCUMULATE : mode >= 2 ? SM_GEMM_STREAM : 0, off = mode == 3;
                    int ta = layout & 1, tw = layout >> 1;
                    size_t a_rs = ta ? 1 : (size_t)k + 3, a_cs = ta ? (size_t)m + 2 : 1;
                    size_t w_rs = tw ? 1 : (size_t)k + 1, w_cs = tw ? (size_t)rows + 4 : 1;
                    size_t asz = ta ? a_cs * k : a_rs * m, wsz = tw ? w_cs * k : w_rs * rows, csz = (size_t)m * ldc + 16;
                    float *a = malloc(sizeof(float) * asz), *w = malloc(sizeof(float) * wsz);
                    float *cb1 = aligned_alloc(64, sizeof(float) * csz), *cb2 = aligned_alloc(64, sizeof(float) * csz);
                    float *c1 = cb1 + off, *c2 = cb2 + off;
                    int mp = (m + kt->gemm_mr - 1) / kt->gemm_mr;
                    float *packed = malloc(sizeof(float) * (size_t)mp * kt->gemm_mr * k);
                    for (size_t i = 0; i < asz; i++) a[i] = frand(&seed);
                    for (size_t i = 0; i < wsz; i++) w[i] = frand(&seed);
                    for (size_t i = 0; i < csz; i++) cb1[i] = cb2[i] = frand(&seed);
                    kt->gemm_pack(packed, a, a_rs, a_cs, m, k, 0, mp);
                    kt->gemm(c1, ldc, packed, m, w, w_rs, w_cs, rows, k, flags & SM_GEMM_ACCUMULATE);
                    /* in two calls, the tokens split at a whole panel, as two threads would */
                    int t0 = mp / 2 * kt->gemm_mr;
                    kt->gemm_strided(c2, ldc, a, a_rs, a_cs, t0, w, w_rs, w_cs, rows, k, flags, scratch);
                    kt->gemm_strided(c2 + (size_t)t0 * ldc, ldc, a + (size_t)t0 * a_rs, a_rs, a_cs, m - t0, w, w_rs,
                                     w_cs, rows, k, flags, scratch);
                    CHECKF(memcmp(cb1, cb2, sizeof(float) * csz) == 0, "%s gemm_strided %dx%dx%d layout %d mode %d differs",
                           kt->name, m, rows, k, layout, mode);
                    free(a); free(w); free(cb1); free(cb2); free(packed);
                }
        free(scratch);
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) CHECKF(levels > 0, "no level reads the batch in place");
#endif
}

/* The strided product on F16 weights (gemm_f16), and on BF16 ones
 * (gemm_bf16), and on the 16-row interleaved copies (gemm_f16x16,
 * gemm_x16) gives, bit for bit, what the level's gemm gives on the same
 * weights converted to F32, for shapes with tails in every dimension and
 * both accumulate modes. */
TEST(simd_gemm_f16_equals_gemm_on_converted_weights) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8), levels = 0;
    /* a last panel of 1, 2 and 3 tokens against an even and an odd number of 16-row groups (the
     * interleaved copy's tails take two groups at a time) */
    int shapes[][3] = {{1, 1, 1},       {13, 33, 17},  {25, 70, 300}, {37, 96, 513}, {128, 32, 128},
                       {7, 5, 3},       {1100, 40, 290}, {27, 48, 400}, {9, 80, 20},  {14, 112, 64}};
    uint64_t seed = 35;
    for (int v = 0; v < n; v++) {
        const sm_kernel_table *kt = all[v];
        if (!kt->gemm_f16) continue;
        levels++;
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int acc = 0; acc < 2; acc++) {
                int m = shapes[si][0], rows = shapes[si][1], k = shapes[si][2], ldc = rows + 3;
                size_t rs = (size_t)k + 5;
                float *a = malloc(sizeof(float) * (size_t)m * k), *wf = malloc(sizeof(float) * rows * rs);
                uint16_t *wh = malloc(sizeof(uint16_t) * rows * rs);
                float *c1 = malloc(sizeof(float) * (size_t)m * ldc), *c2 = malloc(sizeof(float) * (size_t)m * ldc);
                int mp = (m + kt->gemm_mr - 1) / kt->gemm_mr;
                float *packed = malloc(sizeof(float) * (size_t)mp * kt->gemm_mr * k);
                for (size_t i = 0; i < (size_t)m * k; i++) a[i] = frand(&seed);
                for (size_t i = 0; i < rows * rs; i++) {
                    wh[i] = sm_fp32_to_fp16(frand(&seed));
                    wf[i] = sm_fp16_to_fp32(wh[i]);
                }
                for (int i = 0; i < m * ldc; i++) c1[i] = c2[i] = frand(&seed);
                kt->gemm_pack(packed, a, (size_t)k, 1, m, k, 0, mp);
                kt->gemm(c1, ldc, packed, m, wf, rs, 1, rows, k, acc);
                kt->gemm_f16(c2, ldc, packed, m, wh, rs, rows, k, acc);
                CHECKF(memcmp(c1, c2, sizeof(float) * (size_t)m * ldc) == 0, "%s gemm_f16 %dx%dx%d acc %d differs",
                       kt->name, m, rows, k, acc);
                /* BF16 weights (gemm_bf16, where the level has it): the same bits as gemm on them widened */
                if (kt->gemm_bf16) {
                    for (size_t i = 0; i < rows * rs; i++) {
                        float f = frand(&seed) * 3.0f;
                        sm_f32_to_bf16_row(&wh[i], &f, 1);
                        wf[i] = sm_bf16_to_fp32(wh[i]);
                    }
                    for (int i = 0; i < m * ldc; i++) c1[i] = c2[i] = frand(&seed);
                    kt->gemm(c1, ldc, packed, m, wf, rs, 1, rows, k, acc);
#if defined(__x86_64__)
                    /* the AVX-512 level's widening variant (its dot variant: the next test) */
                    if (kt->gemm_bf16 == sm_gemm_bf16_avx512)
                        sm_gemm_bf16_variant_avx512(0, c2, ldc, packed, m, wh, rs, rows, k, acc);
                    else
#endif
                        kt->gemm_bf16(c2, ldc, packed, m, wh, rs, rows, k, acc);
                    CHECKF(memcmp(c1, c2, sizeof(float) * (size_t)m * ldc) == 0, "%s gemm_bf16 %dx%dx%d acc %d differs",
                           kt->name, m, rows, k, acc);
                    for (size_t i = 0; i < rows * rs; i++) {   /* back to F16 for the interleaved checks */
                        wh[i] = sm_fp32_to_fp16(frand(&seed));
                        wf[i] = sm_fp16_to_fp32(wh[i]);
                    }
                }
                /* on the interleaved copy: its whole 16-row groups, the same bits */
                int r16 = rows / 16 * 16;
                if (kt->gemm_f16x16 && r16) {
                    uint16_t *wd = malloc(sizeof(uint16_t) * r16 * k), *wi = malloc(sizeof(uint16_t) * r16 * k);
                    for (int r = 0; r < r16; r++) memcpy(wd + (size_t)r * k, wh + (size_t)r * rs, sizeof(uint16_t) * k);
                    sm_interleave_f16(wi, wd, r16, k);
                    for (int i = 0; i < m * ldc; i++) c2[i] = c1[i] = frand(&seed);
                    kt->gemm(c1, ldc, packed, m, wf, rs, 1, r16, k, acc);
                    kt->gemm_f16x16(c2, ldc, packed, m, wi, r16, k, acc);
                    CHECKF(memcmp(c1, c2, sizeof(float) * (size_t)m * ldc) == 0, "%s gemm_f16x16 %dx%dx%d acc %d differs",
                           kt->name, m, r16, k, acc);
                    /* F32 16 rows per column (a dequant_x16_cols block): the same bits too */
                    if (kt->gemm_x16) {
                        float *wc = malloc(sizeof(float) * r16 * k);
                        for (int r = 0; r < r16; r++)
                            for (int x = 0; x < k; x++) wc[(size_t)(r / 16) * 16 * k + (size_t)x * 16 + r % 16] = wf[(size_t)r * rs + x];
                        for (int i = 0; i < m * ldc; i++) c2[i] = c1[i] = frand(&seed);
                        kt->gemm(c1, ldc, packed, m, wf, rs, 1, r16, k, acc);
                        kt->gemm_x16(c2, ldc, packed, m, wc, r16, k, acc);
                        CHECKF(memcmp(c1, c2, sizeof(float) * (size_t)m * ldc) == 0, "%s gemm_x16 %dx%dx%d acc %d differs",
                               kt->name, m, r16, k, acc);
                        free(wc);
                    }
                    free(wd); free(wi);
                }
                free(a); free(wf); free(wh); free(c1); free(c2); free(packed);
            }
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        CHECKF(levels > 0, "the AVX2 level has no F16 strided product");
#endif
}

/* gemm_bf16's dot variant (the AVX-512 level on a CPU with AVX512_BF16,
 * which AMD's hosts take for prompts): each sum within 1e-5 of its
 * magnitude of the float64 sum over the batch rounded to nearest-even BF16,
 * across column blocks (k past SM_GEMM_KC), runs of panels (m past a run),
 * odd k (a last pair of one column), row tails and accumulation; and it
 * does round: some sums leave the unrounded batch's by more than that. */
TEST(simd_gemm_bf16_dot_sums_the_batch_rounded_to_bf16) {
#if defined(__x86_64__)
    const sm_kernel_table *kt = sm_kernels_get("avx512");
#if !defined(SM_EMULATE_AVX512)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16")) kt = NULL;
#endif
    if (!kt) return;   /* no AVX-512 BF16 here: the variant cannot run */
    /* last panels of 1, 4, 7 and 8 tokens: every tile (4, 8 and 12 tokens) */
    int shapes[][3] = {{1, 1, 1},   {13, 33, 17}, {25, 70, 300}, {37, 96, 513}, {200, 40, 2100},
                       {7, 5, 3},   {128, 32, 64}, {16, 40, 70},  {4, 17, 9}};
    uint64_t seed = 41;
    int rounds = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int acc = 0; acc < 2; acc++) {
            int m = shapes[si][0], rows = shapes[si][1], k = shapes[si][2], ldc = rows + 3;
            size_t rs = (size_t)k + 5;
            int mp = (m + kt->gemm_mr - 1) / kt->gemm_mr;
            float *a = malloc(sizeof(float) * (size_t)m * k), *ar = malloc(sizeof(float) * (size_t)m * k);
            float *c = malloc(sizeof(float) * (size_t)m * ldc), *c0 = malloc(sizeof(float) * (size_t)m * ldc);
            float *packed = malloc(sizeof(float) * (size_t)mp * kt->gemm_mr * k);
            uint16_t *wh = malloc(sizeof(uint16_t) * rows * rs), *ah = malloc(sizeof(uint16_t) * (size_t)m * k);
            for (size_t i = 0; i < (size_t)m * k; i++) a[i] = frand(&seed) * 2.0f;
            sm_f32_to_bf16_row(ah, a, m * k);
            sm_bf16_to_f32_row(ar, ah, m * k);
            for (size_t i = 0; i < rows * rs; i++) {
                float f = frand(&seed);
                sm_f32_to_bf16_row(&wh[i], &f, 1);
            }
            for (int i = 0; i < m * ldc; i++) c[i] = c0[i] = frand(&seed);
            kt->gemm_pack(packed, a, (size_t)k, 1, m, k, 0, mp);
            sm_gemm_bf16_variant_avx512(1, c, ldc, packed, m, wh, rs, rows, k, acc);
            for (int t = 0; t < m; t++)
                for (int r = 0; r < rows; r++) {
                    double want = acc ? c0[(size_t)t * ldc + r] : 0.0, plain = want, mag = fabs(want);
                    for (int x = 0; x < k; x++) {
                        double wv = sm_bf16_to_fp32(wh[(size_t)r * rs + x]);
                        want += (double)ar[(size_t)t * k + x] * wv;
                        plain += (double)a[(size_t)t * k + x] * wv;
                        mag += fabs((double)a[(size_t)t * k + x] * wv);
                    }
                    double got = c[(size_t)t * ldc + r];
                    CHECKF(fabs(got - want) <= 1e-5 * mag + 1e-30, "gemm_bf16 dot %dx%dx%d acc %d [%d][%d]: %.9g vs %.9g", m,
                           rows, k, acc, t, r, got, want);
                    rounds += fabs(got - plain) > 1e-5 * mag;
                }
            /* past the rows asked for, c is untouched */
            for (int t = 0; t < m; t++)
                for (int r = rows; r < ldc; r++)
                    CHECKF(c[(size_t)t * ldc + r] == c0[(size_t)t * ldc + r], "gemm_bf16 dot wrote past row %d", rows);
            free(a); free(ar); free(c); free(c0); free(packed); free(wh); free(ah);
        }
    CHECKF(rounds > 0, "gemm_bf16's dot variant gave the unrounded batch's sums");
#endif
}

/* Mixed precision's product (gemm_mixed, training with BF16 products):
 * each sum within 1e-5 of its magnitude of the float64 sum over both
 * operands rounded to nearest-even BF16, for every layout of the batch and
 * the weights (rows or columns), the batch read in place (split at a panel,
 * as two threads would) or packed, accumulating, streamed or not, with
 * several column blocks, runs of panels, odd k and row tails; it agrees
 * with itself read in place and packed, bit for bit; and it rounds both
 * operands: some sums leave those with either operand unrounded. */
TEST(simd_gemm_mixed_sums_both_operands_rounded_to_bf16) {
    const sm_kernel_table *all[8];
    int nk = sm_kernels_available(all, 8), levels = 0;
    int shapes[][3] = {{1, 1, 1}, {13, 33, 17}, {37, 70, 513}, {200, 40, 2100}, {7, 5, 3}, {4, 17, 9}, {300, 16, 64}};
    uint64_t seed = 43;
    for (int v = 0; v < nk; v++) {
        const sm_kernel_table *kt = all[v];
        if (!sm_kernels_mixed(kt)) continue;
        levels++;
        int round_a = 0, round_w = 0;
        float *scratch = malloc(sizeof(float) * kt->gemm_scratch);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int layout = 0; layout < 4; layout++)
                for (int mode = 0; mode < 3; mode++) {   /* 0, accumulate, stream */
                    int m = shapes[si][0], rows = shapes[si][1], k = shapes[si][2], ldc = (rows + 15) / 16 * 16 + 16;
                    int flags = mode == 1 ? SM_GEMM_ACCUMULATE : mode == 2 ? SM_GEMM_STREAM : 0;
                    int ta = layout & 1, tw = layout >> 1;
                    size_t a_rs = ta ? 1 : (size_t)k + 3, a_cs = ta ? (size_t)m + 2 : 1;
                    size_t w_rs = tw ? 1 : (size_t)k + 1, w_cs = tw ? (size_t)rows + 4 : 1;
                    size_t asz = ta ? a_cs * k : a_rs * m, wsz = tw ? w_cs * k : w_rs * rows, csz = (size_t)m * ldc;
                    float *a = malloc(sizeof(float) * asz), *w = malloc(sizeof(float) * wsz);
                    float *ar = malloc(sizeof(float) * asz), *wr = malloc(sizeof(float) * wsz);
                    float *c1 = aligned_alloc(64, sizeof(float) * csz), *c2 = aligned_alloc(64, sizeof(float) * csz);
                    float *c0 = malloc(sizeof(float) * csz);
                    uint16_t *h = malloc(sizeof(uint16_t) * (asz > wsz ? asz : wsz));
                    int mp = (m + kt->gemm_mr - 1) / kt->gemm_mr;
                    float *packed = malloc(sizeof(float) * (size_t)mp * kt->gemm_mr * k);
                    for (size_t i = 0; i < asz; i++) a[i] = frand(&seed) * 2.0f;
                    for (size_t i = 0; i < wsz; i++) w[i] = frand(&seed);
                    sm_f32_to_bf16_row(h, a, (int)asz);
                    sm_bf16_to_f32_row(ar, h, (int)asz);
                    sm_f32_to_bf16_row(h, w, (int)wsz);
                    sm_bf16_to_f32_row(wr, h, (int)wsz);
                    for (size_t i = 0; i < csz; i++) c0[i] = c1[i] = c2[i] = frand(&seed);
                    int t0 = mp / 2 * kt->gemm_mr;
                    kt->gemm_mixed(c1, ldc, NULL, a, a_rs, a_cs, t0, w, w_rs, w_cs, rows, k, flags, scratch);
                    kt->gemm_mixed(c1 + (size_t)t0 * ldc, ldc, NULL, a + (size_t)t0 * a_rs, a_rs, a_cs, m - t0, w,
                                   w_rs, w_cs, rows, k, flags, scratch);
                    kt->gemm_pack(packed, a, a_rs, a_cs, m, k, 0, mp);
                    kt->gemm_mixed(c2, ldc, packed, NULL, 0, 0, m, w, w_rs, w_cs, rows, k, flags, scratch);
                    CHECKF(memcmp(c1, c2, sizeof(float) * csz) == 0, "gemm_mixed %dx%dx%d layout %d mode %d: in place "
                           "and packed differ", m, rows, k, layout, mode);
                    for (int t = 0; t < m; t++) {
                        for (int r = 0; r < rows; r++) {
                            double base = mode == 1 ? c0[(size_t)t * ldc + r] : 0.0, want = base, only_a = base;
                            double only_w = base, mag = fabs(base);
                            for (int x = 0; x < k; x++) {
                                size_t ia = (size_t)t * a_rs + (size_t)x * a_cs, iw = (size_t)r * w_rs + (size_t)x * w_cs;
                                want += (double)ar[ia] * wr[iw];
                                only_a += (double)ar[ia] * w[iw];
                                only_w += (double)a[ia] * wr[iw];
                                mag += fabs((double)a[ia] * w[iw]);
                            }
                            double got = c1[(size_t)t * ldc + r];
                            CHECKF(fabs(got - want) <= 1e-5 * mag + 1e-30,
                                   "gemm_mixed %dx%dx%d layout %d mode %d [%d][%d]: %.9g vs %.9g", m, rows, k, layout,
                                   mode, t, r, got, want);
                            round_w += fabs(got - only_a) > 1e-5 * mag;
                            round_a += fabs(got - only_w) > 1e-5 * mag;
                        }
                        for (int r = rows; r < ldc; r++)   /* past the rows asked for, c is untouched */
                            CHECKF(c1[(size_t)t * ldc + r] == c0[(size_t)t * ldc + r], "gemm_mixed wrote past row %d",
                                   rows);
                    }
                    free(a); free(w); free(ar); free(wr); free(c0); free(c1); free(c2); free(h); free(packed);
                }
        free(scratch);
        CHECKF(round_a > 0 && round_w > 0, "gemm_mixed left an operand unrounded (%d, %d sums show rounding)", round_a,
               round_w);
    }
#if defined(__x86_64__) && !defined(SM_EMULATE_AVX512)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni") &&
        __builtin_cpu_supports("avx512bf16"))
        CHECKF(levels > 0, "a CPU with AVX512_BF16 has no mixed-precision product");
#endif
    (void)levels;
}

/* gemm_mixed rounds the weights once per column block, in chunks of rows
 * when they are many, into scratch, and reuses them for every run of the
 * batch: against the F32 product (gemm_strided) of both operands rounded to
 * BF16, within 1e-5 of the sum of the products' magnitudes (the F32
 * product of the rounded magnitudes). Shapes: several runs of the batch
 * with two chunks of one column block (1100 rows of 1024 columns), two
 * chunks of each of two column blocks (1400 rows of 1536), one chunk of
 * three (100 rows of 2100); weights by rows and by columns, accumulating. */
TEST(simd_gemm_mixed_rounds_the_weights_once_in_chunks) {
    const sm_kernel_table *all[8];
    int nk = sm_kernels_available(all, 8);
    int shapes[][3] = {{250, 1100, 1024}, {250, 1400, 1536}, {250, 100, 2100}};
    uint64_t seed = 47;
    for (int v = 0; v < nk; v++) {
        const sm_kernel_table *kt = all[v];
        if (!sm_kernels_mixed(kt)) continue;
        float *scratch = malloc(sizeof(float) * kt->gemm_scratch);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int tw = 0; tw < 2; tw++) {
                int m = shapes[si][0], n = shapes[si][1], k = shapes[si][2], ldc = n + 16;
                size_t w_rs = tw ? 1 : (size_t)k, w_cs = tw ? (size_t)n : 1, na = (size_t)m * k, nw = (size_t)n * k;
                size_t nc = (size_t)m * ldc;
                float *a = malloc(sizeof(float) * na), *w = malloc(sizeof(float) * nw);
                float *ar = malloc(sizeof(float) * na), *wr = malloc(sizeof(float) * nw);
                float *c = malloc(sizeof(float) * nc), *ref = malloc(sizeof(float) * nc);
                float *mag = calloc(nc, sizeof(float));
                uint16_t *h = malloc(sizeof(uint16_t) * (na > nw ? na : nw));
                for (size_t i = 0; i < na; i++) a[i] = frand(&seed);
                for (size_t i = 0; i < nw; i++) w[i] = frand(&seed);
                for (size_t i = 0; i < nc; i++) c[i] = ref[i] = frand(&seed);
                sm_f32_to_bf16_row(h, a, (int)na);
                sm_bf16_to_f32_row(ar, h, (int)na);
                sm_f32_to_bf16_row(h, w, (int)nw);
                sm_bf16_to_f32_row(wr, h, (int)nw);
                kt->gemm_mixed(c, ldc, NULL, a, (size_t)k, 1, m, w, w_rs, w_cs, n, k, SM_GEMM_ACCUMULATE, scratch);
                kt->gemm_strided(ref, ldc, ar, (size_t)k, 1, m, wr, w_rs, w_cs, n, k, SM_GEMM_ACCUMULATE, scratch);
                for (size_t i = 0; i < na; i++) ar[i] = fabsf(ar[i]);
                for (size_t i = 0; i < nw; i++) wr[i] = fabsf(wr[i]);
                kt->gemm_strided(mag, ldc, ar, (size_t)k, 1, m, wr, w_rs, w_cs, n, k, 0, scratch);
                int bad = 0;
                for (int t = 0; t < m; t++)
                    for (int r = 0; r < n; r++) {
                        size_t i = (size_t)t * ldc + r;
                        bad += !(fabsf(c[i] - ref[i]) <= 1e-5f * (mag[i] + fabsf(ref[i])));
                    }
                CHECKF(bad == 0, "gemm_mixed %dx%dx%d weights by %s: %d sums off the rounded operands' F32 product",
                       m, n, k, tw ? "columns" : "rows", bad);
                free(a); free(w); free(ar); free(wr); free(c); free(ref); free(mag); free(h);
            }
        free(scratch);
    }
}

/* matvec_n (several inputs per pass over the weights) gives each input
 * the bits its level's matvec gives it alone: rows past the last group of
 * four, columns past the last 16, and 1 to SM_MATVEC_N inputs. */
TEST(simd_matvec_n_equals_matvec) {
    const sm_kernel_table *all[8];
    int nk = sm_kernels_available(all, 8), levels = 0;
    int shapes[][2] = {{1, 16}, {3, 7}, {16, 768}, {21, 100}, {64, 288}, {37, 513}};
    uint64_t seed = 77;
    for (int v = 0; v < nk; v++) {
        for (int f16 = 0; f16 < 3; f16++) {   /* F32, F16, BF16 */
            sm_type_kernels k;
            sm_kernels_for_type(all[v], f16 == 2 ? SM_GGML_BF16 : f16 ? SM_GGML_F16 : SM_GGML_F32, &k);
            if (!k.matvec_n) continue;
            levels++;
            for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
                int rows = shapes[si][0], cols = shapes[si][1];
                size_t xs = (size_t)cols + 3;
                float *w = malloc(sizeof(float) * (size_t)rows * cols), *x = malloc(sizeof(float) * SM_MATVEC_N * xs);
                float *want = malloc(sizeof(float) * rows), *got = malloc(sizeof(float) * SM_MATVEC_N * rows);
                uint16_t *wh = (uint16_t *)w; /* F16: the first half of w's bytes */
                for (size_t i = 0; i < (size_t)rows * cols; i++) {
                    float f = frand(&seed);
                    if (f16 == 2)
                        sm_f32_to_bf16_row(&wh[i], &f, 1);
                    else if (f16)
                        wh[i] = sm_fp32_to_fp16(f);
                    else
                        w[i] = f;
                }
                for (size_t i = 0; i < SM_MATVEC_N * xs; i++) x[i] = frand(&seed);
                for (int n = 1; n <= SM_MATVEC_N; n++) {
                    float *outs[SM_MATVEC_N];
                    for (int i = 0; i < n; i++) outs[i] = got + (size_t)i * rows;
                    k.matvec_n(outs, w, x, xs, n, rows, cols);
                    for (int i = 0; i < n; i++) {
                        k.matvec(want, w, x + (size_t)i * xs, rows, cols);
                        CHECKF(memcmp(want, outs[i], sizeof(float) * rows) == 0,
                               "%s %s matvec_n %dx%d n %d input %d differs", all[v]->name,
                               f16 == 2 ? "BF16" : f16 ? "F16" : "F32", rows,
                               cols, n, i);
                    }
                }
                free(w);
                free(x);
                free(want);
                free(got);
            }
        }
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) CHECKF(levels > 3, "the AVX-512 level lacks an F32, F16 or BF16 matvec_n");
#endif
}

TEST(simd_matmul_matches_scalar) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8);
    int shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {4, 4, 16}, {5, 9, 33}, {17, 13, 100}, {64, 12, 288}, {33, 20, 47}};
    uint64_t seed = 21;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], rows = shapes[s][1], k = shapes[s][2], ldc = rows + 3;
        float *a = malloc(sizeof(float) * m * k), *w = malloc(sizeof(float) * rows * k);
        float *ref = calloc((size_t)m * ldc, sizeof(float)), *got = calloc((size_t)m * ldc, sizeof(float));
        for (int i = 0; i < m * k; i++) a[i] = frand(&seed);
        for (int i = 0; i < rows * k; i++) w[i] = frand(&seed);
        all[0]->matmul_f32(ref, a, w, m, rows, k, ldc);
        float *packed = malloc(sizeof(float) * (size_t)((m + 15) / 16) * 16 * k);
        for (int v = 1; v < 2 * n; v++) {
            /* each level's matmul_f32, then (v >= n) its packed variant if it has one */
            const sm_kernel_table *kt = all[v % n];
            if (v >= n && !kt->matmul_packed) continue;
            if (v == n) continue;  /* the scalar level has no packed variant */
            for (int i = 0; i < m * ldc; i++) got[i] = -7.0f;  /* the padding must stay untouched */
            if (v < n) kt->matmul_f32(got, a, w, m, rows, k, ldc);
            else {
                kt->pack_a(packed, a, m, k);
                kt->matmul_packed(got, packed, w, m, rows, k, ldc);
            }
            int bad = 0;
            for (int t = 0; t < m; t++)
                for (int r = 0; r < ldc; r++) {
                    float g = got[(size_t)t * ldc + r];
                    if (r >= rows) bad += g != -7.0f;
                    else bad += fabsf(g - ref[(size_t)t * ldc + r]) > 1e-5f * k;
                }
            CHECKF(bad == 0, "%s%s matmul %dx%dx%d: %d bad", kt->name, v >= n ? " packed" : "", m, rows, k, bad);
        }
        free(packed);
        free(a); free(w); free(ref); free(got);
    }
}

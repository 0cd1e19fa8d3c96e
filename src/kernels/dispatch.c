/* dispatch.c - see dispatch.h. */
#include "dispatch.h"
#include "core/threadpool.h"
#include "x86_isa.h"
#include "kernels.h"
#include "simd.h"
#include "half.h"
#include "quant_legacy.h"
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float exp_sum_scalar(float *x, float shift, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - shift); s += x[i]; }
    return s;
}

static float scale_max_scalar(float *x, float scale, int n) {
    float max = -INFINITY;
    for (int i = 0; i < n; i++) {
        x[i] *= scale;
        if (x[i] > max) max = x[i];
    }
    return max;
}

static float dot_scalar(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void softmax_bwd_scalar(float *ds, const float *p, float scale, int n) {
    float dot = dot_scalar(p, ds, n);
    for (int i = 0; i < n; i++) ds[i] = p[i] * (ds[i] - dot) * scale;
}

static void axpy_scalar(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static float dot_f16_scalar(const float *a, const void *bv, int n) {
    const uint16_t *b = bv;
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * sm_fp16_to_fp32(b[i]);
    return s;
}

static void axpy_f16_scalar(float *y, float a, const void *xv, int n) {
    const uint16_t *x = xv;
    for (int i = 0; i < n; i++) y[i] += a * sm_fp16_to_fp32(x[i]);
}

static float dot_bf16_scalar(const float *a, const void *bv, int n) {
    const uint16_t *b = bv;
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * sm_bf16_to_fp32(b[i]);
    return s;
}

static void axpy_bf16_scalar(float *y, float a, const void *xv, int n) {
    const uint16_t *x = xv;
    for (int i = 0; i < n; i++) y[i] += a * sm_bf16_to_fp32(x[i]);
}

/* ... and on a Q8_0 row (a Q8_0 KV cache's; n a multiple of 32): each
 * element widened to its block's scale times its 8-bit value, exact in a
 * float */
static float dot_q8_0_scalar(const float *a, const void *bv, int n) {
    const sm_block_q8_0 *b = bv;
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * (b[i / SM_QK].qs[i % SM_QK] * sm_fp16_to_fp32(b[i / SM_QK].d));
    return s;
}

static void axpy_q8_0_scalar(float *y, float a, const void *xv, int n) {
    const sm_block_q8_0 *x = xv;
    for (int i = 0; i < n; i++) y[i] += a * (x[i / SM_QK].qs[i % SM_QK] * sm_fp16_to_fp32(x[i / SM_QK].d));
}

static void gelu_grad_scalar(float *dinp, const float *inp, const float *dout, int n) {
    for (int i = 0; i < n; i++) {
        float x = inp[i], u = 0.7978845608028654f * (x + 0.044715f * x * x * x), th = tanhf(u);
        float du = 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = dout[i] * (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du);
    }
}

static void swiglu_grad_scalar(float *dg, float *du, const float *g, const float *u, const float *dh, int n) {
    for (int i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-g[i])), silu = g[i] * s;
        dg[i] = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        du[i] = dh[i] * silu;
    }
}

void sm_adamw_scalar(float *w, float *g, float *m, float *v, size_t n, const sm_adamw_step *a) {
    float b1 = a->beta1, b2 = a->beta2, k1 = 1.0f - b1, k2 = 1.0f - b2;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * a->scale;
        m[i] = b1 * m[i] + k1 * gi;
        v[i] = b2 * v[i] + k2 * gi * gi;
        float mh = m[i] / a->c1, vh = v[i] / a->c2;
        w[i] -= a->lr * (mh / (sqrtf(vh) + a->eps) + a->weight_decay * w[i]);
        g[i] = 0.0f;
    }
}

void sm_rope_pairs_scalar(float *x, const float *c, const float *s, float sign, int n) {
    for (int i = 0; i < n; i++) {
        float ci = c[i], si = sign * s[i], x0 = x[2 * i], x1 = x[2 * i + 1];
        x[2 * i] = x0 * ci - x1 * si;
        x[2 * i + 1] = x0 * si + x1 * ci;
    }
}

static void matmul_f32_scalar(float *c, const float *a, const float *w, int m, int n, int k, int ldc) {
    for (int t = 0; t < m; t++) sm_matvec_f32(c + (size_t)t * ldc, w, a + (size_t)t * k, n, k);
}

static const sm_kernel_table scalar = {"scalar", SM_LEVEL_SCALAR, NULL, sm_gelu, gelu_grad_scalar, sm_swiglu,
                                       sm_softmax, exp_sum_scalar, dot_scalar, axpy_scalar, matmul_f32_scalar, NULL, NULL,
                                       0, 0, NULL, NULL, swiglu_grad_scalar, sm_adamw_scalar, NULL, NULL, NULL,
                                       sm_norm_fwd_scalar, sm_norm_bwd_scalar, sm_norm_cols_bwd_scalar, scale_max_scalar,
                                       softmax_bwd_scalar, NULL, 0, sm_rope_pairs_scalar, NULL, NULL, dot_f16_scalar,
                                       axpy_f16_scalar, dot_bf16_scalar, axpy_bf16_scalar, dot_q8_0_scalar,
                                       axpy_q8_0_scalar};

#if defined(__x86_64__)
static const sm_kernel_table avx2 = {"avx2", SM_LEVEL_AVX2, &scalar, sm_gelu_avx2, sm_gelu_grad_avx2, sm_swiglu_avx2,
                                     sm_softmax_avx2, sm_exp_sum_avx2, sm_dot_f32_avx2, sm_axpy_f32_avx2,
                                     sm_matmul_f32_avx2, NULL, NULL, SM_GEMM_AVX2_MR, SM_GEMM_AVX2_NR, sm_gemm_pack_avx2,
                                     sm_gemm_avx2, sm_swiglu_grad_avx2, sm_adamw_avx2, sm_gemm_f16_avx2,
                                     sm_gemm_f16x16_avx2, sm_gemm_x16_avx2, sm_norm_fwd_avx2, sm_norm_bwd_avx2,
                                     sm_norm_cols_bwd_avx2, sm_scale_max_avx2, sm_softmax_bwd_avx2,
                                     sm_gemm_strided_avx2, SM_GEMM_AVX2_RUN_BYTES / sizeof(float), sm_rope_pairs_avx2,
                                     sm_gemm_bf16_avx2, NULL, sm_dot_f16_avx2, sm_axpy_f16_avx2, sm_dot_bf16_avx2,
                                     sm_axpy_bf16_avx2, sm_dot_q8_0_avx2, sm_axpy_q8_0_avx2};
static const sm_kernel_table avx512 = {"avx512", SM_LEVEL_AVX512, &avx2, sm_gelu_avx512, sm_gelu_grad_avx512,
                                       sm_swiglu_avx512, sm_softmax_avx512, sm_exp_sum_avx512, sm_dot_f32_avx2,
                                       sm_axpy_f32_avx2, sm_matmul_f32_avx512, sm_pack_a_avx512, sm_matmul_packed_avx512,
                                       SM_GEMM_MR, SM_GEMM_NR, sm_gemm_pack_avx512, sm_gemm_avx512, sm_swiglu_grad_avx512,
                                       sm_adamw_avx512, sm_gemm_f16_avx512, NULL, NULL, sm_norm_fwd_avx512,
                                       sm_norm_bwd_avx512, sm_norm_cols_bwd_avx2, sm_scale_max_avx512,
                                       sm_softmax_bwd_avx512, sm_gemm_strided_avx512, SM_GEMM_SCRATCH_BYTES / sizeof(float),
                                       sm_rope_pairs_avx512, sm_gemm_bf16_avx512, sm_gemm_mixed_avx512, sm_dot_f16_avx2,
                                       sm_axpy_f16_avx2, sm_dot_bf16_avx2, sm_axpy_bf16_avx2, sm_dot_q8_0_avx2,
                                       sm_axpy_q8_0_avx2};

static int has_avx2(void) {
    __builtin_cpu_init();
    return sm_x86_has("avx2") && sm_x86_has("fma");
}

static int has_avx512(void) {
    __builtin_cpu_init();
    return has_avx2() && sm_x86_has("avx512f") && sm_x86_has("avx512bw") && sm_x86_has("avx512vl") &&
           sm_x86_has("avx512dq") && sm_x86_has("avx512vnni");
}
#endif

#if defined(__aarch64__)
/* NEON is part of every AArch64 CPU: no run-time check is needed. */
static const sm_kernel_table neon = {"neon", SM_LEVEL_NEON, &scalar, sm_gelu, gelu_grad_scalar, sm_swiglu, sm_softmax,
                                     exp_sum_scalar, sm_dot_f32_neon, sm_axpy_f32_neon, sm_matmul_f32_neon, NULL, NULL,
                                     0, 0, NULL, NULL, swiglu_grad_scalar, sm_adamw_scalar, NULL, NULL, NULL,
                                     sm_norm_fwd_scalar, sm_norm_bwd_scalar, sm_norm_cols_bwd_scalar, scale_max_scalar,
                                     softmax_bwd_scalar, NULL, 0, sm_rope_pairs_scalar, NULL, NULL, sm_dot_f16_neon,
                                     sm_axpy_f16_neon, sm_dot_bf16_neon, sm_axpy_bf16_neon, sm_dot_q8_0_neon,
                                     sm_axpy_q8_0_neon};
#endif

void sm_kernels_for_type(const sm_kernel_table *kt, uint32_t type, sm_type_kernels *out) {
    memset(out, 0, sizeof *out);
    const sm_type_traits *tt = sm_type(type);
    if (!tt) return;
    /* the interleaved layout's kernels come from the level itself, not a
     * lower one: a copy is made only where the level has its own (an
     * AVX-512 host does not take AVX2's F16 one) */
    out->matvec_x16 = tt->level[kt->level].matvec_x16;
    out->batch_x16 = tt->level[kt->level].batch_x16;
    out->dequant_x16_cols = tt->level[kt->level].dequant_x16_cols;   /* for this level's gemm_x16 */
    for (const sm_kernel_table *k = kt; k; k = k->fallback) {
        const sm_type_kernels *l = &tt->level[k->level];
        if (!out->matvec) {   /* matvec_n gives matvec's bits only beside its own level's matvec */
            out->matvec = l->matvec;
            out->matvec_n = l->matvec_n;
        }
        if (!out->from_float) out->from_float = l->from_float;
        if (!out->to_float) out->to_float = l->to_float;
        if (!out->dequant_x16) out->dequant_x16 = l->dequant_x16;
    }
    /* the reference conversions stand in for missing fast ones */
    if (!out->from_float) out->from_float = tt->from_float_ref;
    if (!out->to_float) out->to_float = tt->to_float;
}

void sm_pack_a_share(const sm_kernel_table *kt, float *packed, const float *a, int m, int k, int ith, int nth) {
    for (int p = ith; p < (m + 15) / 16; p += nth) {
        int rows = m - 16 * p < 16 ? m - 16 * p : 16;
        kt->pack_a(packed + (size_t)p * 16 * k, a + (size_t)p * 16 * k, rows, k);
    }
}

void sm_gemm_pack_share(const sm_kernel_table *kt, float *packed, const float *a, size_t a_rs, size_t a_cs, int m,
                        int k, int ith, int nth) {
    int p0, p1;
    sm_share((m + kt->gemm_mr - 1) / kt->gemm_mr, 1, ith, nth, &p0, &p1);
    if (p0 < p1) kt->gemm_pack(packed, a, a_rs, a_cs, m, k, p0, p1);
}

int sm_kernels_available(const sm_kernel_table **out, int cap) {
    int n = 0;
    if (n < cap) out[n++] = &scalar;
#if defined(__aarch64__)
    if (n < cap) out[n++] = &neon;
#endif
#if defined(__x86_64__)
    if (has_avx2() && n < cap) out[n++] = &avx2;
    if (has_avx512() && n < cap) out[n++] = &avx512;
#endif
    return n;
}

const char *sm_kernels_requested(const char *name) {
    if (name && *name && strcmp(name, "auto") != 0) return name;
    const char *env = getenv("SM_KERNELS");
    return env && *env ? env : "auto";
}

const sm_kernel_table *sm_kernels_get(const char *name) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8);
    name = sm_kernels_requested(name);
    if (!strcmp(name, "auto")) return all[n - 1];
    for (int i = 0; i < n; i++)
        if (!strcmp(all[i]->name, name)) return all[i];
    return NULL;
}

int sm_kernels_mixed(const sm_kernel_table *kt) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return kt->gemm_mixed && sm_x86_has("avx512bf16");
#else
    return kt->gemm_mixed != NULL;
#endif
}

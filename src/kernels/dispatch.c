/* dispatch.c - see dispatch.h. */
#include "dispatch.h"
#include "kernels.h"
#include "quant.h"
#include "interleave.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void matvec_q8_0_scalar(float *out, const void *w, const void *xq, int rows, int cols) {
    int nb = cols / SM_QK;
    for (int r = 0; r < rows; r++) out[r] = sm_dot_q8_0_q8_0((const sm_block_q8_0 *)w + (size_t)r * nb, xq, cols);
}

static void matvec_q4_0_scalar(float *out, const void *w, const void *xq, int rows, int cols) {
    int nb = cols / SM_QK;
    for (int r = 0; r < rows; r++) out[r] = sm_dot_q4_0_q8_0((const sm_block_q4_0 *)w + (size_t)r * nb, xq, cols);
}

static void matvec_q4_K_scalar(float *out, const void *w, const void *xq, int rows, int cols) {
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r++) out[r] = sm_dot_q4_K_q8_K((const sm_block_q4_K *)w + (size_t)r * nb, xq, cols);
}

static void matvec_q6_K_scalar(float *out, const void *w, const void *xq, int rows, int cols) {
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r++) out[r] = sm_dot_q6_K_q8_K((const sm_block_q6_K *)w + (size_t)r * nb, xq, cols);
}

static void quantize_q8_0_scalar(void *out, const float *x, int n) { sm_quantize_q8_0(out, x, n); }
static void dequantize_q4_0x16_scalar(float *out, const void *g, int cols) { sm_dequantize_q4_0x16(out, g, cols); }
static void dequantize_q8_0x16_scalar(float *out, const void *g, int cols) { sm_dequantize_q8_0x16(out, g, cols); }
#define PORTABLE_DEQUANT sm_f16_to_f32_row, dequantize_q4_0x16_scalar, dequantize_q8_0x16_scalar

static float exp_sum_scalar(float *x, float shift, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - shift); s += x[i]; }
    return s;
}

static float dot_scalar(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy_scalar(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static void gelu_grad_scalar(float *dinp, const float *inp, const float *dout, int n) {
    for (int i = 0; i < n; i++) {
        float x = inp[i], u = 0.7978845608028654f * (x + 0.044715f * x * x * x), th = tanhf(u);
        float du = 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += dout[i] * (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du);
    }
}

static void matmul_f32_scalar(float *c, const float *a, const float *w, int m, int n, int k, int ldc) {
    for (int t = 0; t < m; t++) sm_matvec_f32(c + (size_t)t * ldc, w, a + (size_t)t * k, n, k);
}

static const sm_kernel_table scalar = {"scalar", sm_matvec_f32, sm_matvec_f16, matvec_q8_0_scalar,
                                       matvec_q4_0_scalar, quantize_q8_0_scalar, matvec_q4_K_scalar, matvec_q6_K_scalar, sm_gelu, gelu_grad_scalar, sm_swiglu,
                                       sm_softmax, exp_sum_scalar, dot_scalar, axpy_scalar, matmul_f32_scalar, NULL, NULL, NULL, NULL,
                                       PORTABLE_DEQUANT};

#if defined(__x86_64__)
void sm_matvec_f32_avx2(float *out, const float *w, const float *x, int rows, int cols);
void sm_matvec_f16_avx2(float *out, const uint16_t *w, const float *x, int rows, int cols);
void sm_matvec_q8_0_avx2(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q4_0_avx2(float *out, const void *w, const void *xq, int rows, int cols);
void sm_quantize_q8_0_avx2(void *out, const float *x, int n);
void sm_matvec_q4_K_avx2(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q6_K_avx2(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_f32_avx512(float *out, const float *w, const float *x, int rows, int cols);
void sm_matvec_f16_avx512(float *out, const uint16_t *w, const float *x, int rows, int cols);
void sm_matvec_q8_0_avx512(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q4_0_avx512(float *out, const void *w, const void *xq, int rows, int cols);
void sm_gelu_avx2(float *x, int n);
void sm_gelu_avx512(float *x, int n);
void sm_gelu_grad_avx512(float *dinp, const float *inp, const float *dout, int n);
void sm_swiglu_avx2(float *out, const float *g, const float *u, int n);
void sm_swiglu_avx512(float *out, const float *g, const float *u, int n);
void sm_softmax_avx2(float *x, int n);
void sm_softmax_avx512(float *x, int n);
float sm_exp_sum_avx2(float *x, float shift, int n);
float sm_exp_sum_avx512(float *x, float shift, int n);
float sm_dot_f32_avx2(const float *a, const float *b, int n);
void sm_axpy_f32_avx2(float *y, float a, const float *x, int n);
void sm_matmul_f32_avx2(float *c, const float *a, const float *w, int m, int n, int k, int ldc);
void sm_matmul_f32_avx512(float *c, const float *a, const float *w, int m, int n, int k, int ldc);
void sm_pack_a_avx512(float *packed, const float *a, int m, int k);
void sm_matmul_packed_avx512(float *c, const float *packed, const float *w, int m, int n, int k, int ldc);
void sm_matvec_q4_0_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_matvec_q8_0_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_dequantize_q4_0x16_avx512(float *out, const void *group, int cols);
void sm_dequantize_q8_0x16_avx512(float *out, const void *group, int cols);
void sm_f16_to_f32_avx512(float *out, const uint16_t *in, int n);
void sm_f16_to_f32_avx2(float *out, const uint16_t *in, int n);

static const sm_kernel_table avx2 = {"avx2", sm_matvec_f32_avx2, sm_matvec_f16_avx2, sm_matvec_q8_0_avx2,
                                     sm_matvec_q4_0_avx2, sm_quantize_q8_0_avx2, sm_matvec_q4_K_avx2, sm_matvec_q6_K_avx2, sm_gelu_avx2, gelu_grad_scalar, sm_swiglu_avx2,
                                     sm_softmax_avx2, sm_exp_sum_avx2, sm_dot_f32_avx2, sm_axpy_f32_avx2, sm_matmul_f32_avx2, NULL, NULL, NULL, NULL,
                                     sm_f16_to_f32_avx2, dequantize_q4_0x16_scalar, dequantize_q8_0x16_scalar};
static const sm_kernel_table avx512 = {"avx512", sm_matvec_f32_avx512, sm_matvec_f16_avx512, sm_matvec_q8_0_avx512,
                                       sm_matvec_q4_0_avx512, sm_quantize_q8_0_avx2, sm_matvec_q4_K_avx2, sm_matvec_q6_K_avx2, sm_gelu_avx512, sm_gelu_grad_avx512, sm_swiglu_avx512,
                                       sm_softmax_avx512, sm_exp_sum_avx512, sm_dot_f32_avx2, sm_axpy_f32_avx2, sm_matmul_f32_avx512,
                                       sm_pack_a_avx512, sm_matmul_packed_avx512, sm_matvec_q4_0_x16_avx512,
                                       sm_matvec_q8_0_x16_avx512, sm_f16_to_f32_avx512, sm_dequantize_q4_0x16_avx512,
                                       sm_dequantize_q8_0x16_avx512};

static int has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static int has_avx512(void) {
    __builtin_cpu_init();
    return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vnni");
}
#endif

#if defined(__aarch64__)
void sm_matvec_f32_neon(float *out, const float *w, const float *x, int rows, int cols);
void sm_matvec_f16_neon(float *out, const uint16_t *w, const float *x, int rows, int cols);
void sm_matvec_q8_0_neon(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q4_0_neon(float *out, const void *w, const void *xq, int rows, int cols);
float sm_dot_f32_neon(const float *a, const float *b, int n);
void sm_axpy_f32_neon(float *y, float a, const float *x, int n);
void sm_matmul_f32_neon(float *c, const float *a, const float *w, int m, int n, int k, int ldc);

/* NEON is part of every AArch64 CPU: no run-time check is needed. */
static const sm_kernel_table neon = {"neon", sm_matvec_f32_neon, sm_matvec_f16_neon, sm_matvec_q8_0_neon,
                                     sm_matvec_q4_0_neon, quantize_q8_0_scalar, matvec_q4_K_scalar, matvec_q6_K_scalar, sm_gelu, gelu_grad_scalar, sm_swiglu, sm_softmax,
                                     exp_sum_scalar, sm_dot_f32_neon, sm_axpy_f32_neon, sm_matmul_f32_neon, NULL, NULL, NULL, NULL,
                                     PORTABLE_DEQUANT};
#endif

void sm_pack_a_share(const sm_kernel_table *kt, float *packed, const float *a, int m, int k, int ith, int nth) {
    for (int p = ith; p < (m + 15) / 16; p += nth) {
        int rows = m - 16 * p < 16 ? m - 16 * p : 16;
        kt->pack_a(packed + (size_t)p * 16 * k, a + (size_t)p * 16 * k, rows, k);
    }
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

const sm_kernel_table *sm_kernels_get(const char *name) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8);
    if (!name || !*name || !strcmp(name, "auto")) {
        const char *env = getenv("SM_KERNELS");
        if (env && *env && strcmp(env, "auto") != 0) name = env;
        else return all[n - 1];
    }
    for (int i = 0; i < n; i++)
        if (!strcmp(all[i]->name, name)) return all[i];
    return NULL;
}

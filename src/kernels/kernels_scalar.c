/* kernels_scalar.c - portable reference kernels (see kernels.h). The SIMD
 * variants are tested against these. */
#include "kernels.h"
#include "half.h"
#include "dispatch.h"

#include <math.h>
#include <string.h>

void sm_matvec_f32(float *out, const void *wdata, const void *xdata, int rows, int cols) {
    const float *w = wdata, *x = xdata;
    for (int r = 0; r < rows; r++) {
        const float *row = w + (size_t)r * cols;
        float sum = 0.0f;
        for (int c = 0; c < cols; c++) sum += row[c] * x[c];
        out[r] = sum;
    }
}

void sm_matvec_f16(float *out, const void *wdata, const void *xdata, int rows, int cols) {
    const uint16_t *w = wdata;
    const float *x = xdata;
    for (int r = 0; r < rows; r++) {
        const uint16_t *row = w + (size_t)r * cols;
        float sum = 0.0f;
        for (int c = 0; c < cols; c++) sum += sm_fp16_to_fp32(row[c]) * x[c];
        out[r] = sum;
    }
}

void sm_matmul_f32(float *c, const float *a, const float *b, int m, int n, int k) {
    for (int i = 0; i < m; i++) sm_matvec_f32(c + (size_t)i * n, b, a + (size_t)i * k, n, k);
}

void sm_gelu(float *x, int n) {
    const float c = 0.7978845608028654f;  /* sqrt(2 / pi) */
    for (int i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(c * (v + 0.044715f * v * v * v)));
    }
}

void sm_softmax(float *x, int n) {
    float max = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > max) max = x[i];
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void sm_swiglu(float *out, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void sm_add(float *x, const float *y, int n) {
    for (int i = 0; i < n; i++) x[i] += y[i];
}

void sm_rope(float *x, int n_heads, int head_dim, int rot_dim, const float *cos_t, const float *sin_t) {
    for (int h = 0; h < n_heads; h++) sm_rope_pairs_scalar(x + (size_t)h * head_dim, cos_t, sin_t, 1.0f, rot_dim / 2);
}

void sm_rope_neox(float *x, int n_heads, int head_dim, int rot_dim, const float *cos_t, const float *sin_t) {
    int half = rot_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            float a = v[i], b = v[i + half];
            v[i] = a * cos_t[i] - b * sin_t[i];
            v[i + half] = a * sin_t[i] + b * cos_t[i];
        }
    }
}

void sm_softcap(float *x, int n, float cap) {
    float inv = 1.0f / cap;
    for (int i = 0; i < n; i++) x[i] = cap * tanhf(x[i] * inv);
}

void sm_clamp(float *x, float c, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > c ? c : x[i] < -c ? -c : x[i];
}

void sm_alibi(float *x, int n, float slope, int d0) {
    for (int i = 0; i < n; i++) x[i] += slope * (float)(d0 + i);
}

void sm_mul(float *x, const float *y, int n) {
    for (int i = 0; i < n; i++) x[i] *= y[i];
}

void sm_scale(float *x, float a, int n) {
    for (int i = 0; i < n; i++) x[i] *= a;
}

void sm_f16_to_f32_row(float *out, const void *inv, int n) {
    const uint16_t *in = inv;
    for (int i = 0; i < n; i++) out[i] = sm_fp16_to_fp32(in[i]);
}

void sm_f32_to_f16_row(void *outv, const float *in, int n) {
    uint16_t *out = outv;
    for (int i = 0; i < n; i++) out[i] = sm_fp32_to_fp16(in[i]);
}

void sm_f32_copy_row(float *out, const void *in, int n) { memcpy(out, in, (size_t)n * sizeof(float)); }
void sm_f32_store_row(void *out, const float *in, int n) { memcpy(out, in, (size_t)n * sizeof(float)); }

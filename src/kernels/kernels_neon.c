/* kernels_neon.c - AArch64 NEON variants of the kernels (baseline ARMv8.0:
 * no dot-product extension needed). Chosen by dispatch.c on AArch64 and
 * tested against the scalar reference under qemu-user (make cross-test). */
#include "kernels.h"
#include "quant.h"
#include "half.h"
#include "quant_legacy.h"

#if defined(__aarch64__)
#include <arm_neon.h>

void sm_matvec_f32_neon(float *out, const void *wdata, const void *xdata, int rows, int cols) {
    const float *w = wdata, *x = xdata;
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *w0 = w + (size_t)r * cols, *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
        int c = 0;
        for (; c + 4 <= cols; c += 4) {
            float32x4_t xv = vld1q_f32(x + c);
            a0 = vfmaq_f32(a0, vld1q_f32(w0 + c), xv);
            a1 = vfmaq_f32(a1, vld1q_f32(w1 + c), xv);
            a2 = vfmaq_f32(a2, vld1q_f32(w2 + c), xv);
            a3 = vfmaq_f32(a3, vld1q_f32(w3 + c), xv);
        }
        float s0 = vaddvq_f32(a0), s1 = vaddvq_f32(a1), s2 = vaddvq_f32(a2), s3 = vaddvq_f32(a3);
        for (; c < cols; c++) { s0 += w0[c] * x[c]; s1 += w1[c] * x[c]; s2 += w2[c] * x[c]; s3 += w3[c] * x[c]; }
        out[r] = s0; out[r + 1] = s1; out[r + 2] = s2; out[r + 3] = s3;
    }
    for (; r < rows; r++) {
        const float *wr = w + (size_t)r * cols;
        float32x4_t a = vdupq_n_f32(0);
        int c = 0;
        for (; c + 4 <= cols; c += 4) a = vfmaq_f32(a, vld1q_f32(wr + c), vld1q_f32(x + c));
        float s = vaddvq_f32(a);
        for (; c < cols; c++) s += wr[c] * x[c];
        out[r] = s;
    }
}

void sm_matvec_f16_neon(float *out, const void *wdata, const void *xdata, int rows, int cols) {
    const uint16_t *w = wdata;
    const float *x = xdata;
    for (int r = 0; r < rows; r++) {
        const uint16_t *wr = w + (size_t)r * cols;
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0;
        int c = 0;
        for (; c + 8 <= cols; c += 8) {
            float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(wr + c));
            a0 = vfmaq_f32(a0, vcvt_f32_f16(vget_low_f16(h)), vld1q_f32(x + c));
            a1 = vfmaq_f32(a1, vcvt_high_f32_f16(h), vld1q_f32(x + c + 4));
        }
        float s = vaddvq_f32(vaddq_f32(a0, a1));
        for (; c < cols; c++) s += sm_fp16_to_fp32(wr[c]) * x[c];
        out[r] = s;
    }
}

/* 32 signed byte products summed, with baseline instructions: widening
 * multiplies to int16, pairwise-accumulated into int32. */
static inline int32_t dot32_i8(int8x16_t w0, int8x16_t w1, int8x16_t x0, int8x16_t x1) {
    int32x4_t acc = vdupq_n_s32(0);
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w0), vget_low_s8(x0)));
    acc = vpadalq_s16(acc, vmull_high_s8(w0, x0));
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w1), vget_low_s8(x1)));
    acc = vpadalq_s16(acc, vmull_high_s8(w1, x1));
    return vaddvq_s32(acc);
}

void sm_matvec_q8_0_neon(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_0 *x = xq;
    int nb = cols / SM_QK;
    for (int r = 0; r < rows; r++) {
        const sm_block_q8_0 *wr = (const sm_block_q8_0 *)w + (size_t)r * nb;
        float s = 0.0f;
        for (int b = 0; b < nb; b++) {
            int32_t d = dot32_i8(vld1q_s8(wr[b].qs), vld1q_s8(wr[b].qs + 16), vld1q_s8(x[b].qs), vld1q_s8(x[b].qs + 16));
            s += (float)d * sm_fp16_to_fp32(wr[b].d) * sm_fp16_to_fp32(x[b].d);
        }
        out[r] = s;
    }
}

void sm_matvec_q4_0_neon(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_0 *x = xq;
    int nb = cols / SM_QK;
    const uint8x16_t low = vdupq_n_u8(0x0F);
    const int8x16_t eight = vdupq_n_s8(8);
    for (int r = 0; r < rows; r++) {
        const sm_block_q4_0 *wr = (const sm_block_q4_0 *)w + (size_t)r * nb;
        float s = 0.0f;
        for (int b = 0; b < nb; b++) {
            uint8x16_t raw = vld1q_u8(wr[b].qs);
            int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, low)), eight);
            int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), eight);
            int32_t d = dot32_i8(lo, hi, vld1q_s8(x[b].qs), vld1q_s8(x[b].qs + 16));
            s += (float)d * sm_fp16_to_fp32(wr[b].d) * sm_fp16_to_fp32(x[b].d);
        }
        out[r] = s;
    }
}

float sm_dot_f32_neon(const float *a, const float *b, int n) {
    float32x4_t acc = vdupq_n_f32(0);
    int i = 0;
    for (; i + 4 <= n; i += 4) acc = vfmaq_f32(acc, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

void sm_axpy_f32_neon(float *y, float a, const float *x, int n) {
    float32x4_t va = vdupq_n_f32(a);
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), va, vld1q_f32(x + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

/* The same two on an F16 row (an F16 KV cache's), widened as read: the
 * sums of sm_dot_f32_neon / sm_axpy_f32_neon on the widened row. */
float sm_dot_f16_neon(const float *a, const void *bv, int n) {
    const uint16_t *b = bv;
    float32x4_t acc = vdupq_n_f32(0);
    int i = 0;
    for (; i + 4 <= n; i += 4) acc = vfmaq_f32(acc, vld1q_f32(a + i), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(b + i))));
    float s = vaddvq_f32(acc);
    for (; i < n; i++) s += a[i] * sm_fp16_to_fp32(b[i]);
    return s;
}

void sm_axpy_f16_neon(float *y, float a, const void *xv, int n) {
    const uint16_t *x = xv;
    float32x4_t va = vdupq_n_f32(a);
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), va, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i)))));
    for (; i < n; i++) y[i] += a * sm_fp16_to_fp32(x[i]);
}

/* ... and on a BF16 row: each half widened exactly by a 16-bit shift. */
static inline float32x4_t widen_bf16x4(const uint16_t *p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }

float sm_dot_bf16_neon(const float *a, const void *bv, int n) {
    const uint16_t *b = bv;
    float32x4_t acc = vdupq_n_f32(0);
    int i = 0;
    for (; i + 4 <= n; i += 4) acc = vfmaq_f32(acc, vld1q_f32(a + i), widen_bf16x4(b + i));
    float s = vaddvq_f32(acc);
    for (; i < n; i++) s += a[i] * sm_bf16_to_fp32(b[i]);
    return s;
}

void sm_axpy_bf16_neon(float *y, float a, const void *xv, int n) {
    const uint16_t *x = xv;
    float32x4_t va = vdupq_n_f32(a);
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), va, widen_bf16x4(x + i)));
    for (; i < n; i++) y[i] += a * sm_bf16_to_fp32(x[i]);
}

/* ... and on a Q8_0 row (n a multiple of 32): eight values at a time
 * widened to floats and multiplied by their block's scale (exact), taken
 * four by four in the order of the F32 kernels. */
static inline void widen_q8x8(const int8_t *q, float32x4_t d, float32x4_t *lo, float32x4_t *hi) {
    int16x8_t h = vmovl_s8(vld1_s8(q));
    *lo = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(h))), d);
    *hi = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(h))), d);
}

float sm_dot_q8_0_neon(const float *a, const void *bv, int n) {
    const sm_block_q8_0 *b = bv;
    float32x4_t acc = vdupq_n_f32(0), lo, hi;
    for (int i = 0; i < n; i += SM_QK, b++) {
        float32x4_t d = vdupq_n_f32(sm_fp16_to_fp32(b->d));
        for (int j = 0; j < SM_QK; j += 8) {
            widen_q8x8(b->qs + j, d, &lo, &hi);
            acc = vfmaq_f32(acc, vld1q_f32(a + i + j), lo);
            acc = vfmaq_f32(acc, vld1q_f32(a + i + j + 4), hi);
        }
    }
    return vaddvq_f32(acc);
}

void sm_axpy_q8_0_neon(float *y, float a, const void *xv, int n) {
    const sm_block_q8_0 *x = xv;
    float32x4_t va = vdupq_n_f32(a), lo, hi;
    for (int i = 0; i < n; i += SM_QK, x++) {
        float32x4_t d = vdupq_n_f32(sm_fp16_to_fp32(x->d));
        for (int j = 0; j < SM_QK; j += 8) {
            widen_q8x8(x->qs + j, d, &lo, &hi);
            vst1q_f32(y + i + j, vfmaq_f32(vld1q_f32(y + i + j), va, lo));
            vst1q_f32(y + i + j + 4, vfmaq_f32(vld1q_f32(y + i + j + 4), va, hi));
        }
    }
}

void sm_matmul_f32_neon(float *c, const float *a, const float *w, int m, int n, int k, int ldc) {
    for (int t = 0; t < m; t++) sm_matvec_f32_neon(c + (size_t)t * ldc, w, a + (size_t)t * k, n, k);
}
#endif

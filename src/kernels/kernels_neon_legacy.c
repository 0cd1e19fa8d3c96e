/* kernels_neon_legacy.c - AArch64 NEON kernels (baseline ARMv8.0, no
 * dot-product extension) of the types in quant_legacy.h: matrix x vector
 * products of Q4_1/Q5_1 against Q8_1 activations and of Q5_0/IQ4_NL against
 * Q8_0, BF16 against floats, the Q8_1 quantizer and BF16 widening. Tested
 * against the scalar reference under qemu-user (make cross-test). */
#include "quant_legacy.h"
#include "half.h"

#if defined(__aarch64__)
#include <arm_neon.h>

/* Sum of 32 signed byte products: widening multiplies to int16, pairwise
 * accumulated into int32 (codes and activations fit in int8). */
static inline int32_t dot32(int8x16_t w0, int8x16_t w1, const int8_t *x) {
    int8x16_t x0 = vld1q_s8(x), x1 = vld1q_s8(x + 16);
    int32x4_t acc = vdupq_n_s32(0);
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w0), vget_low_s8(x0)));
    acc = vpadalq_s16(acc, vmull_high_s8(w0, x0));
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w1), vget_low_s8(x1)));
    acc = vpadalq_s16(acc, vmull_high_s8(w1, x1));
    return vaddvq_s32(acc);
}

/* Elements 0-15 (low nibbles) and 16-31 (high nibbles). */
static inline void nibbles(const uint8_t *qs, int8x16_t *lo, int8x16_t *hi) {
    uint8x16_t raw = vld1q_u8(qs);
    *lo = vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0F)));
    *hi = vreinterpretq_s8_u8(vshrq_n_u8(raw, 4));
}

/* 16 in byte j of lo (hi) where bit j (16 + j) of the 32-bit word is set. */
static inline void fifth_bits(const uint8_t *qh, int8x16_t *lo, int8x16_t *hi) {
    static const uint8_t bits[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint8x16_t mask = vld1q_u8(bits);
    uint8x16_t b01 = vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1]));
    uint8x16_t b23 = vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3]));
    *lo = vreinterpretq_s8_u8(vandq_u8(vtstq_u8(b01, mask), vdupq_n_u8(0x10)));
    *hi = vreinterpretq_s8_u8(vandq_u8(vtstq_u8(b23, mask), vdupq_n_u8(0x10)));
}

void sm_matvec_q4_1_neon(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_1 *x = xq;
    int nb = cols / SM_QK;
    for (int r = 0; r < rows; r++) {
        const sm_block_q4_1 *wr = (const sm_block_q4_1 *)w + (size_t)r * nb;
        float s = 0.0f;
        for (int b = 0; b < nb; b++) {
            int8x16_t lo, hi;
            nibbles(wr[b].qs, &lo, &hi);
            int32_t d = dot32(lo, hi, x[b].qs);
            s += sm_fp16_to_fp32(wr[b].d) * sm_fp16_to_fp32(x[b].d) * (float)d + sm_fp16_to_fp32(wr[b].m) * sm_fp16_to_fp32(x[b].s);
        }
        out[r] = s;
    }
}

void sm_matvec_q5_1_neon(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_1 *x = xq;
    int nb = cols / SM_QK;
    for (int r = 0; r < rows; r++) {
        const sm_block_q5_1 *wr = (const sm_block_q5_1 *)w + (size_t)r * nb;
        float s = 0.0f;
        for (int b = 0; b < nb; b++) {
            int8x16_t lo, hi, hlo, hhi;
            nibbles(wr[b].qs, &lo, &hi);
            fifth_bits(wr[b].qh, &hlo, &hhi);
            int32_t d = dot32(vorrq_s8(lo, hlo), vorrq_s8(hi, hhi), x[b].qs);
            s += sm_fp16_to_fp32(wr[b].d) * sm_fp16_to_fp32(x[b].d) * (float)d + sm_fp16_to_fp32(wr[b].m) * sm_fp16_to_fp32(x[b].s);
        }
        out[r] = s;
    }
}

void sm_matvec_q5_0_neon(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_0 *x = xq;
    int nb = cols / SM_QK;
    const int8x16_t sixteen = vdupq_n_s8(16);
    for (int r = 0; r < rows; r++) {
        const sm_block_q5_0 *wr = (const sm_block_q5_0 *)w + (size_t)r * nb;
        float s = 0.0f;
        for (int b = 0; b < nb; b++) {
            int8x16_t lo, hi, hlo, hhi;
            nibbles(wr[b].qs, &lo, &hi);
            fifth_bits(wr[b].qh, &hlo, &hhi);
            int32_t d = dot32(vsubq_s8(vorrq_s8(lo, hlo), sixteen), vsubq_s8(vorrq_s8(hi, hhi), sixteen), x[b].qs);
            s += sm_fp16_to_fp32(wr[b].d) * sm_fp16_to_fp32(x[b].d) * (float)d;
        }
        out[r] = s;
    }
}

/* IQ4_NL: a table lookup (tbl) turns each nibble into its value. */
void sm_matvec_iq4_nl_neon(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_0 *x = xq;
    int nb = cols / SM_QK;
    const int8x16_t table = vld1q_s8(sm_iq4nl_values);
    for (int r = 0; r < rows; r++) {
        const sm_block_iq4_nl *wr = (const sm_block_iq4_nl *)w + (size_t)r * nb;
        float s = 0.0f;
        for (int b = 0; b < nb; b++) {
            int8x16_t lo, hi;
            nibbles(wr[b].qs, &lo, &hi);
            lo = vqtbl1q_s8(table, vreinterpretq_u8_s8(lo));
            hi = vqtbl1q_s8(table, vreinterpretq_u8_s8(hi));
            s += sm_fp16_to_fp32(wr[b].d) * sm_fp16_to_fp32(x[b].d) * (float)dot32(lo, hi, x[b].qs);
        }
        out[r] = s;
    }
}

/* vcvtaq rounds to nearest with ties away from zero: roundf's rule. */
void sm_quantize_q8_1_neon(void *out, const float *x, int n) {
    sm_block_q8_1 *y = out;
    for (int b = 0; b < n / SM_QK; b++, x += SM_QK) {
        float32x4_t v[8];
        float32x4_t m = vdupq_n_f32(0);
        for (int k = 0; k < 8; k++) {
            v[k] = vld1q_f32(x + 4 * k);
            m = vmaxq_f32(m, vabsq_f32(v[k]));
        }
        float d = vmaxvq_f32(m) / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        int32x4_t sum = vdupq_n_s32(0), q[8];
        for (int k = 0; k < 8; k++) {
            q[k] = vcvtaq_s32_f32(vmulq_n_f32(v[k], id));
            sum = vaddq_s32(sum, q[k]);
        }
        /* int32 -> int8 (within -127..127), 16 codes per store */
        for (int k = 0; k < 8; k += 4) {
            int16x8_t a = vcombine_s16(vmovn_s32(q[k]), vmovn_s32(q[k + 1]));
            int16x8_t c = vcombine_s16(vmovn_s32(q[k + 2]), vmovn_s32(q[k + 3]));
            vst1q_s8(y[b].qs + 4 * k, vcombine_s8(vmovn_s16(a), vmovn_s16(c)));
        }
        y[b].d = sm_fp32_to_fp16(d);
        y[b].s = sm_fp32_to_fp16((float)vaddvq_s32(sum) * d);
    }
}

/* BF16: widening is a 16-bit left shift. */
static inline float32x4_t bf16x4(const uint16_t *p) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}

void sm_bf16_to_f32_neon(float *out, const void *inv, int n) {
    const uint16_t *in = inv;
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, bf16x4(in + i));
    for (; i < n; i++) out[i] = sm_bf16_to_fp32(in[i]);
}

void sm_matvec_bf16_neon(float *out, const void *wv, const void *xv, int rows, int cols) {
    const uint16_t *w = wv;
    const float *x = xv;
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        const uint16_t *w0 = w + (size_t)r * cols, *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
        int c = 0;
        for (; c + 4 <= cols; c += 4) {
            float32x4_t xv4 = vld1q_f32(x + c);
            a0 = vfmaq_f32(a0, bf16x4(w0 + c), xv4);
            a1 = vfmaq_f32(a1, bf16x4(w1 + c), xv4);
            a2 = vfmaq_f32(a2, bf16x4(w2 + c), xv4);
            a3 = vfmaq_f32(a3, bf16x4(w3 + c), xv4);
        }
        float s[4] = {vaddvq_f32(a0), vaddvq_f32(a1), vaddvq_f32(a2), vaddvq_f32(a3)};
        for (; c < cols; c++)
            for (int i = 0; i < 4; i++) s[i] += sm_bf16_to_fp32(w0[(size_t)i * cols + c]) * x[c];
        for (int i = 0; i < 4; i++) out[r + i] = s[i];
    }
    for (; r < rows; r++) {
        const uint16_t *wr = w + (size_t)r * cols;
        float32x4_t a = vdupq_n_f32(0);
        int c = 0;
        for (; c + 4 <= cols; c += 4) a = vfmaq_f32(a, bf16x4(wr + c), vld1q_f32(x + c));
        float s = vaddvq_f32(a);
        for (; c < cols; c++) s += sm_bf16_to_fp32(wr[c]) * x[c];
        out[r] = s;
    }
}
#endif

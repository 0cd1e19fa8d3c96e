/* kernels_neon_k.c - AArch64 NEON kernels of the 256-element super-block
 * formats (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS) against Q8_K activations,
 * with baseline ARMv8.0 instructions (no dot-product extension): widening
 * byte multiplies into int16 (at most four products per lane, which the
 * code ranges keep below 2^15), then a widening multiply-accumulate by the
 * sub-block's scale into int32. Codes are made signed where the format's
 * offset is fixed (Q3_K's -4, Q6_K's -32), so only Q2_K/Q4_K/Q5_K's mins
 * need the activations' block sums. Tested against the reference dots under
 * qemu-user (make cross-test). */
#include "quant_k.h"
#include "half.h"

#if defined(__aarch64__)
#include <arm_neon.h>

/* 16 products summed pairwise into 8 int16 lanes */
static inline int16x8_t dot16(int8x16_t w, int8x16_t x) {
    return vmlal_high_s8(vmull_s8(vget_low_s8(w), vget_low_s8(x)), w, x);
}

/* acc += p * s, widened to int32 */
static inline int32x4_t acc_scaled(int32x4_t acc, int16x8_t p, int16_t s) {
    return vmlal_high_n_s16(vmlal_n_s16(acc, vget_low_s16(p), s), p, s);
}

static inline int8x16_t s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }

void sm_matvec_q2_K_neon(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_K *x = xq;
    const uint8x16_t three = vdupq_n_u8(3);
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r++) {
        const sm_block_q2_K *wr = (const sm_block_q2_K *)w + (size_t)r * nb;
        float sum = 0.0f;
        for (int b = 0; b < nb; b++) {
            const uint8_t *sc = wr[b].scales;
            uint8x16_t s = vld1q_u8(sc);
            int16x8_t m0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(vshrq_n_u8(s, 4))));
            int16x8_t m1 = vreinterpretq_s16_u16(vmovl_high_u8(vshrq_n_u8(s, 4)));
            int16x8_t b0 = vld1q_s16(x[b].bsums), b1 = vld1q_s16(x[b].bsums + 8);
            int32x4_t mins = vmull_s16(vget_low_s16(m0), vget_low_s16(b0));
            mins = vmlal_high_s16(mins, m0, b0);
            mins = vmlal_s16(mins, vget_low_s16(m1), vget_low_s16(b1));
            mins = vmlal_high_s16(mins, m1, b1);
            int32x4_t isum = vdupq_n_s32(0);
            for (int h = 0; h < 2; h++) {
                uint8x16_t q0 = vld1q_u8(wr[b].qs + 32 * h), q1 = vld1q_u8(wr[b].qs + 32 * h + 16);
                const int8_t *xs = x[b].qs + 128 * h;
                for (int k = 0; k < 4; k++, q0 = vshrq_n_u8(q0, 2), q1 = vshrq_n_u8(q1, 2)) {
                    int j = 8 * h + 2 * k;
                    isum = acc_scaled(isum, dot16(s8(vandq_u8(q0, three)), vld1q_s8(xs + 32 * k)), (int16_t)(sc[j] & 0x0F));
                    isum = acc_scaled(isum, dot16(s8(vandq_u8(q1, three)), vld1q_s8(xs + 32 * k + 16)), (int16_t)(sc[j + 1] & 0x0F));
                }
            }
            sum += x[b].d * (sm_fp16_to_fp32(wr[b].d) * (float)vaddvq_s32(isum) -
                             sm_fp16_to_fp32(wr[b].dmin) * (float)vaddvq_s32(mins));
        }
        out[r] = sum;
    }
}

void sm_matvec_q3_K_neon(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_K *x = xq;
    const uint8x16_t three = vdupq_n_u8(3), four = vdupq_n_u8(4);
    const int8x16_t off = vdupq_n_s8(4);
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r++) {
        const sm_block_q3_K *wr = (const sm_block_q3_K *)w + (size_t)r * nb;
        float sum = 0.0f;
        for (int b = 0; b < nb; b++) {
            int8_t sc[16];
            sm_q3_K_scales(wr[b].scales, sc);
            uint8x16_t hm0 = vld1q_u8(wr[b].hmask), hm1 = vld1q_u8(wr[b].hmask + 16);
            int32x4_t isum = vdupq_n_s32(0);
            for (int h = 0; h < 2; h++) {
                uint8x16_t q0 = vld1q_u8(wr[b].qs + 32 * h), q1 = vld1q_u8(wr[b].qs + 32 * h + 16);
                const int8_t *xs = x[b].qs + 128 * h;
                for (int k = 0; k < 4; k++, q0 = vshrq_n_u8(q0, 2), q1 = vshrq_n_u8(q1, 2)) {
                    uint8x16_t bit = vdupq_n_u8((uint8_t)(1u << (4 * h + k)));
                    /* code = 2 low bits + 4 * high bit - 4 */
                    int8x16_t c0 = vsubq_s8(s8(vorrq_u8(vandq_u8(q0, three), vandq_u8(vtstq_u8(hm0, bit), four))), off);
                    int8x16_t c1 = vsubq_s8(s8(vorrq_u8(vandq_u8(q1, three), vandq_u8(vtstq_u8(hm1, bit), four))), off);
                    int j = 8 * h + 2 * k;
                    isum = acc_scaled(isum, dot16(c0, vld1q_s8(xs + 32 * k)), sc[j]);
                    isum = acc_scaled(isum, dot16(c1, vld1q_s8(xs + 32 * k + 16)), sc[j + 1]);
                }
            }
            sum += x[b].d * sm_fp16_to_fp32(wr[b].d) * (float)vaddvq_s32(isum);
        }
        out[r] = sum;
    }
}

/* Q4_K and Q5_K: the mins' share of a block, sum m_j * (sums of x in j). */
static inline int32_t k4_mins(const uint8_t *scales, const sm_block_q8_K *x, uint8_t *sc) {
    int32_t mins = 0;
    for (int j = 0; j < 8; j++) {
        uint8_t m;
        sm_q4_K_scale_min(j, scales, &sc[j], &m);
        mins += m * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
    }
    return mins;
}

void sm_matvec_q4_K_neon(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_K *x = xq;
    const uint8x16_t low = vdupq_n_u8(0x0F);
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r++) {
        const sm_block_q4_K *wr = (const sm_block_q4_K *)w + (size_t)r * nb;
        float sum = 0.0f;
        for (int b = 0; b < nb; b++) {
            uint8_t sc[8];
            int32_t mins = k4_mins(wr[b].scales, &x[b], sc);
            int32x4_t isum = vdupq_n_s32(0);
            for (int c = 0; c < 4; c++) {
                uint8x16_t q0 = vld1q_u8(wr[b].qs + 32 * c), q1 = vld1q_u8(wr[b].qs + 32 * c + 16);
                const int8_t *xs = x[b].qs + 64 * c;
                /* 4 products of codes <= 15 per lane stay within int16 */
                int16x8_t lo = vaddq_s16(dot16(s8(vandq_u8(q0, low)), vld1q_s8(xs)), dot16(s8(vandq_u8(q1, low)), vld1q_s8(xs + 16)));
                int16x8_t hi = vaddq_s16(dot16(s8(vshrq_n_u8(q0, 4)), vld1q_s8(xs + 32)), dot16(s8(vshrq_n_u8(q1, 4)), vld1q_s8(xs + 48)));
                isum = acc_scaled(isum, lo, sc[2 * c]);
                isum = acc_scaled(isum, hi, sc[2 * c + 1]);
            }
            sum += x[b].d * (sm_fp16_to_fp32(wr[b].d) * (float)vaddvq_s32(isum) - sm_fp16_to_fp32(wr[b].dmin) * (float)mins);
        }
        out[r] = sum;
    }
}

void sm_matvec_q5_K_neon(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_K *x = xq;
    const uint8x16_t low = vdupq_n_u8(0x0F), b4 = vdupq_n_u8(0x10);
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r++) {
        const sm_block_q5_K *wr = (const sm_block_q5_K *)w + (size_t)r * nb;
        float sum = 0.0f;
        for (int b = 0; b < nb; b++) {
            uint8_t sc[8];
            int32_t mins = k4_mins(wr[b].scales, &x[b], sc);
            uint8x16_t h0 = vld1q_u8(wr[b].qh), h1 = vld1q_u8(wr[b].qh + 16);
            int32x4_t isum = vdupq_n_s32(0);
            for (int c = 0; c < 4; c++) {
                uint8x16_t q0 = vld1q_u8(wr[b].qs + 32 * c), q1 = vld1q_u8(wr[b].qs + 32 * c + 16);
                uint8x16_t blo = vdupq_n_u8((uint8_t)(1u << (2 * c))), bhi = vdupq_n_u8((uint8_t)(2u << (2 * c)));
                const int8_t *xs = x[b].qs + 64 * c;
                /* codes <= 31: 4 products per lane stay within int16 */
                int8x16_t l0 = s8(vorrq_u8(vandq_u8(q0, low), vandq_u8(vtstq_u8(h0, blo), b4)));
                int8x16_t l1 = s8(vorrq_u8(vandq_u8(q1, low), vandq_u8(vtstq_u8(h1, blo), b4)));
                int8x16_t u0 = s8(vorrq_u8(vshrq_n_u8(q0, 4), vandq_u8(vtstq_u8(h0, bhi), b4)));
                int8x16_t u1 = s8(vorrq_u8(vshrq_n_u8(q1, 4), vandq_u8(vtstq_u8(h1, bhi), b4)));
                isum = acc_scaled(isum, vaddq_s16(dot16(l0, vld1q_s8(xs)), dot16(l1, vld1q_s8(xs + 16))), sc[2 * c]);
                isum = acc_scaled(isum, vaddq_s16(dot16(u0, vld1q_s8(xs + 32)), dot16(u1, vld1q_s8(xs + 48))), sc[2 * c + 1]);
            }
            sum += x[b].d * (sm_fp16_to_fp32(wr[b].d) * (float)vaddvq_s32(isum) - sm_fp16_to_fp32(wr[b].dmin) * (float)mins);
        }
        out[r] = sum;
    }
}

void sm_matvec_q6_K_neon(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_K *x = xq;
    const uint8x16_t low = vdupq_n_u8(0x0F), top = vdupq_n_u8(0x30);
    const int8x16_t off = vdupq_n_s8(32);
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r++) {
        const sm_block_q6_K *wr = (const sm_block_q6_K *)w + (size_t)r * nb;
        float sum = 0.0f;
        for (int b = 0; b < nb; b++) {
            int32x4_t isum = vdupq_n_s32(0);
            for (int h = 0; h < 2; h++) {
                const uint8_t *ql = wr[b].ql + 64 * h, *qh = wr[b].qh + 32 * h;
                const int8_t *sc = wr[b].scales + 8 * h, *xs = x[b].qs + 128 * h;
                for (int l = 0; l < 32; l += 16) {
                    uint8x16_t a = vld1q_u8(ql + l), c = vld1q_u8(ql + 32 + l), hb = vld1q_u8(qh + l);
                    /* shift k: low bits from a / c (low or high nibble), bits 2k of qh on top; minus 32 */
                    int8x16_t q0 = vsubq_s8(s8(vorrq_u8(vandq_u8(a, low), vandq_u8(vshlq_n_u8(hb, 4), top))), off);
                    int8x16_t q1 = vsubq_s8(s8(vorrq_u8(vandq_u8(c, low), vandq_u8(vshlq_n_u8(hb, 2), top))), off);
                    int8x16_t q2 = vsubq_s8(s8(vorrq_u8(vshrq_n_u8(a, 4), vandq_u8(hb, top))), off);
                    int8x16_t q3 = vsubq_s8(s8(vorrq_u8(vshrq_n_u8(c, 4), vandq_u8(vshrq_n_u8(hb, 2), top))), off);
                    int g = l / 16;   /* elements l..l+15 of each 32 are sub-block 2k + g */
                    isum = acc_scaled(isum, dot16(q0, vld1q_s8(xs + l)), sc[g]);
                    isum = acc_scaled(isum, dot16(q1, vld1q_s8(xs + 32 + l)), sc[2 + g]);
                    isum = acc_scaled(isum, dot16(q2, vld1q_s8(xs + 64 + l)), sc[4 + g]);
                    isum = acc_scaled(isum, dot16(q3, vld1q_s8(xs + 96 + l)), sc[6 + g]);
                }
            }
            sum += x[b].d * sm_fp16_to_fp32(wr[b].d) * (float)vaddvq_s32(isum);
        }
        out[r] = sum;
    }
}

void sm_matvec_iq4_xs_neon(float *out, const void *w, const void *xq, int rows, int cols) {
    const sm_block_q8_K *x = xq;
    const int8x16_t values = vld1q_s8(sm_iq4nl_values);
    const uint8x16_t low = vdupq_n_u8(0x0F);
    int nb = cols / SM_QK_K;
    for (int r = 0; r < rows; r++) {
        const sm_block_iq4_xs *wr = (const sm_block_iq4_xs *)w + (size_t)r * nb;
        float sum = 0.0f;
        for (int b = 0; b < nb; b++) {
            int8_t sc[8];
            sm_iq4_xs_scales(&wr[b], sc);
            int32x4_t isum = vdupq_n_s32(0);
            for (int j = 0; j < 8; j++) {
                uint8x16_t q = vld1q_u8(wr[b].qs + 16 * j);
                const int8_t *xs = x[b].qs + 32 * j;
                /* levels up to 127: two products per int16 lane at most */
                isum = acc_scaled(isum, dot16(vqtbl1q_s8(values, vandq_u8(q, low)), vld1q_s8(xs)), sc[j]);
                isum = acc_scaled(isum, dot16(vqtbl1q_s8(values, vshrq_n_u8(q, 4)), vld1q_s8(xs + 16)), sc[j]);
            }
            sum += x[b].d * sm_fp16_to_fp32(wr[b].d) * (float)vaddvq_s32(isum);
        }
        out[r] = sum;
    }
}
#endif

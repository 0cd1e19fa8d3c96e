/* quant.c - see quant.h. Quantizers pick the scale from the largest
 * magnitude in each block and round to nearest (the K-quant quantizers
 * here search a few candidate scales rather than ggml's full search, so
 * their output is valid but not byte-identical to llama-quantize's). */
#include "quant.h"
#include "half.h"

#include <math.h>
#include <string.h>

void sm_quantize_q8_0(void *yv, const float *x, int n) {
    sm_block_q8_0 *y = yv;
    for (int b = 0; b < n / SM_QK; b++, x += SM_QK) {
        float amax = 0.0f;
        for (int i = 0; i < SM_QK; i++) amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        y[b].d = sm_fp32_to_fp16(d);
        for (int i = 0; i < SM_QK; i++) y[b].qs[i] = (int8_t)roundf(x[i] * id);
    }
}

void sm_quantize_q4_0(void *yv, const float *x, int n) {
    sm_block_q4_0 *y = yv;
    for (int b = 0; b < n / SM_QK; b++, x += SM_QK) {
        /* the value of largest magnitude maps to -8, so the scale keeps its sign */
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < SM_QK; i++)
            if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
        float d = max / -8.0f, id = d ? 1.0f / d : 0.0f;
        y[b].d = sm_fp32_to_fp16(d);
        for (int i = 0; i < SM_QK / 2; i++) {
            int lo = (int)(x[i] * id + 8.5f), hi = (int)(x[i + 16] * id + 8.5f);
            lo = lo < 0 ? 0 : lo > 15 ? 15 : lo;
            hi = hi < 0 ? 0 : hi > 15 ? 15 : hi;
            y[b].qs[i] = (uint8_t)(lo | (hi << 4));
        }
    }
}

void sm_dequantize_q8_0(float *y, const void *xv, int n) {
    const sm_block_q8_0 *x = xv;
    for (int b = 0; b < n / SM_QK; b++) {
        float d = sm_fp16_to_fp32(x[b].d);
        for (int i = 0; i < SM_QK; i++) y[b * SM_QK + i] = x[b].qs[i] * d;
    }
}

void sm_dequantize_q4_0(float *y, const void *xv, int n) {
    const sm_block_q4_0 *x = xv;
    for (int b = 0; b < n / SM_QK; b++) {
        float d = sm_fp16_to_fp32(x[b].d);
        for (int i = 0; i < SM_QK / 2; i++) {
            y[b * SM_QK + i] = ((x[b].qs[i] & 0x0F) - 8) * d;
            y[b * SM_QK + i + 16] = ((x[b].qs[i] >> 4) - 8) * d;
        }
    }
}

void sm_dequantize_q4_K(float *y, const void *xv, int n) {
    const sm_block_q4_K *x = xv;
    for (int b = 0; b < n / SM_QK_K; b++) {
        float d = sm_fp16_to_fp32(x[b].d), dmin = sm_fp16_to_fp32(x[b].dmin);
        const uint8_t *q = x[b].qs;
        for (int j = 0; j < 4; j++, q += 32) {
            uint8_t s1, m1, s2, m2;
            sm_q4_K_scale_min(2 * j, x[b].scales, &s1, &m1);
            sm_q4_K_scale_min(2 * j + 1, x[b].scales, &s2, &m2);
            float d1 = d * s1, n1 = dmin * m1, d2 = d * s2, n2 = dmin * m2;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0x0F) - n1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - n2;
        }
    }
}

void sm_dequantize_q6_K(float *y, const void *xv, int n) {
    const sm_block_q6_K *x = xv;
    for (int b = 0; b < n / SM_QK_K; b++) {
        float d = sm_fp16_to_fp32(x[b].d);
        const uint8_t *ql = x[b].ql, *qh = x[b].qh;
        const int8_t *sc = x[b].scales;
        for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8)
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
    }
}

/* Q4_K: for each sub-block of 32, the scale and min that map it onto 0..15
 * (min clamped at 0 so the minimum is exactly representable), then the 8
 * scales and mins themselves quantized to 6 bits against the largest. */
void sm_quantize_q4_K(void *yv, const float *x, int n) {
    sm_block_q4_K *y = yv;
    for (int b = 0; b < n / SM_QK_K; b++, x += SM_QK_K) {
        float scale[8], minv[8], max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; j++) {
            float lo = x[32 * j], hi = x[32 * j];
            for (int l = 1; l < 32; l++) { lo = fminf(lo, x[32 * j + l]); hi = fmaxf(hi, x[32 * j + l]); }
            if (lo > 0) lo = 0;
            scale[j] = (hi - lo) / 15.0f;
            minv[j] = -lo;
            max_scale = fmaxf(max_scale, scale[j]);
            max_min = fmaxf(max_min, minv[j]);
        }
        float d = max_scale / 63.0f, dmin = max_min / 63.0f;
        y[b].d = sm_fp32_to_fp16(d);
        y[b].dmin = sm_fp32_to_fp16(dmin);
        d = sm_fp16_to_fp32(y[b].d);
        dmin = sm_fp16_to_fp32(y[b].dmin);
        uint8_t ls[8], lm[8];
        for (int j = 0; j < 8; j++) {
            int s = d > 0 ? (int)lrintf(scale[j] / d) : 0, m = dmin > 0 ? (int)lrintf(minv[j] / dmin) : 0;
            ls[j] = (uint8_t)(s < 0 ? 0 : s > 63 ? 63 : s);
            lm[j] = (uint8_t)(m < 0 ? 0 : m > 63 ? 63 : m);
        }
        memset(y[b].scales, 0, 12);
        for (int j = 0; j < 8; j++) {
            if (j < 4) {
                y[b].scales[j] = ls[j];
                y[b].scales[j + 4] = lm[j];
            } else {
                y[b].scales[j + 4] = (uint8_t)((ls[j] & 0x0F) | ((lm[j] & 0x0F) << 4));
                y[b].scales[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
                y[b].scales[j] |= (uint8_t)((lm[j] >> 4) << 6);
            }
        }
        for (int j = 0; j < 8; j++) {
            float dj = d * ls[j], mj = dmin * lm[j];
            for (int l = 0; l < 32; l++) {
                int q = dj > 0 ? (int)lrintf((x[32 * j + l] + mj) / dj) : 0;
                q = q < 0 ? 0 : q > 15 ? 15 : q;
                int byte = (j / 2) * 32 + l;
                if (j % 2 == 0) y[b].qs[byte] = (uint8_t)q;
                else y[b].qs[byte] |= (uint8_t)(q << 4);
            }
        }
    }
}

/* Q6_K: sixteen sub-blocks of 16, each with an int8 scale relative to the
 * block's fp16 d; values q in 0..63 stand for q - 32. */
void sm_quantize_q6_K(void *yv, const float *x, int n) {
    sm_block_q6_K *y = yv;
    for (int b = 0; b < n / SM_QK_K; b++, x += SM_QK_K) {
        float sub[16], max_abs_scale = 0, max_scale = 0;
        for (int j = 0; j < 16; j++) {
            float amax = 0, mx = 0;
            for (int l = 0; l < 16; l++)
                if (fabsf(x[16 * j + l]) > amax) { amax = fabsf(x[16 * j + l]); mx = x[16 * j + l]; }
            sub[j] = mx / -32.0f;
            if (fabsf(sub[j]) > max_abs_scale) { max_abs_scale = fabsf(sub[j]); max_scale = sub[j]; }
        }
        float d = max_scale / -128.0f;
        y[b].d = sm_fp32_to_fp16(d);
        d = sm_fp16_to_fp32(y[b].d);
        uint8_t q[SM_QK_K];
        for (int j = 0; j < 16; j++) {
            int s = d != 0 ? (int)lrintf(sub[j] / d) : 0;
            s = s < -128 ? -128 : s > 127 ? 127 : s;
            y[b].scales[j] = (int8_t)s;
            float dj = d * s;
            for (int l = 0; l < 16; l++) {
                int v = dj != 0 ? (int)lrintf(x[16 * j + l] / dj) + 32 : 32;
                q[16 * j + l] = (uint8_t)(v < 0 ? 0 : v > 63 ? 63 : v);
            }
        }
        memset(y[b].ql, 0, sizeof y[b].ql);
        memset(y[b].qh, 0, sizeof y[b].qh);
        for (int half = 0; half < 2; half++) {
            const uint8_t *qq = q + 128 * half;
            uint8_t *ql = y[b].ql + 64 * half, *qh = y[b].qh + 32 * half;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((qq[l] & 0x0F) | ((qq[l + 64] & 0x0F) << 4));
                ql[l + 32] = (uint8_t)((qq[l + 32] & 0x0F) | ((qq[l + 96] & 0x0F) << 4));
                qh[l] = (uint8_t)((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) | ((qq[l + 64] >> 4) << 4) | ((qq[l + 96] >> 4) << 6));
            }
        }
    }
}

float sm_dot_q8_0_q8_0(const sm_block_q8_0 *w, const sm_block_q8_0 *x, int n) {
    float sum = 0.0f;
    for (int b = 0; b < n / SM_QK; b++) {
        int s = 0;
        for (int i = 0; i < SM_QK; i++) s += w[b].qs[i] * x[b].qs[i];
        sum += (float)s * sm_fp16_to_fp32(w[b].d) * sm_fp16_to_fp32(x[b].d);
    }
    return sum;
}

float sm_dot_q4_0_q8_0(const sm_block_q4_0 *w, const sm_block_q8_0 *x, int n) {
    float sum = 0.0f;
    for (int b = 0; b < n / SM_QK; b++) {
        int s = 0;
        for (int i = 0; i < SM_QK / 2; i++)
            s += ((w[b].qs[i] & 0x0F) - 8) * x[b].qs[i] + ((w[b].qs[i] >> 4) - 8) * x[b].qs[i + 16];
        sum += (float)s * sm_fp16_to_fp32(w[b].d) * sm_fp16_to_fp32(x[b].d);
    }
    return sum;
}

void sm_quantize_q8_K(void *yv, const float *x, int n) {
    sm_block_q8_K *y = yv;
    for (int b = 0; b < n / SM_QK_K; b++, x += SM_QK_K) {
        float amax = 0.0f;
        for (int i = 0; i < SM_QK_K; i++) amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        y[b].d = d;
        for (int g = 0; g < SM_QK_K / 16; g++) {
            int sum = 0;
            for (int i = 16 * g; i < 16 * g + 16; i++) {
                y[b].qs[i] = (int8_t)roundf(x[i] * id);
                sum += y[b].qs[i];
            }
            y[b].bsums[g] = (int16_t)sum;
        }
    }
}

/* sum over sub-blocks j of d*sc_j*(q.x)_j - dmin*m_j*(sum x)_j */
float sm_dot_q4_K_q8_K(const sm_block_q4_K *w, const sm_block_q8_K *x, int n) {
    float sum = 0.0f;
    for (int b = 0; b < n / SM_QK_K; b++) {
        int32_t dot = 0, mins = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            sm_q4_K_scale_min(j, w[b].scales, &sc, &m);
            const uint8_t *q = w[b].qs + 32 * (j / 2);
            const int8_t *xs = x[b].qs + 32 * j;
            int32_t s = 0;
            for (int l = 0; l < 32; l++) s += ((j & 1) ? q[l] >> 4 : q[l] & 0x0F) * xs[l];
            dot += sc * s;
            mins += m * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
        }
        sum += x[b].d * (sm_fp16_to_fp32(w[b].d) * (float)dot - sm_fp16_to_fp32(w[b].dmin) * (float)mins);
    }
    return sum;
}

/* Element e of a Q6_K block: 4 low bits from ql, 2 high bits from qh, in
 * the order sm_dequantize_q6_K walks; scale e / 16. */
float sm_dot_q6_K_q8_K(const sm_block_q6_K *w, const sm_block_q8_K *x, int n) {
    float sum = 0.0f;
    for (int b = 0; b < n / SM_QK_K; b++) {
        int32_t dot = 0;
        for (int e = 0; e < SM_QK_K; e++) {
            int half = e / 128, k = (e % 128) / 32, l = e % 32;
            uint8_t lo = w[b].ql[64 * half + l + 32 * (k & 1)], hi = w[b].qh[32 * half + l];
            int q = ((k < 2 ? lo & 0x0F : lo >> 4) | (((hi >> (2 * k)) & 3) << 4)) - 32;
            dot += w[b].scales[e / 16] * q * x[b].qs[e];
        }
        sum += x[b].d * sm_fp16_to_fp32(w[b].d) * (float)dot;
    }
    return sum;
}

void sm_dequantize_q8_K(float *y, const void *xv, int n) {
    const sm_block_q8_K *x = xv;
    for (int b = 0; b < n / SM_QK_K; b++)
        for (int i = 0; i < SM_QK_K; i++) y[b * SM_QK_K + i] = x[b].d * x[b].qs[i];
}

/* One type's scalar matrix x vector kernel: the reference dot per row. */
#define SCALAR_MATVEC(name, W_T, X_T, QK, DOT)                                          \
    void name(float *out, const void *w, const void *xq, int rows, int cols) {         \
        int nb = cols / (QK);                                                          \
        for (int r = 0; r < rows; r++) out[r] = DOT((const W_T *)w + (size_t)r * nb, (const X_T *)xq, cols); \
    }
SCALAR_MATVEC(sm_matvec_q8_0_scalar, sm_block_q8_0, sm_block_q8_0, SM_QK, sm_dot_q8_0_q8_0)
SCALAR_MATVEC(sm_matvec_q4_0_scalar, sm_block_q4_0, sm_block_q8_0, SM_QK, sm_dot_q4_0_q8_0)
SCALAR_MATVEC(sm_matvec_q4_K_scalar, sm_block_q4_K, sm_block_q8_K, SM_QK_K, sm_dot_q4_K_q8_K)
SCALAR_MATVEC(sm_matvec_q6_K_scalar, sm_block_q6_K, sm_block_q8_K, SM_QK_K, sm_dot_q6_K_q8_K)

/* quant_legacy.c - see quant_legacy.h. The quantizers follow the rules of
 * ggml's reference quantizers (ggml/src/ggml-quants.c, read for the
 * format and the rounding, not copied): Q4_1/Q5_1 map [min, max] onto the
 * codes and round half up; Q5_0 maps the value of largest magnitude to -16;
 * IQ4_NL searches the scale as llama-quantize does without an importance
 * matrix. Their output is byte-identical to llama-quantize's up to the odd
 * value that lands on a rounding boundary (llama.cpp may fuse a multiply
 * and an add there). */
#include "quant_legacy.h"
#include "half.h"

#include <float.h>
#include <math.h>
#include <string.h>

const int8_t sm_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* Packs 32 codes (0..31) into nibbles and, with qh, the fifth bits. */
static void pack_codes(uint8_t *qs, uint8_t *qh, const uint8_t *q) {
    uint32_t h = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4));
        h |= (uint32_t)(q[j] >> 4) << j;
        h |= (uint32_t)(q[j + 16] >> 4) << (j + 16);
    }
    if (qh) memcpy(qh, &h, 4);
}

/* Codes of x - min on a grid of step d with `top` the largest code,
 * rounded half up; returns d. The min and d are stored as fp16, the codes
 * are computed from the unrounded ones. */
static float min_max_codes(const float *x, uint8_t *q, int top, uint16_t *dh, uint16_t *mh) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < SM_QK; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    float d = (max - min) / (float)top, id = d != 0.0f ? 1.0f / d : 0.0f;
    *dh = sm_fp32_to_fp16(d);
    *mh = sm_fp32_to_fp16(min);
    for (int j = 0; j < SM_QK; j++) {
        int v = (int)((x[j] - min) * id + 0.5f);
        q[j] = (uint8_t)(v > top ? top : v);
    }
    return d;
}

void sm_quantize_q4_1(void *yv, const float *x, int n) {
    sm_block_q4_1 *y = yv;
    for (int b = 0; b < n / SM_QK; b++, x += SM_QK) {
        uint8_t q[SM_QK];
        min_max_codes(x, q, 15, &y[b].d, &y[b].m);
        pack_codes(y[b].qs, NULL, q);
    }
}

void sm_quantize_q5_1(void *yv, const float *x, int n) {
    sm_block_q5_1 *y = yv;
    for (int b = 0; b < n / SM_QK; b++, x += SM_QK) {
        uint8_t q[SM_QK];
        min_max_codes(x, q, 31, &y[b].d, &y[b].m);
        pack_codes(y[b].qs, y[b].qh, q);
    }
}

/* Q5_0: the value of largest magnitude (the first, on ties) becomes code 0,
 * i.e. -16 steps, so the scale carries its sign. */
void sm_quantize_q5_0(void *yv, const float *x, int n) {
    sm_block_q5_0 *y = yv;
    for (int b = 0; b < n / SM_QK; b++, x += SM_QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < SM_QK; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        float d = max / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = sm_fp32_to_fp16(d);
        uint8_t q[SM_QK];
        for (int j = 0; j < SM_QK; j++) {
            int v = (int)(x[j] * id + 16.5f);
            q[j] = (uint8_t)(v > 31 ? 31 : v);
        }
        pack_codes(y[b].qs, y[b].qh, q);
    }
}

/* The index of the table value nearest to v (ties to the larger one). */
static int iq4nl_nearest(float v) {
    const int8_t *t = sm_iq4nl_values;
    if (v <= t[0]) return 0;
    if (v >= t[15]) return 15;
    int i = 1;
    while (v >= t[i]) i++;   /* t[i-1] <= v < t[i] */
    return v - t[i - 1] < t[i] - v ? i - 1 : i;
}

/* Least-squares fit of a scale for the codes that id * x rounds to, each
 * element weighted by x^2: returns sum(w q x), sets *q2 = sum(w q q). */
static float iq4nl_fit(const float *x, float id, float *q2) {
    float sqx = 0.0f, sqq = 0.0f;
    for (int j = 0; j < SM_QK; j++) {
        float q = sm_iq4nl_values[iq4nl_nearest(id * x[j])];
        float wq = x[j] * x[j] * q;
        sqx += wq * x[j];
        sqq += wq * q;
    }
    *q2 = sqq;
    return sqx;
}

/* IQ4_NL, as llama-quantize writes it without an importance matrix: start
 * from the scale that maps the value of largest magnitude to +127, refit it
 * by least squares, then try the fifteen grids that map that value to
 * -127 + t (t = -7..7) and keep the fit with the smallest weighted error
 * (the largest sum(wqx)^2 / sum(wqq)). A block below 1e-15 in magnitude
 * gets scale 0. */
void sm_quantize_iq4_nl(void *yv, const float *x, int n) {
    sm_block_iq4_nl *y = yv;
    const float t0 = sm_iq4nl_values[0];
    for (int b = 0; b < n / SM_QK; b++, x += SM_QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < SM_QK; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        float d = 0.0f;
        if (amax >= 1e-15f) {
            float q2, qx = iq4nl_fit(x, 1.0f / (-max / t0), &q2);
            d = qx / q2;
            float best = d * qx;
            for (int t = -7; t <= 7; t++) {
                qx = iq4nl_fit(x, ((float)t + t0) / max, &q2);
                if (q2 > 0 && qx * qx > best * q2) {
                    d = qx / q2;
                    best = d * qx;
                }
            }
        }
        y[b].d = sm_fp32_to_fp16(d);
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint8_t q[SM_QK];
        for (int j = 0; j < SM_QK; j++) q[j] = (uint8_t)iq4nl_nearest(id * x[j]);
        pack_codes(y[b].qs, NULL, q);
    }
}

void sm_quantize_q8_1(void *yv, const float *x, int n) {
    sm_block_q8_1 *y = yv;
    for (int b = 0; b < n / SM_QK; b++, x += SM_QK) {
        float amax = 0.0f;
        for (int j = 0; j < SM_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < SM_QK; j++) {
            y[b].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[b].qs[j];
        }
        y[b].d = sm_fp32_to_fp16(d);
        y[b].s = sm_fp32_to_fp16((float)sum * d);
    }
}

void sm_dequantize_q4_1(float *y, const void *xv, int n) {
    const sm_block_q4_1 *x = xv;
    for (int b = 0; b < n / SM_QK; b++, y += SM_QK) {
        float d = sm_fp16_to_fp32(x[b].d), m = sm_fp16_to_fp32(x[b].m);
        for (int j = 0; j < 16; j++) {
            y[j] = (x[b].qs[j] & 0x0F) * d + m;
            y[j + 16] = (x[b].qs[j] >> 4) * d + m;
        }
    }
}

void sm_dequantize_q5_0(float *y, const void *xv, int n) {
    const sm_block_q5_0 *x = xv;
    for (int b = 0; b < n / SM_QK; b++, y += SM_QK) {
        float d = sm_fp16_to_fp32(x[b].d);
        for (int j = 0; j < SM_QK; j++) y[j] = (sm_q5_code(x[b].qs, x[b].qh, j) - 16) * d;
    }
}

void sm_dequantize_q5_1(float *y, const void *xv, int n) {
    const sm_block_q5_1 *x = xv;
    for (int b = 0; b < n / SM_QK; b++, y += SM_QK) {
        float d = sm_fp16_to_fp32(x[b].d), m = sm_fp16_to_fp32(x[b].m);
        for (int j = 0; j < SM_QK; j++) y[j] = sm_q5_code(x[b].qs, x[b].qh, j) * d + m;
    }
}

void sm_dequantize_iq4_nl(float *y, const void *xv, int n) {
    const sm_block_iq4_nl *x = xv;
    for (int b = 0; b < n / SM_QK; b++, y += SM_QK) {
        float d = sm_fp16_to_fp32(x[b].d);
        for (int j = 0; j < 16; j++) {
            y[j] = d * sm_iq4nl_values[x[b].qs[j] & 0x0F];
            y[j + 16] = d * sm_iq4nl_values[x[b].qs[j] >> 4];
        }
    }
}

void sm_dequantize_q8_1(float *y, const void *xv, int n) {
    const sm_block_q8_1 *x = xv;
    for (int b = 0; b < n / SM_QK; b++, y += SM_QK) {
        float d = sm_fp16_to_fp32(x[b].d);
        for (int j = 0; j < SM_QK; j++) y[j] = x[b].qs[j] * d;
    }
}

void sm_bf16_to_f32_row(float *y, const void *xv, int n) {
    const uint16_t *x = xv;
    for (int i = 0; i < n; i++) y[i] = sm_bf16_to_fp32(x[i]);
}

void sm_f32_to_bf16_row(void *yv, const float *x, int n) {
    uint16_t *y = yv;
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        if ((u & 0x7FFFFFFFu) > 0x7F800000u) y[i] = (uint16_t)((u >> 16) | 0x40);   /* NaN: keep it quiet */
        else y[i] = (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);          /* nearest, ties to even */
    }
}

float sm_dot_q4_1_q8_1(const sm_block_q4_1 *w, const sm_block_q8_1 *x, int n) {
    float sum = 0.0f;
    for (int b = 0; b < n / SM_QK; b++) {
        int s = 0;
        for (int j = 0; j < 16; j++) s += (w[b].qs[j] & 0x0F) * x[b].qs[j] + (w[b].qs[j] >> 4) * x[b].qs[j + 16];
        sum += sm_fp16_to_fp32(w[b].d) * sm_fp16_to_fp32(x[b].d) * (float)s + sm_fp16_to_fp32(w[b].m) * sm_fp16_to_fp32(x[b].s);
    }
    return sum;
}

float sm_dot_q5_0_q8_0(const sm_block_q5_0 *w, const sm_block_q8_0 *x, int n) {
    float sum = 0.0f;
    for (int b = 0; b < n / SM_QK; b++) {
        int s = 0;
        for (int j = 0; j < SM_QK; j++) s += (sm_q5_code(w[b].qs, w[b].qh, j) - 16) * x[b].qs[j];
        sum += sm_fp16_to_fp32(w[b].d) * sm_fp16_to_fp32(x[b].d) * (float)s;
    }
    return sum;
}

float sm_dot_q5_1_q8_1(const sm_block_q5_1 *w, const sm_block_q8_1 *x, int n) {
    float sum = 0.0f;
    for (int b = 0; b < n / SM_QK; b++) {
        int s = 0;
        for (int j = 0; j < SM_QK; j++) s += sm_q5_code(w[b].qs, w[b].qh, j) * x[b].qs[j];
        sum += sm_fp16_to_fp32(w[b].d) * sm_fp16_to_fp32(x[b].d) * (float)s + sm_fp16_to_fp32(w[b].m) * sm_fp16_to_fp32(x[b].s);
    }
    return sum;
}

float sm_dot_iq4_nl_q8_0(const sm_block_iq4_nl *w, const sm_block_q8_0 *x, int n) {
    float sum = 0.0f;
    for (int b = 0; b < n / SM_QK; b++) {
        int s = 0;
        for (int j = 0; j < 16; j++)
            s += sm_iq4nl_values[w[b].qs[j] & 0x0F] * x[b].qs[j] + sm_iq4nl_values[w[b].qs[j] >> 4] * x[b].qs[j + 16];
        sum += sm_fp16_to_fp32(w[b].d) * sm_fp16_to_fp32(x[b].d) * (float)s;
    }
    return sum;
}

#define SCALAR_MATVEC(name, W_T, X_T, DOT)                                                                    \
    void name(float *out, const void *w, const void *xq, int rows, int cols) {                               \
        int nb = cols / SM_QK;                                                                               \
        for (int r = 0; r < rows; r++) out[r] = DOT((const W_T *)w + (size_t)r * nb, (const X_T *)xq, cols); \
    }
SCALAR_MATVEC(sm_matvec_q4_1_scalar, sm_block_q4_1, sm_block_q8_1, sm_dot_q4_1_q8_1)
SCALAR_MATVEC(sm_matvec_q5_0_scalar, sm_block_q5_0, sm_block_q8_0, sm_dot_q5_0_q8_0)
SCALAR_MATVEC(sm_matvec_q5_1_scalar, sm_block_q5_1, sm_block_q8_1, sm_dot_q5_1_q8_1)
SCALAR_MATVEC(sm_matvec_iq4_nl_scalar, sm_block_iq4_nl, sm_block_q8_0, sm_dot_iq4_nl_q8_0)

void sm_matvec_bf16(float *out, const void *wv, const void *xv, int rows, int cols) {
    const uint16_t *w = wv;
    const float *x = xv;
    for (int r = 0; r < rows; r++) {
        const uint16_t *row = w + (size_t)r * cols;
        float sum = 0.0f;
        for (int c = 0; c < cols; c++) sum += sm_bf16_to_fp32(row[c]) * x[c];
        out[r] = sum;
    }
}

/* quant_k.c - see quant_k.h. The quantizers follow the reference algorithms
 * of ggml-quants.c (make_qkx2_quants for Q2_K/Q4_K/Q5_K, make_q3_quants for
 * Q3_K, make_qx_quants for Q6_K, the IQ4_NL scale scan for IQ4_XS) as
 * described there, written anew; rounding is to nearest, ties to even, as
 * ggml's nearest_int. Their output is valid and close to llama-quantize's
 * (tests/unit/test_types_k.c compares the error with ggml's own). */
#include "quant_k.h"
#include "half.h"

#include <math.h>
#include <string.h>

/* sm_iq4nl_values, IQ4_NL and IQ4_XS's 16 levels, is defined in quant_legacy.c */

/* below this a group counts as all zero (ggml's GROUP_MAX_EPS) */
#define ZERO_EPS 1e-15f

static inline int round_even(float v) { return (int)lrintf(v); }
static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ----------------------------------------------------- scale searches */

/* Codes 0..nmax with a scale and a min, x ~ scale * L - min_out: starting
 * from the range's scale, try nstep + 1 slightly different inverse scales
 * (nmax + rmin + rdelta * i over the range); for each rounding, fit scale and
 * min by weighted least squares (min kept <= 0 so that zero stays
 * representable) and keep the fit with the smallest weighted error (absolute
 * when use_abs, else squared). Returns the scale; *min_out is -min. */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *min_out,
                           float rmin, float rdelta, int nstep, int use_abs) {
    float lo = x[0], hi = x[0], sw = 0, sx = 0;
    for (int i = 0; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
        sw += w[i];
        sx += w[i] * x[i];
    }
    if (lo > 0) lo = 0;
    if (hi == lo) {
        memset(L, 0, (size_t)n);
        *min_out = -lo;
        return 0.0f;
    }
    float inv = nmax / (hi - lo), scale = 1 / inv, min = lo, best = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(round_even(inv * (x[i] - lo)), 0, nmax);
        float e = scale * L[i] + lo - x[i];
        best += w[i] * (use_abs ? fabsf(e) : e * e);
    }
    uint8_t T[32];
    for (int step = 0; step <= nstep; step++) {
        inv = (rmin + rdelta * step + nmax) / (hi - lo);
        float sl = 0, sl2 = 0, sxl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(round_even(inv * (x[i] - lo)), 0, nmax);
            T[i] = (uint8_t)l;
            sl += w[i] * l;
            sl2 += w[i] * l * l;
            sxl += w[i] * l * x[i];
        }
        float det = sw * sl2 - sl * sl;
        if (det <= 0) continue;
        float s = (sw * sxl - sx * sl) / det, m = (sl2 * sx - sl * sxl) / det;
        if (m > 0) {
            m = 0;
            s = sxl / sl2;
        }
        float err = 0;
        for (int i = 0; i < n; i++) {
            float e = s * T[i] + m - x[i];
            err += w[i] * (use_abs ? fabsf(e) : e * e);
        }
        if (err < best) {
            memcpy(L, T, (size_t)n);
            best = err;
            scale = s;
            min = m;
        }
    }
    *min_out = -min;
    return scale;
}

/* The value of largest magnitude, with its sign. */
static float signed_max(const float *x, int n, float *amax_out) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    *amax_out = amax;
    return max;
}

/* Symmetric codes -nmax..nmax-1 (the extreme maps to -nmax), then up to five
 * passes that move single codes while that raises the x^2-weighted fit
 * (sum w x l)^2 / sum w l^2. L gets the codes + nmax; returns the scale. */
static float fit_q3(int n, int nmax, const float *x, int8_t *L) {
    float amax, max = signed_max(x, n, &amax);
    if (amax < ZERO_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float inv = -nmax / max, slx = 0, sl2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(round_even(inv * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        slx += w * x[i] * l;
        sl2 += w * l * l;
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i], a = slx - w * x[i] * L[i];
            if (a <= 0) continue;
            float b = sl2 - w * L[i] * L[i];
            int l = clampi(round_even(x[i] * b / a), -nmax, nmax - 1);
            if (l == L[i]) continue;
            a += w * x[i] * l;
            b += w * l * l;
            if (b > 0 && a * a * sl2 > slx * slx * b) {
                L[i] = (int8_t)l;
                slx = a;
                sl2 = b;
                changed++;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return slx / sl2;
}

/* Symmetric codes -nmax..nmax-1 for 19 candidate scales around the extreme's
 * (nmax + 0.1 i, i = -9..9), keeping the one with the best x^2-weighted fit;
 * returns its least-squares scale. L gets the codes + nmax. */
static float fit_qx(int n, int nmax, const float *x, int8_t *L) {
    float amax, max = signed_max(x, n, &amax);
    if (amax < ZERO_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float scale = 0, best = 0;
    for (int is = 0; is <= 18; is++) {
        int i_try = is == 0 ? 0 : is <= 9 ? is - 10 : is - 9;   /* 0 first, then -9..-1, 1..9 */
        float inv = -(nmax + 0.1f * i_try) / max, slx = 0, sl2 = 0;
        int8_t T[16];
        for (int i = 0; i < n; i++) {
            int l = clampi(round_even(inv * x[i]), -nmax, nmax - 1);
            T[i] = (int8_t)(l + nmax);
            float w = x[i] * x[i];
            slx += w * x[i] * l;
            sl2 += w * l * l;
        }
        if (is == 0) {
            memcpy(L, T, (size_t)n);
            scale = sl2 ? slx / sl2 : 0.0f;
            best = scale * slx;
        } else if (sl2 > 0 && slx * slx > best * sl2) {
            memcpy(L, T, (size_t)n);
            scale = slx / sl2;
            best = scale * slx;
        }
    }
    return scale;
}

/* Index of the table entry nearest v (ties to the larger entry): a binary
 * search over the midpoints between neighbouring levels (exact in float). */
static int nearest_iq4(float v) {
    static const float mid[15] = {-115.5f, -93.5f, -74.0f, -57.0f, -42.0f, -28.5f, -16.0f, -4.5f,
                                  7.0f,    19.0f,  31.5f,  45.5f,  61.0f,  79.0f,  101.0f};
    int i = v >= mid[7] ? 8 : 0;
    if (v >= mid[i + 3]) i += 4;
    if (v >= mid[i + 1]) i += 2;
    if (v >= mid[i]) i += 1;
    return i;
}

/* Packs 8 six-bit scales and mins as Q4_K/Q5_K store them. */
static void pack_scale_min_k4(uint8_t *s, const uint8_t *ls, const uint8_t *lm) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(ls[j] | ((ls[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)(lm[j] | ((lm[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((ls[j + 4] & 0x0F) | ((lm[j + 4] & 0x0F) << 4));
    }
}

/* Q4_K/Q5_K: 8 sub-blocks of 32 fitted with weights rms + |x|, their scales
 * and mins in 6 bits against the largest, then the codes again against the
 * stored scales. L gets 0..nmax per element. */
static void quantize_k4_block(const float *x, int nmax, float rmin, int nstep, uint16_t *d_out, uint16_t *dmin_out,
                              uint8_t *scales, uint8_t *L) {
    float sc[8], mn[8], w[32], max_sc = 0, max_mn = 0;
    for (int j = 0; j < 8; j++) {
        const float *xj = x + 32 * j;
        float s2 = 0;
        for (int l = 0; l < 32; l++) s2 += xj[l] * xj[l];
        float rms = sqrtf(s2 / 32);
        for (int l = 0; l < 32; l++) w[l] = rms + fabsf(xj[l]);
        sc[j] = fit_scale_min(32, nmax, xj, w, L + 32 * j, &mn[j], rmin, 0.1f, nstep, 0);
        max_sc = fmaxf(max_sc, sc[j]);
        max_mn = fmaxf(max_mn, mn[j]);
    }
    float isc = max_sc > 0 ? 63 / max_sc : 0, imn = max_mn > 0 ? 63 / max_mn : 0;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)clampi(round_even(isc * sc[j]), 0, 63);
        lm[j] = (uint8_t)clampi(round_even(imn * mn[j]), 0, 63);
    }
    pack_scale_min_k4(scales, ls, lm);
    *d_out = sm_fp32_to_fp16(max_sc / 63);
    *dmin_out = sm_fp32_to_fp16(max_mn / 63);
    float d = sm_fp16_to_fp32(*d_out), dmin = sm_fp16_to_fp32(*dmin_out);
    for (int j = 0; j < 8; j++) {
        float dj = d * ls[j], mj = dmin * lm[j];
        if (dj == 0) continue;
        for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)clampi(round_even((x[32 * j + l] + mj) / dj), 0, nmax);
    }
}

/* ---------------------------------------------------------------- Q2_K */

void sm_quantize_q2_K(void *yv, const float *x, int n) {
    sm_block_q2_K *y = yv;
    for (int b = 0; b < n / SM_QK_K; b++, x += SM_QK_K) {
        uint8_t L[SM_QK_K];
        float sc[16], mn[16], w[16], max_sc = 0, max_mn = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
            sc[j] = fit_scale_min(16, 3, x + 16 * j, w, L + 16 * j, &mn[j], -0.5f, 0.1f, 15, 1);
            max_sc = fmaxf(max_sc, sc[j]);
            max_mn = fmaxf(max_mn, mn[j]);
        }
        memset(y[b].scales, 0, 16);
        y[b].d = y[b].dmin = 0;
        if (max_sc > 0) {
            for (int j = 0; j < 16; j++) y[b].scales[j] = (uint8_t)clampi(round_even(15 / max_sc * sc[j]), 0, 15);
            y[b].d = sm_fp32_to_fp16(max_sc / 15);
        }
        if (max_mn > 0) {
            for (int j = 0; j < 16; j++) y[b].scales[j] |= (uint8_t)(clampi(round_even(15 / max_mn * mn[j]), 0, 15) << 4);
            y[b].dmin = sm_fp32_to_fp16(max_mn / 15);
        }
        float d = sm_fp16_to_fp32(y[b].d), dmin = sm_fp16_to_fp32(y[b].dmin);
        for (int j = 0; j < 16; j++) {
            float dj = d * (y[b].scales[j] & 0x0F), mj = dmin * (y[b].scales[j] >> 4);
            if (dj == 0) continue;
            for (int l = 0; l < 16; l++) L[16 * j + l] = (uint8_t)clampi(round_even((x[16 * j + l] + mj) / dj), 0, 3);
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *q = L + 128 * h + l;
                y[b].qs[32 * h + l] = (uint8_t)(q[0] | (q[32] << 2) | (q[64] << 4) | (q[96] << 6));
            }
    }
}

void sm_dequantize_q2_K(float *y, const void *xv, int n) {
    const sm_block_q2_K *x = xv;
    for (int b = 0; b < n / SM_QK_K; b++) {
        float d = sm_fp16_to_fp32(x[b].d), dmin = sm_fp16_to_fp32(x[b].dmin);
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 4; k++)
                for (int half = 0; half < 2; half++) {
                    uint8_t s = x[b].scales[8 * h + 2 * k + half];
                    float dl = d * (s & 0x0F), ml = dmin * (s >> 4);
                    const uint8_t *q = x[b].qs + 32 * h + 16 * half;
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l] >> (2 * k)) & 3) - ml;
                }
    }
}

/* d * (sum_j sc_j q.x_j) - dmin * (sum_j m_j sum x_j) */
float sm_dot_q2_K_q8_K(const sm_block_q2_K *w, const sm_block_q8_K *x, int n) {
    float sum = 0.0f;
    for (int b = 0; b < n / SM_QK_K; b++) {
        int32_t dot = 0, mins = 0;
        for (int j = 0; j < 16; j++) {
            int32_t s = 0;
            for (int e = 16 * j; e < 16 * j + 16; e++) {
                int code = (w[b].qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
                s += code * x[b].qs[e];
            }
            dot += (w[b].scales[j] & 0x0F) * s;
            mins += (w[b].scales[j] >> 4) * x[b].bsums[j];
        }
        sum += x[b].d * (sm_fp16_to_fp32(w[b].d) * (float)dot - sm_fp16_to_fp32(w[b].dmin) * (float)mins);
    }
    return sum;
}

/* ---------------------------------------------------------------- Q3_K */

void sm_quantize_q3_K(void *yv, const float *x, int n) {
    sm_block_q3_K *y = yv;
    for (int b = 0; b < n / SM_QK_K; b++, x += SM_QK_K) {
        int8_t L[SM_QK_K];
        float sc[16], amax = 0, max = 0;
        for (int j = 0; j < 16; j++) {
            sc[j] = fit_q3(16, 4, x + 16 * j, L + 16 * j);
            if (fabsf(sc[j]) > amax) { amax = fabsf(sc[j]); max = sc[j]; }
        }
        memset(y[b].scales, 0, 12);
        y[b].d = 0;
        if (max != 0) {
            float inv = -32 / max;
            for (int j = 0; j < 16; j++) {
                int l = clampi(round_even(inv * sc[j]), -32, 31) + 32;
                if (j < 8) y[b].scales[j] = (uint8_t)(l & 0x0F);
                else y[b].scales[j - 8] |= (uint8_t)((l & 0x0F) << 4);
                y[b].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            y[b].d = sm_fp32_to_fp16(1 / inv);
        }
        int8_t s[16];
        sm_q3_K_scales(y[b].scales, s);
        float d = sm_fp16_to_fp32(y[b].d);
        for (int j = 0; j < 16; j++) {
            float dj = d * s[j];
            if (dj == 0) continue;
            for (int l = 0; l < 16; l++) L[16 * j + l] = (int8_t)(clampi(round_even(x[16 * j + l] / dj), -4, 3) + 4);
        }
        memset(y[b].hmask, 0, 32);
        memset(y[b].qs, 0, 64);
        for (int e = 0; e < SM_QK_K; e++) {
            int h = e / 128, k = (e % 128) / 32, l = e % 32;
            y[b].hmask[l] |= (uint8_t)((L[e] >> 2) << (4 * h + k));
            y[b].qs[32 * h + l] |= (uint8_t)((L[e] & 3) << (2 * k));
        }
    }
}

void sm_dequantize_q3_K(float *y, const void *xv, int n) {
    const sm_block_q3_K *x = xv;
    for (int b = 0; b < n / SM_QK_K; b++) {
        int8_t s[16];
        sm_q3_K_scales(x[b].scales, s);
        float d = sm_fp16_to_fp32(x[b].d);
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 4; k++)
                for (int half = 0; half < 2; half++) {
                    float dl = d * s[8 * h + 2 * k + half];
                    for (int l = 16 * half; l < 16 * half + 16; l++) {
                        int q = ((x[b].qs[32 * h + l] >> (2 * k)) & 3) + 4 * ((x[b].hmask[l] >> (4 * h + k)) & 1) - 4;
                        *y++ = dl * q;
                    }
                }
    }
}

float sm_dot_q3_K_q8_K(const sm_block_q3_K *w, const sm_block_q8_K *x, int n) {
    float sum = 0.0f;
    for (int b = 0; b < n / SM_QK_K; b++) {
        int8_t s[16];
        sm_q3_K_scales(w[b].scales, s);
        int32_t dot = 0;
        for (int e = 0; e < SM_QK_K; e++) {
            int h = e / 128, k = (e % 128) / 32, l = e % 32;
            int q = (((w[b].qs[32 * h + l] >> (2 * k)) & 3) | (((w[b].hmask[l] >> (4 * h + k)) & 1) << 2)) - 4;
            dot += s[e / 16] * q * x[b].qs[e];
        }
        sum += x[b].d * sm_fp16_to_fp32(w[b].d) * (float)dot;
    }
    return sum;
}

/* ------------------------------------------------------- Q4_K and Q5_K */

void sm_quantize_q4_K_fit(void *yv, const float *x, int n) {
    sm_block_q4_K *y = yv;
    for (int b = 0; b < n / SM_QK_K; b++, x += SM_QK_K) {
        uint8_t L[SM_QK_K];
        quantize_k4_block(x, 15, -1.0f, 20, &y[b].d, &y[b].dmin, y[b].scales, L);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) y[b].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
    }
}

void sm_quantize_q5_K(void *yv, const float *x, int n) {
    sm_block_q5_K *y = yv;
    for (int b = 0; b < n / SM_QK_K; b++, x += SM_QK_K) {
        uint8_t L[SM_QK_K];
        quantize_k4_block(x, 31, -0.5f, 15, &y[b].d, &y[b].dmin, y[b].scales, L);
        memset(y[b].qh, 0, 32);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
                y[b].qs[32 * c + l] = (uint8_t)((lo & 0x0F) | ((hi & 0x0F) << 4));
                y[b].qh[l] |= (uint8_t)(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
            }
    }
}

void sm_dequantize_q5_K(float *y, const void *xv, int n) {
    const sm_block_q5_K *x = xv;
    for (int b = 0; b < n / SM_QK_K; b++) {
        float d = sm_fp16_to_fp32(x[b].d), dmin = sm_fp16_to_fp32(x[b].dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            sm_q4_K_scale_min(j, x[b].scales, &sc, &m);
            float dl = d * sc, ml = dmin * m;
            const uint8_t *q = x[b].qs + 32 * (j / 2);
            for (int l = 0; l < 32; l++) {
                int code = ((j & 1) ? q[l] >> 4 : q[l] & 0x0F) + 16 * ((x[b].qh[l] >> j) & 1);
                *y++ = dl * code - ml;
            }
        }
    }
}

float sm_dot_q5_K_q8_K(const sm_block_q5_K *w, const sm_block_q8_K *x, int n) {
    float sum = 0.0f;
    for (int b = 0; b < n / SM_QK_K; b++) {
        int32_t dot = 0, mins = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            sm_q4_K_scale_min(j, w[b].scales, &sc, &m);
            int32_t s = 0;
            for (int e = 32 * j; e < 32 * j + 32; e++) {
                uint8_t byte = w[b].qs[32 * (e / 64) + e % 32];
                int code = ((e / 32) % 2 ? byte >> 4 : byte & 0x0F) | (((w[b].qh[e % 32] >> (e / 32)) & 1) << 4);
                s += code * x[b].qs[e];
            }
            dot += sc * s;
            mins += m * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
        }
        sum += x[b].d * (sm_fp16_to_fp32(w[b].d) * (float)dot - sm_fp16_to_fp32(w[b].dmin) * (float)mins);
    }
    return sum;
}

/* ---------------------------------------------------------------- Q6_K */

void sm_quantize_q6_K_fit(void *yv, const float *x, int n) {
    sm_block_q6_K *y = yv;
    for (int b = 0; b < n / SM_QK_K; b++, x += SM_QK_K) {
        int8_t L[SM_QK_K];
        float sc[16], amax = 0, max = 0;
        for (int j = 0; j < 16; j++) {
            sc[j] = fit_qx(16, 32, x + 16 * j, L + 16 * j);
            if (fabsf(sc[j]) > amax) { amax = fabsf(sc[j]); max = sc[j]; }
        }
        memset(&y[b], 0, sizeof y[b]);
        if (amax < ZERO_EPS) continue;
        float inv = -128 / max;
        y[b].d = sm_fp32_to_fp16(1 / inv);
        for (int j = 0; j < 16; j++) y[b].scales[j] = (int8_t)clampi(round_even(inv * sc[j]), -128, 127);
        float d = sm_fp16_to_fp32(y[b].d);
        for (int j = 0; j < 16; j++) {
            float dj = d * y[b].scales[j];
            if (dj == 0) continue;
            for (int l = 0; l < 16; l++) L[16 * j + l] = (int8_t)(clampi(round_even(x[16 * j + l] / dj), -32, 31) + 32);
        }
        for (int e = 0; e < SM_QK_K; e++) {
            int h = e / 128, k = (e % 128) / 32, l = e % 32, q = L[e];
            y[b].ql[64 * h + 32 * (k & 1) + l] |= (uint8_t)((q & 0x0F) << (4 * (k >> 1)));
            y[b].qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * k));
        }
    }
}

/* -------------------------------------------------------------- IQ4_XS */

/* One sub-block's scale for the non-linear levels, x^2-weighted: start at
 * the extreme mapped to the level -127, then try 15 neighbouring inverse
 * scales and keep the best least-squares fit. */
static float fit_iq4(const float *x) {
    float amax, max = signed_max(x, 32, &amax);
    if (amax < ZERO_EPS) return 0.0f;
    float d = -max / sm_iq4nl_values[0], id = 1 / d, best = 0, sqx = 0, sq2 = 0;
    for (int i = 0; i < 32; i++) {
        float q = sm_iq4nl_values[nearest_iq4(id * x[i])], w = x[i] * x[i];
        sqx += w * q * x[i];
        sq2 += w * q * q;
    }
    d = sqx / sq2;
    best = d * sqx;
    for (int t = -7; t <= 7; t++) {
        float inv = (t + sm_iq4nl_values[0]) / max;
        sqx = sq2 = 0;
        for (int i = 0; i < 32; i++) {
            float q = sm_iq4nl_values[nearest_iq4(inv * x[i])], w = x[i] * x[i];
            sqx += w * q * x[i];
            sq2 += w * q * q;
        }
        if (sq2 > 0 && sqx * sqx > best * sq2) {
            d = sqx / sq2;
            best = d * sqx;
        }
    }
    return d;
}

void sm_quantize_iq4_xs(void *yv, const float *x, int n) {
    sm_block_iq4_xs *y = yv;
    for (int b = 0; b < n / SM_QK_K; b++, x += SM_QK_K) {
        float sc[8], amax = 0, max = 0;
        for (int j = 0; j < 8; j++) {
            sc[j] = fit_iq4(x + 32 * j);
            if (fabsf(sc[j]) > amax) { amax = fabsf(sc[j]); max = sc[j]; }
        }
        memset(&y[b], 0, sizeof y[b]);
        float d = -max / 32, inv = d ? 1 / d : 0;
        y[b].d = sm_fp32_to_fp16(d);
        for (int j = 0; j < 8; j++) {
            int l = clampi(round_even(inv * sc[j]), -32, 31);
            float dl = d * l, idl = dl ? 1 / dl : 0;
            for (int i = 0; i < 16; i++) {
                int lo = nearest_iq4(idl * x[32 * j + i]), hi = nearest_iq4(idl * x[32 * j + 16 + i]);
                y[b].qs[16 * j + i] = (uint8_t)(lo | (hi << 4));
            }
            l += 32;
            y[b].scales_l[j / 2] |= (uint8_t)((l & 0x0F) << (4 * (j % 2)));
            y[b].scales_h |= (uint16_t)((l >> 4) << (2 * j));
        }
    }
}

void sm_dequantize_iq4_xs(float *y, const void *xv, int n) {
    const sm_block_iq4_xs *x = xv;
    for (int b = 0; b < n / SM_QK_K; b++) {
        int8_t s[8];
        sm_iq4_xs_scales(&x[b], s);
        float d = sm_fp16_to_fp32(x[b].d);
        for (int j = 0; j < 8; j++, y += 32) {
            float dl = d * s[j];
            const uint8_t *q = x[b].qs + 16 * j;
            for (int i = 0; i < 16; i++) {
                y[i] = dl * sm_iq4nl_values[q[i] & 0x0F];
                y[i + 16] = dl * sm_iq4nl_values[q[i] >> 4];
            }
        }
    }
}

float sm_dot_iq4_xs_q8_K(const sm_block_iq4_xs *w, const sm_block_q8_K *x, int n) {
    float sum = 0.0f;
    for (int b = 0; b < n / SM_QK_K; b++) {
        int8_t s[8];
        sm_iq4_xs_scales(&w[b], s);
        int32_t dot = 0;
        for (int e = 0; e < SM_QK_K; e++) {
            uint8_t byte = w[b].qs[16 * (e / 32) + e % 16];
            int v = sm_iq4nl_values[e % 32 < 16 ? byte & 0x0F : byte >> 4];
            dot += s[e / 32] * v * x[b].qs[e];
        }
        sum += x[b].d * sm_fp16_to_fp32(w[b].d) * (float)dot;
    }
    return sum;
}

/* ------------------------------------------------- scalar matrix x vector */

#define SCALAR_MATVEC_K(name, W_T, DOT)                                                 \
    void name(float *out, const void *w, const void *xq, int rows, int cols) {         \
        int nb = cols / SM_QK_K;                                                       \
        for (int r = 0; r < rows; r++) out[r] = DOT((const W_T *)w + (size_t)r * nb, (const sm_block_q8_K *)xq, cols); \
    }
SCALAR_MATVEC_K(sm_matvec_q2_K_scalar, sm_block_q2_K, sm_dot_q2_K_q8_K)
SCALAR_MATVEC_K(sm_matvec_q3_K_scalar, sm_block_q3_K, sm_dot_q3_K_q8_K)
SCALAR_MATVEC_K(sm_matvec_q5_K_scalar, sm_block_q5_K, sm_dot_q5_K_q8_K)
SCALAR_MATVEC_K(sm_matvec_iq4_xs_scalar, sm_block_iq4_xs, sm_dot_iq4_xs_q8_K)

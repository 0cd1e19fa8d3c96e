/* norm.c - training's LayerNorm and RMSNorm, one row at a time (the
 * trainer's threads split the rows, or the columns for the weight
 * gradients): the portable reference and its AVX2 and AVX-512 versions,
 * which give the same bits.
 *
 * A row's sums are taken in double as eight running sums (element i goes
 * to sum i % 8), added in a fixed order at the end: eight times the
 * throughput of one chain of additions, and the layout of one AVX-512
 * register of doubles (two AVX2 ones). Nothing is fused: each product and
 * sum is rounded as written, at every level. */
#include "dispatch.h"
#include "simd.h"

#include <math.h>

/* ------------------------------------------------------------ reference */

/* acc = the eight running sums of term over i < n, combined */
#define SUM8(acc, n, term)                                                                \
    do {                                                                                  \
        double s8_[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                         \
        int i8_ = 0;                                                                      \
        for (; i8_ + 8 <= (n); i8_ += 8)                                                  \
            _Pragma("GCC unroll 8") for (int j8_ = 0; j8_ < 8; j8_++) {                   \
                int i = i8_ + j8_;                                                        \
                s8_[j8_] += (term);                                                       \
            }                                                                             \
        for (int i = i8_; i < (n); i++) s8_[i - i8_] += (term);                           \
        (acc) = combine8(s8_);                                                            \
    } while (0)

/* for (i = i0; i < i1; i++) body, eight at a time written out (gcc -O2
 * keeps them scalar, with fewer loop instructions per element) */
#define FOR8(i, i0, i1, body)                                                             \
    do {                                                                                  \
        int f8_ = (i0);                                                                   \
        for (; f8_ + 8 <= (i1); f8_ += 8)                                                 \
            _Pragma("GCC unroll 8") for (int j8_ = 0; j8_ < 8; j8_++) {                   \
                int i = f8_ + j8_;                                                        \
                body;                                                                     \
            }                                                                             \
        for (int i = f8_; i < (i1); i++) { body; }                                        \
    } while (0)

static double combine8(const double s[8]) { return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])); }

void sm_norm_fwd_scalar(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int n,
                        float eps, int layer_norm) {
    if (layer_norm) {
        double s, sq;
        SUM8(s, n, (double)x[i]);
        double mu = s / n;
        SUM8(sq, n, ((double)x[i] - mu) * ((double)x[i] - mu));
        float r = (float)(1.0 / sqrt(sq / n + eps)), m = (float)mu;
        FOR8(i, 0, n, out[i] = (x[i] - m) * r * w[i] + b[i]);
        *mean = m;
        *rstd = r;
    } else {
        double sq;
        SUM8(sq, n, (double)x[i] * x[i]);
        float r = (float)(1.0 / sqrt(sq / n + eps));
        FOR8(i, 0, n, out[i] = x[i] * r * w[i]);
        *rstd = r;
    }
}

/* LayerNorm: dx += (w dy - mean(w dy) - xhat mean(w dy xhat)) r with xhat = (x - mu) r;
 * RMSNorm (y = x r w): dx += r w dy - x r^3 / n * sum of dy w x */
void sm_norm_bwd_scalar(float *dx, const float *dy, const float *x, const float *w, float mu, float r, int n,
                        int layer_norm) {
    if (layer_norm) {
        double sd, sdn;   /* sums of w dy and of w dy times the normalized input */
        SUM8(sd, n, (double)(w[i] * dy[i]));
        SUM8(sdn, n, (double)(w[i] * dy[i]) * ((x[i] - mu) * r));
        float dmean = (float)(sd / n), dnorm_norm = (float)(sdn / n);
        FOR8(i, 0, n, dx[i] += (w[i] * dy[i] - dmean - (x[i] - mu) * r * dnorm_norm) * r);
    } else {
        double s;
        SUM8(s, n, (double)dy[i] * w[i] * x[i]);
        float k = (float)(s * r * r * r / n);
        FOR8(i, 0, n, dx[i] += r * w[i] * dy[i] - x[i] * k);
    }
}

void sm_norm_cols_bwd_scalar(float *dw, float *db, const float *dy, const float *x, float mu, float r, int n,
                             int layer_norm) {
    if (layer_norm) {
        if (db) FOR8(i, 0, n, db[i] += dy[i]);
        if (dw) FOR8(i, 0, n, dw[i] += (x[i] - mu) * r * dy[i]);
    } else if (dw) {
        FOR8(i, 0, n, dw[i] += dy[i] * x[i] * r);
    }
}

/* ------------------------------------------------------------------ x86
 * The same operations in the same order, eight elements per step: the
 * eight running sums are the lanes (lane j holds s8_[j]), the partial
 * block of eight at the end and the elementwise tails run the reference's
 * scalar code on those lanes. */
#if defined(__x86_64__)
#define AVX2 SM_TARGET_AVX2
#define AVX512 SM_TARGET_AVX512

/* The running sums held as v[8] (stored from the registers), the tail
 * added as the reference adds it, then combined. */
#define TAIL8(v, n, i8, term)                                                             \
    do {                                                                                  \
        for (int i = (i8); i < (n); i++) (v)[i - (i8)] += (term);                         \
    } while (0)

/* -- AVX-512: one register of eight doubles (the weight gradients, elementwise
 * and bound by memory, are the AVX2 level's at this level too, as axpy is) */
static inline AVX512 __m512d pd8(const float *p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
static inline AVX512 __m256 ps8(const float *p) { return _mm256_loadu_ps(p); }
static inline AVX512 __m512d cvt8(__m256 v) { return _mm512_cvtps_pd(v); }

AVX512 void sm_norm_fwd_avx512(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b,
                               int n, float eps, int layer_norm) {
    int i8 = n / 8 * 8;
    double v[8];
    if (layer_norm) {
        __m512d s = _mm512_setzero_pd();
        for (int i = 0; i < i8; i += 8) s = _mm512_add_pd(s, pd8(x + i));
        _mm512_storeu_pd(v, s);
        TAIL8(v, n, i8, (double)x[i]);
        double mu = combine8(v) / n;
        __m512d sq = _mm512_setzero_pd(), m8 = _mm512_set1_pd(mu);
        for (int i = 0; i < i8; i += 8) {
            __m512d d = _mm512_sub_pd(pd8(x + i), m8);
            sq = _mm512_add_pd(sq, _mm512_mul_pd(d, d));
        }
        _mm512_storeu_pd(v, sq);
        TAIL8(v, n, i8, ((double)x[i] - mu) * ((double)x[i] - mu));
        float r = (float)(1.0 / sqrt(combine8(v) / n + eps)), m = (float)mu;
        __m512 mv = _mm512_set1_ps(m), rv = _mm512_set1_ps(r);
        int i = 0;
        for (; i + 16 <= n; i += 16) {
            __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv), rv), _mm512_loadu_ps(w + i));
            _mm512_storeu_ps(out + i, _mm512_add_ps(y, _mm512_loadu_ps(b + i)));
        }
        for (; i < n; i++) out[i] = (x[i] - m) * r * w[i] + b[i];
        *mean = m;
        *rstd = r;
    } else {
        __m512d sq = _mm512_setzero_pd();
        for (int i = 0; i < i8; i += 8) {
            __m512d d = pd8(x + i);
            sq = _mm512_add_pd(sq, _mm512_mul_pd(d, d));
        }
        _mm512_storeu_pd(v, sq);
        TAIL8(v, n, i8, (double)x[i] * x[i]);
        float r = (float)(1.0 / sqrt(combine8(v) / n + eps));
        __m512 rv = _mm512_set1_ps(r);
        int i = 0;
        for (; i + 16 <= n; i += 16)
            _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), rv), _mm512_loadu_ps(w + i)));
        for (; i < n; i++) out[i] = x[i] * r * w[i];
        *rstd = r;
    }
}

AVX512 void sm_norm_bwd_avx512(float *dx, const float *dy, const float *x, const float *w, float mu, float r, int n,
                               int layer_norm) {
    int i8 = n / 8 * 8;
    double v[8], v2[8];
    if (layer_norm) {
        __m512d sd = _mm512_setzero_pd(), sdn = _mm512_setzero_pd();
        __m256 m8 = _mm256_set1_ps(mu), r8 = _mm256_set1_ps(r);
        for (int j = 0; j < i8; j += 8) {
            __m512d wd = cvt8(_mm256_mul_ps(ps8(w + j), ps8(dy + j)));
            __m512d xn = cvt8(_mm256_mul_ps(_mm256_sub_ps(ps8(x + j), m8), r8));
            sd = _mm512_add_pd(sd, wd);
            sdn = _mm512_add_pd(sdn, _mm512_mul_pd(wd, xn));
        }
        _mm512_storeu_pd(v, sd);
        _mm512_storeu_pd(v2, sdn);
        TAIL8(v, n, i8, (double)(w[i] * dy[i]));
        TAIL8(v2, n, i8, (double)(w[i] * dy[i]) * ((x[i] - mu) * r));
        float dmean = (float)(combine8(v) / n), dnorm_norm = (float)(combine8(v2) / n);
        __m512 mv = _mm512_set1_ps(mu), rv = _mm512_set1_ps(r), dm = _mm512_set1_ps(dmean);
        __m512 dnn = _mm512_set1_ps(dnorm_norm);
        int i = 0;
        for (; i + 16 <= n; i += 16) {
            __m512 t = _mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(dy + i)), dm);
            __m512 xn = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv), rv), dnn);
            _mm512_storeu_ps(dx + i, _mm512_add_ps(_mm512_loadu_ps(dx + i), _mm512_mul_ps(_mm512_sub_ps(t, xn), rv)));
        }
        for (; i < n; i++) dx[i] += (w[i] * dy[i] - dmean - (x[i] - mu) * r * dnorm_norm) * r;
    } else {
        __m512d s = _mm512_setzero_pd();
        for (int j = 0; j < i8; j += 8) s = _mm512_add_pd(s, _mm512_mul_pd(_mm512_mul_pd(pd8(dy + j), pd8(w + j)), pd8(x + j)));
        _mm512_storeu_pd(v, s);
        TAIL8(v, n, i8, (double)dy[i] * w[i] * x[i]);
        float k = (float)(combine8(v) * r * r * r / n);
        __m512 rv = _mm512_set1_ps(r), kv = _mm512_set1_ps(k);
        int i = 0;
        for (; i + 16 <= n; i += 16) {
            __m512 t = _mm512_mul_ps(_mm512_mul_ps(rv, _mm512_loadu_ps(w + i)), _mm512_loadu_ps(dy + i));
            t = _mm512_sub_ps(t, _mm512_mul_ps(_mm512_loadu_ps(x + i), kv));
            _mm512_storeu_ps(dx + i, _mm512_add_ps(_mm512_loadu_ps(dx + i), t));
        }
        for (; i < n; i++) dx[i] += r * w[i] * dy[i] - x[i] * k;
    }
}

/* -- AVX2: the eight running sums in two registers of four doubles (lanes 0-3 and 4-7) */
static inline AVX2 void pd4x2(const float *p, __m256d *lo, __m256d *hi) {
    __m256 v = _mm256_loadu_ps(p);
    *lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    *hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
}

static inline AVX2 void cvt4x2(__m256 v, __m256d *lo, __m256d *hi) {
    *lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    *hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
}

static inline AVX2 void store4x2(double v[8], __m256d lo, __m256d hi) {
    _mm256_storeu_pd(v, lo);
    _mm256_storeu_pd(v + 4, hi);
}

AVX2 void sm_norm_fwd_avx2(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int n,
                           float eps, int layer_norm) {
    int i8 = n / 8 * 8;
    double v[8];
    __m256d lo, hi;
    if (layer_norm) {
        __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
        for (int i = 0; i < i8; i += 8) {
            pd4x2(x + i, &lo, &hi);
            s0 = _mm256_add_pd(s0, lo);
            s1 = _mm256_add_pd(s1, hi);
        }
        store4x2(v, s0, s1);
        TAIL8(v, n, i8, (double)x[i]);
        double mu = combine8(v) / n;
        __m256d m4 = _mm256_set1_pd(mu);
        s0 = s1 = _mm256_setzero_pd();
        for (int i = 0; i < i8; i += 8) {
            pd4x2(x + i, &lo, &hi);
            lo = _mm256_sub_pd(lo, m4);
            hi = _mm256_sub_pd(hi, m4);
            s0 = _mm256_add_pd(s0, _mm256_mul_pd(lo, lo));
            s1 = _mm256_add_pd(s1, _mm256_mul_pd(hi, hi));
        }
        store4x2(v, s0, s1);
        TAIL8(v, n, i8, ((double)x[i] - mu) * ((double)x[i] - mu));
        float r = (float)(1.0 / sqrt(combine8(v) / n + eps)), m = (float)mu;
        __m256 mv = _mm256_set1_ps(m), rv = _mm256_set1_ps(r);
        int i = 0;
        for (; i + 8 <= n; i += 8) {
            __m256 y = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv), rv), _mm256_loadu_ps(w + i));
            _mm256_storeu_ps(out + i, _mm256_add_ps(y, _mm256_loadu_ps(b + i)));
        }
        for (; i < n; i++) out[i] = (x[i] - m) * r * w[i] + b[i];
        *mean = m;
        *rstd = r;
    } else {
        __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
        for (int i = 0; i < i8; i += 8) {
            pd4x2(x + i, &lo, &hi);
            s0 = _mm256_add_pd(s0, _mm256_mul_pd(lo, lo));
            s1 = _mm256_add_pd(s1, _mm256_mul_pd(hi, hi));
        }
        store4x2(v, s0, s1);
        TAIL8(v, n, i8, (double)x[i] * x[i]);
        float r = (float)(1.0 / sqrt(combine8(v) / n + eps));
        __m256 rv = _mm256_set1_ps(r);
        int i = 0;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), rv), _mm256_loadu_ps(w + i)));
        for (; i < n; i++) out[i] = x[i] * r * w[i];
        *rstd = r;
    }
}

AVX2 void sm_norm_bwd_avx2(float *dx, const float *dy, const float *x, const float *w, float mu, float r, int n,
                           int layer_norm) {
    int i8 = n / 8 * 8;
    double v[8], v2[8];
    __m256d lo, hi, xlo, xhi;
    if (layer_norm) {
        __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), b0 = _mm256_setzero_pd(), b1 = _mm256_setzero_pd();
        __m256 m8 = _mm256_set1_ps(mu), r8 = _mm256_set1_ps(r);
        for (int j = 0; j < i8; j += 8) {
            cvt4x2(_mm256_mul_ps(_mm256_loadu_ps(w + j), _mm256_loadu_ps(dy + j)), &lo, &hi);
            cvt4x2(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), m8), r8), &xlo, &xhi);
            a0 = _mm256_add_pd(a0, lo);
            a1 = _mm256_add_pd(a1, hi);
            b0 = _mm256_add_pd(b0, _mm256_mul_pd(lo, xlo));
            b1 = _mm256_add_pd(b1, _mm256_mul_pd(hi, xhi));
        }
        store4x2(v, a0, a1);
        store4x2(v2, b0, b1);
        TAIL8(v, n, i8, (double)(w[i] * dy[i]));
        TAIL8(v2, n, i8, (double)(w[i] * dy[i]) * ((x[i] - mu) * r));
        float dmean = (float)(combine8(v) / n), dnorm_norm = (float)(combine8(v2) / n);
        __m256 dm = _mm256_set1_ps(dmean), dnn = _mm256_set1_ps(dnorm_norm);
        int i = 0;
        for (; i + 8 <= n; i += 8) {
            __m256 t = _mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(dy + i)), dm);
            __m256 xn = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m8), r8), dnn);
            _mm256_storeu_ps(dx + i, _mm256_add_ps(_mm256_loadu_ps(dx + i), _mm256_mul_ps(_mm256_sub_ps(t, xn), r8)));
        }
        for (; i < n; i++) dx[i] += (w[i] * dy[i] - dmean - (x[i] - mu) * r * dnorm_norm) * r;
    } else {
        __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), wlo, whi;
        for (int j = 0; j < i8; j += 8) {
            pd4x2(dy + j, &lo, &hi);
            pd4x2(w + j, &wlo, &whi);
            pd4x2(x + j, &xlo, &xhi);
            a0 = _mm256_add_pd(a0, _mm256_mul_pd(_mm256_mul_pd(lo, wlo), xlo));
            a1 = _mm256_add_pd(a1, _mm256_mul_pd(_mm256_mul_pd(hi, whi), xhi));
        }
        store4x2(v, a0, a1);
        TAIL8(v, n, i8, (double)dy[i] * w[i] * x[i]);
        float k = (float)(combine8(v) * r * r * r / n);
        __m256 rv = _mm256_set1_ps(r), kv = _mm256_set1_ps(k);
        int i = 0;
        for (; i + 8 <= n; i += 8) {
            __m256 t = _mm256_mul_ps(_mm256_mul_ps(rv, _mm256_loadu_ps(w + i)), _mm256_loadu_ps(dy + i));
            t = _mm256_sub_ps(t, _mm256_mul_ps(_mm256_loadu_ps(x + i), kv));
            _mm256_storeu_ps(dx + i, _mm256_add_ps(_mm256_loadu_ps(dx + i), t));
        }
        for (; i < n; i++) dx[i] += r * w[i] * dy[i] - x[i] * k;
    }
}

AVX2 void sm_norm_cols_bwd_avx2(float *dw, float *db, const float *dy, const float *x, float mu, float r, int n,
                                int layer_norm) {
    __m256 mv = _mm256_set1_ps(mu), rv = _mm256_set1_ps(r);
    int i = 0;
    if (layer_norm) {
        for (; i + 8 <= n; i += 8) {
            __m256 d = _mm256_loadu_ps(dy + i);
            if (db) _mm256_storeu_ps(db + i, _mm256_add_ps(_mm256_loadu_ps(db + i), d));
            if (dw) {
                __m256 t = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv), rv), d);
                _mm256_storeu_ps(dw + i, _mm256_add_ps(_mm256_loadu_ps(dw + i), t));
            }
        }
    } else if (dw) {
        for (; i + 8 <= n; i += 8) {
            __m256 t = _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(dy + i), _mm256_loadu_ps(x + i)), rv);
            _mm256_storeu_ps(dw + i, _mm256_add_ps(_mm256_loadu_ps(dw + i), t));
        }
    }
    if (i < n)
        sm_norm_cols_bwd_scalar(dw ? dw + i : NULL, db ? db + i : NULL, dy + i, x + i, mu, r, n - i, layer_norm);
}
#endif

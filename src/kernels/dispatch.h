/* dispatch.h - the table of kernel variants a session runs with, chosen at
 * run time from what the CPU supports (or forced, for tests and profiling,
 * by name or by the SM_KERNELS environment variable). */
#ifndef SM_KERNELS_DISPATCH_H
#define SM_KERNELS_DISPATCH_H

#include <stdint.h>

typedef void (*sm_matvec_x16_fn)(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);

typedef struct sm_kernel_table {
    const char *name;   /* "scalar", "avx2", "avx512" */
    void (*matvec_f32)(float *out, const float *w, const float *x, int rows, int cols);
    void (*matvec_f16)(float *out, const uint16_t *w, const float *x, int rows, int cols);
    /* quantized weights against Q8_0-quantized activations xq */
    void (*matvec_q8_0)(float *out, const void *w, const void *xq, int rows, int cols);
    void (*matvec_q4_0)(float *out, const void *w, const void *xq, int rows, int cols);
    void (*quantize_q8_0)(void *out, const float *x, int n);
    /* K-quant weights against Q8_K activations (sm_quantize_q8_K) */
    void (*matvec_q4_K)(float *out, const void *w, const void *xq, int rows, int cols);
    void (*matvec_q6_K)(float *out, const void *w, const void *xq, int rows, int cols);
    void (*gelu)(float *x, int n);
    /* dinp += dout * gelu'(inp) (training) */
    void (*gelu_grad)(float *dinp, const float *inp, const float *dout, int n);
    void (*swiglu)(float *out, const float *gate, const float *up, int n);
    void (*softmax)(float *x, int n);
    /* x[i] = exp(x[i] - shift); returns the sum (online softmax) */
    float (*exp_sum)(float *x, float shift, int n);
    float (*dot)(const float *a, const float *b, int n);
    void (*axpy)(float *y, float a, const float *x, int n);   /* y += a x */
    /* c[t * ldc + r] = w row r . a row t, for m tokens and n weight rows */
    void (*matmul_f32)(float *c, const float *a, const float *w, int m, int n, int k, int ldc);
    /* optional: the same with a packed once per product by pack_a into
     * ((m + 15) / 16) * 16 * k floats; NULL where a level has none */
    void (*pack_a)(float *packed, const float *a, int m, int k);
    void (*matmul_packed)(float *c, const float *packed, const float *w, int m, int n, int k, int ldc);
    /* optional: matrix x vector on weights interleaved 16 rows at a time
     * (interleave.h); rows a multiple of 16, xsum the activation blocks'
     * sums. A model interleaves its Q4_0/Q8_0 matrices at load when the
     * best level has these. */
    sm_matvec_x16_fn matvec_q4_0_x16, matvec_q8_0_x16;
    /* weights to floats for the prefill products: F16 rows, and one
     * interleaved group of 16 rows (16 x cols floats, row after row) */
    void (*f16_to_f32)(float *out, const uint16_t *in, int n);
    void (*dequantize_q4_0x16)(float *out, const void *group, int cols);
    void (*dequantize_q8_0x16)(float *out, const void *group, int cols);
} sm_kernel_table;

/* Thread ith of nth's share of kt->pack_a: every nth 16-row panel of the
 * m x k matrix a (panels are independent, so a pool packs in parallel). */
void sm_pack_a_share(const sm_kernel_table *kt, float *packed, const float *a, int m, int k, int ith, int nth);

/* The named variant if this CPU can run it, else NULL. NULL or "auto"
 * names the best the CPU supports. */
const sm_kernel_table *sm_kernels_get(const char *name);
/* Every variant this CPU can run, best last; returns the count. */
int sm_kernels_available(const sm_kernel_table **out, int cap);

#endif

/* dispatch.h - the kernel levels a session can run with (scalar, NEON,
 * AVX2, AVX-512), chosen at run time from what the CPU supports, or forced
 * by name for tests and profiling. A level's table holds the kernels that
 * do not depend on an element type; the per-type ones (matrix x vector,
 * quantizing activations, dequantizing) are in the type table (types.h),
 * one slot per level, and sm_kernels_for_type() picks them. */
#ifndef SM_KERNELS_DISPATCH_H
#define SM_KERNELS_DISPATCH_H

#include <stddef.h>
#include <stdint.h>
#include "types.h"

/* AdamW's constants for one step (training's optimizer): the gradient
 * scale (clipping), the moments' decays, the bias corrections 1 - beta^t,
 * the learning rate, epsilon and the weight decay. */
typedef struct sm_adamw_step {
    float scale, beta1, beta2, c1, c2, lr, eps, weight_decay;
} sm_adamw_step;

/* The portable AdamW (the scalar level's slot; the SIMD ones finish their
 * tails with it). */
void sm_adamw_scalar(float *w, float *g, float *m, float *v, size_t n, const sm_adamw_step *a);
/* Training's RoPE rotation of n pairs (the table's rope_pairs), the reference the SIMD levels
 * give the bits of (and finish their last pairs with). */
void sm_rope_pairs_scalar(float *x, const float *c, const float *s, float sign, int n);

/* Training's norms, one row of n (norm.c; the reference is the scalar
 * level's slot, the SIMD ones finish their column tails with it):
 * LayerNorm when layer_norm (out = (x - mean) rstd w + b, mean and rstd
 * written), else RMSNorm (out = x rstd w, rstd written; mean and b unused);
 * the input gradient dx += ...; the weight and bias gradients dw += ... and
 * db += ... of one row over n columns (dw or db may be NULL). */
void sm_norm_fwd_scalar(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int n,
                        float eps, int layer_norm);
void sm_norm_bwd_scalar(float *dx, const float *dy, const float *x, const float *w, float mean, float rstd, int n,
                        int layer_norm);
void sm_norm_cols_bwd_scalar(float *dw, float *db, const float *dy, const float *x, float mean, float rstd, int n,
                             int layer_norm);

typedef struct sm_kernel_table {
    const char *name;   /* "scalar", "neon", "avx2", "avx512" */
    int level;          /* enum sm_kernel_level */
    const struct sm_kernel_table *fallback;   /* the level below, NULL for scalar */
    void (*gelu)(float *x, int n);
    /* dinp = dout * gelu'(inp) (training; what dinp held is not read) */
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
    /* optional, the strided product: c[t * ldc + r] = (accumulate ? c[t * ldc + r] : 0) + the sum over
     * x < k of a(t, x) w(r, x), for t < m and r < n, where a(t, x) = a[t * a_rs + x * a_cs] was packed by
     * gemm_pack into panels of gemm_mr tokens ((m + gemm_mr - 1) / gemm_mr * gemm_mr * k floats; panels
     * p0 <= p < p1 per call) and w(r, x) = w[r * w_rs + x * w_cs] is read in place: either operand may
     * be stored by rows or by columns. Each element is one sum in a fixed order, whatever n a call
     * covers. NULL where a level has none. */
    int gemm_mr;
    int gemm_nr;   /* weight rows per register tile: products split across threads in multiples of it */
    void (*gemm_pack)(float *packed, const float *a, size_t a_rs, size_t a_cs, int m, int k, int p0, int p1);
    void (*gemm)(float *c, int ldc, const float *packed, int m, const float *w, size_t w_rs, size_t w_cs, int n, int k,
                 int flags);   /* flags: SM_GEMM_ACCUMULATE (1: accumulate), SM_GEMM_STREAM (see gemm_strided) */
    /* training's SwiGLU backward: with s = sigmoid(g), dg = dh u s (1 + g (1 - s)), du = dh g s (set, not added) */
    void (*swiglu_grad)(float *dg, float *du, const float *g, const float *u, const float *dh, int n);
    /* AdamW on n parameters: with gi = g scale, m = beta1 m + (1 - beta1) gi, v = beta2 v + (1 - beta2) gi gi,
     * w -= lr (m / c1 / (sqrt(v / c2) + eps) + weight_decay w), g = 0; each operation rounded as written
     * (no fused multiply-add), so every level gives the same bits */
    void (*adamw)(float *w, float *g, float *m, float *v, size_t n, const sm_adamw_step *a);
    /* optional: the strided product with F16 weights stored by rows (w(r, x) = w[r * w_rs + x]),
     * converted as they are packed; the same sums as gemm on the weights converted to F32 */
    void (*gemm_f16)(float *c, int ldc, const float *packed, int m, const uint16_t *w, size_t w_rs, int n, int k,
                     int accumulate);
    /* optional: the same on F16's 16-row interleaved copy (sm_interleave_f16: no packing, the halves
     * converted in registers), n a multiple of 16; the same sums as gemm_f16 */
    void (*gemm_f16x16)(float *c, int ldc, const float *packed, int m, const uint16_t *w, int n, int k, int accumulate);
    /* optional: the same on F32 weights 16 rows per column (w(r, x) = w[16 k (r / 16) + 16 x + r % 16], a
     * type's dequant_x16_cols), read in place; n a multiple of 16; the same sums as gemm */
    void (*gemm_x16)(float *c, int ldc, const float *packed, int m, const float *w, int n, int k, int accumulate);
    /* training's norms, one row (sm_norm_fwd_scalar above): every level gives the reference's bits */
    void (*norm_fwd)(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int n,
                     float eps, int layer_norm);
    void (*norm_bwd)(float *dx, const float *dy, const float *x, const float *w, float mean, float rstd, int n,
                     int layer_norm);
    void (*norm_cols_bwd)(float *dw, float *db, const float *dy, const float *x, float mean, float rstd, int n,
                          int layer_norm);
    /* x[i] *= scale; returns the largest x[i] after (a row of attention scores, or its normalization) */
    float (*scale_max)(float *x, float scale, int n);
    /* softmax's backward in place (training's attention): with dot = sum of p[i] ds[i],
     * ds[i] = p[i] (ds[i] - dot) scale */
    void (*softmax_bwd)(float *ds, const float *p, float scale, int n);
    /* optional: gemm with the batch read in place (a(t, x) = a[t * a_rs + x * a_cs]): rows (a_cs = 1)
     * straight into the tile, a batch read by columns packed a run of panels at a time, as the product
     * reaches it, into scratch (gemm_scratch floats, the caller's, one per thread): a batch is not
     * written out packed and read back. flags: SM_GEMM_ACCUMULATE (c +=), SM_GEMM_STREAM (results past
     * the caches: for an output far larger than them, read once later). The same sums as gemm_pack and
     * gemm, whatever rows or tokens a call covers. */
    void (*gemm_strided)(float *c, int ldc, const float *a, size_t a_rs, size_t a_cs, int m, const float *w,
                         size_t w_rs, size_t w_cs, int n, int k, int flags, float *scratch);
    size_t gemm_scratch;
    /* training's RoPE: rotates the n pairs (x[2i], x[2i+1]) by the angles whose cosines are c[i] and
     * sines sign s[i]: x0 c - x1 (sign s), x0 (sign s) + x1 c, each product rounded and no fused
     * multiply-add, so every level gives the scalar level's bits */
    void (*rope_pairs)(float *x, const float *c, const float *s, float sign, int n);
    /* optional: gemm_f16's contract with BF16 weights stored by rows; the same sums as gemm on
     * the weights widened to F32, except on the AVX-512 level of a CPU whose vdpbf16ps runs at twice
     * the FMA's rate (AMD): there the batch is rounded to BF16 (nearest even) and each pair of
     * columns' exact products summed by that instruction, as llama.cpp's BF16 product does
     * (sm_gemm_bf16_variant_avx512 runs either variant) */
    void (*gemm_bf16)(float *c, int ldc, const float *packed, int m, const uint16_t *w, size_t w_rs, int n, int k,
                      int accumulate);
    /* optional: mixed precision's product (training with BF16 products): gemm_strided's contract, or
     * gemm's on a batch packed by gemm_pack (packed set, a NULL), with both operands rounded to BF16
     * (nearest even) and their products summed in F32 (SM_GEMM_STREAM is taken as a hint: the results
     * are stored as usual). Run it only where sm_kernels_mixed says so. */
    void (*gemm_mixed)(float *c, int ldc, const float *packed, const float *a, size_t a_rs, size_t a_cs, int m,
                       const float *w, size_t w_rs, size_t w_cs, int n, int k, int flags, float *scratch);
    /* dot and axpy with b / x an F16 or BF16 row (an F16 or BF16 KV cache's), each half widened as
     * it is read: the sums dot and axpy give on the row widened to F32 */
    float (*dot_f16)(const float *a, const void *bv, int n);
    void (*axpy_f16)(float *y, float a, const void *xv, int n);
    float (*dot_bf16)(const float *a, const void *bv, int n);
    void (*axpy_bf16)(float *y, float a, const void *xv, int n);
    /* the same two with b / x a Q8_0 row (a Q8_0 KV cache's), n a multiple of 32: each element its
     * block's scale times its value (exact in a float), the sums dot and axpy give on that row */
    float (*dot_q8_0)(const float *a, const void *bv, int n);
    void (*axpy_q8_0)(float *y, float a, const void *xv, int n);
} sm_kernel_table;

enum { SM_GEMM_ACCUMULATE = 1, SM_GEMM_STREAM = 2 };

/* The kernels of one element type at kt's level: each slot from the highest
 * level at or below kt that has it (the scalar level has every runnable
 * type's matvec). The x16 slots are only taken from kt's own chain, so a
 * session forced to a lower level never reads an interleaved layout. */
void sm_kernels_for_type(const sm_kernel_table *kt, uint32_t type, sm_type_kernels *out);

/* Whether kt->gemm_mixed exists and this CPU can run it (AVX512_BF16). */
int sm_kernels_mixed(const sm_kernel_table *kt);

/* Thread ith of nth's share of kt->pack_a: every nth 16-row panel of the
 * m x k matrix a (panels are independent, so a pool packs in parallel). */
void sm_pack_a_share(const sm_kernel_table *kt, float *packed, const float *a, int m, int k, int ith, int nth);

/* Thread ith of nth's share of kt->gemm_pack: a contiguous run of panels. */
void sm_gemm_pack_share(const sm_kernel_table *kt, float *packed, const float *a, size_t a_rs, size_t a_cs, int m,
                        int k, int ith, int nth);

/* The named variant if this CPU can run it, else NULL. NULL, "" or "auto"
 * names the one SM_KERNELS asks for, or else the best the CPU supports;
 * SM_KERNELS is the only environment variable the library reads. */
const sm_kernel_table *sm_kernels_get(const char *name);
/* What a NULL/"auto" request resolves to by name (SM_KERNELS or "auto"),
 * for error messages. */
const char *sm_kernels_requested(const char *name);
/* Every variant this CPU can run, best last; returns the count. */
int sm_kernels_available(const sm_kernel_table **out, int cap);

#endif

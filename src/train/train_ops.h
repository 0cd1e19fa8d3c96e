/* train_ops.h - the operations of a training step, forward beside backward
 * (train_ops.c). N rows of C features; backward passes add (+=) into their
 * gradient outputs, except where a comment says they set them. */
#ifndef SM_TRAIN_TRAIN_OPS_H
#define SM_TRAIN_TRAIN_OPS_H

#include <stddef.h>
#include "trainer.h"
#include "model/model.h"

/* out[n][o] = inp[n] . w[o] (+ bias[o]), for N rows, C inputs, OC outputs */
void sm_train_matmul_fwd(const sm_trainer *t, float *out, const float *inp, const float *w, const float *bias, int N,
                         int C, int OC);
/* dinp += dout w; dw += dout^T inp; dbias += column sums of dout. With set,
 * dinp = dout w instead: what dinp held is not read (it need not be cleared
 * first; the bits are those of adding to zeros). */
void sm_train_matmul_bwd(const sm_trainer *t, float *dinp, int set, float *dw, float *dbias, const float *dout,
                         const float *inp, const float *w, int N, int C, int OC);
/* The same products with a frozen matrix of any element type (LoRA's base):
 * forward through its F32 rows when it has them, else dequantized
 * SM_TRAIN_DEQ_ROWS rows at a time per thread ... */
void sm_train_matmul_fwd_frozen(const sm_trainer *t, float *out, const float *inp, const sm_train_frozen *w,
                                const float *bias, int N);
/* ... and the input gradient dinp += dout w (with set, dinp = dout w), through its cached transpose
 * when it has one, else w dequantized and transposed into the trainer's
 * product scratch for the one product. Both paths give the same bits. */
void sm_train_matmul_bwd_frozen(const sm_trainer *t, float *dinp, int set, const float *dout, const sm_train_frozen *w,
                                int N);
/* The F32 copies of a frozen matrix: its rows into w (rows x cols) and its
 * transpose into wt (cols x rows, from w, or from the matrix itself when w
 * is NULL: an F32 matrix); either may be NULL. */
void sm_train_frozen_copy(float *w, float *wt, const sm_matrix *m);
/* Row `row` of a frozen matrix as floats (an embedding). */
void sm_train_frozen_row(float *out, const sm_matrix *w, int row);
/* LoRA on top of a product with C inputs and OC outputs, on levels without
 * the strided product: ax = inp A^T (N x r, kept for the backward pass),
 * out += scale ax B^T; called right after sm_train_matmul_fwd_frozen of the
 * same inp, whose packing it reuses ... */
void sm_train_lora_fwd(const sm_trainer *t, float *out, float *ax, const float *inp, const float *a, const float *b,
                       float scale, int N, int C, int OC, int r);
/* The same as one product, on levels with the strided product (the trainer
 * has lora_w then): the adapted matrix merged, W' = W + scale B A (its F32
 * rows, or its rows converted, plus the rank-r product), out = inp W'^T
 * (+ bias) and ax = inp A^T; and for the backward pass dinp (+)= dout W'
 * (merged again), after which sm_train_lora_bwd with dinp NULL gives A's and
 * B's gradients. Sums in another order than the two products (rounding
 * level); the same bits whatever the cache budget and the thread count. */
void sm_train_lora_merged_fwd(const sm_trainer *t, float *out, float *ax, const float *inp, const sm_train_frozen *w,
                              const float *a, const float *b, const float *bias, float scale, int N, int r);
void sm_train_lora_merged_dinp(const sm_trainer *t, float *dinp, int set, const float *dout, const sm_train_frozen *w,
                               const float *a, const float *b, float scale, int N, int r);
/* ... and the backward pass of either: with g = scale dout B (into dax,
 * N x r), db += scale dout^T ax, da += g^T inp, dinp += g A (dinp NULL: not;
 * after sm_train_lora_merged_dinp it is NULL). */
void sm_train_lora_bwd(const sm_trainer *t, float *dinp, float *da, float *db, float *dax, const float *dout,
                       const float *inp, const float *ax, const float *a, const float *b, float scale, int N, int C,
                       int OC, int r);
/* Norms: dw and db may be NULL (a frozen norm). On the thread pool, the
 * same bits whatever the thread count. */
void sm_train_layernorm_fwd(const sm_trainer *t, float *out, float *mean, float *rstd, const float *inp,
                            const float *w, const float *b, int N, int C, float eps);
void sm_train_layernorm_bwd(const sm_trainer *t, float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean, const float *rstd, int N, int C);
void sm_train_rmsnorm_fwd(const sm_trainer *t, float *out, float *rstd, const float *inp, const float *w, int N,
                          int C, float eps);
void sm_train_rmsnorm_bwd(const sm_trainer *t, float *dinp, float *dw, const float *dout, const float *inp,
                          const float *w, const float *rstd, int N, int C);
/* dst[i] += src[i] for i < n (a residual add, a product's separate sum), on the thread pool */
void sm_train_add(const sm_trainer *t, float *dst, const float *src, size_t n);
/* x *= a over n floats (granite's scales, forward and backward). */
void sm_train_scale(const sm_trainer *t, float *x, float a, size_t n);
/* out = gelu(inp), or with relu2 relu(inp)^2 (nemotron, arcee) */
void sm_train_gelu_fwd(const sm_trainer *t, int relu2, float *out, const float *inp, size_t n);
/* dinp = dout gelu'(inp) (relu2: dout 2 relu(inp)): set, not added (the gradient of the activation's input
 * has no other term) */
void sm_train_gelu_bwd(const sm_trainer *t, int relu2, float *dinp, const float *inp, const float *dout, size_t n);
/* h = silu(g) * u (SwiGLU), or with gelu h = gelu(g) * u (GEGLU: gemma); the
 * backward sets dg and du */
void sm_train_gated_fwd(const sm_trainer *t, int gelu, float *h, const float *g, const float *u, size_t n);
void sm_train_gated_bwd(const sm_trainer *t, int gelu, float *dg, float *du, const float *g, const float *u,
                        const float *dh, size_t n);
/* The same SwiGLU on N rows of a fused gate and up (phi3): row n of gu is
 * [g u], F each, and h is N x F; its backward sets the rows of dgu. */
void sm_train_swiglu_fused_fwd(const sm_trainer *t, float *h, const float *gu, int N, int F);
void sm_train_swiglu_fused_bwd(const sm_trainer *t, float *dgu, const float *gu, const float *dh, int N, int F);
/* Rotates pairs of the first rope_dim values of every head (hd apart) of
 * each token (rows of x at stride ld: a fused qkv's q or k) by its
 * position's angles (rope_dim / 2 a position): (2i, 2i+1), or with neox
 * (i, i + rope_dim/2); sign -1 rotates back (the backward of a rotation is
 * its inverse). */
void sm_train_rope(const sm_trainer *t, float *x, size_t ld, int N, int T, int heads, int hd, int rope_dim, int neox,
                   const float *cs, const float *sn, float sign);

/* Causal attention over B sequences of T tokens; q rows have stride qs,
 * k/v rows stride kvs (so a fused qkv works); head h reads KV head
 * h / (heads / kv_heads). att keeps the B x heads x T x T weights. The
 * backward pass sets dq, dk and dv (what they held is not read). */
typedef struct att_shape {
    int B, T, heads, kv_heads, hd, qs, kvs;
    float scale;   /* of the scores: the model's (1 / sqrt(head size) but for gemma 27B-like shapes) */
    float softcap; /* scores soft-capped to cap tanh(score / cap) before the softmax (gemma2), or 0 */
    float alibi;   /* ALiBi's span (bloom, mpt: sm_alibi_slope_of), or 0; a constant bias: the backward is unchanged */
} att_shape;
/* With a soft cap, lse keeps each row's log-sum-exp (B x heads x T), from
 * which the backward pass recovers the capped scores (log att + lse). */
void sm_train_attention_fwd(const sm_trainer *t, float *out, float *att, float *lse, const float *q, const float *k,
                            const float *v, att_shape s);
void sm_train_attention_bwd(const sm_trainer *t, float *dq, float *dk, float *dv, float *datt, const float *dout,
                            const float *att, const float *lse, const float *q, const float *k, const float *v,
                            att_shape s);

#endif

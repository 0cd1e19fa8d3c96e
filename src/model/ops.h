/* ops.h - the operations a forward pass is made of, on a batch of n token
 * rows: each opens its profiler step and credits it with the FLOPs and
 * bytes it moved, so forward.c reads as the model's maths and nothing
 * else. The products are in matmul.c, attention in attention.c. */
#ifndef SM_MODEL_OPS_H
#define SM_MODEL_OPS_H

#include "session.h"

/* C (n x w->rows, row stride ldc) = A (n x w->cols) W^T (+ bias), or with
 * accumulate C += ... (the residual add, fused), split across the threads
 * by weight rows; one row goes through the matrix x vector kernels. */
void sm_matmul(sm_session *s, float *c, int ldc, const sm_matrix *w, const float *a, int n, const float *bias,
               int accumulate);
/* out = row `row` of an embedding matrix, as floats. */
void sm_embedding_row(float *out, const sm_matrix *m, int row);

/* Causal attention of n query rows (q, heads x head_dim wide) at positions
 * pos0.. over positions 0..pos0 + n - 1 of one layer's KV cache (only the
 * last `window` positions up to each query's, when window > 0); scores are
 * scaled by hp.q_scale and soft-capped by hp.attn_softcap. The results go
 * to the rows of out. */
void sm_attention(sm_session *s, const float *q, float *out, const float *k_layer, const float *v_layer, int pos0,
                  int n, int window);
/* Floats of per-thread scratch the prompt attention needs. */
size_t sm_attention_scratch(int head_dim);

/* The timed operations. */
void op_embed(sm_session *s, const sm_token *tokens, int n);
void op_norm(sm_session *s, int step, float *out, const float *in, const float *w, const float *b, int rows);
void op_matmul(sm_session *s, int step, float *c, int ldc, const sm_matrix *w, const float *a, int n, const float *bias,
               int accumulate);
/* A fused QKV projection's rows split into the queries and the cache. */
void op_split_qkv(sm_session *s, const float *qkv, int n, float *q, float *k, float *v);
/* RMSNorm of the queries and keys (per head or over all of them, as the
 * architecture says) with their weights. */
void op_qk_norm(sm_session *s, float *q, float *k, const float *wq, const float *wk, int n);
/* RoPE on n rows of queries and keys; local: the sliding-window layers' table. */
void op_rope(sm_session *s, float *q, float *k, int n, int local);
/* x += RMSNorm(y) (y is normed in place): a post-norm and the residual add. */
void op_post_norm_add(sm_session *s, float *x, float *y, const float *w, int n);
/* The feed-forward activation of kind enum sm_ffn_kind on n rows of ffn. */
void op_ffn_act(sm_session *s, int kind, float *h, const float *h2, int n, int ffn);
/* Final norm and the output head over the rows [first, n) of x. */
void op_logits(sm_session *s, int n, int want_logits, float *all_logits);

#endif

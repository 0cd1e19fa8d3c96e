/* ops.h - the operations a forward pass is made of, on a batch of n token
 * rows: each opens its profiler step and credits it with the FLOPs and
 * bytes it moved, so forward.c reads as the model's maths and nothing
 * else. The products are in matmul.c, attention in attention.c. */
#ifndef SM_MODEL_OPS_H
#define SM_MODEL_OPS_H

#include "session.h"

/* C (n x w->rows, row stride ldc) = A (n x w->cols) W^T (+ bias), or with
 * accumulate C += ... (the residual add, fused), split across the threads
 * by weight rows. The first n_vec rows go through the matrix x vector
 * kernels (one token's numerics: quantized types take integer dots against
 * the row quantized), each 16 weight rows meeting every one of them while
 * they are in cache; the other rows through the matrix x matrix kernels.
 * Returns how many of the n rows took 8-bit integer dots (the profiler's
 * account of which peak bounds the product). */
int sm_matmul(sm_session *s, float *c, int ldc, const sm_matrix *w, const float *a, int n, int n_vec,
              const float *bias, int accumulate);
/* The products until the next call read A = a (NULL: any input) and
 * nothing writes it meanwhile: A is quantized (or packed) once, by the
 * first, and the others reuse it. Their results are what they would be
 * alone. */
void sm_matmul_share_input(sm_session *s, const float *a);
/* out[i] = W a_i for n rows a_i of A (n x w->cols), through the matrix x
 * vector kernels: rows whose results go to unrelated places (each
 * session's logits). */
void sm_matvec_rows(sm_session *s, float *const *out, const sm_matrix *w, const float *a, int n);
/* out = row `row` of an embedding matrix, as floats. */
void sm_embedding_row(float *out, const sm_matrix *m, int row);

/* Causal attention of n query rows (q, heads x head_dim wide) at positions
 * pos0.. over positions 0..pos0 + n - 1 of layer `layer` of kv's KV cache
 * (only the last `window` positions up to each query's, when window > 0);
 * scores are scaled by hp.q_scale and soft-capped by hp.attn_softcap. The
 * results go to the rows of out. s lends the threads and scratch; one
 * query uses kv's score buffer. */
void sm_attention(sm_session *s, const sm_session *kv, const float *q, float *out, int layer, int pos0, int n,
                  int window);
/* The same for every run of a batch of several sessions: the one-token
 * runs together, split across the threads by (run, head), then each
 * longer run. */
void sm_attention_seqs(sm_session *s, const sm_fwd_batch *b, int layer, const float *q, float *out, int window);
/* Floats of per-thread scratch the prompt attention needs. */
/* n rows of one session at positions pos0.. as n one-token attentions
 * (each row's numbers exactly those of a one-token pass). */
void sm_attention_rows(sm_session *s, const sm_session *kv, const float *q, float *out, int layer, int pos0, int n,
                       int window);
size_t sm_attention_scratch(const sm_hparams *hp);

/* The timed operations. */
void op_embed(sm_session *s, const sm_fwd_batch *b);
void op_norm(sm_session *s, int step, float *out, const float *in, const float *w, const float *b, int rows);
void op_matmul(sm_session *s, int step, float *c, int ldc, const sm_matrix *w, const float *a, int n, int n_vec,
               const float *bias, int accumulate);
/* A fused QKV projection's rows split into the queries and the cache. */
void op_split_qkv(sm_session *s, const float *qkv, int n, float *q, float *k, float *v);
/* RMSNorm of the queries and keys (per head or over all of them, as the
 * architecture says) with their weights. */
void op_qk_norm(sm_session *s, float *q, float *k, const float *wq, const float *wk, int n);
/* RoPE on the batch's rows of queries and keys at each row's position,
 * with its session's tables; local: the sliding-window layers' table. */
void op_rope(sm_session *s, const sm_fwd_batch *b, float *q, float *k, int local);
/* A batch of several sessions: each session's rows of keys and values
 * (k, v: [n][kv_dim]) into layer l of its cache at its positions. */
void op_store_kv(sm_session *s, const sm_fwd_batch *b, int l, const float *k, const float *v);
/* Attention of the batch's rows (sm_attention or sm_attention_seqs). */
void op_attention(sm_session *s, const sm_fwd_batch *b, int l, const float *q, float *out, int window);
/* x += RMSNorm(y) (y is normed in place): a post-norm and the residual add. */
void op_post_norm_add(sm_session *s, float *x, float *y, const float *w, int n);
/* A mixture of experts' feed-forward block (moe.c) on n rows of its normed
 * input in (nv of them one-token rows), added into x (in must not be x). */
void op_moe(sm_session *s, const sm_layer *L, const float *in, float *x, int n, int nv);
/* The feed-forward activation of kind enum sm_ffn_kind on n rows of ffn. */
void op_ffn_act(sm_session *s, int kind, float *h, const float *h2, int n, int ffn);
/* Final norm and the output head: the logits each seq wants (or every
 * row's into b->all_logits), or the final-normed rows added into
 * b->embd_sum. */
void op_logits(sm_session *s, const sm_fwd_batch *b);

#endif

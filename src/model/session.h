/* session.h - one conversation with a model: the arena that holds every
 * activation buffer, the KV cache, the sampler's scratch and the token
 * history. Created once; nothing is allocated while it runs. */
#ifndef SM_MODEL_SESSION_H
#define SM_MODEL_SESSION_H

#include <stdint.h>
#include "model.h"
#include "core/arena.h"
#include "prof/prof.h"
#include "core/threadpool.h"
#include "kernels/dispatch.h"

typedef struct sm_candidate {
    float logit;
    int32_t id;
} sm_candidate;

struct sm_session {
    const sm_model *model;
    int n_ctx, n_threads, n_past;
    sm_prof *prof;               /* NULL unless profiling is on */
    int check;                   /* check mode: every layer's output is checked for NaN/Inf */
    int bad_layer;               /* the first layer of this evaluation that made one, or -1 */
    sm_prof *prof_store;         /* the profiler, kept while paused */
    const sm_kernel_table *kt;   /* the kernel variant in use */
    sm_threadpool *pool;
    void *xq;                    /* the current input quantized to Q8_0 or Q8_K */
    int32_t *xsum;               /* xq's block sums, for the interleaved kernels */
    float *deq;                  /* 16 dequantized rows per thread */
    int max_cols;
    /* prompt batches: activations of up to batch_cap tokens at once */
    int batch_cap;
    float *bx, *bxb, *bq, *bqkv, *bhb, *bhb2, *btmp, *batt, *bpack;
    void *block;                 /* the arena's memory */
    size_t block_bytes;

    /* activations of the token in flight */
    float *x, *xb, *xb2, *q, *qkv, *att, *hb, *hb2, *logits;
    /* [layer][position][kv_dim] */
    float *k_cache, *v_cache;
    /* [position][rope_dim / 2] */
    float *rope_cos, *rope_sin;

    sm_token *history;           /* the token at each position, n_ctx */
    /* sampler scratch */
    sm_candidate *cand;          /* n_vocab */
    uint8_t *penalized;          /* n_vocab, all zero between calls */
    uint64_t rng;
    /* generation scratch: pieces, UTF-8 completion, stop-string hold-back */
    char *text_buf;
    size_t text_cap;
    char *hold_buf;
    size_t hold_cap;
};

/* check.c: in check mode the forward passes report each layer's output
 * (x, n floats); sm_check_result turns what was found, and the logits when
 * asked, into an error naming the layer or weight. */
void sm_check_layer(sm_session *s, int layer, const float *x, size_t n);
sm_status sm_check_result(sm_session *s, const sm_token *tokens, size_t n, int check_logits, sm_error *err);

/* Run one token at position s->n_past through the model; the logits are
 * computed only when asked (prompt tokens before the last need none). */
void sm_llama_forward(sm_session *s, sm_token token, int want_logits);
void sm_gpt2_forward(sm_session *s, sm_token token, int want_logits);
/* A batch of n <= batch_cap tokens at positions n_past..; logits of every
 * token into all_logits (n x n_vocab) if given, else of the last one only
 * when want_logits (only a prompt's last batch needs them). */
void sm_llama_forward_batch(sm_session *s, const sm_token *tokens, int n, int want_logits, float *all_logits);
void sm_gpt2_forward_batch(sm_session *s, const sm_token *tokens, int n, int want_logits, float *all_logits);

/* Causal attention of the current token (queries in s->q) over positions
 * 0..pos of one layer's KV cache, heads grouped over the KV heads; the
 * result goes to s->xb. */
void sm_attention(sm_session *s, const float *k_layer, const float *v_layer, int pos);
/* The same for n batch tokens at positions pos0.. (queries in rows of q,
 * results into rows of out, both dim wide), split across the threads. */
/* Floats of per-thread scratch the prompt attention needs. */
size_t sm_attention_scratch(int head_dim);
void sm_attention_batch(sm_session *s, const float *q, float *out, const float *k_layer, const float *v_layer,
                        int pos0, int n);
/* The output head over a batch's final-normed rows in s->bx: every row's
 * logits into all_logits if given (the last also into s->logits), else
 * only the last row's. */
void sm_batch_logits(sm_session *s, int n, float *all_logits);
/* C (n x w->rows, row stride ldc) = A (n x w->cols) W^T (+ bias), or with
 * accumulate C += ..., split across the threads by weight rows. */
void sm_matmul(sm_session *s, int scope, float *c, int ldc, const sm_matrix *w, const float *a, int n,
               const float *bias, int accumulate);

/* out = W x (+ bias), for a weight of any supported element type, split
 * across the session's threads. */
void sm_matvec(sm_session *s, float *out, const sm_matrix *w, const float *x, const float *bias);
/* The same inside a profiler scope, credited with its FLOPs and bytes. */
void sm_proj(sm_session *s, int scope, float *out, const sm_matrix *w, const float *x, const float *bias);
/* x += W in (+ bias): a projection with the residual add fused into its
 * epilogue (uses s->xb2 as scratch). */
void sm_proj_residual(sm_session *s, int scope, float *x, const sm_matrix *w, const float *in, const float *bias);
/* out = row `row` of an embedding matrix, as floats. */
void sm_embedding_row(float *out, const sm_matrix *m, int row);
/* Whether a matrix element type can be run, and the bytes of one row. */
int sm_matrix_type_supported(uint32_t type);
size_t sm_matrix_row_bytes(uint32_t type, int cols);

#endif

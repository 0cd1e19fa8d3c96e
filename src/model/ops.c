/* ops.c - the timed operations of a forward pass (see ops.h): each opens
 * its profiler step, does its work on n token rows, and credits the step
 * with the arithmetic done and the bytes of weights and activations read. */
#include "ops.h"
#include "lora.h"
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

void op_embed(sm_session *s, const sm_fwd_batch *b) {
    const sm_model *m = s->model;
    int dim = m->hp.dim, learned = m->pos_embd.data != NULL, scaled = m->hp.embedding_scale != 1.0f;
    int n = b->n;
    uint64_t nb = (uint64_t)n * dim * sizeof(float);
    SM_PROF_BEGIN(s->prof, SM_SC_EMBED, -1);
    for (int i = 0; i < b->n_seq; i++) {
        const sm_fwd_seq *sq = &b->seq[i];
        for (int j = 0; j < sq->n; j++) {
            int t = sq->row0 + j;
            float *x = s->x + (size_t)t * dim;
            sm_embedding_row(x, &m->tok_embd, b->tokens[t]);
            if (learned) {
                /* xb holds the position's row for a moment */
                sm_embedding_row(s->xb, &m->pos_embd, sq->pos0 + j);
                sm_add(x, s->xb, dim);
            }
            if (scaled) sm_scale(x, m->hp.embedding_scale, dim);   /* gemma: sqrt(dim); granite: its key */
        }
    }
    SM_PROF_END(s->prof, learned || scaled ? (uint64_t)n * dim : 0, learned ? 3 * nb : nb);
}

/* Row-wise steps of a prompt (norms, RoPE, the feed-forward activation) split
 * their rows across the session's threads when there are enough values to
 * be worth a hand-off; each row is computed as alone, so the results do
 * not depend on the split. */
#define POOL_MIN_VALUES 32768

typedef struct rows_task {
    const sm_session *s;
    float *out;
    const float *in, *w, *b;   /* norms: weight and bias; the activation: in is h2 */
    float *aux;                /* the post-norm's y, normalised in place and added to out */
    int rows, kind, ffn;
} rows_task;

static void run_rows(sm_session *s, sm_task_fn fn, void *t, size_t values) {
    if (values < POOL_MIN_VALUES || sm_threadpool_size(s->pool) == 1) fn(t, 0, 1);
    else sm_threadpool_run(s->pool, fn, t);
}

/* One row's RMSNorm, or LayerNorm with a bias, through the level's norm
 * (training's: sums in double, eight running sums, every level the same
 * bits), in place or not. */
static void norm_row(const sm_session *s, float *out, const float *x, const float *w, const float *b, int n) {
    float mean, rstd;
    s->kt->norm_fwd(out, &mean, &rstd, x, w, b, n, s->model->hp.norm_eps, b != NULL);
}

static void norm_rows_fn(void *ctx, int ith, int nth) {
    const rows_task *t = ctx;
    const sm_hparams *hp = &t->s->model->hp;
    int dim = hp->dim, r0, r1;
    sm_share(t->rows, 1, ith, nth, &r0, &r1);
    for (int r = r0; r < r1; r++) {
        const float *x = t->in + (size_t)r * dim;
        float *o = t->out + (size_t)r * dim;
        norm_row(t->s, o, x, t->w, t->b, dim);
    }
}

/* RMSNorm, or LayerNorm when the architecture has a bias for it. */
void op_norm(sm_session *s, int step, float *out, const float *in, const float *w, const float *b, int rows) {
    const sm_hparams *hp = &s->model->hp;
    int dim = hp->dim;
    uint64_t nb = (uint64_t)rows * dim * sizeof(float);
    SM_PROF_BEGIN(s->prof, step, -1);
    rows_task t = {s, out, in, w, b, NULL, rows, 0, 0};
    run_rows(s, norm_rows_fn, &t, (size_t)rows * dim);
    SM_PROF_END(s->prof, (b ? 7ull : 4ull) * rows * dim, (b ? 4 : 3) * nb);
}

void op_matmul(sm_session *s, int step, float *c, int ldc, const sm_matrix *w, const float *a, int n, int n_vec,
               const float *bias, int accumulate) {
    SM_PROF_BEGIN(s->prof, step, -1);
    int integer_rows = sm_matmul(s, c, ldc, w, a, n, n_vec, bias, accumulate);
    if (s->n_adapters) sm_lora_apply(s, w, c, ldc, a, n);   /* LoRA: c += scale B (A a) (lora.c) */
    uint64_t weights = (uint64_t)w->rows * sm_type_row_bytes(w->type, w->cols);
    uint64_t int_flops = 2ull * (uint64_t)integer_rows * w->rows * w->cols;
    if (n == 1 && accumulate)   /* decode: the residual add is in the epilogue */
        SM_PROF_END_INT(s->prof, 2ull * w->rows * w->cols + (uint64_t)w->rows, int_flops,
                        weights + 2ull * w->rows * sizeof(float));
    else
        SM_PROF_END_INT(s->prof, 2ull * n * w->rows * w->cols, int_flops, weights);
}

void op_split_qkv(sm_session *s, const float *qkv, int n, float *q, float *k, float *v) {
    const sm_hparams *hp = &s->model->hp;
    size_t qd = (size_t)hp->n_heads * hp->head_dim, kvd = (size_t)hp->n_kv_heads * hp->head_dim;
    for (int t = 0; t < n; t++) {
        const float *row = qkv + (size_t)t * (qd + 2 * kvd);
        memcpy(q + t * qd, row, qd * sizeof(float));
        memcpy(k + t * kvd, row + qd, kvd * sizeof(float));
        memcpy(v + t * kvd, row + qd + kvd, kvd * sizeof(float));
    }
}

/* Query and key norms: each head's vector with one shared weight, or the
 * whole projection with one weight over it (RMSNorm either way). */
void op_qk_norm(sm_session *s, float *q, float *k, const float *wq, const float *wk, int n) {
    const sm_hparams *hp = &s->model->hp;
    int hd = hp->head_dim, qd = hp->n_heads * hd, kvd = hp->n_kv_heads * hd;
    int kind = sm_arch_get(hp->arch)->qk_norm, per_head = kind == SM_QK_NORM_HEAD;
    SM_PROF_BEGIN(s->prof, SM_SC_QK_NORM, -1);
    for (int t = 0; t < n; t++) {
        float *qt = q + (size_t)t * qd, *kt = k + (size_t)t * kvd;
        if (kind == SM_QK_NORM_HEAD_LN) {   /* stablelm 12B: each head's LayerNorm, its own weights, no bias */
            const float *zeros = s->model->plain_norm + hp->dim;
            for (int h = 0; h < hp->n_heads; h++)
                norm_row(s, qt + (size_t)h * hd, qt + (size_t)h * hd, wq + (size_t)h * hd, zeros, hd);
            for (int h = 0; h < hp->n_kv_heads; h++)
                norm_row(s, kt + (size_t)h * hd, kt + (size_t)h * hd, wk + (size_t)h * hd, zeros, hd);
        } else if (per_head) {
            for (int h = 0; h < hp->n_heads; h++) norm_row(s, qt + (size_t)h * hd, qt + (size_t)h * hd, wq, NULL, hd);
            for (int h = 0; h < hp->n_kv_heads; h++) norm_row(s, kt + (size_t)h * hd, kt + (size_t)h * hd, wk, NULL, hd);
        } else {
            norm_row(s, qt, qt, wq, NULL, qd);
            norm_row(s, kt, kt, wk, NULL, kvd);
        }
    }
    SM_PROF_END(s->prof, 4ull * n * (qd + kvd), 3ull * n * (qd + kvd) * sizeof(float));
}

typedef struct rope_task {
    const sm_session *s;
    const sm_fwd_batch *b;
    float *q, *k;
    int local;
} rope_task;

/* RoPE's pairs (x[2i], x[2i+1]) of each of a row's heads, through the
 * level's rope_pairs: the scalar rotation's bits, vectorized. */
static void rope_heads(const sm_kernel_table *kt, float *x, int heads, int head_dim, int half, const float *c,
                       const float *sn) {
    for (int h = 0; h < heads; h++) kt->rope_pairs(x + (size_t)h * head_dim, c, sn, 1.0f, half);
}

/* Rotates the rows of each sequence of the batch, a share of every
 * sequence's rows per thread. */
static void rope_rows_fn(void *ctx, int ith, int nth) {
    const rope_task *r = ctx;
    const sm_hparams *hp = &r->s->model->hp;
    int half = hp->rope_dim / 2, qd = hp->n_heads * hp->head_dim, kvd = hp->n_kv_heads * hp->head_dim;
    int neox = sm_arch_get(hp->arch)->pos == SM_POS_ROPE_NEOX;
    for (int i = 0; i < r->b->n_seq; i++) {
        const sm_fwd_seq *sq = &r->b->seq[i];
        const sm_session *o = sq->s;   /* the tables of the session the rows belong to */
        const float *cos_t = r->local ? o->rope_cos_local : o->rope_cos;
        const float *sin_t = r->local ? o->rope_sin_local : o->rope_sin;
        int j0, j1;
        sm_share(sq->n, 1, ith, nth, &j0, &j1);
        for (int j = j0; j < j1; j++) {
            size_t t = (size_t)(sq->row0 + j);
            const float *c = cos_t + (size_t)(sq->pos0 + j) * half, *sn = sin_t + (size_t)(sq->pos0 + j) * half;
            if (neox) {
                sm_rope_neox(r->q + t * qd, hp->n_heads, hp->head_dim, hp->rope_dim, c, sn);
                sm_rope_neox(r->k + t * kvd, hp->n_kv_heads, hp->head_dim, hp->rope_dim, c, sn);
            } else {
                rope_heads(r->s->kt, r->q + t * qd, hp->n_heads, hp->head_dim, half, c, sn);
                rope_heads(r->s->kt, r->k + t * kvd, hp->n_kv_heads, hp->head_dim, half, c, sn);
            }
            /* mistral3: the queries' temperature at this position (the keys, cached, stay as they are) */
            if (hp->attn_temp_scale != 0) sm_scale(r->q + t * qd, sm_attn_temp(hp, sq->pos0 + j), qd);
        }
    }
}

void op_rope(sm_session *s, const sm_fwd_batch *b, float *q, float *k, int local) {
    const sm_hparams *hp = &s->model->hp;
    int qd = hp->n_heads * hp->head_dim, kvd = hp->n_kv_heads * hp->head_dim, n = b->n;
    SM_PROF_BEGIN(s->prof, SM_SC_ROPE, -1);
    rope_task r = {s, b, q, k, local};
    run_rows(s, rope_rows_fn, &r, (size_t)n * (qd + kvd));
    SM_PROF_END(s->prof, 3ull * n * (qd + kvd), 2ull * n * (qd + kvd) * sizeof(float));
}

void op_store_kv(sm_session *s, const sm_fwd_batch *b, int l, const float *k, const float *v) {
    const sm_hparams *hp = &s->model->hp;
    size_t kvd = (size_t)hp->n_kv_heads * hp->head_dim;
    for (int i = 0; i < b->n_seq; i++) {
        const sm_fwd_seq *sq = &b->seq[i];
        size_t from = (size_t)sq->row0 * kvd;
        sm_kv_store(sq->s, 0, l, sq->pos0, k + from, sq->n);
        sm_kv_store(sq->s, 1, l, sq->pos0, v + from, sq->n);
    }
}

void op_attention(sm_session *s, const sm_fwd_batch *b, int l, const float *q, float *out, int window) {
    if (b->n_seq == 1 && b->n_vec == b->n && b->n > 1)   /* rows as one-token passes (exact) */
        sm_attention_rows(s, b->seq[0].s, q, out, l, b->seq[0].pos0, b->n, window);
    else if (b->n_seq == 1) sm_attention(s, b->seq[0].s, q, out, l, b->seq[0].pos0, b->n, window);
    else sm_attention_seqs(s, b, l, q, out, window);
}

static void post_norm_rows_fn(void *ctx, int ith, int nth) {
    const rows_task *t = ctx;
    const sm_hparams *hp = &t->s->model->hp;
    int dim = hp->dim, r0, r1;
    sm_share(t->rows, 1, ith, nth, &r0, &r1);
    for (int r = r0; r < r1; r++) {
        float *yt = t->aux + (size_t)r * dim;
        norm_row(t->s, yt, yt, t->w, NULL, dim);
        sm_add(t->out + (size_t)r * dim, yt, dim);
    }
}

/* x += RMSNorm(y) with weight w, row by row: a block's post-norm and its
 * residual add. */
void op_post_norm_add(sm_session *s, float *x, float *y, const float *w, int n) {
    int dim = s->model->hp.dim;
    SM_PROF_BEGIN(s->prof, SM_SC_POST_NORM, -1);
    rows_task t = {s, x, NULL, w, NULL, y, n, 0, 0};
    run_rows(s, post_norm_rows_fn, &t, (size_t)n * dim);
    SM_PROF_END(s->prof, 5ull * n * dim, 4ull * n * dim * sizeof(float));
}

static void ffn_act_rows_fn(void *ctx, int ith, int nth) {
    const rows_task *t = ctx;
    const sm_kernel_table *kt = t->s->kt;
    int ffn = t->ffn, r0, r1;
    sm_share(t->rows, 1, ith, nth, &r0, &r1);
    for (int r = r0; r < r1; r++) {
        float *ht = t->out + (size_t)r * ffn;
        const float *h2t = t->in ? t->in + (size_t)r * ffn : NULL;
        switch (t->kind) {
        case SM_FFN_SWIGLU: kt->swiglu(ht, ht, h2t, ffn); break;
        case SM_FFN_GEGLU: kt->gelu(ht, ffn); sm_mul(ht, h2t, ffn); break;
        case SM_FFN_GELU: kt->gelu(ht, ffn); break;
        case SM_FFN_RELU2:
            for (int i = 0; i < ffn; i++) ht[i] = ht[i] > 0 ? ht[i] * ht[i] : 0.0f;
            break;
        case SM_FFN_SWIGLU_FUSED: {
            const float *row = t->in + (size_t)r * 2 * ffn;
            kt->swiglu(ht, row, row + ffn, ffn);
            break;
        }
        }
    }
}

/* The feed-forward activation on n rows of ffn values: h = silu(h) * h2
 * (SwiGLU), gelu(h) * h2 (GEGLU), gelu(h) (GELU), or for a fused gate/up,
 * h = silu(g) * u where each row of h2 is [g u]. Row by row: the vector
 * kernels finish a row's last ffn % 16 values with scalar code, so a row's
 * values do not depend on where in a batch it sits. */
void op_ffn_act(sm_session *s, int kind, float *h, const float *h2, int n, int ffn) {
    size_t count = (size_t)n * ffn;
    SM_PROF_BEGIN(s->prof, SM_SC_FFN_ACT, -1);
    rows_task t = {s, h, h2, NULL, NULL, NULL, n, kind, ffn};
    run_rows(s, ffn_act_rows_fn, &t, count);
    if (kind == SM_FFN_GELU || kind == SM_FFN_RELU2)
        SM_PROF_END(s->prof, (kind == SM_FFN_GELU ? 12ull : 2ull) * count, 2ull * count * sizeof(float));
    else SM_PROF_END(s->prof, (kind == SM_FFN_GEGLU ? 13ull : 6ull) * count, 3ull * count * sizeof(float));
}

/* The final norm of rows rows of x in place, as the output head reads them:
 * granite divides its logits by logit_scale, and the product is linear, so
 * its input is (a row of dim, not of the vocabulary). */
static void final_norm(sm_session *s, float *x, int rows) {
    const sm_model *m = s->model;
    op_norm(s, SM_SC_FINAL_NORM, x, x, m->output_norm, m->output_norm_b, rows);
    if (m->hp.logit_scale != 1.0f) sm_scale(x, 1.0f / m->hp.logit_scale, rows * m->hp.dim);
}

/* Several sessions: the last row of each seq that wants logits, gathered
 * into xb, normed, and through the head as matrix x vector products (as a
 * single session's last row goes), each into its session's logits. */
static void logits_seqs(sm_session *s, const sm_fwd_batch *b) {
    const sm_model *m = s->model;
    int dim = m->hp.dim, V = m->hp.n_vocab, k = 0;
    float *out[SM_BATCH_MAX];
    for (int i = 0; i < b->n_seq; i++) {
        const sm_fwd_seq *sq = &b->seq[i];
        if (!sq->want_logits) continue;
        memcpy(s->xb + (size_t)k * dim, s->x + (size_t)(sq->row0 + sq->n - 1) * dim, (size_t)dim * sizeof(float));
        out[k++] = sq->s->logits;
    }
    if (k == 0) return;
    final_norm(s, s->xb, k);
    SM_PROF_BEGIN(s->prof, SM_SC_LOGITS, -1);
    sm_matvec_rows(s, out, &m->output, s->xb, k);
    uint64_t flops = 2ull * k * m->output.rows * m->output.cols;   /* matrix x vector: integer dots if quantized */
    SM_PROF_END_INT(s->prof, flops, sm_type(m->output.type)->vec_dot_type != SM_GGML_F32 ? flops : 0,
                    (uint64_t)m->output.rows * sm_type_row_bytes(m->output.type, m->output.cols));
    if (m->output_b)
        for (int i = 0; i < k; i++) sm_add(out[i], m->output_b, V);
    if (m->hp.final_softcap > 0)
        for (int i = 0; i < k; i++) sm_softcap(out[i], V, m->hp.final_softcap);
}

void op_logits(sm_session *s, const sm_fwd_batch *b) {
    if (b->n_seq > 1) {
        logits_seqs(s, b);
        return;
    }
    const sm_model *m = s->model;
    int dim = m->hp.dim, V = m->hp.n_vocab, n = b->n;
    float *all_logits = b->all_logits, *logits = b->seq[0].s->logits;
    if (b->embd_sum) {
        /* the final hidden states, summed (for a mean-pooled embedding) */
        op_norm(s, SM_SC_FINAL_NORM, s->x, s->x, m->output_norm, m->output_norm_b, n);
        for (int t = 0; t < n; t++) sm_add(b->embd_sum, s->x + (size_t)t * dim, dim);
        return;
    }
    if (!b->seq[0].want_logits && !all_logits) return;
    /* every token's logits when asked for, else only the last one's */
    int first = all_logits ? 0 : n - 1;
    float *x = s->x + (size_t)first * dim;
    final_norm(s, x, n - first);
    float cap = m->hp.final_softcap;
    if (all_logits) {
        op_matmul(s, SM_SC_LOGITS, all_logits, V, &m->output, s->x, n, n == 1 ? 1 : b->n_vec, m->output_b, 0);
        if (cap > 0) sm_softcap(all_logits, n * V, cap);
        memcpy(logits, all_logits + (size_t)(n - 1) * V, (size_t)V * sizeof(float));
    } else {
        op_matmul(s, SM_SC_LOGITS, logits, V, &m->output, x, 1, 1, m->output_b, 0);
        if (cap > 0) sm_softcap(logits, V, cap);
    }
}

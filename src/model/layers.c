/* layers.c - pieces both architectures share: projections with an optional
 * bias, embedding rows, and causal attention over the KV cache. */
#include "session.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/interleave.h"

#include <math.h>
#include <string.h>

int sm_matrix_type_supported(uint32_t type) {
    return type == SM_GGML_F32 || type == SM_GGML_F16 || type == SM_GGML_Q8_0 || type == SM_GGML_Q4_0 ||
           type == SM_GGML_Q4_K || type == SM_GGML_Q6_K;
}

size_t sm_matrix_row_bytes(uint32_t type, int cols) {
    switch (type) {
    case SM_GGML_F16: return (size_t)cols * 2;
    case SM_GGML_Q8_0: return (size_t)cols / SM_QK * sizeof(sm_block_q8_0);
    case SM_GGML_Q4_0: return (size_t)cols / SM_QK * sizeof(sm_block_q4_0);
    case SM_GGML_Q4_K: return (size_t)cols / SM_QK_K * sizeof(sm_block_q4_K);
    case SM_GGML_Q6_K: return (size_t)cols / SM_QK_K * sizeof(sm_block_q6_K);
    default: return (size_t)cols * 4;
    }
}

static void dequantize_row(float *out, uint32_t type, const void *row, int cols) {
    switch (type) {
    case SM_GGML_F16: sm_f16_to_f32_row(out, row, cols); break;
    case SM_GGML_Q8_0: sm_dequantize_q8_0(out, row, cols); break;
    case SM_GGML_Q4_0: sm_dequantize_q4_0(out, row, cols); break;
    case SM_GGML_Q4_K: sm_dequantize_q4_K(out, row, cols); break;
    case SM_GGML_Q6_K: sm_dequantize_q6_K(out, row, cols); break;
    default: memcpy(out, row, (size_t)cols * sizeof(float)); break;
    }
}

typedef struct matvec_task {
    const sm_session *s;
    float *out;
    const sm_matrix *w;
    const float *x;
    const float *bias;       /* added in the epilogue, or NULL */
    int accumulate;          /* out += W x (the residual add, fused) */
    float *tmp;              /* row results before the epilogue */
} matvec_task;

/* The interleaved kernel for w on this session's level, or NULL. */
static sm_matvec_x16_fn x16_kernel(const sm_session *s, const sm_matrix *w) {
    if (!w->x16) return NULL;
    return w->type == SM_GGML_Q4_0 ? s->kt->matvec_q4_0_x16 : w->type == SM_GGML_Q8_0 ? s->kt->matvec_q8_0_x16 : NULL;
}

static void matvec_rows(const matvec_task *t, int r0, int r1) {
    const sm_kernel_table *kt = t->s->kt;
    const sm_matrix *w = t->w;
    int cols = w->cols;
    size_t rb = sm_matrix_row_bytes(w->type, cols);
    float *out = (t->accumulate ? t->tmp : t->out) + r0;
    sm_matvec_x16_fn x16 = x16_kernel(t->s, w);
    int first = r0;   /* the first row the GGUF-layout kernels take */
    if (x16) {
        /* r0 is a multiple of 16; whole groups take the interleaved copy */
        int full = w->rows / SM_X16 * SM_X16, end = r1 < full ? r1 : full;
        if (end > r0) {
            x16(out, (const char *)w->x16 + rb * (size_t)r0, t->s->xq, t->s->xsum, end - r0, cols);
            first = end;
        }
    }
    int rest = r1 - first;
    float *o = out + (first - r0);
    const char *base = (const char *)w->data + rb * (size_t)first;
    /* every type sm_matrix_type_supported admits, which the loader checks */
    if (rest > 0) switch (w->type) {
    case SM_GGML_F32: kt->matvec_f32(o, (const float *)base, t->x, rest, cols); break;
    case SM_GGML_F16: kt->matvec_f16(o, (const uint16_t *)base, t->x, rest, cols); break;
    case SM_GGML_Q8_0: kt->matvec_q8_0(o, base, t->s->xq, rest, cols); break;
    case SM_GGML_Q4_0: kt->matvec_q4_0(o, base, t->s->xq, rest, cols); break;
    case SM_GGML_Q4_K: kt->matvec_q4_K(o, base, t->s->xq, rest, cols); break;
    case SM_GGML_Q6_K: kt->matvec_q6_K(o, base, t->s->xq, rest, cols); break;
    }
    int n = r1 - r0;
    /* epilogue, on the rows this thread just wrote */
    if (t->accumulate) {
        float *dst = t->out + r0;
        if (t->bias) for (int r = 0; r < n; r++) dst[r] += out[r] + t->bias[r0 + r];
        else for (int r = 0; r < n; r++) dst[r] += out[r];
    } else if (t->bias) {
        for (int r = 0; r < n; r++) out[r] += t->bias[r0 + r];
    }
}

/* Each thread takes a contiguous run of rows (a multiple of 16, so the
 * 4-row and interleaved 16-row kernels stay on their fast paths). */
static void matvec_task_fn(void *ctx, int ith, int nth) {
    const matvec_task *t = ctx;
    int rows = t->w->rows, per = ((rows + nth - 1) / nth + 15) & ~15;
    int r0 = ith * per, r1 = r0 + per < rows ? r0 + per : rows;
    if (r0 < r1) matvec_rows(t, r0, r1);
}

static void run_matvec(sm_session *s, matvec_task *t) {
    const sm_matrix *w = t->w;
    if (w->type == SM_GGML_Q8_0 || w->type == SM_GGML_Q4_0) s->kt->quantize_q8_0(s->xq, t->x, w->cols);
    if (w->type == SM_GGML_Q4_K || w->type == SM_GGML_Q6_K) sm_quantize_q8_K(s->xq, t->x, w->cols);
    if (x16_kernel(s, w)) sm_q8_0_block_sums(s->xsum, s->xq, w->cols / SM_QK);
    /* a hand-off costs about a microsecond: small products stay on one thread */
    if ((size_t)w->rows * w->cols < 32768 || sm_threadpool_size(s->pool) == 1) matvec_rows(t, 0, w->rows);
    else sm_threadpool_run(s->pool, matvec_task_fn, t);
}

void sm_matvec(sm_session *s, float *out, const sm_matrix *w, const float *x, const float *bias) {
    matvec_task t = {s, out, w, x, bias, 0, NULL};
    run_matvec(s, &t);
}

void sm_proj(sm_session *s, int scope, float *out, const sm_matrix *w, const float *x, const float *bias) {
    SM_PROF_BEGIN(s->prof, scope, -1);
    sm_matvec(s, out, w, x, bias);
    SM_PROF_END(s->prof, 2ull * w->rows * w->cols, (uint64_t)w->rows * sm_matrix_row_bytes(w->type, w->cols));
}

void sm_proj_residual(sm_session *s, int scope, float *x, const sm_matrix *w, const float *in, const float *bias) {
    SM_PROF_BEGIN(s->prof, scope, -1);
    matvec_task t = {s, x, w, in, bias, 1, s->xb2};
    run_matvec(s, &t);
    SM_PROF_END(s->prof, 2ull * w->rows * w->cols + (uint64_t)w->rows,
                (uint64_t)w->rows * sm_matrix_row_bytes(w->type, w->cols) + 2ull * w->rows * sizeof(float));
}

void sm_embedding_row(float *out, const sm_matrix *m, int row) {
    dequantize_row(out, m->type, (const char *)m->data + sm_matrix_row_bytes(m->type, m->cols) * (size_t)row, m->cols);
}

/* Prompt attention in blocks with an online softmax: a block of ATT_QB
 * consecutive query tokens of one head walks the cached positions ATT_KB at a
 * time, so each block of K and V is read once for all of those queries and
 * no token x position score matrix exists. Each query keeps a running
 * maximum m, normaliser l and unnormalised output o; a new block with a
 * larger maximum rescales them by exp(m_old - m_new). Positions after a
 * query (the causal mask) are never computed. */
#define ATT_QB 8
#define ATT_KB 64

typedef struct attention_task {
    const sm_session *s;
    const float *q, *k_layer, *v_layer;
    float *out;
    int pos0, n;
} attention_task;

/* scratch floats per thread */
size_t sm_attention_scratch(int head_dim) { return (size_t)ATT_QB * head_dim + 2 * ATT_QB + ATT_KB; }

static void attend_block(const attention_task *t, int h, int i0, int nq, float *scratch) {
    const sm_session *s = t->s;
    const sm_hparams *hp = &s->model->hp;
    const sm_kernel_table *kt = s->kt;
    int hd = hp->head_dim, dim = hp->dim, kv_dim = hp->n_kv_heads * hd, kvh = h / (hp->n_heads / hp->n_kv_heads);
    float scale = 1.0f / sqrtf((float)hd);
    float *o = scratch, *m = o + (size_t)ATT_QB * hd, *l = m + ATT_QB, *sc = l + ATT_QB;
    for (int j = 0; j < nq; j++) { m[j] = -INFINITY; l[j] = 0.0f; }
    memset(o, 0, (size_t)nq * hd * sizeof(float));
    int last = t->pos0 + i0 + nq - 1;   /* the last position any of the queries sees */
    for (int kb = 0; kb <= last; kb += ATT_KB) {
        const float *k = t->k_layer + (size_t)kb * kv_dim + (size_t)kvh * hd;
        const float *v = t->v_layer + (size_t)kb * kv_dim + (size_t)kvh * hd;
        for (int j = 0; j < nq; j++) {
            int pos = t->pos0 + i0 + j, n = pos + 1 - kb < ATT_KB ? pos + 1 - kb : ATT_KB;
            if (n <= 0) continue;   /* the whole block is after this query */
            const float *q = t->q + (size_t)(i0 + j) * dim + (size_t)h * hd;
            float bmax = -INFINITY, *oj = o + (size_t)j * hd;
            for (int p = 0; p < n; p++) {
                sc[p] = kt->dot(q, k + (size_t)p * kv_dim, hd) * scale;
                bmax = sc[p] > bmax ? sc[p] : bmax;
            }
            if (bmax > m[j]) {
                float c = expf(m[j] - bmax);   /* 0 on the first block */
                l[j] *= c;
                for (int d = 0; d < hd; d++) oj[d] *= c;
                m[j] = bmax;
            }
            l[j] += kt->exp_sum(sc, m[j], n);
            for (int p = 0; p < n; p++) kt->axpy(oj, sc[p], v + (size_t)p * kv_dim, hd);
        }
    }
    for (int j = 0; j < nq; j++) {
        float *dst = t->out + (size_t)(i0 + j) * dim + (size_t)h * hd, inv = 1.0f / l[j];
        for (int d = 0; d < hd; d++) dst[d] = o[(size_t)j * hd + d] * inv;
    }
}

static void attention_task_fn(void *ctx, int ith, int nth) {
    const attention_task *t = ctx;
    const sm_session *s = t->s;
    int heads = s->model->hp.n_heads, blocks = (t->n + ATT_QB - 1) / ATT_QB;
    float *scratch = s->batt + (size_t)ith * sm_attention_scratch(s->model->hp.head_dim);
    /* later query blocks see more positions: dealt round-robin to balance */
    for (int task = ith; task < heads * blocks; task += nth) {
        int b = task / heads, i0 = b * ATT_QB;
        attend_block(t, task % heads, i0, t->n - i0 < ATT_QB ? t->n - i0 : ATT_QB, scratch);
    }
}

void sm_attention_batch(sm_session *s, const float *q, float *out, const float *k_layer, const float *v_layer,
                        int pos0, int n) {
    const sm_hparams *hp = &s->model->hp;
    SM_PROF_BEGIN(s->prof, SM_SC_ATTENTION, -1);
    attention_task t = {s, q, k_layer, v_layer, out, pos0, n};
    sm_threadpool_run(s->pool, attention_task_fn, &t);
    uint64_t pairs = (uint64_t)n * pos0 + (uint64_t)n * (n + 1) / 2;  /* (token, position) pairs */
    SM_PROF_END(s->prof, 4 * pairs * hp->head_dim * hp->n_heads, 2 * pairs * hp->n_kv_heads * hp->head_dim * sizeof(float));
}

typedef struct matmul_task {
    sm_session *s;
    float *c;
    int ldc;
    const sm_matrix *w;
    const float *a, *bias;
    int n, accumulate;
} matmul_task;

static void matmul_rows(const matmul_task *t, int r0, int r1, float *deq) {
    const sm_matrix *w = t->w;
    int cols = w->cols, n = t->n;
    size_t rb = sm_matrix_row_bytes(w->type, cols);
    /* with accumulate the product goes to btmp first (row stride = rows) */
    float *dst = t->accumulate ? t->s->btmp : t->c;
    int ld = t->accumulate ? w->rows : t->ldc;
    const sm_kernel_table *kt = t->s->kt;
    int packed = kt->matmul_packed != NULL;
    int full = w->x16 ? w->rows / SM_X16 * SM_X16 : 0;
    for (int r = r0; r < r1; r += SM_X16) {
        int nr = r1 - r < SM_X16 ? r1 - r : SM_X16;
        const float *wr;
        if (w->type == SM_GGML_F32) {
            wr = (const float *)w->data + (size_t)r * cols;
        } else if (r + SM_X16 <= full) {
            /* r is a multiple of 16 here: one whole interleaved group */
            const void *g = (const char *)w->x16 + rb * (size_t)r;
            if (w->type == SM_GGML_Q4_0) kt->dequantize_q4_0x16(deq, g, cols);
            else kt->dequantize_q8_0x16(deq, g, cols);
            wr = deq;
        } else if (w->type == SM_GGML_F16) {
            kt->f16_to_f32(deq, (const uint16_t *)w->data + (size_t)r * cols, nr * cols);
            wr = deq;
        } else {
            for (int i = 0; i < nr; i++) dequantize_row(deq + (size_t)i * cols, w->type, (const char *)w->data + rb * (size_t)(r + i), cols);
            wr = deq;
        }
        if (packed) kt->matmul_packed(dst + r, t->s->bpack, wr, n, nr, cols, ld);
        else kt->matmul_f32(dst + r, t->a, wr, n, nr, cols, ld);
    }
    for (int i = 0; i < n; i++) {
        float *c = t->c + (size_t)i * t->ldc;
        if (t->accumulate) {
            const float *p = t->s->btmp + (size_t)i * w->rows;
            for (int r = r0; r < r1; r++) c[r] += p[r] + (t->bias ? t->bias[r] : 0.0f);
        } else if (t->bias) {
            for (int r = r0; r < r1; r++) c[r] += t->bias[r];
        }
    }
}

/* Packs the batch into 16-token panels for the packed kernel, on every thread. */
static void pack_task_fn(void *ctx, int ith, int nth) {
    const matmul_task *t = ctx;
    sm_pack_a_share(t->s->kt, t->s->bpack, t->a, t->n, t->w->cols, ith, nth);
}

static void matmul_task_fn(void *ctx, int ith, int nth) {
    const matmul_task *t = ctx;
    int rows = t->w->rows, per = ((rows + nth - 1) / nth + 15) & ~15;
    int r0 = ith * per, r1 = r0 + per < rows ? r0 + per : rows;
    if (r0 < r1) matmul_rows(t, r0, r1, t->s->deq + (size_t)ith * SM_X16 * t->s->max_cols);
}

void sm_matmul(sm_session *s, int scope, float *c, int ldc, const sm_matrix *w, const float *a, int n,
               const float *bias, int accumulate) {
    SM_PROF_BEGIN(s->prof, scope, -1);
    matmul_task t = {s, c, ldc, w, a, bias, n, accumulate};
    if (s->kt->pack_a) sm_threadpool_run(s->pool, pack_task_fn, &t);  /* once, shared by the threads */
    sm_threadpool_run(s->pool, matmul_task_fn, &t);
    SM_PROF_END(s->prof, 2ull * n * w->rows * w->cols, (uint64_t)w->rows * sm_matrix_row_bytes(w->type, w->cols));
}

void sm_attention(sm_session *s, const float *k_layer, const float *v_layer, int pos) {
    const sm_hparams *hp = &s->model->hp;
    int hd = hp->head_dim, kv_dim = hp->n_kv_heads * hd, group = hp->n_heads / hp->n_kv_heads;
    uint64_t span = (uint64_t)pos + 1, heads = (uint64_t)hp->n_heads;
    float scale = 1.0f / sqrtf((float)hd);

    SM_PROF_BEGIN(s->prof, SM_SC_ATT_SCORES, -1);
    for (int h = 0; h < hp->n_heads; h++) {
        const float *q = s->q + (size_t)h * hd;
        float *att = s->att + (size_t)h * s->n_ctx;
        const float *k = k_layer + (size_t)(h / group) * hd;
        for (int t = 0; t <= pos; t++, k += kv_dim) att[t] = s->kt->dot(q, k, hd) * scale;
    }
    SM_PROF_END(s->prof, 2 * span * hd * heads, span * kv_dim * sizeof(float));

    SM_PROF_BEGIN(s->prof, SM_SC_SOFTMAX, -1);
    for (int h = 0; h < hp->n_heads; h++) s->kt->softmax(s->att + (size_t)h * s->n_ctx, pos + 1);
    SM_PROF_END(s->prof, 4 * span * heads, 2 * span * heads * sizeof(float));

    SM_PROF_BEGIN(s->prof, SM_SC_ATT_V, -1);
    for (int h = 0; h < hp->n_heads; h++) {
        const float *att = s->att + (size_t)h * s->n_ctx;
        float *out = s->xb + (size_t)h * hd;
        const float *v = v_layer + (size_t)(h / group) * hd;
        memset(out, 0, (size_t)hd * sizeof(float));
        for (int t = 0; t <= pos; t++, v += kv_dim) s->kt->axpy(out, att[t], v, hd);
    }
    SM_PROF_END(s->prof, 2 * span * hd * heads, span * kv_dim * sizeof(float));
}

void sm_batch_logits(sm_session *s, int n, float *all_logits) {
    const sm_model *m = s->model;
    int V = m->hp.n_vocab;
    if (all_logits) {
        sm_matmul(s, SM_SC_LOGITS, all_logits, V, &m->output, s->bx, n, NULL, 0);
        memcpy(s->logits, all_logits + (size_t)(n - 1) * V, (size_t)V * sizeof(float));
    } else {
        sm_proj(s, SM_SC_LOGITS, s->logits, &m->output, s->bx + (size_t)(n - 1) * m->hp.dim, NULL);
    }
}

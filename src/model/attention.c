/* attention.c - causal attention of a batch of queries over a layer's KV
 * cache, heads grouped over the KV heads. One token (decode) takes the
 * plain three passes; a prompt batch goes in blocks with an online
 * softmax, split across the threads. A batch of several sessions does the
 * same for each session's rows over its own cache, its one-token runs
 * together across the threads. */
#include "ops.h"
#include "kernels/kernels.h"
#include "kernels/dispatch.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* Prompt attention in blocks with an online softmax: a block of ATT_QB
 * consecutive query tokens of one head walks the cached positions ATT_KB at a
 * time, so each block of K and V is read once for all of those queries and
 * no token x position score matrix exists. Each query keeps a running
 * maximum m, normaliser l and unnormalised output o; a new block with a
 * larger maximum rescales them by exp(m_old - m_new). Positions after a
 * query (the causal mask) are never computed. */
#define ATT_QB 8
#define ATT_KB 128   /* 64: attention 5-9 % slower at 128- and 512-token prompts (Zen 3), the calls' overhead
                       * outweighing the masked scores a larger block computes */

typedef struct attention_task {
    const sm_session *s;
    const float *q;
    const void *k_layer, *v_layer;   /* [n_ctx][kv_dim] in tk / tv */
    sm_kv_type tk, tv;
    float *out;
    int pos0, n, window;
    atomic_int next;   /* the next (block, head) not yet taken by a thread */
} attention_task;

/* Head h's ALiBi slope (added to its scores by sm_alibi), 0 without ALiBi. */
static float slope_of(const sm_session *s, int h) { return s->model->alibi_slopes ? s->model->alibi_slopes[h] : 0.0f; }

/* The first position a query at pos sees: 0, or the start of its window. */
static int first_seen(int pos, int window) { return window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0; }

/* With the level's strided product (kt->gemm) a block is ATT_GQ queries,
 * and each block of ATT_KB positions is two small matrix products: the
 * scores S = Q K^T (nq x positions) and O += P V after the same online
 * softmax on S's rows. Its scratch: Q and P packed, S, O, m, l. */
#define ATT_GQ 48   /* 24: 5-8 % more attention time (each K and V block is packed per query block) */

/* A token's attention (attention_one) over a span of the cache of at least
 * ATT_SPLIT_BYTES of K (or of V) sums its values in ATT_PARTS runs. */
#define ATT_SPLIT_BYTES (96 * 1024)
#define ATT_PARTS 4

static size_t gemm_scratch(int hd) {
    return (size_t)(ATT_GQ + 12) * hd + (size_t)ATT_GQ * ATT_KB + (size_t)(ATT_GQ + 12) * ATT_KB + (size_t)ATT_GQ * hd +
           2 * ATT_GQ + 32;
}

/* The floats of a thread's scratch before its F16 rows: the largest of the
 * prompt's two ways and a token's values runs (their sums but the first). */
static size_t scratch_main(const sm_hparams *hp) {
    size_t plain = (size_t)ATT_QB * hp->head_dim + 2 * ATT_QB + ATT_KB, gemm = gemm_scratch(hp->head_dim);
    size_t parts = (size_t)(ATT_PARTS - 1) * hp->n_heads * hp->head_dim, most = plain > gemm ? plain : gemm;
    return parts > most ? parts : most;
}

/* scratch floats per thread: the above, then a prompt block's K and V
 * rows of one head widened from an F16 cache */
size_t sm_attention_scratch(const sm_hparams *hp) {
    return scratch_main(hp) + 2 * (size_t)ATT_KB * hp->head_dim;
}

/* Rows p0..p1 of a layer's cache (of type t), head kvh's hd elements each:
 * in place (F32, stride kv_dim) or widened into buf (F16, BF16: stride hd);
 * *stride is set to the one returned. */
static const float *head_rows(const sm_session *s, const void *layer, sm_kv_type t, int kvh, int p0, int p1,
                              float *buf, size_t *stride) {
    const sm_hparams *hp = &s->model->hp;
    int hd = hp->head_dim;
    size_t kv_dim = (size_t)hp->n_kv_heads * hd;
    if (t == SM_KV_F32) {
        *stride = kv_dim;
        return (const float *)layer + (size_t)p0 * kv_dim + (size_t)kvh * hd;
    }
    size_t row = sm_kv_row_bytes(t, kv_dim);
    const char *h = (const char *)layer + (size_t)p0 * row + sm_kv_row_bytes(t, (size_t)kvh * hd);
    sm_to_float_fn widen = s->tk[sm_kv_ggml_type(t)].to_float;
    for (int p = 0; p < p1 - p0; p++) widen(buf + (size_t)p * hd, h + (size_t)p * row, hd);
    *stride = (size_t)hd;
    return buf;
}

/* A query's running maximum m, normaliser l and unnormalised output o
 * (hd values) after a block whose largest score is bmax: rescaled by
 * exp(m - bmax) where bmax is larger (o is still 0 before the first block). */
static void online_max(const sm_kernel_table *kt, float *m, float *l, float *o, float bmax, int hd) {
    if (!(bmax > *m)) return;   /* (a NaN maximum changes nothing, as before) */
    float c = expf(*m - bmax);   /* 0 on the first block */
    *l *= c;
    if (*m > -INFINITY) kt->scale_max(o, c, hd);
    *m = bmax;
}

/* Head h's output rows for queries i0..i0+nq: each o row divided by its l
 * (a product with 1 / l, through the level's scale_max). */
static void write_heads_out(const attention_task *t, const sm_kernel_table *kt, int h, int i0, int nq, const float *o,
                            const float *l, int hd, int qd) {
    for (int j = 0; j < nq; j++) {
        float *dst = t->out + (size_t)(i0 + j) * qd + (size_t)h * hd;
        memcpy(dst, o + (size_t)j * hd, (size_t)hd * sizeof(float));
        kt->scale_max(dst, 1.0f / l[j], hd);
    }
}

static void attend_block(const attention_task *t, int h, int i0, int nq, float *scratch) {
    const sm_session *s = t->s;
    const sm_hparams *hp = &s->model->hp;
    const sm_kernel_table *kt = s->kt;
    int hd = hp->head_dim, qd = hp->n_heads * hd, kvh = h / (hp->n_heads / hp->n_kv_heads);
    float scale = hp->q_scale, cap = hp->attn_softcap, slope = slope_of(s, h);
    float *o = scratch, *m = o + (size_t)ATT_QB * hd, *l = m + ATT_QB, *sc = l + ATT_QB;
    float *kbuf = scratch + scratch_main(hp), *vbuf = kbuf + (size_t)ATT_KB * hd;   /* an F16 block widened */
    for (int j = 0; j < nq; j++) { m[j] = -INFINITY; l[j] = 0.0f; }
    memset(o, 0, (size_t)nq * hd * sizeof(float));
    int first = t->pos0 + i0, last = first + nq - 1;   /* the queries' positions */
    for (int kb = first_seen(first, t->window) / ATT_KB * ATT_KB; kb <= last; kb += ATT_KB) {
        int nk = last + 1 - kb < ATT_KB ? last + 1 - kb : ATT_KB;
        size_t ks, vs;   /* the block's rows: [nk] of hd, ks / vs apart */
        const float *kblk = head_rows(s, t->k_layer, t->tk, kvh, kb, kb + nk, kbuf, &ks);
        const float *vblk = head_rows(s, t->v_layer, t->tv, kvh, kb, kb + nk, vbuf, &vs);
        for (int j = 0; j < nq; j++) {
            /* this query's positions in the block: [p0, p1) from kb */
            int pos = first + j, lo = first_seen(pos, t->window);
            int p0 = lo > kb ? lo - kb : 0, p1 = pos + 1 - kb < ATT_KB ? pos + 1 - kb : ATT_KB, n = p1 - p0;
            if (n <= 0) continue;   /* the whole block is outside this query's view */
            const float *k = kblk + (size_t)p0 * ks, *v = vblk + (size_t)p0 * vs;
            const float *q = t->q + (size_t)(i0 + j) * qd + (size_t)h * hd;
            float bmax = -INFINITY, *oj = o + (size_t)j * hd;
            for (int p = 0; p < n; p++) sc[p] = kt->dot(q, k + (size_t)p * ks, hd) * scale;
            if (cap > 0) sm_softcap(sc, n, cap);
            if (slope != 0) sm_alibi(sc, n, slope, kb + p0 - pos);
            for (int p = 0; p < n; p++) bmax = sc[p] > bmax ? sc[p] : bmax;
            online_max(kt, &m[j], &l[j], oj, bmax, hd);
            l[j] += kt->exp_sum(sc, m[j], n);
            for (int p = 0; p < n; p++) kt->axpy(oj, sc[p], v + (size_t)p * vs, hd);
        }
    }
    write_heads_out(t, kt, h, i0, nq, o, l, hd, qd);
}

/* The same block walk for nq <= ATT_GQ queries through the strided product. */
static void attend_block_gemm(const attention_task *t, int h, int i0, int nq, float *scratch) {
    const sm_session *s = t->s;
    const sm_hparams *hp = &s->model->hp;
    const sm_kernel_table *kt = s->kt;
    int hd = hp->head_dim, qd = hp->n_heads * hd, kvh = h / (hp->n_heads / hp->n_kv_heads);
    int mr = kt->gemm_mr, panels = (nq + mr - 1) / mr;
    float scale = hp->q_scale, cap = hp->attn_softcap, slope = slope_of(s, h);
    float *qp = scratch;                                   /* Q packed: [panels][hd][mr] */
    float *sc = qp + (size_t)(ATT_GQ + 12) * hd;           /* S, then P: [nq][ATT_KB] */
    float *pp = sc + (size_t)ATT_GQ * ATT_KB;              /* P packed: [panels][ATT_KB][mr] */
    float *o = pp + (size_t)(ATT_GQ + 12) * ATT_KB;        /* O: [nq][hd] */
    float *m = o + (size_t)ATT_GQ * hd, *l = m + ATT_GQ;
    float *kbuf = scratch + scratch_main(hp), *vbuf = kbuf + (size_t)ATT_KB * hd;   /* an F16 block widened */
    for (int j = 0; j < nq; j++) { m[j] = -INFINITY; l[j] = 0.0f; }
    memset(o, 0, (size_t)nq * hd * sizeof(float));
    kt->gemm_pack(qp, t->q + (size_t)i0 * qd + (size_t)h * hd, (size_t)qd, 1, nq, hd, 0, panels);
    int first = t->pos0 + i0, last = first + nq - 1;   /* the queries' positions */
    for (int kb = first_seen(first, t->window) / ATT_KB * ATT_KB; kb <= last; kb += ATT_KB) {
        int nk = last + 1 - kb < ATT_KB ? last + 1 - kb : ATT_KB;
        size_t ks, vs;   /* the block's rows: [nk] of hd, ks / vs apart */
        const float *k = head_rows(s, t->k_layer, t->tk, kvh, kb, kb + nk, kbuf, &ks);
        const float *v = head_rows(s, t->v_layer, t->tv, kvh, kb, kb + nk, vbuf, &vs);
        kt->gemm(sc, ATT_KB, qp, nq, k, ks, 1, nk, hd, 0);   /* S[j][p] = q_j . k_(kb+p) */
        for (int j = 0; j < nq; j++) {
            /* this query's positions in the block: [p0, p1) from kb; the rest weigh 0 */
            int pos = first + j, lo = first_seen(pos, t->window);
            int p0 = lo > kb ? lo - kb : 0, p1 = pos + 1 - kb < nk ? pos + 1 - kb : nk, n = p1 - p0;
            float *row = sc + (size_t)j * ATT_KB;
            if (n <= 0) {
                memset(row, 0, (size_t)nk * sizeof(float));
                continue;
            }
            float *oj = o + (size_t)j * hd;
            /* the scores scaled, and their largest (vectorized: the level's scale_max, the same
             * products; the largest of the same values) */
            float bmax = kt->scale_max(row + p0, scale, n);
            if (cap > 0 || slope != 0) {
                if (cap > 0) sm_softcap(row + p0, n, cap);
                if (slope != 0) sm_alibi(row + p0, n, slope, kb + p0 - pos);
                bmax = -INFINITY;
                for (int p = p0; p < p1; p++) bmax = row[p] > bmax ? row[p] : bmax;
            }
            online_max(kt, &m[j], &l[j], oj, bmax, hd);
            l[j] += kt->exp_sum(row + p0, m[j], n);
            memset(row, 0, (size_t)p0 * sizeof(float));
            memset(row + p1, 0, (size_t)(nk - p1) * sizeof(float));
        }
        kt->gemm_pack(pp, sc, ATT_KB, 1, nq, nk, 0, panels);
        kt->gemm(o, hd, pp, nq, v, 1, vs, hd, nk, 1);   /* O[j] += sum over p of P[j][p] v_(kb+p) */
    }
    write_heads_out(t, kt, h, i0, nq, o, l, hd, qd);
}

static void attention_task_fn(void *ctx, int ith, int nth) {
    (void)nth;
    attention_task *t = ctx;
    const sm_session *s = t->s;
    int qb = s->kt->gemm ? ATT_GQ : ATT_QB;
    int heads = s->model->hp.n_heads, blocks = (t->n + qb - 1) / qb;
    float *scratch = s->att_scratch + (size_t)ith * sm_attention_scratch(&s->model->hp);
    /* the threads take a (block, head) at a time as each finishes one, the
     * last query blocks (which see the most positions) first: a thread
     * slowed by another process takes fewer, and the last ones are short */
    for (int task; (task = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed)) < heads * blocks;) {
        int b = blocks - 1 - task / heads, i0 = b * qb, nq = t->n - i0 < qb ? t->n - i0 : qb;
        if (s->kt->gemm) attend_block_gemm(t, task % heads, i0, nq, scratch);
        else attend_block(t, task % heads, i0, nq, scratch);
    }
}

static void attention_batch(sm_session *s, const sm_session *kv, const float *q, float *out, int layer, int pos0,
                            int n, int window) {
    const sm_hparams *hp = &s->model->hp;
    SM_PROF_BEGIN(s->prof, SM_SC_ATTENTION, -1);
    attention_task t = {s, q, sm_kv_row(kv, 0, layer, 0), sm_kv_row(kv, 1, layer, 0), kv->type_k, kv->type_v, out,
                        pos0, n, window, 0};
    sm_threadpool_run(s->pool, attention_task_fn, &t);
    uint64_t pairs = (uint64_t)n * pos0 + (uint64_t)n * (n + 1) / 2;  /* (token, position) pairs */
    /* each K and V row is read once per block of ATT_QB queries */
    SM_PROF_END(s->prof, 4 * pairs * hp->head_dim * hp->n_heads,
                pairs * sm_kv_position_bytes(kv) / ATT_QB);
}

/* One token at position pos over positions lo..pos of a layer's cache, in
 * three passes: the scores of every head, their softmax, the weighted sum
 * of the values. The passes walk the positions in order and use each K or
 * V row, whole, for every head it serves: the cache comes from memory (the
 * weights streamed since its last pass pushed it out of the caches) as one
 * stream, not a head's slice at a time (2.6x faster at 48 positions, 3x at
 * 800: docs/BENCHMARKS.md).
 *
 * A long span (ATT_SPLIT_BYTES of K or of V) is split across the pool's
 * threads: the scores by positions, the values in ATT_PARTS runs of
 * positions whose sums are added in order at the end, on any number of
 * threads (so the bits do not depend on it). Splitting the values by heads
 * instead would read every row in pieces, which ran 3x slower than one
 * thread reading it whole. */
typedef struct token_attention {
    const sm_session *s;
    float *att;                  /* [heads][att_stride] scores, then weights, at positions lo..pos */
    size_t att_stride;
    const float *q;              /* [heads][hd] */
    const void *k_layer, *v_layer;   /* [n_ctx][kv_dim] in tk / tv */
    float *out;                  /* [heads][hd] */
    float *parts;                /* [ATT_PARTS - 1][heads][hd] the values' later runs' sums */
    int lo, pos;
    int nparts;                  /* the values' runs: 1, or ATT_PARTS for a long span */
    sm_kv_type tk, tv;           /* F16 / BF16 rows: read through the level's dot_f16 / axpy_f16 or _bf16 */
} token_attention;

/* Part i of n of a range of len: its start offset, [len i / n, len (i + 1) / n). */
static int share(int len, int i, int n) { return (int)((int64_t)len * i / n); }

/* The values' runs a span of V rows of row_bytes each takes. */
static int value_parts(int span, size_t row_bytes) {
    return (size_t)span * row_bytes >= ATT_SPLIT_BYTES ? ATT_PARTS : 1;
}

/* Scaled scores of every head at positions t0..t1-1. */
static void token_scores(const token_attention *a, int t0, int t1) {
    const sm_hparams *hp = &a->s->model->hp;
    const sm_kernel_table *kt = a->s->kt;
    int hd = hp->head_dim, kv_dim = hp->n_kv_heads * hd, group = hp->n_heads / hp->n_kv_heads;
    float scale = hp->q_scale;
    /* head h reads KV head h / group */
    if (a->tk != SM_KV_F32) {
        sm_kv_dot_fn dot = sm_kv_dot(kt, a->tk);
        size_t row = sm_kv_row_bytes(a->tk, (size_t)kv_dim), head = sm_kv_row_bytes(a->tk, (size_t)hd);
        for (int t = t0; t < t1; t++) {
            const char *k = (const char *)a->k_layer + (size_t)t * row;
            for (int kh = 0, h = 0; kh < hp->n_kv_heads; kh++)
                for (int g = 0; g < group; g++, h++)
                    a->att[(size_t)h * a->att_stride + t] = dot(a->q + (size_t)h * hd, k + (size_t)kh * head, hd) * scale;
        }
    } else
        for (int t = t0; t < t1; t++) {
            const float *k = (const float *)a->k_layer + (size_t)t * kv_dim;
            for (int kh = 0, h = 0; kh < hp->n_kv_heads; kh++)
                for (int g = 0; g < group; g++, h++)
                    a->att[(size_t)h * a->att_stride + t] = kt->dot(a->q + (size_t)h * hd, k + (size_t)kh * hd, hd) * scale;
        }
}

/* Each head's scores soft-capped, ALiBi's bias added, then their softmax. */
static void token_softmax(const token_attention *a) {
    const sm_hparams *hp = &a->s->model->hp;
    int n = a->pos + 1 - a->lo;
    for (int h = 0; h < hp->n_heads; h++) {
        float *row = a->att + (size_t)h * a->att_stride + a->lo, slope = slope_of(a->s, h);
        if (hp->attn_softcap > 0) sm_softcap(row, n, hp->attn_softcap);
        if (slope != 0) sm_alibi(row, n, slope, a->lo - a->pos);
        a->s->kt->softmax(row, n);
    }
}

/* Run p of the values' runs: the sum over its positions of each head's
 * weight times its value row, into out (run 0) or its part buffer. */
static void token_values(const token_attention *a, int p) {
    const sm_hparams *hp = &a->s->model->hp;
    const sm_kernel_table *kt = a->s->kt;
    int hd = hp->head_dim, kv_dim = hp->n_kv_heads * hd, group = hp->n_heads / hp->n_kv_heads;
    int span = a->pos + 1 - a->lo, t0 = a->lo + share(span, p, a->nparts), t1 = a->lo + share(span, p + 1, a->nparts);
    float *o = p == 0 ? a->out : a->parts + (size_t)(p - 1) * hp->n_heads * hd;
    memset(o, 0, (size_t)hp->n_heads * hd * sizeof(float));
    if (a->tv != SM_KV_F32) {
        sm_kv_axpy_fn axpy = sm_kv_axpy(kt, a->tv);
        size_t row = sm_kv_row_bytes(a->tv, (size_t)kv_dim), head = sm_kv_row_bytes(a->tv, (size_t)hd);
        for (int t = t0; t < t1; t++) {
            const char *v = (const char *)a->v_layer + (size_t)t * row;
            for (int kh = 0, h = 0; kh < hp->n_kv_heads; kh++)
                for (int g = 0; g < group; g++, h++)
                    axpy(o + (size_t)h * hd, a->att[(size_t)h * a->att_stride + t], v + (size_t)kh * head, hd);
        }
    } else
        for (int t = t0; t < t1; t++) {
            const float *v = (const float *)a->v_layer + (size_t)t * kv_dim;
            for (int kh = 0, h = 0; kh < hp->n_kv_heads; kh++)
                for (int g = 0; g < group; g++, h++)
                    kt->axpy(o + (size_t)h * hd, a->att[(size_t)h * a->att_stride + t], v + (size_t)kh * hd, hd);
        }
}

/* out += the later runs' sums, in order. */
static void token_values_join(const token_attention *a) {
    const sm_hparams *hp = &a->s->model->hp;
    int n = hp->n_heads * hp->head_dim;
    for (int p = 1; p < a->nparts; p++) a->s->kt->axpy(a->out, 1.0f, a->parts + (size_t)(p - 1) * n, n);
}

/* Thread ith of nth's share of the scores: a run of the positions. */
static void scores_task_fn(void *ctx, int ith, int nth) {
    const token_attention *a = ctx;
    int span = a->pos + 1 - a->lo;
    token_scores(a, a->lo + share(span, ith, nth), a->lo + share(span, ith + 1, nth));
}

/* Thread ith of nth's share of the values: every nth run from ith. */
static void values_task_fn(void *ctx, int ith, int nth) {
    const token_attention *a = ctx;
    for (int p = ith; p < a->nparts; p += nth) token_values(a, p);
}

/* The three passes on the calling thread. */
static void token_attend(const token_attention *a) {
    scores_task_fn((void *)a, 0, 1);
    token_softmax(a);
    values_task_fn((void *)a, 0, 1);
    token_values_join(a);
}

/* Token attention at pos for layer of kv's cache, its query q, output
 * out; parts: room for the later runs' sums. */
static token_attention token_at(const sm_session *s, const sm_session *kv, int layer, const float *q, float *out,
                                int pos, int window, float *parts) {
    const sm_hparams *hp = &s->model->hp;
    int lo = first_seen(pos, window);
    size_t v_row = sm_kv_row_bytes(kv->type_v, (size_t)hp->n_kv_heads * hp->head_dim);
    token_attention a = {s, kv->att, (size_t)kv->n_ctx, q, sm_kv_row(kv, 0, layer, 0), sm_kv_row(kv, 1, layer, 0),
                         out, parts, lo, pos, value_parts(pos + 1 - lo, v_row), kv->type_k, kv->type_v};
    return a;
}

/* One token at position pos: the three passes, each a timed step, in kv's
 * score buffer; a long span's scores and values split across the pool. */
static void attention_one(sm_session *s, const sm_session *kv, const float *q, float *out, int layer, int pos,
                          int window) {
    const sm_hparams *hp = &s->model->hp;
    token_attention a = token_at(s, kv, layer, q, out, pos, window, s->att_scratch);
    uint64_t span = (uint64_t)(pos + 1 - a.lo), heads = (uint64_t)hp->n_heads;
    uint64_t kv_dim = (uint64_t)hp->n_kv_heads * hp->head_dim, hd = (uint64_t)hp->head_dim;
    int split = a.nparts > 1 && sm_threadpool_size(s->pool) > 1;

    SM_PROF_BEGIN(s->prof, SM_SC_ATT_SCORES, -1);
    if (split) sm_threadpool_run(s->pool, scores_task_fn, &a);
    else scores_task_fn(&a, 0, 1);
    SM_PROF_END(s->prof, 2 * span * hd * heads, span * sm_kv_row_bytes(kv->type_k, kv_dim));

    SM_PROF_BEGIN(s->prof, SM_SC_SOFTMAX, -1);
    token_softmax(&a);
    SM_PROF_END(s->prof, 4 * span * heads, 2 * span * heads * sizeof(float));

    SM_PROF_BEGIN(s->prof, SM_SC_ATT_V, -1);
    if (split) sm_threadpool_run(s->pool, values_task_fn, &a);
    else values_task_fn(&a, 0, 1);
    token_values_join(&a);
    SM_PROF_END(s->prof, 2 * span * hd * heads, span * sm_kv_row_bytes(kv->type_v, kv_dim));
}

void sm_attention(sm_session *s, const sm_session *kv, const float *q, float *out, int layer, int pos0, int n,
                  int window) {
    if (n == 1) attention_one(s, kv, q, out, layer, pos0, window);
    else attention_batch(s, kv, q, out, layer, pos0, n, window);
}

void sm_attention_rows(sm_session *s, const sm_session *kv, const float *q, float *out, int layer, int pos0, int n,
                       int window) {
    size_t qd = (size_t)s->model->hp.n_heads * s->model->hp.head_dim;
    for (int i = 0; i < n; i++)
        attention_one(s, kv, q + (size_t)i * qd, out + (size_t)i * qd, layer, pos0 + i, window);
}

/* The one-token runs of a batch of several sessions (the first b->n_vec
 * seqs, one row each): the same three passes as attention_one, each run in
 * its own session's score buffer, one run per task (a lone run goes through
 * attention_one instead, split across the threads). */
typedef struct decode_task {
    const sm_session *s;
    const sm_fwd_batch *b;
    const float *q;
    float *out;
    int layer, window;
} decode_task;

static void decode_task_fn(void *ctx, int ith, int nth) {
    const decode_task *t = ctx;
    const sm_session *s = t->s;
    size_t qd = (size_t)s->model->hp.n_heads * s->model->hp.head_dim;
    for (int i = ith; i < t->b->n_vec; i += nth) {
        const sm_fwd_seq *sq = &t->b->seq[i];
        token_attention a = token_at(s, sq->s, t->layer, t->q + (size_t)sq->row0 * qd, t->out + (size_t)sq->row0 * qd,
                                     sq->pos0, t->window, s->att_scratch + (size_t)ith * sm_attention_scratch(&s->model->hp));
        token_attend(&a);
    }
}

void sm_attention_seqs(sm_session *s, const sm_fwd_batch *b, int layer, const float *q, float *out, int window) {
    const sm_hparams *hp = &s->model->hp;
    size_t qd = (size_t)hp->n_heads * hp->head_dim;
    if (b->n_vec == 1) {   /* one run: split across the threads as a session's own token is */
        const sm_fwd_seq *sq = &b->seq[0];
        attention_one(s, sq->s, q + (size_t)sq->row0 * qd, out + (size_t)sq->row0 * qd, layer, sq->pos0, window);
    } else if (b->n_vec > 1) {
        SM_PROF_BEGIN(s->prof, SM_SC_ATTENTION, -1);
        decode_task t = {s, b, q, out, layer, window};
        uint64_t pairs = 0, bytes = 0;   /* (token, position) pairs, and the K and V bytes they read */
        for (int i = 0; i < b->n_vec; i++) {
            const sm_session *kv = b->seq[i].s;
            pairs += (uint64_t)b->seq[i].pos0 + 1;
            bytes += ((uint64_t)b->seq[i].pos0 + 1) * sm_kv_position_bytes(kv);
        }
        if (sm_threadpool_size(s->pool) == 1) decode_task_fn(&t, 0, 1);
        else sm_threadpool_run(s->pool, decode_task_fn, &t);
        SM_PROF_END(s->prof, 4 * pairs * hp->head_dim * hp->n_heads, bytes);
    }
    for (int i = b->n_vec; i < b->n_seq; i++) {
        const sm_fwd_seq *sq = &b->seq[i];
        attention_batch(s, sq->s, q + (size_t)sq->row0 * qd, out + (size_t)sq->row0 * qd, layer, sq->pos0, sq->n,
                        window);
    }
}

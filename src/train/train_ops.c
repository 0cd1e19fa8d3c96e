/* train_ops.c - the operations of a training step, each forward beside
 * its backward (as llm.c's train_gpt2.c): matrix products on the thread
 * pool, LayerNorm and RMSNorm, GELU and SwiGLU, RoPE, causal attention.
 * Everything runs in a fixed order, so a run repeats bit for bit and does
 * not depend on the thread count. */
#include "train_ops.h"
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------ matmul */

/* The strided product (kt->gemm): c[t * ldc + r] (+)= sum over x of
 * a(t, x) w(r, x), a(t, x) = a[t a_rs + x a_cs], w(r, x) = w[r w_rs + x w_cs]:
 * the batch packed once by the threads together, then split across the
 * threads by blocks of 32 rows of w; each element is the same sum in the
 * same order however many threads there are. With either operand readable
 * by rows or by columns, no product of a step copies a transpose, and the
 * gradients accumulate in place.
 * With kt->gemm_strided (the same sums) no batch stored by rows is packed:
 * the tile reads its rows in place (5-15 % faster than packing them first,
 * docs/BENCHMARKS.md), split by weight rows as above. A batch read by
 * columns larger than SM_TRAIN_PACKED_BYTES, more than a last-level cache
 * holds (packed apart it would go out to memory and come back for every
 * thread: the logits' gradient, 1024 tokens by a vocabulary of 32000, is
 * 131 MB), is packed a run at a time as the product reaches it, each thread
 * over its own tokens. Mixed precision's products (kt->gemm_mixed) read any
 * batch below that size in place, split by weight rows: each thread rounds
 * the whole batch to BF16 a run at a time. An output larger than
 * SGEMM_STREAM_BYTES (the logits) is stored past the caches, which it would
 * only flush. */
#define SGEMM_STREAM_BYTES ((size_t)64 << 20)
/* sgemm's flag for mixed precision (cfg.bf16_products): the same splits and
 * packing through kt->gemm_mixed, both operands rounded to BF16 */
#define SGEMM_MIXED 256

typedef struct sgemm_task {
    const sm_trainer *t;
    float *c;
    const float *a, *w;
    size_t a_rs, a_cs, w_rs, w_cs;
    int ldc, m, n, k, flags;
} sgemm_task;

static void sgemm_pack_fn(void *ctx, int ith, int nth) {
    const sgemm_task *g = ctx;
    sm_gemm_pack_share(g->t->kt, g->t->mm_pack, g->a, g->a_rs, g->a_cs, g->m, g->k, ith, nth);
}

/* split by weight rows: the batch read in place (a set: its rows, or with mixed precision either
 * layout), or the batch packed in mm_pack (a NULL) */
static void sgemm_fn(void *ctx, int ith, int nth) {
    const sgemm_task *g = ctx;
    const sm_kernel_table *kt = g->t->kt;
    int r0, r1, flags = g->flags & (SM_GEMM_ACCUMULATE | SM_GEMM_STREAM);
    sm_share(g->n, kt->gemm_nr, ith, nth, &r0, &r1);   /* whole register tiles */
    if (r0 >= r1) return;
    const float *w = g->w + (size_t)r0 * g->w_rs;
    float *scratch = g->t->gemm_scratch + (size_t)ith * kt->gemm_scratch;
    if (g->flags & SGEMM_MIXED)
        kt->gemm_mixed(g->c + r0, g->ldc, g->a ? NULL : g->t->mm_pack, g->a, g->a_rs, g->a_cs, g->m, w, g->w_rs,
                       g->w_cs, r1 - r0, g->k, flags, scratch);
    else if (g->a)
        kt->gemm_strided(g->c + r0, g->ldc, g->a, g->a_rs, g->a_cs, g->m, w, g->w_rs, g->w_cs, r1 - r0, g->k, flags,
                         scratch);
    else kt->gemm(g->c + r0, g->ldc, g->t->mm_pack, g->m, w, g->w_rs, g->w_cs, r1 - r0, g->k, flags);
}

static void sgemm_strided_fn(void *ctx, int ith, int nth) {
    const sgemm_task *g = ctx;
    const sm_kernel_table *kt = g->t->kt;
    int t0, t1;
    sm_share(g->m, kt->gemm_mr, ith, nth, &t0, &t1);   /* whole panels of tokens */
    if (t0 >= t1) return;
    float *c = g->c + (size_t)t0 * g->ldc, *scratch = g->t->gemm_scratch + (size_t)ith * kt->gemm_scratch;
    const float *a = g->a + (size_t)t0 * g->a_rs;
    int flags = g->flags & (SM_GEMM_ACCUMULATE | SM_GEMM_STREAM);
    if (g->flags & SGEMM_MIXED)
        kt->gemm_mixed(c, g->ldc, NULL, a, g->a_rs, g->a_cs, t1 - t0, g->w, g->w_rs, g->w_cs, g->n, g->k, flags, scratch);
    else kt->gemm_strided(c, g->ldc, a, g->a_rs, g->a_cs, t1 - t0, g->w, g->w_rs, g->w_cs, g->n, g->k, flags, scratch);
}

static void sgemm(const sm_trainer *t, float *c, int ldc, const float *a, size_t a_rs, size_t a_cs, const float *w,
                  size_t w_rs, size_t w_cs, int m, int n, int k, int flags) {
    if (!(flags & SM_GEMM_ACCUMULATE) && (size_t)m * (size_t)n * sizeof(float) > SGEMM_STREAM_BYTES)
        flags |= SM_GEMM_STREAM;
    sgemm_task g = {t, c, a, w, a_rs, a_cs, w_rs, w_cs, ldc, m, n, k, flags};
    int large = (size_t)m * (size_t)k * sizeof(float) > SM_TRAIN_PACKED_BYTES;
    if (t->kt->gemm_strided && (a_cs == 1 || ((flags & SGEMM_MIXED) && !large))) {
        /* rows read in place, split by weight rows; a product with one block of them (LoRA's dout B,
         * n = rank) by tokens instead, so every thread has a share. Mixed precision rounds a batch
         * read by columns in place too, each thread the whole batch, a run at a time (packed in F32
         * first, each thread would round every run again) */
        sm_threadpool_run(t->pool, n <= t->kt->gemm_nr ? sgemm_strided_fn : sgemm_fn, &g);
        return;
    }
    if (t->kt->gemm_strided && large) {
        sm_threadpool_run(t->pool, sgemm_strided_fn, &g);
        return;
    }
    sm_threadpool_run(t->pool, sgemm_pack_fn, &g);
    g.a = NULL;   /* the product reads the packed batch */
    sm_threadpool_run(t->pool, sgemm_fn, &g);
}

/* c (m x n, row stride n) = a (m x k) . w (n x k)^T, split across the
 * threads by rows of w; each element is summed in the same order however
 * many threads there are, so results do not depend on the thread count.
 * Levels without the strided product use the packed or plain kernels. */
typedef struct gemm_task {
    const sm_trainer *t;
    float *c;
    const float *a, *w;
    int m, n, k;
} gemm_task;

static void gemm_task_fn(void *ctx, int ith, int nth) {
    const gemm_task *g = ctx;
    int r0, r1;
    sm_share(g->n, 8, ith, nth, &r0, &r1);
    if (r0 >= r1) return;
    const sm_kernel_table *kt = g->t->kt;
    if (kt->matmul_packed)
        kt->matmul_packed(g->c + r0, g->t->mm_pack, g->w + (size_t)r0 * g->k, g->m, r1 - r0, g->k, g->n);
    else kt->matmul_f32(g->c + r0, g->a, g->w + (size_t)r0 * g->k, g->m, r1 - r0, g->k, g->n);
}

static void pack_task_fn(void *ctx, int ith, int nth) {
    const gemm_task *g = ctx;
    sm_pack_a_share(g->t->kt, g->t->mm_pack, g->a, g->m, g->k, ith, nth);
}

static void gemm(const sm_trainer *t, float *c, const float *a, const float *w, int m, int n, int k) {
    if (t->kt->gemm) {
        sgemm(t, c, n, a, (size_t)k, 1, w, (size_t)k, 1, m, n, k, 0);
        return;
    }
    gemm_task g = {t, c, a, w, m, n, k};
    if (t->kt->pack_a) sm_threadpool_run(t->pool, pack_task_fn, &g);
    sm_threadpool_run(t->pool, gemm_task_fn, &g);
}

/* The same with a already packed in mm_pack by the product just before
 * (levels without the strided product: LoRA's A x). */
static void gemm_prepacked(const sm_trainer *t, float *c, const float *a, const float *w, int m, int n, int k) {
    gemm_task g = {t, c, a, w, m, n, k};
    sm_threadpool_run(t->pool, gemm_task_fn, &g);
}

/* In 32 x 32 tiles, so both the reads and the writes stay in cache. */
static void transpose(float *dst, const float *src, int rows, int cols) {
    for (int r0 = 0; r0 < rows; r0 += 32)
        for (int c0 = 0; c0 < cols; c0 += 32) {
            int r1 = r0 + 32 < rows ? r0 + 32 : rows, c1 = c0 + 32 < cols ? c0 + 32 : cols;
            for (int r = r0; r < r1; r++)
                for (int c = c0; c < c1; c++) dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
        }
}

/* The same on the thread pool: each thread writes its own run of 32-row
 * tiles of dst (32-column strips of src); a copy, so the result is the
 * serial one whatever the thread count. */
typedef struct copy_task {
    float *dst;
    const float *src;
    int rows, cols;
    const sm_trainer *t;
} copy_task;

static void transpose_fn(void *ctx, int ith, int nth) {
    const copy_task *c = ctx;
    int c0, c1;
    sm_share(c->cols, 32, ith, nth, &c0, &c1);
    if (c0 >= c1) return;
    for (int r0 = 0; r0 < c->rows; r0 += 32)
        for (int cc = c0; cc < c1; cc += 32) {
            int r1 = r0 + 32 < c->rows ? r0 + 32 : c->rows, ce = cc + 32 < c1 ? cc + 32 : c1;
            for (int r = r0; r < r1; r++)
                for (int k = cc; k < ce; k++) c->dst[(size_t)k * c->rows + r] = c->src[(size_t)r * c->cols + k];
        }
}

static void transpose_mt(const sm_trainer *t, float *dst, const float *src, int rows, int cols) {
    copy_task c = {dst, src, rows, cols, t};
    sm_threadpool_run(t->pool, transpose_fn, &c);
}

/* An element-wise op on n floats, each thread a contiguous run (multiples
 * of 16) through the level's kernel: x[i] += a y[i] (axpy) with y, else
 * x[i] *= a (scale: one product each, the same bits as a plain loop). */
typedef struct elementwise_task {
    const sm_trainer *t;
    float *x;
    const float *y;
    float a;
    size_t n;
} elementwise_task;

static void elementwise_fn(void *ctx, int ith, int nth) {
    const elementwise_task *c = ctx;
    size_t i0, i1;
    sm_share_size(c->n, 16, ith, nth, &i0, &i1);
    for (size_t i = i0; i < i1; i += (size_t)1 << 30) {
        int run = (int)(i1 - i < ((size_t)1 << 30) ? i1 - i : ((size_t)1 << 30));
        if (c->y) c->t->kt->axpy(c->x + i, c->a, c->y + i, run);
        else c->t->kt->scale_max(c->x + i, c->a, run);
    }
}

/* dst += src (axpy with a = 1 is exact: x + 1 y = x + y) */
void sm_train_add(const sm_trainer *t, float *dst, const float *src, size_t n) {
    elementwise_task c = {t, dst, src, 1.0f, n};
    sm_threadpool_run(t->pool, elementwise_fn, &c);
}

void sm_train_scale(const sm_trainer *t, float *x, float a, size_t n) {
    elementwise_task c = {t, x, NULL, a, n};
    sm_threadpool_run(t->pool, elementwise_fn, &c);
}

/* A bias: out[r] += bias for each of rows rows of cols (each thread a run
 * of rows), or its gradient (grad): bias += the column sums of out (each
 * thread a run of columns, every column summed over the rows in order: the
 * bits of one thread). The level's axpy with a = 1 is exact. */
typedef struct bias_task {
    const sm_trainer *t;
    float *dst;
    const float *src;
    int rows, cols, grad;
} bias_task;

static void bias_fn(void *ctx, int ith, int nth) {
    const bias_task *b = ctx;
    const sm_kernel_table *kt = b->t->kt;
    int i0, i1;
    if (!b->grad) {
        sm_share(b->rows, 1, ith, nth, &i0, &i1);
        for (int r = i0; r < i1; r++) kt->axpy(b->dst + (size_t)r * b->cols, 1.0f, b->src, b->cols);
    } else {
        sm_share(b->cols, 16, ith, nth, &i0, &i1);
        if (i0 < i1)
            for (int r = 0; r < b->rows; r++) kt->axpy(b->dst + i0, 1.0f, b->src + (size_t)r * b->cols + i0, i1 - i0);
    }
}

static void add_bias(const sm_trainer *t, float *out, const float *bias, int rows, int cols) {
    bias_task b = {t, out, bias, rows, cols, 0};
    sm_threadpool_run(t->pool, bias_fn, &b);
}

static void bias_grad(const sm_trainer *t, float *dbias, const float *dout, int rows, int cols) {
    bias_task b = {t, dbias, dout, rows, cols, 1};
    sm_threadpool_run(t->pool, bias_fn, &b);
}

/* sgemm's flags for a product through a weight matrix (trained, frozen or
 * LoRA's merged one): under mixed precision its forward product and input
 * gradient, and a trained matrix's weight gradient, round both operands */
static int weight_mixed(const sm_trainer *t) { return t->cfg.bf16_products ? SGEMM_MIXED : 0; }

/* out (N x OC) = inp (N x C) w^T, w one of those matrices (C columns) */
static void weight_product(const sm_trainer *t, float *out, const float *inp, const float *w, int N, int OC, int C) {
    if (t->cfg.bf16_products) sgemm(t, out, OC, inp, (size_t)C, 1, w, (size_t)C, 1, N, OC, C, SGEMM_MIXED);
    else gemm(t, out, inp, w, N, OC, C);
}

/* out[n][o] = inp[n] . w[o] (+ bias[o]) */
void sm_train_matmul_fwd(const sm_trainer *t, float *out, const float *inp, const float *w, const float *bias, int N,
                         int C, int OC) {
    weight_product(t, out, inp, w, N, OC, C);
    if (bias) add_bias(t, out, bias, N, OC);
}

/* dinp += dout w (dinp = dout w when set); dw += dout^T inp; dbias += column sums of dout */
void sm_train_matmul_bwd(const sm_trainer *t, float *dinp, int set, float *dw, float *dbias, const float *dout,
                         const float *inp, const float *w, int N, int C, int OC) {
    if (t->kt->gemm) {
        int mixed = weight_mixed(t);
        /* dinp[n][c] (+)= sum over o of dout[n][o] w[o][c]: w read by columns */
        if (dinp)
            sgemm(t, dinp, C, dout, (size_t)OC, 1, w, 1, (size_t)C, N, C, OC, (set ? 0 : SM_GEMM_ACCUMULATE) | mixed);
        /* dw[o][c] += sum over n of dout[n][o] inp[n][c]: both read by columns */
        sgemm(t, dw, C, dout, 1, (size_t)OC, inp, 1, (size_t)C, OC, C, N, SM_GEMM_ACCUMULATE | mixed);
        if (dbias) bias_grad(t, dbias, dout, N, OC);
        return;
    }
    /* dinp (N x C) = dout (N x OC) . (w^T)^T, with w^T as C rows of OC */
    transpose_mt(t, t->mm_bt, w, OC, C);
    gemm(t, t->mm_out, dout, t->mm_bt, N, C, OC);
    if (set) memcpy(dinp, t->mm_out, (size_t)N * C * sizeof(float));
    else sm_train_add(t, dinp, t->mm_out, (size_t)N * C);
    /* dw (OC x C) = dout^T (OC rows of N) . (inp^T)^T, with inp^T as C rows of N */
    transpose_mt(t, t->mm_at, dout, N, OC);
    transpose_mt(t, t->mm_bt, inp, N, C);
    gemm(t, t->mm_out, t->mm_at, t->mm_bt, OC, C, N);
    sm_train_add(t, dw, t->mm_out, (size_t)OC * C);
    if (dbias) bias_grad(t, dbias, dout, N, OC);
}

/* ------------------------------------------- frozen matrices and LoRA */

/* c (m x w->rows) = a (m x cols) . w^T for a frozen matrix of any type
 * without an F32 copy, split across the threads by rows of w, dequantized
 * SM_TRAIN_DEQ_ROWS rows at a time into the thread's own buffer: with a
 * whole batch of tokens per product, fewer and larger products keep the
 * packed batch from being read again for every few rows. Each element of c
 * is the same sum in the same order as the packed product over the whole
 * dequantized matrix (gemm) gives, so both paths agree bit for bit. */
typedef struct frozen_task {
    const sm_trainer *t;
    float *c;
    const float *a;
    const sm_matrix *w;
    int m;
} frozen_task;

static void frozen_fwd_fn(void *ctx, int ith, int nth) {
    const frozen_task *f = ctx;
    const sm_matrix *w = f->w;
    const sm_kernel_table *kt = f->t->kt;
    int r0, r1;
    sm_share(w->rows, 16, ith, nth, &r0, &r1);
    size_t rb = sm_type_row_bytes(w->type, w->cols);
    float *deq = f->t->deq + (size_t)ith * SM_TRAIN_DEQ_ROWS * f->t->deq_cols;
    for (int r = r0; r < r1; r += SM_TRAIN_DEQ_ROWS) {
        int nr = r1 - r < SM_TRAIN_DEQ_ROWS ? r1 - r : SM_TRAIN_DEQ_ROWS;
        sm_type(w->type)->to_float(deq, (const char *)w->data + rb * (size_t)r, nr * w->cols);
        float *scratch = f->t->gemm_scratch ? f->t->gemm_scratch + (size_t)ith * kt->gemm_scratch : NULL;
        if (f->t->cfg.bf16_products)   /* mixed precision (sm_train_matmul_fwd_frozen) */
            kt->gemm_mixed(f->c + r, w->rows, NULL, f->a, (size_t)w->cols, 1, f->m, deq, (size_t)w->cols, 1, nr,
                           w->cols, 0, scratch);
        else if (kt->gemm_strided)   /* the batch's rows read in place */
            kt->gemm_strided(f->c + r, w->rows, f->a, (size_t)w->cols, 1, f->m, deq, (size_t)w->cols, 1, nr, w->cols, 0,
                             scratch);
        else if (kt->gemm) kt->gemm(f->c + r, w->rows, f->t->mm_pack, f->m, deq, (size_t)w->cols, 1, nr, w->cols, 0);
        else if (kt->matmul_packed) kt->matmul_packed(f->c + r, f->t->mm_pack, deq, f->m, nr, w->cols, w->rows);
        else kt->matmul_f32(f->c + r, f->a, deq, f->m, nr, w->cols, w->rows);
    }
}

static void frozen_pack_fn(void *ctx, int ith, int nth) {
    const frozen_task *f = ctx;
    if (f->t->kt->gemm) sm_gemm_pack_share(f->t->kt, f->t->mm_pack, f->a, (size_t)f->w->cols, 1, f->m, f->w->cols, ith, nth);
    else sm_pack_a_share(f->t->kt, f->t->mm_pack, f->a, f->m, f->w->cols, ith, nth);
}

void sm_train_matmul_fwd_frozen(const sm_trainer *t, float *out, const float *inp, const sm_train_frozen *fw,
                                const float *bias, int N) {
    const sm_matrix *w = fw->m;
    if (fw->w) {   /* F32 rows: the trained matrices' product */
        weight_product(t, out, inp, fw->w, N, w->rows, w->cols);
    } else {
        frozen_task f = {t, out, inp, w, N};
        if (t->kt->gemm ? !t->kt->gemm_strided : t->kt->pack_a != NULL) sm_threadpool_run(t->pool, frozen_pack_fn, &f);
        sm_threadpool_run(t->pool, frozen_fwd_fn, &f);
    }
    if (bias) add_bias(t, out, bias, N, w->rows);
}

/* w^T (cols x rows) into mm_bt, rows dequantized 16 at a time per thread. */
static void frozen_transpose_fn(void *ctx, int ith, int nth) {
    const frozen_task *f = ctx;
    const sm_matrix *w = f->w;
    int r0, r1;
    sm_share(w->rows, 16, ith, nth, &r0, &r1);
    size_t rb = sm_type_row_bytes(w->type, w->cols);
    float *deq = f->t->deq + (size_t)ith * SM_TRAIN_DEQ_ROWS * f->t->deq_cols, *dst = f->t->mm_bt;
    for (int r = r0; r < r1; r += 16) {
        int nr = r1 - r < 16 ? r1 - r : 16;
        sm_type(w->type)->to_float(deq, (const char *)w->data + rb * (size_t)r, nr * w->cols);
        for (int c = 0; c < w->cols; c++)
            for (int i = 0; i < nr; i++) dst[(size_t)c * w->rows + r + i] = deq[(size_t)i * w->cols + c];
    }
}

void sm_train_matmul_bwd_frozen(const sm_trainer *t, float *dinp, int set, const float *dout, const sm_train_frozen *fw,
                                int N) {
    const sm_matrix *w = fw->m;
    int C = w->cols, OC = w->rows, flags = (set ? 0 : SM_GEMM_ACCUMULATE) | weight_mixed(t);
    const float *wt = fw->wt;   /* the cached transpose, else made here */
    if (t->kt->gemm && !wt && fw->w) {   /* dinp[n][c] (+)= sum over o of dout[n][o] w[o][c]: w by columns */
        sgemm(t, dinp, C, dout, (size_t)OC, 1, fw->w, 1, (size_t)C, N, C, OC, flags);
        return;
    }
    if (!wt) {
        if (fw->w) {
            transpose_mt(t, t->mm_bt, fw->w, OC, C);
        } else {
            frozen_task f = {t, NULL, NULL, w, 0};
            sm_threadpool_run(t->pool, frozen_transpose_fn, &f);
        }
        wt = t->mm_bt;
    }
    if (t->kt->gemm) {
        sgemm(t, dinp, C, dout, (size_t)OC, 1, wt, (size_t)OC, 1, N, C, OC, flags);
        return;
    }
    gemm(t, t->mm_out, dout, wt, N, C, OC);
    if (set) memcpy(dinp, t->mm_out, (size_t)N * C * sizeof(float));
    else sm_train_add(t, dinp, t->mm_out, (size_t)N * C);
}

void sm_train_frozen_copy(float *w, float *wt, const sm_matrix *m) {
    size_t rb = sm_type_row_bytes(m->type, m->cols);
    if (w)
        for (int r = 0; r < m->rows; r++)
            sm_type(m->type)->to_float(w + (size_t)r * m->cols, (const char *)m->data + rb * (size_t)r, m->cols);
    if (wt) transpose(wt, w ? w : (const float *)m->data, m->rows, m->cols);
}

void sm_train_frozen_row(float *out, const sm_matrix *w, int row) {
    sm_type(w->type)->to_float(out, (const char *)w->data + sm_type_row_bytes(w->type, w->cols) * (size_t)row, w->cols);
}

/* c (m x n, row stride n) = a^T w^T for a (k x m) and w (n x k): c[i][j] =
 * sum over x < k of a[x][i] w[j][x], a sum over the k tokens of a batch
 * whose rows are a's. With the packed kernel a^T is packed straight from
 * a's rows (panel[p][x][jj] = a[x][16 p + jj], what sm_pack_a makes of a^T)
 * and each thread packs and multiplies its own 16-row panels of c, so every
 * element is one sum from 0 over x in order, whatever the thread count;
 * without it a^T is transposed into mm_at for matmul_f32, split the same. */
typedef struct gemm_at_task {
    const sm_trainer *t;
    float *c;
    const float *a, *w;
    int m, n, k;
} gemm_at_task;

static void gemm_at_task_fn(void *ctx, int ith, int nth) {
    const gemm_at_task *g = ctx;
    const sm_kernel_table *kt = g->t->kt;
    int p0, p1;   /* 16-row panels */
    sm_share((g->m + 15) / 16, 1, ith, nth, &p0, &p1);
    if (p0 >= p1) return;
    int i0 = 16 * p0, i1 = 16 * p1 < g->m ? 16 * p1 : g->m;
    if (!kt->matmul_packed) {
        kt->matmul_f32(g->c + (size_t)i0 * g->n, g->t->mm_at + (size_t)i0 * g->k, g->w, i1 - i0, g->n, g->k, g->n);
        return;
    }
    float *packed = g->t->mm_pack + (size_t)p0 * 16 * g->k;
    for (int p = p0; p < p1; p++) {
        int rows = g->m - 16 * p < 16 ? g->m - 16 * p : 16;
        float *dst = g->t->mm_pack + (size_t)p * 16 * g->k;
        for (int x = 0; x < g->k; x++) {
            const float *src = g->a + (size_t)x * g->m + 16 * p;
            for (int jj = 0; jj < 16; jj++) dst[(size_t)x * 16 + jj] = jj < rows ? src[jj] : 0.0f;
        }
    }
    kt->matmul_packed(g->c + (size_t)i0 * g->n, packed, g->w, i1 - i0, g->n, g->k, g->n);
}

static void gemm_at(const sm_trainer *t, float *c, const float *a, const float *w, int m, int n, int k) {
    if (!t->kt->matmul_packed) transpose(t->mm_at, a, k, m);
    gemm_at_task g = {t, c, a, w, m, n, k};
    sm_threadpool_run(t->pool, gemm_at_task_fn, &g);
}

/* LoRA's products on levels without the strided product (with it the
 * trainer merges each adapted matrix: sm_train_lora_merged_fwd), packed or
 * plain matrix products: the forward's A x reuses the batch packed for the
 * base's product; the adapters' gradients are sums over the batch's tokens
 * (gemm_at), with the rank r as the short side. t->lora_tmp holds B^T
 * (r x OC) or A^T (C x r), then a gradient, and after 2 r max(C, OC) floats
 * the rank-major ax or g (r x N). */
void sm_train_lora_fwd(const sm_trainer *t, float *out, float *ax, const float *inp, const float *a, const float *b,
                       float scale, int N, int C, int OC, int r) {
    gemm_prepacked(t, ax, inp, a, N, r, C);   /* inp was packed by the frozen product */
    gemm(t, t->mm_out, ax, b, N, OC, r);
    for (size_t i = 0; i < (size_t)N * OC; i++) out[i] += scale * t->mm_out[i];
}

/* W' = W + scale B A into t->lora_w: W's F32 rows, or its rows converted
 * (the same values), then the rank-r product added in place: each element
 * w[o][c] + (the sum over j of (scale b[o][j]) a[j][c], in order). */
static void lora_merge(const sm_trainer *t, const sm_train_frozen *fw, const float *a, const float *b, float scale,
                       int r) {
    const sm_matrix *w = fw->m;
    int C = w->cols, OC = w->rows;
    float *dst = t->lora_w, *sb = t->lora_tmp;
    if (fw->w) memcpy(dst, fw->w, (size_t)OC * C * sizeof(float));
    else sm_type(w->type)->to_float(dst, w->data, OC * C);
    for (size_t i = 0; i < (size_t)OC * r; i++) sb[i] = scale * b[i];
    sgemm(t, dst, C, sb, (size_t)r, 1, a, 1, (size_t)C, OC, C, r, SM_GEMM_ACCUMULATE);
}

void sm_train_lora_merged_fwd(const sm_trainer *t, float *out, float *ax, const float *inp, const sm_train_frozen *fw,
                              const float *a, const float *b, const float *bias, float scale, int N, int r) {
    int C = fw->m->cols, OC = fw->m->rows;
    lora_merge(t, fw, a, b, scale, r);
    weight_product(t, out, inp, t->lora_w, N, OC, C);
    if (bias) add_bias(t, out, bias, N, OC);
    gemm(t, ax, inp, a, N, r, C);
}

void sm_train_lora_merged_dinp(const sm_trainer *t, float *dinp, int set, const float *dout, const sm_train_frozen *fw,
                               const float *a, const float *b, float scale, int N, int r) {
    int C = fw->m->cols, OC = fw->m->rows;
    lora_merge(t, fw, a, b, scale, r);
    /* dinp[n][c] (+)= sum over o of dout[n][o] w'[o][c]: w' read by columns */
    sgemm(t, dinp, C, dout, (size_t)OC, 1, t->lora_w, 1, (size_t)C, N, C, OC,
          (set ? 0 : SM_GEMM_ACCUMULATE) | weight_mixed(t));
}

void sm_train_lora_bwd(const sm_trainer *t, float *dinp, float *da, float *db, float *dax, const float *dout,
                       const float *inp, const float *ax, const float *a, const float *b, float scale, int N, int C,
                       int OC, int r) {
    int wide = OC > C ? OC : C;
    float *tmp = t->lora_tmp, *rn = tmp + 2 * (size_t)r * wide;
    if (t->kt->gemm) {   /* every product reads its operands in place and accumulates where it adds */
        /* g = dax[n][j] = scale sum over o of dout[n][o] b[o][j] */
        sgemm(t, dax, r, dout, (size_t)OC, 1, b, 1, (size_t)r, N, r, OC, 0);
        for (size_t i = 0; i < (size_t)N * r; i++) dax[i] *= scale;
        /* dinp[n][c] += sum over j of g[n][j] a[j][c] */
        if (dinp) sgemm(t, dinp, C, dax, (size_t)r, 1, a, 1, (size_t)C, N, C, r, 1);
        /* dB[o][j] += sum over n of dout[n][o] (scale ax[n][j]): as dB^T (r x OC, into tmp) = (scale ax)^T
         * dout, the rank the short side (r rows packed) and dout read by rows as weight rows, split over
         * the threads (dout by columns as the batch would be packed whole, and give one thread r columns),
         * then added: each element the same sum in the same order, plus dB */
        for (size_t i = 0; i < (size_t)N * r; i++) rn[i] = scale * ax[i];
        sgemm(t, tmp, OC, rn, 1, (size_t)r, dout, 1, (size_t)OC, r, OC, N, 0);
        for (int o = 0; o < OC; o++)
            for (int j = 0; j < r; j++) db[(size_t)o * r + j] += tmp[(size_t)j * OC + o];
        /* dA[j][c] += sum over n of g[n][j] inp[n][c] */
        sgemm(t, da, C, dax, 1, (size_t)r, inp, 1, (size_t)C, r, C, N, 1);
        return;
    }
    /* g = dax (N x r) = scale dout B, with B^T as r rows of OC */
    transpose(tmp, b, OC, r);
    gemm(t, dax, dout, tmp, N, r, OC);
    for (size_t i = 0; i < (size_t)N * r; i++) dax[i] *= scale;
    /* dinp (N x C) += g A, with A^T as C rows of r */
    if (dinp) {
        transpose(tmp, a, r, C);
        gemm(t, t->mm_out, dax, tmp, N, C, r);
        for (size_t i = 0; i < (size_t)N * C; i++) dinp[i] += t->mm_out[i];
    }
    /* dB (OC x r) += dout^T (scale ax): each term scale ax[n][j] dout[n][o], summed over n */
    for (int n = 0; n < N; n++)
        for (int j = 0; j < r; j++) rn[(size_t)j * N + n] = scale * ax[(size_t)n * r + j];
    gemm_at(t, tmp, dout, rn, OC, r, N);
    for (size_t i = 0; i < (size_t)OC * r; i++) db[i] += tmp[i];
    /* dA (r x C) += g^T inp, as dA^T (C x r) = inp^T g */
    transpose(rn, dax, N, r);
    gemm_at(t, tmp, inp, rn, C, r, N);
    for (int c = 0; c < C; c++)
        for (int j = 0; j < r; j++) da[(size_t)j * C + c] += tmp[(size_t)c * r + j];
}

/* ------------------------------------------------------------- norms
 * On the thread pool, each thread a contiguous run of rows (or, for the
 * weight gradients, of columns, every column summed over the rows in row
 * order): each value is computed as on one thread, so the bits do not
 * depend on the thread count. */

typedef struct norm_task {
    const sm_trainer *t;
    float *out, *mean, *rstd, *dinp, *dw, *db;
    const float *inp, *w, *b, *dout, *cmean, *crstd;
    int N, C, layer_norm;
    float eps;
} norm_task;

static void norm_fwd_fn(void *ctx, int ith, int nth) {
    const norm_task *a = ctx;
    const sm_kernel_table *kt = a->t->kt;
    int n0, n1;
    sm_share(a->N, 1, ith, nth, &n0, &n1);
    for (int n = n0; n < n1; n++)
        kt->norm_fwd(a->out + (size_t)n * a->C, a->mean ? a->mean + n : NULL, a->rstd + n, a->inp + (size_t)n * a->C,
                     a->w, a->b, a->C, a->eps, a->layer_norm);
}

static void norm_bwd_rows_fn(void *ctx, int ith, int nth) {
    const norm_task *a = ctx;
    const sm_kernel_table *kt = a->t->kt;
    int n0, n1;
    sm_share(a->N, 1, ith, nth, &n0, &n1);
    for (int n = n0; n < n1; n++) {
        size_t o = (size_t)n * a->C;
        kt->norm_bwd(a->dinp + o, a->dout + o, a->inp + o, a->w, a->layer_norm ? a->cmean[n] : 0.0f, a->crstd[n],
                     a->C, a->layer_norm);
    }
}

/* The weight (and bias) gradients of this thread's columns, over every row in order */
static void norm_bwd_cols_fn(void *ctx, int ith, int nth) {
    const norm_task *a = ctx;
    const sm_kernel_table *kt = a->t->kt;
    int i0, i1;
    sm_share(a->C, 16, ith, nth, &i0, &i1);
    if (i0 >= i1) return;
    for (int n = 0; n < a->N; n++) {
        size_t o = (size_t)n * a->C + i0;
        kt->norm_cols_bwd(a->dw ? a->dw + i0 : NULL, a->db ? a->db + i0 : NULL, a->dout + o, a->inp + o,
                          a->layer_norm ? a->cmean[n] : 0.0f, a->crstd[n], i1 - i0, a->layer_norm);
    }
}

void sm_train_layernorm_fwd(const sm_trainer *t, float *out, float *mean, float *rstd, const float *inp,
                            const float *w, const float *b, int N, int C, float eps) {
    norm_task a = {.t = t, .out = out, .mean = mean, .rstd = rstd, .inp = inp, .w = w, .b = b, .N = N, .C = C,
                   .layer_norm = 1, .eps = eps};
    sm_threadpool_run(t->pool, norm_fwd_fn, &a);
}

void sm_train_layernorm_bwd(const sm_trainer *t, float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean, const float *rstd, int N, int C) {
    norm_task a = {.t = t, .dinp = dinp, .dw = dw, .db = db, .dout = dout, .inp = inp, .w = w, .cmean = mean,
                   .crstd = rstd, .N = N, .C = C, .layer_norm = 1};
    sm_threadpool_run(t->pool, norm_bwd_rows_fn, &a);
    if (dw || db) sm_threadpool_run(t->pool, norm_bwd_cols_fn, &a);
}

void sm_train_rmsnorm_fwd(const sm_trainer *t, float *out, float *rstd, const float *inp, const float *w, int N,
                          int C, float eps) {
    norm_task a = {.t = t, .out = out, .rstd = rstd, .inp = inp, .w = w, .N = N, .C = C, .eps = eps};
    sm_threadpool_run(t->pool, norm_fwd_fn, &a);
}

void sm_train_rmsnorm_bwd(const sm_trainer *t, float *dinp, float *dw, const float *dout, const float *inp,
                          const float *w, const float *rstd, int N, int C) {
    norm_task a = {.t = t, .dinp = dinp, .dw = dw, .dout = dout, .inp = inp, .w = w, .crstd = rstd, .N = N, .C = C};
    sm_threadpool_run(t->pool, norm_bwd_rows_fn, &a);
    if (dw) sm_threadpool_run(t->pool, norm_bwd_cols_fn, &a);
}

/* -------------------------------------------------------- activations */

/* The activations and their gradients, elementwise: on the thread pool,
 * each thread a contiguous run (whole multiples of 16, so every vector of
 * the level's kernel holds the same elements as in one call: the same
 * bits), in chunks of ACT_CHUNK elements, so that GELU's copy of its input
 * is still in L1 when the kernel rewrites it in place. */
#define ACT_CHUNK 4096
enum { ACT_GELU, ACT_GELU_GRAD, ACT_SWIGLU, ACT_SWIGLU_GRAD, ACT_GEGLU, ACT_GEGLU_GRAD, ACT_RELU2, ACT_RELU2_GRAD };
typedef struct act_task {
    const sm_trainer *t;
    int op;
    float *o1, *o2;
    const float *i1, *i2, *i3;
    size_t n;
} act_task;

static void act_fn(void *ctx, int ith, int nth) {
    const act_task *a = ctx;
    const sm_kernel_table *kt = a->t->kt;
    size_t i0, i1;
    sm_share_size(a->n, 16, ith, nth, &i0, &i1);
    for (size_t i = i0; i < i1; i += ACT_CHUNK) {
        int len = (int)(i1 - i < ACT_CHUNK ? i1 - i : ACT_CHUNK);
        switch (a->op) {
        case ACT_GELU:   /* o1 = gelu(i1) */
            memcpy(a->o1 + i, a->i1 + i, (size_t)len * sizeof(float));
            kt->gelu(a->o1 + i, len);
            break;
        case ACT_GELU_GRAD:   /* o1 = gelu'(i1) i2 */
            kt->gelu_grad(a->o1 + i, a->i1 + i, a->i2 + i, len);
            break;
        case ACT_GEGLU:   /* o1 = gelu(i1) i2, as the forward pass of inference computes it */
            memcpy(a->o1 + i, a->i1 + i, (size_t)len * sizeof(float));
            kt->gelu(a->o1 + i, len);
            sm_mul(a->o1 + i, a->i2 + i, len);
            break;
        case ACT_GEGLU_GRAD:   /* o1 = gelu'(i1) i2 i3, o2 = gelu(i1) i3 */
            memcpy(a->o2 + i, a->i1 + i, (size_t)len * sizeof(float));
            kt->gelu(a->o2 + i, len);
            for (int j = 0; j < len; j++) {
                a->o1[i + j] = a->i3[i + j] * a->i2[i + j];
                a->o2[i + j] *= a->i3[i + j];
            }
            kt->gelu_grad(a->o1 + i, a->i1 + i, a->o1 + i, len);
            break;
        case ACT_RELU2:   /* o1 = relu(i1)^2 */
            for (int j = 0; j < len; j++) a->o1[i + j] = a->i1[i + j] > 0 ? a->i1[i + j] * a->i1[i + j] : 0.0f;
            break;
        case ACT_RELU2_GRAD:   /* o1 = 2 relu(i1) i2 */
            for (int j = 0; j < len; j++) a->o1[i + j] = a->i1[i + j] > 0 ? 2.0f * a->i1[i + j] * a->i2[i + j] : 0.0f;
            break;
        case ACT_SWIGLU:   /* o1 = silu(i1) i2 */
            kt->swiglu(a->o1 + i, a->i1 + i, a->i2 + i, len);
            break;
        default:   /* o1, o2 = the gate's and the up projection's gradients from i3 */
            kt->swiglu_grad(a->o1 + i, a->o2 + i, a->i1 + i, a->i2 + i, a->i3 + i, len);
            break;
        }
    }
}

void sm_train_gelu_fwd(const sm_trainer *t, int relu2, float *out, const float *inp, size_t n) {
    act_task a = {t, relu2 ? ACT_RELU2 : ACT_GELU, out, NULL, inp, NULL, NULL, n};
    sm_threadpool_run(t->pool, act_fn, &a);
}

void sm_train_gelu_bwd(const sm_trainer *t, int relu2, float *dinp, const float *inp, const float *dout, size_t n) {
    act_task a = {t, relu2 ? ACT_RELU2_GRAD : ACT_GELU_GRAD, dinp, NULL, inp, dout, NULL, n};
    sm_threadpool_run(t->pool, act_fn, &a);
}

/* h = act(g) * u (SiLU or, with gelu, GELU), and its backward */
void sm_train_gated_fwd(const sm_trainer *t, int gelu, float *h, const float *g, const float *u, size_t n) {
    act_task a = {t, gelu ? ACT_GEGLU : ACT_SWIGLU, h, NULL, g, u, NULL, n};
    sm_threadpool_run(t->pool, act_fn, &a);
}

void sm_train_gated_bwd(const sm_trainer *t, int gelu, float *dg, float *du, const float *g, const float *u,
                        const float *dh, size_t n) {
    act_task a = {t, gelu ? ACT_GEGLU_GRAD : ACT_SWIGLU_GRAD, dg, du, g, u, dh, n};
    sm_threadpool_run(t->pool, act_fn, &a);
}

/* A fused gate and up: each thread a run of rows, one kernel call per row
 * (as inference's activation goes row by row). */
typedef struct fused_task {
    const sm_trainer *t;
    float *h, *dgu;
    const float *gu, *dh;
    int N, F;
} fused_task;

static void fused_fn(void *ctx, int ith, int nth) {
    const fused_task *a = ctx;
    const sm_kernel_table *kt = a->t->kt;
    int n0, n1;
    sm_share(a->N, 1, ith, nth, &n0, &n1);
    size_t F = (size_t)a->F;
    for (int n = n0; n < n1; n++) {
        const float *g = a->gu + (size_t)n * 2 * F;
        if (a->dgu) kt->swiglu_grad(a->dgu + (size_t)n * 2 * F, a->dgu + (size_t)n * 2 * F + F, g, g + F, a->dh + n * F,
                                    a->F);
        else kt->swiglu(a->h + n * F, g, g + F, a->F);
    }
}

void sm_train_swiglu_fused_fwd(const sm_trainer *t, float *h, const float *gu, int N, int F) {
    fused_task a = {t, h, NULL, gu, NULL, N, F};
    sm_threadpool_run(t->pool, fused_fn, &a);
}

void sm_train_swiglu_fused_bwd(const sm_trainer *t, float *dgu, const float *gu, const float *dh, int N, int F) {
    fused_task a = {t, NULL, dgu, gu, dh, N, F};
    sm_threadpool_run(t->pool, fused_fn, &a);
}

/* Rotates pairs of every head of each token by its position's angles;
 * sign -1 rotates back (the backward of a rotation is its inverse). On the
 * thread pool, each thread a run of tokens. */
typedef struct rope_task {
    const sm_kernel_table *kt;
    float *x;
    const float *cs, *sn;
    size_t ld;
    int N, T, heads, hd, rot, neox;   /* rot: half the rotated dimensions */
    float sign;
} rope_task;

/* NeoX's pairing (qwen2): element i with element i + hd/2, each product
 * rounded as sm_rope_pairs_scalar rounds it */
static void rope_neox(float *x, const float *c, const float *s, float sign, int rot) {
    for (int i = 0; i < rot; i++) {
        float ci = c[i], si = sign * s[i], x0 = x[i], x1 = x[i + rot];
        x[i] = x0 * ci - x1 * si;
        x[i + rot] = x0 * si + x1 * ci;
    }
}

static void rope_fn(void *ctx, int ith, int nth) {
    const rope_task *a = ctx;
    int rot = a->rot, n0, n1;
    sm_share(a->N, 1, ith, nth, &n0, &n1);
    for (int n = n0; n < n1; n++) {
        const float *c = a->cs + (size_t)(n % a->T) * rot, *s = a->sn + (size_t)(n % a->T) * rot;
        for (int h = 0; h < a->heads; h++) {
            float *x = a->x + (size_t)n * a->ld + (size_t)h * a->hd;
            if (a->neox) rope_neox(x, c, s, a->sign, rot);
            else a->kt->rope_pairs(x, c, s, a->sign, rot);
        }
    }
}

void sm_train_rope(const sm_trainer *t, float *x, size_t ld, int N, int T, int heads, int hd, int rope_dim, int neox,
                   const float *cs, const float *sn, float sign) {
    rope_task a = {t->kt, x, cs, sn, ld, N, T, heads, hd, rope_dim / 2, neox, sign};
    sm_threadpool_run(t->pool, rope_fn, &a);
}

/* ---------------------------------------------------------- attention
 * q rows have stride qs, k/v rows stride kvs (so GPT-2's fused qkv works);
 * head h reads KV head h / (heads / kv_heads). The work is split across
 * threads by (sequence, KV head): the heads sharing a KV head write the
 * same dk/dv rows, so they stay on one thread. */

typedef struct att_task {
    const sm_trainer *t;
    att_shape s;
    float *out, *att, *dq, *dk, *dv, *datt, *lse;
    const float *q, *k, *v, *dout, *att_in;
    int backward;
} att_task;

/* A soft cap's forward on one row of n scores (already scaled) ... */
static void softcap_row(float *row, float cap, int n) {
    for (int u = 0; u < n; u++) row[u] = cap * tanhf(row[u] / cap);
}

/* ... and its slope at a score whose softmax weight is p: 1 - tanh^2, the
 * capped score being log p + lse (p = 0: the score's gradient is 0 anyway) */
static float softcap_slope(float p, float lse, float cap) {
    if (!(p > 0)) return 1.0f;
    float th = (logf(p) + lse) / cap;
    return 1.0f - th * th;
}

/* Where row t of head h of sequence b keeps its log-sum-exp. */
static float *lse_at(const att_task *a, int b, int h, int t) {
    return a->lse + ((size_t)b * a->s.heads + h) * a->s.T + t;
}

static void attention_one_fwd(const att_task *a, int b, int h) {
    const att_shape s = a->s;
    const sm_kernel_table *kt = a->t->kt;
    float scale = s.scale, slope = sm_alibi_slope_of(s.heads, s.alibi, h);
    int kh = h / (s.heads / s.kv_heads);
    for (int t = 0; t < s.T; t++) {
        const float *qt = a->q + (size_t)(b * s.T + t) * s.qs + (size_t)h * s.hd;
        float *att = a->att + (((size_t)b * s.heads + h) * s.T + t) * s.T;
        float max = -INFINITY;
        for (int u = 0; u <= t; u++)
            att[u] = kt->dot(qt, a->k + (size_t)(b * s.T + u) * s.kvs + (size_t)kh * s.hd, s.hd) * scale;
        if (s.softcap) softcap_row(att, s.softcap, t + 1);
        if (slope != 0) sm_alibi(att, t + 1, slope, -t);   /* keys 0..t */
        for (int u = 0; u <= t; u++)
            if (att[u] > max) max = att[u];
        float sum = 0;
        for (int u = 0; u <= t; u++) { att[u] = expf(att[u] - max); sum += att[u]; }
        for (int u = 0; u <= t; u++) att[u] /= sum;
        if (s.softcap) *lse_at(a, b, h, t) = max + logf(sum);
        for (int u = t + 1; u < s.T; u++) att[u] = 0;
        float *o = a->out + (size_t)(b * s.T + t) * s.heads * s.hd + (size_t)h * s.hd;
        memset(o, 0, (size_t)s.hd * sizeof(float));
        for (int u = 0; u <= t; u++) kt->axpy(o, att[u], a->v + (size_t)(b * s.T + u) * s.kvs + (size_t)kh * s.hd, s.hd);
    }
}

static void attention_one_bwd(const att_task *a, int b, int h, float *datt) {
    const att_shape s = a->s;
    const sm_kernel_table *kt = a->t->kt;
    float scale = s.scale;
    int kh = h / (s.heads / s.kv_heads);
    for (int t = 0; t < s.T; t++) {
        const float *att = a->att_in + (((size_t)b * s.heads + h) * s.T + t) * s.T;
        const float *d = a->dout + (size_t)(b * s.T + t) * s.heads * s.hd + (size_t)h * s.hd;
        const float *qt = a->q + (size_t)(b * s.T + t) * s.qs + (size_t)h * s.hd;
        float *dqt = a->dq + (size_t)(b * s.T + t) * s.qs + (size_t)h * s.hd;
        /* through the weighted sum of values */
        float dot_ad = 0;
        for (int u = 0; u <= t; u++) {
            size_t row = (size_t)(b * s.T + u) * s.kvs + (size_t)kh * s.hd;
            datt[u] = kt->dot(d, a->v + row, s.hd);
            kt->axpy(a->dv + row, att[u], d, s.hd);
            dot_ad += att[u] * datt[u];
        }
        /* through the softmax (and a soft cap), then the scaled dot products */
        float lse = s.softcap ? *lse_at(a, b, h, t) : 0;
        for (int u = 0; u <= t; u++) {
            float dpre = att[u] * (datt[u] - dot_ad) * scale;
            if (s.softcap) dpre *= softcap_slope(att[u], lse, s.softcap);
            size_t row = (size_t)(b * s.T + u) * s.kvs + (size_t)kh * s.hd;
            kt->axpy(dqt, dpre, a->k + row, s.hd);
            kt->axpy(a->dk + row, dpre, qt, s.hd);
        }
    }
}

/* The same with the strided product (kt->gemm), one head of one sequence
 * as small matrix products over the T x T block, in chunks of ATT_CH
 * queries (or keys), each only against the keys (or queries) the causal
 * mask lets it see: about 60 % of the whole block's work at T = 128. buf is
 * the thread's att_buf: packed panels, then the T x T block of dP and dS. */
#define ATT_CH 24

/* c (m x n) = a (m rows at stride a_rs) w^T: rows read in place where the
 * level has the strided product (the same sums as packing them first), else
 * packed into buf. */
static void att_rows(const sm_kernel_table *kt, float *c, int ldc, const float *a, size_t a_rs, int m, const float *w,
                     size_t w_rs, size_t w_cs, int n, int k, int flags, float *buf, float *scratch) {
    if (kt->gemm_strided) {
        kt->gemm_strided(c, ldc, a, a_rs, 1, m, w, w_rs, w_cs, n, k, flags, scratch);
        return;
    }
    kt->gemm_pack(buf, a, a_rs, 1, m, k, 0, (m + kt->gemm_mr - 1) / kt->gemm_mr);
    kt->gemm(c, ldc, buf, m, w, w_rs, w_cs, n, k, flags);
}

static void attention_head_fwd(const att_task *a, int b, int h, float *buf, float *scratch) {
    const att_shape s = a->s;
    const sm_kernel_table *kt = a->t->kt;
    int kh = h / (s.heads / s.kv_heads), T = s.T, ld = s.heads * s.hd;
    float scale = s.scale, slope = sm_alibi_slope_of(s.heads, s.alibi, h);
    const float *q = a->q + (size_t)b * T * s.qs + (size_t)h * s.hd;
    const float *k = a->k + (size_t)b * T * s.kvs + (size_t)kh * s.hd, *v = a->v + (size_t)b * T * s.kvs + (size_t)kh * s.hd;
    float *att = a->att + ((size_t)b * s.heads + h) * T * T;   /* [T][T] */
    float *out = a->out + (size_t)b * T * ld + (size_t)h * s.hd;
    for (int q0 = 0; q0 < T; q0 += ATT_CH) {
        int q1 = q0 + ATT_CH < T ? q0 + ATT_CH : T, nq = q1 - q0;
        /* att[t][u] = q_t . k_u for u < q1, then the causal softmax of row t over u <= t */
        att_rows(kt, att + (size_t)q0 * T, T, q + (size_t)q0 * s.qs, (size_t)s.qs, nq, k, (size_t)s.kvs, 1, q1, s.hd, 0,
                 buf, scratch);
        for (int t = q0; t < q1; t++) {
            float *row = att + (size_t)t * T, max = kt->scale_max(row, scale, t + 1);
            if (s.softcap) {
                softcap_row(row, s.softcap, t + 1);
                max = kt->scale_max(row, 1.0f, t + 1);
            }
            if (slope != 0) {
                sm_alibi(row, t + 1, slope, -t);
                max = kt->scale_max(row, 1.0f, t + 1);
            }
            float sum = kt->exp_sum(row, max, t + 1);
            kt->scale_max(row, 1.0f / sum, t + 1);
            if (s.softcap) *lse_at(a, b, h, t) = max + logf(sum);
            memset(row + t + 1, 0, (size_t)(T - t - 1) * sizeof(float));
        }
        /* out[t] = sum over u < q1 of att[t][u] v_u */
        att_rows(kt, out + (size_t)q0 * ld, ld, att + (size_t)q0 * T, (size_t)T, nq, v, 1, (size_t)s.kvs, s.hd, q1, 0, buf,
                 scratch);
    }
}

static void attention_head_bwd(const att_task *a, int b, int h, float *buf, float *scratch) {
    const att_shape s = a->s;
    const sm_kernel_table *kt = a->t->kt;
    int kh = h / (s.heads / s.kv_heads), T = s.T, ld = s.heads * s.hd, mr = kt->gemm_mr;
    int kv_acc = h != kh * (s.heads / s.kv_heads);   /* the group's first head sets dk and dv, the others add */
    float scale = s.scale;
    size_t qo = (size_t)b * T * s.qs + (size_t)h * s.hd, ko = (size_t)b * T * s.kvs + (size_t)kh * s.hd;
    const float *q = a->q + qo, *k = a->k + ko, *v = a->v + ko;
    const float *d = a->dout + (size_t)b * T * ld + (size_t)h * s.hd;
    const float *att = a->att_in + ((size_t)b * s.heads + h) * T * T;
    float *pack = buf, *ds = buf + a->t->att_buf_floats - (size_t)T * T;   /* [T][T] */
    /* query chunks: dP[t][u] = d_t . v_u (u < q1), then dS[t][u] = att[t][u] (dP[t][u] - sum over u' of
     * att[t][u'] dP[t][u']) scale */
    for (int q0 = 0; q0 < T; q0 += ATT_CH) {
        int q1 = q0 + ATT_CH < T ? q0 + ATT_CH : T, nq = q1 - q0;
        att_rows(kt, ds + (size_t)q0 * T, T, d + (size_t)q0 * ld, (size_t)ld, nq, v, (size_t)s.kvs, 1, q1, s.hd, 0, pack,
                 scratch);
        for (int t = q0; t < q1; t++) {
            kt->softmax_bwd(ds + (size_t)t * T, att + (size_t)t * T, scale, t + 1);
            if (s.softcap) {
                float *row = ds + (size_t)t * T, lse = *lse_at(a, b, h, t);
                for (int u = 0; u <= t; u++) row[u] *= softcap_slope(att[(size_t)t * T + u], lse, s.softcap);
            }
            memset(ds + (size_t)t * T + t + 1, 0, (size_t)(T - t - 1) * sizeof(float));
        }
        /* dq_t = sum over u < q1 of dS[t][u] k_u */
        att_rows(kt, a->dq + qo + (size_t)q0 * s.qs, s.qs, ds + (size_t)q0 * T, (size_t)T, nq, k, 1, (size_t)s.kvs, s.hd,
                 q1, 0, pack, scratch);
    }
    /* key chunks: dv_u (+)= sum over t >= u0 of att[t][u] d_t;  dk_u (+)= sum over t >= u0 of dS[t][u] q_t */
    for (int u0 = 0; u0 < T; u0 += ATT_CH) {
        int u1 = u0 + ATT_CH < T ? u0 + ATT_CH : T, nu = u1 - u0, panels = (nu + mr - 1) / mr, nt = T - u0;
        kt->gemm_pack(pack, att + (size_t)u0 * T + u0, 1, (size_t)T, nu, nt, 0, panels);
        kt->gemm(a->dv + ko + (size_t)u0 * s.kvs, s.kvs, pack, nu, d + (size_t)u0 * ld, 1, (size_t)ld, s.hd, nt,
                 kv_acc);
        kt->gemm_pack(pack, ds + (size_t)u0 * T + u0, 1, (size_t)T, nu, nt, 0, panels);
        kt->gemm(a->dk + ko + (size_t)u0 * s.kvs, s.kvs, pack, nu, q + (size_t)u0 * s.qs, 1, (size_t)s.qs, s.hd, nt,
                 kv_acc);
    }
}

/* Clears the gradients of one group (sequence b, KV head kh): its heads'
 * dq and its dk and dv, which attention_one_bwd adds to. */
static void attention_group_clear(const att_task *a, int b, int kh) {
    const att_shape s = a->s;
    int per_group = s.heads / s.kv_heads;
    for (int t = 0; t < s.T; t++) {
        size_t n = (size_t)b * s.T + t;
        memset(a->dq + n * s.qs + (size_t)kh * per_group * s.hd, 0, (size_t)per_group * s.hd * sizeof(float));
        memset(a->dk + n * s.kvs + (size_t)kh * s.hd, 0, (size_t)s.hd * sizeof(float));
        memset(a->dv + n * s.kvs + (size_t)kh * s.hd, 0, (size_t)s.hd * sizeof(float));
    }
}

static void attention_task_fn(void *ctx, int ith, int nth) {
    const att_task *a = ctx;
    int groups = a->s.B * a->s.kv_heads, per_group = a->s.heads / a->s.kv_heads;
    float *datt = a->datt + (size_t)ith * a->s.T, *buf = a->t->att_buf + (size_t)ith * a->t->att_buf_floats;
    float *scratch = a->t->gemm_scratch ? a->t->gemm_scratch + (size_t)ith * a->t->kt->gemm_scratch : NULL;
    for (int gi = ith; gi < groups; gi += nth) {
        int b = gi / a->s.kv_heads, kh = gi % a->s.kv_heads;
        if (a->backward && !a->t->kt->gemm) attention_group_clear(a, b, kh);
        for (int h = kh * per_group; h < (kh + 1) * per_group; h++) {
            if (a->t->kt->gemm) {
                if (a->backward) attention_head_bwd(a, b, h, buf, scratch);
                else attention_head_fwd(a, b, h, buf, scratch);
            } else if (a->backward) attention_one_bwd(a, b, h, datt);
            else attention_one_fwd(a, b, h);
        }
    }
}

void sm_train_attention_fwd(const sm_trainer *t, float *out, float *att, float *lse, const float *q, const float *k,
                            const float *v, att_shape s) {
    att_task a = {t, s, out, att, NULL, NULL, NULL, NULL, lse, q, k, v, NULL, NULL, 0};
    sm_threadpool_run(t->pool, attention_task_fn, &a);
}

void sm_train_attention_bwd(const sm_trainer *t, float *dq, float *dk, float *dv, float *datt, const float *dout,
                            const float *att, const float *lse, const float *q, const float *k, const float *v,
                            att_shape s) {
    att_task a = {t, s, NULL, NULL, dq, dk, dv, datt, (float *)lse, q, k, v, dout, att, 1};
    sm_threadpool_run(t->pool, attention_task_fn, &a);
}


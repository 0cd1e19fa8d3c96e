/* matmul.c - products of a session's activations with a weight matrix of
 * any element type, split across its threads by weight rows. One token
 * goes through the type's matrix x vector kernel (quantized types: integer
 * dots against the input quantized once); a batch goes through the packed
 * matrix x matrix kernel with the weights dequantized 16 rows at a time,
 * except where the type has integer batch products on its interleaved copy
 * (every type with one, on AVX-512): there the batch is quantized once, as one
 * token's input is, and each token's results are those it would get alone.
 * The one-token rows of several sessions batched together go through the
 * matrix x vector kernels too, 16 weight rows at a time against all of
 * them, so the weights are read once and each row's result is what it
 * alone would get.
 * The kernels come from the type table (kernels/types.h) at the session's
 * level, so this file knows no element type by name. */
#include "ops.h"
#include "kernels/interleave.h"

#include <stdatomic.h>
#include <string.h>

/* Whether w's products read xq's block sums (its interleaved kernels, one
 * token or a batch, against Q8_0 activations). */
static int needs_sums(const sm_session *s, const sm_matrix *w, uint32_t act) {
    return act == SM_GGML_Q8_0 && w->x16 && s->tk[w->type].matvec_x16;
}

/* Row i of a product's input, quantized into its slot of s->xq for the
 * integer dots of w's type (act), with its block sums where w's kernels
 * read them. */
static void quantize_row(const sm_session *s, const sm_matrix *w, uint32_t act, int i, const float *x) {
    void *xq = (char *)s->xq + (size_t)i * s->xq_stride;
    s->tk[act].from_float(xq, x, w->cols);
    if (needs_sums(s, w, act)) sm_q8_0_block_sums(s->xsum + (size_t)i * s->xsum_stride, xq, w->cols / SM_QK);
}

void sm_matmul_share_input(sm_session *s, const float *a) {
    s->shared_in = a;
    s->xq_holds.a = NULL;
    s->pack_holds.a = NULL;
}

/* xq holds rows [0, n) of the shared input a quantized to act: 1, and 2
 * with the block sums w's kernels need. */
static int xq_held(const sm_session *s, const sm_matrix *w, uint32_t act, const float *a, int n) {
    if (a != s->shared_in || s->xq_holds.a != a || s->xq_holds.n != n || s->xq_holds.act != act) return 0;
    return s->xq_holds.sums || !needs_sums(s, w, act) ? 2 : 1;
}

/* Rows [0, n) of a (this thread's part of them), quantized for w's
 * products into xq with block sums where its kernels read them, unless a
 * shared input already is there. */
static void quantize_rows(sm_session *s, const sm_matrix *w, uint32_t act, const float *a, int n, int ith, int nth) {
    int i0, i1, held = xq_held(s, w, act, a, n);
    sm_share(n, 1, ith, nth, &i0, &i1);
    if (held) {
        if (held == 1)
            for (int i = i0; i < i1; i++)
                sm_q8_0_block_sums(s->xsum + (size_t)i * s->xsum_stride,
                                   (const sm_block_q8_0 *)((const char *)s->xq + (size_t)i * s->xq_stride), w->cols / SM_QK);
        return;
    }
    for (int i = i0; i < i1; i++) quantize_row(s, w, act, i, a + (size_t)i * w->cols);
}

/* Called once per product, after quantize_rows has run on every thread. */
static void note_quantized(sm_session *s, const sm_matrix *w, uint32_t act, const float *a, int n) {
    int sums = needs_sums(s, w, act);
    if (s->xq_holds.a == a && s->xq_holds.n == n && s->xq_holds.act == act) sums |= s->xq_holds.sums;
    s->xq_holds.a = a;
    s->xq_holds.n = n;
    s->xq_holds.act = act;
    s->xq_holds.sums = sums;
}

/* ------------------------------------------------- one token: matvec */

typedef struct matvec_task {
    const sm_session *s;
    float *out;
    const sm_matrix *w;
    const void *x;           /* the input in the type's activation format */
    const float *bias;       /* added in the epilogue, or NULL */
    int accumulate;          /* out += W x (the residual add, fused) */
} matvec_task;

static void matvec_rows(const matvec_task *t, int r0, int r1) {
    const sm_session *s = t->s;
    const sm_matrix *w = t->w;
    const sm_type_kernels *k = &s->tk[w->type];
    int cols = w->cols;
    size_t rb = sm_type_row_bytes(w->type, cols);
    float *out = (t->accumulate ? s->tmp : t->out) + r0;
    int first = r0;   /* the first row the GGUF-layout kernel takes */
    if (w->x16 && k->matvec_x16) {
        /* r0 is a multiple of 16; whole groups take the interleaved copy */
        int full = w->rows / SM_X16 * SM_X16, end = r1 < full ? r1 : full;
        if (end > r0) {
            k->matvec_x16(out, (const char *)w->x16 + rb * (size_t)r0, t->x, s->xsum, end - r0, cols);
            first = end;
        }
    }
    if (r1 > first) k->matvec(out + (first - r0), (const char *)w->data + rb * (size_t)first, t->x, r1 - first, cols);
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
    int r0, r1;
    sm_share(t->w->rows, SM_X16, ith, nth, &r0, &r1);
    if (r0 < r1) matvec_rows(t, r0, r1);
}

static void matvec(sm_session *s, float *out, const sm_matrix *w, const float *x, const float *bias, int accumulate) {
    matvec_task t = {s, out, w, x, bias, accumulate};
    uint32_t act = sm_type(w->type)->vec_dot_type;
    if (act != SM_GGML_F32) {
        quantize_rows(s, w, act, x, 1, 0, 1);
        note_quantized(s, w, act, x, 1);
        t.x = s->xq;
    }
    /* a hand-off costs about a microsecond: small products stay on one thread */
    if ((size_t)w->rows * w->cols < 32768 || sm_threadpool_size(s->pool) == 1) matvec_rows(&t, 0, w->rows);
    else sm_threadpool_run(s->pool, matvec_task_fn, &t);
}

/* ------------------------------------- several one-token rows: matvecs */

typedef struct matvecs_task {
    const sm_session *s;
    float *c;                /* row i's output: outs[i], or c + i * ldc */
    int ldc;
    float *const *outs;
    const sm_matrix *w;
    const float *a;          /* the rows as floats (F32 activations) ... */
    int quantized;           /* ... or in s->xq, one per xq_stride */
    const float *bias;
    int n, accumulate;
} matvecs_task;

static float *row_out(const matvecs_task *t, int i) { return t->outs ? t->outs[i] : t->c + (size_t)i * t->ldc; }

/* Where row i's products go: its output, or with accumulate its row of tmp. */
static float *row_products(const matvecs_task *t, int i) {
    return t->accumulate ? t->s->tmp + (size_t)i * t->w->rows : row_out(t, i);
}

/* Weight rows [r0, r1) against every row, 16 weight rows at a time (the
 * groups the one-row path's kernel calls make too, so the sums are the
 * same); with accumulate each row's products go to its row of tmp first. */
static void matvecs_rows(const matvecs_task *t, int r0, int r1) {
    const sm_session *s = t->s;
    const sm_matrix *w = t->w;
    const sm_type_kernels *k = &s->tk[w->type];
    int cols = w->cols, full = w->x16 && k->matvec_x16 ? w->rows / SM_X16 * SM_X16 : 0;
    size_t rb = sm_type_row_bytes(w->type, cols);
    int from = r0;   /* the first row the loop below takes */
    if (k->matvec_n && !t->quantized && !full) {   /* up to SM_MATVEC_N rows per pass over the weights */
        for (int i0 = 0; i0 < t->n; i0 += SM_MATVEC_N) {
            int m = t->n - i0 < SM_MATVEC_N ? t->n - i0 : SM_MATVEC_N;
            float *outs[SM_MATVEC_N];
            for (int i = 0; i < m; i++) outs[i] = row_products(t, i0 + i) + r0;
            k->matvec_n(outs, (const char *)w->data + rb * (size_t)r0, t->a + (size_t)i0 * cols, (size_t)cols, m,
                        r1 - r0, cols);
        }
        from = r1;   /* every row done: only the epilogue below */
    } else if (t->quantized && full > r0 && k->batch_x16 && !t->outs) {
        /* whole interleaved groups through the integer batch kernel: each row's
         * values are matvec_x16's, and each group is read once for every row */
        int end = r1 < full ? r1 : full;
        size_t ldc = t->accumulate ? (size_t)w->rows : (size_t)t->ldc;   /* row_products' stride */
        k->batch_x16(row_products(t, 0) + r0, ldc, (const char *)w->x16 + rb * (size_t)r0, s->xq, s->xq_stride,
                     s->xsum, s->xsum_stride, t->n, end - r0, cols, 0);
        from = end;
    }
    for (int r = from; r < r1; r += SM_X16) {
        int re = r + SM_X16 < r1 ? r + SM_X16 : r1;
        for (int i = 0; i < t->n; i++) {
            float *out = row_products(t, i) + r;
            const void *x = t->quantized ? (const void *)((const char *)s->xq + (size_t)i * s->xq_stride)
                                         : (const void *)(t->a + (size_t)i * cols);
            if (re <= full)   /* a whole interleaved group */
                k->matvec_x16(out, (const char *)w->x16 + rb * (size_t)r, x, s->xsum + (size_t)i * s->xsum_stride,
                              re - r, cols);
            else
                k->matvec(out, (const char *)w->data + rb * (size_t)r, x, re - r, cols);
        }
    }
    for (int i = 0; i < t->n; i++) {
        float *dst = row_out(t, i);
        if (t->accumulate) {
            const float *p = s->tmp + (size_t)i * w->rows;
            if (t->bias) for (int r = r0; r < r1; r++) dst[r] += p[r] + t->bias[r];
            else for (int r = r0; r < r1; r++) dst[r] += p[r];
        } else if (t->bias) {
            for (int r = r0; r < r1; r++) dst[r] += t->bias[r];
        }
    }
}

static void matvecs_task_fn(void *ctx, int ith, int nth) {
    const matvecs_task *t = ctx;
    int r0, r1;
    sm_share(t->w->rows, SM_X16, ith, nth, &r0, &r1);
    if (r0 < r1) matvecs_rows(t, r0, r1);
}

static void matvecs(sm_session *s, float *c, int ldc, float *const *outs, const sm_matrix *w, const float *a, int n,
                    const float *bias, int accumulate) {
    matvecs_task t = {s, c, ldc, outs, w, a, 0, bias, n, accumulate};
    uint32_t act = sm_type(w->type)->vec_dot_type;
    if (act != SM_GGML_F32) {
        quantize_rows(s, w, act, a, n, 0, 1);
        note_quantized(s, w, act, a, n);
        t.quantized = 1;
    }
    if ((size_t)w->rows * w->cols * n < 32768 || sm_threadpool_size(s->pool) == 1) matvecs_rows(&t, 0, w->rows);
    else sm_threadpool_run(s->pool, matvecs_task_fn, &t);
}

void sm_matvec_rows(sm_session *s, float *const *out, const sm_matrix *w, const float *a, int n) {
    matvecs(s, NULL, 0, out, w, a, n, NULL, 0);
}

/* ------------------------------------------------- a batch: matmul */

typedef struct matmul_task {
    sm_session *s;
    float *c;
    int ldc;
    const sm_matrix *w;
    const float *a, *bias;
    int n, accumulate;
    int integer;             /* the batch goes to s->xq for the type's batch_x16 kernel ... */
    uint32_t act;            /* ... in this activation format (Q8_0, Q8_1, Q8_K) */
    atomic_int next_chunk;   /* the next chunk of rows not yet taken by a thread */
} matmul_task;

/* c[i][r] += bias[r] for rows r0..r1 of every token, through the level's
 * axpy: 1 x bias + c is rounded once, the bits of the plain sum (as a
 * scalar loop, which gcc does not vectorize here: c and bias may overlap,
 * it took 3 % of a GPT-2 prompt on Zen 3) */
static void add_bias(const matmul_task *t, int r0, int r1) {
    if (!t->bias) return;
    for (int i = 0; i < t->n; i++) t->s->kt->axpy(t->c + (size_t)i * t->ldc + r0, 1.0f, t->bias + r0, r1 - r0);
}

/* Integer products on the interleaved layout (batch_x16): whole 16-row
 * groups against the batch quantized in s->xq, accumulating in place; the
 * rows past the last whole group one token at a time through matvec. */
static void matmul_rows_integer(const matmul_task *t, int r0, int r1, float *scratch) {
    const sm_matrix *w = t->w;
    const sm_session *s = t->s;
    const sm_type_kernels *k = &s->tk[w->type];
    int cols = w->cols, full = w->rows / SM_X16 * SM_X16, end = r1 < full ? r1 : full;
    size_t rb = sm_type_row_bytes(w->type, cols);
    if (end > r0)
        k->batch_x16(t->c + r0, (size_t)t->ldc, (const char *)w->x16 + rb * (size_t)r0, s->xq, s->xq_stride, s->xsum,
                     s->xsum_stride, t->n, end - r0, cols, t->accumulate);
    int first = end > r0 ? end : r0;
    for (int i = 0; i < t->n && first < r1; i++) {
        float *c = t->c + (size_t)i * t->ldc;
        k->matvec(scratch, (const char *)w->data + rb * (size_t)first, (const char *)s->xq + (size_t)i * s->xq_stride,
                  r1 - first, cols);
        for (int r = first; r < r1; r++) c[r] = (t->accumulate ? c[r] : 0.0f) + scratch[r - first];
    }
    add_bias(t, r0, r1);
}

static void matmul_rows(const matmul_task *t, int r0, int r1, float *deq) {
    const sm_matrix *w = t->w;
    const sm_session *s = t->s;
    const sm_type_kernels *k = &s->tk[w->type];
    int cols = w->cols, n = t->n;
    size_t rb = sm_type_row_bytes(w->type, cols);
    /* with accumulate the product goes to tmp first (row stride = rows) */
    float *dst = t->accumulate ? s->tmp : t->c;
    int ld = t->accumulate ? w->rows : t->ldc;
    const sm_kernel_table *kt = s->kt;
    int grouped = w->x16 ? w->rows / SM_X16 * SM_X16 : 0;   /* the rows the interleaved copy holds */
    int full = k->dequant_x16 ? grouped : 0;                  /* of those, the ones dequantized row-major */
    if (kt->gemm) {   /* the strided product, accumulating in place; F32 (and F16 and BF16 where the
                       * level has gemm_f16 / gemm_bf16) read in place, other types dequantized 32 rows
                       * at a time */
        if (w->type == SM_GGML_F32) {
            kt->gemm(t->c + r0, t->ldc, s->pack, n, (const float *)w->data + (size_t)r0 * cols, (size_t)cols, 1, r1 - r0,
                     cols, t->accumulate);
        } else if (w->type == SM_GGML_BF16 && kt->gemm_bf16) {   /* converted as its blocks are packed */
            kt->gemm_bf16(t->c + r0, t->ldc, s->pack, n, (const uint16_t *)w->data + (size_t)r0 * cols, (size_t)cols,
                          r1 - r0, cols, t->accumulate);
        } else if (w->type == SM_GGML_F16 && kt->gemm_f16) {
            /* whole groups of the interleaved copy read in place (converted in
             * registers), the other rows converted as their blocks are packed */
            int end = kt->gemm_f16x16 && grouped > r0 ? (r1 < grouped ? r1 : grouped) : r0;
            if (end > r0)
                kt->gemm_f16x16(t->c + r0, t->ldc, s->pack, n, (const uint16_t *)w->x16 + (size_t)r0 * cols, end - r0,
                                cols, t->accumulate);
            if (r1 > end)
                kt->gemm_f16(t->c + end, t->ldc, s->pack, n, (const uint16_t *)w->data + (size_t)end * cols,
                             (size_t)cols, r1 - end, cols, t->accumulate);
        } else {
            int r = r0;
            if (k->dequant_x16_cols && kt->gemm_x16)   /* whole groups of the copy, column after column */
                for (; r + SM_X16 <= r1 && r + SM_X16 <= grouped; r += SM_X16) {
                    k->dequant_x16_cols(deq, (const char *)w->x16 + rb * (size_t)r, cols);
                    kt->gemm_x16(t->c + r, t->ldc, s->pack, n, deq, SM_X16, cols, t->accumulate);
                }
            for (; r < r1; r += SM_MATMUL_DEQ_ROWS) {
                int nr = r1 - r < SM_MATMUL_DEQ_ROWS ? r1 - r : SM_MATMUL_DEQ_ROWS;
                for (int g = 0; g < nr; g += SM_X16) {
                    int ng = nr - g < SM_X16 ? nr - g : SM_X16;
                    float *dg = deq + (size_t)g * cols;
                    if (r + g + SM_X16 <= full) k->dequant_x16(dg, (const char *)w->x16 + rb * (size_t)(r + g), cols);
                    else k->to_float(dg, (const char *)w->data + rb * (size_t)(r + g), ng * cols);
                }
                kt->gemm(t->c + r, t->ldc, s->pack, n, deq, (size_t)cols, 1, nr, cols, t->accumulate);
            }
        }
        add_bias(t, r0, r1);
        return;
    }
    for (int r = r0; r < r1; r += SM_X16) {
        int nr = r1 - r < SM_X16 ? r1 - r : SM_X16;
        const float *wr = deq;
        if (w->type == SM_GGML_F32) wr = (const float *)w->data + (size_t)r * cols;
        else if (r + SM_X16 <= full) k->dequant_x16(deq, (const char *)w->x16 + rb * (size_t)r, cols);  /* a whole group */
        else k->to_float(deq, (const char *)w->data + rb * (size_t)r, nr * cols);
        if (kt->matmul_packed) kt->matmul_packed(dst + r, s->pack, wr, n, nr, cols, ld);
        else kt->matmul_f32(dst + r, t->a, wr, n, nr, cols, ld);
    }
    if (!t->accumulate) {
        add_bias(t, r0, r1);
        return;
    }
    for (int i = 0; i < n; i++) {
        float *c = t->c + (size_t)i * t->ldc;
        const float *p = s->tmp + (size_t)i * w->rows;
        for (int r = r0; r < r1; r++) c[r] += p[r] + (t->bias ? t->bias[r] : 0.0f);
    }
}

/* Packs the batch into 16-token panels for the packed kernel, or
 * quantizes it for the integer one, on every thread. */
static void pack_task_fn(void *ctx, int ith, int nth) {
    const matmul_task *t = ctx;
    if (t->integer) quantize_rows(t->s, t->w, t->act, t->a, t->n, ith, nth);
    else if (t->s->kt->gemm) sm_gemm_pack_share(t->s->kt, t->s->pack, t->a, (size_t)t->w->cols, 1, t->n, t->w->cols, ith, nth);
    else sm_pack_a_share(t->s->kt, t->s->pack, t->a, t->n, t->w->cols, ith, nth);
}

/* The rows in MATMUL_CHUNKS chunks per thread, which the threads take in
 * turn as each finishes one: a thread slowed by another process (a busy
 * sibling core, a neighbour's VM) takes fewer, and the others do not wait
 * for it at the end. Each row's sums are the same whichever thread and
 * chunk computes it. */
#define MATMUL_CHUNKS 4

static void matmul_task_fn(void *ctx, int ith, int nth) {
    matmul_task *t = ctx;
    /* chunks of whole register tiles (the strided product's) or 16-row groups:
     * 288 rows on two AVX2 threads are 144 each, not 160 and 128 */
    int unit = t->s->kt->gemm ? t->s->kt->gemm_nr : SM_X16, chunks = nth > 1 ? nth * MATMUL_CHUNKS : 1;
    float *deq = t->s->deq + (size_t)ith * SM_MATMUL_DEQ_ROWS * t->s->max_cols;
    for (int c; (c = atomic_fetch_add_explicit(&t->next_chunk, 1, memory_order_relaxed)) < chunks;) {
        int r0, r1;
        sm_share(t->w->rows, unit, c, chunks, &r0, &r1);
        if (r0 >= r1) break;   /* the last chunks are the empty ones */
        if (t->integer) matmul_rows_integer(t, r0, r1, deq);
        else matmul_rows(t, r0, r1, deq);
    }
}

int sm_matmul(sm_session *s, float *c, int ldc, const sm_matrix *w, const float *a, int n, int n_vec,
              const float *bias, int accumulate) {
    if (n_vec == 1) matvec(s, c, w, a, bias, accumulate);
    else if (n_vec > 1) matvecs(s, c, ldc, NULL, w, a, n_vec, bias, accumulate);
    uint32_t act = sm_type(w->type)->vec_dot_type;
    int integer_rows = act != SM_GGML_F32 ? n_vec : 0;
    if (n == n_vec) return integer_rows;
    /* the rest through the matrix x matrix kernels */
    c += (size_t)n_vec * ldc;
    a += (size_t)n_vec * w->cols;
    n -= n_vec;
    /* a type with integer batch products on its interleaved copy: against
     * the batch quantized once (as one token's input is), else floats */
    int integer = w->x16 && s->tk[w->type].batch_x16 && act != SM_GGML_F32;
    matmul_task t = {s, c, ldc, w, a, bias, n, accumulate, integer, act, 0};
    if (t.integer) {   /* quantized once, shared by the threads (and by the products of a shared input) */
        if (xq_held(s, w, act, a, n) < 2) sm_threadpool_run(s->pool, pack_task_fn, &t);
        note_quantized(s, w, act, a, n);
    } else if (s->kt->gemm || s->kt->pack_a) {   /* packed in panels, the same */
        if (!(a == s->shared_in && s->pack_holds.a == a && s->pack_holds.n == n && s->pack_holds.k == w->cols))
            sm_threadpool_run(s->pool, pack_task_fn, &t);
        s->pack_holds.a = a;
        s->pack_holds.n = n;
        s->pack_holds.k = w->cols;
    }
    sm_threadpool_run(s->pool, matmul_task_fn, &t);
    return integer_rows + (t.integer ? n : 0);
}

void sm_embedding_row(float *out, const sm_matrix *m, int row) {
    sm_type(m->type)->to_float(out, (const char *)m->data + sm_type_row_bytes(m->type, m->cols) * (size_t)row, m->cols);
}

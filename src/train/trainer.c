/* trainer.c - the training forward and backward passes for GPT-2 and LLaMA
 * (see trainer.h). Each operation's forward stands beside its backward.
 * Everything is single-threaded and in a fixed order, so a run repeats
 * bit for bit. */
#include "trainer.h"
#include "core/alloc.h"
#include "core/error.h"
#include "model/session.h"
#include "core/cpu.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ layout */

static void add_param(sm_trainer *t, const char *name, int rows, int cols, int n_dims, int decay, int count_only) {
    if (!count_only) {
        sm_param *p = &t->params[t->n_params];
        snprintf(p->name, sizeof p->name, "%s", name);
        p->rows = rows;
        p->cols = cols;
        p->n_dims = n_dims;
        p->offset = t->n_floats;
        p->decay = decay;
    }
    t->n_params++;
    t->n_floats += (size_t)rows * cols;
}

/* The tensors, in the order and with the names of a GGUF file. */
static void layout_params(sm_trainer *t, int count_only) {
    const sm_train_config *c = &t->cfg;
    int C = c->dim, F = c->ffn, KV = c->kv_heads * (c->dim / c->heads), gpt2 = c->arch == SM_TRAIN_GPT2;
    t->n_params = 0;
    t->n_floats = 0;
    add_param(t, "token_embd.weight", c->vocab, C, 2, 0, count_only);
    if (gpt2) add_param(t, "position_embd.weight", c->ctx, C, 2, 0, count_only);
    add_param(t, "output_norm.weight", 1, C, 1, 0, count_only);
    if (gpt2) add_param(t, "output_norm.bias", 1, C, 1, 0, count_only);
    if (!c->tied) add_param(t, "output.weight", c->vocab, C, 2, 1, count_only);
    for (int l = 0; l < c->layers; l++) {
        char n[64];
#define P(s, r, cc, nd, d) (snprintf(n, sizeof n, "blk.%d." s, l), add_param(t, n, r, cc, nd, d, count_only))
        P("attn_norm.weight", 1, C, 1, 0);
        if (gpt2) {
            P("attn_norm.bias", 1, C, 1, 0);
            P("attn_qkv.weight", 3 * C, C, 2, 1);
            P("attn_qkv.bias", 1, 3 * C, 1, 0);
            P("attn_output.weight", C, C, 2, 1);
            P("attn_output.bias", 1, C, 1, 0);
            P("ffn_norm.weight", 1, C, 1, 0);
            P("ffn_norm.bias", 1, C, 1, 0);
            P("ffn_up.weight", F, C, 2, 1);
            P("ffn_up.bias", 1, F, 1, 0);
            P("ffn_down.weight", C, F, 2, 1);
            P("ffn_down.bias", 1, C, 1, 0);
        } else {
            P("attn_q.weight", C, C, 2, 1);
            P("attn_k.weight", KV, C, 2, 1);
            P("attn_v.weight", KV, C, 2, 1);
            P("attn_output.weight", C, C, 2, 1);
            P("ffn_norm.weight", 1, C, 1, 0);
            P("ffn_gate.weight", F, C, 2, 1);
            P("ffn_up.weight", F, C, 2, 1);
            P("ffn_down.weight", C, F, 2, 1);
        }
#undef P
    }
}

/* Activations of one layer for a batch of N = B*T tokens. */
typedef struct layer_acts {
    float *x;                        /* the residual stream into the layer */
    float *n1, *n1_mean, *n1_rstd;   /* first norm (mean unused by RMSNorm) */
    float *q, *k, *v;                /* GPT-2: q points into qkv */
    float *qkv;
    float *att;                      /* B x heads x T x T attention weights */
    float *atty;                     /* attention output, before the projection */
    float *x_mid;                    /* the stream after the attention block */
    float *n2, *n2_mean, *n2_rstd;
    float *h1, *h2, *h;              /* FFN: up (GPT-2) or gate/up, and the activation */
} layer_acts;

typedef struct acts {
    layer_acts *layer;               /* points into a fixed array below */
    float *x_out;                    /* the stream after the last layer */
    float *nf, *nf_mean, *nf_rstd;
    float *probs;                    /* N x vocab: logits, then probabilities */
    float *rope_cos, *rope_sin;      /* T x rot/2 */
} acts;

#define MAX_LAYERS 256

static size_t layout_acts(const sm_trainer *t, float *base, layer_acts *L, acts *a, int recompute) {
    const sm_train_config *c = &t->cfg;
    size_t N = (size_t)t->B * t->T, C = (size_t)c->dim, F = (size_t)c->ffn, off = 0;
    size_t KV = (size_t)c->kv_heads * (c->dim / c->heads), att = (size_t)t->B * c->heads * t->T * t->T;
    int gpt2 = c->arch == SM_TRAIN_GPT2;
#define TAKE(ptr, n) do { (ptr) = base ? base + off : NULL; off += (n); } while (0)
    for (int l = 0; l < c->layers; l++) {
        layer_acts *y = &L[l];
        if (recompute && l > 0) {
            /* checkpointing: a layer's own input, the rest shared with layer 0 */
            *y = L[0];
            TAKE(y->x, N * C);
            continue;
        }
        TAKE(y->x, N * C);
        TAKE(y->n1, N * C); TAKE(y->n1_mean, N); TAKE(y->n1_rstd, N);
        if (gpt2) {
            TAKE(y->qkv, N * 3 * C);
            y->q = y->k = y->v = NULL;
        } else {
            y->qkv = NULL;
            TAKE(y->q, N * C); TAKE(y->k, N * KV); TAKE(y->v, N * KV);
        }
        TAKE(y->att, att);
        TAKE(y->atty, N * C);
        TAKE(y->x_mid, N * C);
        TAKE(y->n2, N * C); TAKE(y->n2_mean, N); TAKE(y->n2_rstd, N);
        TAKE(y->h1, N * F);
        if (gpt2) y->h2 = NULL; else TAKE(y->h2, N * F);
        TAKE(y->h, N * F);
    }
    TAKE(a->x_out, N * C);
    TAKE(a->nf, N * C); TAKE(a->nf_mean, N); TAKE(a->nf_rstd, N);
    TAKE(a->probs, N * (size_t)c->vocab);
    size_t rot = (size_t)(c->dim / c->heads) / 2;
    TAKE(a->rope_cos, (size_t)t->T * rot);
    TAKE(a->rope_sin, (size_t)t->T * rot);
#undef TAKE
    a->layer = L;
    return off;
}

sm_status sm_trainer_new(const sm_train_config *cfg, int B, int T, int n_threads, int recompute, sm_trainer **out,
                         sm_error *err) {
    *out = NULL;
    if (cfg->layers < 1 || cfg->layers > MAX_LAYERS || cfg->dim < 1 || cfg->heads < 1 || cfg->dim % cfg->heads ||
        cfg->kv_heads < 1 || cfg->heads % cfg->kv_heads || cfg->vocab < 2 || cfg->ffn < 1 || B < 1 || T < 1 ||
        T > cfg->ctx)
        return sm_fail(err, SM_ERR_INVALID_ARG, "training shape out of range (layers %d, dim %d, heads %d/%d, T %d, ctx %d)",
                       cfg->layers, cfg->dim, cfg->heads, cfg->kv_heads, T, cfg->ctx);
    if (cfg->arch == SM_TRAIN_LLAMA && (cfg->dim / cfg->heads) % 2)
        return sm_fail(err, SM_ERR_INVALID_ARG, "a llama model needs an even head size");
    sm_trainer *t = sm_calloc(1, sizeof *t);
    if (!t) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    t->cfg = *cfg;
    if (cfg->arch == SM_TRAIN_GPT2) t->cfg.kv_heads = cfg->heads;
    t->B = B;
    t->T = T;
    t->kt = sm_kernels_get(NULL);
    layout_params(t, 1);
    t->params = sm_calloc((size_t)t->n_params, sizeof *t->params);
    layout_params(t, 0);
    layer_acts L[MAX_LAYERS];
    acts a;
    t->recompute = recompute;
    t->act_floats_full = layout_acts(t, NULL, L, &a, 0);
    t->act_floats = layout_acts(t, NULL, L, &a, recompute);
    size_t N = (size_t)B * T, C = (size_t)cfg->dim, F = (size_t)cfg->ffn;
    size_t att = (size_t)B * cfg->heads * T * T;
    /* backward temporaries: stream gradient, its partner, the attention and FFN
     * intermediates and one row of attention weights per head */
    size_t scratch = 4 * N * C + 3 * N * C + 2 * att + 3 * N * F + N * 3 * C;
    /* the largest operand of any product: N x (3C, F, vocab) or F x C */
    size_t wide = (size_t)(3 * C > F ? 3 * C : F);
    if ((size_t)cfg->vocab > wide) wide = (size_t)cfg->vocab;
    size_t big = (N + 16) * wide;
    if (wide * (C > F ? C : F) > big) big = wide * (C > F ? C : F);
    t->mm_at = sm_alloc_aligned(big * sizeof(float));
    t->mm_bt = sm_alloc_aligned(big * sizeof(float));
    t->mm_pack = sm_alloc_aligned((big + 16 * wide) * sizeof(float));
    t->mm_out = sm_alloc_aligned(big * sizeof(float));
    t->pool = sm_threadpool_new(n_threads > 0 ? n_threads : sm_cpu_physical_cores());
    t->w = sm_alloc_aligned(t->n_floats * sizeof(float));
    t->g = sm_alloc_aligned(t->n_floats * sizeof(float));
    t->m = sm_alloc_aligned(t->n_floats * sizeof(float));
    t->v = sm_alloc_aligned(t->n_floats * sizeof(float));
    t->act = sm_alloc_aligned(t->act_floats * sizeof(float));
    t->scratch = sm_alloc_aligned(scratch * sizeof(float));
    if (!t->params || !t->w || !t->g || !t->m || !t->v || !t->act || !t->scratch || !t->mm_at || !t->mm_bt ||
        !t->mm_pack || !t->mm_out || !t->pool) {
        sm_trainer_free(t);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory for training (%.1f M parameters, %.1f M activations)",
                       (double)t->n_floats / 1e6, (double)t->act_floats / 1e6);
    }
    memset(t->w, 0, t->n_floats * sizeof(float));
    memset(t->g, 0, t->n_floats * sizeof(float));
    memset(t->m, 0, t->n_floats * sizeof(float));
    memset(t->v, 0, t->n_floats * sizeof(float));
    layout_acts(t, t->act, L, &a, recompute);
    int rot = (cfg->dim / cfg->heads) / 2;
    for (int i = 0; i < rot; i++) {
        double freq = pow((double)(cfg->rope_base > 0 ? cfg->rope_base : 10000.0f), -2.0 * i / (2.0 * rot));
        for (int p = 0; p < T; p++) {
            a.rope_cos[(size_t)p * rot + i] = (float)cos(p * freq);
            a.rope_sin[(size_t)p * rot + i] = (float)sin(p * freq);
        }
    }
    *out = t;
    return SM_OK;
}

void sm_trainer_free(sm_trainer *t) {
    if (!t) return;
    sm_free(t->params);
    sm_free(t->w);
    sm_free(t->g);
    sm_free(t->m);
    sm_free(t->v);
    sm_free(t->act);
    sm_free(t->scratch);
    sm_free(t->mm_at);
    sm_free(t->mm_bt);
    sm_free(t->mm_pack);
    sm_free(t->mm_out);
    sm_threadpool_free(t->pool);
    sm_free(t);
}

const sm_param *sm_trainer_param(const sm_trainer *t, const char *name) {
    for (int i = 0; i < t->n_params; i++)
        if (!strcmp(t->params[i].name, name)) return &t->params[i];
    return NULL;
}

static float *W(const sm_trainer *t, const char *name) { return t->w + sm_trainer_param(t, name)->offset; }
static float *G(const sm_trainer *t, const char *name) { return t->g + sm_trainer_param(t, name)->offset; }

/* ------------------------------------------------------------ matmul */

/* c (m x n, row stride n) = a (m x k) . w (n x k)^T, split across the
 * threads by rows of w; each element is summed in the same order however
 * many threads there are, so results do not depend on the thread count. */
typedef struct gemm_task {
    const sm_trainer *t;
    float *c;
    const float *a, *w;
    int m, n, k;
} gemm_task;

static void gemm_task_fn(void *ctx, int ith, int nth) {
    const gemm_task *g = ctx;
    int per = ((g->n + nth - 1) / nth + 7) & ~7;
    int r0 = ith * per, r1 = r0 + per < g->n ? r0 + per : g->n;
    if (r0 >= r1) return;
    const sm_kernel_table *kt = g->t->kt;
    if (kt->matmul_packed) kt->matmul_packed(g->c + r0, g->t->mm_pack, g->w + (size_t)r0 * g->k, g->m, r1 - r0, g->k, g->n);
    else kt->matmul_f32(g->c + r0, g->a, g->w + (size_t)r0 * g->k, g->m, r1 - r0, g->k, g->n);
}

static void pack_task_fn(void *ctx, int ith, int nth) {
    const gemm_task *g = ctx;
    sm_pack_a_share(g->t->kt, g->t->mm_pack, g->a, g->m, g->k, ith, nth);
}

static void gemm(const sm_trainer *t, float *c, const float *a, const float *w, int m, int n, int k) {
    gemm_task g = {t, c, a, w, m, n, k};
    if (t->kt->pack_a) sm_threadpool_run(t->pool, pack_task_fn, &g);
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

/* out[n][o] = inp[n] . w[o] (+ bias[o]) */
static void matmul_fwd(const sm_trainer *t, float *out, const float *inp, const float *w, const float *bias, int N,
                       int C, int OC) {
    gemm(t, out, inp, w, N, OC, C);
    if (bias)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] += bias[o];
}

/* dinp += dout w; dw += dout^T inp; dbias += column sums of dout */
static void matmul_bwd(const sm_trainer *t, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                       const float *w, int N, int C, int OC) {
    /* dinp (N x C) = dout (N x OC) . (w^T)^T, with w^T as C rows of OC */
    transpose(t->mm_bt, w, OC, C);
    gemm(t, t->mm_out, dout, t->mm_bt, N, C, OC);
    for (size_t i = 0; i < (size_t)N * C; i++) dinp[i] += t->mm_out[i];
    /* dw (OC x C) = dout^T (OC rows of N) . (inp^T)^T, with inp^T as C rows of N */
    transpose(t->mm_at, dout, N, OC);
    transpose(t->mm_bt, inp, N, C);
    gemm(t, t->mm_out, t->mm_at, t->mm_bt, OC, C, N);
    for (size_t i = 0; i < (size_t)OC * C; i++) dw[i] += t->mm_out[i];
    if (dbias)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) dbias[o] += dout[(size_t)n * OC + o];
}

/* ------------------------------------------------------------- norms */

static void layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                          int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double s = 0, sq = 0;
        for (int i = 0; i < C; i++) s += x[i];
        double mu = s / C;
        for (int i = 0; i < C; i++) sq += (x[i] - mu) * (x[i] - mu);
        float r = (float)(1.0 / sqrt(sq / C + eps));
        for (int i = 0; i < C; i++) out[(size_t)n * C + i] = (float)(x[i] - mu) * r * w[i] + b[i];
        mean[n] = (float)mu;
        rstd[n] = r;
    }
}

static void layernorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                          const float *mean, const float *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float mu = mean[n], r = rstd[n], dmean = 0, dnorm_norm = 0;
        for (int i = 0; i < C; i++) {
            float norm = (x[i] - mu) * r, dn = w[i] * d[i];
            dmean += dn;
            dnorm_norm += dn * norm;
        }
        dmean /= C;
        dnorm_norm /= C;
        for (int i = 0; i < C; i++) {
            float norm = (x[i] - mu) * r, dn = w[i] * d[i];
            db[i] += d[i];
            dw[i] += norm * d[i];
            dinp[(size_t)n * C + i] += (dn - dmean - norm * dnorm_norm) * r;
        }
    }
}

static void rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double sq = 0;
        for (int i = 0; i < C; i++) sq += (double)x[i] * x[i];
        float r = (float)(1.0 / sqrt(sq / C + eps));
        for (int i = 0; i < C; i++) out[(size_t)n * C + i] = x[i] * r * w[i];
        rstd[n] = r;
    }
}

/* y = x r w with r = (mean x^2 + eps)^-1/2:
 * dx_i = r w_i dy_i - x_i r^3 / C * sum_j dy_j w_j x_j */
static void rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                        const float *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float r = rstd[n];
        double s = 0;
        for (int i = 0; i < C; i++) s += (double)d[i] * w[i] * x[i];
        float k = (float)(s * r * r * r / C);
        for (int i = 0; i < C; i++) {
            dinp[(size_t)n * C + i] += r * w[i] * d[i] - x[i] * k;
            dw[i] += d[i] * x[i] * r;
        }
    }
}

/* -------------------------------------------------------- activations */

static void gelu_fwd(const sm_trainer *t, float *out, const float *inp, size_t n) {
    memcpy(out, inp, n * sizeof(float));
    t->kt->gelu(out, (int)n);
}

static void gelu_bwd(const sm_trainer *t, float *dinp, const float *inp, const float *dout, size_t n) {
    t->kt->gelu_grad(dinp, inp, dout, (int)n);
}

/* h = silu(g) * u */
static void swiglu_fwd(float *h, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) h[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void swiglu_bwd(float *dg, float *du, const float *g, const float *u, const float *dh, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-g[i])), silu = g[i] * s;
        dg[i] += dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        du[i] += dh[i] * silu;
    }
}

/* Rotates pairs of every head of each token by its position's angles;
 * sign -1 rotates back (the backward of a rotation is its inverse). */
static void rope_apply(float *x, int N, int T, int heads, int hd, const float *cs, const float *sn, float sign) {
    int rot = hd / 2;
    for (int n = 0; n < N; n++) {
        int p = n % T;
        for (int h = 0; h < heads; h++) {
            float *v = x + (size_t)n * heads * hd + (size_t)h * hd;
            for (int i = 0; i < rot; i++) {
                float c = cs[(size_t)p * rot + i], s = sign * sn[(size_t)p * rot + i];
                float a = v[2 * i], b = v[2 * i + 1];
                v[2 * i] = a * c - b * s;
                v[2 * i + 1] = a * s + b * c;
            }
        }
    }
}

/* ---------------------------------------------------------- attention
 * q rows have stride qs, k/v rows stride kvs (so GPT-2's fused qkv works);
 * head h reads KV head h / (heads / kv_heads). The work is split across
 * threads by (sequence, KV head): the heads sharing a KV head write the
 * same dk/dv rows, so they stay on one thread. */
typedef struct att_shape {
    int B, T, heads, kv_heads, hd, qs, kvs;
} att_shape;

typedef struct att_task {
    const sm_trainer *t;
    att_shape s;
    float *out, *att, *dq, *dk, *dv, *datt;
    const float *q, *k, *v, *dout, *att_in;
    int backward;
} att_task;

static void attention_one_fwd(const att_task *a, int b, int h) {
    const att_shape s = a->s;
    const sm_kernel_table *kt = a->t->kt;
    float scale = 1.0f / sqrtf((float)s.hd);
    int kh = h / (s.heads / s.kv_heads);
    for (int t = 0; t < s.T; t++) {
        const float *qt = a->q + (size_t)(b * s.T + t) * s.qs + (size_t)h * s.hd;
        float *att = a->att + (((size_t)b * s.heads + h) * s.T + t) * s.T;
        float max = -INFINITY;
        for (int u = 0; u <= t; u++) {
            att[u] = kt->dot(qt, a->k + (size_t)(b * s.T + u) * s.kvs + (size_t)kh * s.hd, s.hd) * scale;
            if (att[u] > max) max = att[u];
        }
        float sum = 0;
        for (int u = 0; u <= t; u++) { att[u] = expf(att[u] - max); sum += att[u]; }
        for (int u = 0; u <= t; u++) att[u] /= sum;
        for (int u = t + 1; u < s.T; u++) att[u] = 0;
        float *o = a->out + (size_t)(b * s.T + t) * s.heads * s.hd + (size_t)h * s.hd;
        memset(o, 0, (size_t)s.hd * sizeof(float));
        for (int u = 0; u <= t; u++) kt->axpy(o, att[u], a->v + (size_t)(b * s.T + u) * s.kvs + (size_t)kh * s.hd, s.hd);
    }
}

static void attention_one_bwd(const att_task *a, int b, int h, float *datt) {
    const att_shape s = a->s;
    const sm_kernel_table *kt = a->t->kt;
    float scale = 1.0f / sqrtf((float)s.hd);
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
        /* through the softmax, then the scaled dot products */
        for (int u = 0; u <= t; u++) {
            float dpre = att[u] * (datt[u] - dot_ad) * scale;
            size_t row = (size_t)(b * s.T + u) * s.kvs + (size_t)kh * s.hd;
            kt->axpy(dqt, dpre, a->k + row, s.hd);
            kt->axpy(a->dk + row, dpre, qt, s.hd);
        }
    }
}

static void attention_task_fn(void *ctx, int ith, int nth) {
    const att_task *a = ctx;
    int groups = a->s.B * a->s.kv_heads, per_group = a->s.heads / a->s.kv_heads;
    float *datt = a->datt + (size_t)ith * a->s.T;
    for (int gi = ith; gi < groups; gi += nth) {
        int b = gi / a->s.kv_heads, kh = gi % a->s.kv_heads;
        for (int h = kh * per_group; h < (kh + 1) * per_group; h++) {
            if (a->backward) attention_one_bwd(a, b, h, datt);
            else attention_one_fwd(a, b, h);
        }
    }
}

static void attention_fwd(const sm_trainer *t, float *out, float *att, const float *q, const float *k, const float *v,
                          att_shape s) {
    att_task a = {t, s, out, att, NULL, NULL, NULL, NULL, q, k, v, NULL, NULL, 0};
    sm_threadpool_run(t->pool, attention_task_fn, &a);
}

static void attention_bwd(const sm_trainer *t, float *dq, float *dk, float *dv, float *datt, const float *dout,
                          const float *att, const float *q, const float *k, const float *v, att_shape s) {
    att_task a = {t, s, NULL, NULL, dq, dk, dv, datt, q, k, v, dout, att, 1};
    sm_threadpool_run(t->pool, attention_task_fn, &a);
}

/* ------------------------------------------------------ the two models */

/* One layer's forward pass: from L[l].x to the next layer's input. */
static void forward_layer(const sm_trainer *t, layer_acts *L, const acts *ap, int l) {
    const sm_train_config *c = &t->cfg;
    int B = t->B, T = t->T, N = B * T, C = c->dim, F = c->ffn, H = c->heads;
    int hd = C / H, KV = c->kv_heads * hd, gpt2 = c->arch == SM_TRAIN_GPT2;
    float eps = c->norm_eps;
    acts a = *ap;
    att_shape as = {B, T, H, c->kv_heads, hd, gpt2 ? 3 * C : C, gpt2 ? 3 * C : KV};
    char nm[64];
#define PW(s, l) (snprintf(nm, sizeof nm, "blk.%d." s, l), W(t, nm))
    layer_acts *y_ = &L[l];
    float *next = l + 1 < c->layers ? L[l + 1].x : a.x_out;
    if (gpt2) {
        layernorm_fwd(y_->n1, y_->n1_mean, y_->n1_rstd, y_->x, PW("attn_norm.weight", l), PW("attn_norm.bias", l), N, C, eps);
        matmul_fwd(t, y_->qkv, y_->n1, PW("attn_qkv.weight", l), PW("attn_qkv.bias", l), N, C, 3 * C);
        attention_fwd(t, y_->atty, y_->att, y_->qkv, y_->qkv + C, y_->qkv + 2 * C, as);
        matmul_fwd(t, y_->x_mid, y_->atty, PW("attn_output.weight", l), PW("attn_output.bias", l), N, C, C);
    } else {
        rmsnorm_fwd(y_->n1, y_->n1_rstd, y_->x, PW("attn_norm.weight", l), N, C, eps);
        matmul_fwd(t, y_->q, y_->n1, PW("attn_q.weight", l), NULL, N, C, C);
        matmul_fwd(t, y_->k, y_->n1, PW("attn_k.weight", l), NULL, N, C, KV);
        matmul_fwd(t, y_->v, y_->n1, PW("attn_v.weight", l), NULL, N, C, KV);
        rope_apply(y_->q, N, T, H, hd, a.rope_cos, a.rope_sin, 1.0f);
        rope_apply(y_->k, N, T, c->kv_heads, hd, a.rope_cos, a.rope_sin, 1.0f);
        attention_fwd(t, y_->atty, y_->att, y_->q, y_->k, y_->v, as);
        matmul_fwd(t, y_->x_mid, y_->atty, PW("attn_output.weight", l), NULL, N, C, C);
    }
    for (size_t i = 0; i < (size_t)N * C; i++) y_->x_mid[i] += y_->x[i];
    if (gpt2) {
        layernorm_fwd(y_->n2, y_->n2_mean, y_->n2_rstd, y_->x_mid, PW("ffn_norm.weight", l), PW("ffn_norm.bias", l), N, C, eps);
        matmul_fwd(t, y_->h1, y_->n2, PW("ffn_up.weight", l), PW("ffn_up.bias", l), N, C, F);
        gelu_fwd(t, y_->h, y_->h1, (size_t)N * F);
        matmul_fwd(t, next, y_->h, PW("ffn_down.weight", l), PW("ffn_down.bias", l), N, F, C);
    } else {
        rmsnorm_fwd(y_->n2, y_->n2_rstd, y_->x_mid, PW("ffn_norm.weight", l), N, C, eps);
        matmul_fwd(t, y_->h1, y_->n2, PW("ffn_gate.weight", l), NULL, N, C, F);
        matmul_fwd(t, y_->h2, y_->n2, PW("ffn_up.weight", l), NULL, N, C, F);
        swiglu_fwd(y_->h, y_->h1, y_->h2, (size_t)N * F);
        matmul_fwd(t, next, y_->h, PW("ffn_down.weight", l), NULL, N, F, C);
    }
    for (size_t i = 0; i < (size_t)N * C; i++) next[i] += y_->x_mid[i];
#undef PW
}

float sm_trainer_step_grads(sm_trainer *t, const int32_t *x, const int32_t *y, int backward) {
    const sm_train_config *c = &t->cfg;
    int B = t->B, T = t->T, N = B * T, C = c->dim, F = c->ffn, V = c->vocab, H = c->heads;
    int hd = C / H, KV = c->kv_heads * hd, gpt2 = c->arch == SM_TRAIN_GPT2;
    float eps = c->norm_eps;
    layer_acts L[MAX_LAYERS];
    acts a;
    layout_acts(t, t->act, L, &a, t->recompute);
    char nm[64];
#define PW(s, l) (snprintf(nm, sizeof nm, "blk.%d." s, l), W(t, nm))
#define PG(s, l) (snprintf(nm, sizeof nm, "blk.%d." s, l), G(t, nm))

    /* ---- forward ---- */
    const float *wte = W(t, "token_embd.weight");
    for (int n = 0; n < N; n++) {
        float *dst = L[0].x + (size_t)n * C;
        memcpy(dst, wte + (size_t)x[n] * C, (size_t)C * sizeof(float));
        if (gpt2) {
            const float *wpe = W(t, "position_embd.weight") + (size_t)(n % T) * C;
            for (int i = 0; i < C; i++) dst[i] += wpe[i];
        }
    }
    att_shape as = {B, T, H, c->kv_heads, hd, gpt2 ? 3 * C : C, gpt2 ? 3 * C : KV};
    for (int l = 0; l < c->layers; l++) forward_layer(t, L, &a, l);
    if (gpt2) layernorm_fwd(a.nf, a.nf_mean, a.nf_rstd, a.x_out, W(t, "output_norm.weight"), W(t, "output_norm.bias"), N, C, eps);
    else rmsnorm_fwd(a.nf, a.nf_rstd, a.x_out, W(t, "output_norm.weight"), N, C, eps);
    const float *wout = c->tied ? wte : W(t, "output.weight");
    matmul_fwd(t, a.probs, a.nf, wout, NULL, N, C, V);
    double loss = 0;
    for (int n = 0; n < N; n++) {
        float *p = a.probs + (size_t)n * V;
        float max = p[0];
        for (int i = 1; i < V; i++) max = p[i] > max ? p[i] : max;
        double sum = 0;
        for (int i = 0; i < V; i++) { p[i] = expf(p[i] - max); sum += p[i]; }
        for (int i = 0; i < V; i++) p[i] = (float)(p[i] / sum);
        loss += -log(fmax(p[y[n]], 1e-30));
    }
    loss /= N;
    if (!backward) return (float)loss;

    /* ---- backward ---- */
    float *dx = t->scratch, *dtmp = dx + (size_t)N * C, *dn = dtmp + (size_t)N * C, *datt = dn + (size_t)N * C;
    float *dq = datt + (size_t)N * C, *dh1 = dq + (size_t)N * 3 * C, *dh2 = dh1 + (size_t)N * F, *dh = dh2 + (size_t)N * F;
    /* dlogits = (p - onehot) / N, in place */
    for (int n = 0; n < N; n++) {
        float *p = a.probs + (size_t)n * V;
        p[y[n]] -= 1.0f;
        for (int i = 0; i < V; i++) p[i] /= (float)N;
    }
    memset(dn, 0, (size_t)N * C * sizeof(float));
    float *gwte = G(t, "token_embd.weight");
    matmul_bwd(t, dn, c->tied ? gwte : G(t, "output.weight"), NULL, a.probs, a.nf, wout, N, C, V);
    memset(dx, 0, (size_t)N * C * sizeof(float));
    if (gpt2) layernorm_bwd(dx, G(t, "output_norm.weight"), G(t, "output_norm.bias"), dn, a.x_out, W(t, "output_norm.weight"), a.nf_mean, a.nf_rstd, N, C);
    else rmsnorm_bwd(dx, G(t, "output_norm.weight"), dn, a.x_out, W(t, "output_norm.weight"), a.nf_rstd, N, C);
    for (int l = c->layers - 1; l >= 0; l--) {
        layer_acts *y_ = &L[l];
        if (t->recompute) forward_layer(t, L, &a, l);  /* its activations, again */
        /* dx holds the gradient of the stream after this layer; the FFN
         * block adds into the stream, so dx passes to x_mid unchanged */
        memset(dh, 0, (size_t)N * F * sizeof(float));
        memset(dn, 0, (size_t)N * C * sizeof(float));
        if (gpt2) {
            matmul_bwd(t, dh, PG("ffn_down.weight", l), PG("ffn_down.bias", l), dx, y_->h, PW("ffn_down.weight", l), N, F, C);
            memset(dh1, 0, (size_t)N * F * sizeof(float));
            gelu_bwd(t, dh1, y_->h1, dh, (size_t)N * F);
            matmul_bwd(t, dn, PG("ffn_up.weight", l), PG("ffn_up.bias", l), dh1, y_->n2, PW("ffn_up.weight", l), N, C, F);
            layernorm_bwd(dx, PG("ffn_norm.weight", l), PG("ffn_norm.bias", l), dn, y_->x_mid, PW("ffn_norm.weight", l), y_->n2_mean, y_->n2_rstd, N, C);
        } else {
            matmul_bwd(t, dh, PG("ffn_down.weight", l), NULL, dx, y_->h, PW("ffn_down.weight", l), N, F, C);
            memset(dh1, 0, (size_t)N * F * sizeof(float));
            memset(dh2, 0, (size_t)N * F * sizeof(float));
            swiglu_bwd(dh1, dh2, y_->h1, y_->h2, dh, (size_t)N * F);
            matmul_bwd(t, dn, PG("ffn_gate.weight", l), NULL, dh1, y_->n2, PW("ffn_gate.weight", l), N, C, F);
            matmul_bwd(t, dn, PG("ffn_up.weight", l), NULL, dh2, y_->n2, PW("ffn_up.weight", l), N, C, F);
            rmsnorm_bwd(dx, PG("ffn_norm.weight", l), dn, y_->x_mid, PW("ffn_norm.weight", l), y_->n2_rstd, N, C);
        }
        /* attention block: dx is now the gradient of x_mid */
        memset(dtmp, 0, (size_t)N * C * sizeof(float));
        if (gpt2) {
            matmul_bwd(t, dtmp, PG("attn_output.weight", l), PG("attn_output.bias", l), dx, y_->atty, PW("attn_output.weight", l), N, C, C);
            memset(dq, 0, (size_t)N * 3 * C * sizeof(float));
            attention_bwd(t, dq, dq + C, dq + 2 * C, datt, dtmp, y_->att, y_->qkv, y_->qkv + C, y_->qkv + 2 * C, as);
            memset(dn, 0, (size_t)N * C * sizeof(float));
            matmul_bwd(t, dn, PG("attn_qkv.weight", l), PG("attn_qkv.bias", l), dq, y_->n1, PW("attn_qkv.weight", l), N, C, 3 * C);
            layernorm_bwd(dx, PG("attn_norm.weight", l), PG("attn_norm.bias", l), dn, y_->x, PW("attn_norm.weight", l), y_->n1_mean, y_->n1_rstd, N, C);
        } else {
            matmul_bwd(t, dtmp, PG("attn_output.weight", l), NULL, dx, y_->atty, PW("attn_output.weight", l), N, C, C);
            float *dk = dq + (size_t)N * C, *dv = dk + (size_t)N * KV;
            memset(dq, 0, (size_t)N * (C + 2 * KV) * sizeof(float));
            attention_bwd(t, dq, dk, dv, datt, dtmp, y_->att, y_->q, y_->k, y_->v, as);
            rope_apply(dq, N, T, H, hd, a.rope_cos, a.rope_sin, -1.0f);
            rope_apply(dk, N, T, c->kv_heads, hd, a.rope_cos, a.rope_sin, -1.0f);
            memset(dn, 0, (size_t)N * C * sizeof(float));
            matmul_bwd(t, dn, PG("attn_q.weight", l), NULL, dq, y_->n1, PW("attn_q.weight", l), N, C, C);
            matmul_bwd(t, dn, PG("attn_k.weight", l), NULL, dk, y_->n1, PW("attn_k.weight", l), N, C, KV);
            matmul_bwd(t, dn, PG("attn_v.weight", l), NULL, dv, y_->n1, PW("attn_v.weight", l), N, C, KV);
            rmsnorm_bwd(dx, PG("attn_norm.weight", l), dn, y_->x, PW("attn_norm.weight", l), y_->n1_rstd, N, C);
        }
    }
    /* embeddings */
    for (int n = 0; n < N; n++) {
        const float *d = dx + (size_t)n * C;
        float *gt = gwte + (size_t)x[n] * C;
        for (int i = 0; i < C; i++) gt[i] += d[i];
        if (gpt2) {
            float *gp = G(t, "position_embd.weight") + (size_t)(n % T) * C;
            for (int i = 0; i < C; i++) gp[i] += d[i];
        }
    }
#undef PW
#undef PG
    return (float)loss;
}

float sm_trainer_adamw(sm_trainer *t, float lr, float beta1, float beta2, float eps, float weight_decay,
                       float grad_clip) {
    double sq = 0;
    for (size_t i = 0; i < t->n_floats; i++) sq += (double)t->g[i] * t->g[i];
    float norm = (float)sqrt(sq);
    float scale = grad_clip > 0 && norm > grad_clip ? grad_clip / norm : 1.0f;
    t->step++;
    float c1 = 1.0f - powf(beta1, (float)t->step), c2 = 1.0f - powf(beta2, (float)t->step);
    for (int p = 0; p < t->n_params; p++) {
        const sm_param *pp = &t->params[p];
        float wd = pp->decay ? weight_decay : 0.0f;
        size_t n = (size_t)pp->rows * pp->cols;
        float *w = t->w + pp->offset, *g = t->g + pp->offset, *m = t->m + pp->offset, *v = t->v + pp->offset;
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * scale;
            m[i] = beta1 * m[i] + (1.0f - beta1) * gi;
            v[i] = beta2 * v[i] + (1.0f - beta2) * gi * gi;
            float mh = m[i] / c1, vh = v[i] / c2;
            w[i] -= lr * (mh / (sqrtf(vh) + eps) + wd * w[i]);
            g[i] = 0.0f;
        }
    }
    return norm;
}

sm_status sm_trainer_load_weights(sm_trainer *t, const sm_model *m, sm_error *err) {
    for (int p = 0; p < t->n_params; p++) {
        const sm_param *pp = &t->params[p];
        const sm_gguf_tensor *g = sm_gguf_find_tensor(&m->gguf, pp->name);
        if (!g) return sm_fail(err, SM_ERR_FORMAT, "the model has no tensor '%s'", pp->name);
        if (g->n_elements != (uint64_t)pp->rows * pp->cols || g->ne[0] != (uint64_t)pp->cols)
            return sm_fail(err, SM_ERR_FORMAT, "tensor '%s' has another shape than the training configuration", pp->name);
        sm_matrix src = {g->data, g->type, pp->rows, pp->cols, NULL};
        for (int r = 0; r < pp->rows; r++) sm_embedding_row(t->w + pp->offset + (size_t)r * pp->cols, &src, r);
    }
    return SM_OK;
}

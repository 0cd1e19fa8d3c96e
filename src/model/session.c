/* session.c - session creation (the memory plan), evaluation of tokens and
 * access to the logits. */
#include "session.h"
#include "ops.h"
#include "core/alloc.h"
#include "core/cpu.h"
#include "core/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOLD_BYTES 8192   /* stop-string hold-back; stop strings are capped well below */

sm_session_params sm_session_default_params(void) {
    sm_session_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* Bytes of n floats quantized for the integer dots of any type in use. */
static size_t act_bytes(const sm_session *s, int n) {
    size_t best = 0;
    for (uint32_t t = 0; t < SM_GGML_TYPE_COUNT; t++) {
        const sm_type_traits *tt = sm_type(t);
        if (!tt || !sm_type_runnable(t) || tt->vec_dot_type == SM_GGML_F32) continue;
        const sm_type_traits *act = sm_type(tt->vec_dot_type);
        size_t b = ((size_t)n / act->blck + 1) * act->bytes;
        if (b > best) best = b;
    }
    (void)s;
    return best;
}

/* Lays every buffer out in the arena. Called once to measure (a->base ==
 * NULL) and once to assign pointers, so the plan and the use agree. */
static void layout(sm_session *s, sm_arena *a) {
    const sm_hparams *hp = &s->model->hp;
    size_t q_dim = (size_t)hp->n_heads * hp->head_dim, kv_dim = (size_t)hp->n_kv_heads * hp->head_dim;
    size_t ctx = (size_t)s->n_ctx, B = (size_t)s->batch_cap, dim = (size_t)hp->dim, ffn = (size_t)hp->ffn_dim;
    size_t ne = (size_t)hp->n_expert, nu = (size_t)hp->n_expert_used;
    if (ne > 0) {   /* an expert's FFN (and a shared expert's) may be longer than the dense one */
        if ((size_t)hp->ffn_exp > ffn) ffn = (size_t)hp->ffn_exp;
        if ((size_t)hp->ffn_shexp > ffn) ffn = (size_t)hp->ffn_shexp;
    }
    size_t wide_in = dim > q_dim ? dim : q_dim;
    s->max_cols = (int)(wide_in > ffn ? wide_in : ffn);
    s->x = sm_arena_take(a, B * dim, sizeof(float));
    s->xb = sm_arena_take(a, B * wide_in, sizeof(float));
    s->q = sm_arena_take(a, B * q_dim, sizeof(float));
    s->qkv = sm_arena_take(a, B * (q_dim + 2 * kv_dim), sizeof(float));
    s->hb = sm_arena_take(a, B * ffn, sizeof(float));
    /* with gate and up in one matrix, hb2 holds both halves */
    s->hb2 = sm_arena_take(a, B * ffn * (sm_arch_get(hp->arch)->ffn == SM_FFN_SWIGLU_FUSED ? 2 : 1), sizeof(float));
    s->xb2 = sm_arena_take(a, B * dim, sizeof(float));
    s->tmp = sm_arena_take(a, B * dim, sizeof(float));
    s->moe_logits = sm_arena_take(a, B * ne, sizeof(float));
    s->moe_pick = sm_arena_take(a, B * nu, sizeof(int));
    s->moe_w = sm_arena_take(a, B * nu, sizeof(float));
    s->moe_order = sm_arena_take(a, B * nu, sizeof(int));
    s->moe_count = sm_arena_take(a, ne + 1, sizeof(int));
    s->moe_in = sm_arena_take(a, ne ? B * dim : 0, sizeof(float));
    s->moe_out = sm_arena_take(a, ne ? B * dim : 0, sizeof(float));
    s->logits = sm_arena_take(a, hp->n_vocab, sizeof(float));
    s->att = sm_arena_take(a, (size_t)hp->n_heads * ctx, sizeof(float));
    s->att_scratch = sm_arena_take(a, (size_t)s->n_threads * sm_attention_scratch(hp), sizeof(float));
    /* the batch packed in 16-token panels (matmul_packed) or 12-token ones (the strided gemm) */
    size_t pad16 = (B + 15) / 16 * 16, pad12 = (B + 11) / 12 * 12;
    s->pack = sm_arena_take(a, (pad16 > pad12 ? pad16 : pad12) * (size_t)s->max_cols, sizeof(float));
    s->deq = sm_arena_take(a, (size_t)s->n_threads * SM_MATMUL_DEQ_ROWS * s->max_cols, sizeof(float));
    /* a row of integer-dot input per batch row (several sessions' one-token rows) */
    s->xq_stride = (act_bytes(s, s->max_cols) + 63) & ~(size_t)63;
    s->xsum_stride = (size_t)s->max_cols / 32 + 1;
    s->xq = sm_arena_take(a, B * s->xq_stride, 1);
    s->xsum = sm_arena_take(a, B * s->xsum_stride, sizeof(int32_t));
    s->k_rows = sm_arena_take(a, B * kv_dim, sizeof(float));
    s->v_rows = sm_arena_take(a, B * kv_dim, sizeof(float));
    s->batch_tokens = sm_arena_take(a, B, sizeof(sm_token));
    s->batch_seq = sm_arena_take(a, B, sizeof(sm_fwd_seq));
    s->k_cache = sm_arena_take(a, (size_t)hp->n_layers * ctx, sm_kv_row_bytes(s->type_k, kv_dim));
    s->v_cache = sm_arena_take(a, (size_t)hp->n_layers * ctx, sm_kv_row_bytes(s->type_v, kv_dim));
    s->rope_cos = sm_arena_take(a, ctx * (size_t)(hp->rope_dim / 2 + 1), sizeof(float));
    s->rope_sin = sm_arena_take(a, ctx * (size_t)(hp->rope_dim / 2 + 1), sizeof(float));
    if (sm_arch_get(hp->arch)->local_rope) {
        s->rope_cos_local = sm_arena_take(a, ctx * (size_t)(hp->rope_dim / 2 + 1), sizeof(float));
        s->rope_sin_local = sm_arena_take(a, ctx * (size_t)(hp->rope_dim / 2 + 1), sizeof(float));
    } else {
        s->rope_cos_local = s->rope_cos;
        s->rope_sin_local = s->rope_sin;
    }
    s->history = sm_arena_take(a, ctx, sizeof(sm_token));
    s->lora_ax = sm_arena_take(a, B * (size_t)s->lora_rank_cap, sizeof(float));   /* LoRA (lora.c) */
    /* the generation loop's */
    sm_gen_scratch *g = &s->gen;
    g->cand = sm_arena_take(a, hp->n_vocab, sizeof(sm_candidate));
    g->counts = sm_arena_take(a, hp->n_vocab, sizeof(int32_t));
    g->allowed = sm_arena_take(a, hp->n_vocab, 1);
    g->text_cap = 3 * ((size_t)s->model->vocab.max_piece_len + 8) + 16;
    g->text_buf = sm_arena_take(a, g->text_cap, 1);
    g->hold_cap = HOLD_BYTES + g->text_cap;
    g->hold_buf = sm_arena_take(a, g->hold_cap, 1);
}

/* YaRN's correction dimension: the pair index whose wavelength fits
 * n_rot turns into the original context, in ggml's continuous form. */
static double yarn_corr_dim(int rot, int n_ctx_orig, double n_turns, double base) {
    return rot * log(n_ctx_orig / (n_turns * 2 * 3.14159265358979323846)) / (2 * log(base));
}

void sm_rope_init(sm_rope_spec *r, const sm_hparams *hp, int local, const float *ff) {
    memset(r, 0, sizeof *r);
    r->rot = hp->rope_dim > 0 ? hp->rope_dim : hp->head_dim;   /* (a trainer's config may leave it derived) */
    if (local && sm_arch_get(hp->arch)->local_rope) {   /* gemma3's local layers: their own base, unscaled */
        r->base = hp->rope_base_local;
        r->scale = r->mscale = 1.0;
        return;
    }
    r->base = hp->rope_base > 0 ? hp->rope_base : 10000.0;
    r->scale = hp->rope_freq_scale > 0 ? hp->rope_freq_scale : 1.0;
    r->ff = ff;
    r->mscale = hp->rope_attn_factor > 0 ? hp->rope_attn_factor : 1.0;
    if (hp->rope_yarn) {
        int orig = hp->n_ctx_orig > 0 ? hp->n_ctx_orig : hp->n_ctx_train;
        r->yarn = 1;
        double fast = hp->yarn_beta_fast > 0 ? hp->yarn_beta_fast : SM_YARN_BETA_FAST;
        double slow = hp->yarn_beta_slow > 0 ? hp->yarn_beta_slow : SM_YARN_BETA_SLOW;
        r->yarn_lo = fmax(0.0, floor(yarn_corr_dim(r->rot, orig, fast, r->base)));
        r->yarn_hi = fmin(r->rot - 1.0, ceil(yarn_corr_dim(r->rot, orig, slow, r->base)));
        r->mscale *= 1.0 + 0.1 * log(1.0 / r->scale);
        /* mistral3: Hugging Face's mscale / mscale_all_dim ratio with mscale 1 (1 when log_mul is 1) */
        if (hp->rope_yarn_log_mul > 0) r->mscale /= 1.0 + 0.1 * hp->rope_yarn_log_mul * log(1.0 / r->scale);
    }
}

double sm_rope_freq(const sm_rope_spec *r, int i) {
    double f = pow(r->base, -2.0 * i / (double)r->rot) / (r->ff ? (double)r->ff[i] : 1.0);
    if (!r->yarn) return f * r->scale;
    /* the share of the unscaled frequency: 1 below yarn_lo, 0 above yarn_hi */
    double y = (i - r->yarn_lo) / fmax(0.001, r->yarn_hi - r->yarn_lo);
    double keep = 1.0 - fmin(1.0, fmax(0.0, y));
    return f * (r->scale * (1.0 - keep) + keep);
}

void sm_rope_table(float *cos_t, float *sin_t, int n_ctx, const sm_rope_spec *r) {
    int half = r->rot / 2;
    for (int i = 0; i < half; i++) {
        double freq = sm_rope_freq(r, i);
        for (int pos = 0; pos < n_ctx; pos++) {
            double angle = pos * freq;
            cos_t[(size_t)pos * half + i] = (float)(cos(angle) * r->mscale);
            sin_t[(size_t)pos * half + i] = (float)(sin(angle) * r->mscale);
        }
    }
}

void sm_session_rope(const sm_session *s, int local, sm_rope_spec *r) {
    const sm_model *m = s->model;
    const sm_hparams *hp = &m->hp;
    sm_rope_init(r, hp, local, m->rope_freqs ? m->rope_freqs : s->n_ctx > hp->n_ctx_orig ? m->rope_long : m->rope_short);
}

static void rope_tables(sm_session *s) {
    const sm_hparams *hp = &s->model->hp;
    if (!sm_arch_is_rope(sm_arch_get(hp->arch)) || hp->rope_dim == 0) return;
    sm_rope_spec r;
    sm_session_rope(s, 0, &r);
    sm_rope_table(s->rope_cos, s->rope_sin, s->n_ctx, &r);
    if (s->rope_cos_local != s->rope_cos) {
        sm_session_rope(s, 1, &r);
        sm_rope_table(s->rope_cos_local, s->rope_sin_local, s->n_ctx, &r);
    }
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void sm_session_set_seed(sm_session *s, uint64_t seed) {
    s->rng = splitmix64(&seed);
    if (s->rng == 0) s->rng = 0x2545F4914F6CDD1Dull;
}

sm_status sm_session_create(const sm_model *model, const sm_session_params *params, sm_session **out,
                            sm_error *err) {
    if (out) *out = NULL;
    if (!model || !out) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_session_create: model and out are required");
    if (!model->has_weights)
        return sm_fail(err, SM_ERR_NO_WEIGHTS, "this file holds only a vocabulary; it cannot generate");
    sm_session_params p = params ? *params : sm_session_default_params();
    const sm_hparams *hp = &model->hp;
    if (p.n_ctx < 0 || p.n_ctx > (1 << 24))
        return sm_fail(err, SM_ERR_INVALID_ARG, "context size %d is out of range (1 to %d)", p.n_ctx, 1 << 24);
    if (p.n_threads < 0 || p.n_threads > 1024)
        return sm_fail(err, SM_ERR_INVALID_ARG, "thread count %d is out of range (1 to 1024)", p.n_threads);
    if ((unsigned)p.type_k > SM_KV_Q8_0 || (unsigned)p.type_v > SM_KV_Q8_0)
        return sm_fail(err, SM_ERR_INVALID_ARG,
                       "KV cache types %d and %d: each must be SM_KV_F32, SM_KV_F16, SM_KV_BF16 or SM_KV_Q8_0",
                       (int)p.type_k, (int)p.type_v);
    if ((p.type_k == SM_KV_Q8_0 || p.type_v == SM_KV_Q8_0) && hp->head_dim % 32 != 0)
        return sm_fail(err, SM_ERR_UNSUPPORTED,
                       "a q8_0 KV cache keeps each head in blocks of 32 values, but this model's heads have %d: "
                       "use f16 or bf16 instead", hp->head_dim);
    int n_ctx = p.n_ctx ? p.n_ctx : (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    if (model->pos_embd.data && n_ctx > hp->n_ctx_train)
        return sm_fail(err, SM_ERR_INVALID_ARG,
                       "this %s model has learned positions for %d tokens; a context of %d cannot work (use -c %d or less)",
                       model->arch, hp->n_ctx_train, n_ctx, hp->n_ctx_train);
    sm_session *s = sm_calloc(1, sizeof *s);
    if (!s) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    s->model = model;
    s->n_ctx = n_ctx;
    s->n_threads = p.n_threads ? p.n_threads : sm_cpu_physical_cores();
    s->batch_cap = n_ctx < SM_BATCH_MAX ? n_ctx : SM_BATCH_MAX;
    s->lora_rank_cap = p.lora_rank_max > 0 ? p.lora_rank_max : 64;   /* LoRA (lora.c) */
    s->type_k = p.type_k;
    s->type_v = p.type_v;
    s->kt = sm_kernels_get(p.kernels);
    if (!s->kt) {
        sm_free(s);
        return sm_fail(err, SM_ERR_INVALID_ARG,
                       "kernel variant '%s' is not available on this CPU (try scalar, avx2 or avx512, or auto)",
                       sm_kernels_requested(p.kernels));
    }
    for (uint32_t t = 0; t < SM_GGML_TYPE_COUNT; t++) sm_kernels_for_type(s->kt, t, &s->tk[t]);

    sm_arena a = {0};
    layout(s, &a);
    if (a.overflow) {
        sm_free(s);
        return sm_fail(err, SM_ERR_NOMEM, "a context of %d tokens needs more memory than can be addressed", n_ctx);
    }
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && page > 0 && a.used / (size_t)page > (size_t)pages) {
        double need = (double)a.used / (1 << 30), have = (double)pages * (double)page / (1 << 30);
        sm_free(s);
        return sm_fail(err, SM_ERR_NOMEM,
                       "a context of %d tokens needs %.1f GiB but this machine has %.1f GiB; use a smaller -c",
                       n_ctx, need, have);
    }
    /* 4 KiB pages, not sm_alloc_huge's: a context is touched as it fills,
     * and a huge page would make each layer's first keys and values cost
     * 2 MiB of memory (and its zeroing) at the first token */
    s->block = sm_alloc_aligned(a.used);
    if (!s->block) {
        size_t mb = a.used >> 20;
        sm_free(s);
        return sm_fail(err, SM_ERR_NOMEM, "cannot allocate %zu MiB for a context of %d tokens; use a smaller -c",
                       mb, n_ctx);
    }
    s->block_bytes = a.used;
    a = (sm_arena){s->block, 0, s->block_bytes, 0};
    layout(s, &a);
    memset(s->gen.counts, 0, (size_t)hp->n_vocab * sizeof(int32_t));

    rope_tables(s);
    if (!(s->pool = sm_threadpool_new(s->n_threads))) {
        sm_session_free(s);
        return sm_fail(err, SM_ERR_NOMEM, "cannot start %d threads", s->n_threads);
    }
    s->check = p.check || p.profile;
    s->bad_layer = -1;
    if (p.profile) {
        s->prof = sm_prof_new(64 + 40 * hp->n_layers, sm_step_names, SM_SC_COUNT);
        if (!s->prof) {
            sm_session_free(s);
            return sm_fail(err, SM_ERR_NOMEM, "out of memory for the profiler");
        }
        sm_prof_add(s->prof, SM_SC_LOAD, model->load_ns);
        s->prof_store = s->prof;
        sm_threadpool_set_hook(s->pool, sm_prof_task_hook, s->prof);   /* pool hand-offs and task spans */
    }
    sm_session_set_seed(s, p.seed);
    *out = s;
    return SM_OK;
}

void sm_session_free(sm_session *s) {
    if (!s) return;
    sm_free(s->app);
    sm_prof_free(s->prof_store);
    sm_threadpool_free(s->pool);
    sm_free(s->block);
    sm_free(s);
}

void sm_session_reset(sm_session *s) {
    s->n_past = 0;
    s->logits_valid = 0;
}

sm_status sm_session_truncate(sm_session *s, int n, sm_error *err) {
    if (!s || n < 0 || n > s->n_past)
        return sm_fail(err, SM_ERR_INVALID_ARG, "cannot keep %d tokens of a session that holds %d", n,
                       s ? s->n_past : 0);
    if (n != s->n_past) s->logits_valid = 0;
    s->n_past = n;
    return SM_OK;
}

int sm_sampler_params_ok(const sm_sampler_params *sp) {
    return sp->temperature >= 0.0f && sp->top_p >= 0.0f && sp->top_p <= 1.0f && sp->min_p >= 0.0f &&
           sp->min_p <= 1.0f && sp->repeat_penalty > 0.0f && sp->top_k >= 0 && sp->repeat_last_n >= -1 &&
           isfinite(sp->temperature) && isfinite(sp->repeat_penalty) && isfinite(sp->presence_penalty) &&
           isfinite(sp->frequency_penalty);
}

size_t sm_session_common_prefix(const sm_session *s, const sm_token *tokens, size_t n) {
    size_t lim = n < (size_t)s->n_past ? n : (size_t)s->n_past, i = 0;
    while (i < lim && s->history[i] == tokens[i]) i++;
    return i;
}

const sm_token *sm_session_tokens(const sm_session *s) { return s->history; }
int sm_session_n_past(const sm_session *s) { return s->n_past; }
int sm_session_n_ctx(const sm_session *s) { return s->n_ctx; }
const char *sm_session_kernels(const sm_session *s) { return s->kt->name; }
int sm_session_threads(const sm_session *s) { return s->n_threads; }
size_t sm_session_arena_bytes(const sm_session *s) { return s->block_bytes; }
int sm_session_batch_cap(const sm_session *s) { return s->batch_cap; }
const float *sm_session_logits(const sm_session *s) { return s->logits; }

/* One session's n <= batch_cap tokens at its next positions, on ws's
 * buffers and threads (ws is s itself but for sm_session_eval_batch). */
static void forward_one(sm_session *ws, sm_session *s, const sm_token *tokens, int n, int want_logits,
                        float *all_logits, float *embd_sum, int exact) {
    sm_fwd_seq seq = {s, 0, n, s->n_past, want_logits};
    sm_fwd_batch b = {tokens, n, n == 1 || exact ? n : 0, &seq, 1, all_logits, embd_sum};
    sm_forward(ws, &b);
    for (int j = 0; j < n; j++) s->history[s->n_past++] = tokens[j];
}

static sm_status check_tokens(const sm_session *s, const sm_token *tokens, size_t n, sm_error *err) {
    if (n > (size_t)(s->n_ctx - s->n_past))
        return sm_fail(err, SM_ERR_CONTEXT_FULL, "%zu tokens do not fit: the context holds %d and %d are used", n,
                       s->n_ctx, s->n_past);
    int n_vocab = s->model->hp.n_vocab;
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return sm_fail(err, SM_ERR_TOKEN_RANGE, "token id %d at index %zu is outside the vocabulary (0 to %d)",
                           tokens[i], i, n_vocab - 1);
    return SM_OK;
}

/* Evaluates the tokens; with all_logits, the logits of every position are
 * copied out in order; with embd_sum, the final hidden states are summed
 * there instead of computing logits. */
static sm_status eval(sm_session *s, const sm_token *tokens, size_t n, float *all_logits, float *embd_sum,
                      int exact, sm_error *err) {
    if (!s || (!tokens && n)) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_session_eval: session and tokens are required");
    if (n == 0) return SM_OK;
    sm_status st = check_tokens(s, tokens, n, err);
    if (st) return st;
    int n_vocab = s->model->hp.n_vocab;
    /* a prompt's logits are always checked for NaN/Inf, in check mode every
     * layer and every token's logits (check.c) */
    int check_logits = !embd_sum && (s->n_past == 0 || s->check);
    s->bad_layer = -1;
    /* every forward pass is inside some scope: prefill, token or user */
    int outer = s->prof && s->prof->depth <= 1;
    if (outer) sm_prof_begin(s->prof, SM_SC_USER, -1);
    /* through the layers in batches, weights read once per batch */
    for (size_t i = 0; i < n; i += (size_t)s->batch_cap) {
        int b = (int)(n - i < (size_t)s->batch_cap ? n - i : (size_t)s->batch_cap);
        float *out = all_logits ? all_logits + i * (size_t)n_vocab : NULL;
        forward_one(s, s, tokens + i, b, i + (size_t)b == n, out, embd_sum, exact);
    }
    s->logits_valid = 1;
    if (outer) sm_prof_end(s->prof, 0, 0);
    return sm_check_result(s, tokens, n, check_logits, err);
}

sm_status sm_session_eval(sm_session *s, const sm_token *tokens, size_t n, sm_error *err) {
    return eval(s, tokens, n, NULL, NULL, 0, err);
}

sm_status sm_session_eval_all(sm_session *s, const sm_token *tokens, size_t n, float *logits, sm_error *err) {
    if (!logits) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_session_eval_all: logits buffer is NULL");
    return eval(s, tokens, n, logits, NULL, 0, err);
}

sm_status sm_session_eval_rows(sm_session *s, const sm_token *tokens, size_t n, float *logits, sm_error *err) {
    if (!logits) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_session_eval_rows: logits buffer is NULL");
    return eval(s, tokens, n, logits, NULL, 1, err);
}

sm_status sm_session_eval_batch(sm_session *ws, const sm_batch_item *items, int n_items, sm_error *err) {
    if (!ws || !items || n_items < 1)
        return sm_fail(err, SM_ERR_INVALID_ARG, "sm_session_eval_batch: a workspace and at least one item are required");
    int total = 0;
    for (int i = 0; i < n_items; i++) {
        const sm_batch_item *it = &items[i];
        if (!it->session || !it->tokens || it->n_tokens < 1)
            return sm_fail(err, SM_ERR_INVALID_ARG, "batch item %d: a session and at least one token are required", i);
        if (it->session->model != ws->model)
            return sm_fail(err, SM_ERR_INVALID_ARG, "batch item %d: its session is of another model than the workspace", i);
        for (int j = 0; j < i; j++)
            if (items[j].session == it->session)
                return sm_fail(err, SM_ERR_INVALID_ARG, "batch items %d and %d are the same session", j, i);
        if (it->n_tokens > ws->batch_cap - total)
            return sm_fail(err, SM_ERR_INVALID_ARG, "a batch takes at most %d tokens in all", ws->batch_cap);
        total += it->n_tokens;
        sm_error e;
        sm_status st = check_tokens(it->session, it->tokens, (size_t)it->n_tokens, &e);
        if (st) return sm_fail(err, st, "batch item %d: %s", i, e.message);
    }
    int outer = ws->prof && ws->prof->depth <= 1;
    if (outer) sm_prof_begin(ws->prof, SM_SC_USER, -1);
    if (n_items == 1) {
        forward_one(ws, items[0].session, items[0].tokens, items[0].n_tokens, 1, NULL, NULL, 0);
    } else {
        /* rows: the one-token items first, then the others, each item's tokens together */
        int rows = 0, n_vec = 0, k = 0;
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < n_items; i++) {
                const sm_batch_item *it = &items[i];
                if ((it->n_tokens == 1) != (pass == 0)) continue;
                ws->batch_seq[k++] = (sm_fwd_seq){it->session, rows, it->n_tokens, it->session->n_past, 1};
                memcpy(ws->batch_tokens + rows, it->tokens, (size_t)it->n_tokens * sizeof(sm_token));
                rows += it->n_tokens;
                if (pass == 0) n_vec++;
            }
        sm_fwd_batch b = {ws->batch_tokens, rows, n_vec, ws->batch_seq, k, NULL, NULL};
        sm_forward(ws, &b);
        for (int i = 0; i < n_items; i++) {
            sm_session *o = items[i].session;
            for (int j = 0; j < items[i].n_tokens; j++) o->history[o->n_past++] = items[i].tokens[j];
        }
    }
    for (int i = 0; i < n_items; i++) items[i].session->logits_valid = 1;
    if (outer) sm_prof_end(ws->prof, 0, 0);
    return SM_OK;
}

sm_status sm_session_embed(sm_session *s, const sm_token *tokens, size_t n, float *out, sm_error *err) {
    if (!s || !tokens || !out || n == 0)
        return sm_fail(err, SM_ERR_INVALID_ARG, "sm_session_embed: a session, at least one token and out are required");
    int dim = s->model->hp.dim;
    s->n_past = 0;
    memset(out, 0, (size_t)dim * sizeof(float));
    sm_status st = eval(s, tokens, n, NULL, out, 0, err);
    s->logits_valid = 0;   /* the pass summed hidden states instead */
    if (st) return st;
    /* the mean, then unit length */
    double ss = 0.0;
    for (int i = 0; i < dim; i++) {
        out[i] /= (float)n;
        ss += (double)out[i] * out[i];
    }
    float inv = ss > 0.0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
    for (int i = 0; i < dim; i++) out[i] *= inv;
    return SM_OK;
}

/* session.c - session creation (the memory plan), evaluation of tokens and
 * access to the logits. */
#include "session.h"
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

/* Lays every buffer out in the arena. Called once to measure (a->base ==
 * NULL) and once to assign pointers, so the plan and the use agree. */
static void layout(sm_session *s, sm_arena *a) {
    const sm_hparams *hp = &s->model->hp;
    size_t kv_dim = (size_t)hp->n_kv_heads * hp->head_dim;
    size_t ctx = (size_t)s->n_ctx;
    s->x = sm_arena_take(a, hp->dim, sizeof(float));
    s->xb = sm_arena_take(a, hp->dim, sizeof(float));
    s->xb2 = sm_arena_take(a, hp->dim, sizeof(float));
    s->q = sm_arena_take(a, hp->dim, sizeof(float));
    s->qkv = sm_arena_take(a, 3 * (size_t)hp->dim, sizeof(float));
    s->att = sm_arena_take(a, (size_t)hp->n_heads * ctx, sizeof(float));
    s->hb = sm_arena_take(a, hp->ffn_dim, sizeof(float));
    s->hb2 = sm_arena_take(a, hp->ffn_dim, sizeof(float));
    s->logits = sm_arena_take(a, hp->n_vocab, sizeof(float));
    s->k_cache = sm_arena_take(a, (size_t)hp->n_layers * ctx, kv_dim * sizeof(float));
    s->v_cache = sm_arena_take(a, (size_t)hp->n_layers * ctx, kv_dim * sizeof(float));
    s->rope_cos = sm_arena_take(a, ctx * (size_t)(hp->rope_dim / 2 + 1), sizeof(float));
    s->rope_sin = sm_arena_take(a, ctx * (size_t)(hp->rope_dim / 2 + 1), sizeof(float));
    s->history = sm_arena_take(a, ctx, sizeof(sm_token));
    s->cand = sm_arena_take(a, hp->n_vocab, sizeof(sm_candidate));
    s->max_cols = hp->dim > hp->ffn_dim ? hp->dim : hp->ffn_dim;
    /* room for the input as Q8_0 (34 bytes per 32) or Q8_K (292 per 256) */
    size_t q8_0 = ((size_t)s->max_cols / 32 + 1) * 34, q8_K = ((size_t)s->max_cols / 256 + 1) * 292;
    s->xq = sm_arena_take(a, q8_0 > q8_K ? q8_0 : q8_K, 1);
    s->xsum = sm_arena_take(a, (size_t)s->max_cols / 32 + 1, sizeof(int32_t));
    s->deq = sm_arena_take(a, (size_t)s->n_threads * 16 * s->max_cols, sizeof(float));
    size_t B = (size_t)s->batch_cap, wide = (size_t)(3 * hp->dim > hp->ffn_dim ? 3 * hp->dim : hp->ffn_dim);
    s->bx = sm_arena_take(a, B * hp->dim, sizeof(float));
    s->bxb = sm_arena_take(a, B * hp->dim, sizeof(float));
    s->bq = sm_arena_take(a, B * hp->dim, sizeof(float));
    s->bqkv = sm_arena_take(a, B * 3 * hp->dim, sizeof(float));
    s->bhb = sm_arena_take(a, B * hp->ffn_dim, sizeof(float));
    s->bhb2 = sm_arena_take(a, B * hp->ffn_dim, sizeof(float));
    s->btmp = sm_arena_take(a, B * wide, sizeof(float));
    s->batt = sm_arena_take(a, (size_t)s->n_threads * sm_attention_scratch(hp->head_dim), sizeof(float));
    s->bpack = sm_arena_take(a, (B + 15) / 16 * 16 * (size_t)s->max_cols, sizeof(float));
    s->penalized = sm_arena_take(a, hp->n_vocab, 1);
    s->text_cap = 3 * ((size_t)s->model->vocab.max_piece_len + 8) + 16;
    s->text_buf = sm_arena_take(a, s->text_cap, 1);
    s->hold_cap = HOLD_BYTES + s->text_cap;
    s->hold_buf = sm_arena_take(a, s->hold_cap, 1);
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
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
    int n_ctx = p.n_ctx ? p.n_ctx : (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    if (hp->arch == SM_ARCH_GPT2 && n_ctx > hp->n_ctx_train)
        return sm_fail(err, SM_ERR_INVALID_ARG,
                       "this GPT-2 model has learned positions for %d tokens; a context of %d cannot work (use -c %d or less)",
                       hp->n_ctx_train, n_ctx, hp->n_ctx_train);
    sm_session *s = sm_calloc(1, sizeof *s);
    if (!s) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    s->model = model;
    s->n_ctx = n_ctx;
    s->n_threads = p.n_threads ? p.n_threads : sm_cpu_physical_cores();
    s->batch_cap = n_ctx < 128 ? n_ctx : 128;
    s->kt = sm_kernels_get(p.kernels);
    if (!s->kt) {
        sm_free(s);
        return sm_fail(err, SM_ERR_INVALID_ARG,
                       "kernel variant '%s' is not available on this CPU (try scalar, avx2 or avx512, or auto)",
                       p.kernels ? p.kernels : getenv("SM_KERNELS"));
    }

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
    memset(s->penalized, 0, (size_t)hp->n_vocab);

    int half = hp->rope_dim / 2;
    for (int i = 0; i < half; i++) {
        double freq = pow((double)hp->rope_base, -2.0 * i / (double)hp->rope_dim);
        for (int pos = 0; pos < n_ctx; pos++) {
            double angle = pos * freq;
            s->rope_cos[(size_t)pos * half + i] = (float)cos(angle);
            s->rope_sin[(size_t)pos * half + i] = (float)sin(angle);
        }
    }
    if (!(s->pool = sm_threadpool_new(s->n_threads))) {
        sm_session_free(s);
        return sm_fail(err, SM_ERR_NOMEM, "cannot start %d threads", s->n_threads);
    }
    s->check = p.check || p.profile;
    s->bad_layer = -1;
    if (p.profile) {
        s->prof = sm_prof_new(64 + 40 * hp->n_layers);
        if (!s->prof) {
            sm_session_free(s);
            return sm_fail(err, SM_ERR_NOMEM, "out of memory for the profiler");
        }
        sm_prof_add(s->prof, SM_SC_LOAD, model->load_ns);
        s->prof_store = s->prof;
    }
    uint64_t seed = p.seed;
    s->rng = splitmix64(&seed);
    if (s->rng == 0) s->rng = 0x2545F4914F6CDD1Dull;
    *out = s;
    return SM_OK;
}

void sm_session_free(sm_session *s) {
    if (!s) return;
    sm_prof_free(s->prof_store);
    sm_threadpool_free(s->pool);
    sm_free(s->block);
    sm_free(s);
}

void sm_session_reset(sm_session *s) { s->n_past = 0; }
int sm_session_n_past(const sm_session *s) { return s->n_past; }
int sm_session_n_ctx(const sm_session *s) { return s->n_ctx; }
const char *sm_session_kernels(const sm_session *s) { return s->kt->name; }
int sm_session_threads(const sm_session *s) { return s->n_threads; }
size_t sm_session_arena_bytes(const sm_session *s) { return s->block_bytes; }
const float *sm_session_logits(const sm_session *s) { return s->logits; }

/* Evaluates the tokens; with all_logits, the logits of every position are
 * copied out in order. */
static sm_status eval(sm_session *s, const sm_token *tokens, size_t n, float *all_logits, sm_error *err) {
    if (!s || (!tokens && n)) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_session_eval: session and tokens are required");
    if (n == 0) return SM_OK;
    if (n > (size_t)(s->n_ctx - s->n_past))
        return sm_fail(err, SM_ERR_CONTEXT_FULL, "%zu tokens do not fit: the context holds %d and %d are used", n,
                       s->n_ctx, s->n_past);
    int n_vocab = s->model->hp.n_vocab;
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return sm_fail(err, SM_ERR_TOKEN_RANGE, "token id %d at index %zu is outside the vocabulary (0 to %d)",
                           tokens[i], i, n_vocab - 1);
    /* a prompt's logits are always checked for NaN/Inf, in check mode every
     * layer and every token's logits (check.c) */
    int check_logits = s->n_past == 0 || s->check;
    s->bad_layer = -1;
    /* every forward pass is inside some scope: prefill, token or user */
    int outer = s->prof && s->prof->depth <= 1;
    if (outer) sm_prof_begin(s->prof, SM_SC_USER, -1);
    if (n == 1) {
        if (s->model->hp.arch == SM_ARCH_GPT2) sm_gpt2_forward(s, tokens[0], 1);
        else sm_llama_forward(s, tokens[0], 1);
        s->history[s->n_past++] = tokens[0];
        if (all_logits) memcpy(all_logits, s->logits, (size_t)n_vocab * sizeof(float));
    } else {
        /* several tokens: through the layers in batches, weights read once per batch */
        for (size_t i = 0; i < n; i += (size_t)s->batch_cap) {
            int b = (int)(n - i < (size_t)s->batch_cap ? n - i : (size_t)s->batch_cap);
            float *out = all_logits ? all_logits + i * (size_t)n_vocab : NULL;
            int last = i + (size_t)b == n;
            if (s->model->hp.arch == SM_ARCH_GPT2) sm_gpt2_forward_batch(s, tokens + i, b, last, out);
            else sm_llama_forward_batch(s, tokens + i, b, last, out);
            for (int j = 0; j < b; j++) s->history[s->n_past++] = tokens[i + j];
        }
    }
    if (outer) sm_prof_end(s->prof, 0, 0);
    return sm_check_result(s, tokens, n, check_logits, err);
}

sm_status sm_session_eval(sm_session *s, const sm_token *tokens, size_t n, sm_error *err) {
    return eval(s, tokens, n, NULL, err);
}

sm_status sm_session_eval_all(sm_session *s, const sm_token *tokens, size_t n, float *logits, sm_error *err) {
    if (!logits) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_session_eval_all: logits buffer is NULL");
    return eval(s, tokens, n, logits, err);
}

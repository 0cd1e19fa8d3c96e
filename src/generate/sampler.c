/* sampler.c - picking the next token from the logits.
 *
 * The order follows llama.cpp's default chain: penalties (repetition, then
 * frequency and presence), top-k, top-p, min-p, temperature, then a draw. Temperature 0 is greedy. Sorting
 * is done here (no qsort: glibc's may allocate) on the session's scratch. */
#include "sampler.h"
#include "core/error.h"
#include "text/eog.h"

#include <math.h>
#include <string.h>

sm_sampler_params sm_sampler_default_params(void) {
    sm_sampler_params p = {0.8f, 40, 0.95f, 0.05f, 1.0f, 64, 0.0f, 0.0f, 0};
    return p;
}

static uint64_t rng_next(uint64_t *state) {
    /* xorshift64* */
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, 1) with 24 bits, exactly representable as a float. */
static float rng_float(uint64_t *state) { return (float)(rng_next(state) >> 40) / 16777216.0f; }

/* Total order: higher logit first, then lower id, so results never depend
 * on the sort algorithm. */
static int better(const sm_candidate *a, const sm_candidate *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

/* Heap whose root is the worst candidate. */
static void sift_down(sm_candidate *c, int n, int i) {
    for (;;) {
        int w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && better(&c[w], &c[l])) w = l;
        if (r < n && better(&c[w], &c[r])) w = r;
        if (w == i) return;
        sm_candidate t = c[i];
        c[i] = c[w];
        c[w] = t;
        i = w;
    }
}

/* Heap sort of a heap of k whose root is the worst: best first. */
static void heap_sort(sm_candidate *c, int k) {
    for (int end = k - 1; end > 0; end--) {
        sm_candidate t = c[0];
        c[0] = c[end];
        c[end] = t;
        sift_down(c, end, 0);
    }
}

/* Offers e to a heap of k whose root is the worst: it replaces the root if
 * better. Returns the root's logit after, below which (or NaN) nothing can
 * enter: the scans below skip those without the full comparison. */
static float heap_offer(sm_candidate *c, int k, sm_candidate e) {
    if (better(&e, &c[0])) {
        c[0] = e;
        sift_down(c, k, 0);
    }
    return c[0].logit;
}

/* Moves the best k candidates to the front, best first (the entries past
 * them are not meaningful after). O(n log k). */
static void select_top(sm_candidate *c, int n, int k) {
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(c, k, i);
    float worst = c[0].logit;
    for (int i = k; i < n; i++)
        if (c[i].logit >= worst) worst = heap_offer(c, k, c[i]);
    heap_sort(c, k);
}

/* Token i as a candidate: its logit x[i], or -inf for an end token under ban_eog. */
static sm_candidate logit_candidate(const float *x, int i, const sm_vocab *ban_eog) {
    return (sm_candidate){ban_eog && sm_vocab_is_eog(ban_eog, i) ? -INFINITY : x[i], i};
}

/* The same selection from n logits in id order (token i's logit x[i], an
 * end token's -inf under ban_eog), into c[0..k): the same k, in the same
 * order, as select_top on all n candidates, without writing them. */
static void select_top_logits(sm_candidate *c, const float *x, int n, int k, const sm_vocab *ban_eog) {
    for (int i = 0; i < k; i++) c[i] = logit_candidate(x, i, ban_eog);
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(c, k, i);
    float worst = c[0].logit;
    int i = k;
    for (; i + 8 <= n; i += 8) {   /* eight logits compared before one branch: most blocks hold none to offer */
        int any = 0;
        for (int j = 0; j < 8; j++) any |= x[i + j] >= worst;
        if (!any) continue;
        for (int j = i; j < i + 8; j++)
            if (x[j] >= worst) worst = heap_offer(c, k, logit_candidate(x, j, ban_eog));
    }
    for (; i < n; i++)
        if (x[i] >= worst) worst = heap_offer(c, k, logit_candidate(x, i, ban_eog));
    heap_sort(c, k);
}

/* ignore_eos: the end-of-generation tokens drop to -inf, among candidates
 * that are every token in id order (cand[i].id == i): the flags are read in
 * order, eight at a time, not looked up per candidate */
static void ban_eog(sm_candidate *cand, int n, const sm_vocab *v) {
    int m = n < v->n ? n : v->n, i = 0;
    const uint64_t flag8 = 0x0101010101010101ull * SM_TOKEN_EOG;
    for (; i + 8 <= m; i += 8) {
        uint64_t w;
        memcpy(&w, v->attr + i, sizeof w);
        if (!(w & flag8)) continue;
        for (int j = i; j < i + 8; j++)
            if (v->attr[j] & SM_TOKEN_EOG) cand[j].logit = -INFINITY;
    }
    for (; i < m; i++)
        if (v->attr[i] & SM_TOKEN_EOG) cand[i].logit = -INFINITY;
}

/* The first of n logits holding the largest (the lowest id among equals;
 * NaN never wins, 0 when all are): the largest found in eight independent
 * chains, then its first place. Greedy decoding's whole cost where nothing
 * changes the logits (no penalties, no mask). */
static int argmax_logits(const float *x, int n) {
    float m8[8], max = -INFINITY;
    for (int j = 0; j < 8; j++) m8[j] = -INFINITY;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) m8[j] = x[i + j] > m8[j] ? x[i + j] : m8[j];
    for (; i < n; i++) max = x[i] > max ? x[i] : max;
    for (int j = 0; j < 8; j++) max = m8[j] > max ? m8[j] : max;
    for (i = 0; i < n; i++)
        if (x[i] == max) return i;
    return 0;
}

sm_status sm_session_sample(sm_session *s, const sm_sampler_params *sp_in, sm_token *out, sm_error *err) {
    return sm_session_sample_masked(s, sp_in, NULL, out, err);
}

sm_status sm_session_sample_masked(sm_session *s, const sm_sampler_params *sp_in, const uint8_t *allowed,
                                   sm_token *out, sm_error *err) {
    if (!s || !out) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_session_sample: session and out are required");
    if (s->n_past == 0) return sm_fail(err, SM_ERR_INVALID_ARG, "nothing has been evaluated yet: no logits to sample");
    if (!s->logits_valid)
        return sm_fail(err, SM_ERR_INVALID_ARG,
                       "the session was truncated or shifted since its last evaluation: evaluate a token first");
    sm_sampler_params sp = sp_in ? *sp_in : sm_sampler_default_params();
    if (!sm_sampler_params_ok(&sp)) return sm_fail(err, SM_ERR_INVALID_ARG, "sampler parameters out of range");
    s->sampler = sp;
    s->has_sampler = 1;
    int n = s->model->hp.n_vocab;
    const float *logits = s->logits;
    int penalize = sp.repeat_penalty != 1.0f || sp.presence_penalty != 0.0f || sp.frequency_penalty != 0.0f;
    int as_they_are = !allowed && !(penalize && sp.repeat_last_n != 0);   /* nothing changes the logits */
    if (sp.temperature <= 0.0f && as_they_are) {
        /* greedy on the logits as they are: the candidates' argmax without building them (unless the
         * winner is an end token ignore_eos bans) */
        int best = argmax_logits(logits, n);
        if (!(sp.ignore_eos && sm_vocab_is_eog(&s->model->vocab, best))) {
            *out = best;
            return SM_OK;
        }
    }
    if (as_they_are && sp.top_k > 0 && sp.top_k < n) {
        /* top-k on the logits as they are: only the k best become candidates (the same k, in the same
         * order, as selecting among all of them), and the chain goes on with those */
        select_top_logits(s->gen.cand, logits, n, sp.top_k, sp.ignore_eos ? &s->model->vocab : NULL);
        return sm_sample_candidates(s->gen.cand, sp.top_k, &sp, &s->rng, out);
    }
    for (int i = 0; i < n; i++) s->gen.cand[i] = (sm_candidate){logits[i], i};
    if (penalize && sp.repeat_last_n != 0) {
        /* Over the last repeat_last_n tokens, as llama.cpp's penalties: each
         * distinct token's logit is divided (positive) or multiplied
         * (negative) by the repetition penalty once, then lowered by its
         * count times the frequency penalty plus the presence penalty
         * (OpenAI's definition). */
        int last = sp.repeat_last_n < 0 || sp.repeat_last_n > s->n_past ? s->n_past : sp.repeat_last_n;
        const sm_token *h = s->history + (s->n_past - last);
        int32_t *count = s->gen.counts;
        for (int i = 0; i < last; i++) count[h[i]]++;
        for (int i = 0; i < last; i++) {
            sm_token t = h[i];
            if (count[t] == 0) continue;   /* done already */
            float *l = &s->gen.cand[t].logit;
            if (sp.repeat_penalty != 1.0f) *l = *l > 0.0f ? *l / sp.repeat_penalty : *l * sp.repeat_penalty;
            *l -= (float)count[t] * sp.frequency_penalty + sp.presence_penalty;
            count[t] = 0;
        }
    }
    if (sp.ignore_eos && !allowed) ban_eog(s->gen.cand, n, &s->model->vocab);
    if (allowed) {
        /* only the allowed tokens stay candidates */
        int k = 0;
        for (int i = 0; i < n; i++)
            if (allowed[s->gen.cand[i].id]) s->gen.cand[k++] = s->gen.cand[i];
        if (k == 0) return sm_fail(err, SM_ERR_INVALID_ARG, "no token is allowed here");
        n = k;
    }
    return sm_sample_candidates(s->gen.cand, n, &sp, &s->rng, out);
}

/* The candidate with the highest logit (ties: the lowest id; NaN never
 * wins): the largest logit found first, in a loop without branches, then
 * the candidates holding it. */
static int argmax(const sm_candidate *cand, int n) {
    float max = -INFINITY;
    for (int i = 0; i < n; i++) max = cand[i].logit > max ? cand[i].logit : max;
    int best = 0;
    for (int i = 0; i < n; i++)
        if (cand[i].logit == max && (cand[best].logit != max || cand[i].id < cand[best].id)) best = i;
    return best;
}

/* The chain's cuts: keeps at most top_k candidates, sorted best first
 * (with top-p the whole list must be sorted), then the top-p and min-p
 * cuts on the probabilities at temperature 1, as llama.cpp. Returns how
 * many candidates are left at the front of cand. */
static int chain_keep(sm_candidate *cand, int n, const sm_sampler_params *sp) {
    int k = n;
    if (sp->top_k > 0 && sp->top_k < n) k = sp->top_k;
    select_top(cand, n, k);
    n = k;
    float max = cand[0].logit;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)cand[i].logit - max);
    if (sp->top_p < 1.0f) {
        double cum = 0.0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += exp((double)cand[i].logit - max) / sum;
            if (cum >= sp->top_p) { keep = i + 1; break; }
        }
        n = keep;
    }
    if (sp->min_p > 0.0f) {
        /* p_i >= min_p * p_max  <=>  logit_i >= max + log(min_p) */
        float floor = max + logf(sp->min_p);
        int keep = 1;
        while (keep < n && cand[keep].logit >= floor) keep++;
        n = keep;
    }
    return n;
}

/* exp((logit - max) / T) of a kept candidate: its unnormalised weight. */
static double weight(const sm_candidate *c, float max, float temperature) {
    return exp(((double)c->logit - max) / temperature);
}

sm_status sm_sample_candidates(sm_candidate *cand, int n, const sm_sampler_params *sp, uint64_t *rng,
                               sm_token *out) {
    if (sp->temperature <= 0.0f) {
        *out = cand[argmax(cand, n)].id;
        return SM_OK;
    }
    n = chain_keep(cand, n, sp);
    float max = cand[0].logit;
    double total = 0.0;
    for (int i = 0; i < n; i++) total += weight(&cand[i], max, sp->temperature);
    double r = (double)rng_float(rng) * total, acc = 0.0;
    for (int i = 0; i < n; i++) {
        acc += weight(&cand[i], max, sp->temperature);
        if (r < acc) {
            *out = cand[i].id;
            return SM_OK;
        }
    }
    *out = cand[n - 1].id;  /* rounding left r at the very end */
    return SM_OK;
}

float sm_rng_uniform(uint64_t *state) { return rng_float(state); }

void sm_sampler_probs(const float *logits, int n, const sm_sampler_params *sp, const sm_vocab *v, sm_candidate *cand,
                      float *probs) {
    memset(probs, 0, (size_t)n * sizeof *probs);
    const sm_vocab *ban = sp->ignore_eos ? v : NULL;
    if (sp->temperature > 0.0f && sp->top_k > 0 && sp->top_k < n) {
        /* only the k best become candidates, as sm_session_sample's top-k */
        select_top_logits(cand, logits, n, sp->top_k, ban);
        n = sp->top_k;
    } else {
        for (int i = 0; i < n; i++) cand[i] = (sm_candidate){logits[i], i};
        if (ban) ban_eog(cand, n, ban);
        if (sp->temperature <= 0.0f) {
            probs[cand[argmax(cand, n)].id] = 1.0f;
            return;
        }
    }
    /* the same chain as sm_sample_candidates, written out as probabilities */
    n = chain_keep(cand, n, sp);
    float max = cand[0].logit;
    double total = 0.0;
    for (int i = 0; i < n; i++) total += weight(&cand[i], max, sp->temperature);
    for (int i = 0; i < n; i++) probs[cand[i].id] = (float)(weight(&cand[i], max, sp->temperature) / total);
}

sm_token sm_sample_probs(const float *probs, int n, uint64_t *rng) {
    double total = 0.0;
    int last = -1;
    for (int i = 0; i < n; i++)
        if (probs[i] > 0.0f) { total += probs[i]; last = i; }
    if (last < 0) return 0;
    double r = (double)rng_float(rng) * total, acc = 0.0;
    for (int i = 0; i < n; i++) {
        acc += probs[i];
        if (probs[i] > 0.0f && r < acc) return i;
    }
    return last;
}

/* speculative.c - speculative decoding. A small draft model with the same
 * vocabulary proposes a few tokens one at a time (cheap); the target
 * evaluates them all in one batch (one pass over its weights instead of
 * several) and keeps the longest run that its own sampling would have
 * produced, by the acceptance rule of speculative sampling, so the output
 * follows the target's distribution (greedy: exactly its greedy output). */
#include "speculative.h"
#include "sampler.h"
#include "core/alloc.h"
#include "core/error.h"

#include <math.h>
#include <string.h>

sm_status sm_spec_check_models(const sm_model *t, const sm_model *d, sm_error *err) {
    const sm_vocab *a = &t->vocab, *b = &d->vocab;
    if (t->hp.n_vocab != d->hp.n_vocab)
        return sm_fail(err, SM_ERR_INVALID_ARG, "the draft model's vocabulary has %d tokens, the model's %d: "
                       "a draft must share the model's vocabulary", d->hp.n_vocab, t->hp.n_vocab);
    for (int i = 0; i < t->hp.n_vocab; i++)
        if (a->text_len[i] != b->text_len[i] ||
            memcmp(a->block + a->text_off[i], b->block + b->text_off[i], a->text_len[i]) != 0)
            return sm_fail(err, SM_ERR_INVALID_ARG, "the draft model's token %d differs from the model's: "
                           "a draft must share the model's vocabulary", i);
    return SM_OK;
}

sm_status sm_spec_init(sm_spec *sp, const sm_session *target, sm_session *draft, int n_draft, sm_error *err) {
    memset(sp, 0, sizeof *sp);
    if (!draft || n_draft < 1 || n_draft > 64)
        return sm_fail(err, SM_ERR_INVALID_ARG, "a draft session and 1 to 64 draft tokens are needed (got %d)", n_draft);
    if (draft->n_ctx < target->n_ctx)
        return sm_fail(err, SM_ERR_INVALID_ARG, "the draft session's context (%d) is shorter than the model's (%d)",
                       draft->n_ctx, target->n_ctx);
    sm_status st = sm_spec_check_models(target->model, draft->model, err);
    if (st) return st;
    size_t nv = (size_t)target->model->hp.n_vocab, nd = (size_t)n_draft;
    sp->draft = draft;
    sp->n_draft = n_draft;
    sp->n_vocab = (int)nv;
    sp->q = sm_alloc(nd * nv * sizeof *sp->q);
    sp->p = sm_alloc(nv * sizeof *sp->p);
    sp->resid = sm_alloc(nv * sizeof *sp->resid);
    sp->logits = sm_alloc((nd + 1) * nv * sizeof *sp->logits);
    sp->batch = sm_alloc((nd + 1) * sizeof *sp->batch);
    sp->cand = sm_alloc(nv * sizeof *sp->cand);
    if (!sp->q || !sp->p || !sp->resid || !sp->logits || !sp->batch || !sp->cand) {
        sm_spec_free(sp);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory for speculative decoding's buffers");
    }
    return SM_OK;
}

void sm_spec_free(sm_spec *sp) {
    sm_free(sp->q);
    sm_free(sp->p);
    sm_free(sp->resid);
    sm_free(sp->logits);
    sm_free(sp->batch);
    sm_free(sp->cand);
    memset(sp, 0, sizeof *sp);
}

int sm_spec_accept(const float *p, const float *q, int n, sm_token x, uint64_t *rng, float *resid, sm_token *out) {
    /* keep x with probability min(1, p/q): u * q < p for u uniform in [0, 1) */
    if (q[x] > 0.0f && sm_rng_uniform(rng) * q[x] < p[x]) {
        *out = x;
        return 1;
    }
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        float r = p[i] - q[i];
        resid[i] = r > 0.0f ? r : 0.0f;
        total += resid[i];
    }
    *out = sm_sample_probs(total > 0.0 ? resid : p, n, rng);
    return 0;
}

/* The largest probability of the draft's softmax (temperature 1) at its
 * current position: how sure it is of its next token. */
static float draft_top_prob(const float *logits, int n) {
    float mx = logits[0];
    for (int i = 1; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += expf(logits[i] - mx);
    return (float)(1.0 / sum);
}

/* Brings the draft to the target's tokens followed by c: keeps their
 * common prefix, evaluates the rest. */
static sm_status sync_draft(sm_session *d, const sm_session *t, sm_token c, sm_error *err) {
    int common = 0, lim = d->n_past < t->n_past ? d->n_past : t->n_past;
    while (common < lim && d->history[common] == t->history[common]) common++;
    sm_status st = sm_session_truncate(d, common, err);
    if (!st && t->n_past > common) st = sm_session_eval(d, t->history + common, (size_t)(t->n_past - common), err);
    if (!st) st = sm_session_eval(d, &c, 1, err);
    return st;
}

sm_status sm_spec_round(sm_spec *sp, sm_session *t, const sm_sampler_params *smp, sm_token c, int n, float p_min,
                        int *drafted, int *k, sm_token *next, sm_error *err) {
    sm_session *d = sp->draft;
    int nv = sp->n_vocab, greedy = smp->temperature <= 0.0f;
    if (n < 1 || n > sp->n_draft) return sm_fail(err, SM_ERR_INVALID_ARG, "%d draft tokens asked for (1 to %d)", n, sp->n_draft);
    if (t->n_past + n + 1 > t->n_ctx || t->n_past + n + 1 > d->n_ctx)
        return sm_fail(err, SM_ERR_CONTEXT_FULL, "no room in the context for %d draft tokens", n);
    sm_status st = sync_draft(d, t, c, err);
    if (st) return st;
    /* the draft proposes up to n tokens, each from its own distribution,
     * and stops where its most likely token has less than p_min. That
     * depends on the draft's context alone, not on the token it then
     * draws, so a proposal made is still distributed as q and the
     * acceptance rule keeps the target's distribution. */
    sp->batch[0] = c;
    int m = 0;
    for (; m < n; m++) {
        if (p_min > 0.0f && draft_top_prob(d->logits, nv) < p_min) break;
        float *q = sp->q + (size_t)m * nv;
        sm_sampler_probs(d->logits, nv, smp, &t->model->vocab, sp->cand, q);
        sm_token x = sm_sample_probs(q, nv, &d->rng);   /* greedy: the argmax, the one token of q */
        sp->batch[m + 1] = x;
        if (m + 1 < n && (st = sm_session_eval(d, &x, 1, err))) return st;
    }
    n = m;
    /* the target reads c and every proposal at once */
    int base = t->n_past;
    if ((st = sm_session_eval_rows(t, sp->batch, (size_t)n + 1, sp->logits, err))) return st;
    int kept = 0;
    sm_token after = -1;
    for (int i = 0; i < n; i++) {
        sm_sampler_probs(sp->logits + (size_t)i * nv, nv, smp, &t->model->vocab, sp->cand, sp->p);
        sm_token x = sp->batch[i + 1], y;
        if (greedy) {
            if (sp->p[x] == 1.0f) { kept++; continue; }
            after = sm_sample_probs(sp->p, nv, &t->rng);   /* the argmax */
            break;
        }
        if (sm_spec_accept(sp->p, sp->q + (size_t)i * nv, nv, x, &t->rng, sp->resid, &y)) { kept++; continue; }
        after = y;
        break;
    }
    if (after < 0) {
        /* every proposal kept: the token after them comes from the last row */
        sm_sampler_probs(sp->logits + (size_t)n * nv, nv, smp, &t->model->vocab, sp->cand, sp->p);
        after = sm_sample_probs(sp->p, nv, &t->rng);
    }
    if ((st = sm_session_truncate(t, base + 1 + kept, err))) return st;
    *drafted = n;
    *k = kept;
    *next = after;
    return SM_OK;
}

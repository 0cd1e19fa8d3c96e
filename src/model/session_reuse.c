/* session_reuse.c - KV reuse (sm_session_prefill): a session that is asked
 * to hold a token sequence keeps the part of its cache that sequence starts
 * with and evaluates only the rest, as llama-server compares a request's
 * prompt with its slot's cached tokens. */
#include "session.h"
#include "core/error.h"

size_t sm_session_reuse_plan(const sm_session *s, const sm_token *tokens, size_t n) {
    size_t common = sm_session_common_prefix(s, tokens, n);
    if (common == n && common == (size_t)s->n_past && s->logits_valid) return n;  /* nothing to do */
    /* at least one token must be evaluated to have its logits */
    return common == n && n > 0 ? n - 1 : common;
}

sm_status sm_session_prefill(sm_session *s, const sm_token *tokens, size_t n, int *n_reused, sm_error *err) {
    if (n_reused) *n_reused = 0;
    if (!s || !tokens || n == 0)
        return sm_fail(err, SM_ERR_INVALID_ARG, "sm_session_prefill: a session and at least one token are required");
    if (n > (size_t)s->n_ctx)
        return sm_fail(err, SM_ERR_CONTEXT_FULL, "%zu tokens do not fit in a context of %d", n, s->n_ctx);
    int n_vocab = s->model->hp.n_vocab;
    for (size_t i = 0; i < n; i++)   /* before the session is changed */
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return sm_fail(err, SM_ERR_TOKEN_RANGE, "token id %d at index %zu is outside the vocabulary (0 to %d)",
                           tokens[i], i, n_vocab - 1);
    size_t keep = sm_session_reuse_plan(s, tokens, n);
    sm_status st = sm_session_truncate(s, (int)(keep < (size_t)s->n_past ? keep : (size_t)s->n_past), err);
    if (st == SM_OK) st = sm_session_eval(s, tokens + keep, n - keep, err);
    if (st == SM_OK && n_reused) *n_reused = (int)keep;
    return st;
}

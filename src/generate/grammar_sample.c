/* grammar_sample.c - sampling under a grammar (src/grammar): the model's
 * vocabulary as the grammar engine's byte strings, prepared once per model,
 * and the sampling step llama.cpp takes: sample as usual, try the token;
 * only when the grammar rejects it, mask the whole vocabulary and sample
 * again among the allowed tokens. End-of-generation tokens are allowed
 * exactly when the text so far is a complete sentence of the grammar. */
#include "sampler.h"
#include "core/alloc.h"
#include "core/error.h"
#include "text/eog.h"

sm_status sm_grammar_vocab_for_model(const sm_model *m, sm_grammar_vocab **out, sm_error *err) {
    *out = NULL;
    int n = m->vocab.n;
    const char **pieces = sm_alloc((size_t)n * sizeof *pieces);
    size_t *lens = sm_alloc((size_t)n * sizeof *lens);
    if (!pieces || !lens) {
        sm_free(pieces);
        sm_free(lens);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    }
    for (int t = 0; t < n; t++) {
        /* the bytes the detokenizer prints (control tokens: none) */
        int len = sm_vocab_is_eog(&m->vocab, t) ? 0 : sm_vocab_piece(&m->vocab, t, &pieces[t]);
        if (len <= 0) {
            pieces[t] = "";
            len = 0;
        }
        lens[t] = (size_t)len;
    }
    sm_status st = sm_grammar_vocab_new(pieces, lens, (size_t)n, out, err);
    sm_free(pieces);
    sm_free(lens);
    return st;
}

sm_status sm_session_sample_grammar(sm_session *s, const sm_sampler_params *sp, sm_grammar_matcher *g,
                                    const sm_grammar_vocab *v, sm_token *out, sm_error *err) {
    const sm_vocab *vocab = &s->model->vocab;
    int n = s->model->hp.n_vocab;
    if (!g || !v || sm_grammar_vocab_size(v) != (size_t)n)
        return sm_fail(err, SM_ERR_INVALID_ARG, "the grammar's vocabulary is not this model's");
    int complete = sm_grammar_matcher_is_complete(g);
    sm_token t;
    sm_status st = sm_session_sample(s, sp, &t, err);
    if (st) return st;
    int ok = sm_vocab_is_eog(vocab, t) ? complete : sm_grammar_matcher_try_token(g, v, t);
    if (!ok) {
        size_t n_allowed = 0;
        uint8_t *allowed = s->gen.allowed;
        if ((st = sm_grammar_matcher_mask(g, v, allowed, &n_allowed, err))) return st;
        for (int i = 0; i < n; i++)
            if (sm_vocab_is_eog(vocab, i)) allowed[i] = (uint8_t)complete;
        if (n_allowed == 0 && !complete)
            return sm_fail(err, SM_ERR_INVALID_ARG, "no token of the vocabulary can continue the grammar here");
        if ((st = sm_session_sample_masked(s, sp, allowed, &t, err))) return st;
    }
    if (!sm_vocab_is_eog(vocab, t) && (st = sm_grammar_matcher_accept_token(g, v, t, err))) return st;
    *out = t;
    return SM_OK;
}

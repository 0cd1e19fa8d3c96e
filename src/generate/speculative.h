/* speculative.h - speculative decoding's parts: a draft session kept in
 * step with the target, the draft's proposals, the target's check of them in
 * one batch, and the acceptance rule that keeps the target's distribution. */
#ifndef SM_GENERATE_SPECULATIVE_H
#define SM_GENERATE_SPECULATIVE_H

#include "model/session.h"

typedef struct sm_spec {
    sm_session *draft;
    int n_draft;          /* tokens proposed per round, at most */
    int n_vocab;
    float *q;             /* [n_draft][n_vocab] the draft's distribution at each proposal */
    float *p;             /* [n_vocab] the target's at one position */
    float *resid;         /* [n_vocab] max(0, p - q) */
    float *logits;        /* [n_draft + 1][n_vocab] the target's logits over a round's batch */
    sm_token *batch;      /* [n_draft + 1] the round's first token, then the proposals */
    sm_candidate *cand;   /* [n_vocab] sampler scratch */
} sm_spec;

/* The draft can serve the target: the same vocabulary, token by token. */
sm_status sm_spec_check_models(const sm_model *target, const sm_model *draft, sm_error *err);
/* Buffers for rounds of up to n_draft proposals (allocated here, once). */
sm_status sm_spec_init(sm_spec *sp, const sm_session *target, sm_session *draft, int n_draft, sm_error *err);
void sm_spec_free(sm_spec *sp);

/* One round. c is the next token, already chosen; the target holds the
 * tokens before it. The draft is brought to the same tokens and c, then
 * proposes *drafted <= n tokens (n <= n_draft): it stops where its own
 * softmax gives its most likely token less than p_min (0: never). The
 * target evaluates c and the proposals in one batch and keeps the first *k
 * that the acceptance rule accepts.
 * Afterwards the target holds c and those *k tokens (its logits stale) and
 * *next is the token after them, drawn from the target's distribution (the
 * correction at the first rejection, or a token after all n). Temperature
 * 0: a proposal is kept when it is the target's argmax, so the output is
 * the target's greedy output. */
sm_status sm_spec_round(sm_spec *sp, sm_session *target, const sm_sampler_params *smp, sm_token c, int n, float p_min,
                        int *drafted, int *k, sm_token *next, sm_error *err);

/* Speculative sampling's decision for one proposal x drawn from q (Leviathan
 * et al. 2023, "Fast Inference from Transformers via Speculative Decoding";
 * Chen et al. 2023): x is kept with probability min(1, p[x] / q[x]);
 * otherwise the replacement is drawn from max(0, p - q), normalised (from p
 * when that is all zero). Returns 1 with *out = x, or 0 with *out = the
 * replacement. The token so chosen is distributed as p. resid: n floats. */
int sm_spec_accept(const float *p, const float *q, int n, sm_token x, uint64_t *rng, float *resid, sm_token *out);

#endif

/* sampler.h - the sampling chain on its own, for callers that have logits
 * outside a session (and for the unit tests). */
#ifndef SM_GENERATE_SAMPLER_H
#define SM_GENERATE_SAMPLER_H

#include "model/session.h"

/* sm_session_sample among the tokens with allowed[t] != 0 only (allowed
 * NULL: all of them). */
sm_status sm_session_sample_masked(sm_session *s, const sm_sampler_params *sp, const uint8_t *allowed, sm_token *out,
                                   sm_error *err);

/* cand holds n candidates in any order; it is reordered. */
sm_status sm_sample_candidates(sm_candidate *cand, int n, const sm_sampler_params *sp, uint64_t *rng,
                               sm_token *out);

/* Uniform in [0, 1) from the sampler's generator (xorshift64*). */
float sm_rng_uniform(uint64_t *state);

/* The sampling chain's distribution over all n tokens for one row of
 * logits: top-k, top-p, min-p and the temperature as sm_sample_candidates
 * applies them (no repetition penalty), with ignore_eos v's end tokens
 * left out; probs[t] is 0 for a token the chain drops. Temperature 0: 1 at the argmax. cand is n entries of scratch. */
void sm_sampler_probs(const float *logits, int n, const sm_sampler_params *sp, const sm_vocab *v, sm_candidate *cand,
                      float *probs);
/* A draw from probs (n weights, not necessarily summing to 1). */
sm_token sm_sample_probs(const float *probs, int n, uint64_t *rng);

#endif

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

#endif

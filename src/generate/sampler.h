/* sampler.h - the sampling chain on its own, for callers that have logits
 * outside a session (and for the unit tests). */
#ifndef SM_GENERATE_SAMPLER_H
#define SM_GENERATE_SAMPLER_H

#include "model/session.h"

/* cand holds n candidates in any order; it is reordered. */
sm_status sm_sample_candidates(sm_candidate *cand, int n, const sm_sampler_params *sp, uint64_t *rng,
                               sm_token *out);

#endif

/* profile_api.h - what profile_api.c offers besides the public calls: the
 * same readers for a profiler that is not a session's (the trainer's). */
#ifndef SM_MODEL_PROFILE_API_H
#define SM_MODEL_PROFILE_API_H

#include <stdio.h>
#include "smallmind.h"
#include "prof/prof.h"

/* A profiler's tree as sm_session_profile_steps gives a session's. */
int sm_prof_steps(const sm_prof *p, sm_profile_step *rows, int cap);
/* Its trace as sm_session_trace_write writes a session's; rate_id: a step
 * each of whose events is one token (-1: none; pushed counters are kept). */
sm_status sm_prof_trace_write(const sm_prof *p, FILE *f, const sm_trace_write_params *wp, int rate_id, sm_error *err);

#endif

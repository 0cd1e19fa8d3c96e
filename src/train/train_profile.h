/* train_profile.h - training with the profiler on (sm_train_profiled): the
 * trainer's profiler, which optimizer steps it times and which it runs
 * paused to measure its cost, the step times, and the result the caller
 * reads (train_profile.c). train.c calls these around its loop. */
#ifndef SM_TRAIN_TRAIN_PROFILE_H
#define SM_TRAIN_TRAIN_PROFILE_H

#include "trainer.h"

sm_train_profile *sm_train_profile_new(const sm_train_profile_params *pp, sm_error *err);
/* Before the first step: the profiler for this trainer's shape, the trace. */
sm_status sm_train_profile_begin(sm_train_profile *tp, sm_trainer *t, sm_error *err);
/* Step k of n in this run: returns the profiler if the step is timed
 * (also set as t->prof and on the trainer's pool), else NULL. */
sm_prof *sm_train_profile_step_start(sm_train_profile *tp, sm_trainer *t, int k, int n);
/* Its wall time by the loop's clock and the tokens it trained on. */
void sm_train_profile_step_end(sm_train_profile *tp, sm_trainer *t, int k, double ms, double tokens);
/* After the last step, while the trainer still exists: the rows, the
 * figures, the trace file. */
sm_status sm_train_profile_end(sm_train_profile *tp, sm_trainer *t, sm_error *err);

#endif

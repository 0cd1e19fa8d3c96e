/* steps.h - the steps of loading, generating and running a model that the
 * profiler times (its scope ids), and their names in reports. The
 * profiler itself (src/prof) knows ids and names only as data. */
#ifndef SM_MODEL_STEPS_H
#define SM_MODEL_STEPS_H

enum sm_step {
    SM_SC_ROOT, SM_SC_LOAD, SM_SC_GENERATE, SM_SC_ENCODE, SM_SC_PREFILL, SM_SC_TOKEN, SM_SC_FORWARD,
    SM_SC_EMBED, SM_SC_LAYER, SM_SC_ATTN_NORM, SM_SC_Q_PROJ, SM_SC_K_PROJ, SM_SC_V_PROJ, SM_SC_QKV_PROJ,
    SM_SC_ROPE, SM_SC_ATT_SCORES, SM_SC_SOFTMAX, SM_SC_ATT_V, SM_SC_O_PROJ, SM_SC_RESIDUAL, SM_SC_FFN_NORM,
    SM_SC_FFN_GATE, SM_SC_FFN_UP, SM_SC_FFN_ACT, SM_SC_FFN_DOWN, SM_SC_FINAL_NORM, SM_SC_LOGITS,
    SM_SC_SAMPLE, SM_SC_DECODE, SM_SC_USER, SM_SC_ATTENTION, SM_SC_QK_NORM, SM_SC_POST_NORM, SM_SC_COUNT
};

/* The names, indexed by step (what sm_prof_new takes). */
extern const char *const sm_step_names[SM_SC_COUNT];

#endif

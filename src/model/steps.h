/* steps.h - the steps of loading, generating, running and training a model
 * that the profiler times (its scope ids), their names in reports, and
 * what a roofline needs to know of each. The profiler itself (src/prof)
 * knows ids and names only as data. */
#ifndef SM_MODEL_STEPS_H
#define SM_MODEL_STEPS_H

#include <stdint.h>

enum sm_step {
    SM_SC_ROOT, SM_SC_LOAD, SM_SC_GENERATE, SM_SC_ENCODE, SM_SC_PREFILL, SM_SC_TOKEN, SM_SC_FORWARD,
    SM_SC_EMBED, SM_SC_LAYER, SM_SC_ATTN_NORM, SM_SC_Q_PROJ, SM_SC_K_PROJ, SM_SC_V_PROJ, SM_SC_QKV_PROJ,
    SM_SC_ROPE, SM_SC_ATT_SCORES, SM_SC_SOFTMAX, SM_SC_ATT_V, SM_SC_O_PROJ, SM_SC_RESIDUAL, SM_SC_FFN_NORM,
    SM_SC_FFN_GATE, SM_SC_FFN_UP, SM_SC_FFN_ACT, SM_SC_FFN_DOWN, SM_SC_FINAL_NORM, SM_SC_LOGITS,
    SM_SC_SAMPLE, SM_SC_DECODE, SM_SC_USER, SM_SC_ATTENTION, SM_SC_QK_NORM, SM_SC_POST_NORM,
    /* training (train/): a step of the optimizer holds the batch, forward,
     * loss, backward and optimizer; forward and backward hold the layers'
     * operations under the inference names. SM_SC_ALL_REDUCE is the
     * gradients' exchange of data-parallel training (MPI): open it around
     * the exchange, crediting the bytes sent. */
    SM_SC_TRAIN_STEP, SM_SC_BATCH, SM_SC_BACKWARD, SM_SC_LOSS, SM_SC_OPTIMIZER, SM_SC_ALL_REDUCE, SM_SC_EVAL,
    SM_SC_CHECKPOINT, SM_SC_RECOMPUTE,
    /* a mixture of experts' router (moe.c), after the training steps so their ids stay */
    SM_SC_FFN_ROUTER,
    SM_SC_COUNT
};

/* The names, indexed by step (what sm_prof_new takes). */
extern const char *const sm_step_names[SM_SC_COUNT];

/* What a roofline needs to know of a step: what its bytes are (SM_STEP_*
 * in smallmind.h: a group of other steps, activations the step before it
 * wrote, weights or the KV cache, which are read again only in the next
 * pass), whether its FLOPs are multiply-adds that the FMA peak bounds, and
 * whether it is a pass (a forward or backward pass, a token, a prefill),
 * the span after which the weights are read again. */
typedef struct sm_step_info {
    uint8_t kind, fma, pass;
} sm_step_info;
extern const sm_step_info sm_step_infos[SM_SC_COUNT];

#endif

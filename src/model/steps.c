/* steps.c - the names of the profiled steps and what a roofline needs to
 * know of each (see steps.h). */
#include "steps.h"
#include "smallmind.h"

const char *const sm_step_names[SM_SC_COUNT] = {
    "root", "load", "generate", "tokenizer encode", "prefill", "token", "forward", "embedding", "layer",
    "attention norm", "Q projection", "K projection", "V projection", "QKV projection", "RoPE",
    "attention scores", "softmax", "attention x V", "output projection", "residual add", "FFN norm",
    "FFN gate projection", "FFN up projection", "FFN activation", "FFN down projection", "final norm",
    "logits", "sampling", "detokenize + stream", "user", "attention (batch)", "QK norm", "post norm",
    "train step", "batch", "backward", "loss", "optimizer", "all-reduce", "evaluation", "checkpoint", "recompute",
    "FFN expert router",
};

#define G {SM_STEP_GROUP, 0, 0}
#define P {SM_STEP_GROUP, 0, 1}
#define A {SM_STEP_ACTIVATIONS, 0, 0}
#define W {SM_STEP_WEIGHTS, 1, 0}
#define KV {SM_STEP_KV_CACHE, 1, 0}

const sm_step_info sm_step_infos[SM_SC_COUNT] = {
    [SM_SC_ROOT] = G, [SM_SC_LOAD] = A, [SM_SC_GENERATE] = G, [SM_SC_ENCODE] = A, [SM_SC_PREFILL] = P,
    [SM_SC_TOKEN] = P, [SM_SC_FORWARD] = P, [SM_SC_EMBED] = {SM_STEP_WEIGHTS, 0, 0}, [SM_SC_LAYER] = G,
    [SM_SC_ATTN_NORM] = A, [SM_SC_Q_PROJ] = W, [SM_SC_K_PROJ] = W, [SM_SC_V_PROJ] = W, [SM_SC_QKV_PROJ] = W,
    [SM_SC_ROPE] = A, [SM_SC_ATT_SCORES] = KV, [SM_SC_SOFTMAX] = A, [SM_SC_ATT_V] = KV, [SM_SC_O_PROJ] = W,
    [SM_SC_RESIDUAL] = A, [SM_SC_FFN_NORM] = A, [SM_SC_FFN_GATE] = W, [SM_SC_FFN_UP] = W, [SM_SC_FFN_ACT] = A,
    [SM_SC_FFN_DOWN] = W, [SM_SC_FINAL_NORM] = A, [SM_SC_LOGITS] = W, [SM_SC_SAMPLE] = A, [SM_SC_DECODE] = A,
    /* a prompt batch's attention reads the keys and values the batch has just written */
    [SM_SC_USER] = P, [SM_SC_ATTENTION] = {SM_STEP_ACTIVATIONS, 1, 0}, [SM_SC_QK_NORM] = A, [SM_SC_POST_NORM] = A,
    [SM_SC_TRAIN_STEP] = G, [SM_SC_BATCH] = A, [SM_SC_BACKWARD] = P, [SM_SC_LOSS] = A, [SM_SC_OPTIMIZER] = A,
    [SM_SC_ALL_REDUCE] = A, [SM_SC_EVAL] = P, [SM_SC_CHECKPOINT] = A, [SM_SC_RECOMPUTE] = G,
    [SM_SC_FFN_ROUTER] = W,
};

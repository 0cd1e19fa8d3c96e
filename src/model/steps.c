/* steps.c - the names of the profiled steps (see steps.h). */
#include "steps.h"

const char *const sm_step_names[SM_SC_COUNT] = {
    "root", "load", "generate", "tokenizer encode", "prefill", "token", "forward", "embedding", "layer",
    "attention norm", "Q projection", "K projection", "V projection", "QKV projection", "RoPE",
    "attention scores", "softmax", "attention x V", "output projection", "residual add", "FFN norm",
    "FFN gate projection", "FFN up projection", "FFN activation", "FFN down projection", "final norm",
    "logits", "sampling", "detokenize + stream", "user", "attention (batch)", "QK norm", "post norm",
};

/* trainer.h - training state for GPT-2 and LLaMA models: parameters,
 * gradients, AdamW moments and activations, each one contiguous block with
 * computed offsets, and an explicit forward and backward pass per layer. */
#ifndef SM_TRAIN_TRAINER_H
#define SM_TRAIN_TRAINER_H

#include <stdint.h>
#include "smallmind.h"
#include "kernels/dispatch.h"
#include "core/threadpool.h"

enum { SM_TRAIN_GPT2 = 1, SM_TRAIN_LLAMA = 2 };

typedef struct sm_train_config {
    int arch;                    /* SM_TRAIN_GPT2 or SM_TRAIN_LLAMA */
    int vocab, ctx, dim, layers, heads, kv_heads, ffn;
    int tied;                    /* output head = token embedding */
    float norm_eps, rope_base;
} sm_train_config;

/* One parameter tensor: rows x cols floats at offset in the blocks. */
typedef struct sm_param {
    char name[64];
    int rows, cols;              /* cols = 1 for vectors... see n_dims */
    int n_dims;                  /* 1 or 2, as written to GGUF */
    size_t offset;
    int decay;                   /* weight decay applies (matrices, not embeddings) */
} sm_param;

typedef struct sm_trainer {
    sm_train_config cfg;
    int B, T;                    /* batch of B sequences of T tokens */
    const sm_kernel_table *kt;
    sm_param *params;
    int n_params;
    size_t n_floats;             /* parameter count */
    float *w, *g, *m, *v;        /* parameters, gradients, AdamW moments */
    float *act;                  /* activations for one batch */
    size_t act_floats;
    float *scratch;              /* backward temporaries */
    uint64_t step;               /* optimizer steps taken */
    int recompute;               /* gradient checkpointing: layers share activations */
    size_t act_floats_full;      /* what the activations would take without it */
    sm_threadpool *pool;
    /* matrix products: transposed operands, packed panels, results */
    float *mm_at, *mm_bt, *mm_pack, *mm_out;
} sm_trainer;

/* n_threads 0 = one per physical core. Results do not depend on it. With
 * recompute (gradient checkpointing) only each layer's input is kept; the
 * backward pass recomputes a layer's activations before it needs them, for
 * the same gradients, bit for bit, in less memory. */
sm_status sm_trainer_new(const sm_train_config *cfg, int B, int T, int n_threads, int recompute, sm_trainer **out,
                         sm_error *err);
void sm_trainer_free(sm_trainer *t);
const sm_param *sm_trainer_param(const sm_trainer *t, const char *name);

/* Loss of the batch (tokens x -> targets y, B*T each); with backward, the
 * gradients of the mean loss are added to t->g. */
float sm_trainer_step_grads(sm_trainer *t, const int32_t *x, const int32_t *y, int backward);

/* AdamW with bias correction and decoupled weight decay on t->g, then the
 * gradients are cleared. Returns the gradient norm before clipping. */
float sm_trainer_adamw(sm_trainer *t, float lr, float beta1, float beta2, float eps, float weight_decay,
                       float grad_clip);

/* Copies weights in from a loaded model of the same shape (F32/F16/quantized
 * tensors are dequantized), or writes them out as a GGUF model. */
sm_status sm_trainer_load_weights(sm_trainer *t, const sm_model *m, sm_error *err);

#endif

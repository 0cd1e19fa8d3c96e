/* trainer.h - training state for a model of an architecture the trainer
 * supports (llama and gpt2 today): parameters, gradients, AdamW moments and
 * activations, each one contiguous block laid out from the architecture's
 * table (model/arch.h), with named pointers into them per layer (as llm.c
 * does) and an explicit forward and backward pass per layer. */
#ifndef SM_TRAIN_TRAINER_H
#define SM_TRAIN_TRAINER_H

#include <stdint.h>
#include "smallmind.h"
#include "model/arch.h"
#include "kernels/dispatch.h"
#include "core/threadpool.h"
#include "prof/prof.h"

typedef struct sm_train_config {
    sm_hparams hp;               /* the shape; hp.arch names the architecture */
    int tied;                    /* output head = token embedding */
} sm_train_config;

/* One parameter tensor: rows x cols floats at offset in the blocks, and
 * the role and layer it has in the architecture. */
typedef struct sm_param {
    char name[64];
    int rows, cols;              /* a vector is 1 x cols */
    int n_dims;                  /* 1 or 2, as written to GGUF */
    int role, layer;             /* model/arch.h; layer -1 for model-wide */
    size_t offset;
    int decay;                   /* weight decay applies (matrices, not embeddings) */
} sm_param;

/* One layer's tensors in one of the blocks (weights, gradients, ...):
 * NULL where the architecture has no such tensor. */
typedef struct sm_train_layer {
    float *attn_norm, *attn_norm_b;
    float *wq, *wk, *wv, *wqkv, *b_qkv, *wo, *b_o;
    float *ffn_norm, *ffn_norm_b, *w_gate, *w_up, *b_up, *w_down, *b_down;
} sm_train_layer;

typedef struct sm_train_tensors {
    float *tok_embd, *pos_embd, *output_norm, *output_norm_b;
    float *output;               /* = tok_embd when tied */
    sm_train_layer *layer;       /* n_layers */
} sm_train_tensors;

typedef struct sm_trainer {
    sm_train_config cfg;
    int B, T;                    /* batch of B sequences of T tokens */
    const sm_kernel_table *kt;
    sm_param *params;
    int n_params;
    size_t n_floats;             /* parameter count */
    float *w, *g, *m, *v;        /* parameters, gradients, AdamW moments */
    sm_train_tensors W, G;       /* named pointers into w and g */
    float *act;                  /* activations for one batch */
    size_t act_floats;
    float *scratch;              /* backward temporaries */
    uint64_t step;               /* optimizer steps taken */
    int recompute;               /* gradient checkpointing: layers share activations */
    size_t act_floats_full;      /* what the activations would take without it */
    sm_threadpool *pool;
    /* matrix products: transposed operands, packed panels, results */
    float *mm_at, *mm_bt, *mm_pack, *mm_out;
    size_t scratch_floats, mm_floats;   /* the sizes of scratch and of the four above together */
    sm_prof *prof;               /* times every operation when set (train/train_profile.c); NULL: off */
} sm_trainer;

/* n_threads 0 = one per physical core. Results do not depend on it. With
 * recompute (gradient checkpointing) only each layer's input is kept; the
 * backward pass recomputes a layer's activations before it needs them, for
 * the same gradients, bit for bit, in less memory. */
sm_status sm_trainer_new(const sm_train_config *cfg, int B, int T, int n_threads, int recompute, sm_trainer **out,
                         sm_error *err);
void sm_trainer_free(sm_trainer *t);
const sm_param *sm_trainer_param(const sm_trainer *t, const char *name);

/* The three parts of a step on a batch (tokens x -> targets y, B*T each):
 * the forward pass to the logits; the mean cross-entropy loss, which also
 * turns the logits into the gradient of that loss; the backward pass, which
 * adds every parameter's gradient to t->g. */
void sm_trainer_forward(sm_trainer *t, const int32_t *x);
float sm_trainer_loss(sm_trainer *t, const int32_t *y);
void sm_trainer_backward(sm_trainer *t, const int32_t *x);
/* All three (without backward: forward and loss only). */
float sm_trainer_step_grads(sm_trainer *t, const int32_t *x, const int32_t *y, int backward);

/* AdamW with bias correction and decoupled weight decay on t->g, then the
 * gradients are cleared. Returns the gradient norm before clipping. */
float sm_trainer_adamw(sm_trainer *t, float lr, float beta1, float beta2, float eps, float weight_decay,
                       float grad_clip);

/* Copies weights in from a loaded model of the same shape (F32/F16/quantized
 * tensors are dequantized). */
sm_status sm_trainer_load_weights(sm_trainer *t, const sm_model *m, sm_error *err);

/* The training configuration of a loaded model (its shape, and whether its
 * head is tied); an error for an architecture the trainer cannot train. */
sm_status sm_train_config_of(const sm_model *m, sm_train_config *cfg, sm_error *err);

#endif

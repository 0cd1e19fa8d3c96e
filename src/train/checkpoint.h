/* checkpoint.h - reading a training checkpoint back with every field
 * checked against the run that resumes it. The reader is train.c's own
 * (sm_train --resume uses it); it is declared here so that the fuzz target
 * tests/fuzz/fuzz_checkpoint.c can drive it on checkpoints held in memory. */
#ifndef SM_TRAIN_CHECKPOINT_H
#define SM_TRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include "trainer.h"

/* What the resuming run is: a checkpoint must agree with it. */
typedef struct sm_ckpt_run {
    int batch, seq;              /* must equal the stored ones */
    int steps;                   /* the stored step must be below it */
    uint64_t n_train;            /* tokens in the training stream: data_pos <= it */
    int check_data;              /* compare the stored stream length and hash */
    uint64_t data_hash;          /* sm_ckpt_data_hash of the training stream */
} sm_ckpt_run;

/* The training state besides weights and moments. */
typedef struct sm_ckpt_state {
    uint64_t step, data_pos, rng;
} sm_ckpt_state;

/* FNV-1a over the tokens: which training text a checkpoint was made on. */
uint64_t sm_ckpt_data_hash(const int32_t *tokens, size_t n);

/* Reads a checkpoint (loaded as a model) into t, a trainer of its shape:
 * the step, data position and RNG into *state, the weights and AdamW
 * moments into t. Every field is checked: batch and sequence length equal
 * the run's, the step below its steps, the data position inside its stream,
 * the stream the same (check_data), weights and moments finite, second
 * moments not negative. */
sm_status sm_ckpt_read(sm_trainer *t, const sm_model *m, const sm_ckpt_run *run, sm_ckpt_state *state, sm_error *err);
/* The same for a LoRA training's checkpoint (an adapter file with the
 * moments, read against the trainer's frozen base): the adapters' A and B
 * from its tensors, and its rank (smallmind.train.lora_rank) the run's. */
sm_status sm_ckpt_read_lora(sm_trainer *t, const char *path, const sm_ckpt_run *run, sm_ckpt_state *state,
                            sm_error *err);

#endif

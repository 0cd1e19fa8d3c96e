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

struct sm_matrix;

#define SM_NORM_CHUNK 65536   /* floats per partial sum of the gradient's norm */

typedef struct sm_train_config {
    sm_hparams hp;               /* the shape; hp.arch names the architecture */
    int tied;                    /* output head = token embedding */
    /* the optional per-layer tensors (bit 1 << role) the model has and training keeps: a fine-tuned
     * file's q/k/v biases (llama, stablelm), which a model trained from scratch leaves out */
    uint64_t optional_roles;
    /* LoRA: with a base, only adapters are trained: W x becomes W x + alpha / rank * B (A x) for the base
     * matrices whose roles have their bit (1 << role) in lora_roles; the base's weights stay where they are
     * (the mapped file), in their own element type, frozen, and must outlive the trainer */
    const struct sm_model *base;
    int lora_rank;
    float lora_alpha;
    uint64_t lora_roles;
    /* LoRA: bytes the trainer may spend on F32 copies of the frozen base's matrices (each matrix dequantized
     * once, row-major for the forward and transposed for the input gradient; an F32 matrix needs only its
     * transpose), taken matrix by matrix while they fit; the others are dequantized in every product as
     * before. The results are the same bit for bit either way. sm_train_config_of sets
     * SM_TRAIN_LORA_CACHE_DEFAULT; 0 caches nothing. */
    uint64_t lora_cache_bytes;
    /* mixed precision: the weight matrices' products (forward, input gradient, weight gradient) round
     * both operands to BF16 and sum in F32 (kt->gemm_mixed); the parameters, gradients, moments and every
     * other operation stay F32. Needs sm_kernels_mixed; not with LoRA. */
    int bf16_products;
} sm_train_config;

/* The projections of a layer, for LoRA's per-layer slots. */
enum sm_train_proj { SM_P_Q, SM_P_K, SM_P_V, SM_P_QKV, SM_P_O, SM_P_GATE, SM_P_UP, SM_P_DOWN, SM_P_COUNT };
enum { SM_LORA_A = 1, SM_LORA_B = 2 };
/* Rows of a frozen matrix each thread dequantizes for one product call. */
#define SM_TRAIN_DEQ_ROWS 256
/* With the strided product, a product's batch read by columns is packed
 * apart up to this size; a larger one (more than a last-level cache holds)
 * is packed a run at a time as the product reaches it (train_ops.c). */
#define SM_TRAIN_PACKED_BYTES ((size_t)32 << 20)
/* The default budget for the frozen base's F32 copies: 512 MiB holds both copies (8 bytes a weight) of every
 * matrix of a base of up to 64 M weights; the built-in model's take 24 MB. */
#define SM_TRAIN_LORA_CACHE_DEFAULT (512ll << 20)

/* A frozen matrix of the base in LoRA training: the matrix where it is, in
 * its own element type, and when the budget allowed (or it is F32) its
 * values as F32 rows (w, rows x cols) and its transpose (wt, cols x rows). */
typedef struct sm_train_frozen {
    const struct sm_matrix *m;
    const float *w, *wt;
} sm_train_frozen;

/* One projection of one layer in LoRA training: the frozen base matrix
 * (base.m NULL when the architecture has none) and, when it is adapted, A
 * (rank x cols), B (rows x rank) and their gradients, inside the parameter
 * and gradient blocks. */
typedef struct sm_train_lora {
    sm_train_frozen base;
    float *a, *b, *ga, *gb;
} sm_train_lora;

/* One parameter tensor: rows x cols floats at offset in the blocks, and
 * the role and layer it has in the architecture. */
typedef struct sm_param {
    char name[64];
    int rows, cols;              /* a vector is 1 x cols */
    int n_dims;                  /* 1 or 2, as written to GGUF */
    int role, layer;             /* model/arch.h; layer -1 for model-wide */
    size_t offset;
    int decay;                   /* weight decay applies (matrices, not embeddings) */
    int lora;                    /* 0, or SM_LORA_A / SM_LORA_B: an adapter of the base tensor of role and layer */
} sm_param;

/* One layer's tensors in one of the blocks (weights, gradients, ...):
 * NULL where the architecture has no such tensor. */
typedef struct sm_train_layer {
    float *attn_norm, *attn_norm_b;
    float *wq, *wk, *wv, *bq, *bk, *bv, *wqkv, *b_qkv, *wo, *b_o;   /* bq, bk, bv: qwen2 */
    float *q_norm, *k_norm;      /* per-head q/k RMSNorm weights (head_dim each): qwen3 */
    float *ffn_norm, *ffn_norm_b, *w_gate, *b_gate, *w_up, *b_up, *w_down, *b_down;
    float *attn_post_norm, *ffn_post_norm;   /* RMSNorm of each block's output (gemma2/3) */
} sm_train_layer;

typedef struct sm_train_tensors {
    float *tok_embd, *pos_embd, *output_norm, *output_norm_b;
    float *tok_norm, *tok_norm_b;   /* the embeddings' LayerNorm (bloom), or NULL */
    float *output;               /* = tok_embd when tied */
    float *output_b;             /* the head's bias (phi2), or NULL */
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
    /* batch attention with the strided product: each thread's packed panels and T x T block */
    float *att_buf;
    float *gemm_scratch;   /* kt->gemm_scratch floats per thread: gemm_strided's runs of the batch */
    size_t att_buf_floats;       /* per thread */
    double *row_loss;            /* [B T]: each row's cross-entropy, summed in order */
    float *cap_rows;             /* soft-capped logits (gemma2): [threads][vocab] tanh of a row, else NULL */
    float *zeros;                /* dim zeros: the bias of a LayerNorm that has none (mpt) */
    double *norm_parts;          /* [n_floats / SM_NORM_CHUNK + 1]: the gradient's squares, chunk by chunk */
    /* LoRA training (cfg.base set): the per-layer projections (n_layers x SM_P_COUNT), the frozen
     * embeddings and head, alpha / rank, the gradient of A x, and each thread's dequantized rows */
    sm_train_lora *lora;
    const struct sm_matrix *frozen_embd, *frozen_pos;
    sm_train_frozen frozen_out;  /* frozen_out.m NULL: the head is trained (no LoRA) */
    float *frozen_f32;           /* the F32 copies of the frozen matrices (sm_train_frozen.w / .wt), one block */
    size_t frozen_f32_floats;
    float lora_scale;
    float *lora_dax, *lora_tmp;
    float *lora_w;               /* an adapted matrix merged, W + scale B A (train_ops.c), with the strided product */
    float *deq;                  /* [threads][SM_TRAIN_DEQ_ROWS][deq_cols] */
    int deq_cols;
    size_t scratch_floats, mm_floats;   /* the sizes of scratch and of the products' and attention's buffers */
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
/* The loss sum_n weight[n] * nll[n] / denom (weight NULL: all 1), and its
 * gradient in place of the logits: a loss mask, or a shard of a batch
 * whose mean is taken over more tokens than this trainer sees.
 * sm_trainer_loss(t, y) is sm_trainer_loss_weighted(t, y, NULL, B * T). */
float sm_trainer_loss_weighted(sm_trainer *t, const int32_t *y, const float *weight, float denom);
void sm_trainer_backward(sm_trainer *t, const int32_t *x);
/* All three (without backward: forward and loss only). */
float sm_trainer_step_grads(sm_trainer *t, const int32_t *x, const int32_t *y, int backward);

/* AdamW with bias correction and decoupled weight decay on t->g, then the
 * gradients are cleared. Returns the gradient norm before clipping. */
float sm_trainer_adamw(sm_trainer *t, float lr, float beta1, float beta2, float eps, float weight_decay,
                       float grad_clip);

/* Copies weights in from a loaded model of the same shape (F32/F16/quantized
 * tensors are dequantized). Not for LoRA training, whose base is read in place. */
sm_status sm_trainer_load_weights(sm_trainer *t, const sm_model *m, sm_error *err);

/* LoRA's roles from a list such as "q,k,v,o,gate,up,down" (q, k and v also
 * select a fused qkv matrix; "qkv" and "output" are accepted); 0 and a
 * message in err for an unknown name. */
uint64_t sm_lora_roles_parse(const char *list, sm_error *err);
/* The training configuration of a loaded model (its shape, whether its head
 * is tied, and the default budget for a LoRA base's F32 copies); an error
 * for an architecture the trainer cannot train. */
sm_status sm_train_config_of(const sm_model *m, sm_train_config *cfg, sm_error *err);

#endif

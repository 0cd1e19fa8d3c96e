/* arch.h - one table per architecture (llama.cpp's llama-arch idea): the
 * GGUF metadata keys it reads, with ranges and defaults; the tensors it
 * has, by role, each with its name pattern and its shape as a function of
 * the hyperparameters; and the features its forward pass needs. The
 * loader, `init`, the trainer's parameter layout and the metadata writer of
 * trained models all read these tables, so adding an architecture is one
 * entry here (and a feature in forward.c if it needs a new one). */
#ifndef SM_MODEL_ARCH_H
#define SM_MODEL_ARCH_H

#include <stddef.h>
#include <stdint.h>
#include "smallmind.h"

struct sm_gguf;
struct sm_gguf_writer;

/* Every architecture the code base knows, one enum for all of it. */
typedef enum sm_arch {
    SM_ARCH_LLAMA,
    SM_ARCH_GPT2,
    SM_ARCH_QWEN2,
    SM_ARCH_QWEN3,
    SM_ARCH_PHI3,
    SM_ARCH_GEMMA,
    SM_ARCH_GEMMA2,
    SM_ARCH_GEMMA3,
    SM_ARCH_OLMO2,
    SM_ARCH_STARCODER2,
    SM_ARCH_GRANITE,
    SM_ARCH_STABLELM,
    SM_ARCH_PHI2,
    SM_ARCH_GPTNEOX,
    SM_ARCH_GRANITEMOE,
    SM_ARCH_OLMOE,
    SM_ARCH_QWEN2MOE,
    SM_ARCH_QWEN3MOE,
    SM_ARCH_SMOLLM3,
    SM_ARCH_EXAONE,
    SM_ARCH_INTERNLM2,
    SM_ARCH_MINICPM,
    SM_ARCH_STARCODER,
    SM_ARCH_ERNIE4_5,
    SM_ARCH_MISTRAL3,
    SM_ARCH_EXAONE4,
    SM_ARCH_HUNYUAN_DENSE,
    SM_ARCH_QWEN2VL,
    SM_ARCH_QWEN3VL,
    SM_ARCH_QWEN3VLMOE,
    SM_ARCH_OLMO,
    SM_ARCH_NEMOTRON,
    SM_ARCH_ARCEE,
    SM_ARCH_BLOOM,
    SM_ARCH_MPT,
    SM_ARCH_REFACT,
    SM_ARCH_COMMAND_R,
    SM_ARCH_COHERE2,
    SM_ARCH_JAIS,
    SM_ARCH_XVERSE,
    SM_ARCH_ORION,
    SM_ARCH_CODESHELL,
    SM_ARCH_CHATGLM,
    SM_ARCH_FALCON,
    SM_ARCH_COUNT
} sm_arch;

/* The hyperparameters of a model of any architecture. The first line is
 * what every architecture has; the rest have neutral defaults. */
/* YaRN's ramp when the file does not give it (llama.cpp's and Hugging Face's defaults) */
#define SM_YARN_BETA_FAST 32.0f
#define SM_YARN_BETA_SLOW 1.0f

typedef struct sm_hparams {
    int arch;                         /* enum sm_arch */
    int n_vocab, n_ctx_train, dim, n_layers, n_heads, n_kv_heads, head_dim, ffn_dim, rope_dim;
    float rope_base, norm_eps;
    float rope_base_local;            /* RoPE base of the sliding-window layers (gemma3), else rope_base */
    float rope_freq_scale;            /* linear RoPE scaling: angles times this (1 / rope.scaling.factor) */
    float rope_attn_factor;           /* cos and sin times this (1) */
    int n_ctx_orig;                   /* above it the long RoPE factors apply, below the short ones; YaRN's
                                       * original context (rope.scaling.original_context_length) */
    int rope_yarn;                    /* rope.scaling.type is yarn: rope_freq_scale applied by YaRN's ramp */
    float yarn_beta_fast, yarn_beta_slow;   /* YaRN's ramp: the pairs of 32 and of 1 turns in n_ctx_orig
                                             * (SM_YARN_BETA_FAST/SLOW unless the file says) */
    float rope_yarn_log_mul;          /* mistral3: YaRN's magnitude divided by 1 + 0.1 log_mul ln(factor)
                                       * (Hugging Face's mscale_all_dim; 1: no magnitude); 0 = not */
    /* mistral3 (Llama 4's temperature tuning): queries at position p times
     * 1 + attn_temp_scale ln(1 + floor(p / attn_temp_length)); 0 = none */
    float attn_temp_scale;
    int attn_temp_length;             /* n_ctx_orig (derived) */
    int n_swa;                        /* sliding window of the layers that have one; 0 = none */
    float attn_softcap, final_softcap;   /* tanh soft-capping of scores and logits; 0 = none */
    float attention_scale;            /* the scores' scale when the file gives one (granite); 0 = none */
    float q_scale;                    /* what the scores are scaled by (derived) */
    /* granite's scalars (derived 1 elsewhere; gemma's embedding scale sqrt(dim)): embeddings times
     * embedding_scale, each block's output times residual_scale, logits divided by logit_scale */
    float embedding_scale, residual_scale, logit_scale;
    float logit_mul;                  /* command-r's logit_scale, a multiplier: logit_scale = 1 / logit_mul (derived) */
    /* attention and feed-forward read the same layer input and both add into the stream
     * (x + attn(norm(x)) + ffn(norm'(x))): phi2 always, gptneox when its file says so */
    int parallel_residual;
    /* a mixture of experts (Mixtral-style llama, granitemoe, olmoe, qwen2moe): each token's FFN is the
     * n_expert_used experts of n_expert its router rates highest, of ffn_exp rows each (expert_
     * feed_forward_length, else ffn_dim), weighted by the router's probabilities (renormalized over
     * the chosen ones when the architecture says so); qwen2moe adds a shared expert of ffn_shexp */
    int n_expert, n_expert_used, ffn_exp, ffn_shexp;
    int rope_sections[4];             /* M-RoPE's sections (arch mrope), pairs per position component */
    float clamp_kqv;                  /* olmo: q, k and v clamped to [-clamp_kqv, clamp_kqv]; 0 = not */
    /* ALiBi (bloom, mpt, refact, jais): head h's scores get sm_alibi_slope_of(n_heads, max_alibi_bias, h)
     * times minus the distance of each position from the query's; the slopes' span (attention.max_alibi_bias;
     * 8 for bloom and refact); 0 = no ALiBi */
    float max_alibi_bias;
} sm_hparams;

/* What a tensor is for, whatever the architecture. Roles before
 * SM_T_LAYER_FIRST occur once per model, the rest once per layer. */
enum sm_tensor_role {
    SM_T_TOKEN_EMBD, SM_T_POS_EMBD, SM_T_OUTPUT_NORM, SM_T_OUTPUT_NORM_B, SM_T_OUTPUT, SM_T_OUTPUT_B,
    SM_T_ROPE_FREQS, SM_T_ROPE_LONG, SM_T_ROPE_SHORT,
    SM_T_TOKEN_EMBD_NORM, SM_T_TOKEN_EMBD_NORM_B,   /* a LayerNorm of the embeddings (bloom) */
    SM_T_LAYER_FIRST,
    SM_T_ATTN_NORM = SM_T_LAYER_FIRST, SM_T_ATTN_NORM_B,
    SM_T_ATTN_Q, SM_T_ATTN_K, SM_T_ATTN_V, SM_T_ATTN_QKV,
    SM_T_ATTN_Q_B, SM_T_ATTN_K_B, SM_T_ATTN_V_B, SM_T_ATTN_QKV_B,
    SM_T_ATTN_Q_NORM, SM_T_ATTN_K_NORM,
    SM_T_ATTN_OUT, SM_T_ATTN_OUT_B, SM_T_ATTN_POST_NORM,
    SM_T_FFN_NORM, SM_T_FFN_NORM_B,
    SM_T_FFN_GATE, SM_T_FFN_GATE_B, SM_T_FFN_UP, SM_T_FFN_UP_B, SM_T_FFN_DOWN, SM_T_FFN_DOWN_B, SM_T_FFN_POST_NORM,
    /* a mixture of experts: the router, each expert's matrices stacked in one 3-D tensor, a shared expert */
    SM_T_FFN_GATE_INP, SM_T_FFN_GATE_EXPS, SM_T_FFN_UP_EXPS, SM_T_FFN_DOWN_EXPS,
    SM_T_FFN_GATE_INP_SHEXP, SM_T_FFN_GATE_SHEXP, SM_T_FFN_UP_SHEXP, SM_T_FFN_DOWN_SHEXP,
    SM_T_COUNT
};

/* A length in a tensor's shape, in terms of the hyperparameters. */
enum sm_dim {
    SM_D_ONE, SM_D_EMBD, SM_D_Q /* heads x head size */, SM_D_KV /* KV heads x head size */,
    SM_D_QKV /* Q + 2 KV */, SM_D_FFN, SM_D_FFN2 /* 2 x FFN: gate and up in one */, SM_D_VOCAB, SM_D_CTX,
    SM_D_HEAD /* head size */, SM_D_ROPE_HALF /* half the rotated dimensions */,
    SM_D_EXPERTS /* n_expert */, SM_D_FFN_EXP /* an expert's FFN length */, SM_D_FFN_SHEXP /* the shared one's */,
    SM_D_HEADS /* n_heads */, SM_D_KV_HEADS /* n_kv_heads */
};

/* How init and training start a tensor. */
enum sm_init_kind { SM_INIT_RANDOM, SM_INIT_ONE, SM_INIT_ZERO };

/* Facts about a role that hold in every architecture (llama.cpp's
 * converter uses the same names for all of them). */
typedef struct sm_role_info {
    const char *name;     /* GGUF name; "%d" stands for the layer */
    uint8_t cols, rows;   /* enum sm_dim: ne[0] and ne[1]; rows SM_D_ONE for a vector */
    uint8_t init;         /* enum sm_init_kind */
    uint8_t decay;        /* weight decay applies in training */
    uint8_t mats;         /* enum sm_dim: ne[2] of a stack of matrices (experts), or 0 */
} sm_role_info;

enum sm_norm_kind { SM_NORM_RMS, SM_NORM_LAYER };
enum sm_ffn_kind {
    SM_FFN_SWIGLU,        /* down(silu(gate) * up) */
    SM_FFN_GEGLU,         /* down(gelu(gate) * up) */
    SM_FFN_GELU,          /* down(gelu(up)) */
    SM_FFN_SWIGLU_FUSED,  /* down(silu(g) * u), [g u] = up: one matrix of 2 x FFN rows (phi3) */
    SM_FFN_RELU2          /* down(relu(up)^2) (nemotron, arcee) */
};
enum sm_pos_kind {
    SM_POS_ROPE,          /* rotate adjacent pairs (x[2i], x[2i+1]) */
    SM_POS_ROPE_NEOX,     /* rotate the halves' pairs (x[i], x[i + rot/2]) */
    SM_POS_LEARNED,       /* a position embedding (mpt: optional, besides ALiBi) */
    SM_POS_ALIBI          /* no rotation: each head's scores biased by the distance (Press et al. 2022) */
};
/* Which layers attend through the sliding window (when n_swa > 0). */
enum sm_swa_kind { SM_SWA_ALL, SM_SWA_EVEN /* layers 0, 2, 4, ... (gemma2) */,
                   SM_SWA_FIVE_OF_SIX /* all but every sixth (gemma3) */,
                   SM_SWA_THREE_OF_FOUR /* all but every fourth (cohere2) */ };
/* Query and key norms: none, one weight per head size shared by all heads,
 * or one over the whole projection (olmo2), or a LayerNorm per head with
 * weights of its own (a [head size, heads] tensor). */
enum sm_qk_norm_kind { SM_QK_NORM_NONE, SM_QK_NORM_HEAD, SM_QK_NORM_FULL,
                       SM_QK_NORM_HEAD_LN /* a LayerNorm per head, each head its own weights (stablelm 12B) */ };

/* One metadata key an architecture reads, under its own prefix, into an
 * int or float field of sm_hparams (a boolean key into an int: 0 or 1).
 * A default of -1 means "derived" (see sm_arch_read_hparams). Writers
 * (init, train) write the keys marked written, with the model's values. */
enum sm_key_kind { SM_KEY_INT, SM_KEY_FLOAT, SM_KEY_BOOL };
typedef struct sm_arch_key {
    const char *key;      /* e.g. "attention.head_count_kv" */
    size_t field;         /* offsetof(sm_hparams, ...) */
    uint8_t kind, required, written;   /* kind: enum sm_key_kind */
    double lo, hi, dflt;
} sm_arch_key;

#define SM_ARCH_MAX_KEYS 24
#define SM_ARCH_MAX_TENSORS 32

/* Flags of a tensor in an architecture: optional; or a fused Q/K/V tensor
 * that a file may give apart instead (phi2: attn_q/k/v listed optional),
 * required otherwise (init and training from scratch write it). */
enum { SM_TF_OPTIONAL = 1, SM_TF_FUSED = 2, SM_TF_DENSE = 4, SM_TF_DEFAULT = 8 };
/* SM_TF_DEFAULT: optional in a file, but every other reader takes it as required: init and training write
 * it (stablelm's ffn_norm, which 12B's parallel blocks lack) */
/* SM_TF_DENSE: a dense FFN tensor that a mixture-of-experts file of the
 * architecture (Mixtral's llama) has experts instead of: required unless the
 * layer has ffn_gate_inp (the expert roles listed optional). */

typedef struct sm_arch_tensor {
    uint8_t role;         /* enum sm_tensor_role */
    uint8_t flags;
    uint8_t cols, rows;   /* enum sm_dim: this architecture's shape, where it differs from the role's (0) */
} sm_arch_tensor;

typedef struct sm_arch_info {
    const char *name;                      /* general.architecture */
    sm_arch_key keys[SM_ARCH_MAX_KEYS];    /* ends at key == NULL */
    sm_arch_tensor tensors[SM_ARCH_MAX_TENSORS];
    int n_tensors;
    /* features of the forward pass */
    uint8_t norm, ffn, pos, swa, qk_norm;
    uint8_t embd_scale;                    /* embeddings times sqrt(dim) (gemma): hp.embedding_scale */
    /* the sliding-window layers rotate with rope_base_local and no scaling
     * (gemma3); the others with rope_base and rope_freq_scale */
    uint8_t local_rope;
    /* llama.cpp scales queries by 1/sqrt(dim / heads) instead of
     * 1/sqrt(head size) for the model with this many layers (gemma 27B) */
    uint8_t q_scale_layers;
    /* llama.cpp's loader of this architecture wants output.weight even when
     * the head is tied: writers store a copy of the embedding */
    uint8_t write_tied_output;
    /* the models of this family use byte-level BPE (else SentencePiece):
     * the kind of vocabulary `init` builds in */
    uint8_t byte_level_vocab;
    /* llama.cpp's loader of this architecture requires attention.sliding_window
     * (a positive value): a model without a window is written with one as
     * long as its context, which changes nothing (phi3) */
    uint8_t write_window;
    /* every model of the architecture has a parallel residual (phi2); others
     * may say so in a key (gptneox's use_parallel_residual) */
    uint8_t parallel;
    /* a mixture of experts renormalizes the chosen experts' weights to sum to 1 */
    uint8_t moe_norm_weights;
    /* every nope_step-th layer has no RoPE (layer l when (l + 1) % nope_step == 0:
     * smollm3's NoPE layers, 4); 0: every layer rotates */
    uint8_t nope_step;
    /* the per-head q/k norms come after RoPE (hunyuan-dense), not before; the cached keys then cannot be
     * turned to new positions (the norm's weights do not commute with the rotation) */
    uint8_t qk_norm_after_rope;
    /* a vision-language model's language half (qwen2vl, qwen3vl): M-RoPE, rope.dimension_sections
     * splitting the pairs among the position's time, height and width; a text token has the same
     * position in all three, so its rotation is the plain NeoX one. The sections are kept for the file. */
    uint8_t mrope;
    /* the norms have no weight or bias (olmo's non-parametric LayerNorm): the loaded model points them at
     * ones and zeros (sm_model.plain_norm) */
    uint8_t norm_plain;
    /* the scores are scaled by 1 / head size, not its square root (jais: muP) */
    uint8_t q_scale_mup;
} sm_arch_info;

const sm_arch_info *sm_arch_get(int arch);
/* By general.architecture; -1 when unknown. */
int sm_arch_by_name(const char *name, size_t len);
/* "llama, gpt2, ..." - every architecture, for error messages. */
void sm_arch_names(char *buf, size_t cap);
const sm_role_info *sm_role(int role);

/* A role's GGUF name for layer l (ignored for model-wide roles). */
void sm_tensor_name(int role, int layer, char *buf, size_t cap);
/* The length a dimension symbol stands for. */
int64_t sm_dim_value(const sm_hparams *hp, int dim);
/* A tensor's shape in an architecture (rows 1 for a vector; rows of one
 * matrix of a stack). */
void sm_arch_tensor_shape(const sm_hparams *hp, const sm_arch_tensor *t, int64_t *cols, int64_t *rows);
/* How many matrices a tensor stacks (ne[2]: the experts), 0 for a 1- or 2-D tensor. */
int64_t sm_arch_tensor_mats(const sm_hparams *hp, const sm_arch_tensor *t);
/* Whether an architecture's models are mixtures of experts: never, where
 * the file has them (llama: Mixtral), or always. */
enum sm_experts_kind { SM_EXPERTS_NONE, SM_EXPERTS_OPTIONAL, SM_EXPERTS_ALWAYS };
int sm_arch_experts(const sm_arch_info *a);
/* Whether layer l of this model attends through the sliding window. */
int sm_layer_is_swa(const sm_hparams *hp, int layer);
/* Whether layer l of this model rotates its queries and keys (RoPE
 * architectures, except smollm3's NoPE layers). */
int sm_layer_has_rope(const sm_hparams *hp, int layer);
/* What the queries at position pos are multiplied by after RoPE (mistral3's
 * temperature tuning); 1 for the other architectures. */
float sm_attn_temp(const sm_hparams *hp, int pos);
/* ALiBi's slope of head h (ggml's rule, from the ALiBi paper: for the first n = 2^floor(log2 heads) heads
 * 2^(-max_bias (h + 1) / n), the rest interleaved between them); 0 without ALiBi. */
float sm_alibi_slope_of(int n_heads, float max_bias, int h);
/* Whether an architecture rotates queries and keys (RoPE in either pairing). */
int sm_arch_is_rope(const sm_arch_info *a);
/* Whether an architecture has this role (flags returned through *flags). */
int sm_arch_has(const sm_arch_info *a, int role, int *flags);

/* Reads every key of hp->arch (its prefix is the architecture's name) and
 * derives the rest (head size, defaults). n_vocab is the caller's. */
sm_status sm_arch_read_hparams(const struct sm_gguf *g, sm_hparams *hp, sm_error *err);
/* Checks a complete shape, with the loader's messages. */
sm_status sm_arch_check_hparams(const sm_hparams *hp, sm_status status, sm_error *err);
/* For a shape given by flags (init, training): every optional key the
 * caller left 0 at its default (head size and RoPE dimensions derived),
 * then what follows from them, checked the way the loader checks a file. */
sm_status sm_arch_finish_hparams(sm_hparams *hp, sm_status status, sm_error *err);
/* Whether the architecture reads a key into this field of sm_hparams. */
int sm_arch_has_key(const sm_arch_info *a, size_t field);
/* Writes the architecture's keys for hp (general.architecture is the
 * caller's, first, as llama.cpp's files have it). */
void sm_arch_write_hparams(struct sm_gguf_writer *w, const sm_hparams *hp);

#endif

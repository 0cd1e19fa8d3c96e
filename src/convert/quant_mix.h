/* quant_mix.h - the per-tensor type rules of llama-quantize's K-quant mixes
 * (Q2_K, Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, Q6_K, IQ4_XS): which weight
 * matrices llama.cpp quantizes, and which type each gets from its role (the
 * tensor name's role part: attn_v, ffn_down, output, ...), its layer and the
 * model's shape - so they hold for every architecture that uses llama.cpp's
 * tensor names. */
#ifndef SM_CONVERT_QUANT_MIX_H
#define SM_CONVERT_QUANT_MIX_H

#include <stdint.h>

typedef struct sm_quant_mix {
    const char *name;        /* as llama-quantize spells it: "Q4_K_M" */
    uint32_t ftype;          /* llama.cpp's general.file_type (LLAMA_FTYPE_MOSTLY_*) */
    uint32_t base;           /* the type of every matrix no rule moves */
} sm_quant_mix;

/* What the rules need to know of the model. */
typedef struct sm_mix_model {
    int n_layer;             /* transformer blocks */
    int n_gqa;               /* query heads per key/value head */
    int has_output;          /* an output.weight exists (else token_embd is the output) */
    int n_expert;            /* experts per layer (0: a dense model); llama.cpp bumps Mixtral's 8 */
} sm_mix_model;

/* The mix of that name (case-insensitive), or NULL. */
const sm_quant_mix *sm_quant_mix_find(const char *name);
/* "Q2_K, Q3_K_S, ..." for messages. */
const char *sm_quant_mix_names(void);
/* Whether llama-quantize converts a tensor of this name and rank (weight
 * matrices; not norms, position embeddings or expert routers). */
int sm_quant_mix_converts(const char *name, int n_dims);
/* The type a converted tensor gets. cols is its row length; writable(t)
 * says whether this build can write type t (the rules' fallbacks for rows
 * that do not divide into 256 name types that may be missing). */
uint32_t sm_quant_mix_type(const sm_quant_mix *mix, const char *name, int64_t cols, const sm_mix_model *mm,
                           int (*writable)(uint32_t type));

#endif

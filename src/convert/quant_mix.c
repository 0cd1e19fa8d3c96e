/* quant_mix.c - see quant_mix.h. The rules are llama.cpp's (src/
 * llama-quant.cpp at c392e509: llama_tensor_get_type and the "quantize this
 * tensor?" test of llama_model_quantize_impl), restated as a table for the
 * mixes listed below; a layer's position is its blk.N index (llama.cpp counts
 * tensors in layer order, which is the same, and parses blk.N itself in
 * models with experts). Models of exactly 8 experts (Mixtral's count, and
 * OLMoE's) take llama.cpp's own rules for attn_v, attn_k and attn_output
 * (rules8 below). Left out: the 70B-only attn_v bump (llama.cpp keys it on
 * the model size class), the Falcon rules and importance matrices. */
#include "quant_mix.h"
#include "kernels/types.h"

#include <stdio.h>
#include <string.h>

/* llama.h's LLAMA_FTYPE_MOSTLY_* */
enum { FT_Q2_K = 10, FT_Q3_K_S = 11, FT_Q3_K_M = 12, FT_Q3_K_L = 13, FT_Q4_K_S = 14, FT_Q4_K_M = 15,
       FT_Q5_K_S = 16, FT_Q5_K_M = 17, FT_Q6_K = 18, FT_IQ4_XS = 30 };

static const sm_quant_mix mixes[] = {
    {"Q2_K", FT_Q2_K, SM_GGML_Q2_K},       {"Q3_K_S", FT_Q3_K_S, SM_GGML_Q3_K}, {"Q3_K_M", FT_Q3_K_M, SM_GGML_Q3_K},
    {"Q3_K_L", FT_Q3_K_L, SM_GGML_Q3_K},   {"Q4_K_S", FT_Q4_K_S, SM_GGML_Q4_K}, {"Q4_K_M", FT_Q4_K_M, SM_GGML_Q4_K},
    {"Q5_K_S", FT_Q5_K_S, SM_GGML_Q5_K},   {"Q5_K_M", FT_Q5_K_M, SM_GGML_Q5_K}, {"Q6_K", FT_Q6_K, SM_GGML_Q6_K},
    {"IQ4_XS", FT_IQ4_XS, SM_GGML_IQ4_XS},
};

/* When a rule applies, by layer i of n (and the model's grouping). */
enum when {
    ALWAYS,
    MORE_BITS,      /* llama.cpp's use_more_bits: the first and last eighth, and every third layer between */
    FIRST_8TH,      /* i < n / 8 */
    FIRST_16TH,     /* i < n / 16 */
    FIRST_2,        /* i < 2 */
    FIRST_4,        /* i < 4 */
    GQA_4,          /* at least 4 query heads per key/value head */
};
#define BASE 0xFFFFu   /* the mix's base type */

/* role: a part of the tensor name (llama.cpp matches substrings); then the
 * type when the condition holds and when it does not */
typedef struct rule { const char *role; uint32_t ftype; enum when when; uint32_t yes, no; } rule;

static const rule rules[] = {
    {"attn_v.weight", FT_Q2_K, GQA_4, SM_GGML_Q4_K, SM_GGML_Q3_K},
    {"attn_v.weight", FT_Q3_K_M, FIRST_2, SM_GGML_Q5_K, SM_GGML_Q4_K},
    {"attn_v.weight", FT_Q3_K_L, ALWAYS, SM_GGML_Q5_K, BASE},
    {"attn_v.weight", FT_IQ4_XS, GQA_4, SM_GGML_Q5_K, BASE},
    {"attn_v.weight", FT_Q4_K_M, MORE_BITS, SM_GGML_Q6_K, BASE},
    {"attn_v.weight", FT_Q5_K_M, MORE_BITS, SM_GGML_Q6_K, BASE},
    {"attn_v.weight", FT_Q4_K_S, FIRST_4, SM_GGML_Q5_K, BASE},
    {"ffn_down", FT_Q2_K, ALWAYS, SM_GGML_Q3_K, BASE},
    {"ffn_down", FT_Q3_K_M, FIRST_16TH, SM_GGML_Q5_K, SM_GGML_Q4_K},
    {"ffn_down", FT_Q3_K_L, ALWAYS, SM_GGML_Q5_K, BASE},
    {"ffn_down", FT_Q4_K_M, MORE_BITS, SM_GGML_Q6_K, BASE},
    {"ffn_down", FT_IQ4_XS, FIRST_8TH, SM_GGML_Q5_K, BASE},
    {"ffn_down", FT_Q5_K_M, MORE_BITS, SM_GGML_Q6_K, BASE},
    {"ffn_down", FT_Q4_K_S, FIRST_8TH, SM_GGML_Q5_K, BASE},
    {"attn_output.weight", FT_Q2_K, ALWAYS, SM_GGML_Q3_K, BASE},
    {"attn_output.weight", FT_Q3_K_M, ALWAYS, SM_GGML_Q4_K, BASE},
    {"attn_output.weight", FT_Q3_K_L, ALWAYS, SM_GGML_Q5_K, BASE},
    {"attn_qkv.weight", FT_Q3_K_M, ALWAYS, SM_GGML_Q4_K, BASE},
    {"attn_qkv.weight", FT_Q3_K_L, ALWAYS, SM_GGML_Q4_K, BASE},
    {"attn_qkv.weight", FT_Q4_K_M, ALWAYS, SM_GGML_Q5_K, BASE},
    {"attn_qkv.weight", FT_Q5_K_M, ALWAYS, SM_GGML_Q6_K, BASE},
};

/* In a model of 8 experts these replace the rules above for their roles
 * (attn_v and attn_k Q8_0 in every mix, attn_output Q5_K in the lower ones
 * and the base type in the others): llama.cpp's n_expert == 8 branches. */
static const rule rules8[] = {
    {"attn_v.weight", 0, ALWAYS, SM_GGML_Q8_0, BASE},
    {"attn_k.weight", 0, ALWAYS, SM_GGML_Q8_0, BASE},
    {"attn_output.weight", FT_Q2_K, ALWAYS, SM_GGML_Q5_K, BASE},
    {"attn_output.weight", FT_Q3_K_S, ALWAYS, SM_GGML_Q5_K, BASE},
    {"attn_output.weight", FT_Q3_K_M, ALWAYS, SM_GGML_Q5_K, BASE},
    {"attn_output.weight", FT_Q4_K_S, ALWAYS, SM_GGML_Q5_K, BASE},
    {"attn_output.weight", FT_Q4_K_M, ALWAYS, SM_GGML_Q5_K, BASE},
    {"attn_output.weight", FT_IQ4_XS, ALWAYS, SM_GGML_Q5_K, BASE},
    {"attn_output.weight", 0, ALWAYS, BASE, BASE},   /* the other mixes: no bump */
};

/* llama.cpp checks the roles in this order and applies the first that the
 * name contains (only its rules for the file type, if any) */
static const char *const role_order[] = {"attn_v.weight", "attn_k.weight", "attn_q.weight", "ffn_down",
                                         "attn_output.weight", "attn_qkv.weight", "ffn_gate", "ffn_up"};

static int same_name(const char *a, const char *b) {
    while (*a && *b && (*a | 0x20) == (*b | 0x20)) a++, b++;
    return !*a && !*b;
}

const sm_quant_mix *sm_quant_mix_find(const char *name) {
    for (size_t i = 0; name && i < sizeof mixes / sizeof mixes[0]; i++)
        if (same_name(name, mixes[i].name)) return &mixes[i];
    return NULL;
}

const char *sm_quant_mix_names(void) { return "Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, IQ4_XS"; }

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

int sm_quant_mix_converts(const char *name, int n_dims) {
    return n_dims >= 2 && ends_with(name, "weight") && !strstr(name, "_norm.weight") &&
           strcmp(name, "position_embd.weight") && strcmp(name, "token_types.weight") && !strstr(name, "ffn_gate_inp.weight");
}

static int holds(enum when w, int i, int n, int gqa) {
    switch (w) {
    case ALWAYS: return 1;
    case MORE_BITS: return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
    case FIRST_8TH: return i < n / 8;
    case FIRST_16TH: return i < n / 16;
    case FIRST_2: return i < 2;
    case FIRST_4: return i < 4;
    case GQA_4: return gqa >= 4;
    }
    return 0;
}

#define N8 (sizeof rules8 / sizeof rules8[0])

/* The first rule of a table for this role and mix (ftype 0: any mix). */
static const rule *find_rule(const rule *table, size_t n, uint32_t ftype, const char *role) {
    for (size_t r = 0; r < n; r++)
        if ((table[r].ftype == ftype || !table[r].ftype) && !strcmp(table[r].role, role)) return &table[r];
    return NULL;
}

/* llama.cpp's replacement for a type whose blocks do not divide the rows */
static uint32_t fallback(uint32_t t) {
    switch (t) {
    case SM_GGML_Q4_K: return SM_GGML_Q5_0;
    case SM_GGML_Q5_K: return SM_GGML_Q5_1;
    case SM_GGML_Q6_K: return SM_GGML_Q8_0;
    default: return SM_GGML_IQ4_NL;   /* Q2_K, Q3_K, IQ4_XS */
    }
}

uint32_t sm_quant_mix_type(const sm_quant_mix *mix, const char *name, int64_t cols, const sm_mix_model *mm,
                           int (*writable)(uint32_t type)) {
    uint32_t t = mix->base;
    if (!strcmp(name, "output.weight") || (!mm->has_output && !strcmp(name, "token_embd.weight"))) {
        /* the output matrix (or the embedding that serves as it) */
        t = cols % sm_type(t)->blck ? SM_GGML_Q8_0 : SM_GGML_Q6_K;
    } else if (strcmp(name, "token_embd.weight")) {
        int layer = -1;
        sscanf(name, "blk.%d.", &layer);
        for (size_t o = 0; o < sizeof role_order / sizeof role_order[0]; o++) {
            if (!strstr(name, role_order[o])) continue;
            const rule *r = find_rule(mm->n_expert == 8 ? rules8 : NULL, mm->n_expert == 8 ? N8 : 0, mix->ftype,
                                      role_order[o]);
            if (!r) r = find_rule(rules, sizeof rules / sizeof rules[0], mix->ftype, role_order[o]);
            if (r) {
                uint32_t pick = holds(r->when, layer, mm->n_layer, mm->n_gqa) ? r->yes : r->no;
                t = pick == BASE ? mix->base : pick;
            }
            break;
        }
    }
    if (cols % sm_type(t)->blck) {
        uint32_t f = sm_type(t)->blck == 256 ? fallback(t) : SM_GGML_F16;
        if (f != SM_GGML_F16 && !writable(f)) f = SM_GGML_Q8_0;   /* a 32-element type this build lacks */
        t = cols % sm_type(f)->blck ? SM_GGML_F16 : f;
    }
    return t;
}

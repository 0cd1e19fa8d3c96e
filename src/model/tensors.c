/* tensors.c - where each tensor role (arch.h) lives in a loaded model:
 * one table from role to the field of sm_model or sm_layer that holds it. */
#include "model.h"

#include <stddef.h>

typedef struct slot {
    uint8_t in_layer, is_matrix;
    size_t offset;
} slot;

#define GLOBAL_M(f) {0, 1, offsetof(sm_model, f)}
#define GLOBAL_V(f) {0, 0, offsetof(sm_model, f)}
#define LAYER_M(f) {1, 1, offsetof(sm_layer, f)}
#define LAYER_V(f) {1, 0, offsetof(sm_layer, f)}

static const slot slots[SM_T_COUNT] = {
    [SM_T_TOKEN_EMBD] = GLOBAL_M(tok_embd),
    [SM_T_POS_EMBD] = GLOBAL_M(pos_embd),
    [SM_T_OUTPUT_NORM] = GLOBAL_V(output_norm),
    [SM_T_OUTPUT_NORM_B] = GLOBAL_V(output_norm_b),
    [SM_T_OUTPUT] = GLOBAL_M(output),
    [SM_T_OUTPUT_B] = GLOBAL_V(output_b),
    [SM_T_ROPE_FREQS] = GLOBAL_V(rope_freqs),
    [SM_T_ROPE_LONG] = GLOBAL_V(rope_long),
    [SM_T_ROPE_SHORT] = GLOBAL_V(rope_short),
    [SM_T_TOKEN_EMBD_NORM] = GLOBAL_V(tok_norm),
    [SM_T_TOKEN_EMBD_NORM_B] = GLOBAL_V(tok_norm_b),
    [SM_T_ATTN_NORM] = LAYER_V(attn_norm),
    [SM_T_ATTN_NORM_B] = LAYER_V(attn_norm_b),
    [SM_T_ATTN_Q] = LAYER_M(wq),
    [SM_T_ATTN_K] = LAYER_M(wk),
    [SM_T_ATTN_V] = LAYER_M(wv),
    [SM_T_ATTN_QKV] = LAYER_M(wqkv),
    [SM_T_ATTN_Q_B] = LAYER_V(b_q),
    [SM_T_ATTN_K_B] = LAYER_V(b_k),
    [SM_T_ATTN_V_B] = LAYER_V(b_v),
    [SM_T_ATTN_QKV_B] = LAYER_V(b_qkv),
    [SM_T_ATTN_Q_NORM] = LAYER_V(q_norm),
    [SM_T_ATTN_K_NORM] = LAYER_V(k_norm),
    [SM_T_ATTN_OUT] = LAYER_M(wo),
    [SM_T_ATTN_POST_NORM] = LAYER_V(attn_post_norm),
    [SM_T_ATTN_OUT_B] = LAYER_V(b_o),
    [SM_T_FFN_NORM] = LAYER_V(ffn_norm),
    [SM_T_FFN_NORM_B] = LAYER_V(ffn_norm_b),
    [SM_T_FFN_GATE] = LAYER_M(w_gate),
    [SM_T_FFN_UP] = LAYER_M(w_up),
    [SM_T_FFN_GATE_B] = LAYER_V(b_gate),
    [SM_T_FFN_UP_B] = LAYER_V(b_up),
    [SM_T_FFN_DOWN] = LAYER_M(w_down),
    [SM_T_FFN_DOWN_B] = LAYER_V(b_down),
    [SM_T_FFN_POST_NORM] = LAYER_V(ffn_post_norm),
    [SM_T_FFN_GATE_INP] = LAYER_M(ffn_gate_inp),
    [SM_T_FFN_GATE_EXPS] = LAYER_M(gate_exps),
    [SM_T_FFN_UP_EXPS] = LAYER_M(up_exps),
    [SM_T_FFN_DOWN_EXPS] = LAYER_M(down_exps),
    [SM_T_FFN_GATE_INP_SHEXP] = LAYER_V(gate_inp_shexp),
    [SM_T_FFN_GATE_SHEXP] = LAYER_M(gate_shexp),
    [SM_T_FFN_UP_SHEXP] = LAYER_M(up_shexp),
    [SM_T_FFN_DOWN_SHEXP] = LAYER_M(down_shexp),
};

static char *slot_addr(sm_model *m, int role, int layer) {
    const slot *s = &slots[role];
    return (s->in_layer ? (char *)&m->layers[layer] : (char *)m) + s->offset;
}

sm_matrix *sm_model_matrix(sm_model *m, int role, int layer) {
    return role >= 0 && role < SM_T_COUNT && slots[role].is_matrix ? (sm_matrix *)slot_addr(m, role, layer) : NULL;
}

const float **sm_model_vector(sm_model *m, int role, int layer) {
    return role >= 0 && role < SM_T_COUNT && !slots[role].is_matrix ? (const float **)slot_addr(m, role, layer) : NULL;
}

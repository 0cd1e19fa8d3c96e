/* arch.c - the architecture tables (see arch.h). Metadata keys, tensor
 * names and shapes are those llama.cpp's converter and loader use
 * (gguf-py/gguf/constants.py and src/llama-model.cpp at c392e509), so files
 * move between the two engines; qwen3 and gemma3 postdate that snapshot and
 * follow the names its successors and Hugging Face's definitions use. */
#include "arch.h"
#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_write.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define F(field) offsetof(sm_hparams, field)
#define DERIVED (-1)
/* required, written by init/train, optional but written, optional */
#define KEY(k, field, lo, hi) {k, F(field), SM_KEY_INT, 1, 1, lo, hi, 0}
#define OPT_INT(k, field, lo, hi, dflt) {k, F(field), SM_KEY_INT, 0, 1, lo, hi, dflt}
#define OPT_FLT(k, field, lo, hi, dflt) {k, F(field), SM_KEY_FLOAT, 0, 1, lo, hi, dflt}
#define OPT_BOOL(k, field, dflt) {k, F(field), SM_KEY_BOOL, 0, 1, 0, 1, dflt}
#define READ_INT(k, field, lo, hi, dflt) {k, F(field), SM_KEY_INT, 0, 0, lo, hi, dflt}
#define READ_FLT(k, field, lo, hi, dflt) {k, F(field), SM_KEY_FLOAT, 0, 0, lo, hi, dflt}

/* The keys every architecture has, with its own context limit. */
#define COMMON_KEYS(max_ctx)                                                      \
    KEY("context_length", n_ctx_train, 1, max_ctx),                               \
    KEY("embedding_length", dim, 1, 1 << 16),                                     \
    KEY("block_count", n_layers, 1, 1024),                                        \
    KEY("feed_forward_length", ffn_dim, 1, 1 << 20),                              \
    KEY("attention.head_count", n_heads, 1, 1 << 16)
#define KV_HEADS OPT_INT("attention.head_count_kv", n_kv_heads, 1, 1 << 16, DERIVED)
#define HEAD_SIZE READ_INT("attention.key_length", head_dim, 1, 1 << 16, DERIVED)
#define ROPE_DIMS OPT_INT("rope.dimension_count", rope_dim, 0, 1 << 16, DERIVED)
#define ROPE_BASE OPT_FLT("rope.freq_base", rope_base, 1e-3, 1e12, 10000.0)
#define RMS_EPS OPT_FLT("attention.layer_norm_rms_epsilon", norm_eps, 0.0, 1.0, 1e-5)
#define LN_EPS OPT_FLT("attention.layer_norm_epsilon", norm_eps, 0.0, 1.0, 1e-5)
#define WINDOW(dflt) READ_INT("attention.sliding_window", n_swa, 0, 1 << 30, dflt)
/* a RoPE model's keys, before its own */
#define ROPE_KEYS(max_ctx) COMMON_KEYS(max_ctx), KV_HEADS, ROPE_DIMS, ROPE_BASE, HEAD_SIZE

static const sm_role_info roles[SM_T_COUNT] = {
    [SM_T_TOKEN_EMBD] = {"token_embd.weight", SM_D_EMBD, SM_D_VOCAB, SM_INIT_RANDOM, 0},
    [SM_T_POS_EMBD] = {"position_embd.weight", SM_D_EMBD, SM_D_CTX, SM_INIT_RANDOM, 0},
    [SM_T_OUTPUT_NORM] = {"output_norm.weight", SM_D_EMBD, SM_D_ONE, SM_INIT_ONE, 0},
    [SM_T_OUTPUT_NORM_B] = {"output_norm.bias", SM_D_EMBD, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_OUTPUT] = {"output.weight", SM_D_EMBD, SM_D_VOCAB, SM_INIT_RANDOM, 1},
    [SM_T_OUTPUT_B] = {"output.bias", SM_D_VOCAB, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_ROPE_FREQS] = {"rope_freqs.weight", SM_D_ROPE_HALF, SM_D_ONE, SM_INIT_ONE, 0},
    [SM_T_ROPE_LONG] = {"rope_factors_long.weight", SM_D_ROPE_HALF, SM_D_ONE, SM_INIT_ONE, 0},
    [SM_T_ROPE_SHORT] = {"rope_factors_short.weight", SM_D_ROPE_HALF, SM_D_ONE, SM_INIT_ONE, 0},
    [SM_T_TOKEN_EMBD_NORM] = {"token_embd_norm.weight", SM_D_EMBD, SM_D_ONE, SM_INIT_ONE, 0},
    [SM_T_TOKEN_EMBD_NORM_B] = {"token_embd_norm.bias", SM_D_EMBD, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_ATTN_NORM] = {"blk.%d.attn_norm.weight", SM_D_EMBD, SM_D_ONE, SM_INIT_ONE, 0},
    [SM_T_ATTN_NORM_B] = {"blk.%d.attn_norm.bias", SM_D_EMBD, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_ATTN_Q] = {"blk.%d.attn_q.weight", SM_D_EMBD, SM_D_Q, SM_INIT_RANDOM, 1},
    [SM_T_ATTN_K] = {"blk.%d.attn_k.weight", SM_D_EMBD, SM_D_KV, SM_INIT_RANDOM, 1},
    [SM_T_ATTN_V] = {"blk.%d.attn_v.weight", SM_D_EMBD, SM_D_KV, SM_INIT_RANDOM, 1},
    [SM_T_ATTN_QKV] = {"blk.%d.attn_qkv.weight", SM_D_EMBD, SM_D_QKV, SM_INIT_RANDOM, 1},
    [SM_T_ATTN_Q_B] = {"blk.%d.attn_q.bias", SM_D_Q, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_ATTN_K_B] = {"blk.%d.attn_k.bias", SM_D_KV, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_ATTN_V_B] = {"blk.%d.attn_v.bias", SM_D_KV, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_ATTN_QKV_B] = {"blk.%d.attn_qkv.bias", SM_D_QKV, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_ATTN_Q_NORM] = {"blk.%d.attn_q_norm.weight", SM_D_HEAD, SM_D_ONE, SM_INIT_ONE, 0},
    [SM_T_ATTN_K_NORM] = {"blk.%d.attn_k_norm.weight", SM_D_HEAD, SM_D_ONE, SM_INIT_ONE, 0},
    [SM_T_ATTN_OUT] = {"blk.%d.attn_output.weight", SM_D_Q, SM_D_EMBD, SM_INIT_RANDOM, 1},
    [SM_T_ATTN_OUT_B] = {"blk.%d.attn_output.bias", SM_D_EMBD, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_ATTN_POST_NORM] = {"blk.%d.post_attention_norm.weight", SM_D_EMBD, SM_D_ONE, SM_INIT_ONE, 0},
    [SM_T_FFN_NORM] = {"blk.%d.ffn_norm.weight", SM_D_EMBD, SM_D_ONE, SM_INIT_ONE, 0},
    [SM_T_FFN_NORM_B] = {"blk.%d.ffn_norm.bias", SM_D_EMBD, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_FFN_GATE] = {"blk.%d.ffn_gate.weight", SM_D_EMBD, SM_D_FFN, SM_INIT_RANDOM, 1},
    [SM_T_FFN_GATE_B] = {"blk.%d.ffn_gate.bias", SM_D_FFN, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_FFN_UP] = {"blk.%d.ffn_up.weight", SM_D_EMBD, SM_D_FFN, SM_INIT_RANDOM, 1},
    [SM_T_FFN_UP_B] = {"blk.%d.ffn_up.bias", SM_D_FFN, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_FFN_DOWN] = {"blk.%d.ffn_down.weight", SM_D_FFN, SM_D_EMBD, SM_INIT_RANDOM, 1},
    [SM_T_FFN_DOWN_B] = {"blk.%d.ffn_down.bias", SM_D_EMBD, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_FFN_POST_NORM] = {"blk.%d.post_ffw_norm.weight", SM_D_EMBD, SM_D_ONE, SM_INIT_ONE, 0},
    [SM_T_FFN_GATE_INP] = {"blk.%d.ffn_gate_inp.weight", SM_D_EMBD, SM_D_EXPERTS, SM_INIT_RANDOM, 1},
    [SM_T_FFN_GATE_EXPS] = {"blk.%d.ffn_gate_exps.weight", SM_D_EMBD, SM_D_FFN_EXP, SM_INIT_RANDOM, 1, SM_D_EXPERTS},
    [SM_T_FFN_UP_EXPS] = {"blk.%d.ffn_up_exps.weight", SM_D_EMBD, SM_D_FFN_EXP, SM_INIT_RANDOM, 1, SM_D_EXPERTS},
    [SM_T_FFN_DOWN_EXPS] = {"blk.%d.ffn_down_exps.weight", SM_D_FFN_EXP, SM_D_EMBD, SM_INIT_RANDOM, 1, SM_D_EXPERTS},
    [SM_T_FFN_GATE_INP_SHEXP] = {"blk.%d.ffn_gate_inp_shexp.weight", SM_D_EMBD, SM_D_ONE, SM_INIT_RANDOM, 1},
    [SM_T_FFN_GATE_SHEXP] = {"blk.%d.ffn_gate_shexp.weight", SM_D_EMBD, SM_D_FFN_SHEXP, SM_INIT_RANDOM, 1},
    [SM_T_FFN_UP_SHEXP] = {"blk.%d.ffn_up_shexp.weight", SM_D_EMBD, SM_D_FFN_SHEXP, SM_INIT_RANDOM, 1},
    [SM_T_FFN_DOWN_SHEXP] = {"blk.%d.ffn_down_shexp.weight", SM_D_FFN_SHEXP, SM_D_EMBD, SM_INIT_RANDOM, 1},
};

#define T(role) {role, 0, 0, 0}
#define OPT(role) {role, SM_TF_OPTIONAL, 0, 0}
#define FUSED(role) {role, SM_TF_FUSED, 0, 0}
#define DENSE(role) {role, SM_TF_DENSE, 0, 0}
/* a mixture of experts: the router and the stacked experts */
#define EXPERTS T(SM_T_FFN_GATE_INP), T(SM_T_FFN_GATE_EXPS), T(SM_T_FFN_UP_EXPS), T(SM_T_FFN_DOWN_EXPS)
#define OPT_EXPERTS OPT(SM_T_FFN_GATE_INP), OPT(SM_T_FFN_GATE_EXPS), OPT(SM_T_FFN_UP_EXPS), OPT(SM_T_FFN_DOWN_EXPS)
/* llama.cpp reads these for every architecture; expert_feed_forward_length where its loader does */
#define EXPERT_KEYS                                                                \
    READ_INT("expert_count", n_expert, 0, 1024, 0),                               \
    READ_INT("expert_used_count", n_expert_used, 0, 1024, 0)
#define EXPERT_FFN READ_INT("expert_feed_forward_length", ffn_exp, 0, 1 << 20, 0)
#define SHAPED(role, cols, rows) {role, 0, cols, rows}

/* A tensor list and its length. */
#define TENSORS(...) {__VA_ARGS__}, (int)(sizeof((sm_arch_tensor[]){__VA_ARGS__}) / sizeof(sm_arch_tensor))

/* Tensors several architectures share. */
#define GLOBALS T(SM_T_TOKEN_EMBD), T(SM_T_OUTPUT_NORM)
#define QKV_SPLIT T(SM_T_ATTN_Q), T(SM_T_ATTN_K), T(SM_T_ATTN_V)
#define GATED_FFN T(SM_T_FFN_GATE), T(SM_T_FFN_UP), T(SM_T_FFN_DOWN)
/* a LayerNorm block with Q/K/V apart and an ungated FFN, its biases required (T: starcoder2) or not (OPT:
 * nemotron) */
#define LN_LAYER(B)                                                                                            \
    T(SM_T_ATTN_NORM), T(SM_T_ATTN_NORM_B), QKV_SPLIT, B(SM_T_ATTN_Q_B), B(SM_T_ATTN_K_B), B(SM_T_ATTN_V_B),   \
        T(SM_T_ATTN_OUT), B(SM_T_ATTN_OUT_B), T(SM_T_FFN_NORM), T(SM_T_FFN_NORM_B), T(SM_T_FFN_UP),            \
        B(SM_T_FFN_UP_B), T(SM_T_FFN_DOWN), B(SM_T_FFN_DOWN_B)
/* GPT-2's block: LayerNorms, a fused QKV, an ungated FFN, each with its bias, required (T: gpt2, starcoder, bloom,
 * codeshell) or not (OPT: mpt) */
#define GPT2_LAYER(B)                                                                                           \
    T(SM_T_ATTN_NORM), B(SM_T_ATTN_NORM_B), T(SM_T_ATTN_QKV), B(SM_T_ATTN_QKV_B), T(SM_T_ATTN_OUT),             \
        B(SM_T_ATTN_OUT_B), T(SM_T_FFN_NORM), B(SM_T_FFN_NORM_B), T(SM_T_FFN_UP), B(SM_T_FFN_UP_B),             \
        T(SM_T_FFN_DOWN), B(SM_T_FFN_DOWN_B)
/* a llama block without options: pre-norms, Q/K/V apart, SwiGLU (smollm3, exaone, internlm2, minicpm) */
#define LLAMA_LAYER T(SM_T_ATTN_NORM), QKV_SPLIT, T(SM_T_ATTN_OUT), T(SM_T_FFN_NORM), GATED_FFN

/* Qwen2, Qwen3 and Qwen3-MoE, each also as a vision-language model's language half (mrope 1: Qwen2-VL and
 * Qwen2.5-VL, Qwen3-VL, Qwen3-VL-MoE, run on text) */
#define QWEN2_ROW(name, mrope)                                                                               \
    {name, {ROPE_KEYS(1 << 24), RMS_EPS},                                                                   \
     TENSORS(GLOBALS, OPT(SM_T_OUTPUT), T(SM_T_ATTN_NORM), QKV_SPLIT, T(SM_T_ATTN_Q_B), T(SM_T_ATTN_K_B),   \
             T(SM_T_ATTN_V_B), T(SM_T_ATTN_OUT), T(SM_T_FFN_NORM), GATED_FFN),                             \
     SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, \
     mrope}
#define QWEN3_ROW(name, mrope)                                                                               \
    {name, {ROPE_KEYS(1 << 24), RMS_EPS},                                                                   \
     TENSORS(GLOBALS, OPT(SM_T_OUTPUT), T(SM_T_ATTN_NORM), QKV_SPLIT, T(SM_T_ATTN_Q_NORM),                  \
             T(SM_T_ATTN_K_NORM), T(SM_T_ATTN_OUT), T(SM_T_FFN_NORM), GATED_FFN),                          \
     SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_HEAD, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, \
     mrope}
#define QWEN3MOE_ROW(name, mrope)                                                                            \
    {name, {ROPE_KEYS(1 << 24), RMS_EPS, EXPERT_KEYS, EXPERT_FFN},                                          \
     TENSORS(GLOBALS, OPT(SM_T_OUTPUT), T(SM_T_ATTN_NORM), QKV_SPLIT, T(SM_T_ATTN_Q_NORM),                  \
             T(SM_T_ATTN_K_NORM), T(SM_T_ATTN_OUT), T(SM_T_FFN_NORM), EXPERTS),                            \
     SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_HEAD, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, \
     mrope}

/* Each entry: name, keys, tensors, then norm, ffn, pos, swa,
 * qk_norm, embd_scale, local_rope, q_scale_layers, write_tied_output,
 * byte_level_vocab, write_window, parallel, moe_norm_weights, nope_step,
 * qk_norm_after_rope, mrope, norm_plain, q_scale_mup. */
static const sm_arch_info archs[SM_ARCH_COUNT] = {
    /* Llama 1-3, Mistral, and Mixtral's mixture of experts in place of the dense FFN */
    [SM_ARCH_LLAMA] = {
        "llama",
        {ROPE_KEYS(1 << 24), RMS_EPS, WINDOW(0), EXPERT_KEYS},
        TENSORS(GLOBALS, OPT(SM_T_OUTPUT), OPT(SM_T_ROPE_FREQS), OPT(SM_T_ROPE_LONG), OPT(SM_T_ROPE_SHORT),
         T(SM_T_ATTN_NORM), QKV_SPLIT, OPT(SM_T_ATTN_Q_B), OPT(SM_T_ATTN_K_B), OPT(SM_T_ATTN_V_B),
         T(SM_T_ATTN_OUT), OPT(SM_T_ATTN_OUT_B), T(SM_T_FFN_NORM), DENSE(SM_T_FFN_GATE), DENSE(SM_T_FFN_UP),
         DENSE(SM_T_FFN_DOWN), OPT(SM_T_FFN_GATE_B), OPT(SM_T_FFN_UP_B), OPT(SM_T_FFN_DOWN_B), OPT_EXPERTS),
        SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 0, 0, 0, 1,
    },
    [SM_ARCH_GPT2] = {
        "gpt2",
        {COMMON_KEYS(1 << 20), LN_EPS},
        TENSORS(GLOBALS, T(SM_T_POS_EMBD), T(SM_T_OUTPUT_NORM_B), OPT(SM_T_OUTPUT),
         GPT2_LAYER(T)),
        SM_NORM_LAYER, SM_FFN_GELU, SM_POS_LEARNED, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 1, 1, 0,
    },
    [SM_ARCH_QWEN2] = QWEN2_ROW("qwen2", 0),
    [SM_ARCH_QWEN3] = QWEN3_ROW("qwen3", 0),
    /* Phi-3, Phi-3.5, Phi-4-mini (tied: no output.weight, which llama.cpp c392e509's loader wants, so
     * writers store a copy; RoPE on part of each head) */
    [SM_ARCH_PHI3] = {
        "phi3",
        {ROPE_KEYS(1 << 24), RMS_EPS, WINDOW(0)},
        TENSORS(GLOBALS, OPT(SM_T_OUTPUT), OPT(SM_T_ROPE_LONG), OPT(SM_T_ROPE_SHORT), T(SM_T_ATTN_NORM),
         T(SM_T_ATTN_QKV), T(SM_T_ATTN_OUT), T(SM_T_FFN_NORM), SHAPED(SM_T_FFN_UP, SM_D_EMBD, SM_D_FFN2),
         T(SM_T_FFN_DOWN)),
        SM_NORM_RMS, SM_FFN_SWIGLU_FUSED, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 1, 0, 1,
    },
    [SM_ARCH_GEMMA] = {
        "gemma",
        {ROPE_KEYS(1 << 24), RMS_EPS},
        TENSORS(GLOBALS, T(SM_T_ATTN_NORM), QKV_SPLIT, T(SM_T_ATTN_OUT), T(SM_T_FFN_NORM), GATED_FFN),
        SM_NORM_RMS, SM_FFN_GEGLU, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_NONE, 1, 0, 0, 0, 0, 0,
    },
    [SM_ARCH_GEMMA2] = {
        "gemma2",
        {ROPE_KEYS(1 << 24), RMS_EPS, WINDOW(4096),
         READ_FLT("attn_logit_softcapping", attn_softcap, 0.0, 1e9, 50.0),
         READ_FLT("final_logit_softcapping", final_softcap, 0.0, 1e9, 30.0)},
        TENSORS(GLOBALS, T(SM_T_ATTN_NORM), QKV_SPLIT, T(SM_T_ATTN_OUT), T(SM_T_ATTN_POST_NORM), T(SM_T_FFN_NORM),
         GATED_FFN, T(SM_T_FFN_POST_NORM)),
        SM_NORM_RMS, SM_FFN_GEGLU, SM_POS_ROPE_NEOX, SM_SWA_EVEN, SM_QK_NORM_NONE, 1, 0, 46, 0, 0, 0,
    },
    [SM_ARCH_GEMMA3] = {
        "gemma3",
        {ROPE_KEYS(1 << 24), RMS_EPS, WINDOW(4096),
         READ_FLT("rope.freq_base_swa", rope_base_local, 1e-3, 1e12, 10000.0)},
        TENSORS(GLOBALS, OPT(SM_T_OUTPUT), T(SM_T_ATTN_NORM), QKV_SPLIT, T(SM_T_ATTN_Q_NORM), T(SM_T_ATTN_K_NORM), T(SM_T_ATTN_OUT),
         T(SM_T_ATTN_POST_NORM), T(SM_T_FFN_NORM), GATED_FFN, T(SM_T_FFN_POST_NORM)),
        SM_NORM_RMS, SM_FFN_GEGLU, SM_POS_ROPE_NEOX, SM_SWA_FIVE_OF_SIX, SM_QK_NORM_HEAD, 1, 1, 62, 0, 0, 0,
    },
    [SM_ARCH_OLMO2] = {
        "olmo2",
        {ROPE_KEYS(1 << 24), RMS_EPS},
        TENSORS(GLOBALS, T(SM_T_OUTPUT), QKV_SPLIT, SHAPED(SM_T_ATTN_Q_NORM, SM_D_Q, SM_D_ONE),
         SHAPED(SM_T_ATTN_K_NORM, SM_D_KV, SM_D_ONE), T(SM_T_ATTN_OUT), T(SM_T_ATTN_POST_NORM), GATED_FFN,
         T(SM_T_FFN_POST_NORM)),
        SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_FULL, 0, 0, 0, 0, 1, 0,
    },
    [SM_ARCH_STARCODER2] = {
        "starcoder2",
        {ROPE_KEYS(1 << 24), LN_EPS},
        TENSORS(GLOBALS, T(SM_T_OUTPUT_NORM_B), OPT(SM_T_OUTPUT), LN_LAYER(T)),
        SM_NORM_LAYER, SM_FFN_GELU, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0,
    },
    /* IBM Granite 3.x: llama's blocks and four scalars (llama.cpp's build_llama applies them
     * when the file has them: src/llama.cpp at c392e509) */
    [SM_ARCH_GRANITE] = {
        "granite",
        {ROPE_KEYS(1 << 24), RMS_EPS,
         OPT_FLT("embedding_scale", embedding_scale, 1e-6, 1e6, 1.0),
         OPT_FLT("residual_scale", residual_scale, 1e-6, 1e6, 1.0),
         OPT_FLT("attention.scale", attention_scale, 0.0, 1e6, 0.0),
         OPT_FLT("logit_scale", logit_scale, 1e-6, 1e6, 1.0)},
        TENSORS(GLOBALS, OPT(SM_T_OUTPUT), OPT(SM_T_ROPE_FREQS), T(SM_T_ATTN_NORM), QKV_SPLIT, OPT(SM_T_ATTN_Q_B),
         OPT(SM_T_ATTN_K_B), OPT(SM_T_ATTN_V_B), T(SM_T_ATTN_OUT), OPT(SM_T_ATTN_OUT_B), T(SM_T_FFN_NORM), GATED_FFN),
        SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0,
    },
    /* StableLM 2 (1.6B, Zephyr, 12B), StableLM 3B: LayerNorm with biases, q/k/v biases where present, RoPE
     * on part of each head (rope.dimension_count), a SwiGLU FFN; 12B: a LayerNorm per head of q and k with
     * weights of its own (attn_q_norm [head size, heads]), and attention and FFN in parallel from one norm
     * (its files have no ffn_norm: the loader sets the parallel residual) */
    [SM_ARCH_STABLELM] = {
        "stablelm",
        {ROPE_KEYS(1 << 24), LN_EPS},
        TENSORS(GLOBALS, T(SM_T_OUTPUT_NORM_B), T(SM_T_OUTPUT), T(SM_T_ATTN_NORM), T(SM_T_ATTN_NORM_B), QKV_SPLIT,
         OPT(SM_T_ATTN_Q_B), OPT(SM_T_ATTN_K_B), OPT(SM_T_ATTN_V_B),
         {SM_T_ATTN_Q_NORM, SM_TF_OPTIONAL, SM_D_HEAD, SM_D_HEADS}, {SM_T_ATTN_K_NORM, SM_TF_OPTIONAL, SM_D_HEAD, SM_D_KV_HEADS},
         T(SM_T_ATTN_OUT), {SM_T_FFN_NORM, SM_TF_DEFAULT, 0, 0}, {SM_T_FFN_NORM_B, SM_TF_DEFAULT, 0, 0}, GATED_FFN),
        SM_NORM_LAYER, SM_FFN_SWIGLU, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_HEAD_LN, 0, 0, 0, 0, 1, 0,
    },
    /* Microsoft Phi-1, Phi-1.5, Phi-2: one LayerNorm feeds attention and the GELU FFN side by side
     * (a parallel residual); RoPE (NeoX) on part of each head; biases everywhere, the output's too;
     * Q, K, V fused or apart (llama.cpp's build_phi2 takes either) */
    [SM_ARCH_PHI2] = {
        "phi2",
        {ROPE_KEYS(1 << 24), LN_EPS},
        TENSORS(GLOBALS, T(SM_T_OUTPUT_NORM_B), T(SM_T_OUTPUT), T(SM_T_OUTPUT_B), T(SM_T_ATTN_NORM),
         T(SM_T_ATTN_NORM_B), FUSED(SM_T_ATTN_QKV), FUSED(SM_T_ATTN_QKV_B), OPT(SM_T_ATTN_Q), OPT(SM_T_ATTN_K),
         OPT(SM_T_ATTN_V), OPT(SM_T_ATTN_Q_B), OPT(SM_T_ATTN_K_B), OPT(SM_T_ATTN_V_B), T(SM_T_ATTN_OUT),
         T(SM_T_ATTN_OUT_B), T(SM_T_FFN_UP), T(SM_T_FFN_UP_B), T(SM_T_FFN_DOWN), T(SM_T_FFN_DOWN_B)),
        SM_NORM_LAYER, SM_FFN_GELU, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0, 1,
    },
    /* EleutherAI GPT-NeoX and Pythia: fused QKV, RoPE (NeoX) on part of each head, a GELU FFN,
     * LayerNorms with biases; attention and FFN in parallel (each with its norm) or in sequence,
     * as use_parallel_residual says */
    [SM_ARCH_GPTNEOX] = {
        "gptneox",
        {ROPE_KEYS(1 << 24), LN_EPS, OPT_BOOL("use_parallel_residual", parallel_residual, 1)},
        TENSORS(GLOBALS, T(SM_T_OUTPUT_NORM_B), T(SM_T_OUTPUT), T(SM_T_ATTN_NORM), T(SM_T_ATTN_NORM_B),
         T(SM_T_ATTN_QKV), T(SM_T_ATTN_QKV_B), T(SM_T_ATTN_OUT), T(SM_T_ATTN_OUT_B), T(SM_T_FFN_NORM),
         T(SM_T_FFN_NORM_B), T(SM_T_FFN_UP), T(SM_T_FFN_UP_B), T(SM_T_FFN_DOWN), T(SM_T_FFN_DOWN_B)),
        SM_NORM_LAYER, SM_FFN_GELU, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0, 0,
    },
    /* IBM Granite 3.x MoE (1B-A400M, 3B-A800M): granite's blocks and scalars, a mixture of experts
     * (SiLU-gated, the chosen experts' weights renormalized: llama.cpp's build_llama) */
    [SM_ARCH_GRANITEMOE] = {
        "granitemoe",
        {ROPE_KEYS(1 << 24), RMS_EPS, EXPERT_KEYS,
         OPT_FLT("embedding_scale", embedding_scale, 1e-6, 1e6, 1.0),
         OPT_FLT("residual_scale", residual_scale, 1e-6, 1e6, 1.0),
         OPT_FLT("attention.scale", attention_scale, 0.0, 1e6, 0.0),
         OPT_FLT("logit_scale", logit_scale, 1e-6, 1e6, 1.0)},
        TENSORS(GLOBALS, OPT(SM_T_OUTPUT), T(SM_T_ATTN_NORM), QKV_SPLIT, T(SM_T_ATTN_OUT), T(SM_T_FFN_NORM), EXPERTS),
        SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0, 0, 1,
    },
    /* OLMoE (1B-7B): q/k RMSNorms over the whole projection, a mixture of experts whose weights are
     * the router's probabilities as they are (llama.cpp's build_olmoe) */
    [SM_ARCH_OLMOE] = {
        "olmoe",
        {ROPE_KEYS(1 << 24), RMS_EPS, EXPERT_KEYS},
        TENSORS(GLOBALS, T(SM_T_OUTPUT), T(SM_T_ATTN_NORM), QKV_SPLIT, SHAPED(SM_T_ATTN_Q_NORM, SM_D_Q, SM_D_ONE),
         SHAPED(SM_T_ATTN_K_NORM, SM_D_KV, SM_D_ONE), T(SM_T_ATTN_OUT), T(SM_T_FFN_NORM), EXPERTS),
        SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_FULL, 0, 0, 0, 0, 1, 0, 0, 0,
    },
    /* Qwen1.5-MoE, Qwen2-MoE: qwen2's attention, a mixture of experts of expert_feed_forward_length
     * rows (weights as the router gives them) plus a shared expert gated by sigmoid(w . x)
     * (llama.cpp's build_qwen2moe) */
    [SM_ARCH_QWEN2MOE] = {
        "qwen2moe",
        {ROPE_KEYS(1 << 24), RMS_EPS, EXPERT_KEYS, EXPERT_FFN,
         READ_INT("expert_shared_feed_forward_length", ffn_shexp, 0, 1 << 20, 0)},
        TENSORS(GLOBALS, T(SM_T_OUTPUT), T(SM_T_ATTN_NORM), QKV_SPLIT, T(SM_T_ATTN_Q_B), T(SM_T_ATTN_K_B),
         T(SM_T_ATTN_V_B), T(SM_T_ATTN_OUT), T(SM_T_FFN_NORM), EXPERTS, T(SM_T_FFN_GATE_INP_SHEXP),
         T(SM_T_FFN_GATE_SHEXP), T(SM_T_FFN_UP_SHEXP), T(SM_T_FFN_DOWN_SHEXP)),
        SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0, 0, 0,
    },
    /* Qwen3-MoE (30B-A3B, 235B-A22B): qwen3's attention (per-head q/k norms, no biases), a mixture of
     * experts of expert_feed_forward_length rows, the chosen experts' weights renormalized
     * (norm_topk_prob; not in llama.cpp c392e509: its successors' build_qwen3moe and Hugging Face's
     * Qwen3MoeSparseMoeBlock) */
    [SM_ARCH_QWEN3MOE] = QWEN3MOE_ROW("qwen3moe", 0),
    /* SmolLM3: llama's blocks (Llama 3's tokenizer), every fourth layer without RoPE (NoPE); not in
     * llama.cpp c392e509: its successors' build_smollm3 (n_no_rope_layer_step 4, llama's pairs) and
     * Hugging Face's SmolLM3 (no_rope_layers) */
    [SM_ARCH_SMOLLM3] = {
        "smollm3",
        {ROPE_KEYS(1 << 24), RMS_EPS},
        TENSORS(GLOBALS, OPT(SM_T_OUTPUT), LLAMA_LAYER),
        SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0, 0, 0, 4,
    },
    /* EXAONE 3.0/3.5: llama's blocks with NeoX RoPE, Llama 3's frequency factors where the file has them
     * (3.5's long context); tied in the 2.4B, whose output llama.cpp c392e509's loader wants: written */
    [SM_ARCH_EXAONE] = {
        "exaone",
        {ROPE_KEYS(1 << 24), RMS_EPS},
        TENSORS(GLOBALS, OPT(SM_T_OUTPUT), OPT(SM_T_ROPE_FREQS), LLAMA_LAYER),
        SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 1, 1, 0, 0, 0, 0,
    },
    /* InternLM2 / 2.5: llama's blocks (the converter splits wqkv into Q, K and V), a separate output,
     * SentencePiece */
    [SM_ARCH_INTERNLM2] = {
        "internlm2",
        {ROPE_KEYS(1 << 24), RMS_EPS},
        TENSORS(GLOBALS, T(SM_T_OUTPUT), LLAMA_LAYER),
        SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    },
    /* MiniCPM (1B, 2B): granite's three scalars under its own name, as llama.cpp c392e509 reads them for
     * build_llama (the converter writes scale_emb, scale_depth / sqrt(layers), hidden / dim_model_base);
     * SentencePiece, tied or separate head */
    [SM_ARCH_MINICPM] = {
        "minicpm",
        {ROPE_KEYS(1 << 24), RMS_EPS,
         OPT_FLT("embedding_scale", embedding_scale, 1e-6, 1e6, 1.0),
         OPT_FLT("residual_scale", residual_scale, 1e-6, 1e6, 1.0),
         OPT_FLT("logit_scale", logit_scale, 1e-6, 1e6, 1.0)},
        TENSORS(GLOBALS, OPT(SM_T_OUTPUT), OPT(SM_T_ROPE_FREQS), LLAMA_LAYER),
        SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    },
    /* StarCoder (v1: StarCoderBase 1B-15B, TinyStarCoder, SantaCoder's converted files): GPT-2's blocks with
     * multi-query attention in the fused QKV (head_count_kv), a tied or separate head */
    [SM_ARCH_STARCODER] = {
        "starcoder",
        {COMMON_KEYS(1 << 20), KV_HEADS, LN_EPS},
        TENSORS(GLOBALS, T(SM_T_POS_EMBD), T(SM_T_OUTPUT_NORM_B), OPT(SM_T_OUTPUT),
         GPT2_LAYER(T)),
        SM_NORM_LAYER, SM_FFN_GELU, SM_POS_LEARNED, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0, 0, 0, 0,
    },
    /* ERNIE 4.5 (dense: 0.3B): llama's blocks (adjacent RoPE pairs), heads wider than the model (key_length
     * 128 at dim 1024), optional q/k/v biases, SentencePiece, tied; not in llama.cpp c392e509: its
     * successors' build_ernie4_5 and Hugging Face's Ernie4_5 */
    [SM_ARCH_ERNIE4_5] = {
        "ernie4_5",
        {ROPE_KEYS(1 << 24), RMS_EPS},
        TENSORS(GLOBALS, OPT(SM_T_OUTPUT), T(SM_T_ATTN_NORM), QKV_SPLIT, OPT(SM_T_ATTN_Q_B), OPT(SM_T_ATTN_K_B),
         OPT(SM_T_ATTN_V_B), T(SM_T_ATTN_OUT), T(SM_T_FFN_NORM), GATED_FFN),
        SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    },
    /* Ministral 3 (3B, 8B, 14B): llama's blocks with heads wider than the model, YaRN without its magnitude
     * (yarn_log_multiplier 1: mscale_all_dim = mscale) and Llama 4's temperature tuning of the queries
     * (attention.temperature_scale over the original context); tied in the 3B; not in llama.cpp c392e509: its
     * successors' build_mistral3 and Hugging Face's Ministral3 */
    [SM_ARCH_MISTRAL3] = {
        "mistral3",
        {ROPE_KEYS(1 << 24), RMS_EPS, OPT_FLT("attention.temperature_scale", attn_temp_scale, 0.0, 1e3, 0.0),
         OPT_FLT("rope.scaling.yarn_log_multiplier", rope_yarn_log_mul, 0.0, 1e3, 1.0)},
        TENSORS(GLOBALS, OPT(SM_T_OUTPUT), OPT(SM_T_ROPE_FREQS), LLAMA_LAYER),
        SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0, 0, 0, 0,
    },
    /* EXAONE 4.0 (1.2B): olmo2's block (no pre-norms; attention's and the FFN's outputs RMSNorm'd before
     * their residual adds) with per-head q/k RMSNorm, NeoX RoPE, Llama 3's frequency factors where the file
     * has them, tied or separate head; not in llama.cpp c392e509: its successors' build_exaone4, which gives
     * only the 64-layer model (32B) sliding-window layers, refused here (sm_arch_check) */
    [SM_ARCH_EXAONE4] = {
        "exaone4",
        {ROPE_KEYS(1 << 24), RMS_EPS},
        TENSORS(GLOBALS, OPT(SM_T_OUTPUT), OPT(SM_T_ROPE_FREQS), QKV_SPLIT, T(SM_T_ATTN_Q_NORM), T(SM_T_ATTN_K_NORM),
         T(SM_T_ATTN_OUT), T(SM_T_ATTN_POST_NORM), GATED_FFN, T(SM_T_FFN_POST_NORM)),
        SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_HEAD, 0, 0, 0, 0, 1, 0, 0, 0, 0,
    },
    /* Hunyuan dense (0.5B-7B): llama's blocks with NeoX RoPE and per-head q/k RMSNorm after RoPE; the
     * converter folds the dynamic NTK alpha into rope.freq_base; tied or separate head; not in llama.cpp
     * c392e509: its successors' build_hunyuan_dense */
    [SM_ARCH_HUNYUAN_DENSE] = {
        "hunyuan-dense",
        {ROPE_KEYS(1 << 24), RMS_EPS},
        TENSORS(GLOBALS, OPT(SM_T_OUTPUT), T(SM_T_ATTN_NORM), QKV_SPLIT, OPT(SM_T_ATTN_Q_B), OPT(SM_T_ATTN_K_B),
         OPT(SM_T_ATTN_V_B), T(SM_T_ATTN_Q_NORM), T(SM_T_ATTN_K_NORM), T(SM_T_ATTN_OUT), OPT(SM_T_ATTN_OUT_B),
         T(SM_T_FFN_NORM), GATED_FFN),
        SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_HEAD, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1,
    },
    /* the language halves of Qwen2-VL / Qwen2.5-VL, Qwen3-VL and Qwen3-VL-MoE, on text (images are not read:
     * their projector is a separate mmproj file); qwen2vl is in llama.cpp c392e509 */
    [SM_ARCH_QWEN2VL] = QWEN2_ROW("qwen2vl", 1),
    [SM_ARCH_QWEN3VL] = QWEN3_ROW("qwen3vl", 1),
    [SM_ARCH_QWEN3VLMOE] = QWEN3MOE_ROW("qwen3vlmoe", 1),
    /* OLMo (1B, 7B; the 0424/0724 releases): llama's blocks with LayerNorm without weight or bias, the
     * projections' q, k and v clamped where the file says (attention.clamp_kqv), tied or separate head */
    [SM_ARCH_OLMO] = {
        "olmo",
        {ROPE_KEYS(1 << 24), LN_EPS, OPT_FLT("attention.clamp_kqv", clamp_kqv, 0.0, 1e30, 0.0)},
        TENSORS(T(SM_T_TOKEN_EMBD), OPT(SM_T_OUTPUT), QKV_SPLIT, T(SM_T_ATTN_OUT), GATED_FFN),
        SM_NORM_LAYER, SM_FFN_SWIGLU, SM_POS_ROPE, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
        1,
    },
    /* Nemotron (Minitron 4B/8B, Nemotron-Mini-4B): LayerNorm with biases (the converter adds Nemotron's
     * "1 +" to the weights), NeoX RoPE on part of each head, optional q/k/v/o biases, a squared-ReLU FFN
     * without a gate, a separate output */
    [SM_ARCH_NEMOTRON] = {
        "nemotron",
        {ROPE_KEYS(1 << 24), LN_EPS},
        TENSORS(GLOBALS, T(SM_T_OUTPUT_NORM_B), T(SM_T_OUTPUT), LN_LAYER(OPT)),
        SM_NORM_LAYER, SM_FFN_RELU2, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0,
    },
    /* Arcee (AFM-4.5B): llama's blocks with a squared-ReLU FFN without a gate, Llama 3's frequency factors
     * where the file has them, tied or separate head; not in llama.cpp c392e509: its successors' build_arcee */
    [SM_ARCH_ARCEE] = {
        "arcee",
        {ROPE_KEYS(1 << 24), RMS_EPS},
        TENSORS(GLOBALS, OPT(SM_T_OUTPUT), OPT(SM_T_ROPE_FREQS), T(SM_T_ATTN_NORM), QKV_SPLIT, T(SM_T_ATTN_OUT),
         T(SM_T_FFN_NORM), T(SM_T_FFN_UP), T(SM_T_FFN_DOWN)),
        SM_NORM_RMS, SM_FFN_RELU2, SM_POS_ROPE, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0,
    },
    /* BLOOM (bloom-560m to 7b1, bloomz): GPT-2's blocks without position embeddings, ALiBi instead (llama.cpp
     * c392e509 fixes its span at 8: no key), a LayerNorm of the embeddings, LayerNorm and biases everywhere,
     * a tanh-GELU FFN; tied, and llama.cpp's loader wants output.weight: writers store a copy */
    [SM_ARCH_BLOOM] = {
        "bloom",
        {COMMON_KEYS(1 << 20), KV_HEADS, LN_EPS},
        TENSORS(GLOBALS, T(SM_T_TOKEN_EMBD_NORM), T(SM_T_TOKEN_EMBD_NORM_B), T(SM_T_OUTPUT_NORM_B), OPT(SM_T_OUTPUT),
         GPT2_LAYER(T)),
        SM_NORM_LAYER, SM_FFN_GELU, SM_POS_ALIBI, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 1, 1, 0,
    },
    /* MPT (mpt-7b and its -instruct/-chat/-storywriter, mpt-30b): ALiBi over attention.max_alibi_bias, a fused
     * QKV clamped where the file says (attention.clamp_kqv), LayerNorm and biases where the file has them (the
     * released models have none), a GELU FFN (Hugging Face's MPT: the exact one; llama.cpp's build_mpt and this
     * table: the tanh form), tied or separate head; learned positions where the file has them */
    [SM_ARCH_MPT] = {
        "mpt",
        {COMMON_KEYS(1 << 20), KV_HEADS, LN_EPS, OPT_FLT("attention.max_alibi_bias", max_alibi_bias, 0.0, 1e3, 8.0),
         OPT_FLT("attention.clamp_kqv", clamp_kqv, 0.0, 1e30, 0.0)},
        TENSORS(GLOBALS, OPT(SM_T_POS_EMBD), OPT(SM_T_OUTPUT_NORM_B), OPT(SM_T_OUTPUT),
         GPT2_LAYER(OPT)),
        SM_NORM_LAYER, SM_FFN_GELU, SM_POS_ALIBI, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0,
    },
    /* Refact (Refact-1.6B): llama's blocks without RoPE, ALiBi instead (llama.cpp c392e509 fixes its span at
     * 8: no key), multi-query attention, tied or separate head */
    [SM_ARCH_REFACT] = {
        "refact",
        {COMMON_KEYS(1 << 24), KV_HEADS, RMS_EPS},
        TENSORS(GLOBALS, OPT(SM_T_OUTPUT), T(SM_T_ATTN_NORM), QKV_SPLIT, OPT(SM_T_ATTN_Q_B), OPT(SM_T_ATTN_K_B),
         OPT(SM_T_ATTN_V_B), T(SM_T_ATTN_OUT), OPT(SM_T_ATTN_OUT_B), T(SM_T_FFN_NORM), GATED_FFN),
        SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ALIBI, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0,
    },
    /* Command R (35B), Aya 23 and Aya Expanse (8B, 32B): one LayerNorm without bias feeding attention and a
     * SwiGLU FFN in parallel (x + attn(h) + ffn(h)), RoPE in adjacent pairs, always tied, logits times
     * logit_scale (a multiplier: logit_mul); Command R+'s per-head q/k LayerNorms are refused (their tensors) */
    [SM_ARCH_COMMAND_R] = {
        "command-r",
        {ROPE_KEYS(1 << 24), LN_EPS, OPT_FLT("logit_scale", logit_mul, 0.0, 1e6, 1.0)},
        TENSORS(GLOBALS, T(SM_T_ATTN_NORM), QKV_SPLIT, T(SM_T_ATTN_OUT), GATED_FFN),
        SM_NORM_LAYER, SM_FFN_SWIGLU, SM_POS_ROPE, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0, 1,
    },
    /* Command R7B (cohere2): command-r's block, three sliding-window layers with RoPE to one global layer
     * without positions (every fourth), Llama 3's frequency factors where the file has them; llama.cpp's loader
     * requires attention.sliding_window: a model without a window is written with one as long as its context */
    [SM_ARCH_COHERE2] = {
        "cohere2",
        {ROPE_KEYS(1 << 24), LN_EPS, OPT_FLT("logit_scale", logit_mul, 0.0, 1e6, 1.0), WINDOW(0)},
        TENSORS(GLOBALS, OPT(SM_T_ROPE_FREQS), T(SM_T_ATTN_NORM), QKV_SPLIT, T(SM_T_ATTN_OUT), GATED_FFN),
        SM_NORM_LAYER, SM_FFN_SWIGLU, SM_POS_ROPE, SM_SWA_THREE_OF_FOUR, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 1, 1, 0, 4,
    },
    /* Jais (jais-13b, the Jais family 590M-30B): GPT-2's blocks with ALiBi (attention.max_alibi_bias), a SwiGLU
     * FFN with biases on all three products, scores scaled by 1 / head size (muP; derived), a separate output
     * (the converter folds muP's embedding and output scales into the weights) */
    [SM_ARCH_JAIS] = {
        "jais",
        {COMMON_KEYS(1 << 20), KV_HEADS, LN_EPS, OPT_FLT("attention.max_alibi_bias", max_alibi_bias, 0.0, 1e3, 8.0)},
        TENSORS(GLOBALS, T(SM_T_OUTPUT_NORM_B), T(SM_T_OUTPUT), T(SM_T_ATTN_NORM), T(SM_T_ATTN_NORM_B), T(SM_T_ATTN_QKV),
         T(SM_T_ATTN_QKV_B), T(SM_T_ATTN_OUT), T(SM_T_ATTN_OUT_B), T(SM_T_FFN_NORM), T(SM_T_FFN_NORM_B),
         T(SM_T_FFN_GATE), T(SM_T_FFN_GATE_B), T(SM_T_FFN_UP), T(SM_T_FFN_UP_B), T(SM_T_FFN_DOWN), T(SM_T_FFN_DOWN_B)),
        SM_NORM_LAYER, SM_FFN_SWIGLU, SM_POS_ALIBI, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1,
    },
    /* XVERSE (7B, 13B, 65B): llama's blocks (adjacent RoPE pairs), a separate output */
    [SM_ARCH_XVERSE] = {
        "xverse",
        {ROPE_KEYS(1 << 24), RMS_EPS},
        TENSORS(GLOBALS, T(SM_T_OUTPUT), LLAMA_LAYER),
        SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 0, 0,
    },
    /* Orion (Orion-14B): llama's blocks with LayerNorm and its biases, a separate output */
    [SM_ARCH_ORION] = {
        "orion",
        {ROPE_KEYS(1 << 24), LN_EPS},
        TENSORS(GLOBALS, T(SM_T_OUTPUT_NORM_B), T(SM_T_OUTPUT), T(SM_T_ATTN_NORM), T(SM_T_ATTN_NORM_B), QKV_SPLIT,
         T(SM_T_ATTN_OUT), T(SM_T_FFN_NORM), T(SM_T_FFN_NORM_B), GATED_FFN),
        SM_NORM_LAYER, SM_FFN_SWIGLU, SM_POS_ROPE, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 0, 0,
    },
    /* CodeShell (CodeShell-7B): GPT-2's blocks with NeoX RoPE instead of positions and grouped KV heads in the
     * fused QKV, a separate output */
    [SM_ARCH_CODESHELL] = {
        "codeshell",
        {ROPE_KEYS(1 << 24), LN_EPS},
        TENSORS(GLOBALS, T(SM_T_OUTPUT_NORM_B), T(SM_T_OUTPUT), GPT2_LAYER(T)),
        SM_NORM_LAYER, SM_FFN_GELU, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0,
    },
    /* ChatGLM3-6B, GLM-4-9B, GLM-Edge: RMSNorm, a fused QKV with its bias (or Q, K and V apart), RoPE in adjacent
     * pairs on part of each head (rope.dimension_count: half), gate and up in one matrix (phi3's SwiGLU), a
     * separate output */
    [SM_ARCH_CHATGLM] = {
        "chatglm",
        {ROPE_KEYS(1 << 24), RMS_EPS},
        TENSORS(GLOBALS, T(SM_T_OUTPUT), T(SM_T_ATTN_NORM), FUSED(SM_T_ATTN_QKV), OPT(SM_T_ATTN_QKV_B),
         OPT(SM_T_ATTN_Q), OPT(SM_T_ATTN_K), OPT(SM_T_ATTN_V), OPT(SM_T_ATTN_Q_B), OPT(SM_T_ATTN_K_B),
         OPT(SM_T_ATTN_V_B), T(SM_T_ATTN_OUT), T(SM_T_FFN_NORM), SHAPED(SM_T_FFN_UP, SM_D_EMBD, SM_D_FFN2),
         T(SM_T_FFN_DOWN)),
        SM_NORM_RMS, SM_FFN_SWIGLU_FUSED, SM_POS_ROPE, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0,
    },
    /* Falcon (7B): one LayerNorm feeding attention and a GELU FFN in parallel, multi-query attention in the fused
     * QKV, NeoX RoPE, no biases on the products, tied or separate head; Falcon-40B's second norm per layer
     * (attn_norm_2) is refused (its tensor) */
    [SM_ARCH_FALCON] = {
        "falcon",
        {ROPE_KEYS(1 << 24), LN_EPS},
        TENSORS(GLOBALS, T(SM_T_OUTPUT_NORM_B), OPT(SM_T_OUTPUT), T(SM_T_ATTN_NORM), T(SM_T_ATTN_NORM_B), T(SM_T_ATTN_QKV),
         T(SM_T_ATTN_OUT), T(SM_T_FFN_UP), T(SM_T_FFN_DOWN)),
        SM_NORM_LAYER, SM_FFN_GELU, SM_POS_ROPE_NEOX, SM_SWA_ALL, SM_QK_NORM_NONE, 0, 0, 0, 0, 1, 0, 1,
    },
};

const sm_arch_info *sm_arch_get(int arch) { return arch >= 0 && arch < SM_ARCH_COUNT ? &archs[arch] : NULL; }

const sm_role_info *sm_role(int role) { return role >= 0 && role < SM_T_COUNT ? &roles[role] : NULL; }

int sm_arch_by_name(const char *name, size_t len) {
    for (int a = 0; a < SM_ARCH_COUNT; a++)
        if (strlen(archs[a].name) == len && memcmp(archs[a].name, name, len) == 0) return a;
    return -1;
}

void sm_arch_names(char *buf, size_t cap) {
    size_t n = 0;
    if (cap) buf[0] = '\0';
    for (int a = 0; a < SM_ARCH_COUNT && n < cap; a++) {
        int w = snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", archs[a].name);
        if (w < 0 || (size_t)w >= cap - n) {   /* no room: whole names only */
            buf[n] = '\0';
            break;
        }
        n += (size_t)w;
    }
}

void sm_tensor_name(int role, int layer, char *buf, size_t cap) {
    snprintf(buf, cap, roles[role].name, layer);
}

int64_t sm_dim_value(const sm_hparams *hp, int dim) {
    int64_t q = (int64_t)hp->n_heads * hp->head_dim, kv = (int64_t)hp->n_kv_heads * hp->head_dim;
    switch (dim) {
    case SM_D_EMBD: return hp->dim;
    case SM_D_Q: return q;
    case SM_D_KV: return kv;
    case SM_D_QKV: return q + 2 * kv;
    case SM_D_FFN: return hp->ffn_dim;
    case SM_D_FFN2: return 2 * (int64_t)hp->ffn_dim;
    case SM_D_VOCAB: return hp->n_vocab;
    case SM_D_CTX: return hp->n_ctx_train;
    case SM_D_HEAD: return hp->head_dim;
    case SM_D_ROPE_HALF: return hp->rope_dim / 2;
    case SM_D_EXPERTS: return hp->n_expert;
    case SM_D_FFN_EXP: return hp->ffn_exp;
    case SM_D_FFN_SHEXP: return hp->ffn_shexp;
    case SM_D_HEADS: return hp->n_heads;
    case SM_D_KV_HEADS: return hp->n_kv_heads;
    default: return 1;
    }
}

int64_t sm_arch_tensor_mats(const sm_hparams *hp, const sm_arch_tensor *t) {
    return roles[t->role].mats ? sm_dim_value(hp, roles[t->role].mats) : 0;
}

int sm_arch_experts(const sm_arch_info *a) {
    int flags = 0;
    if (!sm_arch_has(a, SM_T_FFN_GATE_INP, &flags)) return SM_EXPERTS_NONE;
    return flags & SM_TF_OPTIONAL ? SM_EXPERTS_OPTIONAL : SM_EXPERTS_ALWAYS;
}

void sm_arch_tensor_shape(const sm_hparams *hp, const sm_arch_tensor *t, int64_t *cols, int64_t *rows) {
    const sm_role_info *ri = &roles[t->role];
    *cols = sm_dim_value(hp, t->cols ? t->cols : ri->cols);
    *rows = sm_dim_value(hp, t->rows ? t->rows : ri->rows);
}

int sm_arch_has(const sm_arch_info *a, int role, int *flags) {
    for (int i = 0; i < a->n_tensors; i++)
        if (a->tensors[i].role == role) {
            if (flags) *flags = a->tensors[i].flags;
            return 1;
        }
    return 0;
}

int sm_arch_is_rope(const sm_arch_info *a) { return a->pos == SM_POS_ROPE || a->pos == SM_POS_ROPE_NEOX; }

int sm_layer_has_rope(const sm_hparams *hp, int layer) {
    const sm_arch_info *a = &archs[hp->arch];
    if (!sm_arch_is_rope(a)) return 0;
    return !a->nope_step || (layer + 1) % a->nope_step != 0;
}

float sm_attn_temp(const sm_hparams *hp, int pos) {
    if (hp->attn_temp_scale == 0 || hp->attn_temp_length <= 0) return 1.0f;
    return (float)(1.0 + hp->attn_temp_scale * log(1.0 + floor((double)pos / hp->attn_temp_length)));
}

int sm_layer_is_swa(const sm_hparams *hp, int layer) {
    if (hp->n_swa <= 0) return 0;
    switch (archs[hp->arch].swa) {
    case SM_SWA_EVEN: return layer % 2 == 0;
    case SM_SWA_FIVE_OF_SIX: return (layer + 1) % 6 != 0;
    case SM_SWA_THREE_OF_FOUR: return (layer + 1) % 4 != 0;
    default: return 1;
    }
}

/* "ARCH.key", an architecture's metadata key, into full (KEY_MAX bytes) */
#define KEY_MAX 128
static const char *full_key(char *full, const sm_arch_info *a, const char *key) {
    snprintf(full, KEY_MAX, "%s.%s", a->name, key);
    return full;
}

static int *int_field(sm_hparams *hp, size_t off) { return (int *)((char *)hp + off); }
static float *float_field(sm_hparams *hp, size_t off) { return (float *)((char *)hp + off); }

float sm_alibi_slope_of(int n_heads, float max_bias, int h) {
    if (max_bias <= 0) return 0.0f;
    int n = 1;
    while (n * 2 <= n_heads) n *= 2;
    double m0 = pow(2.0, -max_bias / n), m1 = pow(2.0, -max_bias / 2.0 / n);
    return (float)(h < n ? pow(m0, h + 1) : pow(m1, 2 * (h - n) + 1));
}

sm_status sm_arch_check_hparams(const sm_hparams *hp, sm_status status, sm_error *err) {
    if (hp->n_heads < 1 || hp->head_dim < 1)
        return sm_fail(err, status, "embedding length %d is not a multiple of head count %d", hp->dim, hp->n_heads);
    if (hp->n_kv_heads < 1 || hp->n_kv_heads > hp->n_heads || hp->n_heads % hp->n_kv_heads != 0)
        return sm_fail(err, status, "head count %d is not a multiple of KV head count %d", hp->n_heads,
                       hp->n_kv_heads);
    const sm_arch_info *a = &archs[hp->arch];
    if (sm_arch_is_rope(a)) {
        if (hp->rope_dim < 0 || hp->rope_dim > hp->head_dim)
            return sm_fail(err, status, "rope dimension count %d is out of range (0 to %d)", hp->rope_dim,
                           hp->head_dim);
        if (hp->rope_dim % 2 != 0) return sm_fail(err, status, "rope dimension count %d is odd", hp->rope_dim);
    }
    if (hp->n_expert_used > hp->n_expert)
        return sm_fail(err, status, "expert_used_count %d is more than expert_count %d", hp->n_expert_used,
                       hp->n_expert);
    if (sm_arch_experts(a) == SM_EXPERTS_ALWAYS && (hp->n_expert < 1 || hp->n_expert_used < 1))
        return sm_fail(err, status, "a %s model needs expert_count and expert_used_count (at least 1)", a->name);
    if (a->qk_norm == SM_QK_NORM_FULL && hp->n_kv_heads != hp->n_heads)
        return sm_fail(err, status, "a %s model's key norm spans all heads: it needs as many KV heads (%d) as heads (%d)",
                       a->name, hp->n_kv_heads, hp->n_heads);
    /* llama.cpp's exaone4 gives the 64-layer model (EXAONE 4.0 32B) sliding-window layers, 3 of every 4, and RoPE
     * only in those: a layout this table does not describe */
    if (hp->arch == SM_ARCH_EXAONE4 && hp->n_layers == 64)
        return sm_fail(err, SM_ERR_UNSUPPORTED,
                       "EXAONE 4.0 32B's layout (sliding-window attention in 3 of every 4 layers, RoPE only in "
                       "those) is not supported; the 1.2B model is");
    return SM_OK;
}

/* What follows from the keys: the head size, the defaults that depend on
 * other keys, the score scale. */
static sm_status derive(sm_hparams *hp, sm_status status, sm_error *err) {
    const sm_arch_info *a = &archs[hp->arch];
    if (hp->head_dim == DERIVED) {
        if (hp->dim % hp->n_heads != 0)
            return sm_fail(err, status, "embedding length %d is not a multiple of head count %d", hp->dim,
                           hp->n_heads);
        hp->head_dim = hp->dim / hp->n_heads;
    }
    if (hp->n_kv_heads == DERIVED) hp->n_kv_heads = hp->n_heads;
    if (!sm_arch_is_rope(a)) hp->rope_dim = 0;
    /* bloom, refact: llama.cpp c392e509's fixed span (their files have no key) */
    if (a->pos == SM_POS_ALIBI && !sm_arch_has_key(a, F(max_alibi_bias))) hp->max_alibi_bias = 8.0f;
    else if (hp->rope_dim == DERIVED) hp->rope_dim = hp->head_dim;
    if (hp->rope_base_local <= 0) hp->rope_base_local = hp->rope_base;
    if (hp->rope_freq_scale <= 0) hp->rope_freq_scale = 1.0f;
    if (hp->rope_attn_factor <= 0) hp->rope_attn_factor = 1.0f;
    if (hp->n_ctx_orig <= 0) hp->n_ctx_orig = hp->n_ctx_train;
    if (hp->yarn_beta_fast <= 0) hp->yarn_beta_fast = SM_YARN_BETA_FAST;
    if (hp->yarn_beta_slow <= 0) hp->yarn_beta_slow = SM_YARN_BETA_SLOW;
    /* llama.cpp's n_attn_temp_floor_scale for mistral3: YaRN's original context */
    if (hp->attn_temp_scale != 0) hp->attn_temp_length = hp->n_ctx_orig;
    if (a->q_scale_mup) hp->q_scale = 1.0f / (float)hp->head_dim;
    else hp->q_scale = hp->attention_scale > 0 ? hp->attention_scale
                  : 1.0f / sqrtf((float)(a->q_scale_layers && hp->n_layers == a->q_scale_layers
                                             ? hp->dim / hp->n_heads : hp->head_dim));
    if (hp->embedding_scale <= 0) hp->embedding_scale = a->embd_scale ? sqrtf((float)hp->dim) : 1.0f;
    if (hp->residual_scale <= 0) hp->residual_scale = 1.0f;
    if (hp->logit_mul > 0) hp->logit_scale = 1.0f / hp->logit_mul;   /* command-r multiplies where granite divides */
    if (hp->logit_scale <= 0) hp->logit_scale = 1.0f;
    if (a->parallel) hp->parallel_residual = 1;
    /* llama.cpp: qwen2moe's experts default to n_ff / n_expert_used rows, the others' to n_ff */
    if (hp->ffn_exp <= 0)
        hp->ffn_exp = sm_arch_has_key(a, F(ffn_exp)) && hp->n_expert_used > 0 ? hp->ffn_dim / hp->n_expert_used : hp->ffn_dim;
    if (hp->ffn_shexp <= 0) hp->ffn_shexp = hp->ffn_dim;
    return sm_arch_check_hparams(hp, status, err);
}

sm_status sm_arch_finish_hparams(sm_hparams *hp, sm_status status, sm_error *err) {
    const sm_arch_info *a = &archs[hp->arch];
    for (const sm_arch_key *k = a->keys; k->key; k++) {
        if (k->required) continue;
        if (k->kind == SM_KEY_FLOAT && *float_field(hp, k->field) == 0) *float_field(hp, k->field) = (float)k->dflt;
        if (k->kind == SM_KEY_INT && *int_field(hp, k->field) == 0) *int_field(hp, k->field) = (int)k->dflt;
        if (k->kind == SM_KEY_BOOL) *int_field(hp, k->field) = (int)k->dflt;   /* no flag sets one */
    }
    if (!hp->head_dim) hp->head_dim = DERIVED;
    if (!hp->rope_dim) hp->rope_dim = DERIVED;
    return derive(hp, status, err);
}

/* RoPE scaling (llama.cpp's rope.scaling.*): linear scaling divides the
 * angles by the factor; "longrope" uses the long/short factor tensors;
 * "yarn" divides them by the factor only in the pairs whose wavelength
 * exceeds the original context (sm_rope_init). */
static sm_status read_rope_scaling(const sm_gguf *g, const char *arch, sm_hparams *hp, sm_error *err) {
    char key[128];
    sm_gguf_str type = {"linear", 6};
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    if (sm_gguf_get_str(g, key, &type) < 0) return sm_fail(err, SM_ERR_FORMAT, "metadata '%s' is not a string", key);
    if (!sm_gguf_str_eq(type, "linear") && !sm_gguf_str_eq(type, "none") && !sm_gguf_str_eq(type, "longrope") &&
        !sm_gguf_str_eq(type, "yarn"))
        return sm_fail(err, SM_ERR_UNSUPPORTED,
                       "RoPE scaling '%.*s' is not supported (linear, yarn, longrope and none are)",
                       (int)(type.len > 32 ? 32 : type.len), type.ptr);
    hp->rope_yarn = sm_gguf_str_eq(type, "yarn");
    double v;
    snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
    int r = sm_gguf_get_float(g, key, &v);
    if (r < 0 || (r > 0 && !(v >= 0 && v <= 1e6)))
        return sm_fail(err, SM_ERR_FORMAT, "metadata '%s' is not a scale factor", key);
    hp->rope_freq_scale = r > 0 && v > 0 && !sm_gguf_str_eq(type, "none") ? (float)(1.0 / v) : 1.0f;
    snprintf(key, sizeof key, "%s.rope.scaling.attn_factor", arch);
    r = sm_gguf_get_float(g, key, &v);
    if (r < 0 || (r > 0 && !(v > 0 && v <= 1e6)))
        return sm_fail(err, SM_ERR_FORMAT, "metadata '%s' is not a factor", key);
    hp->rope_attn_factor = r > 0 ? (float)v : 1.0f;
    int64_t orig;
    snprintf(key, sizeof key, "%s.rope.scaling.original_context_length", arch);
    r = sm_gguf_get_int(g, key, &orig);
    if (r < 0 || (r > 0 && (orig < 1 || orig > (1 << 30))))
        return sm_fail(err, SM_ERR_FORMAT, "metadata '%s' is not a context length", key);
    hp->n_ctx_orig = r > 0 ? (int)orig : hp->n_ctx_train;
    /* YaRN's ramp: the pairs that turn beta_fast times (and more) in the original context keep their
     * frequency, those that turn beta_slow times (or fewer) take the scaled one */
    static const struct { const char *key; size_t field; float dflt; } betas[] = {
        {"rope.scaling.yarn_beta_fast", F(yarn_beta_fast), SM_YARN_BETA_FAST},
        {"rope.scaling.yarn_beta_slow", F(yarn_beta_slow), SM_YARN_BETA_SLOW}};
    for (int i = 0; i < 2; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, betas[i].key);
        r = sm_gguf_get_float(g, key, &v);
        if (r < 0 || (r > 0 && !(v > 0 && v <= 1e6)))
            return sm_fail(err, SM_ERR_FORMAT, "metadata '%s' is not a number of turns", key);
        *(float *)((char *)hp + betas[i].field) = r > 0 ? (float)v : betas[i].dflt;
    }
    return SM_OK;
}

/* M-RoPE's sections (a vision-language model's language half): llama.cpp requires them, one to four
 * counts of pairs. */
static sm_status read_rope_sections(const sm_gguf *g, const sm_arch_info *a, sm_hparams *hp, sm_error *err) {
    char key[KEY_MAX];
    const sm_gguf_kv *kv = sm_gguf_find(g, full_key(key, a, "rope.dimension_sections"));
    if (!kv) return sm_fail(err, SM_ERR_FORMAT, "metadata key '%s' is missing", key);
    int is_int = kv->arr_type <= SM_GGUF_INT32 || kv->arr_type == SM_GGUF_UINT64 || kv->arr_type == SM_GGUF_INT64;
    if (kv->type != SM_GGUF_ARRAY || !is_int || kv->arr_n < 1 || kv->arr_n > 4)
        return sm_fail(err, SM_ERR_FORMAT, "metadata '%s' is not an array of one to four integers", key);
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        int64_t v = sm_gguf_arr_int(kv, i);
        if (v < 0 || v > (1 << 16))
            return sm_fail(err, SM_ERR_FORMAT, "metadata '%s' has a section of %lld pairs", key, (long long)v);
        hp->rope_sections[i] = (int)v;
    }
    return SM_OK;
}

sm_status sm_arch_read_hparams(const sm_gguf *g, sm_hparams *hp, sm_error *err) {
    const sm_arch_info *a = &archs[hp->arch];
    for (const sm_arch_key *k = a->keys; k->key; k++) {
        char full[KEY_MAX];
        full_key(full, a, k->key);
        if (k->kind == SM_KEY_BOOL) {
            int v;
            int r = sm_gguf_get_bool(g, full, &v);
            if (r < 0) return sm_fail(err, SM_ERR_FORMAT, "metadata key '%s' is not a boolean", full);
            *int_field(hp, k->field) = r == 0 ? (int)k->dflt : v;
            continue;
        }
        if (k->kind == SM_KEY_FLOAT) {
            double v;
            int r = sm_gguf_get_float(g, full, &v);
            if (r == 0) v = k->dflt;
            else if (r < 0) return sm_fail(err, SM_ERR_FORMAT, "metadata key '%s' is not a number", full);
            if (!(v >= k->lo && v <= k->hi))
                return sm_fail(err, SM_ERR_FORMAT, "metadata '%s' = %g is out of range (%g to %g)", full, v, k->lo,
                               k->hi);
            *float_field(hp, k->field) = (float)v;
            continue;
        }
        int64_t v;
        int r = sm_gguf_get_int(g, full, &v);
        if (r == 0) {
            if (k->required) return sm_fail(err, SM_ERR_FORMAT, "metadata key '%s' is missing", full);
            *int_field(hp, k->field) = (int)k->dflt;
            continue;
        }
        if (r < 0) return sm_fail(err, SM_ERR_FORMAT, "metadata key '%s' is not an integer", full);
        if (v < (int64_t)k->lo || v > (int64_t)k->hi)
            return sm_fail(err, SM_ERR_FORMAT, "metadata '%s' = %lld is out of range (%lld to %lld)", full,
                           (long long)v, (long long)k->lo, (long long)k->hi);
        *int_field(hp, k->field) = (int)v;
    }
    if (!sm_arch_has_key(a, F(head_dim))) hp->head_dim = DERIVED;
    if (!sm_arch_has_key(a, F(n_kv_heads))) hp->n_kv_heads = DERIVED;
    if (!sm_arch_has_key(a, F(rope_dim))) hp->rope_dim = DERIVED;
    if (sm_arch_is_rope(a)) {
        sm_status st = read_rope_scaling(g, a->name, hp, err);
        if (st) return st;
    }
    if (a->mrope) {
        sm_status st = read_rope_sections(g, a, hp, err);
        if (st) return st;
    }
    return derive(hp, SM_ERR_FORMAT, err);
}

int sm_arch_has_key(const sm_arch_info *a, size_t field) {
    for (const sm_arch_key *k = a->keys; k->key; k++)
        if (k->field == field) return 1;
    return 0;
}

/* Writes "ARCH.key" as a float, an unsigned integer, a boolean or a string. */
static void put_f32(sm_gguf_writer *w, const sm_arch_info *a, const char *key, float v) {
    char full[KEY_MAX];
    sm_gguf_put_f32(w, full_key(full, a, key), v);
}

static void put_u32(sm_gguf_writer *w, const sm_arch_info *a, const char *key, uint32_t v) {
    char full[KEY_MAX];
    sm_gguf_put_u32(w, full_key(full, a, key), v);
}

static void put_bool(sm_gguf_writer *w, const sm_arch_info *a, const char *key, int v) {
    char full[KEY_MAX];
    sm_gguf_put_bool(w, full_key(full, a, key), v);
}

static void put_str(sm_gguf_writer *w, const sm_arch_info *a, const char *key, const char *v) {
    char full[KEY_MAX];
    sm_gguf_put_str(w, full_key(full, a, key), v);
}

void sm_arch_write_hparams(sm_gguf_writer *w, const sm_hparams *hp) {
    const sm_arch_info *a = &archs[hp->arch];
    for (const sm_arch_key *k = a->keys; k->key; k++) {
        if (!k->written) continue;
        const char *base = (const char *)hp + k->field;
        if (k->kind == SM_KEY_FLOAT) put_f32(w, a, k->key, *(const float *)base);
        else if (k->kind == SM_KEY_BOOL) put_bool(w, a, k->key, *(const int *)base);
        else put_u32(w, a, k->key, (uint32_t)*(const int *)base);
    }
    if (a->mrope) {
        char full[KEY_MAX];
        int32_t sec[4] = {hp->rope_sections[0], hp->rope_sections[1], hp->rope_sections[2], hp->rope_sections[3]};
        if (!sec[0] && !sec[1] && !sec[2] && !sec[3]) sec[0] = hp->rope_dim / 2;   /* a new model: time only */
        sm_gguf_put_i32_array(w, full_key(full, a, "rope.dimension_sections"), sec, 4);
    }
    /* the head size when it is not dim / heads (qwen3, gemma): read back, not derived */
    if (sm_arch_has_key(a, F(head_dim)) && hp->head_dim * hp->n_heads != hp->dim) {
        put_u32(w, a, "attention.key_length", (uint32_t)hp->head_dim);
        put_u32(w, a, "attention.value_length", (uint32_t)hp->head_dim);
    }
    /* what the keys above only read, when the model has it: the sliding window, soft-capping,
     * the local layers' RoPE base, linear RoPE scaling (a fine-tuned gemma2/3 keeps them) */
    int window = hp->n_swa > 0 ? hp->n_swa : a->write_window ? hp->n_ctx_train : 0;
    if (window > 0 && sm_arch_has_key(a, F(n_swa))) put_u32(w, a, "attention.sliding_window", (uint32_t)window);
    if (hp->attn_softcap != 0 && sm_arch_has_key(a, F(attn_softcap)))
        put_f32(w, a, "attn_logit_softcapping", hp->attn_softcap);
    if (hp->final_softcap != 0 && sm_arch_has_key(a, F(final_softcap)))
        put_f32(w, a, "final_logit_softcapping", hp->final_softcap);
    if (a->local_rope) put_f32(w, a, "rope.freq_base_swa", hp->rope_base_local);
    if (sm_arch_is_rope(a) && (hp->rope_yarn || (hp->rope_freq_scale > 0 && hp->rope_freq_scale != 1.0f))) {
        put_str(w, a, "rope.scaling.type", hp->rope_yarn ? "yarn" : "linear");
        put_f32(w, a, "rope.scaling.factor", hp->rope_freq_scale > 0 ? 1.0f / hp->rope_freq_scale : 1.0f);
        if (hp->rope_yarn) put_u32(w, a, "rope.scaling.original_context_length", (uint32_t)hp->n_ctx_orig);
        if (hp->rope_yarn && hp->yarn_beta_fast > 0 && hp->yarn_beta_fast != SM_YARN_BETA_FAST)
            put_f32(w, a, "rope.scaling.yarn_beta_fast", hp->yarn_beta_fast);
        if (hp->rope_yarn && hp->yarn_beta_slow > 0 && hp->yarn_beta_slow != SM_YARN_BETA_SLOW)
            put_f32(w, a, "rope.scaling.yarn_beta_slow", hp->yarn_beta_slow);
    }
    if (sm_arch_is_rope(a) && hp->rope_attn_factor > 0 && hp->rope_attn_factor != 1.0f)
        put_f32(w, a, "rope.scaling.attn_factor", hp->rope_attn_factor);
    if (hp->n_expert > 0 && sm_arch_has_key(a, F(n_expert))) {   /* a mixture of experts (init --experts) */
        put_u32(w, a, "expert_count", (uint32_t)hp->n_expert);
        put_u32(w, a, "expert_used_count", (uint32_t)hp->n_expert_used);
        if (sm_arch_has_key(a, F(ffn_exp))) put_u32(w, a, "expert_feed_forward_length", (uint32_t)hp->ffn_exp);
        if (sm_arch_has_key(a, F(ffn_shexp))) put_u32(w, a, "expert_shared_feed_forward_length", (uint32_t)hp->ffn_shexp);
    }
}

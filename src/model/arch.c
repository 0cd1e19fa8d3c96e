/* arch.c - the architecture tables (see arch.h). Metadata keys and tensor
 * names are those llama.cpp's converter writes (gguf-py/gguf/constants.py
 * at c392e509), so files move between the two engines. */
#include "arch.h"
#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_write.h"

#include <stdio.h>
#include <string.h>

#define F(field) offsetof(sm_hparams, field)
#define INT_KEY(k, field, req, lo, hi, dflt) {k, F(field), 0, req, lo, hi, dflt}
#define FLT_KEY(k, field, lo, hi, dflt) {k, F(field), 1, 0, lo, hi, dflt}
#define DERIVED (-1)

/* The keys every architecture has, with its own context limit. */
#define COMMON_KEYS(max_ctx)                                                      \
    INT_KEY("context_length", n_ctx_train, 1, 1, max_ctx, 0),                     \
    INT_KEY("embedding_length", dim, 1, 1, 1 << 16, 0),                           \
    INT_KEY("block_count", n_layers, 1, 1, 1024, 0),                              \
    INT_KEY("feed_forward_length", ffn_dim, 1, 1, 1 << 20, 0),                    \
    INT_KEY("attention.head_count", n_heads, 1, 1, 1 << 16, 0)

static const sm_role_info roles[SM_T_COUNT] = {
    [SM_T_TOKEN_EMBD] = {"token_embd.weight", SM_D_EMBD, SM_D_VOCAB, SM_INIT_RANDOM, 0},
    [SM_T_POS_EMBD] = {"position_embd.weight", SM_D_EMBD, SM_D_CTX, SM_INIT_RANDOM, 0},
    [SM_T_OUTPUT_NORM] = {"output_norm.weight", SM_D_EMBD, SM_D_ONE, SM_INIT_ONE, 0},
    [SM_T_OUTPUT_NORM_B] = {"output_norm.bias", SM_D_EMBD, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_OUTPUT] = {"output.weight", SM_D_EMBD, SM_D_VOCAB, SM_INIT_RANDOM, 1},
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
    [SM_T_ATTN_OUT] = {"blk.%d.attn_output.weight", SM_D_Q, SM_D_EMBD, SM_INIT_RANDOM, 1},
    [SM_T_ATTN_OUT_B] = {"blk.%d.attn_output.bias", SM_D_EMBD, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_FFN_NORM] = {"blk.%d.ffn_norm.weight", SM_D_EMBD, SM_D_ONE, SM_INIT_ONE, 0},
    [SM_T_FFN_NORM_B] = {"blk.%d.ffn_norm.bias", SM_D_EMBD, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_FFN_GATE] = {"blk.%d.ffn_gate.weight", SM_D_EMBD, SM_D_FFN, SM_INIT_RANDOM, 1},
    [SM_T_FFN_UP] = {"blk.%d.ffn_up.weight", SM_D_EMBD, SM_D_FFN, SM_INIT_RANDOM, 1},
    [SM_T_FFN_UP_B] = {"blk.%d.ffn_up.bias", SM_D_FFN, SM_D_ONE, SM_INIT_ZERO, 0},
    [SM_T_FFN_DOWN] = {"blk.%d.ffn_down.weight", SM_D_FFN, SM_D_EMBD, SM_INIT_RANDOM, 1},
    [SM_T_FFN_DOWN_B] = {"blk.%d.ffn_down.bias", SM_D_EMBD, SM_D_ONE, SM_INIT_ZERO, 0},
};

#define T(role) {role, 0}
#define OPT(role) {role, SM_TF_OPTIONAL}

static const sm_arch_info archs[SM_ARCH_COUNT] = {
    [SM_ARCH_LLAMA] = {
        "llama",
        {COMMON_KEYS(1 << 24),
         INT_KEY("attention.head_count_kv", n_kv_heads, 0, 1, 1 << 16, DERIVED),
         INT_KEY("rope.dimension_count", rope_dim, 0, 0, 1 << 16, DERIVED),
         FLT_KEY("rope.freq_base", rope_base, 1e-3, 1e12, 10000.0),
         FLT_KEY("attention.layer_norm_rms_epsilon", norm_eps, 0.0, 1.0, 1e-5)},
        {T(SM_T_TOKEN_EMBD), T(SM_T_OUTPUT_NORM), OPT(SM_T_OUTPUT),
         T(SM_T_ATTN_NORM), T(SM_T_ATTN_Q), T(SM_T_ATTN_K), T(SM_T_ATTN_V), T(SM_T_ATTN_OUT),
         T(SM_T_FFN_NORM), T(SM_T_FFN_GATE), T(SM_T_FFN_UP), T(SM_T_FFN_DOWN)},
        12, SM_NORM_RMS, SM_FFN_SWIGLU, SM_POS_ROPE, 0, 0,
    },
    [SM_ARCH_GPT2] = {
        "gpt2",
        {COMMON_KEYS(1 << 20),
         FLT_KEY("attention.layer_norm_epsilon", norm_eps, 0.0, 1.0, 1e-5)},
        {T(SM_T_TOKEN_EMBD), T(SM_T_POS_EMBD), T(SM_T_OUTPUT_NORM), T(SM_T_OUTPUT_NORM_B), OPT(SM_T_OUTPUT),
         T(SM_T_ATTN_NORM), T(SM_T_ATTN_NORM_B), T(SM_T_ATTN_QKV), T(SM_T_ATTN_QKV_B), T(SM_T_ATTN_OUT),
         T(SM_T_ATTN_OUT_B), T(SM_T_FFN_NORM), T(SM_T_FFN_NORM_B), T(SM_T_FFN_UP), T(SM_T_FFN_UP_B),
         T(SM_T_FFN_DOWN), T(SM_T_FFN_DOWN_B)},
        17, SM_NORM_LAYER, SM_FFN_GELU, SM_POS_LEARNED, 1, 1,
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
        if (w < 0 || (size_t)w >= cap - n) break;
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
    case SM_D_VOCAB: return hp->n_vocab;
    case SM_D_CTX: return hp->n_ctx_train;
    default: return 1;
    }
}

int sm_arch_has(const sm_arch_info *a, int role, int *flags) {
    for (int i = 0; i < a->n_tensors; i++)
        if (a->tensors[i].role == role) {
            if (flags) *flags = a->tensors[i].flags;
            return 1;
        }
    return 0;
}

static int *int_field(sm_hparams *hp, size_t off) { return (int *)((char *)hp + off); }
static float *float_field(sm_hparams *hp, size_t off) { return (float *)((char *)hp + off); }

sm_status sm_arch_check_hparams(const sm_hparams *hp, sm_status status, sm_error *err) {
    if (hp->n_heads < 1 || hp->dim % hp->n_heads != 0)
        return sm_fail(err, status, "embedding length %d is not a multiple of head count %d", hp->dim, hp->n_heads);
    if (hp->n_kv_heads < 1 || hp->n_kv_heads > hp->n_heads || hp->n_heads % hp->n_kv_heads != 0)
        return sm_fail(err, status, "head count %d is not a multiple of KV head count %d", hp->n_heads,
                       hp->n_kv_heads);
    if (archs[hp->arch].pos == SM_POS_ROPE) {
        if (hp->rope_dim < 0 || hp->rope_dim > hp->head_dim)
            return sm_fail(err, status, "rope dimension count %d is out of range (0 to %d)", hp->rope_dim,
                           hp->head_dim);
        if (hp->rope_dim % 2 != 0) return sm_fail(err, status, "rope dimension count %d is odd", hp->rope_dim);
    }
    return SM_OK;
}

sm_status sm_arch_read_hparams(const sm_gguf *g, sm_hparams *hp, sm_error *err) {
    const sm_arch_info *a = &archs[hp->arch];
    hp->n_kv_heads = hp->rope_dim = DERIVED;   /* unless the architecture has the key */
    for (const sm_arch_key *k = a->keys; k->key; k++) {
        char full[128];
        snprintf(full, sizeof full, "%s.%s", a->name, k->key);
        if (k->is_float) {
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
    /* what a key's absence means, and what follows from the others */
    if (hp->dim % hp->n_heads != 0)
        return sm_fail(err, SM_ERR_FORMAT, "embedding length %d is not a multiple of head count %d", hp->dim,
                       hp->n_heads);
    hp->head_dim = hp->dim / hp->n_heads;
    if (hp->n_kv_heads == DERIVED) hp->n_kv_heads = hp->n_heads;
    if (a->pos != SM_POS_ROPE) hp->rope_dim = 0;
    else if (hp->rope_dim == DERIVED) hp->rope_dim = hp->head_dim;
    return sm_arch_check_hparams(hp, SM_ERR_FORMAT, err);
}

void sm_arch_write_hparams(sm_gguf_writer *w, const sm_hparams *hp) {
    const sm_arch_info *a = &archs[hp->arch];
    for (const sm_arch_key *k = a->keys; k->key; k++) {
        char full[128];
        snprintf(full, sizeof full, "%s.%s", a->name, k->key);
        const char *base = (const char *)hp + k->field;
        if (k->is_float) sm_gguf_put_f32(w, full, *(const float *)base);
        else sm_gguf_put_u32(w, full, (uint32_t)*(const int *)base);
    }
}

/* trainer.c - a trainable model (see trainer.h): its parameters laid out
 * from the architecture's table, one block each for weights, gradients and
 * AdamW moments with named pointers per layer, the activations of one batch,
 * and the model's forward pass, loss and backward pass built from the
 * operations in train_ops.c. */
#include "trainer.h"
#include "train_ops.h"
#include "core/alloc.h"
#include "core/cpu.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "model/session.h"
#include "model/steps.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_LAYERS 256

/* ------------------------------------------------------------ layout */

/* Where each role's tensor lives in sm_train_tensors / sm_train_layer;
 * a role without a slot is one the passes below do not compute. */
typedef struct slot {
    uint8_t used, in_layer;
    size_t offset;
} slot;

/* the dimensions RoPE rotates in each head (all of them unless the file says fewer) */
static int s_rope_dim(const sm_hparams *hp) { return hp->rope_dim > 0 ? hp->rope_dim : hp->head_dim; }

static const slot slots[SM_T_COUNT] = {
    [SM_T_TOKEN_EMBD] = {1, 0, offsetof(sm_train_tensors, tok_embd)},
    [SM_T_POS_EMBD] = {1, 0, offsetof(sm_train_tensors, pos_embd)},
    [SM_T_OUTPUT_NORM] = {1, 0, offsetof(sm_train_tensors, output_norm)},
    [SM_T_OUTPUT_NORM_B] = {1, 0, offsetof(sm_train_tensors, output_norm_b)},
    [SM_T_OUTPUT] = {1, 0, offsetof(sm_train_tensors, output)},
    [SM_T_OUTPUT_B] = {1, 0, offsetof(sm_train_tensors, output_b)},
    [SM_T_TOKEN_EMBD_NORM] = {1, 0, offsetof(sm_train_tensors, tok_norm)},
    [SM_T_TOKEN_EMBD_NORM_B] = {1, 0, offsetof(sm_train_tensors, tok_norm_b)},
    [SM_T_ATTN_NORM] = {1, 1, offsetof(sm_train_layer, attn_norm)},
    [SM_T_ATTN_NORM_B] = {1, 1, offsetof(sm_train_layer, attn_norm_b)},
    [SM_T_ATTN_Q] = {1, 1, offsetof(sm_train_layer, wq)},
    [SM_T_ATTN_K] = {1, 1, offsetof(sm_train_layer, wk)},
    [SM_T_ATTN_V] = {1, 1, offsetof(sm_train_layer, wv)},
    [SM_T_ATTN_Q_B] = {1, 1, offsetof(sm_train_layer, bq)},
    [SM_T_ATTN_K_B] = {1, 1, offsetof(sm_train_layer, bk)},
    [SM_T_ATTN_V_B] = {1, 1, offsetof(sm_train_layer, bv)},
    [SM_T_ATTN_Q_NORM] = {1, 1, offsetof(sm_train_layer, q_norm)},
    [SM_T_ATTN_K_NORM] = {1, 1, offsetof(sm_train_layer, k_norm)},
    [SM_T_ATTN_QKV] = {1, 1, offsetof(sm_train_layer, wqkv)},
    [SM_T_ATTN_QKV_B] = {1, 1, offsetof(sm_train_layer, b_qkv)},
    [SM_T_ATTN_OUT] = {1, 1, offsetof(sm_train_layer, wo)},
    [SM_T_ATTN_OUT_B] = {1, 1, offsetof(sm_train_layer, b_o)},
    [SM_T_FFN_NORM] = {1, 1, offsetof(sm_train_layer, ffn_norm)},
    [SM_T_FFN_NORM_B] = {1, 1, offsetof(sm_train_layer, ffn_norm_b)},
    [SM_T_FFN_GATE] = {1, 1, offsetof(sm_train_layer, w_gate)},
    [SM_T_FFN_UP] = {1, 1, offsetof(sm_train_layer, w_up)},
    [SM_T_FFN_GATE_B] = {1, 1, offsetof(sm_train_layer, b_gate)},
    [SM_T_FFN_UP_B] = {1, 1, offsetof(sm_train_layer, b_up)},
    [SM_T_FFN_DOWN] = {1, 1, offsetof(sm_train_layer, w_down)},
    [SM_T_FFN_DOWN_B] = {1, 1, offsetof(sm_train_layer, b_down)},
    [SM_T_ATTN_POST_NORM] = {1, 1, offsetof(sm_train_layer, attn_post_norm)},
    [SM_T_FFN_POST_NORM] = {1, 1, offsetof(sm_train_layer, ffn_post_norm)},
};

/* Whether the model's Q, K and V are one fused matrix: where the architecture
 * has one, unless it may come apart (phi2) and the model has them apart. */
static int fused_qkv(const sm_train_config *c) {
    int flags = 0;
    if (!sm_arch_has(sm_arch_get(c->hp.arch), SM_T_ATTN_QKV, &flags)) return 0;
    return !(flags & SM_TF_FUSED) || !(c->optional_roles >> SM_T_ATTN_Q & 1);
}

/* The tensors trained: the required ones, the output head unless it is
 * tied, the optional per-layer ones the model has (cfg.optional_roles), and
 * a fused Q/K/V unless the model has them apart. */
static int trained(const sm_trainer *t, const sm_arch_tensor *at) {
    if (at->role == SM_T_OUTPUT) return !t->cfg.tied;
    if (at->flags & SM_TF_FUSED) return fused_qkv(&t->cfg);
    return !(at->flags & SM_TF_OPTIONAL) || (at->role >= SM_T_LAYER_FIRST && (t->cfg.optional_roles >> at->role & 1));
}

static void add_param(sm_trainer *t, const sm_hparams *hp, const sm_arch_tensor *at, int layer, int count_only) {
    int role = at->role;
    const sm_role_info *ri = sm_role(role);
    int64_t c64, r64;
    sm_arch_tensor_shape(hp, at, &c64, &r64);
    int cols = (int)c64, rows = (int)r64;
    if (!count_only) {
        sm_param *p = &t->params[t->n_params];
        sm_tensor_name(role, layer, p->name, sizeof p->name);
        p->rows = rows;
        p->cols = cols;
        p->n_dims = ri->rows == SM_D_ONE ? 1 : 2;
        p->role = role;
        p->layer = role < SM_T_LAYER_FIRST ? -1 : layer;
        p->offset = t->n_floats;
        p->decay = ri->decay;
    }
    t->n_params++;
    t->n_floats += (size_t)rows * cols;
}

/* The role of each projection slot. */
static const int proj_role[SM_P_COUNT] = {SM_T_ATTN_Q, SM_T_ATTN_K, SM_T_ATTN_V, SM_T_ATTN_QKV,
                                          SM_T_ATTN_OUT, SM_T_FFN_GATE, SM_T_FFN_UP, SM_T_FFN_DOWN};

/* LoRA training: whether projection p has an adapter (the base has the
 * matrix and its role is a target). */
static int adapted(const sm_train_config *c, int p) {
    if (!c->base || !(c->lora_roles >> proj_role[p] & 1)) return 0;
    const sm_matrix *w = sm_model_matrix((sm_model *)c->base, proj_role[p], 0);
    return w && w->data;
}

/* LoRA training's parameters: A (rank x cols) and B (rows x rank) of each
 * adapted matrix, layer by layer, named as llama.cpp's adapters name them. */
static void layout_lora_params(sm_trainer *t, int count_only) {
    const sm_hparams *hp = &t->cfg.hp;
    int r = t->cfg.lora_rank;
    for (int l = 0; l < hp->n_layers; l++)
        for (int p = 0; p < SM_P_COUNT; p++) {
            if (!adapted(&t->cfg, p)) continue;
            sm_arch_tensor at = {(uint8_t)proj_role[p], 0, 0, 0};
            const sm_arch_info *a = sm_arch_get(hp->arch);
            for (int i = 0; i < a->n_tensors; i++)
                if (a->tensors[i].role == proj_role[p]) at = a->tensors[i];
            int64_t cols, rows;
            sm_arch_tensor_shape(hp, &at, &cols, &rows);
            for (int k = SM_LORA_A; k <= SM_LORA_B; k++) {
                if (!count_only) {
                    sm_param *pp = &t->params[t->n_params];
                    char base[48];
                    sm_tensor_name(proj_role[p], l, base, sizeof base);
                    snprintf(pp->name, sizeof pp->name, "%s.lora_%c", base, k == SM_LORA_A ? 'a' : 'b');
                    pp->rows = k == SM_LORA_A ? r : (int)rows;
                    pp->cols = k == SM_LORA_A ? (int)cols : r;
                    pp->n_dims = 2;
                    pp->role = proj_role[p];
                    pp->layer = l;
                    pp->offset = t->n_floats;
                    pp->decay = 1;
                    pp->lora = k;
                }
                t->n_params++;
                t->n_floats += (size_t)(k == SM_LORA_A ? r * cols : rows * r);
            }
        }
}

/* The tensors of the architecture, in the order and with the names of a
 * GGUF file: the model-wide ones, then layer by layer. */
static void layout_params(sm_trainer *t, int count_only) {
    const sm_hparams *hp = &t->cfg.hp;
    const sm_arch_info *a = sm_arch_get(hp->arch);
    t->n_params = 0;
    t->n_floats = 0;
    if (t->cfg.base) {
        layout_lora_params(t, count_only);
        return;
    }
    for (int i = 0; i < a->n_tensors; i++) {
        int role = a->tensors[i].role;
        if (role < SM_T_LAYER_FIRST && trained(t, &a->tensors[i])) add_param(t, hp, &a->tensors[i], -1, count_only);
    }
    for (int l = 0; l < hp->n_layers; l++)
        for (int i = 0; i < a->n_tensors; i++)
            if (a->tensors[i].role >= SM_T_LAYER_FIRST && trained(t, &a->tensors[i]))
                add_param(t, hp, &a->tensors[i], l, count_only);
}

/* LoRA training: F32 copies of the frozen matrices within the budget
 * (cfg.lora_cache_bytes), the head first (the largest product of a small
 * model), then layer by layer: the rows of a quantized matrix and, where
 * the kernel level has no strided product (which reads the rows by
 * columns), the transpose of any, in one block, 64-byte aligned each. They
 * are made here once, so a step neither dequantizes nor transposes them;
 * the values are the ones the per-product dequantization gives. An F32
 * matrix's rows are read where they are. Without the memory for the block
 * nothing is cached. */
static void cache_frozen(sm_trainer *t) {
    uint64_t budget = t->cfg.lora_cache_bytes;
    int n = 1 + t->cfg.hp.n_layers * SM_P_COUNT;
    sm_train_frozen *fs[1 + MAX_LAYERS * SM_P_COUNT];
    fs[0] = &t->frozen_out;
    for (int i = 1; i < n; i++) fs[i] = &t->lora[i - 1].base;
    for (int i = 0; i < n; i++)
        if (fs[i]->m && fs[i]->m->type == SM_GGML_F32) fs[i]->w = fs[i]->m->data;
    size_t floats = 0;
    int transposes = !t->kt->gemm;
    uint8_t take[1 + MAX_LAYERS * SM_P_COUNT] = {0};
    for (int i = 0; i < n && budget > 0; i++) {
        const sm_matrix *w = fs[i]->m;
        if (!w) continue;
        size_t one = ((size_t)w->rows * w->cols + 15) & ~(size_t)15;
        size_t need = ((w->type == SM_GGML_F32 ? 0 : 1) + (transposes ? 1 : 0)) * one;
        if (!need || (floats + need) * sizeof(float) > budget) continue;
        take[i] = 1;
        floats += need;
    }
    if (!floats || !(t->frozen_f32 = sm_alloc_huge(floats * sizeof(float)))) return;
    t->frozen_f32_floats = floats;
    float *at = t->frozen_f32;
    for (int i = 0; i < n; i++) {
        if (!take[i]) continue;
        const sm_matrix *w = fs[i]->m;
        size_t one = ((size_t)w->rows * w->cols + 15) & ~(size_t)15;
        float *rows = NULL;
        if (w->type != SM_GGML_F32) {
            rows = at;
            at += one;
        }
        sm_train_frozen_copy(rows, transposes ? at : NULL, w);
        if (rows) fs[i]->w = rows;
        if (transposes) {
            fs[i]->wt = at;
            at += one;
        }
    }
}

/* LoRA training: the frozen base's vectors (norms, biases: F32 in every
 * GGUF file SmallMind loads) as the weights' named pointers, its matrices
 * as the projections' base, and the adapters' places in the blocks. */
static void point_lora(sm_trainer *t) {
    sm_model *m = (sm_model *)t->cfg.base;
    const sm_arch_info *a = sm_arch_get(t->cfg.hp.arch);
    for (int i = 0; i < a->n_tensors; i++) {
        int role = a->tensors[i].role, global = role < SM_T_LAYER_FIRST;
        if (!slots[role].used) continue;
        for (int l = 0; l < (global ? 1 : t->cfg.hp.n_layers); l++) {
            const float **v = sm_model_vector(m, role, l);
            if (!v) continue;
            char *dst = global ? (char *)&t->W : (char *)&t->W.layer[l];
            *(float **)(dst + slots[role].offset) = (float *)*v;
        }
    }
    t->frozen_embd = &m->tok_embd;
    t->frozen_pos = m->pos_embd.data ? &m->pos_embd : NULL;
    t->frozen_out.m = &m->output;
    for (int l = 0; l < t->cfg.hp.n_layers; l++)
        for (int p = 0; p < SM_P_COUNT; p++) {
            const sm_matrix *w = sm_model_matrix(m, proj_role[p], l);
            t->lora[l * SM_P_COUNT + p].base.m = w && w->data ? w : NULL;
        }
    cache_frozen(t);
    for (int i = 0; i < t->n_params; i++) {
        const sm_param *pp = &t->params[i];
        int p = 0;
        while (proj_role[p] != pp->role) p++;
        sm_train_lora *lo = &t->lora[pp->layer * SM_P_COUNT + p];
        if (pp->lora == SM_LORA_A) lo->a = t->w + pp->offset, lo->ga = t->g + pp->offset;
        else lo->b = t->w + pp->offset, lo->gb = t->g + pp->offset;
    }
}

/* Fills the named pointers of one block (weights or gradients). */
static void point_tensors(const sm_trainer *t, float *base, sm_train_tensors *out) {
    sm_train_layer *layers = out->layer;
    memset(out, 0, sizeof *out);
    memset(layers, 0, (size_t)t->cfg.hp.n_layers * sizeof *layers);
    out->layer = layers;
    if (t->cfg.base) return;   /* LoRA: point_lora */
    for (int i = 0; i < t->n_params; i++) {
        const sm_param *p = &t->params[i];
        char *dst = p->layer < 0 ? (char *)out : (char *)&layers[p->layer];
        *(float **)(dst + slots[p->role].offset) = base + p->offset;
    }
    if (t->cfg.tied) out->output = out->tok_embd;
}

/* Activations of one layer for a batch of N = B*T tokens. */
typedef struct layer_acts {
    float *x;                        /* the residual stream into the layer */
    float *n1, *n1_mean, *n1_rstd;   /* first norm (mean unused by RMSNorm) */
    float *q, *k, *v;                /* separate projections, or NULL (q: N x heads*head_dim) */
    float *qr, *kr, *q_rstd, *k_rstd;   /* per-head q/k RMSNorm (qwen3): q and k before it, and its rstd per head */
    float *qkv;                      /* a fused projection, or NULL */
    float *att;                      /* B x heads x T x T attention weights */
    float *att_lse;                  /* with soft-capped scores (gemma2): B x heads x T log-sum-exps */
    float *atty;                     /* attention output, before the projection */
    float *ao, *ao_rstd;             /* a post-norm's input (gemma2/3): the output projection, its rstd */
    float *x_mid;                    /* the stream after the attention block */
    float *n2, *n2_mean, *n2_rstd;
    float *h1, *h2, *h;              /* FFN: up (GELU) or gate/up (SwiGLU, GEGLU), or N x [gate up] fused
                                      * in h1 (phi3), and the activation */
    float *fo, *fo_rstd;             /* the down projection before a post-norm */
    float *ax[SM_P_COUNT];           /* LoRA: A x of each adapted projection (N x rank) */
} layer_acts;

typedef struct acts {
    layer_acts *layer;               /* points into a fixed array */
    float *e, *e_mean, *e_rstd;      /* the embeddings before their norm (bloom), or NULL */
    float *x_out;                    /* the stream after the last layer */
    float *nf, *nf_mean, *nf_rstd;
    float *probs;                    /* N x vocab: logits, then probabilities, then their gradient */
    float *rope_cos, *rope_sin;      /* T x head_dim/2 */
    float *rope_cos_l, *rope_sin_l;  /* the sliding-window layers' (gemma3), or the same tables */
} acts;

static size_t layout_acts(const sm_trainer *t, float *base, layer_acts *L, acts *a, int recompute) {
    const sm_hparams *hp = &t->cfg.hp;
    const sm_arch_info *arch = sm_arch_get(hp->arch);
    size_t N = (size_t)t->B * t->T, C = (size_t)hp->dim, F = (size_t)hp->ffn_dim, off = 0;
    size_t KV = (size_t)hp->n_kv_heads * hp->head_dim, att = (size_t)t->B * hp->n_heads * t->T * t->T;
    size_t QD = (size_t)hp->n_heads * hp->head_dim;   /* the queries' width (dim, except qwen3's and gemma's) */
    int fused = fused_qkv(&t->cfg), gated = arch->ffn == SM_FFN_SWIGLU || arch->ffn == SM_FFN_GEGLU;
    int qk_norm = arch->qk_norm == SM_QK_NORM_HEAD, fused_ffn = arch->ffn == SM_FFN_SWIGLU_FUSED;
    int attn_post = sm_arch_has(arch, SM_T_ATTN_POST_NORM, NULL), ffn_post = sm_arch_has(arch, SM_T_FFN_POST_NORM, NULL);
#define TAKE(ptr, n) do { (ptr) = base ? base + off : NULL; off += (n); } while (0)
    for (int l = 0; l < hp->n_layers; l++) {
        layer_acts *y = &L[l];
        if (recompute && l > 0) {
            /* checkpointing: a layer's own input, the rest shared with layer 0 */
            *y = L[0];
            TAKE(y->x, N * C);
            continue;
        }
        TAKE(y->x, N * C);
        TAKE(y->n1, N * C); TAKE(y->n1_mean, N); TAKE(y->n1_rstd, N);
        if (fused) {
            TAKE(y->qkv, N * (QD + 2 * KV));
            y->q = y->k = y->v = NULL;
        } else {
            y->qkv = NULL;
            TAKE(y->q, N * QD); TAKE(y->k, N * KV); TAKE(y->v, N * KV);
        }
        y->qr = y->kr = y->q_rstd = y->k_rstd = NULL;
        if (qk_norm) {
            TAKE(y->qr, N * QD); TAKE(y->kr, N * KV);
            TAKE(y->q_rstd, N * hp->n_heads); TAKE(y->k_rstd, N * hp->n_kv_heads);
        }
        TAKE(y->att, att);
        y->att_lse = NULL;
        if (hp->attn_softcap != 0) TAKE(y->att_lse, (size_t)t->B * hp->n_heads * t->T);
        TAKE(y->atty, N * QD);
        y->ao = y->ao_rstd = y->fo = y->fo_rstd = NULL;
        if (attn_post) { TAKE(y->ao, N * C); TAKE(y->ao_rstd, N); }
        TAKE(y->x_mid, N * C);
        TAKE(y->n2, N * C); TAKE(y->n2_mean, N); TAKE(y->n2_rstd, N);
        TAKE(y->h1, N * F * (fused_ffn ? 2 : 1));
        if (gated) TAKE(y->h2, N * F); else y->h2 = NULL;
        TAKE(y->h, N * F);
        if (ffn_post) { TAKE(y->fo, N * C); TAKE(y->fo_rstd, N); }
        for (int p = 0; p < SM_P_COUNT; p++) {
            y->ax[p] = NULL;
            if (adapted(&t->cfg, p)) TAKE(y->ax[p], N * (size_t)t->cfg.lora_rank);
        }
    }
    a->e = a->e_mean = a->e_rstd = NULL;
    if (sm_arch_has(arch, SM_T_TOKEN_EMBD_NORM, NULL)) { TAKE(a->e, N * C); TAKE(a->e_mean, N); TAKE(a->e_rstd, N); }
    TAKE(a->x_out, N * C);
    TAKE(a->nf, N * C); TAKE(a->nf_mean, N); TAKE(a->nf_rstd, N);
    TAKE(a->probs, N * (size_t)hp->n_vocab);
    size_t rot = (size_t)s_rope_dim(hp) / 2;
    TAKE(a->rope_cos, (size_t)t->T * rot);
    TAKE(a->rope_sin, (size_t)t->T * rot);
    a->rope_cos_l = a->rope_cos, a->rope_sin_l = a->rope_sin;
    if (arch->local_rope) {
        TAKE(a->rope_cos_l, (size_t)t->T * rot);
        TAKE(a->rope_sin_l, (size_t)t->T * rot);
    }
#undef TAKE
    a->layer = L;
    return off;
}

sm_status sm_trainer_new(const sm_train_config *cfg, int B, int T, int n_threads, int recompute, sm_trainer **out,
                         sm_error *err) {
    *out = NULL;
    const sm_hparams *hp = &cfg->hp;
    const sm_arch_info *arch = sm_arch_get(hp->arch);
    if (!arch) return sm_fail(err, SM_ERR_INVALID_ARG, "unknown architecture %d", hp->arch);
    /* RoPE (either pairing), linearly scaled or YaRN or not (a trained model's file keeps the scaling:
     * sm_arch_write_hparams); Llama 3's frequency factors and Phi-3's long/short ones only on a frozen
     * base (train.c refuses the full fine-tune: the factors are not written). */
    int rope = arch->pos == SM_POS_ROPE || arch->pos == SM_POS_ROPE_NEOX;
    int experts = sm_arch_experts(arch);
    if (experts == SM_EXPERTS_ALWAYS || (experts && (cfg->optional_roles >> SM_T_FFN_GATE_INP & 1)))
        return sm_fail(err, SM_ERR_UNSUPPORTED, "training does not support a mixture of experts (this %s model's "
                       "expert layers) yet", arch->name);
    /* ALiBi (bloom, mpt), but not an mpt file's learned positions besides */
    if (arch->pos == SM_POS_ALIBI && (cfg->optional_roles >> SM_T_POS_EMBD & 1))
        return sm_fail(err, SM_ERR_UNSUPPORTED, "training does not support this %s model's position embeddings "
                       "beside ALiBi", arch->name);
    /* stablelm 12B's per-head LayerNorms of q and k (the other stablelm files have none) */
    if (arch->qk_norm == SM_QK_NORM_HEAD_LN && (cfg->optional_roles >> SM_T_ATTN_Q_NORM & 1))
        return sm_fail(err, SM_ERR_UNSUPPORTED, "training does not support this %s model's per-head q/k LayerNorms "
                       "yet", arch->name);
    /* a clamp on the fused QKV without RoPE (mpt): a clamped value's gradient is 0, read from the stored
     * values; RoPE would turn them first (olmo: refused) */
    int features_ok = (rope || arch->pos == SM_POS_LEARNED || arch->pos == SM_POS_ALIBI) && !arch->norm_plain &&
                      (hp->clamp_kqv == 0 || (fused_qkv(cfg) && !rope)) &&
                      (arch->qk_norm == SM_QK_NORM_NONE || arch->qk_norm == SM_QK_NORM_HEAD ||
                       arch->qk_norm == SM_QK_NORM_HEAD_LN);
    for (int i = 0; i < arch->n_tensors; i++)
        if (!(arch->tensors[i].flags & SM_TF_OPTIONAL) && !slots[arch->tensors[i].role].used) features_ok = 0;
    if (!features_ok)
        return sm_fail(err, SM_ERR_UNSUPPORTED, "training does not support the %s architecture yet", arch->name);
    if (hp->n_swa > 0 && hp->n_swa < T)
        return sm_fail(err, SM_ERR_UNSUPPORTED, "this %s model attends through a sliding window of %d tokens: "
                       "training supports sequences up to that (--seq %d)", arch->name, hp->n_swa, hp->n_swa);
    if (hp->n_layers < 1 || hp->n_layers > MAX_LAYERS || hp->dim < 1 || hp->n_heads < 1 || hp->head_dim < 1 ||
        (fused_qkv(cfg) && hp->n_heads * hp->head_dim != hp->dim) || hp->n_kv_heads < 1 || hp->n_heads % hp->n_kv_heads ||
        hp->n_vocab < 2 || hp->ffn_dim < 1 || B < 1 || T < 1 || T > hp->n_ctx_train)
        return sm_fail(err, SM_ERR_INVALID_ARG, "training shape out of range (layers %d, dim %d, heads %d/%d, T %d, ctx %d)",
                       hp->n_layers, hp->dim, hp->n_heads, hp->n_kv_heads, T, hp->n_ctx_train);
    if (rope && (s_rope_dim(hp) % 2 || s_rope_dim(hp) > hp->head_dim))
        return sm_fail(err, SM_ERR_INVALID_ARG, "a %s model needs an even number of rotated dimensions, at most the "
                       "head size", arch->name);
    int n_adapted = 0;
    for (int p = 0; p < SM_P_COUNT; p++) n_adapted += adapted(cfg, p);
    if (cfg->base && (cfg->lora_rank < 1 || cfg->lora_rank > 4096 || !n_adapted))
        return sm_fail(err, SM_ERR_INVALID_ARG, "LoRA needs a rank from 1 to 4096 and a target the %s model has",
                       arch->name);
    if (cfg->base) {
        const sm_model *m = cfg->base;
        if (m->hp.dim != hp->dim || m->hp.n_layers != hp->n_layers || m->hp.n_vocab != hp->n_vocab)
            return sm_fail(err, SM_ERR_INVALID_ARG, "the LoRA base has another shape than the configuration");
        const sm_matrix *mats[3] = {&m->tok_embd, &m->pos_embd, &m->output};
        for (int i = 0; i < 3; i++)
            if (mats[i]->data && !sm_type(mats[i]->type)->to_float)
                return sm_fail(err, SM_ERR_UNSUPPORTED, "the base's %s matrices cannot be read for training",
                               sm_type_name(mats[i]->type));
        for (int l = 0; l < hp->n_layers; l++)
            for (int p = 0; p < SM_P_COUNT; p++) {
                const sm_matrix *w = sm_model_matrix((sm_model *)m, proj_role[p], l);
                if (w && w->data && !sm_type(w->type)->to_float)
                    return sm_fail(err, SM_ERR_UNSUPPORTED, "the base's %s matrices cannot be read for training",
                                   sm_type_name(w->type));
            }
    }
    const sm_kernel_table *kt = sm_kernels_get(NULL);
    if (cfg->bf16_products && !sm_kernels_mixed(kt))
        return sm_fail(err, SM_ERR_UNSUPPORTED, "mixed precision (--bf16) needs a CPU with AVX512_BF16 "
                       "(vdpbf16ps) and its avx512 kernels; this one runs the %s kernels: train without --bf16",
                       kt->name);
    sm_trainer *t = sm_calloc(1, sizeof *t);
    if (!t) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    t->cfg = *cfg;
    t->B = B;
    t->T = T;
    t->kt = kt;
    layout_params(t, 1);
    t->params = sm_calloc((size_t)t->n_params, sizeof *t->params);
    if (t->params) layout_params(t, 0);
    layer_acts L[MAX_LAYERS];
    acts a;
    t->recompute = recompute;
    t->act_floats_full = layout_acts(t, NULL, L, &a, 0);
    t->act_floats = layout_acts(t, NULL, L, &a, recompute);
    size_t N = (size_t)B * T, C = (size_t)hp->dim, F = (size_t)hp->ffn_dim;
    size_t att = (size_t)B * hp->n_heads * T * T;
    size_t QD = (size_t)hp->n_heads * hp->head_dim, QKV = QD + 2 * (size_t)hp->n_kv_heads * hp->head_dim;
    size_t CQ = C > QD ? C : QD;   /* the wider of the stream and the queries */
    /* backward temporaries: stream gradient, its partner, the attention and FFN
     * intermediates, one row of attention weights per head, and q/k before a
     * per-head norm's backward */
    size_t scratch = 4 * N * CQ + 3 * N * C + 2 * att + 3 * N * F + N * (3 * C > QKV ? 3 * C : QKV) +
                     (arch->qk_norm == SM_QK_NORM_HEAD ? N * (QD + (QKV - QD) / 2) : 0);
    /* the largest operand of any product: N x (3C, q+k+v, F, vocab) or F x C */
    size_t F2 = arch->ffn == SM_FFN_SWIGLU_FUSED ? 2 * F : F;   /* the up projection's outputs */
    size_t wide = (size_t)(3 * C > F2 ? 3 * C : F2);
    if (QKV > wide) wide = QKV;
    if ((size_t)hp->n_vocab > wide) wide = (size_t)hp->n_vocab;
    size_t big = (N + 16) * wide, matrix = wide * (CQ > F ? CQ : F);
    if (matrix > big) big = matrix;
    /* The products' buffers (train_ops.c). Levels without the strided
     * product (kt->gemm) transpose operands into mm_at and mm_bt and write
     * results to mm_out, each up to the largest operand, and pack batches
     * into mm_pack (16 N more: the LoRA gradients' m x N, m padded to 16).
     * With it no product transposes an operand or copies a result: only a
     * frozen matrix without an F32 copy is transposed (into mm_bt); and where
     * batches are also read in place (kt->gemm_strided) only one read by
     * columns of at most SM_TRAIN_PACKED_BYTES is packed (its panels pad it
     * by under gemm_mr rows of k <= max(N, wide)). */
    size_t at = big, bt = big, res = big, pack = big + 16 * wide + 16 * N;
    if (t->kt->gemm) {
        at = res = 0;
        bt = cfg->base ? matrix : 0;
        if (t->kt->gemm_strided) {
            size_t most = SM_TRAIN_PACKED_BYTES / sizeof(float) + (size_t)t->kt->gemm_mr * (N > wide ? N : wide);
            if (most < pack) pack = most;
        }
    }
    t->scratch_floats = scratch;
    t->mm_floats = at + bt + pack + res;
    t->mm_at = at ? sm_alloc_huge(at * sizeof(float)) : NULL;
    t->mm_bt = bt ? sm_alloc_huge(bt * sizeof(float)) : NULL;
    t->mm_pack = sm_alloc_huge(pack * sizeof(float));
    t->mm_out = res ? sm_alloc_huge(res * sizeof(float)) : NULL;
    t->pool = sm_threadpool_new(n_threads > 0 ? n_threads : sm_cpu_physical_cores());
    if (t->pool) {   /* attention's panels ((T + 16) x max(T, hd)) and block (T x T), per thread */
        size_t st = (size_t)T, wd = st > (size_t)hp->head_dim ? st : (size_t)hp->head_dim;
        t->att_buf_floats = ((st + 16) * wd + st * st + 15) & ~(size_t)15;
        t->att_buf = sm_alloc_huge((size_t)sm_threadpool_size(t->pool) * t->att_buf_floats * sizeof(float));
        t->mm_floats += (size_t)sm_threadpool_size(t->pool) * t->att_buf_floats;
        if (t->kt->gemm_strided) {
            size_t g = (size_t)sm_threadpool_size(t->pool) * t->kt->gemm_scratch;
            t->gemm_scratch = sm_alloc_huge(g * sizeof(float));
            t->mm_floats += g;
        }
    }
    t->row_loss = sm_calloc(N, sizeof *t->row_loss);
    t->zeros = sm_calloc((size_t)hp->dim, sizeof(float));
    if (hp->final_softcap != 0 && t->pool)
        t->cap_rows = sm_alloc_huge((size_t)sm_threadpool_size(t->pool) * hp->n_vocab * sizeof(float));
    t->norm_parts = sm_calloc(t->n_floats / SM_NORM_CHUNK + 1, sizeof *t->norm_parts);
    t->w = sm_alloc_huge(t->n_floats * sizeof(float));
    t->g = sm_alloc_huge(t->n_floats * sizeof(float));
    t->m = sm_alloc_huge(t->n_floats * sizeof(float));
    t->v = sm_alloc_huge(t->n_floats * sizeof(float));
    t->act = sm_alloc_huge(t->act_floats * sizeof(float));
    t->scratch = sm_alloc_huge(scratch * sizeof(float));
    t->W.layer = sm_calloc((size_t)hp->n_layers, sizeof *t->W.layer);
    t->G.layer = sm_calloc((size_t)hp->n_layers, sizeof *t->G.layer);
    int lora_ok = 1;
    if (cfg->base) {
        t->lora = sm_calloc((size_t)hp->n_layers * SM_P_COUNT, sizeof *t->lora);
        t->lora_dax = sm_alloc_huge(N * (size_t)cfg->lora_rank * sizeof(float));
        /* B^T or A^T, then a gradient; ax or g rank-major (train_ops.c) */
        t->lora_tmp = sm_alloc_huge((2 * wide + N) * (size_t)cfg->lora_rank * sizeof(float));
        t->deq_cols = (int)(CQ > F ? CQ : F);
        if (t->pool)
            t->deq = sm_alloc_huge((size_t)sm_threadpool_size(t->pool) * SM_TRAIN_DEQ_ROWS * t->deq_cols *
                                      sizeof(float));
        t->lora_scale = cfg->lora_alpha != 0.0f ? cfg->lora_alpha / (float)cfg->lora_rank : 1.0f;
        if (t->kt->gemm) {   /* the largest adapted matrix: C columns by up to q+k+v (fused QKV) or F rows,
                              * F by C, or QD by C (q, and o transposed) */
            size_t most = C * (QKV > F2 ? QKV : F2);
            if (QD * C > most) most = QD * C;
            t->lora_w = sm_alloc_huge(most * sizeof(float));
            t->mm_floats += most;
        }
        lora_ok = t->lora && t->lora_dax && t->lora_tmp && t->deq && (!t->kt->gemm || t->lora_w);
    }
    if (!t->params || !t->w || !t->g || !t->m || !t->v || !t->act || !t->scratch || (at && !t->mm_at) ||
        (bt && !t->mm_bt) || !t->mm_pack || (res && !t->mm_out) || !t->pool || !t->att_buf || (t->kt->gemm_strided && !t->gemm_scratch) ||
        !t->row_loss || !t->zeros || !t->norm_parts || !t->W.layer || !t->G.layer || !lora_ok ||
        (hp->final_softcap != 0 && !t->cap_rows)) {
        sm_trainer_free(t);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory for training (%.1f M parameters, %.1f M activations)",
                       (double)t->n_floats / 1e6, (double)t->act_floats / 1e6);
    }
    memset(t->w, 0, t->n_floats * sizeof(float));
    memset(t->g, 0, t->n_floats * sizeof(float));
    memset(t->m, 0, t->n_floats * sizeof(float));
    memset(t->v, 0, t->n_floats * sizeof(float));
    point_tensors(t, t->w, &t->W);
    point_tensors(t, t->g, &t->G);
    if (cfg->base) point_lora(t);
    layout_acts(t, t->act, L, &a, recompute);
    /* the angles as a session computes them: linear scale and attention factor, and a frozen base's
     * frequency factors (train.c refuses the full fine-tune of a base with them) */
    /* the factors a session of context T would use (sm_session_rope): rope_freqs, else Phi-3's long ones
     * when T exceeds the original context, else its short ones */
    const sm_model *fb = cfg->base;
    const float *ff = !fb ? NULL : fb->rope_freqs ? fb->rope_freqs : T > hp->n_ctx_orig ? fb->rope_long : fb->rope_short;
    sm_rope_spec r;
    sm_rope_init(&r, hp, 0, ff);
    sm_rope_table(a.rope_cos, a.rope_sin, T, &r);
    if (a.rope_cos_l != a.rope_cos) {   /* as sm_session_rope: the local base, unscaled */
        sm_rope_init(&r, hp, 1, NULL);
        sm_rope_table(a.rope_cos_l, a.rope_sin_l, T, &r);
    }
    *out = t;
    return SM_OK;
}

void sm_trainer_free(sm_trainer *t) {
    if (!t) return;
    sm_free(t->params);
    sm_free(t->w);
    sm_free(t->g);
    sm_free(t->m);
    sm_free(t->v);
    sm_free(t->act);
    sm_free(t->scratch);
    sm_free(t->mm_at);
    sm_free(t->mm_bt);
    sm_free(t->mm_pack);
    sm_free(t->mm_out);
    sm_free(t->att_buf);
    sm_free(t->gemm_scratch);
    sm_free(t->row_loss);
    sm_free(t->cap_rows);
    sm_free(t->zeros);
    sm_free(t->norm_parts);
    sm_free(t->W.layer);
    sm_free(t->G.layer);
    sm_free(t->lora);
    sm_free(t->lora_dax);
    sm_free(t->lora_tmp);
    sm_free(t->lora_w);
    sm_free(t->deq);
    sm_free(t->frozen_f32);
    sm_threadpool_free(t->pool);
    sm_free(t);
}

const sm_param *sm_trainer_param(const sm_trainer *t, const char *name) {
    for (int i = 0; i < t->n_params; i++)
        if (!strcmp(t->params[i].name, name)) return &t->params[i];
    return NULL;
}

/* ------------------------------------------------- forward and backward */

typedef struct shape {
    int B, T, N, C, F, V, H, hd, KV, QD;   /* QD = H hd, the queries' width */
    int layer_norm, ffn, rope, neox, learned_pos;     /* ffn: sm_ffn_kind; neox: RoPE pairs (i, i + rot/2) */
    int rope_dim;                                     /* the rotated dimensions of each head (stablelm: a part) */
    int qk_norm;                                      /* per-head q/k RMSNorm before RoPE (qwen3, gemma3) */
    int qk_late;                                      /* ... after RoPE instead (hunyuan-dense) */
    float eps, embd_scale;                            /* embeddings times this (gemma: sqrt(dim)), or 1 */
    float residual_scale, logit_scale;                /* granite: blocks' outputs times this, logits over that */
    int parallel;                                     /* x + attn(norm(x)) + ffn(norm'(x)) (phi2, gptneox) */
    float clamp;                                      /* the fused QKV clamped to [-clamp, clamp] (mpt), or 0 */
    att_shape as;
} shape;

static shape shape_of(const sm_trainer *t) {
    const sm_hparams *hp = &t->cfg.hp;
    const sm_arch_info *a = sm_arch_get(hp->arch);
    shape s;
    s.B = t->B;
    s.T = t->T;
    s.N = t->B * t->T;
    s.C = hp->dim;
    s.F = hp->ffn_dim;
    s.V = hp->n_vocab;
    s.H = hp->n_heads;
    s.hd = hp->head_dim;
    s.KV = hp->n_kv_heads * hp->head_dim;
    s.QD = hp->n_heads * hp->head_dim;
    s.qk_norm = a->qk_norm == SM_QK_NORM_HEAD;
    s.qk_late = s.qk_norm && a->qk_norm_after_rope;
    s.layer_norm = a->norm == SM_NORM_LAYER;
    s.ffn = a->ffn;
    s.embd_scale = hp->embedding_scale;
    s.residual_scale = hp->residual_scale;
    s.logit_scale = hp->logit_scale;
    s.rope = a->pos == SM_POS_ROPE || a->pos == SM_POS_ROPE_NEOX;
    s.neox = a->pos == SM_POS_ROPE_NEOX;
    s.rope_dim = s_rope_dim(hp);
    s.learned_pos = a->pos == SM_POS_LEARNED;
    s.eps = hp->norm_eps;
    int fused = fused_qkv(&t->cfg);
    s.parallel = hp->parallel_residual;
    s.clamp = hp->clamp_kqv;
    s.as = (att_shape){s.B, s.T, s.H, hp->n_kv_heads, s.hd, fused ? s.QD + 2 * s.KV : s.QD, fused ? s.QD + 2 * s.KV : s.KV,
                       hp->q_scale, hp->attn_softcap, hp->max_alibi_bias};
    return s;
}

/* ------------------------------------------------- profiled operations
 * Each operation in a scope of the trainer's profiler (one branch when it
 * is off), credited with the FLOPs it does and the bytes it reads and
 * writes (estimates for the products' transposes and the attention's
 * weights; see the issue-18 notes in docs/ARCHITECTURE.md). */
#define OP_DOTS(t, step, flops, bf16_flops, bytes, ...)                                       \
    do {                                                                                      \
        SM_PROF_BEGIN((t)->prof, (step), -1);                                                 \
        __VA_ARGS__;                                                                          \
        SM_PROF_END_BF16((t)->prof, (uint64_t)(flops), (uint64_t)(bf16_flops), (uint64_t)(bytes)); \
    } while (0)
#define OP(t, step, flops, bytes, ...) OP_DOTS(t, step, flops, 0, bytes, __VA_ARGS__)

static uint64_t mm_fwd_flops(int N, int C, int OC, int bias) { return 2ull * N * C * OC + (bias ? (uint64_t)N * OC : 0); }
static uint64_t mm_fwd_bytes(int N, int C, int OC) { return 4ull * ((uint64_t)C * OC + (uint64_t)N * C + (uint64_t)N * OC); }
static uint64_t mm_bwd_flops(int N, int C, int OC, int bias) { return 4ull * N * C * OC + (bias ? (uint64_t)N * OC : 0); }
static uint64_t mm_bwd_bytes(int N, int C, int OC) {
    return 4ull * (4ull * C * OC + 3ull * N * OC + 4ull * N * C);
}

/* Of a weight matrix's products' FLOPs, those mixed precision runs as BF16
 * dots (the profiler judges them against that peak): all of them, or none */
static uint64_t dots(const sm_trainer *t, uint64_t flops) { return t->cfg.bf16_products ? flops : 0; }

static void matmul_fwd(const sm_trainer *t, int step, float *out, const float *inp, const float *w, const float *bias,
                       int N, int C, int OC) {
    OP_DOTS(t, step, mm_fwd_flops(N, C, OC, bias != NULL), dots(t, mm_fwd_flops(N, C, OC, 0)), mm_fwd_bytes(N, C, OC),
            sm_train_matmul_fwd(t, out, inp, w, bias, N, C, OC));
}

static void matmul_bwd(const sm_trainer *t, int step, float *dinp, int set, float *dw, float *dbias, const float *dout,
                       const float *inp, const float *w, int N, int C, int OC) {
    OP_DOTS(t, step, mm_bwd_flops(N, C, OC, dbias != NULL), dots(t, mm_bwd_flops(N, C, OC, 0)), mm_bwd_bytes(N, C, OC),
            sm_train_matmul_bwd(t, dinp, set, dw, dbias, dout, inp, w, N, C, OC));
}

/* (query, position) pairs of causal attention over B sequences of T */
static uint64_t att_pairs(const att_shape *a) { return (uint64_t)a->B * a->heads * a->T * (a->T + 1) / 2; }
static uint64_t att_att_bytes(const att_shape *a) { return 4ull * a->B * a->heads * a->T * a->T; }

/* A pre-norm (w NULL: none, exaone4's blocks, so out is a copy of in; a LayerNorm without b: bias 0, mpt's). */
static void norm_fwd(const sm_trainer *t, const shape *s, float *out, float *mean, float *rstd, const float *in,
                     const float *w, const float *b) {
    if (!w) memcpy(out, in, (size_t)s->N * s->C * sizeof(float));
    else if (s->layer_norm) sm_train_layernorm_fwd(t, out, mean, rstd, in, w, b ? b : t->zeros, s->N, s->C, s->eps);
    else sm_train_rmsnorm_fwd(t, out, rstd, in, w, s->N, s->C, s->eps);
}

static void norm_bwd(const sm_trainer *t, const shape *s, float *dx, float *dw, float *db, const float *dout,
                     const float *in, const float *w, const float *mean, const float *rstd) {
    if (!w) sm_train_add(t, dx, dout, (size_t)s->N * s->C);   /* no norm: the gradient passes as it is */
    else if (s->layer_norm) sm_train_layernorm_bwd(t, dx, dw, db, dout, in, w, mean, rstd, s->N, s->C);
    else sm_train_rmsnorm_bwd(t, dx, dw, dout, in, w, rstd, s->N, s->C);
}

/* A projection out = in W^T (+ bias): the trained matrix w, or in LoRA
 * training the frozen base matrix plus its adapter's scale * B (A in). */
static void proj_fwd(const sm_trainer *t, int step, const layer_acts *y, int l, int p, float *out, const float *in,
                     const float *w, const float *bias, int N, int C, int OC) {
    if (!t->lora) {
        matmul_fwd(t, step, out, in, w, bias, N, C, OC);
        return;
    }
    const sm_train_lora *lo = &t->lora[l * SM_P_COUNT + p];
    uint64_t r = lo->a ? (uint64_t)t->cfg.lora_rank : 0;
    /* the product through the (merged) matrix mixed precision's, the adapter's own in F32 */
    if (lo->a && t->lora_w) {   /* one product through W + scale B A (2 OC C r to merge), and A x (2 N r C) */
        OP_DOTS(t, step, mm_fwd_flops(N, C, OC, bias != NULL) + 2 * r * ((uint64_t)OC * C + (uint64_t)N * C),
                dots(t, mm_fwd_flops(N, C, OC, 0)), mm_fwd_bytes(N, C, OC),
                sm_train_lora_merged_fwd(t, out, y->ax[p], in, &lo->base, lo->a, lo->b, bias, t->lora_scale, N,
                                         (int)r));
        return;
    }
    /* the adapter's products: 2 N r (C + OC) */
    OP_DOTS(t, step, mm_fwd_flops(N, C, OC, bias != NULL) + 2 * r * N * (C + OC), dots(t, mm_fwd_flops(N, C, OC, 0)),
            mm_fwd_bytes(N, C, OC), sm_train_matmul_fwd_frozen(t, out, in, &lo->base, bias, N);
            if (lo->a)
                sm_train_lora_fwd(t, out, y->ax[p], in, lo->a, lo->b, t->lora_scale, N, C, OC, t->cfg.lora_rank));
}

/* Its backward pass: dinp += dout W (and, for a trained matrix, dw and
 * dbias; in LoRA training the adapter's gradients instead, and dinp may be
 * NULL: no input gradient). */
static void proj_bwd(const sm_trainer *t, int step, const layer_acts *y, int l, int p, float *dinp, int set,
                     float *dw, float *dbias, const float *dout, const float *inp, const float *w, int N, int C,
                     int OC) {
    if (!t->lora) {
        matmul_bwd(t, step, dinp, set, dw, dbias, dout, inp, w, N, C, OC);
        return;
    }
    const sm_train_lora *lo = &t->lora[l * SM_P_COUNT + p];
    /* the input's gradient (unless dinp is NULL), and 4 N r (C + OC) for A and B (2 N r C less without dinp) */
    uint64_t r = lo->a ? (uint64_t)t->cfg.lora_rank : 0, in = dinp ? 1 : 0;
    if (lo->a && t->lora_w) {   /* dinp through W + scale B A (merged again: 2 OC C r), then A's and B's gradients */
        OP_DOTS(t, step, in * 2ull * C * OC * (N + r) + 4 * r * N * OC + 2 * r * N * C, dots(t, in * 2ull * N * C * OC),
                mm_fwd_bytes(N, C, OC),
                if (dinp)
                    sm_train_lora_merged_dinp(t, dinp, set, dout, &lo->base, lo->a, lo->b, t->lora_scale, N, (int)r);
                sm_train_lora_bwd(t, NULL, lo->ga, lo->gb, t->lora_dax, dout, inp, y->ax[p], lo->a, lo->b,
                                  t->lora_scale, N, C, OC, (int)r));
        return;
    }
    OP_DOTS(t, step, in * 2ull * N * C * OC + 4 * r * N * (C + OC) - (1 - in) * 2 * r * N * C,
            dots(t, in * 2ull * N * C * OC), mm_fwd_bytes(N, C, OC),
            if (dinp) sm_train_matmul_bwd_frozen(t, dinp, set, dout, &lo->base, N);
            if (lo->a) sm_train_lora_bwd(t, dinp, lo->ga, lo->gb, t->lora_dax, dout, inp, y->ax[p], lo->a, lo->b,
                                         t->lora_scale, N, C, OC, t->cfg.lora_rank));
}

/* RoPE on q and k (rows at the strides of the attention's shape) by layer
 * l's angles (a sliding-window layer's own table, where the architecture
 * has one); sign -1 rotates back, on their gradients in the backward pass. */
static void rope(const sm_trainer *t, const shape *s, int l, const acts *a, float *q, float *k, float sign) {
    if (!sm_layer_has_rope(&t->cfg.hp, l)) return;   /* smollm3's NoPE layers */
    int local = sm_layer_is_swa(&t->cfg.hp, l);
    const float *cs = local ? a->rope_cos_l : a->rope_cos, *sn = local ? a->rope_sin_l : a->rope_sin;
    uint64_t n = (uint64_t)s->N * (s->QD + s->KV);
    OP(t, SM_SC_ROPE, 3 * n, 8 * n,
       sm_train_rope(t, q, (size_t)s->as.qs, s->N, s->T, s->H, s->hd, s->rope_dim, s->neox, cs, sn, sign);
       sm_train_rope(t, k, (size_t)s->as.kvs, s->N, s->T, s->as.kv_heads, s->hd, s->rope_dim, s->neox, cs, sn, sign));
    /* mistral3: the queries times their position's temperature, after RoPE; a scale per row commutes with
     * the rotation, so the backward scales the gradient alike */
    const sm_hparams *hp = &t->cfg.hp;
    for (int row = 0; hp->attn_temp_scale != 0 && row < s->N; row++) {
        float *qr = q + (size_t)row * s->as.qs, temp = sm_attn_temp(hp, row % s->T);
        for (int i = 0; i < s->QD; i++) qr[i] *= temp;
    }
}

/* A block's post-norm (gemma2/3), backward: the gradient of its input (the
 * block's projection) from dout, into buf (cleared: the norm's backward
 * adds), and its weight's gradient. */
static const float *post_norm_bwd(const sm_trainer *t, const shape *s, float *buf, float *dw, const float *dout,
                                  const float *in, const float *w, const float *rstd) {
    uint64_t nc = (uint64_t)s->N * s->C;
    OP(t, SM_SC_POST_NORM, 9 * nc, 16 * nc, memset(buf, 0, (size_t)nc * sizeof(float));
       sm_train_rmsnorm_bwd(t, buf, dw, dout, in, w, rstd, s->N, s->C));
    return buf;
}

/* The feed-forward block's input: its norm's output, or without a norm of
 * its own in a parallel block (phi2) the attention's normed input. */
static const float *ffn_input(const shape *s, const sm_train_layer *w, const layer_acts *y) {
    return s->parallel && !w->ffn_norm ? y->n1 : y->n2;
}

/* What the feed-forward block's own norm reads: the stream after attention,
 * or in a parallel block (gptneox) the layer's input. */
static const float *ffn_norm_input(const shape *s, const layer_acts *y) { return s->parallel ? y->x : y->x_mid; }

/* That norm's backward pass: its weight's gradients, and its input's added into dx. */
static void ffn_norm_bwd(const sm_trainer *t, const shape *s, const sm_train_layer *w, sm_train_layer *g,
                         const layer_acts *y, const float *dn, float *dx) {
    uint64_t nc = (uint64_t)s->N * s->C;
    OP(t, SM_SC_FFN_NORM, (s->layer_norm ? 12 : 9) * nc, 16 * nc,
       norm_bwd(t, s, dx, g->ffn_norm, g->ffn_norm_b, dn, ffn_norm_input(s, y), w->ffn_norm, y->n2_mean, y->n2_rstd));
}

/* The backward of a clamp to [-c, c] (sm_clamp): the gradient of a value the clamp moved (stored at +-c) is 0. */
static void clamp_bwd(float *dx, const float *x, float c, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (x[i] >= c || x[i] <= -c) dx[i] = 0.0f;
}

/* One layer's forward pass: from y->x to next (the next layer's input). */
static void forward_layer(const sm_trainer *t, const shape *s, int l, const sm_train_layer *w, layer_acts *y,
                          float *next, const acts *a) {
    int N = s->N, C = s->C, F = s->F, KV = s->KV;
    uint64_t nc = (uint64_t)N * C, nf = (uint64_t)N * F, pairs = att_pairs(&s->as);
    /* attention block */
    OP(t, SM_SC_ATTN_NORM, (s->layer_norm ? 7 : 4) * nc, 12 * nc,
       norm_fwd(t, s, y->n1, y->n1_mean, y->n1_rstd, y->x, w->attn_norm, w->attn_norm_b));
    float *q = y->q, *k = y->k, *v = y->v;
    int QD = s->QD;
    if (y->qkv) {
        proj_fwd(t, SM_SC_QKV_PROJ, y, l, SM_P_QKV, y->qkv, y->n1, w->wqkv, w->b_qkv, N, C, QD + 2 * KV);
        q = y->qkv, k = y->qkv + QD, v = y->qkv + QD + KV;
        if (s->clamp > 0) {   /* mpt's clip_qkv */
            uint64_t nv = (uint64_t)N * (QD + 2 * KV);
            OP(t, SM_SC_QKV_PROJ, nv, 8 * nv, sm_clamp(y->qkv, s->clamp, nv));
        }
    } else {
        /* with a per-head q/k norm the projections land in qr and kr, normalized into q and k below */
        proj_fwd(t, SM_SC_Q_PROJ, y, l, SM_P_Q, s->qk_norm ? y->qr : q, y->n1, w->wq, w->bq, N, C, QD);
        proj_fwd(t, SM_SC_K_PROJ, y, l, SM_P_K, s->qk_norm ? y->kr : k, y->n1, w->wk, w->bk, N, C, KV);
        proj_fwd(t, SM_SC_V_PROJ, y, l, SM_P_V, v, y->n1, w->wv, w->bv, N, C, KV);
    }
    /* hunyuan-dense: the projections turned in place (qr, kr), then normalized into q and k */
    if (s->rope && s->qk_late) rope(t, s, l, a, y->qr, y->kr, 1.0f);
    if (s->qk_norm) {   /* every head's q and k: RMSNorm over head_dim with the layer's q_norm / k_norm */
        uint64_t nq = (uint64_t)N * (QD + KV);
        OP(t, SM_SC_QK_NORM, 4 * nq, 12 * nq,
           sm_train_rmsnorm_fwd(t, q, y->q_rstd, y->qr, w->q_norm, N * s->H, s->hd, s->eps);
           sm_train_rmsnorm_fwd(t, k, y->k_rstd, y->kr, w->k_norm, N * s->as.kv_heads, s->hd, s->eps));
    }
    if (s->rope && !s->qk_late) rope(t, s, l, a, q, k, 1.0f);
    /* bytes: q, k, v read and the output written once, the weights written (a head's keys and values are
     * read again for every query, from the cache) */
    uint64_t nkv = (uint64_t)N * KV;
    uint64_t nq = (uint64_t)N * QD;
    OP(t, SM_SC_ATTENTION, 4 * pairs * s->hd + 5 * pairs, 4 * (2 * nq + 2 * nkv) + att_att_bytes(&s->as),
       sm_train_attention_fwd(t, y->atty, y->att, y->att_lse, q, k, v, s->as));
    /* granite: the block's output times residual_scale, through the product's input (kept so: the
     * projection's weight gradient reads it) */
    if (s->residual_scale != 1.0f) OP(t, SM_SC_RESIDUAL, nq, 8 * nq, sm_train_scale(t, y->atty, s->residual_scale, nq));
    /* with a post-norm x_mid = x + norm(o), o kept in ao; else x_mid = x + o */
    proj_fwd(t, SM_SC_O_PROJ, y, l, SM_P_O, y->ao ? y->ao : y->x_mid, y->atty, w->wo, w->b_o, N, QD, C);
    if (y->ao)
        OP(t, SM_SC_POST_NORM, 4 * nc, 12 * nc,
           sm_train_rmsnorm_fwd(t, y->x_mid, y->ao_rstd, y->ao, w->attn_post_norm, N, C, s->eps));
    OP(t, SM_SC_RESIDUAL, nc, 12 * nc, sm_train_add(t, y->x_mid, y->x, (size_t)nc));
    /* feed-forward block: its input normed from x_mid, or with a parallel residual from the layer's input x
     * (gptneox), or attention's normed input itself (phi2); the block adds into x_mid either way */
    const float *fin = ffn_input(s, w, y);
    if (w->ffn_norm || !s->parallel)   /* exaone4: no norm, n2 a copy of x_mid */
        OP(t, SM_SC_FFN_NORM, (s->layer_norm ? 7 : 4) * nc, 12 * nc,
           norm_fwd(t, s, y->n2, y->n2_mean, y->n2_rstd, ffn_norm_input(s, y), w->ffn_norm, w->ffn_norm_b));
    if (s->ffn == SM_FFN_SWIGLU || s->ffn == SM_FFN_GEGLU) {
        proj_fwd(t, SM_SC_FFN_GATE, y, l, SM_P_GATE, y->h1, fin, w->w_gate, w->b_gate, N, C, F);
        proj_fwd(t, SM_SC_FFN_UP, y, l, SM_P_UP, y->h2, fin, w->w_up, w->b_up, N, C, F);
        int gelu = s->ffn == SM_FFN_GEGLU;
        OP(t, SM_SC_FFN_ACT, (gelu ? 13 : 6) * nf, 12 * nf, sm_train_gated_fwd(t, gelu, y->h, y->h1, y->h2, (size_t)nf));
    } else if (s->ffn == SM_FFN_SWIGLU_FUSED) {   /* one product into N x [gate up] */
        proj_fwd(t, SM_SC_FFN_UP, y, l, SM_P_UP, y->h1, fin, w->w_up, w->b_up, N, C, 2 * F);
        OP(t, SM_SC_FFN_ACT, 6 * nf, 12 * nf, sm_train_swiglu_fused_fwd(t, y->h, y->h1, N, F));
    } else {
        proj_fwd(t, SM_SC_FFN_UP, y, l, SM_P_UP, y->h1, fin, w->w_up, w->b_up, N, C, F);
        OP(t, SM_SC_FFN_ACT, 12 * nf, 12 * nf, sm_train_gelu_fwd(t, s->ffn == SM_FFN_RELU2, y->h, y->h1, (size_t)nf));
    }
    if (s->residual_scale != 1.0f) OP(t, SM_SC_RESIDUAL, nf, 8 * nf, sm_train_scale(t, y->h, s->residual_scale, nf));
    proj_fwd(t, SM_SC_FFN_DOWN, y, l, SM_P_DOWN, y->fo ? y->fo : next, y->h, w->w_down, w->b_down, N, F, C);
    if (y->fo)
        OP(t, SM_SC_POST_NORM, 4 * nc, 12 * nc,
           sm_train_rmsnorm_fwd(t, next, y->fo_rstd, y->fo, w->ffn_post_norm, N, C, s->eps));
    OP(t, SM_SC_RESIDUAL, nc, 12 * nc, sm_train_add(t, next, y->x_mid, (size_t)nc));
}

/* One layer's backward pass: dx holds the gradient of the stream after the
 * layer on entry and of its input on return. */
static void backward_layer(const sm_trainer *t, const shape *s, int l, const sm_train_layer *w, sm_train_layer *g,
                           const layer_acts *y, const acts *a, float *dx) {
    int N = s->N, C = s->C, F = s->F, KV = s->KV, QD = s->QD, CQ = C > QD ? C : QD;
    int QKV = QD + 2 * KV, dqw = 3 * C > QKV ? 3 * C : QKV;
    uint64_t nc = (uint64_t)N * C, nf = (uint64_t)N * F, nq = (uint64_t)N * QD, pairs = att_pairs(&s->as);
    /* dtmp: the attention output's gradient (N x QD); dq: q, k, v's; dqr: q and k's before a per-head norm */
    float *dtmp = dx + (size_t)N * C, *dn = dtmp + (size_t)N * CQ, *datt = dn + (size_t)N * C;
    float *dq = datt + (size_t)N * C, *dh1 = dq + (size_t)N * dqw, *dh2 = dh1 + (size_t)N * F, *dh = dh2 + (size_t)N * F;
    float *dqr = dh + (size_t)N * F;
    /* feed-forward block: it adds into the stream, so dx passes to x_mid unchanged. The first product
     * into a gradient buffer sets it (set = 1), the others add to it. */
    /* the down projection's output gradient: through the post-norm, into dn, where there is one */
    const float *dfo = y->fo ? post_norm_bwd(t, s, dn, g->ffn_post_norm, dx, y->fo, w->ffn_post_norm, y->fo_rstd) : dx;
    const float *fin = ffn_input(s, w, y);
    proj_bwd(t, SM_SC_FFN_DOWN, y, l, SM_P_DOWN, dh, 1, g->w_down, g->b_down, dfo, y->h, w->w_down, N, F, C);
    if (s->residual_scale != 1.0f) OP(t, SM_SC_RESIDUAL, nf, 8 * nf, sm_train_scale(t, dh, s->residual_scale, nf));
    if (s->ffn == SM_FFN_SWIGLU || s->ffn == SM_FFN_GEGLU) {   /* the activations' gradients are set too */
        int gelu = s->ffn == SM_FFN_GEGLU;
        OP(t, SM_SC_FFN_ACT, (gelu ? 30 : 12) * nf, 20 * nf,
           sm_train_gated_bwd(t, gelu, dh1, dh2, y->h1, y->h2, dh, (size_t)nf));
        proj_bwd(t, SM_SC_FFN_GATE, y, l, SM_P_GATE, dn, 1, g->w_gate, g->b_gate, dh1, fin, w->w_gate, N, C, F);
        proj_bwd(t, SM_SC_FFN_UP, y, l, SM_P_UP, dn, 0, g->w_up, g->b_up, dh2, fin, w->w_up, N, C, F);
    } else if (s->ffn == SM_FFN_SWIGLU_FUSED) {   /* dh1 and dh2 side by side: N x [dgate dup] */
        OP(t, SM_SC_FFN_ACT, 12 * nf, 20 * nf, sm_train_swiglu_fused_bwd(t, dh1, y->h1, dh, N, F));
        proj_bwd(t, SM_SC_FFN_UP, y, l, SM_P_UP, dn, 1, g->w_up, g->b_up, dh1, fin, w->w_up, N, C, 2 * F);
    } else {
        OP(t, SM_SC_FFN_ACT, 16 * nf, 12 * nf, sm_train_gelu_bwd(t, s->ffn == SM_FFN_RELU2, dh1, y->h1, dh, (size_t)nf));
        proj_bwd(t, SM_SC_FFN_UP, y, l, SM_P_UP, dn, 1, g->w_up, g->b_up, dh1, fin, w->w_up, N, C, F);
    }
    /* dn: the gradient of the FFN's input. In sequence it reaches x_mid through the norm; in parallel it
     * reaches the layer's input x, after the output projection has read dx (the gradient of x_mid and of
     * the layer's output alike) below */
    if (!s->parallel) ffn_norm_bwd(t, s, w, g, y, dn, dx);
    /* attention block: dx is now the gradient of x_mid */
    const float *dao = y->ao ? post_norm_bwd(t, s, dn, g->attn_post_norm, dx, y->ao, w->attn_post_norm, y->ao_rstd) : dx;
    proj_bwd(t, SM_SC_O_PROJ, y, l, SM_P_O, dtmp, 1, g->wo, g->b_o, dao, y->atty, w->wo, N, QD, C);
    if (s->parallel && w->ffn_norm) ffn_norm_bwd(t, s, w, g, y, dn, dx);   /* gptneox; dn is free again */
    /* phi2: the FFN read the attention's normed input, so q, k and v add their input gradients to its */
    int set_dn = !(s->parallel && !w->ffn_norm);
    if (s->residual_scale != 1.0f) OP(t, SM_SC_RESIDUAL, nq, 8 * nq, sm_train_scale(t, dtmp, s->residual_scale, nq));
    /* LoRA's first layer: the gradient of its input would only reach the frozen embeddings, so the
     * q, k, v products skip their input gradients (the adapters' own gradients remain) and the
     * attention norm its backward pass */
    float *dn_qkv = t->lora && l == 0 ? NULL : dn;
    /* bytes: q, k, v, the output's gradient and the weights read, dq, dk, dv written */
    uint64_t att_flops = 8 * pairs * s->hd + 4 * pairs;
    uint64_t att_bytes = 4 * (3 * nq + 4 * (uint64_t)N * KV) + att_att_bytes(&s->as);
    if (y->qkv) {
        OP(t, SM_SC_ATTENTION, att_flops, att_bytes,
           sm_train_attention_bwd(t, dq, dq + QD, dq + QD + KV, datt, dtmp, y->att, y->att_lse, y->qkv, y->qkv + QD,
                                  y->qkv + QD + KV, s->as));
        if (s->rope) rope(t, s, l, a, dq, dq + QD, -1.0f);   /* phi3 */
        if (s->clamp > 0) {   /* mpt: no gradient through a clamped value */
            uint64_t nv = (uint64_t)N * QKV;
            OP(t, SM_SC_QKV_PROJ, nv, 8 * nv, clamp_bwd(dq, y->qkv, s->clamp, nv));
        }
        proj_bwd(t, SM_SC_QKV_PROJ, y, l, SM_P_QKV, dn_qkv, set_dn, g->wqkv, g->b_qkv, dq, y->n1, w->wqkv, N, C, QKV);
    } else {
        float *dk = dq + (size_t)N * QD, *dv = dk + (size_t)N * KV;
        OP(t, SM_SC_ATTENTION, att_flops, att_bytes,
           sm_train_attention_bwd(t, dq, dk, dv, datt, dtmp, y->att, y->att_lse, y->q, y->k, y->v, s->as));
        if (s->rope && !s->qk_late) rope(t, s, l, a, dq, dk, -1.0f);
        if (s->qk_norm) {   /* through the per-head norms: the gradients of q and k as projected */
            float *dkr = dqr + (size_t)N * QD;
            uint64_t nqk = nq + (uint64_t)N * KV;
            OP(t, SM_SC_QK_NORM, 9 * nqk, 16 * nqk,
               memset(dqr, 0, (size_t)nqk * sizeof(float));   /* the norm's backward adds its input gradient */
               sm_train_rmsnorm_bwd(t, dqr, g->q_norm, dq, y->qr, w->q_norm, y->q_rstd, N * s->H, s->hd);
               sm_train_rmsnorm_bwd(t, dkr, g->k_norm, dk, y->kr, w->k_norm, y->k_rstd, N * s->as.kv_heads, s->hd));
            dq = dqr, dk = dkr;
        }
        if (s->rope && s->qk_late) rope(t, s, l, a, dq, dk, -1.0f);   /* hunyuan-dense: turned back last */
        proj_bwd(t, SM_SC_Q_PROJ, y, l, SM_P_Q, dn_qkv, set_dn, g->wq, g->bq, dq, y->n1, w->wq, N, C, QD);
        proj_bwd(t, SM_SC_K_PROJ, y, l, SM_P_K, dn_qkv, 0, g->wk, g->bk, dk, y->n1, w->wk, N, C, KV);
        proj_bwd(t, SM_SC_V_PROJ, y, l, SM_P_V, dn_qkv, 0, g->wv, g->bv, dv, y->n1, w->wv, N, C, KV);
    }
    if (dn_qkv)
        OP(t, SM_SC_ATTN_NORM, (s->layer_norm ? 12 : 9) * nc, 16 * nc,
           norm_bwd(t, s, dx, g->attn_norm, g->attn_norm_b, dn, y->x, w->attn_norm, y->n1_mean, y->n1_rstd));
}

static void layout_now(sm_trainer *t, layer_acts *L, acts *a) { layout_acts(t, t->act, L, a, t->recompute); }

void sm_trainer_forward(sm_trainer *t, const int32_t *x) {
    shape s = shape_of(t);
    layer_acts L[MAX_LAYERS];
    acts a;
    layout_now(t, L, &a);
    const sm_train_tensors *W = &t->W;
    uint64_t nc = (uint64_t)s.N * s.C;
    SM_PROF_BEGIN(t->prof, SM_SC_FORWARD, -1);
    OP(t, SM_SC_EMBED, s.learned_pos ? nc : 0, (s.learned_pos ? 12 : 8) * nc,
       for (int n = 0; n < s.N; n++) {
           float *dst = (a.e ? a.e : L[0].x) + (size_t)n * s.C;
           if (t->frozen_embd) sm_train_frozen_row(dst, t->frozen_embd, x[n]);
           else memcpy(dst, W->tok_embd + (size_t)x[n] * s.C, (size_t)s.C * sizeof(float));
           if (s.embd_scale != 1.0f) for (int i = 0; i < s.C; i++) dst[i] *= s.embd_scale;
           if (s.learned_pos) {
               float *wpe = t->scratch;   /* the position's row, as floats */
               if (t->frozen_pos) sm_train_frozen_row(wpe, t->frozen_pos, n % s.T);
               else wpe = W->pos_embd + (size_t)(n % s.T) * s.C;
               for (int i = 0; i < s.C; i++) dst[i] += wpe[i];
           }
       });
    if (a.e)   /* bloom: the embeddings' LayerNorm */
        OP(t, SM_SC_EMBED, 7 * nc, 12 * nc, norm_fwd(t, &s, L[0].x, a.e_mean, a.e_rstd, a.e, W->tok_norm, W->tok_norm_b));
    for (int l = 0; l < t->cfg.hp.n_layers; l++) {
        SM_PROF_BEGIN(t->prof, SM_SC_LAYER, l);
        forward_layer(t, &s, l, &W->layer[l], &L[l], l + 1 < t->cfg.hp.n_layers ? L[l + 1].x : a.x_out, &a);
        SM_PROF_END(t->prof, 0, 0);
    }
    OP(t, SM_SC_FINAL_NORM, (s.layer_norm ? 7 : 4) * nc, 12 * nc,
       norm_fwd(t, &s, a.nf, a.nf_mean, a.nf_rstd, a.x_out, W->output_norm, W->output_norm_b));
    /* granite: logits over logit_scale, through the head's input (kept so, for its weight gradient) */
    if (s.logit_scale != 1.0f) OP(t, SM_SC_FINAL_NORM, nc, 8 * nc, sm_train_scale(t, a.nf, 1.0f / s.logit_scale, nc));
    if (t->frozen_out.m)
        OP_DOTS(t, SM_SC_LOGITS, mm_fwd_flops(s.N, s.C, s.V, 0), dots(t, mm_fwd_flops(s.N, s.C, s.V, 0)),
                mm_fwd_bytes(s.N, s.C, s.V),
                sm_train_matmul_fwd_frozen(t, a.probs, a.nf, &t->frozen_out, W->output_b, s.N));
    else matmul_fwd(t, SM_SC_LOGITS, a.probs, a.nf, W->output, W->output_b, s.N, s.C, s.V);
    SM_PROF_END(t->prof, 0, 0);
}

float sm_trainer_loss(sm_trainer *t, const int32_t *y) { return sm_trainer_loss_weighted(t, y, NULL, (float)t->B * t->T); }

/* Each thread's rows of the cross-entropy: the softmax of a row of logits
 * (the level's kernel), its loss, and in place of the probabilities the
 * gradient weight (p - onehot) / denom. Row losses are summed in order
 * afterwards, so the loss does not depend on the thread count. */
typedef struct loss_task {
    const sm_trainer *t;
    float *probs;
    const int32_t *y;
    const float *weight;
    double *row_loss;
    float denom;
    int N, V;
} loss_task;

static void loss_task_fn(void *ctx, int ith, int nth) {
    const loss_task *l = ctx;
    int n0, n1;
    sm_share(l->N, 1, ith, nth, &n0, &n1);
    float cap = l->t->cfg.hp.final_softcap, *th = cap != 0 ? l->t->cap_rows + (size_t)ith * l->V : NULL;
    for (int n = n0; n < n1; n++) {
        float *p = l->probs + (size_t)n * l->V;
        if (th)   /* soft-capped logits: cap tanh(z / cap), the tanh kept for the gradient */
            for (int i = 0; i < l->V; i++) {
                th[i] = tanhf(p[i] / cap);
                p[i] = cap * th[i];
            }
        l->t->kt->softmax(p, l->V);
        double nll = -log(fmax(p[l->y[n]], 1e-30));
        float k = (l->weight ? l->weight[n] : 1.0f) / l->denom;
        l->row_loss[n] = l->weight ? (l->weight[n] != 0.0f ? l->weight[n] * nll : 0.0) : nll;
        p[l->y[n]] -= 1.0f;
        l->t->kt->scale_max(p, k, l->V);   /* p[i] *= k (the largest is not needed) */
        if (th)
            for (int i = 0; i < l->V; i++) p[i] *= 1.0f - th[i] * th[i];
    }
}

float sm_trainer_loss_weighted(sm_trainer *t, const int32_t *y, const float *weight, float denom) {
    shape s = shape_of(t);
    layer_acts L[MAX_LAYERS];
    acts a;
    layout_now(t, L, &a);
    uint64_t nv = (uint64_t)s.N * s.V;
    SM_PROF_BEGIN(t->prof, SM_SC_LOSS, -1);
    loss_task lt = {t, a.probs, y, weight, t->row_loss, denom, s.N, s.V};
    sm_threadpool_run(t->pool, loss_task_fn, &lt);
    double loss = 0;
    for (int n = 0; n < s.N; n++) loss += t->row_loss[n];
    /* memory traffic: each row of logits read once and its gradient written once; the softmax's other
     * passes over the row (4 V bytes) find it in the cache */
    SM_PROF_END(t->prof, 6 * nv, 8 * nv);
    return (float)(loss / denom);
}

void sm_trainer_backward(sm_trainer *t, const int32_t *x) {
    shape s = shape_of(t);
    layer_acts L[MAX_LAYERS];
    acts a;
    layout_now(t, L, &a);
    const sm_train_tensors *W = &t->W;
    sm_train_tensors *G = &t->G;
    uint64_t nc = (uint64_t)s.N * s.C;
    SM_PROF_BEGIN(t->prof, SM_SC_BACKWARD, -1);
    float *dx = t->scratch, *dn = dx + 2 * (size_t)s.N * s.C;
    if (t->frozen_out.m)
        OP_DOTS(t, SM_SC_LOGITS, 2ull * s.N * s.C * s.V, dots(t, 2ull * s.N * s.C * s.V), mm_fwd_bytes(s.N, s.C, s.V),
                sm_train_matmul_bwd_frozen(t, dn, 1, a.probs, &t->frozen_out, s.N));
    else matmul_bwd(t, SM_SC_LOGITS, dn, 1, G->output, G->output_b, a.probs, a.nf, W->output, s.N, s.C, s.V);
    if (s.logit_scale != 1.0f) OP(t, SM_SC_FINAL_NORM, nc, 8 * nc, sm_train_scale(t, dn, 1.0f / s.logit_scale, nc));
    memset(dx, 0, (size_t)s.N * s.C * sizeof(float));
    OP(t, SM_SC_FINAL_NORM, (s.layer_norm ? 12 : 9) * nc, 16 * nc,
       norm_bwd(t, &s, dx, G->output_norm, G->output_norm_b, dn, a.x_out, W->output_norm, a.nf_mean, a.nf_rstd));
    for (int l = t->cfg.hp.n_layers - 1; l >= 0; l--) {
        SM_PROF_BEGIN(t->prof, SM_SC_LAYER, l);
        if (t->recompute) {   /* its activations, again */
            SM_PROF_BEGIN(t->prof, SM_SC_RECOMPUTE, -1);
            forward_layer(t, &s, l, &W->layer[l], &L[l], l + 1 < t->cfg.hp.n_layers ? L[l + 1].x : a.x_out, &a);
            SM_PROF_END(t->prof, 0, 0);
        }
        backward_layer(t, &s, l, &W->layer[l], &G->layer[l], &L[l], &a, dx);
        SM_PROF_END(t->prof, 0, 0);
    }
    /* embeddings (frozen in LoRA training), through their norm (bloom) into dn */
    float *de = dx;
    if (!t->lora && a.e) {
        de = dn;
        memset(de, 0, (size_t)s.N * s.C * sizeof(float));
        OP(t, SM_SC_EMBED, 12 * nc, 16 * nc,
           norm_bwd(t, &s, de, G->tok_norm, G->tok_norm_b, dx, a.e, W->tok_norm, a.e_mean, a.e_rstd));
    }
    if (!t->lora)
        OP(t, SM_SC_EMBED, (s.learned_pos ? 2 : 1) * nc, (s.learned_pos ? 24 : 12) * nc,
           for (int n = 0; n < s.N; n++) {
               const float *d = de + (size_t)n * s.C;
               float *gt = G->tok_embd + (size_t)x[n] * s.C;
               for (int i = 0; i < s.C; i++) gt[i] += d[i] * s.embd_scale;
               if (s.learned_pos) {
                   float *gp = G->pos_embd + (size_t)(n % s.T) * s.C;
                   for (int i = 0; i < s.C; i++) gp[i] += d[i];
               }
           });
    SM_PROF_END(t->prof, 0, 0);
}

float sm_trainer_step_grads(sm_trainer *t, const int32_t *x, const int32_t *y, int backward) {
    sm_trainer_forward(t, x);
    float loss = sm_trainer_loss(t, y);
    if (backward) sm_trainer_backward(t, x);
    return loss;
}

/* ------------------------------------------------------------ optimizer */

/* The gradient's squared norm, on the thread pool: chunks of
 * SM_NORM_CHUNK floats, each summed in double by eight interleaved sums
 * added in a fixed order, the chunks' sums then added in order; so the
 * value does not depend on the thread count. */
typedef struct norm_task {
    const sm_trainer *t;
    size_t chunks;
} norm_task;

static void norm_fn(void *ctx, int ith, int nth) {
    const norm_task *nt = ctx;
    const float *g = nt->t->g;
    size_t n = nt->t->n_floats, c0, c1;
    sm_share_size(nt->chunks, 1, ith, nth, &c0, &c1);
    for (size_t c = c0; c < c1; c++) {
        size_t i = c * SM_NORM_CHUNK, end = i + SM_NORM_CHUNK < n ? i + SM_NORM_CHUNK : n;
        double s[8] = {0};
        for (; i + 8 <= end; i += 8)
            for (int k = 0; k < 8; k++) s[k] += (double)g[i + k] * g[i + k];
        for (int k = 0; i < end; i++, k++) s[k] += (double)g[i] * g[i];
        nt->t->norm_parts[c] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    }
}

/* The update of every parameter, on the thread pool: each thread takes its
 * own contiguous run of every tensor, through the level's AdamW kernel
 * (every level gives the same bits); so the result does not depend on the
 * thread count. */
typedef struct adamw_task {
    sm_trainer *t;
    sm_adamw_step step;
} adamw_task;

static void adamw_fn(void *ctx, int ith, int nth) {
    const adamw_task *a = ctx;
    const sm_trainer *t = a->t;
    sm_adamw_step st = a->step;
    for (int p = 0; p < t->n_params; p++) {
        const sm_param *pp = &t->params[p];
        st.weight_decay = pp->decay ? a->step.weight_decay : 0.0f;
        size_t n = (size_t)pp->rows * pp->cols;
        size_t i0, i1;
        sm_share_size(n, 16, ith, nth, &i0, &i1);
        if (i0 >= i1) continue;
        size_t o = pp->offset + i0;
        t->kt->adamw(t->w + o, t->g + o, t->m + o, t->v + o, i1 - i0, &st);
    }
}

float sm_trainer_adamw(sm_trainer *t, float lr, float beta1, float beta2, float eps, float weight_decay,
                       float grad_clip) {
    norm_task nt = {t, (t->n_floats + SM_NORM_CHUNK - 1) / SM_NORM_CHUNK};
    sm_threadpool_run(t->pool, norm_fn, &nt);
    double sq = 0;
    for (size_t c = 0; c < nt.chunks; c++) sq += t->norm_parts[c];
    float norm = (float)sqrt(sq);
    float scale = grad_clip > 0 && norm > grad_clip ? grad_clip / norm : 1.0f;
    t->step++;
    float c1 = 1.0f - powf(beta1, (float)t->step), c2 = 1.0f - powf(beta2, (float)t->step);
    adamw_task a = {t, {scale, beta1, beta2, c1, c2, lr, eps, weight_decay}};
    sm_threadpool_run(t->pool, adamw_fn, &a);
    return norm;
}

/* ------------------------------------------------------------ models */

sm_status sm_trainer_load_weights(sm_trainer *t, const sm_model *m, sm_error *err) {
    for (int p = 0; p < t->n_params; p++) {
        const sm_param *pp = &t->params[p];
        const sm_gguf_tensor *g = sm_gguf_find_tensor(&m->gguf, pp->name);
        if (!g) return sm_fail(err, SM_ERR_FORMAT, "the model has no tensor '%s'", pp->name);
        if (g->n_elements != (uint64_t)pp->rows * pp->cols || g->ne[0] != (uint64_t)pp->cols)
            return sm_fail(err, SM_ERR_FORMAT, "tensor '%s' has another shape than the training configuration", pp->name);
        const sm_type_traits *tt = sm_type(g->type);
        if (!tt || !tt->to_float)
            return sm_fail(err, SM_ERR_UNSUPPORTED, "tensor '%s' has type %s, which training cannot read", pp->name,
                           tt ? tt->name : "?");
        size_t rb = sm_type_row_bytes(g->type, pp->cols);
        for (int r = 0; r < pp->rows; r++)
            tt->to_float(t->w + pp->offset + (size_t)r * pp->cols, (const char *)g->data + rb * (size_t)r, pp->cols);
    }
    return SM_OK;
}

sm_status sm_train_config_of(const sm_model *m, sm_train_config *cfg, sm_error *err) {
    if (!m->has_weights || m->kind != SM_FORMAT_GGUF)
        return sm_fail(err, SM_ERR_INVALID_ARG, "not a GGUF model with weights");
    memset(cfg, 0, sizeof *cfg);
    cfg->hp = m->hp;
    cfg->tied = sm_gguf_find_tensor(&m->gguf, "output.weight") == NULL;
    const sm_arch_info *a = sm_arch_get(m->hp.arch);
    for (int i = 0; a && i < a->n_tensors; i++) {
        const sm_arch_tensor *at = &a->tensors[i];
        char name[96];
        sm_tensor_name(at->role, 0, name, sizeof name);
        /* the optional per-layer tensors the file has, and position embeddings beside ALiBi (mpt: refused) */
        if ((at->flags & SM_TF_OPTIONAL) && (at->role >= SM_T_LAYER_FIRST || at->role == SM_T_POS_EMBD) &&
            sm_gguf_find_tensor(&m->gguf, name))
            cfg->optional_roles |= 1ull << at->role;
    }
    cfg->lora_cache_bytes = SM_TRAIN_LORA_CACHE_DEFAULT;
    return SM_OK;
}

uint64_t sm_lora_roles_parse(const char *list, sm_error *err) {
    static const struct { const char *name; int role; } names[] = {
        {"q", SM_T_ATTN_Q}, {"k", SM_T_ATTN_K}, {"v", SM_T_ATTN_V}, {"qkv", SM_T_ATTN_QKV}, {"o", SM_T_ATTN_OUT},
        {"gate", SM_T_FFN_GATE}, {"up", SM_T_FFN_UP}, {"down", SM_T_FFN_DOWN},
    };
    uint64_t roles = 0;
    const char *p = list ? list : "q,k,v,o,gate,up,down";
    while (*p) {
        size_t n = strcspn(p, ",");
        int found = 0;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strlen(names[i].name) == n && !memcmp(names[i].name, p, n)) {
                roles |= 1ull << names[i].role;
                /* q, k and v are parts of a fused qkv matrix where an architecture has one */
                if (names[i].role == SM_T_ATTN_Q || names[i].role == SM_T_ATTN_K || names[i].role == SM_T_ATTN_V)
                    roles |= 1ull << SM_T_ATTN_QKV;
                found = 1;
            }
        if (!found) {
            sm_fail(err, SM_ERR_INVALID_ARG, "unknown LoRA target '%.*s' (use q, k, v, qkv, o, gate, up, down)", (int)n, p);
            return 0;
        }
        p += n;
        if (*p == ',') p++;
    }
    if (!roles) sm_fail(err, SM_ERR_INVALID_ARG, "no LoRA targets given");
    return roles;
}

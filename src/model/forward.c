/* forward.c - the forward pass of every architecture, for a batch of n
 * token rows: one session's tokens at its next positions (a generated token
 * is a batch of one, whose products fall through to the matrix x vector
 * kernels), or the rows of several sessions at once (continuous batching:
 * each projection is one product over every row; position encoding,
 * attention and the KV cache are each row's session's). It reads like
 * llama2.c's forward(): embedding, then per layer an attention block and a
 * feed-forward block, each adding into the residual stream x, then the
 * final norm and the output head. The architecture's table (arch.h) picks
 * the norm, the position encoding, the feed-forward and the sliding-window
 * layers; tensors an architecture lacks (a pre-norm, biases, a fused QKV,
 * query/key norms, post-norms) are NULL and their steps are skipped. */
#include "ops.h"
#include "kernels/kernels.h"

/* The feed-forward block's first products, from its normed input: into hb
 * (and hb2 for a gate, or [gate up] of a fused matrix). */
static void ffn_in(sm_session *s, const sm_layer *L, int kind, const float *in, int n, int nv) {
    int ffn = s->model->hp.ffn_dim;
    if (kind == SM_FFN_SWIGLU_FUSED) {
        op_matmul(s, SM_SC_FFN_UP, s->hb2, 2 * ffn, &L->w_up, in, n, nv, L->b_up, 0);
        return;
    }
    sm_matmul_share_input(s, in);
    if (L->w_gate.data) op_matmul(s, SM_SC_FFN_GATE, s->hb, ffn, &L->w_gate, in, n, nv, L->b_gate, 0);
    op_matmul(s, SM_SC_FFN_UP, L->w_gate.data ? s->hb2 : s->hb, ffn, &L->w_up, in, n, nv, L->b_up, 0);
    sm_matmul_share_input(s, NULL);
}

/* A block's last product (its output projection) added into the residual
 * stream x: straight, or through the block's post-norm (gemma2/3, olmo2)
 * by way of xb2. */
static void block_out(sm_session *s, int step, const sm_matrix *w, const float *in, const float *bias,
                      const float *post_norm, int n, int nv) {
    int dim = s->model->hp.dim;
    if (post_norm) {
        op_matmul(s, step, s->xb2, dim, w, in, n, nv, bias, 0);
        op_post_norm_add(s, s->x, s->xb2, post_norm, n);
    } else {
        op_matmul(s, step, s->x, dim, w, in, n, nv, bias, 1);
    }
}

void sm_forward(sm_session *s, const sm_fwd_batch *b) {
    const sm_model *m = s->model;
    const sm_hparams *hp = &m->hp;
    const sm_arch_info *arch = sm_arch_get(hp->arch);
    sm_prof *P = s->prof;
    int dim = hp->dim, q_dim = hp->n_heads * hp->head_dim, kv_dim = hp->n_kv_heads * hp->head_dim;
    int ffn = hp->ffn_dim, n = b->n, nv = b->n_vec;
    /* one session with an F32 cache: its keys and values land straight in it */
    const sm_fwd_seq *one = b->n_seq == 1 && b->seq[0].s->type_k == SM_KV_F32 && b->seq[0].s->type_v == SM_KV_F32
                            ? &b->seq[0] : NULL;
    float *x = s->x;        /* [n][dim] the residual stream */
    float *xb = s->xb;      /* [n][max(dim, q_dim)] a block's normed input, then attention's output */
    float *xb2 = s->xb2;    /* [n][dim] a block's output, when it has a post-norm; a parallel FFN's own norm */
    float *q = s->q;        /* [n][q_dim] */
    float *hb = s->hb;      /* [n][ffn] */
    float *hb2 = s->hb2;    /* [n][ffn], or [n][2 ffn] for a fused gate and up (ffn_in writes both) */

    op_embed(s, b);
    if (m->tok_norm) op_norm(s, SM_SC_EMBED, x, x, m->tok_norm, m->tok_norm_b, n);   /* bloom: the embeddings' norm */
    for (int l = 0; l < hp->n_layers; l++) {
        const sm_layer *L = &m->layers[l];
        int swa = sm_layer_is_swa(hp, l);
        /* [n][kv_dim]: this batch's keys and values */
        float *k = s->k_rows, *v = s->v_rows;
        if (one) {
            k = sm_kv_row(one->s, 0, l, one->pos0);
            v = sm_kv_row(one->s, 1, l, one->pos0);
        }
        SM_PROF_BEGIN(P, SM_SC_LAYER, l);

        /* attention block */
        const float *in = x;
        if (L->attn_norm) {
            op_norm(s, SM_SC_ATTN_NORM, xb, x, L->attn_norm, L->attn_norm_b, n);
            in = xb;
        }
        /* a parallel residual (phi2, gptneox): the feed-forward block reads the layer's input as
         * attention does (the same normed rows, or its own norm of x into xb2), so its first
         * products run now, before attention adds into x; x + attn + ffn */
        if (hp->parallel_residual) {
            const float *fin = in;
            if (L->ffn_norm) {
                op_norm(s, SM_SC_FFN_NORM, xb2, x, L->ffn_norm, L->ffn_norm_b, n);
                fin = xb2;
            }
            ffn_in(s, L, arch->ffn, fin, n, nv);
        }
        if (L->wqkv.data) {
            op_matmul(s, SM_SC_QKV_PROJ, s->qkv, q_dim + 2 * kv_dim, &L->wqkv, in, n, nv, L->b_qkv, 0);
            op_split_qkv(s, s->qkv, n, q, k, v);
        } else {   /* one input, quantized or packed once for the three */
            sm_matmul_share_input(s, in);
            op_matmul(s, SM_SC_Q_PROJ, q, q_dim, &L->wq, in, n, nv, L->b_q, 0);
            op_matmul(s, SM_SC_K_PROJ, k, kv_dim, &L->wk, in, n, nv, L->b_k, 0);
            op_matmul(s, SM_SC_V_PROJ, v, kv_dim, &L->wv, in, n, nv, L->b_v, 0);
            sm_matmul_share_input(s, NULL);
        }
        if (hp->clamp_kqv > 0) {   /* olmo: the projections clamped before RoPE */
            sm_clamp(q, hp->clamp_kqv, (size_t)n * q_dim);
            sm_clamp(k, hp->clamp_kqv, (size_t)n * kv_dim);
            sm_clamp(v, hp->clamp_kqv, (size_t)n * kv_dim);
        }
        int norm_late = arch->qk_norm_after_rope;   /* hunyuan-dense: RoPE, then the q/k norms */
        if (L->q_norm && !norm_late) op_qk_norm(s, q, k, L->q_norm, L->k_norm, n);
        if (sm_layer_has_rope(hp, l)) op_rope(s, b, q, k, swa);   /* smollm3: not every layer */
        if (L->q_norm && norm_late) op_qk_norm(s, q, k, L->q_norm, L->k_norm, n);
        if (!one) op_store_kv(s, b, l, k, v);
        op_attention(s, b, l, q, xb, swa ? hp->n_swa : 0);
        /* granite: the block's output times residual_scale, through its input (the product is linear) */
        if (hp->residual_scale != 1.0f) sm_scale(xb, hp->residual_scale, n * q_dim);
        block_out(s, SM_SC_O_PROJ, &L->wo, xb, L->b_o, L->attn_post_norm, n, nv);

        /* feed-forward block */
        if (!hp->parallel_residual) {
            in = x;
            if (L->ffn_norm) {
                op_norm(s, SM_SC_FFN_NORM, xb, x, L->ffn_norm, L->ffn_norm_b, n);
                in = xb;
            }
            /* a mixture of experts (moe.c): each row's chosen experts, weighted, added into x */
            if (L->ffn_gate_inp.data) op_moe(s, L, in, x, n, nv);
            else ffn_in(s, L, arch->ffn, in, n, nv);
        }
        if (!L->ffn_gate_inp.data) {
            op_ffn_act(s, arch->ffn, hb, hb2, n, ffn);
            if (hp->residual_scale != 1.0f) sm_scale(hb, hp->residual_scale, n * ffn);
            block_out(s, SM_SC_FFN_DOWN, &L->w_down, hb, L->b_down, L->ffn_post_norm, n, nv);
        }
        SM_PROF_END(P, 0, 0);
        if (s->check) sm_check_layer(s, l, x, (size_t)n * dim);   /* check mode: NaN/Inf named by layer */
    }
    op_logits(s, b);
}

/* forward.c - the forward pass of every architecture, for a batch of n
 * tokens at positions n_past.. (a generated token is a batch of one, whose
 * products fall through to the matrix x vector kernels). It reads like
 * llama2.c's forward(): embedding, then per layer an attention block and a
 * feed-forward block, each adding into the residual stream x, then the
 * final norm and the output head. The architecture's table (arch.h) picks
 * the norm, the position encoding, the feed-forward and the sliding-window
 * layers; tensors an architecture lacks (a pre-norm, biases, a fused QKV,
 * query/key norms, post-norms) are NULL and their steps are skipped. */
#include "ops.h"

void sm_forward(sm_session *s, const sm_token *tokens, int n, int want_logits, float *all_logits) {
    const sm_model *m = s->model;
    const sm_hparams *hp = &m->hp;
    const sm_arch_info *arch = sm_arch_get(hp->arch);
    sm_prof *P = s->prof;
    int dim = hp->dim, q_dim = hp->n_heads * hp->head_dim, kv_dim = hp->n_kv_heads * hp->head_dim;
    int ffn = hp->ffn_dim, pos0 = s->n_past;
    size_t layer_stride = (size_t)s->n_ctx * kv_dim;
    float *x = s->x;        /* [n][dim] the residual stream */
    float *xb = s->xb;      /* [n][max(dim, q_dim)] a block's normed input, then attention's output */
    float *xb2 = s->xb2;    /* [n][dim] a block's output, when it has a post-norm */
    float *q = s->q;        /* [n][q_dim] */
    float *hb = s->hb;      /* [n][ffn] */
    float *hb2 = s->hb2;    /* [n][ffn], or [n][2 ffn] for a fused gate and up */

    op_embed(s, tokens, n);
    for (int l = 0; l < hp->n_layers; l++) {
        const sm_layer *L = &m->layers[l];
        int swa = sm_layer_is_swa(hp, l);
        float *k_layer = s->k_cache + l * layer_stride, *v_layer = s->v_cache + l * layer_stride;
        float *k = k_layer + (size_t)pos0 * kv_dim;   /* [n][kv_dim]: this batch's keys and values */
        float *v = v_layer + (size_t)pos0 * kv_dim;   /* land straight in the cache */
        SM_PROF_BEGIN(P, SM_SC_LAYER, l);

        /* attention block */
        const float *in = x;
        if (L->attn_norm) {
            op_norm(s, SM_SC_ATTN_NORM, xb, x, L->attn_norm, L->attn_norm_b, n);
            in = xb;
        }
        if (L->wqkv.data) {
            op_matmul(s, SM_SC_QKV_PROJ, s->qkv, q_dim + 2 * kv_dim, &L->wqkv, in, n, L->b_qkv, 0);
            op_split_qkv(s, s->qkv, n, q, k, v);
        } else {
            op_matmul(s, SM_SC_Q_PROJ, q, q_dim, &L->wq, in, n, L->b_q, 0);
            op_matmul(s, SM_SC_K_PROJ, k, kv_dim, &L->wk, in, n, L->b_k, 0);
            op_matmul(s, SM_SC_V_PROJ, v, kv_dim, &L->wv, in, n, L->b_v, 0);
        }
        if (L->q_norm) op_qk_norm(s, q, k, L->q_norm, L->k_norm, n);
        if (arch->pos != SM_POS_LEARNED) op_rope(s, q, k, n, swa);
        sm_attention(s, q, xb, k_layer, v_layer, pos0, n, swa ? hp->n_swa : 0);
        if (L->attn_post_norm) {
            op_matmul(s, SM_SC_O_PROJ, xb2, dim, &L->wo, xb, n, L->b_o, 0);
            op_post_norm_add(s, x, xb2, L->attn_post_norm, n);
        } else {
            op_matmul(s, SM_SC_O_PROJ, x, dim, &L->wo, xb, n, L->b_o, 1);
        }

        /* feed-forward block */
        in = x;
        if (L->ffn_norm) {
            op_norm(s, SM_SC_FFN_NORM, xb, x, L->ffn_norm, L->ffn_norm_b, n);
            in = xb;
        }
        if (arch->ffn == SM_FFN_SWIGLU_FUSED) {
            op_matmul(s, SM_SC_FFN_UP, hb2, 2 * ffn, &L->w_up, in, n, L->b_up, 0);
        } else {
            if (L->w_gate.data) op_matmul(s, SM_SC_FFN_GATE, hb, ffn, &L->w_gate, in, n, NULL, 0);
            op_matmul(s, SM_SC_FFN_UP, L->w_gate.data ? hb2 : hb, ffn, &L->w_up, in, n, L->b_up, 0);
        }
        op_ffn_act(s, arch->ffn, hb, hb2, n, ffn);
        if (L->ffn_post_norm) {
            op_matmul(s, SM_SC_FFN_DOWN, xb2, dim, &L->w_down, hb, n, L->b_down, 0);
            op_post_norm_add(s, x, xb2, L->ffn_post_norm, n);
        } else {
            op_matmul(s, SM_SC_FFN_DOWN, x, dim, &L->w_down, hb, n, L->b_down, 1);
        }
        SM_PROF_END(P, 0, 0);
        if (s->check) sm_check_layer(s, l, x, (size_t)n * dim);   /* check mode: NaN/Inf named by layer */
    }
    op_logits(s, n, want_logits, all_logits);
}

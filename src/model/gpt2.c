/* gpt2.c - the GPT-2 forward pass for one token: learned absolute
 * positions, pre-LayerNorm blocks with a fused QKV projection, GELU
 * feed-forward, biases on every projection, and the output head. */
#include "session.h"
#include "kernels/kernels.h"

#include <string.h>

void sm_gpt2_forward(sm_session *s, sm_token token, int want_logits) {
    const sm_model *m = s->model;
    const sm_hparams *hp = &m->hp;
    sm_prof *P = s->prof;
    int dim = hp->dim, pos = s->n_past;
    size_t layer_stride = (size_t)s->n_ctx * dim;
    uint64_t nb = (uint64_t)dim * sizeof(float);

    SM_PROF_BEGIN(P, SM_SC_EMBED, -1);
    sm_embedding_row(s->x, &m->tok_embd, token);
    sm_embedding_row(s->xb, &m->pos_embd, pos);
    sm_add(s->x, s->xb, dim);
    SM_PROF_END(P, (uint64_t)dim, 3 * nb);
    for (int l = 0; l < hp->n_layers; l++) {
        const sm_layer *L = &m->layers[l];
        float *k_layer = s->k_cache + l * layer_stride, *v_layer = s->v_cache + l * layer_stride;
        SM_PROF_BEGIN(P, SM_SC_LAYER, l);

        /* attention block: q, k, v come out of one projection */
        SM_PROF_BEGIN(P, SM_SC_ATTN_NORM, -1);
        sm_layernorm(s->xb, s->x, L->attn_norm, L->attn_norm_b, dim, hp->norm_eps);
        SM_PROF_END(P, 7ull * dim, 4 * nb);
        sm_proj(s, SM_SC_QKV_PROJ, s->qkv, &L->wqkv, s->xb, L->b_qkv);
        memcpy(s->q, s->qkv, nb);
        memcpy(k_layer + (size_t)pos * dim, s->qkv + dim, nb);
        memcpy(v_layer + (size_t)pos * dim, s->qkv + 2 * dim, nb);
        sm_attention(s, k_layer, v_layer, pos);
        sm_proj_residual(s, SM_SC_O_PROJ, s->x, &L->wo, s->xb, L->b_o);

        /* feed-forward block */
        SM_PROF_BEGIN(P, SM_SC_FFN_NORM, -1);
        sm_layernorm(s->xb, s->x, L->ffn_norm, L->ffn_norm_b, dim, hp->norm_eps);
        SM_PROF_END(P, 7ull * dim, 4 * nb);
        sm_proj(s, SM_SC_FFN_UP, s->hb, &L->w_up, s->xb, L->b_up);
        SM_PROF_BEGIN(P, SM_SC_FFN_ACT, -1);
        s->kt->gelu(s->hb, hp->ffn_dim);
        SM_PROF_END(P, 12ull * hp->ffn_dim, 2ull * hp->ffn_dim * sizeof(float));
        sm_proj_residual(s, SM_SC_FFN_DOWN, s->x, &L->w_down, s->hb, L->b_down);
        SM_PROF_END(P, 0, 0);
    }
    if (want_logits) {
        SM_PROF_BEGIN(P, SM_SC_FINAL_NORM, -1);
        sm_layernorm(s->x, s->x, m->output_norm, m->output_norm_b, dim, hp->norm_eps);
        SM_PROF_END(P, 7ull * dim, 4 * nb);
        sm_proj(s, SM_SC_LOGITS, s->logits, &m->output, s->x, NULL);
    }
}

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
        if (s->check) sm_check_layer(s, l, s->x, (size_t)dim);
    }
    if (want_logits) {
        SM_PROF_BEGIN(P, SM_SC_FINAL_NORM, -1);
        sm_layernorm(s->x, s->x, m->output_norm, m->output_norm_b, dim, hp->norm_eps);
        SM_PROF_END(P, 7ull * dim, 4 * nb);
        sm_proj(s, SM_SC_LOGITS, s->logits, &m->output, s->x, NULL);
    }
}

void sm_gpt2_forward_batch(sm_session *s, const sm_token *tokens, int n, int want_logits, float *all_logits) {
    const sm_model *m = s->model;
    const sm_hparams *hp = &m->hp;
    sm_prof *P = s->prof;
    int dim = hp->dim, ffn = hp->ffn_dim, pos0 = s->n_past;
    size_t layer_stride = (size_t)s->n_ctx * dim;
    uint64_t nb = (uint64_t)n * dim * sizeof(float);

    SM_PROF_BEGIN(P, SM_SC_EMBED, -1);
    for (int t = 0; t < n; t++) {
        float *x = s->bx + (size_t)t * dim;
        sm_embedding_row(x, &m->tok_embd, tokens[t]);
        sm_embedding_row(s->xb, &m->pos_embd, pos0 + t);
        sm_add(x, s->xb, dim);
    }
    SM_PROF_END(P, (uint64_t)n * dim, 3 * nb);
    for (int l = 0; l < hp->n_layers; l++) {
        const sm_layer *L = &m->layers[l];
        float *k_layer = s->k_cache + l * layer_stride, *v_layer = s->v_cache + l * layer_stride;
        SM_PROF_BEGIN(P, SM_SC_LAYER, l);

        SM_PROF_BEGIN(P, SM_SC_ATTN_NORM, -1);
        for (int t = 0; t < n; t++)
            sm_layernorm(s->bxb + (size_t)t * dim, s->bx + (size_t)t * dim, L->attn_norm, L->attn_norm_b, dim, hp->norm_eps);
        SM_PROF_END(P, 7ull * n * dim, 4 * nb);
        sm_matmul(s, SM_SC_QKV_PROJ, s->bqkv, 3 * dim, &L->wqkv, s->bxb, n, L->b_qkv, 0);
        for (int t = 0; t < n; t++) {
            const float *qkv = s->bqkv + (size_t)t * 3 * dim;
            memcpy(s->bq + (size_t)t * dim, qkv, (size_t)dim * sizeof(float));
            memcpy(k_layer + (size_t)(pos0 + t) * dim, qkv + dim, (size_t)dim * sizeof(float));
            memcpy(v_layer + (size_t)(pos0 + t) * dim, qkv + 2 * dim, (size_t)dim * sizeof(float));
        }
        sm_attention_batch(s, s->bq, s->bxb, k_layer, v_layer, pos0, n);
        sm_matmul(s, SM_SC_O_PROJ, s->bx, dim, &L->wo, s->bxb, n, L->b_o, 1);

        SM_PROF_BEGIN(P, SM_SC_FFN_NORM, -1);
        for (int t = 0; t < n; t++)
            sm_layernorm(s->bxb + (size_t)t * dim, s->bx + (size_t)t * dim, L->ffn_norm, L->ffn_norm_b, dim, hp->norm_eps);
        SM_PROF_END(P, 7ull * n * dim, 4 * nb);
        sm_matmul(s, SM_SC_FFN_UP, s->bhb, ffn, &L->w_up, s->bxb, n, L->b_up, 0);
        SM_PROF_BEGIN(P, SM_SC_FFN_ACT, -1);
        s->kt->gelu(s->bhb, n * ffn);
        SM_PROF_END(P, 12ull * n * ffn, 2ull * n * ffn * sizeof(float));
        sm_matmul(s, SM_SC_FFN_DOWN, s->bx, dim, &L->w_down, s->bhb, n, L->b_down, 1);
        SM_PROF_END(P, 0, 0);
        if (s->check) sm_check_layer(s, l, s->bx, (size_t)n * dim);
    }
    if (!want_logits && !all_logits) return;
    int first = all_logits ? 0 : n - 1;
    SM_PROF_BEGIN(P, SM_SC_FINAL_NORM, -1);
    for (int t = first; t < n; t++)
        sm_layernorm(s->bx + (size_t)t * dim, s->bx + (size_t)t * dim, m->output_norm, m->output_norm_b, dim, hp->norm_eps);
    SM_PROF_END(P, 7ull * (n - first) * dim, 4ull * (n - first) * dim * sizeof(float));
    sm_batch_logits(s, n, all_logits);
}

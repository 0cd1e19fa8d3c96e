/* llama.c - the LLaMA forward pass for one token: RMSNorm, RoPE,
 * grouped-query attention over the KV cache, SwiGLU feed-forward, and the
 * output head. Shared pieces (attention, matvec) are in layers.c. */
#include "session.h"
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

void sm_llama_forward(sm_session *s, sm_token token, int want_logits) {
    const sm_model *m = s->model;
    const sm_hparams *hp = &m->hp;
    sm_prof *P = s->prof;
    int dim = hp->dim, kv_dim = hp->n_kv_heads * hp->head_dim, pos = s->n_past;
    size_t layer_stride = (size_t)s->n_ctx * kv_dim;
    uint64_t nb = (uint64_t)dim * sizeof(float);
    const float *cos_t = s->rope_cos + (size_t)pos * (hp->rope_dim / 2);
    const float *sin_t = s->rope_sin + (size_t)pos * (hp->rope_dim / 2);

    SM_PROF_BEGIN(P, SM_SC_EMBED, -1);
    sm_embedding_row(s->x, &m->tok_embd, token);
    SM_PROF_END(P, 0, nb);
    for (int l = 0; l < hp->n_layers; l++) {
        const sm_layer *L = &m->layers[l];
        float *k_layer = s->k_cache + l * layer_stride, *v_layer = s->v_cache + l * layer_stride;
        float *k = k_layer + (size_t)pos * kv_dim, *v = v_layer + (size_t)pos * kv_dim;
        SM_PROF_BEGIN(P, SM_SC_LAYER, l);

        /* attention block */
        SM_PROF_BEGIN(P, SM_SC_ATTN_NORM, -1);
        sm_rmsnorm(s->xb, s->x, L->attn_norm, dim, hp->norm_eps);
        SM_PROF_END(P, 4ull * dim, 3 * nb);
        sm_proj(s, SM_SC_Q_PROJ, s->q, &L->wq, s->xb, NULL);
        sm_proj(s, SM_SC_K_PROJ, k, &L->wk, s->xb, NULL);
        sm_proj(s, SM_SC_V_PROJ, v, &L->wv, s->xb, NULL);
        SM_PROF_BEGIN(P, SM_SC_ROPE, -1);
        sm_rope(s->q, hp->n_heads, hp->head_dim, hp->rope_dim, cos_t, sin_t);
        sm_rope(k, hp->n_kv_heads, hp->head_dim, hp->rope_dim, cos_t, sin_t);
        SM_PROF_END(P, 3ull * (dim + kv_dim), 2ull * (dim + kv_dim) * sizeof(float));
        sm_attention(s, k_layer, v_layer, pos);
        sm_proj_residual(s, SM_SC_O_PROJ, s->x, &L->wo, s->xb, NULL);

        /* feed-forward block */
        SM_PROF_BEGIN(P, SM_SC_FFN_NORM, -1);
        sm_rmsnorm(s->xb, s->x, L->ffn_norm, dim, hp->norm_eps);
        SM_PROF_END(P, 4ull * dim, 3 * nb);
        sm_proj(s, SM_SC_FFN_GATE, s->hb, &L->w_gate, s->xb, NULL);
        sm_proj(s, SM_SC_FFN_UP, s->hb2, &L->w_up, s->xb, NULL);
        SM_PROF_BEGIN(P, SM_SC_FFN_ACT, -1);
        s->kt->swiglu(s->hb, s->hb, s->hb2, hp->ffn_dim);
        SM_PROF_END(P, 6ull * hp->ffn_dim, 3ull * hp->ffn_dim * sizeof(float));
        sm_proj_residual(s, SM_SC_FFN_DOWN, s->x, &L->w_down, s->hb, NULL);
        SM_PROF_END(P, 0, 0);
        if (s->check) sm_check_layer(s, l, s->x, (size_t)dim);
    }
    if (want_logits) {
        SM_PROF_BEGIN(P, SM_SC_FINAL_NORM, -1);
        sm_rmsnorm(s->x, s->x, m->output_norm, dim, hp->norm_eps);
        SM_PROF_END(P, 4ull * dim, 3 * nb);
        sm_proj(s, SM_SC_LOGITS, s->logits, &m->output, s->x, NULL);
    }
}

void sm_llama_forward_batch(sm_session *s, const sm_token *tokens, int n, int want_logits, float *all_logits) {
    const sm_model *m = s->model;
    const sm_hparams *hp = &m->hp;
    sm_prof *P = s->prof;
    int dim = hp->dim, kv_dim = hp->n_kv_heads * hp->head_dim, ffn = hp->ffn_dim, pos0 = s->n_past, half = hp->rope_dim / 2;
    size_t layer_stride = (size_t)s->n_ctx * kv_dim;
    uint64_t nb = (uint64_t)n * dim * sizeof(float);

    SM_PROF_BEGIN(P, SM_SC_EMBED, -1);
    for (int t = 0; t < n; t++) sm_embedding_row(s->bx + (size_t)t * dim, &m->tok_embd, tokens[t]);
    SM_PROF_END(P, 0, nb);
    for (int l = 0; l < hp->n_layers; l++) {
        const sm_layer *L = &m->layers[l];
        float *k_layer = s->k_cache + l * layer_stride, *v_layer = s->v_cache + l * layer_stride;
        float *k0 = k_layer + (size_t)pos0 * kv_dim, *v0 = v_layer + (size_t)pos0 * kv_dim;
        SM_PROF_BEGIN(P, SM_SC_LAYER, l);

        /* attention block: K and V land straight in the cache */
        SM_PROF_BEGIN(P, SM_SC_ATTN_NORM, -1);
        for (int t = 0; t < n; t++) sm_rmsnorm(s->bxb + (size_t)t * dim, s->bx + (size_t)t * dim, L->attn_norm, dim, hp->norm_eps);
        SM_PROF_END(P, 4ull * n * dim, 3 * nb);
        sm_matmul(s, SM_SC_Q_PROJ, s->bq, dim, &L->wq, s->bxb, n, NULL, 0);
        sm_matmul(s, SM_SC_K_PROJ, k0, kv_dim, &L->wk, s->bxb, n, NULL, 0);
        sm_matmul(s, SM_SC_V_PROJ, v0, kv_dim, &L->wv, s->bxb, n, NULL, 0);
        SM_PROF_BEGIN(P, SM_SC_ROPE, -1);
        for (int t = 0; t < n; t++) {
            const float *c = s->rope_cos + (size_t)(pos0 + t) * half, *sn = s->rope_sin + (size_t)(pos0 + t) * half;
            sm_rope(s->bq + (size_t)t * dim, hp->n_heads, hp->head_dim, hp->rope_dim, c, sn);
            sm_rope(k0 + (size_t)t * kv_dim, hp->n_kv_heads, hp->head_dim, hp->rope_dim, c, sn);
        }
        SM_PROF_END(P, 3ull * n * (dim + kv_dim), 2ull * n * (dim + kv_dim) * sizeof(float));
        sm_attention_batch(s, s->bq, s->bxb, k_layer, v_layer, pos0, n);
        sm_matmul(s, SM_SC_O_PROJ, s->bx, dim, &L->wo, s->bxb, n, NULL, 1);

        /* feed-forward block */
        SM_PROF_BEGIN(P, SM_SC_FFN_NORM, -1);
        for (int t = 0; t < n; t++) sm_rmsnorm(s->bxb + (size_t)t * dim, s->bx + (size_t)t * dim, L->ffn_norm, dim, hp->norm_eps);
        SM_PROF_END(P, 4ull * n * dim, 3 * nb);
        sm_matmul(s, SM_SC_FFN_GATE, s->bhb, ffn, &L->w_gate, s->bxb, n, NULL, 0);
        sm_matmul(s, SM_SC_FFN_UP, s->bhb2, ffn, &L->w_up, s->bxb, n, NULL, 0);
        SM_PROF_BEGIN(P, SM_SC_FFN_ACT, -1);
        s->kt->swiglu(s->bhb, s->bhb, s->bhb2, n * ffn);
        SM_PROF_END(P, 6ull * n * ffn, 3ull * n * ffn * sizeof(float));
        sm_matmul(s, SM_SC_FFN_DOWN, s->bx, dim, &L->w_down, s->bhb, n, NULL, 1);
        SM_PROF_END(P, 0, 0);
        if (s->check) sm_check_layer(s, l, s->bx, (size_t)n * dim);
    }
    /* logits: every token's when asked for, else only the last one's */
    if (!want_logits && !all_logits) return;
    int first = all_logits ? 0 : n - 1;
    SM_PROF_BEGIN(P, SM_SC_FINAL_NORM, -1);
    for (int t = first; t < n; t++) sm_rmsnorm(s->bx + (size_t)t * dim, s->bx + (size_t)t * dim, m->output_norm, dim, hp->norm_eps);
    SM_PROF_END(P, 4ull * (n - first) * dim, 3ull * (n - first) * dim * sizeof(float));
    sm_batch_logits(s, n, all_logits);
}

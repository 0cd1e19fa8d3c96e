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
    }
    if (want_logits) {
        SM_PROF_BEGIN(P, SM_SC_FINAL_NORM, -1);
        sm_rmsnorm(s->x, s->x, m->output_norm, dim, hp->norm_eps);
        SM_PROF_END(P, 4ull * dim, 3 * nb);
        sm_proj(s, SM_SC_LOGITS, s->logits, &m->output, s->x, NULL);
    }
}

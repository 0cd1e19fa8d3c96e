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
    int dim = hp->dim, kv_dim = hp->n_kv_heads * hp->head_dim, pos = s->n_past;
    size_t layer_stride = (size_t)s->n_ctx * kv_dim;
    const float *cos_t = s->rope_cos + (size_t)pos * (hp->rope_dim / 2);
    const float *sin_t = s->rope_sin + (size_t)pos * (hp->rope_dim / 2);

    sm_embedding_row(s->x, &m->tok_embd, token);
    for (int l = 0; l < hp->n_layers; l++) {
        const sm_layer *L = &m->layers[l];
        float *k_layer = s->k_cache + l * layer_stride, *v_layer = s->v_cache + l * layer_stride;
        float *k = k_layer + (size_t)pos * kv_dim, *v = v_layer + (size_t)pos * kv_dim;

        /* attention block */
        sm_rmsnorm(s->xb, s->x, L->attn_norm, dim, hp->norm_eps);
        sm_matvec(s->q, &L->wq, s->xb, NULL);
        sm_matvec(k, &L->wk, s->xb, NULL);
        sm_matvec(v, &L->wv, s->xb, NULL);
        sm_rope(s->q, hp->n_heads, hp->head_dim, hp->rope_dim, cos_t, sin_t);
        sm_rope(k, hp->n_kv_heads, hp->head_dim, hp->rope_dim, cos_t, sin_t);
        sm_attention(s, k_layer, v_layer, pos);
        sm_matvec(s->xb2, &L->wo, s->xb, NULL);
        sm_add(s->x, s->xb2, dim);

        /* feed-forward block */
        sm_rmsnorm(s->xb, s->x, L->ffn_norm, dim, hp->norm_eps);
        sm_matvec(s->hb, &L->w_gate, s->xb, NULL);
        sm_matvec(s->hb2, &L->w_up, s->xb, NULL);
        sm_swiglu(s->hb, s->hb, s->hb2, hp->ffn_dim);
        sm_matvec(s->xb2, &L->w_down, s->hb, NULL);
        sm_add(s->x, s->xb2, dim);
    }
    if (want_logits) {
        sm_rmsnorm(s->x, s->x, m->output_norm, dim, hp->norm_eps);
        sm_matvec(s->logits, &m->output, s->x, NULL);
    }
}

/* gpt2.c - the GPT-2 forward pass for one token: learned absolute
 * positions, pre-LayerNorm blocks with a fused QKV projection, GELU
 * feed-forward, biases on every projection, and the output head. */
#include "session.h"
#include "kernels/kernels.h"

#include <string.h>

void sm_gpt2_forward(sm_session *s, sm_token token, int want_logits) {
    const sm_model *m = s->model;
    const sm_hparams *hp = &m->hp;
    int dim = hp->dim, pos = s->n_past;
    size_t layer_stride = (size_t)s->n_ctx * dim;

    sm_embedding_row(s->x, &m->tok_embd, token);
    sm_embedding_row(s->xb, &m->pos_embd, pos);
    sm_add(s->x, s->xb, dim);
    for (int l = 0; l < hp->n_layers; l++) {
        const sm_layer *L = &m->layers[l];
        float *k_layer = s->k_cache + l * layer_stride, *v_layer = s->v_cache + l * layer_stride;

        /* attention block: q, k, v come out of one projection */
        sm_layernorm(s->xb, s->x, L->attn_norm, L->attn_norm_b, dim, hp->norm_eps);
        sm_matvec(s->qkv, &L->wqkv, s->xb, L->b_qkv);
        memcpy(s->q, s->qkv, (size_t)dim * sizeof(float));
        memcpy(k_layer + (size_t)pos * dim, s->qkv + dim, (size_t)dim * sizeof(float));
        memcpy(v_layer + (size_t)pos * dim, s->qkv + 2 * dim, (size_t)dim * sizeof(float));
        sm_attention(s, k_layer, v_layer, pos);
        sm_matvec(s->xb2, &L->wo, s->xb, L->b_o);
        sm_add(s->x, s->xb2, dim);

        /* feed-forward block */
        sm_layernorm(s->xb, s->x, L->ffn_norm, L->ffn_norm_b, dim, hp->norm_eps);
        sm_matvec(s->hb, &L->w_up, s->xb, L->b_up);
        sm_gelu(s->hb, hp->ffn_dim);
        sm_matvec(s->xb2, &L->w_down, s->hb, L->b_down);
        sm_add(s->x, s->xb2, dim);
    }
    if (want_logits) {
        sm_layernorm(s->x, s->x, m->output_norm, m->output_norm_b, dim, hp->norm_eps);
        sm_matvec(s->logits, &m->output, s->x, NULL);
    }
}

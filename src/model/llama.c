/* llama.c - the LLaMA forward pass for one token: RMSNorm, RoPE,
 * grouped-query attention over the KV cache, SwiGLU feed-forward, and the
 * output head. */
#include "session.h"
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

static void matvec(float *out, const sm_matrix *m, const float *x) {
    if (m->type == SM_GGML_F16) sm_matvec_f16(out, m->data, x, m->rows, m->cols);
    else sm_matvec_f32(out, m->data, x, m->rows, m->cols);
}

static void embed(float *out, const sm_matrix *m, sm_token token) {
    if (m->type == SM_GGML_F16)
        sm_f16_to_f32_row(out, (const uint16_t *)m->data + (size_t)token * m->cols, m->cols);
    else
        memcpy(out, (const float *)m->data + (size_t)token * m->cols, (size_t)m->cols * sizeof(float));
}

/* Causal self-attention of the current token over positions 0..pos; head h
 * reads KV head h / (n_heads / n_kv_heads). Result in s->xb. */
static void attention(sm_session *s, const float *k_layer, const float *v_layer, int pos) {
    const sm_hparams *hp = &s->model->hp;
    int hd = hp->head_dim, kv_dim = hp->n_kv_heads * hd, group = hp->n_heads / hp->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < hp->n_heads; h++) {
        const float *q = s->q + (size_t)h * hd;
        float *att = s->att + (size_t)h * s->n_ctx;
        int kvh = h / group;
        for (int t = 0; t <= pos; t++) {
            const float *k = k_layer + (size_t)t * kv_dim + (size_t)kvh * hd;
            float dot = 0.0f;
            for (int i = 0; i < hd; i++) dot += q[i] * k[i];
            att[t] = dot * scale;
        }
        sm_softmax(att, pos + 1);
        float *out = s->xb + (size_t)h * hd;
        memset(out, 0, (size_t)hd * sizeof(float));
        for (int t = 0; t <= pos; t++) {
            const float *v = v_layer + (size_t)t * kv_dim + (size_t)kvh * hd;
            float a = att[t];
            for (int i = 0; i < hd; i++) out[i] += a * v[i];
        }
    }
}

void sm_llama_forward(sm_session *s, sm_token token, int want_logits) {
    const sm_model *m = s->model;
    const sm_hparams *hp = &m->hp;
    int dim = hp->dim, kv_dim = hp->n_kv_heads * hp->head_dim, pos = s->n_past;
    size_t layer_stride = (size_t)s->n_ctx * kv_dim;
    const float *cos_t = s->rope_cos + (size_t)pos * (hp->rope_dim / 2);
    const float *sin_t = s->rope_sin + (size_t)pos * (hp->rope_dim / 2);

    embed(s->x, &m->tok_embd, token);
    for (int l = 0; l < hp->n_layers; l++) {
        const sm_layer *L = &m->layers[l];
        float *k_layer = s->k_cache + l * layer_stride, *v_layer = s->v_cache + l * layer_stride;
        float *k = k_layer + (size_t)pos * kv_dim, *v = v_layer + (size_t)pos * kv_dim;

        /* attention block */
        sm_rmsnorm(s->xb, s->x, L->attn_norm, dim, hp->norm_eps);
        matvec(s->q, &L->wq, s->xb);
        matvec(k, &L->wk, s->xb);
        matvec(v, &L->wv, s->xb);
        sm_rope(s->q, hp->n_heads, hp->head_dim, hp->rope_dim, cos_t, sin_t);
        sm_rope(k, hp->n_kv_heads, hp->head_dim, hp->rope_dim, cos_t, sin_t);
        attention(s, k_layer, v_layer, pos);
        matvec(s->xb2, &L->wo, s->xb);
        sm_add(s->x, s->xb2, dim);

        /* feed-forward block */
        sm_rmsnorm(s->xb, s->x, L->ffn_norm, dim, hp->norm_eps);
        matvec(s->hb, &L->w_gate, s->xb);
        matvec(s->hb2, &L->w_up, s->xb);
        sm_swiglu(s->hb, s->hb, s->hb2, hp->ffn_dim);
        matvec(s->xb2, &L->w_down, s->hb);
        sm_add(s->x, s->xb2, dim);
    }
    if (want_logits) {
        sm_rmsnorm(s->x, s->x, m->output_norm, dim, hp->norm_eps);
        matvec(s->logits, &m->output, s->x);
    }
}

/* layers.c - pieces both architectures share: projections with an optional
 * bias, embedding rows, and causal attention over the KV cache. */
#include "session.h"
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

void sm_matvec(float *out, const sm_matrix *w, const float *x, const float *bias) {
    if (w->type == SM_GGML_F16) sm_matvec_f16(out, w->data, x, w->rows, w->cols);
    else sm_matvec_f32(out, w->data, x, w->rows, w->cols);
    if (bias) sm_add(out, bias, w->rows);
}

void sm_embedding_row(float *out, const sm_matrix *m, int row) {
    if (m->type == SM_GGML_F16)
        sm_f16_to_f32_row(out, (const uint16_t *)m->data + (size_t)row * m->cols, m->cols);
    else
        memcpy(out, (const float *)m->data + (size_t)row * m->cols, (size_t)m->cols * sizeof(float));
}

void sm_attention(sm_session *s, const float *k_layer, const float *v_layer, int pos) {
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

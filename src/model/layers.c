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

static size_t elem_size(uint32_t type) { return type == SM_GGML_F16 ? 2 : 4; }

void sm_proj(sm_session *s, int scope, float *out, const sm_matrix *w, const float *x, const float *bias) {
    SM_PROF_BEGIN(s->prof, scope, -1);
    sm_matvec(out, w, x, bias);
    SM_PROF_END(s->prof, 2ull * w->rows * w->cols, (uint64_t)w->rows * w->cols * elem_size(w->type));
}

void sm_embedding_row(float *out, const sm_matrix *m, int row) {
    if (m->type == SM_GGML_F16)
        sm_f16_to_f32_row(out, (const uint16_t *)m->data + (size_t)row * m->cols, m->cols);
    else
        memcpy(out, (const float *)m->data + (size_t)row * m->cols, (size_t)m->cols * sizeof(float));
}

void sm_residual(sm_session *s, float *x, const float *y, int n) {
    SM_PROF_BEGIN(s->prof, SM_SC_RESIDUAL, -1);
    sm_add(x, y, n);
    SM_PROF_END(s->prof, (uint64_t)n, 3ull * n * sizeof(float));
}

void sm_attention(sm_session *s, const float *k_layer, const float *v_layer, int pos) {
    const sm_hparams *hp = &s->model->hp;
    int hd = hp->head_dim, kv_dim = hp->n_kv_heads * hd, group = hp->n_heads / hp->n_kv_heads;
    uint64_t span = (uint64_t)pos + 1, heads = (uint64_t)hp->n_heads;
    float scale = 1.0f / sqrtf((float)hd);

    SM_PROF_BEGIN(s->prof, SM_SC_ATT_SCORES, -1);
    for (int h = 0; h < hp->n_heads; h++) {
        const float *q = s->q + (size_t)h * hd;
        float *att = s->att + (size_t)h * s->n_ctx;
        const float *k = k_layer + (size_t)(h / group) * hd;
        for (int t = 0; t <= pos; t++, k += kv_dim) {
            float dot = 0.0f;
            for (int i = 0; i < hd; i++) dot += q[i] * k[i];
            att[t] = dot * scale;
        }
    }
    SM_PROF_END(s->prof, 2 * span * hd * heads, span * kv_dim * sizeof(float));

    SM_PROF_BEGIN(s->prof, SM_SC_SOFTMAX, -1);
    for (int h = 0; h < hp->n_heads; h++) sm_softmax(s->att + (size_t)h * s->n_ctx, pos + 1);
    SM_PROF_END(s->prof, 4 * span * heads, 2 * span * heads * sizeof(float));

    SM_PROF_BEGIN(s->prof, SM_SC_ATT_V, -1);
    for (int h = 0; h < hp->n_heads; h++) {
        const float *att = s->att + (size_t)h * s->n_ctx;
        float *out = s->xb + (size_t)h * hd;
        const float *v = v_layer + (size_t)(h / group) * hd;
        memset(out, 0, (size_t)hd * sizeof(float));
        for (int t = 0; t <= pos; t++, v += kv_dim) {
            float a = att[t];
            for (int i = 0; i < hd; i++) out[i] += a * v[i];
        }
    }
    SM_PROF_END(s->prof, 2 * span * hd * heads, span * kv_dim * sizeof(float));
}

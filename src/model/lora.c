/* lora.c - applying LoRA adapters in a session: each matrix product of the
 * forward pass whose weight an adapter targets gains scale * B (A x), as
 * llama.cpp's llm_build_lora_mm adds it (after W x, before nothing else:
 * the order of additions does not change the sum's meaning). A x goes to
 * the session's arena scratch (lora_ax, batch x lora_rank_cap floats). */
#include "lora.h"
#include "session.h"
#include "core/error.h"

void sm_lora_apply(sm_session *s, const sm_matrix *w, float *c, int ldc, const float *x, int n) {
    const sm_kernel_table *kt = s->kt;
    for (int i = 0; i < s->n_adapters; i++) {
        const sm_lora_pair *p = sm_lora_find(s->adapters[i], w);
        if (!p) continue;
        float scale = sm_lora_pair_scale(s->adapters[i], p, s->adapter_scales[i]);
        for (int t = 0; t < n; t++) {
            const float *xt = x + (size_t)t * p->cols;
            float *ax = s->lora_ax + (size_t)t * s->lora_rank_cap, *ct = c + (size_t)t * ldc;
            for (int j = 0; j < p->rank; j++) ax[j] = kt->dot(p->a + (size_t)j * p->cols, xt, p->cols) * scale;
            for (int j = 0; j < p->rank; j++) kt->axpy(ct, ax[j], p->bt + (size_t)j * p->rows, p->rows);
        }
    }
}

sm_status sm_session_set_adapter(sm_session *s, const sm_adapter *a, float scale, sm_error *err) {
    if (!s || !a) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_session_set_adapter: session and adapter are required");
    if (a->model != s->model)
        return sm_fail(err, SM_ERR_INVALID_ARG, "the adapter was loaded for another model than the session's");
    int i = 0;
    while (i < s->n_adapters && s->adapters[i] != a) i++;
    if (scale == 0.0f) {   /* remove it */
        if (i < s->n_adapters) {
            for (; i + 1 < s->n_adapters; i++) {
                s->adapters[i] = s->adapters[i + 1];
                s->adapter_scales[i] = s->adapter_scales[i + 1];
            }
            s->n_adapters--;
        }
        return SM_OK;
    }
    if (a->max_rank > s->lora_rank_cap)
        return sm_fail(err, SM_ERR_INVALID_ARG,
                       "the adapter's rank %d exceeds the %d the session planned for (sm_session_params.lora_rank_max)",
                       a->max_rank, s->lora_rank_cap);
    if (i == s->n_adapters) {
        if (s->n_adapters == SM_MAX_ADAPTERS)
            return sm_fail(err, SM_ERR_INVALID_ARG, "a session takes at most %d adapters", SM_MAX_ADAPTERS);
        s->adapters[s->n_adapters++] = a;
    }
    s->adapter_scales[i] = scale;
    return SM_OK;
}

void sm_session_clear_adapters(sm_session *s) {
    if (s) s->n_adapters = 0;
}

/* kv_cache.c - the KV cache's rows in their element type (sm_kv_type: F32,
 * F16 or BF16 at half the memory, Q8_0 at 34 bytes for 32 values): where a
 * row lives, rows stored from
 * floats and read back as floats. The forward pass writes an F32 cache in place
 * (forward.c) and attention reads either type (attention.c); everything
 * else that moves cached rows (a batch's store, session files, the context
 * shift) goes through these calls. */
#include "session.h"
#include "kernels/types.h"
#include "kernels/quant.h"

#include <string.h>

/* Q8_0: n is a multiple of 32 (a session's heads are, sm_session_create checks) */
size_t sm_kv_row_bytes(sm_kv_type t, size_t n) {
    return t == SM_KV_Q8_0 ? n / SM_QK * sizeof(sm_block_q8_0) : n * (t == SM_KV_F32 ? 4 : 2);
}

uint32_t sm_kv_ggml_type(sm_kv_type t) {
    return t == SM_KV_F16 ? SM_GGML_F16 : t == SM_KV_BF16 ? SM_GGML_BF16 : t == SM_KV_Q8_0 ? SM_GGML_Q8_0 : SM_GGML_F32;
}

sm_kv_dot_fn sm_kv_dot(const sm_kernel_table *kt, sm_kv_type t) {
    return t == SM_KV_F16 ? kt->dot_f16 : t == SM_KV_BF16 ? kt->dot_bf16 : kt->dot_q8_0;
}

sm_kv_axpy_fn sm_kv_axpy(const sm_kernel_table *kt, sm_kv_type t) {
    return t == SM_KV_F16 ? kt->axpy_f16 : t == SM_KV_BF16 ? kt->axpy_bf16 : kt->axpy_q8_0;
}

size_t sm_kv_position_bytes(const sm_session *s) {
    size_t kv_dim = (size_t)s->model->hp.n_kv_heads * s->model->hp.head_dim;
    return sm_kv_row_bytes(s->type_k, kv_dim) + sm_kv_row_bytes(s->type_v, kv_dim);
}

/* the type of the keys (kind 0) or the values (1) */
static sm_kv_type kind_type(const sm_session *s, int kind) { return kind ? s->type_v : s->type_k; }

void *sm_kv_row(const sm_session *s, int kind, int layer, int pos) {
    const sm_hparams *hp = &s->model->hp;
    size_t kv_dim = (size_t)hp->n_kv_heads * hp->head_dim;
    sm_kv_type t = kind_type(s, kind);
    char *base = kind ? s->v_cache : s->k_cache;
    return base + ((size_t)layer * s->n_ctx + (size_t)pos) * sm_kv_row_bytes(t, kv_dim);
}

void sm_kv_store(sm_session *s, int kind, int layer, int pos, const float *rows, int n) {
    const sm_hparams *hp = &s->model->hp;
    int kv_dim = hp->n_kv_heads * hp->head_dim;
    if (kind_type(s, kind) == SM_KV_F32) {
        memcpy(sm_kv_row(s, kind, layer, pos), rows, (size_t)n * kv_dim * sizeof(float));
        return;
    }
    const sm_type_kernels *tk = &s->tk[sm_kv_ggml_type(kind_type(s, kind))];
    for (int i = 0; i < n; i++)   /* row by row: n x kv_dim may pass INT_MAX */
        tk->from_float(sm_kv_row(s, kind, layer, pos + i), rows + (size_t)i * kv_dim, kv_dim);
}

void sm_kv_read(const sm_session *s, int kind, int layer, int pos, float *rows, int n) {
    const sm_hparams *hp = &s->model->hp;
    int kv_dim = hp->n_kv_heads * hp->head_dim;
    if (kind_type(s, kind) == SM_KV_F32) {
        memcpy(rows, sm_kv_row(s, kind, layer, pos), (size_t)n * kv_dim * sizeof(float));
        return;
    }
    const sm_type_kernels *tk = &s->tk[sm_kv_ggml_type(kind_type(s, kind))];
    for (int i = 0; i < n; i++)
        tk->to_float(rows + (size_t)i * kv_dim, sm_kv_row(s, kind, layer, pos + i), kv_dim);
}

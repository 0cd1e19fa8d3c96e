/* check.c - finding NaN and Inf in a forward pass. The logits of a prompt
 * (the first token generated from it) are always checked: n_vocab compares
 * once per prompt. In check mode (sm_session_params.check, or profiling)
 * every layer's output of every token is checked too, and the error names
 * the first layer that produced a NaN or an Inf. Without it, a bad prompt
 * result is explained by scanning the weights for the first tensor holding
 * one (only then, so it costs nothing otherwise). */
#include "session.h"
#include "core/alloc.h"
#include "core/error.h"

#include <math.h>

static int all_finite(const float *x, size_t n) {
    /* any NaN or Inf makes the sum NaN or Inf; one pass, no branch per element */
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++) acc += x[i] * 0.0f;
    return acc == 0.0f;
}

void sm_check_layer(sm_session *s, int layer, const float *x, size_t n) {
    if (s->bad_layer < 0 && !all_finite(x, n)) s->bad_layer = layer;
}

/* A weight of the model that holds a NaN or an Inf, found by dequantizing
 * it a row at a time; names it in *what. */
static int matrix_bad(const sm_matrix *m, float *row) {
    if (!m->data) return 0;
    for (int r = 0; r < m->rows; r++) {
        sm_embedding_row(row, m, r);
        if (!all_finite(row, (size_t)m->cols)) return 1;
    }
    return 0;
}

static int vector_bad(const float *v, int n) { return v && !all_finite(v, (size_t)n); }

/* Returns the layer (-1 = outside the layers) and role of the first weight
 * that is not finite, in the order the forward pass uses them, or 0. */
static int find_bad_weight(const sm_model *m, const sm_token *tokens, size_t n, int *layer, const char **role,
                           float *row) {
    const sm_hparams *hp = &m->hp;
    int d = hp->dim, f = hp->ffn_dim;
    *layer = -1;
    for (size_t i = 0; i < n; i++) {
        sm_embedding_row(row, &m->tok_embd, tokens[i]);
        if (!all_finite(row, (size_t)d)) { *role = "token_embd"; return 1; }
    }
    if (m->pos_embd.data && matrix_bad(&m->pos_embd, row)) { *role = "position_embd"; return 1; }
    for (int l = 0; l < hp->n_layers; l++) {
        const sm_layer *L = &m->layers[l];
        *layer = l;
        struct { const sm_matrix *m; const char *name; } mats[] = {
            {&L->wq, "attn_q"}, {&L->wk, "attn_k"}, {&L->wv, "attn_v"}, {&L->wqkv, "attn_qkv"},
            {&L->wo, "attn_output"}, {&L->w_gate, "ffn_gate"}, {&L->w_up, "ffn_up"}, {&L->w_down, "ffn_down"}};
        struct { const float *v; int n; const char *name; } vecs[] = {
            {L->attn_norm, d, "attn_norm"}, {L->attn_norm_b, d, "attn_norm bias"}, {L->ffn_norm, d, "ffn_norm"},
            {L->ffn_norm_b, d, "ffn_norm bias"}, {L->b_qkv, 3 * d, "attn_qkv bias"}, {L->b_o, d, "attn_output bias"},
            {L->b_up, f, "ffn_up bias"}, {L->b_down, d, "ffn_down bias"}};
        for (size_t k = 0; k < sizeof vecs / sizeof vecs[0]; k++)
            if (vector_bad(vecs[k].v, vecs[k].n)) { *role = vecs[k].name; return 1; }
        for (size_t k = 0; k < sizeof mats / sizeof mats[0]; k++)
            if (matrix_bad(mats[k].m, row)) { *role = mats[k].name; return 1; }
    }
    *layer = -1;
    if (vector_bad(m->output_norm, d) || vector_bad(m->output_norm_b, d)) { *role = "output_norm"; return 1; }
    if (matrix_bad(&m->output, row)) { *role = "output"; return 1; }
    return 0;
}

sm_status sm_check_result(sm_session *s, const sm_token *tokens, size_t n, int logits_checked, sm_error *err) {
    const sm_model *m = s->model;
    if (s->bad_layer >= 0)
        return sm_fail(err, SM_ERR_FORMAT, "layer %d produced NaN or Inf values (check mode): the model's weights in "
                       "or before it are damaged or overflow", s->bad_layer);
    if (!logits_checked || all_finite(s->logits, (size_t)m->hp.n_vocab)) return SM_OK;
    if (s->check)
        return sm_fail(err, SM_ERR_FORMAT, "the output head produced NaN or Inf logits (every layer was finite): "
                       "the output norm or output matrix is damaged or overflows");
    int maxc = m->hp.dim > m->hp.ffn_dim ? m->hp.dim : m->hp.ffn_dim;
    float *row = sm_alloc((size_t)(maxc > m->hp.n_vocab ? maxc : m->hp.n_vocab) * sizeof *row);
    int layer = -1;
    const char *role = NULL;
    int found = row && find_bad_weight(m, tokens, n, &layer, &role, row);
    sm_free(row);
    if (found && layer >= 0)
        return sm_fail(err, SM_ERR_FORMAT, "the logits are NaN or Inf: layer %d's %s weights hold NaN or Inf values "
                       "(the model file is damaged)", layer, role);
    if (found)
        return sm_fail(err, SM_ERR_FORMAT, "the logits are NaN or Inf: the %s weights hold NaN or Inf values (the "
                       "model file is damaged)", role);
    return sm_fail(err, SM_ERR_FORMAT, "the logits are NaN or Inf although every weight is finite (the values "
                   "overflow); check mode (smallmind run --check) names the layer where it starts");
}

/* check.c - finding NaN and Inf in a forward pass. The logits of a prompt
 * (the first token generated from it) are always checked: n_vocab compares
 * once per prompt. In check mode (sm_session_params.check, or profiling)
 * every layer's output of every token is checked too, and the error names
 * the first layer that produced a NaN or an Inf. Without it, a bad prompt
 * result is explained by scanning the weights for the first tensor holding
 * one (only then, so it costs nothing otherwise). */
#include "session.h"
#include "ops.h"
#include "core/alloc.h"
#include "core/error.h"
#include "kernels/types.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static int all_finite(const float *x, size_t n) {
    /* any NaN or Inf makes the sum NaN or Inf; one pass, no branch per element */
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++) acc += x[i] * 0.0f;
    return acc == 0.0f;
}

void sm_check_layer(sm_session *s, int layer, const float *x, size_t n) {
    if (s->bad_layer < 0 && !all_finite(x, n)) s->bad_layer = layer;
}

/* Whether rows [0, rows) of a tensor (cols wide) hold a NaN or an Inf,
 * dequantized a row at a time into row. */
static int rows_bad(const void *data, uint32_t type, int rows, int cols, const int32_t *pick, size_t n_pick,
                    float *row) {
    sm_matrix mt = {data, type, rows, cols, NULL};
    size_t n = pick ? n_pick : (size_t)rows;
    for (size_t i = 0; i < n; i++) {
        sm_embedding_row(row, &mt, pick ? pick[i] : (int)i);
        if (!all_finite(row, (size_t)cols)) return 1;
    }
    return 0;
}

/* The first tensor, in the order the forward pass uses them (embeddings,
 * then layer by layer, then the head), that holds a NaN or an Inf: its
 * index, and its layer (-1 outside the layers); -1 if none. Of the token
 * embedding only the rows of the evaluated tokens count. Works from the
 * GGUF tensor list, whatever the architecture. */
static int64_t find_bad_tensor(const sm_model *m, const sm_token *tokens, size_t n, int *layer, float *row) {
    const sm_gguf *g = &m->gguf;
    int64_t best = -1;
    int best_rank = INT_MAX;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sm_gguf_tensor *t = &g->tensors[i];
        if (!t->data || !sm_type_runnable(t->type) || t->ne[0] > (uint64_t)INT_MAX) continue;
        int l = -1, rank;
        char nm[48];
        snprintf(nm, sizeof nm, "%.*s", (int)(t->name.len < 47 ? t->name.len : 47), t->name.ptr);
        int embd = !strcmp(nm, "token_embd.weight") || !strcmp(nm, "position_embd.weight");
        if (sscanf(nm, "blk.%d.", &l) == 1 && l >= 0) rank = l;
        else rank = embd ? -1 : INT_MAX - 1;
        if (rank >= best_rank) continue;
        int cols = (int)t->ne[0];
        uint64_t rows = t->n_elements / t->ne[0];
        if (rows > (uint64_t)INT_MAX) continue;
        int tok = !strcmp(nm, "token_embd.weight");
        if (rows_bad(t->data, t->type, (int)rows, cols, tok ? tokens : NULL, n, row)) {
            best = (int64_t)i;
            best_rank = rank;
            *layer = rank >= 0 && rank < INT_MAX - 1 ? rank : -1;
        }
    }
    return best;
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
    uint64_t widest = 1;
    for (uint64_t i = 0; i < m->gguf.n_tensors; i++)
        if (m->gguf.tensors[i].ne[0] > widest) widest = m->gguf.tensors[i].ne[0];
    float *row = widest <= (uint64_t)INT_MAX ? sm_alloc((size_t)widest * sizeof *row) : NULL;
    int layer = -1;
    int64_t bad = row ? find_bad_tensor(m, tokens, n, &layer, row) : -1;
    sm_free(row);
    if (bad >= 0) {
        sm_gguf_str nm = m->gguf.tensors[bad].name;
        char where[32] = "";
        if (layer >= 0) snprintf(where, sizeof where, "layer %d's ", layer);
        return sm_fail(err, SM_ERR_FORMAT, "the logits are NaN or Inf: %stensor '%.*s' holds NaN or Inf values (the "
                       "model file is damaged)", where, (int)(nm.len > 64 ? 64 : nm.len), nm.ptr);
    }
    if (m->gguf.n_tensors == 0)   /* a llama2.c file: no tensor list to scan */
        return sm_fail(err, SM_ERR_FORMAT, "the logits are NaN or Inf; check mode (smallmind run --check) names the "
                       "layer where they start");
    return sm_fail(err, SM_ERR_FORMAT, "the logits are NaN or Inf although every weight is finite (the values "
                   "overflow); check mode (smallmind run --check) names the layer where it starts");
}

/* interleave_weights.c - gives a loaded model's Q4_0 and Q8_0 matrices the
 * interleaved copy (kernels/interleave.h) that the AVX-512 VNNI kernels read
 * during decode and prefill. Done once at load, into one block; the GGUF
 * layout stays mapped for the embedding rows, the rows past the last whole
 * group of 16 and sessions that run another kernel level. */
#include "model.h"
#include "session.h"
#include "core/alloc.h"
#include "kernels/interleave.h"

static int wants_x16(const sm_matrix *w) {
    return w->data && w->rows >= SM_X16 && (w->type == SM_GGML_Q4_0 || w->type == SM_GGML_Q8_0);
}

/* The bytes the interleaved copies of every projection matrix (not the
 * embedding table) take; with mem, also writes them there. */
static uint64_t each_matrix(sm_model *m, char *mem) {
    uint64_t total = 0;
    for (int l = 0; l <= m->hp.n_layers; l++) {
        sm_layer *L = l < m->hp.n_layers ? &m->layers[l] : NULL;
        sm_matrix *list[8] = {0};
        int n = 0;
        if (L) {
            sm_matrix *all[8] = {&L->wq, &L->wk, &L->wv, &L->wqkv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
            for (int i = 0; i < 8; i++) list[n++] = all[i];
        } else {
            list[n++] = &m->output;
        }
        for (int i = 0; i < n; i++) {
            sm_matrix *w = list[i];
            if (!wants_x16(w)) continue;
            size_t bytes = (size_t)(w->rows / SM_X16 * SM_X16) * sm_matrix_row_bytes(w->type, w->cols);
            if (mem) {
                void *dst = mem + total;
                if (w->type == SM_GGML_Q4_0) sm_interleave_q4_0(dst, w->data, w->rows / SM_X16 * SM_X16, w->cols);
                else sm_interleave_q8_0(dst, w->data, w->rows / SM_X16 * SM_X16, w->cols);
                w->x16 = dst;
            }
            total += (bytes + 63) & ~(size_t)63;
        }
    }
    return total;
}

void sm_model_interleave(sm_model *m) {
    const sm_kernel_table *kt = sm_kernels_get(NULL);
    if (!m->has_weights || !kt || !kt->matvec_q4_0_x16 || !kt->matvec_q8_0_x16) return;
    uint64_t total = each_matrix(m, NULL);
    if (!total || total > SIZE_MAX) return;
    /* without the memory the GGUF layout still works, only slower */
    if (!(m->x16_mem = sm_alloc_aligned((size_t)total))) return;
    m->x16_bytes = total;
    each_matrix(m, m->x16_mem);
}

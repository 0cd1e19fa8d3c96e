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

/* Adds w's copy to the running total; with mem, also writes it there. */
static void add_copy(sm_matrix *w, char *mem, uint64_t *total) {
    if (!wants_x16(w)) return;
    int rows = w->rows / SM_X16 * SM_X16;
    if (mem) {
        void *dst = mem + *total;
        if (w->type == SM_GGML_Q4_0) sm_interleave_q4_0(dst, w->data, rows, w->cols);
        else sm_interleave_q8_0(dst, w->data, rows, w->cols);
        w->x16 = dst;
    }
    size_t bytes = (size_t)rows * sm_matrix_row_bytes(w->type, w->cols);
    *total += (bytes + 63) & ~(size_t)63;
}

/* The bytes the copies of every projection matrix (not the embedding
 * table) take; with mem, also writes them there. */
static uint64_t each_matrix(sm_model *m, char *mem) {
    uint64_t total = 0;
    for (int l = 0; l < m->hp.n_layers; l++) {
        sm_layer *L = &m->layers[l];
        sm_matrix *all[8] = {&L->wq, &L->wk, &L->wv, &L->wqkv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 8; i++) add_copy(all[i], mem, &total);
    }
    add_copy(&m->output, mem, &total);
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

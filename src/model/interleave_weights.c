/* interleave_weights.c - gives a loaded model's matrices the interleaved
 * copy (kernels/interleave.h) that the best kernel level's matrix x vector
 * kernels read during decode and prefill, for the element types that have
 * one (the type table's interleave_x16: Q4_0, Q8_0, Q4_1, Q5_0, Q5_1,
 * IQ4_NL, Q4_K, Q5_K, IQ4_XS and Q6_K on AVX-512 VNNI; on AVX2 the same
 * but Q5_K and Q6_K, and F16 and BF16 (columns of 16 rows' elements side by
 * side), whose level has kernels for it).
 * Done once at load, into one block; the GGUF layout stays mapped for the
 * embedding rows, the rows past the last whole group of 16 and sessions
 * that run another kernel level. */
#include "model.h"
#include "core/alloc.h"
#include "kernels/dispatch.h"
#include "kernels/interleave.h"

static int wants_x16(const sm_kernel_table *kt, const sm_matrix *w) {
    if (!w->data || w->rows < SM_X16 || !sm_type(w->type)->interleave_x16) return 0;
    sm_type_kernels k;
    sm_kernels_for_type(kt, w->type, &k);
    return k.matvec_x16 != NULL;
}

/* Adds w's copy to the running total; with mem, also writes it there. */
static void add_copy(const sm_kernel_table *kt, sm_matrix *w, char *mem, uint64_t *total) {
    if (!wants_x16(kt, w)) return;
    int rows = w->rows / SM_X16 * SM_X16;
    if (mem) {
        void *dst = mem + *total;
        sm_type(w->type)->interleave_x16(dst, w->data, rows, w->cols);
        w->x16 = dst;
    }
    size_t bytes = (size_t)rows * sm_type_row_bytes(w->type, w->cols);
    *total += (bytes + 63) & ~(size_t)63;
}

/* The bytes the copies of every projection matrix and the output head (not
 * the embedding tables) take; with mem, also writes them there. */
static uint64_t each_matrix(const sm_kernel_table *kt, sm_model *m, char *mem) {
    uint64_t total = 0;
    for (int l = 0; l < m->hp.n_layers; l++)
        for (int role = SM_T_LAYER_FIRST; role < SM_T_COUNT; role++) {
            sm_matrix *w = sm_model_matrix(m, role, l);
            if (w) add_copy(kt, w, mem, &total);
        }
    add_copy(kt, &m->output, mem, &total);
    return total;
}

void sm_model_interleave(sm_model *m) {
    const sm_kernel_table *kt = sm_kernels_get(NULL);
    if (!m->has_weights || !kt) return;
    uint64_t total = each_matrix(kt, m, NULL);
    if (!total || total > SIZE_MAX) return;
    /* without the memory the GGUF layout still works, only slower */
    if (!(m->x16_mem = sm_alloc_huge((size_t)total))) return;
    m->x16_bytes = total;
    each_matrix(kt, m, m->x16_mem);
}

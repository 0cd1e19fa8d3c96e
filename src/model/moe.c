/* moe.c - the feed-forward block of a mixture of experts (Mixtral-style
 * llama, granitemoe, olmoe, qwen2moe, qwen3moe), as llama.cpp's llm_build_moe_ffn
 * computes it: the router's logits (ffn_gate_inp, n_expert per row), their
 * softmax, each row's n_expert_used most probable experts weighted by their
 * probabilities (renormalized over the chosen ones where the architecture
 * says so), each a SwiGLU FFN whose matrices are slices of the layer's
 * stacked ones; qwen2moe adds a shared expert gated by sigmoid(w . x).
 *
 * A batch goes expert by expert: the rows that chose an expert are
 * gathered (in batch order, so a batch's one-token rows stay first and go
 * through the matrix x vector kernels, as they would alone), run through
 * its three products as one batch, and added back, weighted, into x. Only
 * the chosen experts' weights are read. */
#include "ops.h"
#include "kernels/interleave.h"
#include "kernels/kernels.h"
#include "kernels/types.h"

#include <math.h>
#include <string.h>

/* Expert e's rows of a stack of n_expert matrices (rows / n_expert each);
 * its interleaved copy where expert boundaries fall on whole groups of 16. */
static sm_matrix expert_slice(const sm_matrix *stack, int e, int n_expert) {
    int rows = stack->rows / n_expert;
    size_t row_bytes = sm_type_row_bytes(stack->type, stack->cols), at = (size_t)e * rows * row_bytes;
    sm_matrix w = {(const char *)stack->data + at, stack->type, rows, stack->cols, NULL};
    if (stack->x16 && rows % SM_X16 == 0) w.x16 = (const char *)stack->x16 + at;
    return w;
}

/* Row r's experts: the n_used largest of the router's softmax (ties to the
 * lower index), their weights into w (renormalized when norm). */
static void route_row(const float *logits, int n_expert, int n_used, int norm, float scale, int *pick, float *w) {
    float max = logits[0];
    for (int e = 1; e < n_expert; e++) max = logits[e] > max ? logits[e] : max;
    double sum = 0;
    for (int e = 0; e < n_expert; e++) sum += exp((double)(logits[e] - max));
    for (int k = 0; k < n_used; k++) {
        int best = -1;
        for (int e = 0; e < n_expert; e++) {
            int taken = 0;
            for (int j = 0; j < k; j++) taken |= pick[j] == e;
            if (!taken && (best < 0 || logits[e] > logits[best])) best = e;
        }
        pick[k] = best;
        w[k] = (float)(exp((double)(logits[best] - max)) / sum);
    }
    float total = 0;
    for (int k = 0; k < n_used; k++) total += w[k];
    for (int k = 0; k < n_used; k++) w[k] = (norm ? w[k] / total : w[k]) * scale;
}

void op_moe(sm_session *s, const sm_layer *L, const float *in, float *x, int n, int nv) {
    const sm_hparams *hp = &s->model->hp;
    int dim = hp->dim, ne = hp->n_expert, nu = hp->n_expert_used, ffn = hp->ffn_exp;
    int norm = sm_arch_get(hp->arch)->moe_norm_weights;
    /* the router: [n][n_expert] logits, then each row's choice */
    op_matmul(s, SM_SC_FFN_ROUTER, s->moe_logits, ne, &L->ffn_gate_inp, in, n, nv, NULL, 0);
    for (int r = 0; r < n; r++)
        route_row(s->moe_logits + (size_t)r * ne, ne, nu, norm, hp->residual_scale, s->moe_pick + (size_t)r * nu,
                  s->moe_w + (size_t)r * nu);
    /* each expert's rows, in batch order: a counting sort of (row, slot) by expert */
    int *count = s->moe_count, *order = s->moe_order;
    memset(count, 0, (size_t)(ne + 1) * sizeof(int));
    for (int i = 0; i < n * nu; i++) count[s->moe_pick[i] + 1]++;
    for (int e = 0; e < ne; e++) count[e + 1] += count[e];
    for (int r = 0; r < n; r++)
        for (int k = 0; k < nu; k++) order[count[s->moe_pick[r * nu + k]]++] = r * nu + k;
    /* count[e] is now where expert e's entries end; they begin at count[e - 1] (0 for the first) */
    for (int e = 0, begin = 0; e < ne; begin = count[e], e++) {
        int m = count[e] - begin, m_vec = 0;
        if (m == 0) continue;
        for (int j = 0; j < m; j++) {
            int r = order[begin + j] / nu;
            memcpy(s->moe_in + (size_t)j * dim, in + (size_t)r * dim, (size_t)dim * sizeof(float));
            m_vec += r < nv;
        }
        sm_matrix gate = expert_slice(&L->gate_exps, e, ne), up = expert_slice(&L->up_exps, e, ne);
        sm_matrix down = expert_slice(&L->down_exps, e, ne);
        sm_matmul_share_input(s, s->moe_in);
        op_matmul(s, SM_SC_FFN_GATE, s->hb, ffn, &gate, s->moe_in, m, m_vec, NULL, 0);
        op_matmul(s, SM_SC_FFN_UP, s->hb2, ffn, &up, s->moe_in, m, m_vec, NULL, 0);
        sm_matmul_share_input(s, NULL);
        op_ffn_act(s, SM_FFN_SWIGLU, s->hb, s->hb2, m, ffn);
        op_matmul(s, SM_SC_FFN_DOWN, s->moe_out, dim, &down, s->hb, m, m_vec, NULL, 0);
        SM_PROF_BEGIN(s->prof, SM_SC_RESIDUAL, -1);
        for (int j = 0; j < m; j++) {
            int slot = order[begin + j];
            float *xr = x + (size_t)(slot / nu) * dim, wr = s->moe_w[slot];
            const float *yr = s->moe_out + (size_t)j * dim;
            for (int i = 0; i < dim; i++) xr[i] += wr * yr[i];
        }
        SM_PROF_END(s->prof, 2ull * m * dim, 12ull * m * dim);
    }
    if (!L->gate_inp_shexp) return;
    /* qwen2moe's shared expert, on every row, times sigmoid(w . x) */
    int fs = hp->ffn_shexp;
    sm_matmul_share_input(s, in);
    op_matmul(s, SM_SC_FFN_GATE, s->hb, fs, &L->gate_shexp, in, n, nv, NULL, 0);
    op_matmul(s, SM_SC_FFN_UP, s->hb2, fs, &L->up_shexp, in, n, nv, NULL, 0);
    sm_matmul_share_input(s, NULL);
    op_ffn_act(s, SM_FFN_SWIGLU, s->hb, s->hb2, n, fs);
    op_matmul(s, SM_SC_FFN_DOWN, s->moe_out, dim, &L->down_shexp, s->hb, n, nv, NULL, 0);
    SM_PROF_BEGIN(s->prof, SM_SC_RESIDUAL, -1);
    for (int r = 0; r < n; r++) {
        const float *xr_in = in + (size_t)r * dim;
        float dot = 0;
        for (int i = 0; i < dim; i++) dot += L->gate_inp_shexp[i] * xr_in[i];
        float g = 1.0f / (1.0f + expf(-dot));
        float *xr = x + (size_t)r * dim;
        const float *yr = s->moe_out + (size_t)r * dim;
        for (int i = 0; i < dim; i++) xr[i] += g * yr[i];
    }
    SM_PROF_END(s->prof, 4ull * n * dim, 16ull * n * dim);
}

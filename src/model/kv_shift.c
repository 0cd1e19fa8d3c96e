/* kv_shift.c - the context shift (sm_session_shift): forget a stretch of
 * the cached tokens and move the later ones down, as llama.cpp's context
 * shift does (llama_kv_cache_seq_rm, then seq_add with a negative delta,
 * whose K-shift re-applies RoPE to the cached keys).
 *
 * A cached key is RoPE(k, p): each rotated pair turned by the angle
 * p * freq_i, with the cos and sin of the session's tables scaled by the
 * attention factor. Turning it by -delta * freq_i more gives the key at
 * position p - delta exactly (rotations compose; the attention factor is
 * already in it and is not applied again). Values carry no position and
 * only move. Everything is done in place on the session's cache, without
 * allocating, so a generation loop may shift between two tokens. */
#include "session.h"
#include "core/error.h"

#include <math.h>
#include <string.h>

/* Pairs whose cos and sin are computed per pass (a stack buffer, so any
 * rotary dimension works without a scratch allocation). */
#define PAIRS_PER_PASS 128

/* Turns pairs [i0, i0 + np) of every head of rows [0, n_rows) of a layer's
 * keys by the angles whose cos and sin are c[] and sn[]. */
static void rotate_rows(float *rows, int n_rows, const sm_hparams *hp, int neox, int i0, int np, const float *c,
                        const float *sn) {
    int kv_dim = hp->n_kv_heads * hp->head_dim, half = hp->rope_dim / 2;
    for (int r = 0; r < n_rows; r++) {
        float *row = rows + (size_t)r * kv_dim;
        for (int h = 0; h < hp->n_kv_heads; h++) {
            float *v = row + (size_t)h * hp->head_dim;
            for (int j = 0; j < np; j++) {
                int i = i0 + j;
                /* NeoX pairs x[i] with x[i + rot/2]; the original layout pairs neighbours */
                float *a = neox ? &v[i] : &v[2 * i], *b = neox ? &v[i + half] : &v[2 * i + 1];
                float x = *a, y = *b;
                *a = x * c[j] - y * sn[j];
                *b = x * sn[j] + y * c[j];
            }
        }
    }
}

/* Turns n_rows keys of a layer (floats, kv_dim apart) from their position p
 * to p - delta: every rotated pair by -delta * freq_i. */
static void turn_rows(float *rows, int n_rows, const sm_hparams *hp, const sm_rope_spec *r, int delta) {
    int neox = sm_arch_get(hp->arch)->pos == SM_POS_ROPE_NEOX, half = hp->rope_dim / 2;
    for (int i0 = 0; i0 < half; i0 += PAIRS_PER_PASS) {
        int np = half - i0 < PAIRS_PER_PASS ? half - i0 : PAIRS_PER_PASS;
        float c[PAIRS_PER_PASS], sn[PAIRS_PER_PASS];
        for (int j = 0; j < np; j++) {
            /* the frequency of the session's tables, without their factor (K holds it once) */
            double angle = -(double)delta * sm_rope_freq(r, i0 + j);
            c[j] = (float)cos(angle);
            sn[j] = (float)sin(angle);
        }
        rotate_rows(rows, n_rows, hp, neox, i0, np, c, sn);
    }
}

sm_status sm_session_shift(sm_session *s, int n_keep, int n_discard, sm_error *err) {
    if (!s) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_session_shift: session is NULL");
    const sm_model *m = s->model;
    const sm_hparams *hp = &m->hp;
    const sm_arch_info *arch = sm_arch_get(hp->arch);
    if (m->pos_embd.data)
        return sm_fail(err, SM_ERR_UNSUPPORTED,
                       "this %s model has learned positions: its cached tokens cannot move to new positions "
                       "(drop old tokens and evaluate again instead)", m->arch);
    if (arch->qk_norm_after_rope)
        return sm_fail(err, SM_ERR_UNSUPPORTED,
                       "this %s model normalizes its keys after RoPE: its cached keys cannot be turned to new "
                       "positions (drop old tokens and evaluate again instead)", m->arch);
    if (n_keep < 0 || n_discard < 0 || n_keep > s->n_past - n_discard)
        return sm_fail(err, SM_ERR_INVALID_ARG, "cannot discard %d tokens after the first %d of a session that holds %d",
                       n_discard, n_keep, s->n_past);
    if (n_discard == 0) return SM_OK;
    int kv_dim = hp->n_kv_heads * hp->head_dim, n_move = s->n_past - n_keep - n_discard;
    size_t k_row = sm_kv_row_bytes(s->type_k, kv_dim), v_row = sm_kv_row_bytes(s->type_v, kv_dim);
    for (int l = 0; l < hp->n_layers && n_move > 0; l++) {
        char *k = sm_kv_row(s, 0, l, 0), *v = sm_kv_row(s, 1, l, 0);
        memmove(k + (size_t)n_keep * k_row, k + (size_t)(n_keep + n_discard) * k_row, (size_t)n_move * k_row);
        memmove(v + (size_t)n_keep * v_row, v + (size_t)(n_keep + n_discard) * v_row, (size_t)n_move * v_row);
        if (!sm_layer_has_rope(hp, l)) continue;   /* smollm3's NoPE layers: nothing to turn */
        sm_rope_spec r;
        sm_session_rope(s, sm_layer_is_swa(hp, l), &r);
        if (s->type_k == SM_KV_F32) {
            turn_rows((float *)sm_kv_row(s, 0, l, n_keep), n_move, hp, &r, n_discard);
            continue;
        }
        /* F16 keys: batch_cap rows at a time as floats in the batch's key buffer, turned, rounded back */
        for (int p = n_keep; p < n_keep + n_move; p += s->batch_cap) {
            int n = n_keep + n_move - p < s->batch_cap ? n_keep + n_move - p : s->batch_cap;
            sm_kv_read(s, 0, l, p, s->k_rows, n);
            turn_rows(s->k_rows, n, hp, &r, n_discard);
            sm_kv_store(s, 0, l, p, s->k_rows, n);
        }
    }
    memmove(s->history + n_keep, s->history + n_keep + n_discard, (size_t)n_move * sizeof *s->history);
    s->n_past -= n_discard;
    s->logits_valid = 0;
    return SM_OK;
}

/* spm.c - see spm.h. */
#include "spm.h"
#include "merge_heap.h"
#include "utf8.h"
#include "core/alloc.h"
#include "core/error.h"

#include <string.h>

/* Texts may only merge into tokens that stand for plain text. */
static int mergeable(const sm_vocab *v, int32_t id) {
    int t = v->type[id];
    return t == SM_TOK_NORMAL || t == SM_TOK_USER_DEFINED || t == SM_TOK_UNUSED;
}

typedef struct merge_state {
    const sm_vocab *v;
    const char *s;
    sm_symbol *sym;
    sm_bigram *heap;
    size_t n_heap;
} merge_state;

static void try_bigram(merge_state *m, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    int32_t len = m->sym[l].len + m->sym[r].len;
    int32_t id = sm_vocab_lookup(m->v, m->s + m->sym[l].start, (size_t)len);
    if (id < 0 || !mergeable(m->v, id)) return;
    sm_bigram b = {m->v->score[id], l, r, len};
    sm_heap_push(m->heap, &m->n_heap, b);
}

static void emit(sm_token *out, size_t cap, size_t *n, sm_token t) {
    if (*n < cap) out[*n] = t;
    (*n)++;
}

sm_status sm_spm_encode(const sm_vocab *v, const char *text, size_t len, int add_prefix, sm_token *tokens,
                        size_t capacity, size_t *n_io, sm_error *err) {
    size_t n = *n_io;
    if (len == 0) return SM_OK;
    /* The dummy prefix makes the first word look like every other word. */
    size_t slen = len + (add_prefix ? 1 : 0);
    char *s = sm_alloc(slen);
    sm_symbol *sym = sm_alloc(slen * sizeof *sym);
    sm_bigram *heap = sm_alloc((3 * slen + 1) * sizeof *heap);
    if (!s || !sym || !heap) {
        sm_free(s); sm_free(sym); sm_free(heap);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory tokenizing");
    }
    if (add_prefix) s[0] = ' ';
    memcpy(s + (slen - len), text, len);

    int32_t n_sym = 0;
    for (size_t i = 0; i < slen;) {
        size_t cl = sm_utf8_seq_len((const unsigned char *)s + i, slen - i);
        if (cl == 0) cl = 1;  /* unreachable after validation; keeps the loop finite */
        sym[n_sym] = (sm_symbol){(int32_t)i, (int32_t)cl, n_sym - 1, n_sym + 1, -1};
        n_sym++;
        i += cl;
    }
    sym[n_sym - 1].next = -1;
    merge_state m = {v, s, sym, heap, 0};
    for (int32_t i = 1; i < n_sym; i++) try_bigram(&m, i - 1, i);
    while (m.n_heap > 0) {
        sm_bigram b = sm_heap_pop(m.heap, &m.n_heap);
        sm_symbol *L = &sym[b.left], *R = &sym[b.right];
        /* A pair whose symbols changed since it was queued is stale. */
        if (L->len == 0 || R->len == 0 || L->len + R->len != b.aux || L->next != b.right) continue;
        L->len += R->len;
        R->len = 0;
        L->next = R->next;
        if (R->next >= 0) sym[R->next].prev = b.left;
        try_bigram(&m, L->prev, b.left);
        try_bigram(&m, b.left, L->next);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next) {
        int32_t id = sm_vocab_lookup(v, s + sym[i].start, (size_t)sym[i].len);
        if (id >= 0 && mergeable(v, id)) {
            emit(tokens, capacity, &n, id);
            continue;
        }
        for (int32_t k = 0; k < sym[i].len; k++) {
            int32_t bid = v->byte_id[(unsigned char)s[sym[i].start + k]];
            emit(tokens, capacity, &n, bid >= 0 ? bid : (v->unk >= 0 ? v->unk : 0));
        }
    }
    sm_free(s);
    sm_free(sym);
    sm_free(heap);
    *n_io = n;
    return SM_OK;
}

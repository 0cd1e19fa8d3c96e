/* bpe.c - see bpe.h: merges by rank within each pre-tokenizer piece. */
#include "bpe.h"
#include "pretok.h"
#include "merge_heap.h"
#include "unicode.h"
#include "utf8.h"
#include "core/alloc.h"
#include "core/error.h"

#include <string.h>

struct sm_bpe {
    sm_pretok *pretok;
    /* merges: open addressing on (left id, right id) -> rank, merged id */
    uint64_t *keys;
    int32_t *rank, *merged;
    size_t mask;
    int32_t byte_id[256];   /* token of each byte's code point, or -1 */
};

static uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

static size_t pair_slot(uint64_t k, size_t mask) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k & mask;
}

void sm_bpe_free(sm_bpe *b) {
    if (!b) return;
    sm_pretok_free(b->pretok);
    sm_free(b->keys);
    sm_free(b->rank);
    sm_free(b->merged);
    sm_free(b);
}

sm_status sm_bpe_attach(sm_vocab *v, const char *pre, size_t pre_len, const sm_text_span *merges, size_t n_merges,
                        int *fallback, sm_error *err) {
    *fallback = 0;
    if (v->kind != SM_VOCAB_BPE) return sm_fail(err, SM_ERR_INVALID_ARG, "merges given to a SentencePiece vocabulary");
    sm_bpe *b = sm_calloc(1, sizeof *b);
    if (!b) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    sm_bpe_free(v->bpe);
    v->bpe = b;
    sm_status st = sm_pretok_new(pre, pre_len, &b->pretok, fallback, err);
    if (st) return st;
    v->add_bos = sm_pretok_add_bos(b->pretok);  /* until the file says otherwise */
    size_t cap = 16;
    while (cap < n_merges * 2) cap *= 2;
    b->keys = sm_alloc(cap * sizeof *b->keys);
    b->rank = sm_alloc(cap * sizeof *b->rank);
    b->merged = sm_alloc(cap * sizeof *b->merged);
    if (!b->keys || !b->rank || !b->merged) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    b->mask = cap - 1;
    for (size_t i = 0; i < cap; i++) b->rank[i] = -1;
    char buf[1024];
    for (size_t i = 0; i < n_merges; i++) {
        const char *m = merges[i].ptr;
        size_t len = merges[i].len;
        const char *sp = memchr(m, ' ', len);
        if (!sp || len >= sizeof buf) continue;
        size_t ll = (size_t)(sp - m), rl = len - ll - 1;
        int32_t l = sm_vocab_lookup(v, m, ll), r = sm_vocab_lookup(v, sp + 1, rl);
        memcpy(buf, m, ll);
        memcpy(buf + ll, sp + 1, rl);
        int32_t to = sm_vocab_lookup(v, buf, ll + rl);
        if (l < 0 || r < 0 || to < 0) continue;  /* a merge the vocabulary cannot express */
        uint64_t k = pair_key(l, r);
        size_t s = pair_slot(k, b->mask);
        while (b->rank[s] >= 0 && b->keys[s] != k) s = (s + 1) & b->mask;
        if (b->rank[s] >= 0) continue;  /* first rank wins */
        b->keys[s] = k;
        b->rank[s] = (int32_t)i;
        b->merged[s] = to;
    }
    for (int x = 0; x < 256; x++) {
        char u[4];
        size_t ul = sm_cp_to_utf8(sm_bpe_byte_to_cp((unsigned char)x), u);
        b->byte_id[x] = sm_vocab_lookup(v, u, ul);
    }
    return SM_OK;
}

static int find_merge(const sm_bpe *b, int32_t l, int32_t r, int32_t *rank, int32_t *to) {
    if (l < 0 || r < 0) return 0;
    uint64_t k = pair_key(l, r);
    for (size_t s = pair_slot(k, b->mask); b->rank[s] >= 0; s = (s + 1) & b->mask)
        if (b->keys[s] == k) {
            *rank = b->rank[s];
            *to = b->merged[s];
            return 1;
        }
    return 0;
}

static void emit(sm_token *out, size_t cap, size_t *n, sm_token t) {
    if (*n < cap) out[*n] = t;
    (*n)++;
}

/* Merges one pre-tokenized piece (given as bytes) and emits its tokens.
 * A byte the vocabulary has no token for becomes the unknown token, or
 * (without one) is recorded in *missing (the first such byte). */
static void encode_piece(const sm_vocab *v, const unsigned char *bytes, size_t nb, char *mapped, sm_symbol *sym,
                         sm_bigram *heap, sm_token *out, size_t cap, size_t *n, int *missing) {
    const sm_bpe *b = v->bpe;
    if (sm_pretok_ignore_merges(b->pretok)) {
        size_t w = 0;
        for (size_t i = 0; i < nb; i++) w += sm_cp_to_utf8(sm_bpe_byte_to_cp(bytes[i]), mapped + w);
        int32_t id = sm_vocab_lookup(v, mapped, w);
        if (id >= 0) { emit(out, cap, n, id); return; }
    }
    for (size_t i = 0; i < nb; i++)
        sym[i] = (sm_symbol){(int32_t)i, 1, (int32_t)i - 1, i + 1 < nb ? (int32_t)i + 1 : -1, b->byte_id[bytes[i]]};
    size_t nh = 0;
    int32_t rank, to;
    for (size_t i = 0; i + 1 < nb; i++)
        if (find_merge(b, sym[i].id, sym[i + 1].id, &rank, &to))
            sm_heap_push(heap, &nh, (sm_bigram){-(float)rank, (int32_t)i, (int32_t)i + 1, to});
    while (nh > 0) {
        sm_bigram g = sm_heap_pop(heap, &nh);
        sm_symbol *L = &sym[g.left], *R = &sym[g.right];
        /* stale if either side changed since the pair was queued */
        if (L->len == 0 || R->len == 0 || L->next != g.right) continue;
        if (!find_merge(b, L->id, R->id, &rank, &to) || to != g.aux || -(float)rank != g.score) continue;
        L->id = to;
        L->len += R->len;
        R->len = 0;
        L->next = R->next;
        if (R->next >= 0) sym[R->next].prev = g.left;
        if (L->prev >= 0 && find_merge(b, sym[L->prev].id, L->id, &rank, &to))
            sm_heap_push(heap, &nh, (sm_bigram){-(float)rank, L->prev, g.left, to});
        if (L->next >= 0 && find_merge(b, L->id, sym[L->next].id, &rank, &to))
            sm_heap_push(heap, &nh, (sm_bigram){-(float)rank, g.left, L->next, to});
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next) {
        if (sym[i].id >= 0) emit(out, cap, n, sym[i].id);
        else if (v->unk >= 0) emit(out, cap, n, v->unk);
        else if (*missing < 0) *missing = bytes[sym[i].start];
    }
}

sm_status sm_bpe_encode(const sm_vocab *v, const char *text, size_t len, sm_token *out, size_t cap, size_t *n,
                        sm_error *err) {
    if (len == 0) return SM_OK;
    uint32_t *cps = sm_alloc(len * sizeof *cps), *off = sm_alloc((len + 1) * sizeof *off);
    uint32_t *st = sm_alloc(len * 4 * sizeof *st);
    char *mapped = sm_alloc(len * 2 + 4);
    sm_symbol *sym = sm_alloc(len * sizeof *sym);
    sm_bigram *heap = sm_alloc((3 * len + 1) * sizeof *heap);
    sm_status status = SM_OK;
    if (!cps || !off || !st || !mapped || !sym || !heap) {
        status = sm_fail(err, SM_ERR_NOMEM, "out of memory tokenizing");
        goto done;
    }
    size_t ncp = sm_utf8_to_cps(text, len, cps);
    /* byte offset of every code point */
    for (size_t i = 0, b = 0; i < ncp; i++) {
        off[i] = (uint32_t)b;
        b += sm_utf8_lead_len((unsigned char)text[b]);
    }
    off[ncp] = (uint32_t)len;
    uint32_t *starts = st, *lens = st + len, *ts = st + 2 * len, *tl = st + 3 * len;
    size_t np = sm_pretok_split(v->bpe->pretok, cps, ncp, starts, lens, ts, tl);
    int missing = -1;
    for (size_t p = 0; p < np; p++) {
        uint32_t b0 = off[starts[p]], b1 = off[starts[p] + lens[p]];
        encode_piece(v, (const unsigned char *)text + b0, b1 - b0, mapped, sym, heap, out, cap, n, &missing);
    }
    /* dropping the byte would change the text without a word: refuse */
    if (missing >= 0) {
        char shown[8] = "";
        if (missing >= 0x20 && missing < 0x7F) snprintf(shown, sizeof shown, " ('%c')", missing);
        status = sm_fail(err, SM_ERR_UNSUPPORTED, "the text cannot be encoded: this byte-level vocabulary has no token "
                         "for byte 0x%02X%s and no unknown token", (unsigned)missing, shown);
    }
done:
    sm_free(cps);
    sm_free(off);
    sm_free(st);
    sm_free(mapped);
    sm_free(sym);
    sm_free(heap);
    return status;
}

/* vocab.c - see vocab.h. */
#include "vocab.h"
#include "utf8.h"
#include "core/alloc.h"
#include "core/error.h"

#include <math.h>
#include <string.h>

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xHH>" -> HH, else -1. */
static int byte_token_value(const char *t, size_t n) {
    if (n != 6 || memcmp(t, "<0x", 3) != 0 || t[5] != '>') return -1;
    int hi = hex_digit(t[3]), lo = hex_digit(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static int infer_type(const char *t, size_t n, int id) {
    if (byte_token_value(t, n) >= 0) return SM_TOK_BYTE;
    if (n == 5 && memcmp(t, "<unk>", 5) == 0) return SM_TOK_UNKNOWN;
    /* llama2.c exports BOS/EOS as "\n<s>\n" and "\n</s>\n". */
    if (id <= 2 && n >= 3 && memchr(t, '<', n) && memchr(t, '>', n)) return SM_TOK_CONTROL;
    return SM_TOK_NORMAL;
}

/* Copies src into dst turning U+2581 (E2 96 81) into ' '; returns length. */
static size_t copy_text(char *dst, const char *src, size_t n, int spm_space_mark) {
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (spm_space_mark && i + 2 < n && (unsigned char)src[i] == 0xE2 && (unsigned char)src[i + 1] == 0x96 &&
            (unsigned char)src[i + 2] == 0x81) {
            dst[w++] = ' ';
            i += 2;
        } else {
            dst[w++] = src[i];
        }
    }
    return w;
}

sm_status sm_vocab_build(sm_vocab *v, const sm_vocab_entry *e, int n, int spm_space_mark, sm_error *err) {
    memset(v, 0, sizeof *v);
    v->bos = v->eos = v->unk = -1;
    if (n <= 0 || n > (1 << 24)) return sm_fail(err, SM_ERR_FORMAT, "vocabulary size %d out of range", n);
    uint64_t total = 0;
    for (int i = 0; i < n; i++) total += e[i].len;
    if (total > (1u << 30)) return sm_fail(err, SM_ERR_FORMAT, "vocabulary texts are too large");
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap *= 2;
    v->n = n;
    v->block = sm_alloc((size_t)total * 2 + 1);
    v->text_off = sm_alloc((size_t)n * sizeof(uint32_t));
    v->text_len = sm_alloc((size_t)n * sizeof(uint32_t));
    v->piece_off = sm_alloc((size_t)n * sizeof(uint32_t));
    v->piece_len = sm_alloc((size_t)n * sizeof(uint32_t));
    v->score = sm_alloc((size_t)n * sizeof(float));
    v->type = sm_alloc((size_t)n);
    v->slots = sm_alloc(cap * sizeof(int32_t));
    if (!v->block || !v->text_off || !v->text_len || !v->piece_off || !v->piece_len || !v->score || !v->type ||
        !v->slots) {
        sm_vocab_free(v);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory building the vocabulary");
    }
    v->slot_mask = (uint32_t)(cap - 1);
    for (size_t i = 0; i < cap; i++) v->slots[i] = -1;
    for (int b = 0; b < 256; b++) v->byte_id[b] = -1;
    size_t w = 0;
    for (int i = 0; i < n; i++) {
        v->text_off[i] = (uint32_t)w;
        v->text_len[i] = (uint32_t)copy_text(v->block + w, e[i].text, e[i].len, spm_space_mark);
        w += v->text_len[i];
        v->score[i] = isfinite(e[i].score) ? e[i].score : 0.0f;
        int t = e[i].type;
        if (t == SM_TOK_UNDEFINED || t > SM_TOK_BYTE || t < 0)
            t = infer_type(v->block + v->text_off[i], v->text_len[i], i);
        v->type[i] = (uint8_t)t;
    }
    for (int i = 0; i < n; i++) {
        const char *t = v->block + v->text_off[i];
        uint32_t len = v->text_len[i];
        v->piece_off[i] = (uint32_t)w;
        int bv = byte_token_value(t, len);
        if (v->type[i] == SM_TOK_BYTE && bv >= 0) {
            v->block[w] = (char)bv;
            v->piece_len[i] = 1;
            if (v->byte_id[bv] < 0) v->byte_id[bv] = i;
        } else if (v->type[i] == SM_TOK_CONTROL || v->type[i] == SM_TOK_UNKNOWN) {
            v->piece_len[i] = 0;
        } else {
            memcpy(v->block + w, t, len);
            v->piece_len[i] = len;
        }
        w += v->piece_len[i];
        if (v->piece_len[i] > v->max_piece_len) v->max_piece_len = v->piece_len[i];
        if (v->type[i] == SM_TOK_UNKNOWN && v->unk < 0) v->unk = i;
        /* First token wins on duplicate texts, as in SentencePiece. */
        size_t h = (size_t)hash_bytes(t, len) & v->slot_mask;
        int dup = 0;
        while (v->slots[h] >= 0) {
            int32_t o = v->slots[h];
            if (v->text_len[o] == len && memcmp(v->block + v->text_off[o], t, len) == 0) { dup = 1; break; }
            h = (h + 1) & v->slot_mask;
        }
        if (!dup) v->slots[h] = i;
    }
    v->add_bos = 1;
    v->add_space_prefix = 1;
    return SM_OK;
}

void sm_vocab_free(sm_vocab *v) {
    sm_free(v->block);
    sm_free(v->text_off);
    sm_free(v->text_len);
    sm_free(v->piece_off);
    sm_free(v->piece_len);
    sm_free(v->score);
    sm_free(v->type);
    sm_free(v->slots);
    memset(v, 0, sizeof *v);
}

int32_t sm_vocab_lookup(const sm_vocab *v, const char *text, size_t len) {
    size_t h = (size_t)hash_bytes(text, len) & v->slot_mask;
    while (v->slots[h] >= 0) {
        int32_t id = v->slots[h];
        if (v->text_len[id] == len && memcmp(v->block + v->text_off[id], text, len) == 0) return id;
        h = (h + 1) & v->slot_mask;
    }
    return -1;
}

int sm_vocab_piece(const sm_vocab *v, sm_token id, const char **piece) {
    if (id < 0 || id >= v->n) return -1;
    *piece = v->block + v->piece_off[id];
    return (int)v->piece_len[id];
}

/* Texts may only merge into tokens that stand for plain text. */
static int mergeable(const sm_vocab *v, int32_t id) {
    int t = v->type[id];
    return t == SM_TOK_NORMAL || t == SM_TOK_USER_DEFINED || t == SM_TOK_UNUSED;
}

typedef struct symbol {
    int32_t start, len, prev, next;
} symbol;

typedef struct bigram {
    float score;
    int32_t left, right, len;
} bigram;

/* Max-heap order: higher score first, then the leftmost pair. */
static int bigram_before(const bigram *a, const bigram *b) {
    if (a->score != b->score) return a->score > b->score;
    return a->left < b->left;
}

static void heap_push(bigram *h, size_t *n, bigram b) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bigram_before(&b, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = b;
}

static bigram heap_pop(bigram *h, size_t *n) {
    bigram top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && bigram_before(&h[c + 1], &h[c])) c++;
        if (!bigram_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

typedef struct merge_state {
    const sm_vocab *v;
    const char *s;
    symbol *sym;
    bigram *heap;
    size_t n_heap;
} merge_state;

static void try_bigram(merge_state *m, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    int32_t len = m->sym[l].len + m->sym[r].len;
    int32_t id = sm_vocab_lookup(m->v, m->s + m->sym[l].start, (size_t)len);
    if (id < 0 || !mergeable(m->v, id)) return;
    bigram b = {m->v->score[id], l, r, len};
    heap_push(m->heap, &m->n_heap, b);
}

static int emit(sm_token *out, size_t cap, size_t *n, sm_token t) {
    if (*n < cap) out[*n] = t;
    (*n)++;
    return 1;
}

sm_status sm_vocab_encode(const sm_vocab *v, const char *text, size_t len, int add_bos, sm_token *tokens,
                          size_t capacity, size_t *n_tokens, sm_error *err) {
    *n_tokens = 0;
    if (!text && len) return sm_fail(err, SM_ERR_INVALID_ARG, "text is NULL");
    size_t bad = sm_utf8_validate(text, len);
    if (bad != len) return sm_fail(err, SM_ERR_UTF8, "text is not valid UTF-8 (bad byte at offset %zu)", bad);
    if (len > (1u << 28)) return sm_fail(err, SM_ERR_INVALID_ARG, "text of %zu bytes is too long", len);
    size_t n = 0;
    if (add_bos && v->bos >= 0) emit(tokens, capacity, &n, v->bos);
    if (len == 0) {
        *n_tokens = n;
        return n > capacity ? sm_fail(err, SM_ERR_BUFFER_TOO_SMALL, "token buffer too small") : SM_OK;
    }
    /* The dummy prefix makes the first word look like every other word. */
    size_t slen = len + (v->add_space_prefix ? 1 : 0);
    char *s = sm_alloc(slen);
    symbol *sym = sm_alloc(slen * sizeof *sym);
    bigram *heap = sm_alloc((3 * slen + 1) * sizeof *heap);
    if (!s || !sym || !heap) {
        sm_free(s); sm_free(sym); sm_free(heap);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory tokenizing");
    }
    if (v->add_space_prefix) s[0] = ' ';
    memcpy(s + (slen - len), text, len);

    int32_t n_sym = 0;
    for (size_t i = 0; i < slen;) {
        size_t cl = sm_utf8_seq_len((const unsigned char *)s + i, slen - i);
        if (cl == 0) cl = 1;  /* unreachable after validation; keeps the loop finite */
        sym[n_sym] = (symbol){(int32_t)i, (int32_t)cl, n_sym - 1, n_sym + 1};
        n_sym++;
        i += cl;
    }
    sym[n_sym - 1].next = -1;
    merge_state m = {v, s, sym, heap, 0};
    for (int32_t i = 1; i < n_sym; i++) try_bigram(&m, i - 1, i);
    while (m.n_heap > 0) {
        bigram b = heap_pop(m.heap, &m.n_heap);
        symbol *L = &sym[b.left], *R = &sym[b.right];
        /* A pair whose symbols changed since it was queued is stale. */
        if (L->len == 0 || R->len == 0 || L->len + R->len != b.len || L->next != b.right) continue;
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
    *n_tokens = n;
    if (n > capacity)
        return sm_fail(err, SM_ERR_BUFFER_TOO_SMALL, "text needs %zu tokens, buffer holds %zu", n, capacity);
    return SM_OK;
}

/* vocab.c - see vocab.h. */
#include "vocab.h"
#include "utf8.h"
#include "merge_heap.h"
#include "bpe.h"
#include "unicode.h"
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

/* The bytes a byte-level BPE token text stands for; code points outside
 * GPT-2's mapping are kept as they are. Returns the length (<= n). */
static size_t bpe_text_to_bytes(char *dst, const char *src, size_t n) {
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        size_t k = sm_utf8_seq_len((const unsigned char *)src + i, n - i);
        if (k == 0) { dst[w++] = src[i++]; continue; }
        uint32_t cp;
        sm_utf8_to_cps(src + i, k, &cp);
        int b = sm_bpe_cp_to_byte(cp);
        if (b >= 0) dst[w++] = (char)b;
        else { memcpy(dst + w, src + i, k); w += k; }
        i += k;
    }
    return w;
}

sm_status sm_vocab_build(sm_vocab *v, const sm_vocab_entry *e, int n, int kind, sm_error *err) {
    memset(v, 0, sizeof *v);
    v->kind = kind;
    int spm_space_mark = kind == SM_VOCAB_SPM_MARKED;
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
        if (kind == SM_VOCAB_BPE && v->type[i] != SM_TOK_CONTROL && v->type[i] != SM_TOK_UNKNOWN) {
            /* user-defined tokens are plain text; the rest are byte-mapped */
            if (v->type[i] == SM_TOK_USER_DEFINED) {
                memcpy(v->block + w, t, len);
                v->piece_len[i] = len;
            } else {
                v->piece_len[i] = (uint32_t)bpe_text_to_bytes(v->block + w, t, len);
            }
        } else if (v->type[i] == SM_TOK_BYTE && bv >= 0) {
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
    /* User-defined (added) tokens are matched in the text before the
     * tokenizer runs, longest first. */
    for (int i = 0; i < n; i++) v->n_user += v->type[i] == SM_TOK_USER_DEFINED && v->text_len[i] > 0;
    if (v->n_user) {
        v->user_ids = sm_alloc((size_t)v->n_user * sizeof *v->user_ids);
        if (!v->user_ids) {
            sm_vocab_free(v);
            return sm_fail(err, SM_ERR_NOMEM, "out of memory building the vocabulary");
        }
        int k = 0;
        for (int i = 0; i < n; i++)
            if (v->type[i] == SM_TOK_USER_DEFINED && v->text_len[i] > 0) v->user_ids[k++] = i;
        /* insertion sort by length, descending, stable by id */
        for (int i = 1; i < k; i++) {
            int32_t id = v->user_ids[i];
            int j = i;
            while (j > 0 && v->text_len[v->user_ids[j - 1]] < v->text_len[id]) { v->user_ids[j] = v->user_ids[j - 1]; j--; }
            v->user_ids[j] = id;
        }
    }
    v->add_bos = kind != SM_VOCAB_BPE;
    v->add_space_prefix = kind != SM_VOCAB_BPE;
    return SM_OK;
}

void sm_vocab_free(sm_vocab *v) {
    sm_bpe_free(v->bpe);
    sm_free(v->block);
    sm_free(v->text_off);
    sm_free(v->text_len);
    sm_free(v->piece_off);
    sm_free(v->piece_len);
    sm_free(v->score);
    sm_free(v->type);
    sm_free(v->slots);
    sm_free(v->user_ids);
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

static int emit(sm_token *out, size_t cap, size_t *n, sm_token t) {
    if (*n < cap) out[*n] = t;
    (*n)++;
    return 1;
}

/* SentencePiece encoding of one stretch of raw text. */
static sm_status spm_encode(const sm_vocab *v, const char *text, size_t len, int add_prefix, sm_token *tokens,
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

/* A stretch of the input: raw text (id < 0) or a user-defined token. */
typedef struct fragment {
    size_t start, len;
    int32_t id;
} fragment;

typedef struct fragment_list {
    fragment *f;
    size_t n, cap;
} fragment_list;

static int push_fragment(fragment_list *l, size_t start, size_t len, int32_t id) {
    if (len == 0) return 1;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        fragment *g = sm_alloc(cap * sizeof *g);
        if (!g) return 0;
        if (l->n) memcpy(g, l->f, l->n * sizeof *g);
        sm_free(l->f);
        l->f = g;
        l->cap = cap;
    }
    l->f[l->n++] = (fragment){start, len, id};
    return 1;
}

/* Splits the text on user-defined tokens: each token, longest first, is
 * cut out of every raw fragment wherever it occurs (as llama.cpp does). */
static fragment *partition(const sm_vocab *v, const char *text, size_t len, size_t *n_frag) {
    fragment_list cur = {0};
    if (!push_fragment(&cur, 0, len, -1)) return NULL;
    for (int u = 0; u < v->n_user; u++) {
        int32_t id = v->user_ids[u];
        const char *t = v->block + v->text_off[id];
        size_t tl = v->text_len[id];
        fragment_list next = {0};
        int ok = 1;
        for (size_t i = 0; i < cur.n && ok; i++) {
            fragment f = cur.f[i];
            if (f.id >= 0) { ok = push_fragment(&next, f.start, f.len, f.id); continue; }
            size_t pos = f.start, end = f.start + f.len;
            while (ok) {
                size_t at = pos;
                while (at + tl <= end && memcmp(text + at, t, tl) != 0) at++;
                if (at + tl > end) { ok = push_fragment(&next, pos, end - pos, -1); break; }
                ok = push_fragment(&next, pos, at - pos, -1) && push_fragment(&next, at, tl, id);
                pos = at + tl;
            }
        }
        sm_free(cur.f);
        if (!ok) { sm_free(next.f); return NULL; }
        cur = next;
    }
    *n_frag = cur.n;
    return cur.f;
}

sm_status sm_vocab_encode(const sm_vocab *v, const char *text, size_t len, int add_bos, sm_token *tokens,
                          size_t capacity, size_t *n_tokens, sm_error *err) {
    *n_tokens = 0;
    if (!text && len) return sm_fail(err, SM_ERR_INVALID_ARG, "text is NULL");
    size_t bad = sm_utf8_validate(text, len);
    if (bad != len) return sm_fail(err, SM_ERR_UTF8, "text is not valid UTF-8 (bad byte at offset %zu)", bad);
    if (len > (1u << 28)) return sm_fail(err, SM_ERR_INVALID_ARG, "text of %zu bytes is too long", len);
    if (v->kind == SM_VOCAB_BPE && !v->bpe) return sm_fail(err, SM_ERR_FORMAT, "BPE vocabulary without merges");
    size_t n = 0;
    if (add_bos && v->bos >= 0) emit(tokens, capacity, &n, v->bos);
    size_t n_frag = 0;
    fragment *frag = len ? partition(v, text, len, &n_frag) : NULL;
    if (len && !frag) return sm_fail(err, SM_ERR_NOMEM, "out of memory tokenizing");
    sm_status st = SM_OK;
    int prev_special = 1;  /* SentencePiece adds its space at the start and after a user token */
    for (size_t i = 0; i < n_frag && st == SM_OK; i++) {
        if (frag[i].id >= 0) {
            emit(tokens, capacity, &n, frag[i].id);
            prev_special = 1;
            continue;
        }
        if (v->kind == SM_VOCAB_BPE)
            st = sm_bpe_encode(v, text + frag[i].start, frag[i].len, tokens, capacity, &n, err);
        else
            st = spm_encode(v, text + frag[i].start, frag[i].len, v->add_space_prefix && prev_special, tokens,
                            capacity, &n, err);
        prev_special = 0;
    }
    sm_free(frag);
    *n_tokens = n;
    if (st) return st;
    if (n > capacity)
        return sm_fail(err, SM_ERR_BUFFER_TOO_SMALL, "text needs %zu tokens, buffer holds %zu", n, capacity);
    return SM_OK;
}

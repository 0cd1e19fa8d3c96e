/* vocab.c - see vocab.h. The special-token partition and the strip
 * attributes follow llama.cpp's src/llama-vocab.cpp (tokenizer_st_partition
 * and the per-model token attributes of load). */
#include "vocab.h"
#include "bpe.h"
#include "spm.h"
#include "utf8.h"
#include "core/alloc.h"
#include "core/error.h"

#include <string.h>

void sm_vocab_free(sm_vocab *v) {
    sm_bpe_free(v->bpe);
    v->bpe = NULL;
    sm_vocab_table_free(v);
}

/* White space as C's isspace() in the "C" locale, which llama.cpp uses. */
static int ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static int contains(const char *s, size_t n, const char *sub, int fold_case) {
    size_t k = strlen(sub);
    for (size_t i = 0; s && i + k <= n; i++) {
        size_t j = 0;
        for (; j < k; j++) {
            char c = s[i + j];
            if (fold_case && c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
            if (c != sub[j]) break;
        }
        if (j == k) return 1;
    }
    return 0;
}

static void set_attr(sm_vocab *v, const char *text, int attr, int on) {
    int32_t id = sm_vocab_lookup(v, text, strlen(text));
    if (id < 0) return;
    if (on) v->attr[id] |= (uint8_t)attr;
    else v->attr[id] &= (uint8_t)~attr;
}

void sm_vocab_set_strip_rules(sm_vocab *v, const char *name, size_t name_len, const char *pre, size_t pre_len) {
    if (contains(pre, pre_len, "jina-v2-de", 0) || contains(pre, pre_len, "jina-v2-es", 0) ||
        contains(pre, pre_len, "jina-v2-code", 0)) {
        set_attr(v, "<mask>", SM_TOKEN_LSTRIP, 1);
    } else if (contains(name, name_len, "phi-3", 1) || contains(name, name_len, "phi3", 1)) {
        for (int i = 0; i < v->n_special; i++) v->attr[v->special_ids[i]] |= SM_TOKEN_RSTRIP;
        set_attr(v, "</s>", SM_TOKEN_RSTRIP, 1);
        set_attr(v, "<unk>", SM_TOKEN_RSTRIP, 0);
        set_attr(v, "<s>", SM_TOKEN_RSTRIP, 0);
        set_attr(v, "<|endoftext|>", SM_TOKEN_RSTRIP, 0);
    }
}

/* A stretch of the input: raw text (id < 0) or a special token. */
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

/* Offset of the first occurrence of t (tl > 0 bytes) in s[from, end), or end. */
static size_t find_text(const char *s, size_t from, size_t end, const char *t, size_t tl) {
    while (from + tl <= end) {
        const char *p = memchr(s + from, t[0], end - from - tl + 1);
        if (!p) break;
        size_t at = (size_t)(p - s);
        if (memcmp(p, t, tl) == 0) return at;
        from = at + 1;
    }
    return end;
}

/* Splits the text on special tokens: each token, longest first, is cut out
 * of every raw fragment wherever it occurs, taking the white space next to
 * it along where its attributes say so. */
static int partition(const sm_vocab *v, const char *text, size_t len, int parse_special, fragment_list *out) {
    fragment_list cur = {0};
    if (!push_fragment(&cur, 0, len, -1)) return 0;
    for (int u = 0; u < v->n_special; u++) {
        int32_t id = v->special_ids[u];
        if (!parse_special && v->type[id] != SM_TOK_USER_DEFINED) continue;
        const char *t = v->block + v->text_off[id];
        size_t tl = v->text_len[id];
        int attr = v->attr[id];
        fragment_list next = {0};
        int ok = 1;
        for (size_t i = 0; i < cur.n && ok; i++) {
            fragment f = cur.f[i];
            if (f.id >= 0) { ok = push_fragment(&next, f.start, f.len, f.id); continue; }
            size_t pos = f.start, end = f.start + f.len;
            while (ok) {
                size_t at = find_text(text, pos, end, t, tl);
                if (at == end) { ok = push_fragment(&next, pos, end - pos, -1); break; }
                size_t left_end = at;
                if (attr & SM_TOKEN_LSTRIP)
                    while (left_end > pos && ascii_space(text[left_end - 1])) left_end--;
                ok = push_fragment(&next, pos, left_end - pos, -1) && push_fragment(&next, at, tl, id);
                pos = at + tl;
                if (attr & SM_TOKEN_RSTRIP)
                    while (pos < end && ascii_space(text[pos])) pos++;
            }
        }
        sm_free(cur.f);
        if (!ok) { sm_free(next.f); return 0; }
        cur = next;
    }
    *out = cur;
    return 1;
}

static void emit(sm_token *out, size_t cap, size_t *n, sm_token t) {
    if (*n < cap) out[*n] = t;
    (*n)++;
}

sm_status sm_vocab_encode(const sm_vocab *v, const char *text, size_t len, unsigned flags, sm_token *tokens,
                          size_t capacity, size_t *n_tokens, sm_error *err) {
    *n_tokens = 0;
    if (flags & ~(unsigned)(SM_TOKENIZE_ADD_BOS | SM_TOKENIZE_PARSE_SPECIAL))
        return sm_fail(err, SM_ERR_INVALID_ARG, "unknown tokenize flags 0x%x", flags);
    if (!text && len) return sm_fail(err, SM_ERR_INVALID_ARG, "text is NULL");
    size_t bad = sm_utf8_validate(text, len);
    if (bad != len) return sm_fail(err, SM_ERR_UTF8, "text is not valid UTF-8 (bad byte at offset %zu)", bad);
    if (len > (1u << 28)) return sm_fail(err, SM_ERR_INVALID_ARG, "text of %zu bytes is too long", len);
    if (v->kind == SM_VOCAB_BPE && !v->bpe) return sm_fail(err, SM_ERR_FORMAT, "BPE vocabulary without merges");
    size_t n = 0;
    if ((flags & SM_TOKENIZE_ADD_BOS) && v->bos >= 0) emit(tokens, capacity, &n, v->bos);
    fragment_list frags = {0};
    if (!partition(v, text, len, (flags & SM_TOKENIZE_PARSE_SPECIAL) != 0, &frags))
        return sm_fail(err, SM_ERR_NOMEM, "out of memory tokenizing");
    const fragment *frag = frags.f;
    size_t n_frag = frags.n;
    sm_status st = SM_OK;
    int prev_special = 1;  /* SentencePiece adds its space at the start and after a special token */
    for (size_t i = 0; i < n_frag && st == SM_OK; i++) {
        if (frag[i].id >= 0) {
            emit(tokens, capacity, &n, frag[i].id);
            prev_special = 1;
            continue;
        }
        if (v->kind == SM_VOCAB_BPE)
            st = sm_bpe_encode(v, text + frag[i].start, frag[i].len, tokens, capacity, &n, err);
        else
            st = sm_spm_encode(v, text + frag[i].start, frag[i].len, v->add_space_prefix && prev_special, tokens,
                               capacity, &n, err);
        prev_special = 0;
    }
    sm_free(frags.f);
    *n_tokens = n;
    if (st) return st;
    if (n > capacity)
        return sm_fail(err, SM_ERR_BUFFER_TOO_SMALL, "text needs %zu tokens, buffer holds %zu", n, capacity);
    return SM_OK;
}

/* token_table.c - see token_table.h. */
#include "token_table.h"
#include "byte_map.h"
#include "unicode.h"
#include "utf8.h"
#include "core/alloc.h"
#include "core/error.h"

#include <math.h>
#include <stdlib.h>
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

static int key_order(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The special tokens, longest text first (ties: lower id first), so that a
 * token is never cut out of the middle of a longer one (as llama.cpp does). */
static sm_status list_special(sm_vocab *v, sm_error *err) {
    for (int i = 0; i < v->n; i++) v->n_special += sm_vocab_is_special(v, i) && v->text_len[i] > 0;
    if (!v->n_special) return SM_OK;
    uint64_t *keys = sm_alloc((size_t)v->n_special * sizeof *keys);
    v->special_ids = sm_alloc((size_t)v->n_special * sizeof *v->special_ids);
    if (!keys || !v->special_ids) {
        sm_free(keys);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory building the vocabulary");
    }
    int k = 0;
    for (int i = 0; i < v->n; i++)
        if (sm_vocab_is_special(v, i) && v->text_len[i] > 0)
            keys[k++] = ((uint64_t)(UINT32_MAX - v->text_len[i]) << 32) | (uint32_t)i;
    qsort(keys, (size_t)k, sizeof *keys, key_order);
    for (int i = 0; i < k; i++) v->special_ids[i] = (int32_t)(keys[i] & 0xFFFFFFFFu);
    sm_free(keys);
    return SM_OK;
}

sm_status sm_vocab_build(sm_vocab *v, const sm_vocab_entry *e, int n, int kind, sm_error *err) {
    memset(v, 0, sizeof *v);
    v->kind = kind;
    int spm_space_mark = kind == SM_VOCAB_SPM_MARKED;
    v->bos = v->eos = v->unk = -1;
    for (int k = 0; k < SM_FIM_COUNT; k++) v->fim[k] = -1;   /* none until a loader finds them */
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
    v->attr = sm_calloc((size_t)n, 1);
    v->slots = sm_alloc(cap * sizeof(int32_t));
    if (!v->block || !v->text_off || !v->text_len || !v->piece_off || !v->piece_len || !v->score || !v->type ||
        !v->attr || !v->slots) {
        sm_vocab_table_free(v);
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
    sm_status st = list_special(v, err);
    if (st) {
        sm_vocab_table_free(v);
        return st;
    }
    v->add_bos = kind != SM_VOCAB_BPE;
    v->add_space_prefix = kind != SM_VOCAB_BPE;
    return SM_OK;
}

void sm_vocab_table_free(sm_vocab *v) {
    sm_free(v->block);
    sm_free(v->text_off);
    sm_free(v->text_len);
    sm_free(v->piece_off);
    sm_free(v->piece_len);
    sm_free(v->score);
    sm_free(v->type);
    sm_free(v->attr);
    sm_free(v->slots);
    sm_free(v->special_ids);
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

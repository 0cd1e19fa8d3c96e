/* bpe_train.c - learning a byte-level BPE vocabulary from a corpus (see
 * sm_bpe_learn in bpe.h). Words are the gpt-2 pre-tokenizer's pieces,
 * counted once each; every round counts the adjacent pairs of all distinct
 * words (weighted by their counts) and merges the most frequent one. */
#include "bpe.h"
#include "pretok.h"
#include "regex.h"
#include "unicode.h"
#include "core/alloc.h"
#include "core/error.h"

#include <stdio.h>
#include <string.h>

typedef struct word {
    uint32_t start, len;       /* in the symbol array */
    uint64_t count;
} word;

static uint64_t hash64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

void sm_bpe_strings_free(char **strings, int n) {
    if (!strings) return;
    for (int i = 0; i < n; i++) sm_free(strings[i]);
    sm_free(strings);
}

/* A token's text: its bytes, each as GPT-2's code point, in UTF-8. */
static char *byte_text(const unsigned char *bytes, size_t n) {
    char *s = sm_alloc(n * 2 + 1);
    if (!s) return NULL;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) w += sm_cp_to_utf8(sm_bpe_byte_to_cp(bytes[i]), s + w);
    s[w] = '\0';
    return s;
}

sm_status sm_bpe_learn(const char *text, size_t len, int n_vocab, char ***tokens_out, int *n_tokens,
                       char ***merges_out, int *n_merges_out, sm_error *err) {
    *tokens_out = *merges_out = NULL;
    *n_tokens = *n_merges_out = 0;
    if (n_vocab < 258 || n_vocab > (1 << 20))
        return sm_fail(err, SM_ERR_INVALID_ARG, "bpe:N needs N from 258 to %d", 1 << 20);
    char msg[128];
    sm_regex *re = sm_regex_compile(sm_pretok_gpt2_pattern(), msg, sizeof msg);
    uint32_t *cps = sm_alloc((len + 1) * sizeof *cps), *off = sm_alloc((len + 2) * sizeof *off);
    if (!re || !cps || !off) {
        sm_regex_free(re); sm_free(cps); sm_free(off);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory learning the tokenizer");
    }
    size_t ncp = sm_utf8_to_cps(text, len, cps);
    for (size_t i = 0, b = 0; i < ncp; i++) {
        off[i] = (uint32_t)b;
        unsigned char c = (unsigned char)text[b];
        b += c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    }
    off[ncp] = (uint32_t)len;

    /* distinct words and their counts (open addressing on the bytes) */
    size_t cap = 1 << 16, n_words = 0, n_sym = 0, sym_cap = 1 << 20;
    word *words = NULL;
    int64_t *slots = NULL;
    int32_t *sym = NULL;
    int32_t *left = NULL, *right = NULL;
    uint64_t *pair_key = NULL, *pair_count = NULL;
    sm_status st = SM_OK;
    words = sm_alloc(cap * sizeof *words);
    slots = sm_alloc(cap * 2 * sizeof *slots);
    sym = sm_alloc(sym_cap * sizeof *sym);
    if (!words || !slots || !sym) { st = sm_fail(err, SM_ERR_NOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < cap * 2; i++) slots[i] = -1;
    size_t pos = 0, ms, me;
    while (pos < ncp) {
        size_t a = pos, b;
        if (sm_regex_search(re, cps, ncp, pos, &ms, &me)) b = ms > pos ? ms : me;
        else b = ncp;
        pos = b;
        const char *w = text + off[a];
        size_t wl = off[b] - off[a];
        uint64_t h = hash_bytes(w, wl);
        size_t sl = (size_t)h & (cap * 2 - 1);
        while (slots[sl] >= 0) {
            word *x = &words[slots[sl]];
            if (x->len == wl && memcmp(text + x->start, w, wl) == 0) break;  /* start holds the text offset for now */
            sl = (sl + 1) & (cap * 2 - 1);
        }
        if (slots[sl] >= 0) { words[slots[sl]].count++; continue; }
        if (n_words == cap) {
            /* grow and rehash */
            size_t ncap = cap * 2;
            word *nw = sm_alloc(ncap * sizeof *nw);
            int64_t *ns = sm_alloc(ncap * 2 * sizeof *ns);
            if (!nw || !ns) { sm_free(nw); sm_free(ns); st = sm_fail(err, SM_ERR_NOMEM, "out of memory"); goto done; }
            memcpy(nw, words, n_words * sizeof *nw);
            for (size_t i = 0; i < ncap * 2; i++) ns[i] = -1;
            for (size_t i = 0; i < n_words; i++) {
                size_t s2 = (size_t)hash_bytes(text + nw[i].start, nw[i].len) & (ncap * 2 - 1);
                while (ns[s2] >= 0) s2 = (s2 + 1) & (ncap * 2 - 1);
                ns[s2] = (int64_t)i;
            }
            sm_free(words);
            sm_free(slots);
            words = nw;
            slots = ns;
            cap = ncap;
            sl = (size_t)h & (cap * 2 - 1);
            while (slots[sl] >= 0) sl = (sl + 1) & (cap * 2 - 1);
        }
        words[n_words] = (word){off[a], (uint32_t)wl, 1};
        slots[sl] = (int64_t)n_words++;
    }
    /* each word's bytes become its first symbols */
    for (size_t i = 0; i < n_words; i++) {
        if (n_sym + words[i].len > sym_cap) {
            while (n_sym + words[i].len > sym_cap) sym_cap *= 2;
            int32_t *ns = sm_alloc(sym_cap * sizeof *ns);
            if (!ns) { st = sm_fail(err, SM_ERR_NOMEM, "out of memory"); goto done; }
            memcpy(ns, sym, n_sym * sizeof *ns);
            sm_free(sym);
            sym = ns;
        }
        const unsigned char *wb = (const unsigned char *)text + words[i].start;
        for (uint32_t k = 0; k < words[i].len; k++) sym[n_sym + k] = wb[k];
        words[i].start = (uint32_t)n_sym;
        n_sym += words[i].len;
    }

    int max_merges = n_vocab - 257;
    left = sm_alloc((size_t)max_merges * sizeof *left);
    right = sm_alloc((size_t)max_merges * sizeof *right);
    size_t pcap = 1 << 18;
    pair_key = sm_alloc(pcap * sizeof *pair_key);
    pair_count = sm_alloc(pcap * sizeof *pair_count);
    if (!left || !right || !pair_key || !pair_count) { st = sm_fail(err, SM_ERR_NOMEM, "out of memory"); goto done; }
    int n_merges = 0;
    for (; n_merges < max_merges; n_merges++) {
        size_t used = 0;
        for (size_t i = 0; i < pcap; i++) pair_count[i] = 0;
        uint64_t best_key = 0, best_count = 0;
        for (size_t i = 0; i < n_words; i++) {
            const int32_t *s = sym + words[i].start;
            for (uint32_t k = 0; k + 1 < words[i].len; k++) {
                uint64_t key = ((uint64_t)(uint32_t)s[k] << 32) | (uint32_t)s[k + 1];
                size_t sl = (size_t)hash64(key) & (pcap - 1);
                while (pair_count[sl] && pair_key[sl] != key) sl = (sl + 1) & (pcap - 1);
                if (!pair_count[sl]) { pair_key[sl] = key; used++; }
                pair_count[sl] += words[i].count;
                uint64_t c = pair_count[sl];
                if (c > best_count || (c == best_count && key < best_key)) { best_count = c; best_key = key; }
                if (used * 2 > pcap) break;  /* the table is sized for a vocabulary's pairs; see below */
            }
            if (used * 2 > pcap) break;
        }
        if (used * 2 > pcap) {
            /* more distinct pairs than the table holds: grow it and count again */
            sm_free(pair_key);
            sm_free(pair_count);
            pcap *= 2;
            pair_key = sm_alloc(pcap * sizeof *pair_key);
            pair_count = sm_alloc(pcap * sizeof *pair_count);
            if (!pair_key || !pair_count) { st = sm_fail(err, SM_ERR_NOMEM, "out of memory"); goto done; }
            n_merges--;
            continue;
        }
        if (best_count < 2) break;  /* nothing repeats any more */
        int32_t a = (int32_t)(best_key >> 32), b = (int32_t)(best_key & 0xFFFFFFFFu), id = 256 + n_merges;
        left[n_merges] = a;
        right[n_merges] = b;
        for (size_t i = 0; i < n_words; i++) {
            int32_t *s = sym + words[i].start;
            uint32_t w = 0;
            for (uint32_t k = 0; k < words[i].len; k++) {
                if (k + 1 < words[i].len && s[k] == a && s[k + 1] == b) { s[w++] = id; k++; }
                else s[w++] = s[k];
            }
            words[i].len = w;
        }
    }
    /* tokens: bytes, merged tokens, end of text; merges as "left right" */
    int nt = 256 + n_merges + 1;
    char **tokens = sm_calloc((size_t)nt, sizeof *tokens), **merges = sm_calloc((size_t)(n_merges ? n_merges : 1), sizeof *merges);
    /* each token's bytes, built up from its two parts */
    unsigned char **bytes = sm_calloc((size_t)nt, sizeof *bytes);
    size_t *blen = sm_calloc((size_t)nt, sizeof *blen);
    if (!tokens || !merges || !bytes || !blen) {
        sm_free(tokens); sm_free(merges); sm_free(bytes); sm_free(blen);
        st = sm_fail(err, SM_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < 256; i++) {
        bytes[i] = sm_alloc(1);
        if (bytes[i]) bytes[i][0] = (unsigned char)i;
        blen[i] = 1;
    }
    for (int m = 0; m < n_merges; m++) {
        int id = 256 + m;
        blen[id] = blen[left[m]] + blen[right[m]];
        bytes[id] = sm_alloc(blen[id]);
        if (bytes[id]) {
            memcpy(bytes[id], bytes[left[m]], blen[left[m]]);
            memcpy(bytes[id] + blen[left[m]], bytes[right[m]], blen[right[m]]);
        }
    }
    int ok = 1;
    for (int i = 0; i < nt - 1 && ok; i++) ok = bytes[i] && (tokens[i] = byte_text(bytes[i], blen[i])) != NULL;
    if (ok) {
        tokens[nt - 1] = sm_alloc(14);
        ok = tokens[nt - 1] != NULL;
        if (ok) strcpy(tokens[nt - 1], "<|endoftext|>");
    }
    for (int m = 0; m < n_merges && ok; m++) {
        size_t la = strlen(tokens[left[m]]), lb = strlen(tokens[right[m]]);
        merges[m] = sm_alloc(la + lb + 2);
        ok = merges[m] != NULL;
        if (ok) snprintf(merges[m], la + lb + 2, "%s %s", tokens[left[m]], tokens[right[m]]);
    }
    for (int i = 0; i < nt; i++) sm_free(bytes[i]);
    sm_free(bytes);
    sm_free(blen);
    if (!ok) {
        sm_bpe_strings_free(tokens, nt);
        sm_bpe_strings_free(merges, n_merges);
        st = sm_fail(err, SM_ERR_NOMEM, "out of memory");
        goto done;
    }
    *tokens_out = tokens;
    *n_tokens = nt;
    *merges_out = merges;
    *n_merges_out = n_merges;
done:
    sm_regex_free(re);
    sm_free(cps);
    sm_free(off);
    sm_free(words);
    sm_free(slots);
    sm_free(sym);
    sm_free(left);
    sm_free(right);
    sm_free(pair_key);
    sm_free(pair_count);
    return st;
}

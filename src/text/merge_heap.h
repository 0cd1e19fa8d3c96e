/* merge_heap.h - the priority queue both tokenizers merge with: best
 * score first, then the leftmost pair. */
#ifndef SM_TEXT_MERGE_HEAP_H
#define SM_TEXT_MERGE_HEAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct sm_bigram {
    float score;          /* higher merges first */
    int32_t left, right;  /* symbol indices */
    int32_t aux;          /* merged length (SPM) or merged token id (BPE) */
} sm_bigram;

static inline int sm_bigram_before(const sm_bigram *a, const sm_bigram *b) {
    if (a->score != b->score) return a->score > b->score;
    return a->left < b->left;
}

static inline void sm_heap_push(sm_bigram *h, size_t *n, sm_bigram b) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!sm_bigram_before(&b, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = b;
}

static inline sm_bigram sm_heap_pop(sm_bigram *h, size_t *n) {
    sm_bigram top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && sm_bigram_before(&h[c + 1], &h[c])) c++;
        if (!sm_bigram_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

/* A symbol of a word being merged: a span of the text, linked to its
 * neighbours; len 0 once merged into its left neighbour. */
typedef struct sm_symbol {
    int32_t start, len, prev, next;
    int32_t id;           /* BPE: the symbol's token id */
} sm_symbol;

#endif

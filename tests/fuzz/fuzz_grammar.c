/* fuzz_grammar.c - libFuzzer target: the GBNF parser on arbitrary text and,
 * when it parses, the matcher on more fuzz bytes: fed in pieces of fuzzed
 * sizes (so UTF-8 characters split), each tried before it is accepted
 * (the two must agree), a clone kept in step, and the vocabulary mask over
 * tokens cut from the same bytes checked against trying each token.
 * Input: u16 grammar length, the grammar, then the bytes to match. */
#include "smallmind.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t glen = (size_t)data[0] | (size_t)data[1] << 8;
    data += 2;
    size -= 2;
    if (glen > size) glen = size;
    sm_grammar *g = NULL;
    if (sm_grammar_parse((const char *)data, glen, NULL, &g, NULL) != SM_OK) return 0;
    const uint8_t *in = data + glen;
    size_t n = size - glen;
    sm_grammar_matcher *m = NULL, *c = NULL;
    if (sm_grammar_matcher_new(g, &m, NULL) != SM_OK) {
        sm_grammar_free(g);
        return 0;
    }
    /* Tokens: the input cut into pieces of 1..8 bytes (sizes from the bytes themselves). */
    enum { MAX_TOK = 32 };
    const char *pieces[MAX_TOK];
    size_t lens[MAX_TOK], nt = 0;
    for (size_t i = 0; i < n && nt < MAX_TOK;) {
        size_t k = 1 + in[i] % 8;
        if (k > n - i) k = n - i;
        pieces[nt] = (const char *)in + i;
        lens[nt++] = k;
        i += k;
    }
    sm_grammar_vocab *v = NULL;
    sm_grammar_vocab_new(pieces, lens, nt, &v, NULL);
    sm_grammar_matcher_clone(m, &c, NULL);
    uint8_t allowed[MAX_TOK];
    for (size_t t = 0; t < nt; t++) {
        if (v && t % 8 == 0 && sm_grammar_matcher_mask(m, v, allowed, NULL, NULL) == SM_OK)
            for (size_t u = 0; u < nt; u++)
                if (allowed[u] != sm_grammar_matcher_try_token(m, v, (int32_t)u)) __builtin_trap();
        int tried = sm_grammar_matcher_try(m, pieces[t], lens[t]);
        sm_status st = sm_grammar_matcher_accept(m, pieces[t], lens[t], NULL);
        if (st == SM_ERR_NOMEM) break;   /* a limit: the matcher says so and stops */
        if (tried != (st == SM_OK)) __builtin_trap();
        if (c && (sm_grammar_matcher_accept(c, pieces[t], lens[t], NULL) == SM_OK) != (st == SM_OK)) __builtin_trap();
        if (st != SM_OK) break;
    }
    sm_grammar_matcher_is_complete(m);
    sm_grammar_matcher_can_continue(m);
    sm_grammar_matcher_free(c);
    sm_grammar_matcher_free(m);
    sm_grammar_vocab_free(v);
    sm_grammar_free(g);
    return 0;
}

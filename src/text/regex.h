/* regex.h - a small backtracking regular-expression engine over Unicode
 * code points, with Perl/ECMAScript leftmost-first semantics. It supports
 * what the BPE pre-tokenizers' published patterns use: literals, classes
 * with ranges and negation, \s \S \d \D \p{X} \P{X} (general categories,
 * one or two letters), code points \x{H...} \xHH \uHHHH, . ^ $, groups
 * (...) (?:...), lookahead (?=...) (?!...), alternation, and greedy
 * ? * + {m} {m,} {m,n}. */
#ifndef SM_TEXT_REGEX_H
#define SM_TEXT_REGEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct sm_regex sm_regex;

/* NULL on a syntax error or out of memory, with a message in err. */
sm_regex *sm_regex_compile(const char *pattern, char *err, size_t err_cap);
void sm_regex_free(sm_regex *re);

/* Finds the leftmost non-empty match in subject[from..n). Returns 1 and
 * the match bounds, or 0. */
int sm_regex_search(const sm_regex *re, const uint32_t *subject, size_t n, size_t from, size_t *match_start,
                    size_t *match_end);

#endif

/* schema_conv.h - pieces shared by the JSON Schema converter's files: a
 * growable string, GBNF quoting, and the number and pattern translators
 * (schema_numbers.c, schema_pattern.c), which need no Jansson. The server's
 * tool formats (src/server/tools.c) write their grammars and read replies
 * with the string and the quoting too. */
#ifndef SM_JSON_SCHEMA_CONV_H
#define SM_JSON_SCHEMA_CONV_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sm_sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sm_sbuf;

void sm_sb_addn(sm_sbuf *b, const char *s, size_t n);
void sm_sb_add(sm_sbuf *b, const char *s);
void sm_sb_printf(sm_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sm_sb_vprintf(sm_sbuf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void sm_sb_free(sm_sbuf *b);
/* Takes the string (NUL-terminated; "" when empty), leaving b empty. */
char *sm_sb_take(sm_sbuf *b);

/* A GBNF string literal for the UTF-8 bytes s[0..n): "..." with escapes. */
void sm_gbnf_literal(sm_sbuf *b, const char *s, size_t n);
/* One code point as it may stand inside a GBNF character class. */
void sm_gbnf_class_char(sm_sbuf *b, uint32_t c);
/* Decodes the UTF-8 character at s (n bytes left, n > 0; the text is known
 * to be valid); returns its length. */
size_t sm_utf8_next(const char *s, size_t n, uint32_t *cp);

/* The largest magnitude an unbounded integer or number may reach: 16
 * digits, as llama.cpp's grammars allow. */
#define SM_SCHEMA_INT_LIMIT 9999999999999999LL

/* GBNF (an expression, without the trailing space) for the decimal
 * integers in [lo, hi], no leading zeros, no "-0"; |lo|, |hi| within the
 * limit and lo <= hi. */
void sm_schema_int_range(sm_sbuf *out, int64_t lo, int64_t hi);

/* GBNF for JSON numbers (no exponent) x with lo <(=) x <(=) hi; has_lo /
 * has_hi say whether each bound exists, lo_excl / hi_excl whether it is
 * exclusive. Bounds are integers within the limit. Returns 0 when no number
 * satisfies them. */
int sm_schema_number_range(sm_sbuf *out, int has_lo, int64_t lo, int lo_excl, int has_hi, int64_t hi, int hi_excl);

/* Translates a JSON Schema pattern (ECMA-262 regular expression subset)
 * to a GBNF expression matching the JSON string contents (between the
 * quotes, escaped as JSON needs) whose value the pattern matches; char_rule
 * is the name of a rule matching any one JSON string character. Returns 0
 * with a message in err (err_cap bytes) when the pattern uses something
 * unsupported or is malformed. */
int sm_schema_pattern(sm_sbuf *out, const char *pattern, size_t len, const char *char_rule, char *err,
                      size_t err_cap);

#endif

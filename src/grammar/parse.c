/* parse.c - GBNF text to a compiled sm_grammar.
 *
 * The syntax is llama.cpp's (its grammars/README.md and the parser in
 * src/llama-grammar.cpp at c392e509, read for the rules, not copied):
 *   rule      ::= name ws "::=" ws alternates (newline | end)
 *   alternates::= sequence ("|" ws sequence)*       newline allowed after "|"
 *   sequence  ::= (symbol repetition*)*
 *   symbol    ::= "literal" | [class] | [^class] | name | "(" alternates ")" | "."
 *   repetition::= "*" | "+" | "?" | "{" m "}" | "{" m "," "}" | "{" m "," n "}"
 * Names are [a-zA-Z0-9-]+. Comments run from "#" to the end of the line.
 * Newlines end a rule except inside parentheses or after "|". Escapes:
 * \xHH \uHHHH \UHHHHHHHH \t \n \r \\ \" \[ \]. A repetition applies to the
 * symbol before it (a whole literal string, a class, a reference or a group).
 *
 * Repetitions are rewritten as llama.cpp does, into copies and helper rules:
 *   S{m,n} -> S..S (m times) R(n-m),  R(k) ::= S R(k-1) | <empty>,  R(1) ::= S | <empty>
 *   S{m,}  -> S..S (m times) R,        R    ::= S R | <empty>
 *
 * Where we are stricter than llama.cpp, with a message instead of a
 * surprising grammar: a rule defined twice, an empty class "[]", a reversed
 * range "[z-a]", {m,n} with n < m, invalid UTF-8 or NUL in the text, code
 * points above U+10FFFF. Sizes are bounded (grammar.h). */
#include "grammar.h"
#include "core/alloc.h"
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct sym {
    uint32_t name_off, name_len;  /* in the text; name_len 0: a generated rule */
    uint32_t parent;              /* generated: the named rule it was made for */
    uint32_t def_pos, use_pos;    /* text offsets of the definition and first use */
    uint32_t body_off, body_len;  /* in builder.body */
    uint8_t defined;
} sym;

typedef struct builder {
    const char *src;
    size_t len, pos;
    sm_error *err;
    sm_status status;             /* the first failure */
    int failed, depth;
    sym *syms;
    uint32_t n_syms, cap_syms;
    uint32_t *sym_table;          /* named symbols: id + 1 */
    uint32_t sym_table_cap;
    uint32_t *body;               /* finished rule bodies (items, GI_ALT between alternatives) */
    uint32_t n_body, cap_body;
    uint32_t *tmp;                /* sequences being parsed (nested groups stack up) */
    uint32_t n_tmp, cap_tmp;
    uint32_t *rep;                /* a copy of the symbol being repeated */
    uint32_t cap_rep;
    uint32_t *sranges;            /* every set's ranges, lo/hi pairs */
    uint32_t n_sranges, cap_sranges;
    uint32_t *set_first;          /* n_sets + 1 entries */
    uint32_t n_sets, cap_sets;
    uint32_t *set_table;          /* id + 1, for sharing equal sets */
    uint32_t set_table_cap;
    uint32_t *cls;                /* the class being parsed */
    uint32_t n_cls, cap_cls;
    uint32_t cur_rule;            /* the named rule being parsed */
} builder;

/* ------------------------------------------------------------ helpers */

static void nomem(builder *b) {
    if (b->failed) return;
    b->failed = 1;
    b->status = sm_fail(b->err, SM_ERR_NOMEM, "out of memory while parsing the grammar");
}

static int grow(builder *b, uint32_t **buf, uint32_t *cap, size_t need) {
    if (b->failed) return 0;
    if (!sm_gm_grow(buf, cap, need)) {
        nomem(b);
        return 0;
    }
    return 1;
}

int sm_gm_grow(uint32_t **buf, uint32_t *cap, size_t need) {
    if (need <= *cap) return 1;
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    if (n > 0xFFFFFFFFu) return 0;
    uint32_t *p = sm_alloc(n * sizeof *p);
    if (!p) return 0;
    if (*buf) memcpy(p, *buf, (size_t)*cap * sizeof *p);
    sm_free(*buf);
    *buf = p;
    *cap = (uint32_t)n;
    return 1;
}

/* Line and column (in characters, both from 1) of a text offset. */
static void line_col(const builder *b, size_t at, unsigned *line, unsigned *col) {
    unsigned l = 1, c = 1;
    for (size_t i = 0; i < at && i < b->len; i++) {
        unsigned char ch = (unsigned char)b->src[i];
        if (ch == '\n') {
            l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static int perr(builder *b, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(builder *b, size_t at, const char *fmt, ...) {
    if (b->failed) return 0;
    b->failed = 1;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    unsigned line, col;
    line_col(b, at, &line, &col);
    b->status = sm_fail(b->err, SM_ERR_FORMAT, "grammar line %u, column %u: %s", line, col, msg);
    return 0;
}

/* What stands at pos, for messages: 'x', end of line, ... */
static const char *describe(const builder *b, size_t pos, char *buf, size_t cap) {
    if (pos >= b->len) return "the end of the grammar";
    unsigned char c = (unsigned char)b->src[pos];
    if (c == '\n' || c == '\r') return "the end of the line";
    if (c >= 0x20 && c < 0x7F) snprintf(buf, cap, "'%c'", c);
    else snprintf(buf, cap, "byte 0x%02X", c);
    return buf;
}

static int at_end(const builder *b) { return b->pos >= b->len; }
static int cur(const builder *b) { return b->pos < b->len ? (unsigned char)b->src[b->pos] : -1; }
static int peek(const builder *b, size_t k) {
    return b->pos + k < b->len ? (unsigned char)b->src[b->pos + k] : -1;
}
static int is_word(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}
static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* Spaces, tabs and comments; newlines too when newline_ok. */
static void skip_space(builder *b, int newline_ok) {
    while (!at_end(b)) {
        int c = cur(b);
        if (c == ' ' || c == '\t') {
            b->pos++;
        } else if (c == '#') {
            while (!at_end(b) && cur(b) != '\n' && cur(b) != '\r') b->pos++;
        } else if (newline_ok && (c == '\n' || c == '\r')) {
            b->pos++;
        } else {
            break;
        }
    }
}

/* --------------------------------------------------------------- symbols */

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int sym_table_insert(builder *b, uint32_t id) {
    const sym *s = &b->syms[id];
    uint32_t mask = b->sym_table_cap - 1, h = hash_bytes(b->src + s->name_off, s->name_len) & mask;
    while (b->sym_table[h]) h = (h + 1) & mask;
    b->sym_table[h] = id + 1;
    return 1;
}

static uint32_t new_sym(builder *b) {
    if (b->n_syms >= SM_GRAMMAR_MAX_RULES) {
        perr(b, b->pos, "the grammar has more than %u rules (counting those made for groups and repetitions)",
             SM_GRAMMAR_MAX_RULES);
        return UINT32_MAX;
    }
    if (b->n_syms == b->cap_syms) {
        uint32_t n = b->cap_syms ? 2 * b->cap_syms : 64;
        sym *p = sm_alloc((size_t)n * sizeof *p);
        if (!p) {
            nomem(b);
            return UINT32_MAX;
        }
        if (b->syms) memcpy(p, b->syms, (size_t)b->n_syms * sizeof *p);
        sm_free(b->syms);
        b->syms = p;
        b->cap_syms = n;
    }
    uint32_t id = b->n_syms++;
    memset(&b->syms[id], 0, sizeof b->syms[id]);
    b->syms[id].use_pos = UINT32_MAX;
    b->syms[id].parent = id;
    return id;
}

static uint32_t find_named(const builder *b, const char *name, size_t n) {
    if (!b->sym_table_cap) return UINT32_MAX;
    uint32_t mask = b->sym_table_cap - 1, h = hash_bytes(name, n) & mask;
    while (b->sym_table[h]) {
        const sym *s = &b->syms[b->sym_table[h] - 1];
        if (s->name_len == n && memcmp(b->src + s->name_off, name, n) == 0) return b->sym_table[h] - 1;
        h = (h + 1) & mask;
    }
    return UINT32_MAX;
}

/* The id of the named rule at text[off, off+n), made on first sight. */
static uint32_t named_sym(builder *b, size_t off, size_t n) {
    uint32_t id = find_named(b, b->src + off, n);
    if (id != UINT32_MAX) return id;
    /* Keep the table at most half full. */
    if ((b->n_syms + 1) * 2 > b->sym_table_cap) {
        uint32_t ncap = b->sym_table_cap ? 2 * b->sym_table_cap : 256;
        while ((b->n_syms + 1) * 2 > ncap) ncap *= 2;
        uint32_t *t = sm_calloc(ncap, sizeof *t);
        if (!t) {
            nomem(b);
            return UINT32_MAX;
        }
        sm_free(b->sym_table);
        b->sym_table = t;
        b->sym_table_cap = ncap;
        for (uint32_t i = 0; i < b->n_syms; i++)
            if (b->syms[i].name_len) sym_table_insert(b, i);
    }
    id = new_sym(b);
    if (id == UINT32_MAX) return id;
    b->syms[id].name_off = (uint32_t)off;
    b->syms[id].name_len = (uint32_t)n;
    sym_table_insert(b, id);
    return id;
}

static uint32_t generated_sym(builder *b) {
    uint32_t id = new_sym(b);
    if (id == UINT32_MAX) return id;
    b->syms[id].parent = b->cur_rule;
    b->syms[id].def_pos = b->syms[b->cur_rule].def_pos;
    b->syms[id].defined = 1;
    return id;
}

/* Stores items as the body of rule id. */
static int set_body(builder *b, uint32_t id, const uint32_t *items, uint32_t n) {
    if ((size_t)b->n_body + b->n_tmp + n + 1 > SM_GRAMMAR_MAX_ITEMS)
        return perr(b, b->pos, "the grammar expands to more than %u elements (repetitions count each copy)",
                    SM_GRAMMAR_MAX_ITEMS);
    if (n) {
        if (!grow(b, &b->body, &b->cap_body, (size_t)b->n_body + n)) return 0;
        memcpy(b->body + b->n_body, items, (size_t)n * sizeof *items);
    }
    b->syms[id].body_off = b->n_body;
    b->syms[id].body_len = n;
    b->n_body += n;
    return 1;
}

static int push_tmp(builder *b, uint32_t item) {
    if ((size_t)b->n_body + b->n_tmp + 1 > SM_GRAMMAR_MAX_ITEMS)
        return perr(b, b->pos, "the grammar expands to more than %u elements (repetitions count each copy)",
                    SM_GRAMMAR_MAX_ITEMS);
    if (!grow(b, &b->tmp, &b->cap_tmp, (size_t)b->n_tmp + 1)) return 0;
    b->tmp[b->n_tmp++] = item;
    return 1;
}

/* ------------------------------------------------------------------ sets */

static uint32_t hash_ranges(const uint32_t *r, uint32_t n_pairs) {
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < 2 * n_pairs; i++) h = (h ^ r[i]) * 16777619u;
    return h;
}

/* Adds the n normalized ranges r[0 .. 2n) as a set (sharing an equal one)
 * and returns its id. */
static uint32_t add_set(builder *b, const uint32_t *r, uint32_t n) {
    if ((b->n_sets + 1) * 2 > b->set_table_cap) {
        uint32_t ncap = b->set_table_cap ? 2 * b->set_table_cap : 256;
        uint32_t *t = sm_calloc(ncap, sizeof *t);
        if (!t) {
            nomem(b);
            return UINT32_MAX;
        }
        for (uint32_t s = 0; s < b->n_sets; s++) {
            uint32_t f = b->set_first[s], h = hash_ranges(b->sranges + 2 * f, b->set_first[s + 1] - f) & (ncap - 1);
            while (t[h]) h = (h + 1) & (ncap - 1);
            t[h] = s + 1;
        }
        sm_free(b->set_table);
        b->set_table = t;
        b->set_table_cap = ncap;
    }
    uint32_t mask = b->set_table_cap - 1, h = hash_ranges(r, n) & mask;
    while (b->set_table[h]) {
        uint32_t s = b->set_table[h] - 1, f = b->set_first[s];
        if (b->set_first[s + 1] - f == n && memcmp(b->sranges + 2 * f, r, (size_t)n * 2 * sizeof *r) == 0) return s;
        h = (h + 1) & mask;
    }
    if (!grow(b, &b->sranges, &b->cap_sranges, (size_t)b->n_sranges + 2 * n)) return UINT32_MAX;
    if (!grow(b, &b->set_first, &b->cap_sets, (size_t)b->n_sets + 2)) return UINT32_MAX;
    memcpy(b->sranges + b->n_sranges, r, (size_t)n * 2 * sizeof *r);
    uint32_t s = b->n_sets++;
    b->set_first[s] = b->n_sranges / 2;
    b->n_sranges += 2 * n;
    b->set_first[s + 1] = b->n_sranges / 2;
    b->set_table[h] = s + 1;
    return s;
}

/* Sorts the n lo/hi pairs of r by lo (a Shell sort: no allocation, and
 * generated classes can be long) and merges overlapping or adjacent ranges
 * in place; returns the number of pairs left. */
static uint32_t normalize(uint32_t *r, uint32_t n) {
    static const uint32_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
    for (size_t gi = 0; gi < sizeof gaps / sizeof gaps[0]; gi++) {
        uint32_t gap = gaps[gi];
        for (uint32_t i = gap; i < n; i++) {
            uint32_t lo = r[2 * i], hi = r[2 * i + 1], j = i;
            while (j >= gap && r[2 * (j - gap)] > lo) {
                r[2 * j] = r[2 * (j - gap)];
                r[2 * j + 1] = r[2 * (j - gap) + 1];
                j -= gap;
            }
            r[2 * j] = lo;
            r[2 * j + 1] = hi;
        }
    }
    uint32_t w = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (w > 0 && r[2 * i] <= r[2 * (w - 1) + 1] + 1) {
            if (r[2 * i + 1] > r[2 * (w - 1) + 1]) r[2 * (w - 1) + 1] = r[2 * i + 1];
        } else {
            r[2 * w] = r[2 * i];
            r[2 * w + 1] = r[2 * i + 1];
            w++;
        }
    }
    return w;
}

static uint32_t single_set(builder *b, uint32_t cp) {
    uint32_t r[2] = {cp, cp};
    return add_set(b, r, 1);
}

/* ------------------------------------------------------------ characters */

/* Decodes one UTF-8 character of the text (strictly). */
static int decode_char(builder *b, uint32_t *out) {
    size_t p = b->pos;
    unsigned char c = (unsigned char)b->src[p];
    if (c == 0) return perr(b, p, "NUL character in the grammar");
    if (c < 0x80) {
        *out = c;
        b->pos++;
        return 1;
    }
    uint32_t n, v, min;
    if (c >= 0xC2 && c <= 0xDF) { n = 1; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 2; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 3; v = c & 0x07; min = 0x10000; }
    else return perr(b, p, "invalid UTF-8 (byte 0x%02X)", c);
    for (uint32_t i = 1; i <= n; i++) {
        if (p + i >= b->len || ((unsigned char)b->src[p + i] & 0xC0) != 0x80)
            return perr(b, p, "invalid UTF-8 (truncated character)");
        v = (v << 6) | ((unsigned char)b->src[p + i] & 0x3F);
    }
    if (v < min || v > SM_CP_MAX || (v >= 0xD800 && v <= 0xDFFF))
        return perr(b, p, "invalid UTF-8 (overlong, surrogate or beyond U+10FFFF)");
    *out = v;
    b->pos = p + n + 1;
    return 1;
}

static int parse_hex(builder *b, int digits, uint32_t *out) {
    size_t start = b->pos - 2;
    uint32_t v = 0;
    for (int i = 0; i < digits; i++) {
        int c = cur(b);
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return perr(b, start, "escape \\%c needs %d hex digits", b->src[start + 1], digits);
        v = v * 16 + (uint32_t)d;
        b->pos++;
    }
    if (v > SM_CP_MAX) return perr(b, start, "code point U+%X is beyond U+10FFFF", v);
    *out = v;
    return 1;
}

/* One character of a literal or class: an escape or a UTF-8 character. */
static int parse_char(builder *b, uint32_t *out) {
    if (cur(b) != '\\') return decode_char(b, out);
    size_t start = b->pos;
    int e = peek(b, 1);
    b->pos += 2;
    switch (e) {
    case 'x': return parse_hex(b, 2, out);
    case 'u': return parse_hex(b, 4, out);
    case 'U': return parse_hex(b, 8, out);
    case 't': *out = '\t'; return 1;
    case 'n': *out = '\n'; return 1;
    case 'r': *out = '\r'; return 1;
    case '\\': case '"': case '[': case ']': *out = (uint32_t)e; return 1;
    case -1: return perr(b, start, "unfinished escape at the end of the grammar");
    default:
        if (e >= 0x20 && e < 0x7F) return perr(b, start, "unknown escape '\\%c'", e);
        return perr(b, start, "unknown escape (backslash before byte 0x%02X)", e);
    }
}

/* [...] or [^...]: returns the set id. */
static uint32_t parse_class(builder *b) {
    size_t open = b->pos;
    b->pos++;
    int negate = 0;
    if (cur(b) == '^') {
        negate = 1;
        b->pos++;
    }
    b->n_cls = 0;
    while (cur(b) != ']') {
        if (at_end(b)) {
            perr(b, open, "character class not closed with ']'");
            return UINT32_MAX;
        }
        size_t at = b->pos;
        uint32_t lo, hi;
        if (!parse_char(b, &lo)) return UINT32_MAX;
        hi = lo;
        if (cur(b) == '-' && peek(b, 1) != ']' && peek(b, 1) != -1) {
            b->pos++;
            if (!parse_char(b, &hi)) return UINT32_MAX;
            if (hi < lo) {
                perr(b, at, "range U+%04X-U+%04X in a character class is reversed", lo, hi);
                return UINT32_MAX;
            }
        }
        if (!grow(b, &b->cls, &b->cap_cls, (size_t)b->n_cls + 4)) return UINT32_MAX;
        b->cls[b->n_cls++] = lo;
        b->cls[b->n_cls++] = hi;
    }
    b->pos++;
    if (b->n_cls == 0) {
        perr(b, open, "empty character class");
        return UINT32_MAX;
    }
    uint32_t n = normalize(b->cls, b->n_cls / 2);
    if (negate) {
        /* Complement over [0, U+10FFFF]: at most n + 1 ranges. */
        if (!grow(b, &b->cls, &b->cap_cls, (size_t)4 * n + 4)) return UINT32_MAX;
        uint32_t *c = b->cls + 2 * n, w = 0, next = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (b->cls[2 * i] > next) {
                c[2 * w] = next;
                c[2 * w + 1] = b->cls[2 * i] - 1;
                w++;
            }
            next = b->cls[2 * i + 1] + 1;
        }
        if (next <= SM_CP_MAX) {
            c[2 * w] = next;
            c[2 * w + 1] = SM_CP_MAX;
            w++;
        }
        if (w == 0) {
            perr(b, open, "negated character class excludes every character");
            return UINT32_MAX;
        }
        return add_set(b, c, w);
    }
    return add_set(b, b->cls, n);
}

/* ------------------------------------------------------------- sequences */

static int parse_alternates(builder *b, uint32_t rule, int nested);

static int parse_count(builder *b, uint32_t *out) {
    size_t at = b->pos;
    uint64_t v = 0;
    if (!is_digit(cur(b))) return perr(b, at, "expecting a number in the repetition");
    while (is_digit(cur(b))) {
        v = v * 10 + (uint64_t)(cur(b) - '0');
        if (v > SM_GRAMMAR_MAX_REPEAT)
            return perr(b, at, "repetition count is larger than %d", SM_GRAMMAR_MAX_REPEAT);
        b->pos++;
    }
    *out = (uint32_t)v;
    return 1;
}

/* Rewrites the symbol tmp[sym_start ..] as repeated min..max times (max
 * UINT32_MAX: unbounded). */
static int repeat(builder *b, uint32_t sym_start, uint32_t min, uint32_t max, size_t at) {
    uint32_t k = b->n_tmp - sym_start;
    if (k == 0) return perr(b, at, "repetition without anything before it to repeat");
    uint64_t n_opt = max == UINT32_MAX ? 1 : (uint64_t)max - min;
    uint64_t cost = ((uint64_t)min + n_opt) * (k + 2);
    if ((uint64_t)b->n_body + b->n_tmp + cost > SM_GRAMMAR_MAX_ITEMS)
        return perr(b, at, "the grammar expands to more than %u elements (repetitions count each copy)",
                    SM_GRAMMAR_MAX_ITEMS);
    if (!grow(b, &b->rep, &b->cap_rep, (size_t)k + 2)) return 0;
    memcpy(b->rep, b->tmp + sym_start, (size_t)k * sizeof *b->rep);
    if (min == 0) {
        b->n_tmp = sym_start;
    } else {
        if (!grow(b, &b->tmp, &b->cap_tmp, (size_t)b->n_tmp + (size_t)(min - 1) * k + 1)) return 0;
        for (uint32_t i = 1; i < min; i++) {
            memcpy(b->tmp + b->n_tmp, b->rep, (size_t)k * sizeof *b->rep);
            b->n_tmp += k;
        }
    }
    if (max == UINT32_MAX) {
        /* R ::= S R | <empty> */
        uint32_t r = generated_sym(b);
        if (r == UINT32_MAX) return 0;
        b->rep[k] = GI_MAKE(GI_REF, r);
        b->rep[k + 1] = GI_MAKE(GI_ALT, 0);
        if (!set_body(b, r, b->rep, k + 2)) return 0;
        return push_tmp(b, GI_MAKE(GI_REF, r));
    }
    uint32_t prev = UINT32_MAX;
    for (uint64_t i = 0; i < n_opt; i++) {
        /* R(i+1) ::= S R(i) | <empty>;  R(1) ::= S | <empty> */
        uint32_t r = generated_sym(b), n = k;
        if (r == UINT32_MAX) return 0;
        if (prev != UINT32_MAX) b->rep[n++] = GI_MAKE(GI_REF, prev);
        b->rep[n++] = GI_MAKE(GI_ALT, 0);
        if (!set_body(b, r, b->rep, n)) return 0;
        prev = r;
    }
    if (prev != UINT32_MAX) return push_tmp(b, GI_MAKE(GI_REF, prev));
    return 1;
}

static int parse_sequence(builder *b, int nested) {
    uint32_t sym_start = UINT32_MAX;   /* where the last symbol's items begin in tmp */
    char buf[16];
    for (;;) {
        int c = cur(b);
        size_t at = b->pos;
        if (c == '"') {
            b->pos++;
            sym_start = b->n_tmp;
            while (cur(b) != '"') {
                if (at_end(b)) return perr(b, at, "string literal not closed with '\"'");
                uint32_t cp;
                if (!parse_char(b, &cp)) return 0;
                uint32_t s = single_set(b, cp);
                if (s == UINT32_MAX || !push_tmp(b, GI_MAKE(GI_SET, s))) return 0;
            }
            b->pos++;
            skip_space(b, nested);
        } else if (c == '[') {
            uint32_t s = parse_class(b);
            if (s == UINT32_MAX) return 0;
            sym_start = b->n_tmp;
            if (!push_tmp(b, GI_MAKE(GI_SET, s))) return 0;
            skip_space(b, nested);
        } else if (is_word(c)) {
            size_t start = b->pos;
            while (is_word(cur(b))) b->pos++;
            uint32_t r = named_sym(b, start, b->pos - start);
            if (r == UINT32_MAX) return 0;
            if (b->syms[r].use_pos == UINT32_MAX) b->syms[r].use_pos = (uint32_t)start;
            sym_start = b->n_tmp;
            if (!push_tmp(b, GI_MAKE(GI_REF, r))) return 0;
            skip_space(b, nested);
        } else if (c == '(') {
            if (b->depth >= SM_GRAMMAR_MAX_NESTING)
                return perr(b, at, "parentheses nested deeper than %d", SM_GRAMMAR_MAX_NESTING);
            b->pos++;
            skip_space(b, 1);
            uint32_t r = generated_sym(b);
            if (r == UINT32_MAX) return 0;
            b->depth++;
            if (!parse_alternates(b, r, 1)) return 0;
            b->depth--;
            if (cur(b) != ')') {
                unsigned line, col;
                line_col(b, at, &line, &col);
                return perr(b, b->pos, "expecting ')' to close the group opened on line %u, column %u, found %s",
                            line, col, describe(b, b->pos, buf, sizeof buf));
            }
            b->pos++;
            sym_start = b->n_tmp;
            if (!push_tmp(b, GI_MAKE(GI_REF, r))) return 0;
            skip_space(b, nested);
        } else if (c == '.') {
            uint32_t any[2] = {0, SM_CP_MAX};
            uint32_t s = add_set(b, any, 1);
            if (s == UINT32_MAX) return 0;
            b->pos++;
            sym_start = b->n_tmp;
            if (!push_tmp(b, GI_MAKE(GI_SET, s))) return 0;
            skip_space(b, nested);
        } else if (c == '*' || c == '+' || c == '?') {
            b->pos++;
            skip_space(b, nested);
            if (sym_start == UINT32_MAX)
                return perr(b, at, "'%c' without anything before it to repeat", c);
            uint32_t min = c == '+' ? 1 : 0, max = c == '?' ? 1 : UINT32_MAX;
            if (!repeat(b, sym_start, min, max, at)) return 0;
        } else if (c == '{') {
            b->pos++;
            skip_space(b, nested);
            uint32_t min, max;
            if (!parse_count(b, &min)) return 0;
            skip_space(b, nested);
            if (cur(b) == '}') {
                max = min;
            } else if (cur(b) == ',') {
                b->pos++;
                skip_space(b, nested);
                max = UINT32_MAX;
                if (is_digit(cur(b))) {
                    if (!parse_count(b, &max)) return 0;
                    skip_space(b, nested);
                }
                if (cur(b) != '}')
                    return perr(b, b->pos, "expecting '}' to end the repetition, found %s",
                                describe(b, b->pos, buf, sizeof buf));
            } else {
                return perr(b, b->pos, "expecting ',' or '}' in the repetition, found %s",
                            describe(b, b->pos, buf, sizeof buf));
            }
            b->pos++;
            skip_space(b, nested);
            if (max != UINT32_MAX && max < min)
                return perr(b, at, "repetition {%u,%u}: the maximum is below the minimum", min, max);
            if (sym_start == UINT32_MAX) return perr(b, at, "'{' without anything before it to repeat");
            if (!repeat(b, sym_start, min, max, at)) return 0;
        } else {
            return 1;
        }
    }
}

/* sequence ("|" sequence)*, stored as the body of rule. */
static int parse_alternates(builder *b, uint32_t rule, int nested) {
    uint32_t start = b->n_tmp;
    if (!parse_sequence(b, nested)) return 0;
    while (cur(b) == '|') {
        if (!push_tmp(b, GI_MAKE(GI_ALT, 0))) return 0;
        b->pos++;
        skip_space(b, 1);
        if (!parse_sequence(b, nested)) return 0;
    }
    if (!set_body(b, rule, b->n_tmp > start ? b->tmp + start : NULL, b->n_tmp - start)) return 0;
    b->n_tmp = start;
    return 1;
}

static int parse_rule(builder *b) {
    char buf[16];
    size_t start = b->pos;
    while (is_word(cur(b))) b->pos++;
    if (b->pos == start) {
        if (cur(b) == '_')
            return perr(b, start, "rule names may use letters, digits and '-' only (not '_')");
        return perr(b, start, "expecting a rule name, found %s", describe(b, start, buf, sizeof buf));
    }
    size_t name_end = b->pos;
    skip_space(b, 0);
    if (!(peek(b, 0) == ':' && peek(b, 1) == ':' && peek(b, 2) == '=')) {
        if (cur(b) == '_')
            return perr(b, b->pos, "rule names may use letters, digits and '-' only (not '_')");
        return perr(b, b->pos, "expecting '::=' after the rule name '%.*s', found %s", (int)(name_end - start),
                    b->src + start, describe(b, b->pos, buf, sizeof buf));
    }
    uint32_t r = named_sym(b, start, name_end - start);
    if (r == UINT32_MAX) return 0;
    if (b->syms[r].defined) {
        unsigned line, col;
        line_col(b, b->syms[r].def_pos, &line, &col);
        return perr(b, start, "rule '%.*s' is defined twice (first on line %u)", (int)(name_end - start),
                    b->src + start, line);
    }
    b->syms[r].defined = 1;
    b->syms[r].def_pos = (uint32_t)start;
    b->cur_rule = r;
    b->pos += 3;
    skip_space(b, 1);
    if (!parse_alternates(b, r, 0)) return 0;
    if (cur(b) == '\r') {
        b->pos++;
        if (cur(b) == '\n') b->pos++;
    } else if (cur(b) == '\n') {
        b->pos++;
    } else if (!at_end(b)) {
        if (cur(b) == ')') return perr(b, b->pos, "')' without a matching '('");
        return perr(b, b->pos, "unexpected %s in rule '%.*s' (expecting a symbol, '|' or the end of the line)",
                    describe(b, b->pos, buf, sizeof buf), (int)(name_end - start), b->src + start);
    }
    skip_space(b, 1);
    return 1;
}

/* ------------------------------------------------------------- assembly */

static sm_grammar *assemble(builder *b, uint32_t root) {
    sm_grammar *g = sm_calloc(1, sizeof *g);
    if (!g) return NULL;
    uint32_t n_alts = 0, n_items = 2;
    for (uint32_t r = 0; r < b->n_syms; r++) {
        n_alts++;
        const uint32_t *body = b->syms[r].body_len ? b->body + b->syms[r].body_off : NULL;
        for (uint32_t i = 0; i < b->syms[r].body_len; i++) {
            if (GI_KIND(body[i]) == GI_ALT) n_alts++;
            else n_items++;
        }
    }
    n_items += n_alts;   /* one END per alternative */
    g->n_rules = b->n_syms;
    g->n_alts = n_alts;
    g->n_items = n_items;
    g->n_sets = b->n_sets;
    g->items = sm_alloc((size_t)n_items * sizeof *g->items);
    g->alt_start = sm_alloc((size_t)n_alts * sizeof *g->alt_start);
    g->rule_alt = sm_alloc(((size_t)g->n_rules + 1) * sizeof *g->rule_alt);
    g->set_ascii = sm_calloc((size_t)4 * (b->n_sets ? b->n_sets : 1), sizeof *g->set_ascii);
    g->set_first = sm_alloc(((size_t)b->n_sets + 1) * sizeof *g->set_first);
    g->ranges = sm_alloc(((size_t)b->n_sranges + 2) * sizeof *g->ranges);
    if (!g->items || !g->alt_start || !g->rule_alt || !g->set_ascii || !g->set_first || !g->ranges) {
        sm_grammar_free(g);
        return NULL;
    }
    uint32_t w = 0, a = 0;
    for (uint32_t r = 0; r < b->n_syms; r++) {
        g->rule_alt[r] = a;
        g->alt_start[a++] = w;
        const uint32_t *body = b->syms[r].body_len ? b->body + b->syms[r].body_off : NULL;
        for (uint32_t i = 0; i < b->syms[r].body_len; i++) {
            if (GI_KIND(body[i]) == GI_ALT) {
                g->items[w++] = GI_MAKE(GI_END, 0);
                g->alt_start[a++] = w;
            } else {
                g->items[w++] = body[i];
            }
        }
        g->items[w++] = GI_MAKE(GI_END, 0);
    }
    g->rule_alt[b->n_syms] = a;
    g->start_pos = w;
    g->items[w++] = GI_MAKE(GI_REF, root);
    g->items[w++] = GI_MAKE(GI_END, 0);
    if (b->n_sranges) memcpy(g->ranges, b->sranges, (size_t)b->n_sranges * sizeof *g->ranges);
    g->set_first[0] = 0;
    for (uint32_t s = 0; s < b->n_sets; s++) {
        g->set_first[s + 1] = b->set_first[s + 1];
        for (uint32_t i = b->set_first[s]; i < b->set_first[s + 1]; i++) {
            uint32_t lo = b->sranges[2 * i], hi = b->sranges[2 * i + 1];
            for (uint32_t c = lo; c <= hi && c < 128; c++) g->set_ascii[4 * s + (c >> 5)] |= 1u << (c & 31);
        }
    }
    return g;
}

static void builder_free(builder *b) {
    sm_free(b->syms);
    sm_free(b->sym_table);
    sm_free(b->body);
    sm_free(b->tmp);
    sm_free(b->rep);
    sm_free(b->sranges);
    sm_free(b->set_first);
    sm_free(b->set_table);
    sm_free(b->cls);
}

/* Names and definition lines of every rule, for the left-recursion message
 * (generated rules are named after the rule they were made for). */
static sm_status check_recursion(builder *b, const sm_grammar *g, sm_error *err) {
    size_t names_bytes = 0;
    for (uint32_t r = 0; r < b->n_syms; r++) names_bytes += b->syms[r].name_len + 1;
    char **names = sm_alloc(((size_t)b->n_syms + 1) * sizeof *names);
    uint32_t *lines = sm_alloc(((size_t)b->n_syms + 1) * sizeof *lines);
    char *text = sm_alloc(names_bytes + 1);
    if (!names || !lines || !text) {
        sm_free(names);
        sm_free(lines);
        sm_free(text);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory while checking the grammar");
    }
    char *t = text;
    for (uint32_t r = 0; r < b->n_syms; r++) {
        const sym *s = &b->syms[r];
        names[r] = t;
        memcpy(t, b->src + s->name_off, s->name_len);
        t[s->name_len] = '\0';
        t += s->name_len + 1;
    }
    for (uint32_t r = 0; r < b->n_syms; r++) {
        uint32_t p = b->syms[r].parent;
        if (!b->syms[r].name_len) names[r] = names[p];
        unsigned line, col;
        line_col(b, b->syms[r].def_pos, &line, &col);
        lines[r] = line;
    }
    sm_status st = sm_grammar_check_left_recursion(g, (const char *const *)names, lines, err);
    sm_free(names);
    sm_free(lines);
    sm_free(text);
    return st;
}

sm_status sm_grammar_parse(const char *text, size_t len, const char *root_name, sm_grammar **out, sm_error *err) {
    if (!out) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_grammar_parse: out is required");
    *out = NULL;
    if (!text && len) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_grammar_parse: text is NULL");
    if (len > SM_GRAMMAR_MAX_TEXT)
        return sm_fail(err, SM_ERR_INVALID_ARG, "grammar text of %zu bytes is over the limit of %u", len,
                       SM_GRAMMAR_MAX_TEXT);
    if (!root_name) root_name = "root";
    builder b;
    memset(&b, 0, sizeof b);
    b.src = text ? text : "";
    b.len = len;
    b.err = err;
    skip_space(&b, 1);
    while (!b.failed && !at_end(&b)) parse_rule(&b);
    sm_grammar *g = NULL;
    if (!b.failed && b.n_syms == 0) {
        b.status = sm_fail(err, SM_ERR_FORMAT, "the grammar is empty: it defines no rules");
        b.failed = 1;
    }
    for (uint32_t r = 0; r < b.n_syms && !b.failed; r++)
        if (!b.syms[r].defined)
            perr(&b, b.syms[r].use_pos, "undefined rule '%.*s'", (int)b.syms[r].name_len, b.src + b.syms[r].name_off);
    uint32_t root = UINT32_MAX;
    if (!b.failed) {
        root = find_named(&b, root_name, strlen(root_name));
        if (root == UINT32_MAX) {
            b.status = sm_fail(err, SM_ERR_FORMAT, "the grammar has no rule named '%s' to start from", root_name);
            b.failed = 1;
        }
    }
    if (!b.failed) {
        g = assemble(&b, root);
        if (!g) {
            b.status = sm_fail(err, SM_ERR_NOMEM, "out of memory while building the grammar");
            b.failed = 1;
        } else if ((b.status = check_recursion(&b, g, err)) != SM_OK) {
            sm_grammar_free(g);
            g = NULL;
            b.failed = 1;
        }
    }
    builder_free(&b);
    if (!g) return b.status;
    *out = g;
    return SM_OK;
}

void sm_grammar_free(sm_grammar *g) {
    if (!g) return;
    sm_free(g->items);
    sm_free(g->alt_start);
    sm_free(g->rule_alt);
    sm_free(g->set_ascii);
    sm_free(g->set_first);
    sm_free(g->ranges);
    sm_free(g);
}

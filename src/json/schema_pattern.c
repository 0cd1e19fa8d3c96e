/* schema_pattern.c - a JSON Schema "pattern" as GBNF.
 *
 * Patterns are ECMA-262 regular expressions matched anywhere in the string
 * (JSON Schema 2020-12, section 6.3.3). Supported: literals, ".", classes
 * [...] [^...] with ranges, \d \D \w \W \s \S, escapes (\n \t \r \f \v \0
 * \xHH \uHHHH \u{H...} and escaped punctuation), groups ( ) (?: ) (?<name> ),
 * alternation, * + ? {m} {m,} {m,n} (lazy forms too: for a whole-string
 * match they accept the same strings), ^ at the start and $ at the end of
 * a top-level alternative. A side without its anchor is padded with "any
 * characters", so "abc" means "contains abc" as the standard says (llama.cpp
 * instead refuses patterns without both anchors).
 *
 * Refused with a message: lookaround, backreferences, \b \B, \p{...},
 * anchors elsewhere. The grammar describes the JSON text between the
 * quotes, so characters that JSON must escape come out escaped ("\"",
 * "\\", "\n", "\u0001"); "." and negated classes never produce raw quotes
 * or backslashes (llama.cpp's can, making invalid JSON). */
#include "schema_conv.h"
#include "core/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_PATTERN (64u << 10)
#define MAX_DEPTH 64
#define MAX_REPEAT 10000

typedef struct cset {
    uint32_t *r;      /* lo, hi pairs */
    size_t n, cap;    /* pairs */
} cset;

typedef struct pat {
    const char *s;
    size_t n, i;
    const char *char_rule;
    char *err;
    size_t err_cap;
    int failed, depth;
} pat;

static int fail(pat *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(pat *p, const char *fmt, ...) {
    if (p->failed) return 0;
    p->failed = 1;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->err) snprintf(p->err, p->err_cap, "pattern, at offset %zu: %s", p->i, msg);
    return 0;
}

/* ---------------------------------------------------------- code point sets */

static int cs_add(pat *p, cset *c, uint32_t lo, uint32_t hi) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 8;
        uint32_t *r = sm_alloc(cap * 2 * sizeof *r);
        if (!r) return fail(p, "out of memory");
        if (c->r) memcpy(r, c->r, c->n * 2 * sizeof *r);
        sm_free(c->r);
        c->r = r;
        c->cap = cap;
    }
    c->r[2 * c->n] = lo;
    c->r[2 * c->n + 1] = hi;
    c->n++;
    return 1;
}

static void cs_free(cset *c) {
    sm_free(c->r);
    memset(c, 0, sizeof *c);
}

/* Sorts and merges the ranges. */
static void cs_normalize(cset *c) {
    for (size_t i = 1; i < c->n; i++) {
        uint32_t lo = c->r[2 * i], hi = c->r[2 * i + 1];
        size_t j = i;
        while (j > 0 && c->r[2 * (j - 1)] > lo) {
            c->r[2 * j] = c->r[2 * (j - 1)];
            c->r[2 * j + 1] = c->r[2 * (j - 1) + 1];
            j--;
        }
        c->r[2 * j] = lo;
        c->r[2 * j + 1] = hi;
    }
    size_t w = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (w > 0 && c->r[2 * i] <= c->r[2 * (w - 1) + 1] + 1) {
            if (c->r[2 * i + 1] > c->r[2 * (w - 1) + 1]) c->r[2 * (w - 1) + 1] = c->r[2 * i + 1];
        } else {
            c->r[2 * w] = c->r[2 * i];
            c->r[2 * w + 1] = c->r[2 * i + 1];
            w++;
        }
    }
    c->n = w;
}

/* Adds the complement of src (normalized) to dst. */
static int cs_add_complement(pat *p, cset *dst, cset *src) {
    cs_normalize(src);
    uint32_t next = 0;
    for (size_t i = 0; i < src->n; i++) {
        if (src->r[2 * i] > next && !cs_add(p, dst, next, src->r[2 * i] - 1)) return 0;
        next = src->r[2 * i + 1] + 1;
    }
    return next > 0x10FFFF || cs_add(p, dst, next, 0x10FFFF);
}

static int cs_has(const cset *c, uint32_t x) {
    for (size_t i = 0; i < c->n; i++)
        if (c->r[2 * i] <= x && x <= c->r[2 * i + 1]) return 1;
    return 0;
}

/* \d \w \s and their negations, added to c. */
static int cs_add_class_escape(pat *p, cset *c, char e) {
    cset t = {0};
    int ok = 1;
    switch (e | 0x20) {
    case 'd': ok = cs_add(p, &t, '0', '9'); break;
    case 'w':
        ok = cs_add(p, &t, '0', '9') && cs_add(p, &t, 'A', 'Z') && cs_add(p, &t, '_', '_') && cs_add(p, &t, 'a', 'z');
        break;
    default:  /* s: ECMA-262 WhiteSpace and LineTerminator */
        ok = cs_add(p, &t, 0x09, 0x0D) && cs_add(p, &t, 0x20, 0x20) && cs_add(p, &t, 0xA0, 0xA0) &&
             cs_add(p, &t, 0x1680, 0x1680) && cs_add(p, &t, 0x2000, 0x200A) && cs_add(p, &t, 0x2028, 0x2029) &&
             cs_add(p, &t, 0x202F, 0x202F) && cs_add(p, &t, 0x205F, 0x205F) && cs_add(p, &t, 0x3000, 0x3000) &&
             cs_add(p, &t, 0xFEFF, 0xFEFF);
    }
    if (ok) {
        if (e >= 'A' && e <= 'Z') {
            ok = cs_add_complement(p, c, &t);
        } else {
            for (size_t i = 0; ok && i < t.n; i++) ok = cs_add(p, c, t.r[2 * i], t.r[2 * i + 1]);
        }
    }
    cs_free(&t);
    return ok;
}

/* The JSON string text for one code point of the set, escaped as needed. */
static void json_escaped(sm_sbuf *out, uint32_t c) {
    char buf[8];
    switch (c) {
    case '"': sm_gbnf_literal(out, "\\\"", 2); return;
    case '\\': sm_gbnf_literal(out, "\\\\", 2); return;
    case '\n': sm_gbnf_literal(out, "\\n", 2); return;
    case '\r': sm_gbnf_literal(out, "\\r", 2); return;
    case '\t': sm_gbnf_literal(out, "\\t", 2); return;
    case '\b': sm_gbnf_literal(out, "\\b", 2); return;
    case '\f': sm_gbnf_literal(out, "\\f", 2); return;
    default:
        snprintf(buf, sizeof buf, "\\u%04x", c);
        sm_gbnf_literal(out, buf, 6);
    }
}

static int needs_escape(uint32_t c) { return c < 0x20 || c == '"' || c == '\\'; }

/* GBNF for "one character of the set", as it appears in JSON text. */
static int emit_set(pat *p, sm_sbuf *out, cset *c) {
    cs_normalize(c);
    sm_sbuf cls = {0};
    int parts = 0;
    for (size_t i = 0; i < c->n; i++) {
        uint32_t lo = c->r[2 * i], hi = c->r[2 * i + 1];
        /* Split around the characters JSON escapes: 0x00-0x1F, '"', '\'. */
        uint32_t cuts[][2] = {{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0x10FFFF}};
        for (int k = 0; k < 3; k++) {
            uint32_t a = lo > cuts[k][0] ? lo : cuts[k][0], b = hi < cuts[k][1] ? hi : cuts[k][1];
            if (a > b) continue;
            sm_gbnf_class_char(&cls, a);
            if (b > a) {
                sm_sb_add(&cls, "-");
                sm_gbnf_class_char(&cls, b);
            }
        }
    }
    sm_sbuf alts = {0};
    if (cls.n) {
        sm_sb_add(&alts, "[");
        sm_sb_addn(&alts, cls.p, cls.n);
        sm_sb_add(&alts, "]");
        parts++;
    }
    for (uint32_t x = 0; x < 0x60; x++) {
        if (!needs_escape(x) || !cs_has(c, x)) continue;
        if (parts++) sm_sb_add(&alts, " | ");
        json_escaped(&alts, x);
    }
    int ok = parts > 0 || fail(p, "a character class that matches nothing");
    if (ok) {
        if (parts > 1) sm_sb_add(out, "(");
        sm_sb_addn(out, alts.p, alts.n);
        if (parts > 1) sm_sb_add(out, ")");
    }
    sm_sb_free(&cls);
    sm_sb_free(&alts);
    return ok;
}

static int emit_char(pat *p, sm_sbuf *out, uint32_t c) {
    (void)p;
    if (needs_escape(c)) {
        json_escaped(out, c);
        return 1;
    }
    char u[4];
    size_t n = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    static const unsigned char lead[5] = {0, 0x00, 0xC0, 0xE0, 0xF0};
    for (size_t k = n - 1; k > 0; k--) {
        u[k] = (char)(0x80 | (c & 0x3F));
        c >>= 6;
    }
    u[0] = (char)(lead[n] | c);
    sm_gbnf_literal(out, u, n);
    return 1;
}

/* -------------------------------------------------------------- parsing */

static int at_end(const pat *p) { return p->i >= p->n; }
static int cur(const pat *p) { return p->i < p->n ? (unsigned char)p->s[p->i] : -1; }

static uint32_t next_cp(pat *p) {
    uint32_t c;
    p->i += sm_utf8_next(p->s + p->i, p->n - p->i, &c);
    return c;
}

static int hexval(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int read_hex(pat *p, int digits, uint32_t *out) {
    uint32_t v = 0;
    for (int k = 0; k < digits; k++) {
        int d = hexval(cur(p));
        if (d < 0) return fail(p, "expecting %d hex digits", digits);
        v = v * 16 + (uint32_t)d;
        p->i++;
    }
    *out = v;
    return 1;
}

/* After a backslash: a single character (*is_set 0) or a class escape
 * added to set (*is_set 1). in_class: inside [...] (\b is backspace). */
static int parse_escape(pat *p, uint32_t *cp, cset *set, int *is_set, int in_class) {
    *is_set = 0;
    if (at_end(p)) return fail(p, "pattern ends with a backslash");
    int e = cur(p);
    p->i++;
    switch (e) {
    case 'd': case 'D': case 'w': case 'W': case 's': case 'S':
        *is_set = 1;
        return cs_add_class_escape(p, set, (char)e);
    case 'n': *cp = '\n'; return 1;
    case 'r': *cp = '\r'; return 1;
    case 't': *cp = '\t'; return 1;
    case 'f': *cp = '\f'; return 1;
    case 'v': *cp = '\v'; return 1;
    case '0':
        if (cur(p) >= '0' && cur(p) <= '9') return fail(p, "octal escapes are not supported");
        *cp = 0;
        return 1;
    case 'x': return read_hex(p, 2, cp);
    case 'u':
        if (cur(p) == '{') {
            p->i++;
            uint32_t v = 0;
            int n = 0;
            while (hexval(cur(p)) >= 0 && n < 8) {
                v = v * 16 + (uint32_t)hexval(cur(p));
                p->i++;
                n++;
            }
            if (!n || cur(p) != '}' || v > 0x10FFFF) return fail(p, "bad \\u{...} escape");
            p->i++;
            *cp = v;
            return 1;
        }
        return read_hex(p, 4, cp);
    case 'b':
        if (in_class) {
            *cp = '\b';
            return 1;
        }
        return fail(p, "word boundaries (\\b) are not supported");
    case 'B': return fail(p, "word boundaries (\\B) are not supported");
    case 'p': case 'P': return fail(p, "Unicode property escapes (\\p{...}) are not supported");
    case 'k': return fail(p, "backreferences are not supported");
    case 'c': return fail(p, "control escapes (\\c) are not supported");
    default:
        if (e >= '1' && e <= '9') return fail(p, "backreferences are not supported");
        if (e < 0x80 && strchr("^$\\.*+?()[]{}|/-", e)) {
            *cp = (uint32_t)e;
            return 1;
        }
        return fail(p, "unknown escape '\\%c'", e >= 0x20 && e < 0x7F ? e : '?');
    }
}

static int parse_class(pat *p, sm_sbuf *out) {
    p->i++;   /* [ */
    int negate = 0;
    if (cur(p) == '^') {
        negate = 1;
        p->i++;
    }
    cset c = {0};
    int ok = 1;
    while (ok && cur(p) != ']') {
        if (at_end(p)) {
            ok = fail(p, "character class not closed with ']'");
            break;
        }
        uint32_t lo;
        int is_set = 0;
        if (cur(p) == '\\') {
            p->i++;
            ok = parse_escape(p, &lo, &c, &is_set, 1);
        } else {
            lo = next_cp(p);
        }
        if (!ok || is_set) {
            if (ok && cur(p) == '-' && p->i + 1 < p->n && p->s[p->i + 1] != ']')
                ok = fail(p, "a range cannot start with a class escape");
            continue;
        }
        uint32_t hi = lo;
        if (cur(p) == '-' && p->i + 1 < p->n && p->s[p->i + 1] != ']') {
            p->i++;
            if (cur(p) == '\\') {
                p->i++;
                ok = parse_escape(p, &hi, &c, &is_set, 1);
                if (ok && is_set) ok = fail(p, "a range cannot end with a class escape");
            } else {
                hi = next_cp(p);
            }
            if (ok && hi < lo) ok = fail(p, "range out of order in character class");
        }
        if (ok) ok = cs_add(p, &c, lo, hi);
    }
    if (ok) p->i++;   /* ] */
    if (ok && negate) {
        cset all = {0};
        ok = cs_add_complement(p, &all, &c);
        cs_free(&c);
        c = all;
    }
    if (ok) ok = emit_set(p, out, &c);
    cs_free(&c);
    return ok;
}

static int parse_alternatives(pat *p, sm_sbuf *out, int top);

static int parse_count(pat *p, uint32_t *v) {
    if (!(cur(p) >= '0' && cur(p) <= '9')) return 0;
    uint64_t x = 0;
    while (cur(p) >= '0' && cur(p) <= '9') {
        x = x * 10 + (uint64_t)(cur(p) - '0');
        if (x > MAX_REPEAT) return fail(p, "repetition count above %d", MAX_REPEAT);
        p->i++;
    }
    *v = (uint32_t)x;
    return 1;
}

/* A quantifier after an atom, if any: appended to out as GBNF. */
static int parse_quantifier(pat *p, sm_sbuf *out, int *quantified) {
    *quantified = 0;
    int c = cur(p);
    if (c == '*' || c == '+' || c == '?') {
        char q = (char)c;
        sm_sb_addn(out, &q, 1);
        p->i++;
    } else if (c == '{') {
        size_t start = p->i;
        p->i++;
        uint32_t min, max = 0;
        int has_max = 1;
        if (!parse_count(p, &min)) {
            p->i = start;
            return p->failed ? 0 : fail(p, "'{' must start a repetition {m}, {m,} or {m,n}");
        }
        if (cur(p) == ',') {
            p->i++;
            if (cur(p) == '}') has_max = 0;
            else if (!parse_count(p, &max)) return p->failed ? 0 : fail(p, "bad repetition");
        } else {
            max = min;
        }
        if (cur(p) != '}') return fail(p, "repetition not closed with '}'");
        p->i++;
        if (has_max && max < min) return fail(p, "repetition {%u,%u} out of order", min, max);
        if (!has_max) sm_sb_printf(out, "{%u,}", min);
        else if (max == min) sm_sb_printf(out, "{%u}", min);
        else sm_sb_printf(out, "{%u,%u}", min, max);
    } else {
        return 1;
    }
    *quantified = 1;
    if (cur(p) == '?') p->i++;   /* lazy: same strings for a whole match */
    c = cur(p);
    if (c == '*' || c == '+' || c == '?' || c == '{') return fail(p, "a quantifier cannot follow a quantifier");
    return 1;
}

/* One atom with its quantifier. Returns 0 on failure. */
static int parse_atom(pat *p, sm_sbuf *out) {
    sm_sbuf atom = {0};
    int c = cur(p), ok = 1;
    uint32_t cp;
    if (c == '(') {
        if (p->depth >= MAX_DEPTH) return fail(p, "groups nested deeper than %d", MAX_DEPTH);
        p->i++;
        if (cur(p) == '?') {
            p->i++;
            if (cur(p) == ':') {
                p->i++;
            } else if (cur(p) == '<' && p->i + 1 < p->n && p->s[p->i + 1] != '=' && p->s[p->i + 1] != '!') {
                while (!at_end(p) && cur(p) != '>') p->i++;
                if (at_end(p)) return fail(p, "group name not closed with '>'");
                p->i++;
            } else {
                return fail(p, "lookahead and lookbehind are not supported");
            }
        }
        p->depth++;
        sm_sb_add(&atom, "(");
        ok = parse_alternatives(p, &atom, 0);
        p->depth--;
        if (ok && cur(p) != ')') ok = fail(p, "group not closed with ')'");
        if (ok) {
            p->i++;
            sm_sb_add(&atom, ")");
        }
    } else if (c == '[') {
        ok = parse_class(p, &atom);
    } else if (c == '.') {
        p->i++;
        cset dot = {0};
        ok = cs_add(p, &dot, 0, 0x09) && cs_add(p, &dot, 0x0B, 0x0C) && cs_add(p, &dot, 0x0E, 0x2027) &&
             cs_add(p, &dot, 0x202A, 0x10FFFF) && emit_set(p, &atom, &dot);
        cs_free(&dot);
    } else if (c == '\\') {
        p->i++;
        cset set = {0};
        int is_set;
        ok = parse_escape(p, &cp, &set, &is_set, 0);
        if (ok) ok = is_set ? emit_set(p, &atom, &set) : emit_char(p, &atom, cp);
        cs_free(&set);
    } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        ok = fail(p, "'%c' with nothing before it to repeat", c);
    } else if (c == ']' || c == '}') {
        ok = fail(p, "unmatched '%c'", c);
    } else if (c == '^' || c == '$') {
        ok = fail(p, "'%c' is supported only at the start ('^') or end ('$') of a top-level alternative", c);
    } else {
        ok = emit_char(p, &atom, next_cp(p));
    }
    int quantified = 0;
    sm_sbuf q = {0};
    if (ok) ok = parse_quantifier(p, &q, &quantified);
    if (ok) {
        if (quantified && atom.p[0] != '(') sm_sb_add(out, "(");
        sm_sb_addn(out, atom.p, atom.n);
        if (quantified && atom.p[0] != '(') sm_sb_add(out, ")");
        sm_sb_addn(out, q.p, q.n);
    }
    if (atom.oom || q.oom) out->oom = 1;
    sm_sb_free(&atom);
    sm_sb_free(&q);
    return ok;
}

/* alternative ("|" alternative)*. At the top level an alternative may
 * start with ^ and end with $; a side without its anchor gets any
 * characters. */
static int parse_alternatives(pat *p, sm_sbuf *out, int top) {
    int n = 0;
    for (;;) {
        if (n++) sm_sb_add(out, " | ");
        int anchored_start = 0, anchored_end = 0, items = 0;
        if (top && cur(p) == '^') {
            anchored_start = 1;
            p->i++;
        }
        if (top && !anchored_start) sm_sb_printf(out, "%s* ", p->char_rule);
        while (!at_end(p) && cur(p) != '|' && cur(p) != ')') {
            if (top && cur(p) == '$' && (p->i + 1 == p->n || p->s[p->i + 1] == '|')) {
                anchored_end = 1;
                p->i++;
                break;
            }
            if (items++) sm_sb_add(out, " ");
            if (!parse_atom(p, out)) return 0;
        }
        if (top && !anchored_end) sm_sb_printf(out, " %s*", p->char_rule);
        if (!items && !(top && !(anchored_start && anchored_end))) sm_sb_add(out, "\"\"");
        if (cur(p) != '|') break;
        p->i++;
    }
    if (top && cur(p) == ')') return fail(p, "unmatched ')'");
    return 1;
}

int sm_schema_pattern(sm_sbuf *out, const char *pattern, size_t len, const char *char_rule, char *err,
                      size_t err_cap) {
    pat p = {pattern, len, 0, char_rule, err, err_cap, 0, 0};
    if (len > MAX_PATTERN) return fail(&p, "longer than %u bytes", MAX_PATTERN);
    sm_sb_add(out, "(");
    int ok = parse_alternatives(&p, out, 1);
    sm_sb_add(out, ")");
    if (ok && out->oom) ok = fail(&p, "out of memory");
    return ok;
}

/* json_schema.c - JSON Schema to GBNF (see json_schema.h for what is
 * supported and why).
 *
 * Each schema becomes a rule; rule names come from the path of property
 * names (sanitized to [a-zA-Z0-9-], the names GBNF allows), with a number
 * appended when two different rules want the same name. Shared pieces
 * (strings, numbers, whitespace, ...) are fixed rules added on first use.
 * Output is "root ::= ..." first, then the rules in the order they were
 * made. */
#include "json_schema.h"
#include "schema_conv.h"
#include "core/alloc.h"
#include "core/error.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64               /* nested schemas */
#define MAX_BOUND 10000            /* minItems, maxItems, minLength, maxLength */
#define MAX_GRAMMAR (8u << 20)     /* bytes of grammar */
#define NAME_MAX_LEN 48

typedef struct rule {
    char *name, *body;   /* body NULL: a name reserved for a $ref being resolved */
} rule;

typedef struct ref_entry {
    char *ref, *name;
} ref_entry;

typedef struct conv {
    const json_t *root;
    rule *rules;
    size_t n_rules, cap_rules;
    size_t *table;           /* rule index + 1, by name */
    size_t table_cap;
    ref_entry *refs;
    size_t n_refs, cap_refs;
    sm_sbuf warn;
    sm_error *err;
    sm_status status;
    int failed, depth;
    char path[256];          /* JSON pointer of the schema being converted */
    size_t total;
} conv;

/* --------------------------------------------------------------- errors */

static const char *cfail(conv *c, sm_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const char *cfail(conv *c, sm_status st, const char *fmt, ...) {
    if (c->failed) return NULL;
    c->failed = 1;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->path[0]) c->status = sm_fail(c->err, st, "JSON schema at %s: %s", c->path, msg);
    else c->status = sm_fail(c->err, st, "JSON schema: %s", msg);
    return NULL;
}

static const char *oom(conv *c) { return cfail(c, SM_ERR_NOMEM, "out of memory converting the schema"); }

static void warn(conv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(conv *c, const char *fmt, ...) {
    char msg[300], full[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "%s%s%s", c->path[0] ? c->path : "", c->path[0] ? ": " : "", msg);
    if (c->warn.p && strstr(c->warn.p, full)) return;
    if (c->warn.n) sm_sb_add(&c->warn, "; ");
    sm_sb_add(&c->warn, full);
}

/* Appends "/seg" (escaped as JSON pointers are) to the path; returns the
 * old length for path_pop. */
static size_t path_push(conv *c, const char *seg) {
    size_t old = strlen(c->path), n = old;
    if (n + 2 < sizeof c->path) c->path[n++] = '/';
    for (const char *s = seg; *s && n + 3 < sizeof c->path; s++) {
        if (*s == '~' || *s == '/') {
            c->path[n++] = '~';
            c->path[n++] = *s == '~' ? '0' : '1';
        } else {
            c->path[n++] = *s;
        }
    }
    c->path[n] = '\0';
    return old;
}

static void path_pop(conv *c, size_t old) { c->path[old] = '\0'; }

/* ---------------------------------------------------------------- rules */

static char *dup_str(const char *s) {
    size_t n = strlen(s);
    char *p = sm_alloc(n + 1);
    if (p) memcpy(p, s, n + 1);
    return p;
}

static size_t hash_name(const char *s) {
    size_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static size_t find_rule(const conv *c, const char *name) {
    if (!c->table_cap) return SIZE_MAX;
    size_t mask = c->table_cap - 1, h = hash_name(name) & mask;
    for (; c->table[h]; h = (h + 1) & mask)
        if (strcmp(c->rules[c->table[h] - 1].name, name) == 0) return c->table[h] - 1;
    return SIZE_MAX;
}

static const char *insert_rule(conv *c, const char *name, const char *body) {
    if (body) {
        c->total += strlen(name) + strlen(body) + 6;
        if (c->total > MAX_GRAMMAR) return cfail(c, SM_ERR_UNSUPPORTED, "the grammar would exceed %u bytes", MAX_GRAMMAR);
    }
    if (c->n_rules == c->cap_rules) {
        size_t cap = c->cap_rules ? 2 * c->cap_rules : 32;
        rule *r = sm_alloc(cap * sizeof *r);
        if (!r) return oom(c);
        if (c->rules) memcpy(r, c->rules, c->n_rules * sizeof *r);
        sm_free(c->rules);
        c->rules = r;
        c->cap_rules = cap;
    }
    if ((c->n_rules + 1) * 2 > c->table_cap) {
        size_t cap = c->table_cap ? 2 * c->table_cap : 64;
        size_t *t = sm_calloc(cap, sizeof *t);
        if (!t) return oom(c);
        for (size_t i = 0; i < c->n_rules; i++) {
            size_t h = hash_name(c->rules[i].name) & (cap - 1);
            while (t[h]) h = (h + 1) & (cap - 1);
            t[h] = i + 1;
        }
        sm_free(c->table);
        c->table = t;
        c->table_cap = cap;
    }
    rule *r = &c->rules[c->n_rules];
    r->name = dup_str(name);
    r->body = body ? dup_str(body) : NULL;
    if (!r->name || (body && !r->body)) {
        sm_free(r->name);
        sm_free(r->body);
        return oom(c);
    }
    size_t h = hash_name(name) & (c->table_cap - 1);
    while (c->table[h]) h = (h + 1) & (c->table_cap - 1);
    c->table[h] = ++c->n_rules;
    return r->name;
}

/* Adds name ::= body (name already sanitized); an existing rule of that
 * name with the same body is shared, another gets a number appended.
 * body NULL reserves a fresh name. Returns the name used. */
static const char *add_rule(conv *c, const char *name, const char *body) {
    if (c->failed) return NULL;
    char cand[NAME_MAX_LEN + 24];
    snprintf(cand, sizeof cand, "%s", name);
    for (unsigned i = 0;; i++) {
        if (i > 0) snprintf(cand, sizeof cand, "%s%u", name, i - 1);
        size_t at = find_rule(c, cand);
        if (at == SIZE_MAX) return insert_rule(c, cand, body);
        if (body && c->rules[at].body && strcmp(c->rules[at].body, body) == 0) return c->rules[at].name;
    }
}

/* The fixed rules: JSON values as RFC 8259 writes them, whitespace limited
 * as llama.cpp's converter limits it, and the string formats. */
static const struct {
    const char *name, *body, *deps;
} PRIMS[] = {
    {"space", "| \" \" | \"\\n\" [ \\t]{0,20}", ""},
    {"boolean", "(\"true\" | \"false\") space", "space"},
    {"null", "\"null\" space", "space"},
    {"integral-part", "\"0\" | [1-9] [0-9]{0,15}", ""},
    {"decimal-part", "[0-9]{1,16}", ""},
    {"number", "\"-\"? integral-part (\".\" decimal-part)? ([eE] [-+]? integral-part)? space",
     "integral-part decimal-part space"},
    {"integer", "\"-\"? integral-part space", "integral-part space"},
    {"char", "[^\"\\\\\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4})", ""},
    {"string", "\"\\\"\" char* \"\\\"\" space", "char space"},
    {"value", "object | array | string | number | boolean | null", "object array string number boolean null"},
    {"object", "\"{\" space ( string \":\" space value (\",\" space string \":\" space value)* )? \"}\" space",
     "string value space"},
    {"array", "\"[\" space ( value (\",\" space value)* )? \"]\" space", "value space"},
    {"uuid",
     "\"\\\"\" [0-9a-fA-F]{8} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{12} "
     "\"\\\"\" space",
     "space"},
    /* Days per month; 29 February only in leap years (a year ending in 00
     * is a leap year when its first two digits are divisible by 4). */
    {"date", "[0-9]{4} \"-\" (\"0\" [13578] | \"1\" [02]) \"-\" (\"0\" [1-9] | [12] [0-9] | \"3\" [01])"
             " | [0-9]{4} \"-\" (\"0\" [469] | \"11\") \"-\" (\"0\" [1-9] | [12] [0-9] | \"30\")"
             " | [0-9]{4} \"-02-\" (\"0\" [1-9] | \"1\" [0-9] | \"2\" [0-8])"
             " | ([0-9] [0-9] ([02468] [48] | [13579] [26] | [2468] \"0\") | ([02468] [048] | [13579] [26]) \"00\")"
             " \"-02-29\"",
     ""},
    {"time", "([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]{1,9})?"
             " (\"Z\" | [+-] ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9])",
     ""},
    {"date-time", "date \"T\" time", "date time"},
    {"date-string", "\"\\\"\" date \"\\\"\" space", "date space"},
    {"time-string", "\"\\\"\" time \"\\\"\" space", "time space"},
    {"date-time-string", "\"\\\"\" date-time \"\\\"\" space", "date-time space"},
};
#define N_PRIMS (sizeof PRIMS / sizeof PRIMS[0])

static int is_reserved(const char *name) {
    if (strcmp(name, "root") == 0) return 1;
    for (size_t i = 0; i < N_PRIMS; i++)
        if (strcmp(PRIMS[i].name, name) == 0) return 1;
    return 0;
}

/* Makes sure the fixed rule `name` (and what it uses) exists. */
static const char *prim(conv *c, const char *name) {
    if (c->failed) return NULL;
    if (find_rule(c, name) != SIZE_MAX) return name;
    for (size_t i = 0; i < N_PRIMS; i++) {
        if (strcmp(PRIMS[i].name, name) != 0) continue;
        if (!insert_rule(c, PRIMS[i].name, PRIMS[i].body)) return NULL;
        char dep[32];
        for (const char *d = PRIMS[i].deps; *d;) {
            size_t n = strcspn(d, " ");
            snprintf(dep, sizeof dep, "%.*s", (int)n, d);
            if (!prim(c, dep)) return NULL;
            d += n;
            while (*d == ' ') d++;
        }
        return PRIMS[i].name;
    }
    return cfail(c, SM_ERR_UNSUPPORTED, "internal: no fixed rule '%s'", name);
}

/* A rule name from a path of names: runs of other characters become '-',
 * long names are cut, names of fixed rules get a '-' appended. */
static void sanitize(char *out, size_t cap, const char *name) {
    size_t n = 0;
    int dash = 0;
    for (const char *s = name; *s && n + 2 < cap && n < NAME_MAX_LEN; s++) {
        char ch = *s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-') {
            out[n++] = ch;
            dash = 0;
        } else if (!dash) {
            out[n++] = '-';
            dash = 1;
        }
    }
    out[n] = '\0';
    if (n == 0) snprintf(out, cap, "empty");
    else if (is_reserved(out) && n + 2 < cap) {
        out[n] = '-';
        out[n + 1] = '\0';
    }
}

static void child_name(char *out, size_t cap, const char *parent, const char *suffix) {
    if (!parent || !*parent) snprintf(out, cap, "%s", suffix);
    else snprintf(out, cap, "%.*s-%s", NAME_MAX_LEN, parent, suffix);
}

/* Adds the rule for a visited schema: name NULL is the root. */
static const char *finish(conv *c, const char *name, sm_sbuf *body) {
    if (body->oom) {
        sm_sb_free(body);
        return oom(c);
    }
    char rn[NAME_MAX_LEN + 8];
    if (name) sanitize(rn, sizeof rn, name);
    else snprintf(rn, sizeof rn, "root");
    const char *r = add_rule(c, rn, body->p ? body->p : "");
    sm_sb_free(body);
    return r;
}

static const char *alias(conv *c, const char *name, const char *target) {
    sm_sbuf b = {0};
    sm_sb_add(&b, target);
    return finish(c, name, &b);
}

/* ---------------------------------------------------------- JSON values */

static void dump_string(sm_sbuf *b, const char *s, size_t n) {
    sm_sb_add(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"': sm_sb_add(b, "\\\""); break;
        case '\\': sm_sb_add(b, "\\\\"); break;
        case '\n': sm_sb_add(b, "\\n"); break;
        case '\r': sm_sb_add(b, "\\r"); break;
        case '\t': sm_sb_add(b, "\\t"); break;
        case '\b': sm_sb_add(b, "\\b"); break;
        case '\f': sm_sb_add(b, "\\f"); break;
        default:
            if (ch < 0x20) sm_sb_printf(b, "\\u%04x", ch);
            else sm_sb_addn(b, (const char *)&s[i], 1);
        }
    }
    sm_sb_add(b, "\"");
}

/* Compact JSON text of a value, object members in their order. */
static void dump_json(sm_sbuf *b, const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        int first = 1;
        sm_sb_add(b, "{");
        json_object_foreach((json_t *)v, k, x) {
            if (!first) sm_sb_add(b, ",");
            first = 0;
            dump_string(b, k, strlen(k));
            sm_sb_add(b, ":");
            dump_json(b, x);
        }
        sm_sb_add(b, "}");
        break;
    }
    case JSON_ARRAY:
        sm_sb_add(b, "[");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) sm_sb_add(b, ",");
            dump_json(b, json_array_get(v, i));
        }
        sm_sb_add(b, "]");
        break;
    case JSON_STRING: dump_string(b, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: sm_sb_printf(b, "%lld", (long long)json_integer_value(v)); break;
    case JSON_REAL: {
        double d = json_real_value(v);
        char s[40];
        for (int prec = 1; prec <= 17; prec++) {   /* the shortest text that reads back the same */
            snprintf(s, sizeof s, "%.*g", prec, d);
            if (strtod(s, NULL) == d) break;
        }
        sm_sb_add(b, s);
        break;
    }
    case JSON_TRUE: sm_sb_add(b, "true"); break;
    case JSON_FALSE: sm_sb_add(b, "false"); break;
    default: sm_sb_add(b, "null"); break;
    }
}

static void literal_of(sm_sbuf *b, const json_t *v) {
    sm_sbuf t = {0};
    dump_json(&t, v);
    sm_gbnf_literal(b, t.p ? t.p : "", t.n);
    if (t.oom) b->oom = 1;
    sm_sb_free(&t);
}

static int fits_type(const json_t *v, const char *type) {
    if (!type) return 1;
    if (!strcmp(type, "string")) return json_is_string(v);
    if (!strcmp(type, "number")) return json_is_number(v);
    if (!strcmp(type, "integer"))
        return json_is_integer(v) || (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v));
    if (!strcmp(type, "boolean")) return json_is_boolean(v);
    if (!strcmp(type, "null")) return json_is_null(v);
    if (!strcmp(type, "array")) return json_is_array(v);
    return json_is_object(v);
}

/* ------------------------------------------------------------- keywords */

/* Keywords that constrain values in ways a grammar cannot express. */
static const char *const UNSUPPORTED[] = {
    "not", "if", "then", "else", "dependentSchemas", "dependentRequired", "dependencies", "patternProperties",
    "propertyNames", "unevaluatedProperties", "unevaluatedItems", "contains", "minContains", "maxContains",
    "multipleOf", "minProperties", "maxProperties", "$dynamicRef", "$dynamicAnchor", "$recursiveRef",
    "$recursiveAnchor", NULL};
/* Keywords we read. The rest (title, description, examples, default,
 * $schema, $id, $comment, ...) are annotations or unknown: ignored. */
static const char *const HANDLED[] = {
    "type", "enum", "const", "properties", "required", "additionalProperties", "items", "prefixItems",
    "additionalItems", "minItems", "maxItems", "anyOf", "oneOf", "allOf", "$ref", "minLength", "maxLength",
    "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "uniqueItems", NULL};

static int in_list(const char *const *list, const char *k) {
    for (; *list; list++)
        if (!strcmp(*list, k)) return 1;
    return 0;
}

/* The first handled keyword of s not in `allowed` (space-separated), or
 * NULL. */
static const char *other_keyword(const json_t *s, const char *allowed) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if (!in_list(HANDLED, k)) continue;
        size_t n = strlen(k);
        const char *a = allowed;
        int ok = 0;
        while (*a) {
            size_t m = strcspn(a, " ");
            if (m == n && !strncmp(a, k, n)) ok = 1;
            a += m;
            while (*a == ' ') a++;
        }
        if (!ok) return k;
    }
    return NULL;
}

static int has_constraints(const json_t *s) { return other_keyword(s, "") != NULL; }

/* A non-negative integer keyword (default def). -1 after a failure. */
static long long count_keyword(conv *c, const json_t *s, const char *key, long long def) {
    const json_t *v = json_object_get(s, key);
    if (!v) return def;
    double d = json_number_value(v);
    if (!json_is_number(v) || d < 0 || floor(d) != d) {
        cfail(c, SM_ERR_FORMAT, "'%s' must be a non-negative integer", key);
        return -1;
    }
    if (d > MAX_BOUND) {
        cfail(c, SM_ERR_UNSUPPORTED, "'%s' of %.0f is above the supported %d", key, d, MAX_BOUND);
        return -1;
    }
    return (long long)d;
}

/* " {m,n}" style repetition of item (max < 0: unbounded). */
static void repetition(sm_sbuf *b, const char *item, long long min, long long max) {
    sm_sb_add(b, item);
    if (max < 0) {
        if (min == 0) sm_sb_add(b, "*");
        else if (min == 1) sm_sb_add(b, "+");
        else sm_sb_printf(b, "{%lld,}", min);
    } else if (min == 0 && max == 1) {
        sm_sb_add(b, "?");
    } else if (min == max) {
        if (min != 1) sm_sb_printf(b, "{%lld}", min);
    } else {
        sm_sb_printf(b, "{%lld,%lld}", min, max);
    }
}

/* n items separated by ",": min <= n <= max (max < 0: unbounded). */
static void separated(sm_sbuf *b, const char *item, long long min, long long max) {
    if (max == 0) return;
    if (min == 0) sm_sb_add(b, "(");
    sm_sb_add(b, item);
    if (max != 1) {
        char rep[NAME_MAX_LEN * 2 + 40];
        snprintf(rep, sizeof rep, "(\",\" space %s)", item);
        sm_sb_add(b, " ");
        repetition(b, rep, min > 0 ? min - 1 : 0, max < 0 ? -1 : max - 1);
    }
    if (min == 0) sm_sb_add(b, ")?");
}

/* ------------------------------------------------------------ the visit */

static const char *visit(conv *c, const json_t *s, const char *name);

static const char *visit_child(conv *c, const json_t *s, const char *name, const char *suffix, const char *seg1,
                               const char *seg2) {
    char cn[NAME_MAX_LEN * 2 + 16];
    child_name(cn, sizeof cn, name, suffix);
    size_t mark = path_push(c, seg1);
    if (seg2) path_push(c, seg2);
    const char *r = visit(c, s, cn);
    if (r) path_pop(c, mark);
    return r;
}

static const json_t *lookup_ref(conv *c, const char *ref, char *last, size_t last_cap);

/* Resolves a local $ref to the name of its rule (visiting its target the
 * first time; a reference met again while its target is being visited -
 * recursion - gets the reserved name). */
static const char *resolve_ref(conv *c, const char *ref) {
    for (size_t i = 0; i < c->n_refs; i++)
        if (!strcmp(c->refs[i].ref, ref)) return c->refs[i].name;
    char last[256];
    const json_t *target = lookup_ref(c, ref, last, sizeof last);
    if (!target) return NULL;
    char rn[NAME_MAX_LEN + 8];
    sanitize(rn, sizeof rn, last[0] ? last : "root-ref");
    const char *reserved = add_rule(c, rn, NULL);
    if (!reserved) return NULL;
    if (c->n_refs == c->cap_refs) {
        size_t cap = c->cap_refs ? 2 * c->cap_refs : 16;
        ref_entry *r = sm_alloc(cap * sizeof *r);
        if (!r) return oom(c);
        if (c->refs) memcpy(r, c->refs, c->n_refs * sizeof *r);
        sm_free(c->refs);
        c->refs = r;
        c->cap_refs = cap;
    }
    char *rcopy = dup_str(ref);
    if (!rcopy) return oom(c);
    c->refs[c->n_refs].ref = rcopy;
    c->refs[c->n_refs].name = (char *)reserved;
    c->n_refs++;
    /* The target is visited with its own path, for messages. */
    char saved[sizeof c->path];
    memcpy(saved, c->path, sizeof saved);
    snprintf(c->path, sizeof c->path, "%s", ref + 1);
    const char *body = visit(c, target, rn);
    if (!body) return NULL;
    memcpy(c->path, saved, sizeof saved);
    size_t at = find_rule(c, reserved);
    c->rules[at].body = dup_str(body);
    if (!c->rules[at].body) return oom(c);
    c->total += strlen(body) + strlen(reserved) + 6;
    return reserved;
}

/* "required" as a list of names; NULL after a failure. */
static int check_required(conv *c, const json_t *s, const json_t *props) {
    const json_t *req = json_object_get(s, "required");
    if (!req) return 1;
    if (!json_is_array(req)) return !!cfail(c, SM_ERR_FORMAT, "'required' must be an array of strings");
    for (size_t i = 0; i < json_array_size(req); i++) {
        const json_t *r = json_array_get(req, i);
        if (!json_is_string(r)) return !!cfail(c, SM_ERR_FORMAT, "'required' must be an array of strings");
        if (!props || !json_object_get(props, json_string_value(r)))
            return !!cfail(c, SM_ERR_UNSUPPORTED,
                           "required property '%s' is not in 'properties' (its value would be unconstrained)",
                           json_string_value(r));
    }
    return 1;
}

static int is_required(const json_t *s, const char *key) {
    const json_t *req = json_object_get(s, "required");
    for (size_t i = 0; i < json_array_size(req); i++)
        if (!strcmp(json_string_value(json_array_get(req, i)), key)) return 1;
    return 0;
}

/* A trie of property names (by code point), for "any key but these". */
#define NO_CHILD 0xFFFFFFFFu
typedef struct key_trie {
    uint32_t *cp, *first_child, *next_sibling;
    uint8_t *end;
    size_t n, cap;
    int oom;
} key_trie;

static uint32_t trie_node(key_trie *t, uint32_t cp) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        uint32_t *a = sm_alloc(cap * sizeof *a), *b = sm_alloc(cap * sizeof *b), *d = sm_alloc(cap * sizeof *d);
        uint8_t *e = sm_alloc(cap);
        if (!a || !b || !d || !e) {
            sm_free(a); sm_free(b); sm_free(d); sm_free(e);
            t->oom = 1;
            return NO_CHILD;
        }
        if (t->n) {
            memcpy(a, t->cp, t->n * sizeof *a);
            memcpy(b, t->first_child, t->n * sizeof *b);
            memcpy(d, t->next_sibling, t->n * sizeof *d);
            memcpy(e, t->end, t->n);
        }
        sm_free(t->cp); sm_free(t->first_child); sm_free(t->next_sibling); sm_free(t->end);
        t->cp = a; t->first_child = b; t->next_sibling = d; t->end = e;
        t->cap = cap;
    }
    uint32_t x = (uint32_t)t->n++;
    t->cp[x] = cp;
    t->first_child[x] = t->next_sibling[x] = NO_CHILD;
    t->end[x] = 0;
    return x;
}

/* The child of node for cp, made if new (children kept in order). */
static uint32_t trie_child(key_trie *t, uint32_t node, uint32_t cp) {
    uint32_t prev = NO_CHILD, ch = t->first_child[node];
    for (; ch != NO_CHILD && t->cp[ch] < cp; ch = t->next_sibling[ch]) prev = ch;
    if (ch != NO_CHILD && t->cp[ch] == cp) return ch;
    uint32_t x = trie_node(t, cp);
    if (x == NO_CHILD) return x;
    t->next_sibling[x] = ch;
    if (prev == NO_CHILD) t->first_child[node] = x;
    else t->next_sibling[prev] = x;
    return x;
}

static void trie_free(key_trie *t) {
    sm_free(t->cp);
    sm_free(t->first_child);
    sm_free(t->next_sibling);
    sm_free(t->end);
}

/* GBNF for the string contents after the trie node's prefix that do not
 * complete a name: stop here (if this is not a name), continue into a
 * child, or leave the trie with any other character. */
static void not_names(conv *c, key_trie *t, uint32_t node, int depth, const char *prefix, sm_sbuf *b) {
    int alts = 0;
    sm_sb_add(b, "(");
    for (uint32_t ch = t->first_child[node]; ch != NO_CHILD; ch = t->next_sibling[ch]) {
        if (alts++) sm_sb_add(b, " | ");
        sm_sb_add(b, "[");
        sm_gbnf_class_char(b, t->cp[ch]);
        sm_sb_add(b, "]");
        if (t->first_child[ch] == NO_CHILD) {
            sm_sb_add(b, t->end[ch] ? " char+" : " char*");
            continue;
        }
        sm_sb_add(b, " ");
        if ((depth + 1) % 16 == 0) {
            /* Deep names: continue in a rule of its own (bounded nesting). */
            sm_sbuf sub = {0};
            not_names(c, t, ch, depth + 1, prefix, &sub);
            char rn[NAME_MAX_LEN + 16];
            child_name(rn, sizeof rn, prefix, "k");
            char safe[NAME_MAX_LEN + 24];
            sanitize(safe, sizeof safe, rn);
            const char *r = add_rule(c, safe, sub.p ? sub.p : "");
            sm_sb_free(&sub);
            sm_sb_add(b, r ? r : "char*");
        } else {
            not_names(c, t, ch, depth + 1, prefix, b);
        }
    }
    if (alts) sm_sb_add(b, " | ");
    sm_sb_add(b, "[^\"\\\\\\x00-\\x1F");
    for (uint32_t ch = t->first_child[node]; ch != NO_CHILD; ch = t->next_sibling[ch])
        sm_gbnf_class_char(b, t->cp[ch]);
    sm_sb_add(b, "] char* | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4}) char*)");
    if (!t->end[node]) sm_sb_add(b, "?");
}

/* The key rule of additional properties: any JSON string but the names. */
static const char *other_keys(conv *c, const json_t *props, const char *name) {
    key_trie t = {0};
    char rn[NAME_MAX_LEN * 2 + 16];
    child_name(rn, sizeof rn, name, "additional-k");
    if (!prim(c, "char")) return NULL;
    trie_node(&t, 0);   /* the root */
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)props, k, v) {
        for (const char *q = k; *q; q++)
            if ((unsigned char)*q < 0x20 || *q == '"' || *q == '\\') {
                trie_free(&t);
                return cfail(c, SM_ERR_UNSUPPORTED,
                             "additionalProperties beside a property name that JSON escapes ('%s') is not supported", k);
            }
        uint32_t node = 0;
        size_t n = strlen(k);
        for (size_t i = 0; i < n && !t.oom;) {
            uint32_t cp;
            i += sm_utf8_next(k + i, n - i, &cp);
            node = trie_child(&t, node, cp);
        }
        if (!t.oom) t.end[node] = 1;
    }
    sm_sbuf b = {0};
    if (!t.oom) {
        sm_sb_add(&b, "\"\\\"\" ");
        not_names(c, &t, 0, 0, name, &b);
        sm_sb_add(&b, " \"\\\"\" space");
    }
    int failed = t.oom;
    trie_free(&t);
    if (failed) {
        sm_sb_free(&b);
        return oom(c);
    }
    return finish(c, rn, &b);
}

/* An object with the given properties (in order: required ones first, then
 * any subset of the optional ones, then - when additional is true or a
 * schema - other keys), as llama.cpp orders them. props may be NULL;
 * additional NULL means no other keys. */
static const char *object_rule(conv *c, const json_t *s, const json_t *props, const json_t *additional,
                               const char *name) {
    size_t n = props ? json_object_size(props) : 0;
    const char **kv = sm_calloc(n + 2, sizeof *kv), **keys = sm_calloc(n + 2, sizeof *keys);
    const char **rest = sm_calloc(n + 3, sizeof *rest);
    size_t *opt = sm_calloc(n + 2, sizeof *opt);
    if (!kv || !keys || !rest || !opt) {
        sm_free(kv); sm_free(keys); sm_free(rest); sm_free(opt);
        return oom(c);
    }
    char cn[NAME_MAX_LEN * 2 + 16], rn[NAME_MAX_LEN * 2 + 24];
    sm_sbuf b = {0};
    sm_sb_add(&b, "\"{\" space ");
    size_t m = 0, n_req = 0, n_opt = 0;
    const char *k;
    json_t *v;
    if (props) json_object_foreach((json_t *)props, k, v) {
        const char *val = visit_child(c, v, name, k, "properties", k);
        if (!val) break;
        sm_sbuf kb = {0}, key = {0};
        dump_string(&key, k, strlen(k));
        sm_gbnf_literal(&kb, key.p, key.n);
        sm_sb_free(&key);
        sm_sb_printf(&kb, " space \":\" space %s", val);
        child_name(cn, sizeof cn, name, k);
        snprintf(rn, sizeof rn, "%.*s-kv", NAME_MAX_LEN, cn);
        keys[m] = k;
        kv[m] = finish(c, rn, &kb);
        if (!kv[m]) break;
        if (is_required(s, k)) {
            if (n_req++) sm_sb_add(&b, " \",\" space ");
            sm_sb_add(&b, kv[m]);
        } else {
            opt[n_opt++] = m;
        }
        m++;
    }
    int has_additional = additional && (json_is_true(additional) || json_is_object(additional));
    if (!c->failed && has_additional) {
        const char *val = json_is_object(additional)
                              ? visit_child(c, additional, name, "additional-value", "additionalProperties", NULL)
                              : prim(c, "value");
        const char *key = !val ? NULL : n ? other_keys(c, props, name) : prim(c, "string");
        if (key) {
            sm_sbuf kb = {0};
            sm_sb_printf(&kb, "%s \":\" space %s", key, val);
            child_name(cn, sizeof cn, name, "additional-kv");
            keys[m] = "additional";
            kv[m] = finish(c, cn, &kb);
            if (kv[m]) opt[n_opt++] = m++;
        }
    }
    /* rest[j]: what may follow when optional member j-1 came last: any
     * subset of the optional members from j on, in order, each after a
     * comma; the additional members (last) repeat. Made back to front. */
    for (size_t j = n_opt; !c->failed && j-- > 1;) {
        sm_sbuf r = {0};
        size_t i = opt[j];
        int add = has_additional && j == n_opt - 1;
        sm_sb_printf(&r, "( \",\" space %s )%s", kv[i], add ? "*" : "?");
        if (rest[j + 1]) sm_sb_printf(&r, " %s", rest[j + 1]);
        child_name(cn, sizeof cn, name, keys[i]);
        snprintf(rn, sizeof rn, "%.*s-rest", NAME_MAX_LEN, cn);
        rest[j] = finish(c, rn, &r);
    }
    if (!c->failed && n_opt) {
        sm_sb_add(&b, n_req ? " ( \",\" space ( " : " ( ");
        for (size_t j = 0; j < n_opt; j++) {
            size_t i = opt[j];
            if (j) sm_sb_add(&b, " | ");
            sm_sb_add(&b, kv[i]);
            if (has_additional && j == n_opt - 1) sm_sb_printf(&b, " ( \",\" space %s )*", kv[i]);
            else if (rest[j + 1]) sm_sb_printf(&b, " %s", rest[j + 1]);
        }
        sm_sb_add(&b, n_req ? " ) )?" : " )?");
    }
    sm_sb_add(&b, " \"}\" space");
    const char *result = c->failed ? NULL : finish(c, name, &b);
    if (c->failed) sm_sb_free(&b);
    sm_free(kv);
    sm_free(keys);
    sm_free(rest);
    sm_free(opt);
    return result;
}

/* Follows a local JSON pointer reference ("#/$defs/x"); NULL (with a
 * message) when it is not local or points nowhere. *last receives the last
 * token (for the rule name). */
static const json_t *lookup_ref(conv *c, const char *ref, char *last, size_t last_cap) {
    if (last_cap) last[0] = '\0';
    if (ref[0] != '#') {
        cfail(c, SM_ERR_UNSUPPORTED, "only local $ref (starting with '#') are supported, not '%s'", ref);
        return NULL;
    }
    const json_t *target = c->root;
    const char *p = ref + 1;
    if (*p && *p != '/') {
        cfail(c, SM_ERR_UNSUPPORTED, "$ref '%s' is not a JSON pointer ('#/...')", ref);
        return NULL;
    }
    char token[256];
    while (*p == '/') {
        p++;
        size_t n = 0;
        for (; *p && *p != '/'; p++) {
            char ch = *p;
            if (*p == '~' && (p[1] == '0' || p[1] == '1')) {
                ch = p[1] == '0' ? '~' : '/';
                p++;
            } else if (*p == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
                char hex[3] = {p[1], p[2], 0};
                ch = (char)strtol(hex, NULL, 16);
                p += 2;
            }
            if (n + 1 < sizeof token) token[n++] = ch;
        }
        token[n] = '\0';
        if (json_is_object(target)) target = json_object_get(target, token);
        else if (json_is_array(target) && n > 0 && strspn(token, "0123456789") == n)
            target = json_array_get(target, strtoul(token, NULL, 10));
        else target = NULL;
        if (!target) {
            cfail(c, SM_ERR_FORMAT, "$ref '%s' points to nothing", ref);
            return NULL;
        }
        snprintf(last, last_cap, "%s", token);
    }
    return target;
}

static const char *allof_rule(conv *c, const json_t *s, const char *name) {
    const json_t *all = json_object_get(s, "allOf");
    if (!json_is_array(all) || !json_array_size(all))
        return cfail(c, SM_ERR_FORMAT, "'allOf' must be a non-empty array of schemas");
    json_t *props = json_object(), *req = json_array(), *merged = json_object();
    if (!props || !req || !merged) {
        json_decref(props); json_decref(req); json_decref(merged);
        return oom(c);
    }
    /* As llama.cpp: the properties of every component are merged; those of
     * the allOf's direct components are required, those of the
     * alternatives of an anyOf inside it optional. */
    for (size_t i = 0; i < json_array_size(all) && !c->failed; i++) {
        const json_t *t = json_array_get(all, i), *alts = json_object_get(t, "anyOf");
        size_t n_alts = json_is_array(alts) ? json_array_size(alts) : 1;
        for (size_t j = 0; j < n_alts && !c->failed; j++) {
            const json_t *comp = json_is_array(alts) ? json_array_get(alts, j) : t;
            int required = !json_is_array(alts);
            char last[256];
            for (int hops = 0; json_is_object(comp) && json_is_string(json_object_get(comp, "$ref")) && hops < 32; hops++)
                comp = lookup_ref(c, json_string_value(json_object_get(comp, "$ref")), last, sizeof last);
            if (c->failed) break;
            const char *other = json_is_object(comp) ? other_keyword(comp, "properties required type additionalProperties")
                                                     : "(not an object)";
            const json_t *ty = json_object_get(comp, "type");
            if (other || (ty && !(json_is_string(ty) && !strcmp(json_string_value(ty), "object")))) {
                cfail(c, SM_ERR_UNSUPPORTED, "allOf is supported for combining object properties only (found '%s')",
                      other ? other : "type");
                break;
            }
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(comp, "properties"), k, v) {
                if (json_object_get(props, k)) continue;
                json_object_set(props, k, v);
                if (required) json_array_append_new(req, json_string(k));
            }
        }
    }
    const char *r = NULL;
    if (!c->failed) {
        json_object_set(merged, "properties", props);
        json_object_set(merged, "required", req);
        r = object_rule(c, merged, props, NULL, name);
    }
    json_decref(props);
    json_decref(req);
    json_decref(merged);
    return r;
}

static const char *array_rule(conv *c, const json_t *s, const char *name) {
    const json_t *items = json_object_get(s, "items"), *prefix = json_object_get(s, "prefixItems");
    long long min = count_keyword(c, s, "minItems", 0), max = count_keyword(c, s, "maxItems", -1);
    if (c->failed) return NULL;
    if (max >= 0 && max < min) return cfail(c, SM_ERR_FORMAT, "maxItems is below minItems");
    const json_t *tuple = NULL, *extra = NULL;
    if (json_is_array(prefix)) {
        tuple = prefix;
        extra = items;
    } else if (json_is_array(items)) {
        tuple = items;   /* the draft-07 tuple form */
        extra = json_object_get(s, "additionalItems");
    } else {
        extra = items ? items : prefix;   /* llama.cpp also takes a schema as prefixItems */
        if (!extra) extra = json_true();
    }
    if (extra && !json_is_object(extra) && !json_is_boolean(extra))
        return cfail(c, SM_ERR_FORMAT, "'items' must be a schema or an array of schemas");
    if (json_is_false(extra)) extra = NULL;
    size_t k = tuple ? json_array_size(tuple) : 0;
    if (!extra && (long long)k < min)
        return cfail(c, SM_ERR_UNSUPPORTED, "minItems is above the %zu tuple items and no others are allowed", k);
    if (max >= 0 && (long long)k > max)
        return cfail(c, SM_ERR_UNSUPPORTED, "maxItems below the number of tuple items is not supported");
    if (!prim(c, "space")) return NULL;
    sm_sbuf b = {0};
    sm_sb_add(&b, "\"[\" space");
    for (size_t i = 0; i < k; i++) {
        char suffix[32], seg[32];
        snprintf(suffix, sizeof suffix, "tuple-%zu", i);
        snprintf(seg, sizeof seg, "%zu", i);
        const char *kw = tuple == prefix ? "prefixItems" : "items";
        const char *r = visit_child(c, json_array_get(tuple, i), name, suffix, kw, seg);
        if (!r) {
            sm_sb_free(&b);
            return NULL;
        }
        sm_sb_printf(&b, "%s %s", i ? " \",\" space" : "", r);
    }
    if (extra) {
        const char *kw = items == extra ? "items" : "prefixItems";
        const char *item = json_is_true(extra) ? prim(c, "value") : visit_child(c, extra, name, "item", kw, NULL);
        if (!item) {
            sm_sb_free(&b);
            return NULL;
        }
        long long a = min > (long long)k ? min - (long long)k : 0, z = max < 0 ? -1 : max - (long long)k;
        sm_sb_add(&b, " ");
        if (k == 0) {
            separated(&b, item, a, z);
        } else if (z != 0) {
            char rep[NAME_MAX_LEN * 2 + 40];
            snprintf(rep, sizeof rep, "(\",\" space %s)", item);
            repetition(&b, rep, a, z);
        }
    }
    sm_sb_add(&b, " \"]\" space");
    return finish(c, name, &b);
}

/* A string format we enforce: date, time, date-time, uuid (uuid1..uuid5
 * as llama.cpp accepts). */
static int known_format(const json_t *s) {
    const char *fmt = json_string_value(json_object_get(s, "format"));
    return fmt && (!strcmp(fmt, "date") || !strcmp(fmt, "time") || !strcmp(fmt, "date-time") ||
                   (!strncmp(fmt, "uuid", 4) && (!fmt[4] || (fmt[4] >= '1' && fmt[4] <= '5' && !fmt[5]))));
}

static const char *string_rule(conv *c, const json_t *s, const char *name) {
    const json_t *pattern = json_object_get(s, "pattern"), *format = json_object_get(s, "format");
    const char *fmt = json_is_string(format) ? json_string_value(format) : NULL;
    int lengths = json_object_get(s, "minLength") || json_object_get(s, "maxLength");
    if (format && !fmt) return cfail(c, SM_ERR_FORMAT, "'format' must be a string");
    int known = known_format(s);
    if (pattern) {
        if (!json_is_string(pattern)) return cfail(c, SM_ERR_FORMAT, "'pattern' must be a string");
        if (lengths || known)
            return cfail(c, SM_ERR_UNSUPPORTED, "'pattern' together with minLength, maxLength or format is not supported");
        if (!prim(c, "char") || !prim(c, "space")) return NULL;
        sm_sbuf b = {0};
        char msg[256];
        sm_sb_add(&b, "\"\\\"\" ");
        if (!sm_schema_pattern(&b, json_string_value(pattern), json_string_length(pattern), "char", msg, sizeof msg)) {
            sm_sb_free(&b);
            return cfail(c, SM_ERR_UNSUPPORTED, "%s", msg);
        }
        sm_sb_add(&b, " \"\\\"\" space");
        return finish(c, name, &b);
    }
    if (known) {
        if (lengths)
            return cfail(c, SM_ERR_UNSUPPORTED, "format '%s' together with minLength/maxLength is not supported", fmt);
        char pn[32];
        if (!strncmp(fmt, "uuid", 4)) snprintf(pn, sizeof pn, "uuid");
        else snprintf(pn, sizeof pn, "%s-string", fmt);
        const char *r = prim(c, pn);
        return r ? alias(c, name, r) : NULL;
    }
    if (fmt) warn(c, "format '%s' is not enforced", fmt);
    if (!lengths) {
        const char *r = prim(c, "string");
        return r ? alias(c, name, r) : NULL;
    }
    long long min = count_keyword(c, s, "minLength", 0), max = count_keyword(c, s, "maxLength", -1);
    if (c->failed) return NULL;
    if (max >= 0 && max < min) return cfail(c, SM_ERR_FORMAT, "maxLength is below minLength");
    if (!prim(c, "char") || !prim(c, "space")) return NULL;
    sm_sbuf b = {0};
    sm_sb_add(&b, "\"\\\"\" ");
    repetition(&b, "char", min, max);
    sm_sb_add(&b, " \"\\\"\" space");
    return finish(c, name, &b);
}

/* One side of a numeric range: kw ("minimum") and its exclusive keyword,
 * either a number (draft 6+) or a boolean modifying kw (draft 4). The
 * stricter of the two wins. */
static int bound(conv *c, const json_t *s, const char *kw, const char *kw_excl, int is_min, int *has, double *val,
                 int *excl) {
    const json_t *v = json_object_get(s, kw), *e = json_object_get(s, kw_excl);
    *has = *excl = 0;
    if (v && !json_is_number(v)) return !!cfail(c, SM_ERR_FORMAT, "'%s' must be a number", kw);
    if (e && !json_is_number(e) && !json_is_boolean(e)) return !!cfail(c, SM_ERR_FORMAT, "'%s' must be a number", kw_excl);
    if (v) {
        *has = 1;
        *val = json_number_value(v);
        *excl = json_is_true(e);
    }
    if (json_is_number(e)) {
        double x = json_number_value(e);
        if (!*has || (is_min ? x >= *val : x <= *val)) {
            *has = 1;
            *val = x;
            *excl = 1;
        }
    }
    return 1;
}

static const char *numeric_rule(conv *c, const json_t *s, const char *name, int integer) {
    int has_lo, has_hi, lo_excl, hi_excl;
    double lo = 0, hi = 0;
    if (!bound(c, s, "minimum", "exclusiveMinimum", 1, &has_lo, &lo, &lo_excl) ||
        !bound(c, s, "maximum", "exclusiveMaximum", 0, &has_hi, &hi, &hi_excl))
        return NULL;
    const double limit = (double)SM_SCHEMA_INT_LIMIT;
    if (!prim(c, "space")) return NULL;
    sm_sbuf b = {0};
    if (integer) {
        double a = has_lo ? (lo_excl ? floor(lo) + 1 : ceil(lo)) : -limit;
        double z = has_hi ? (hi_excl ? ceil(hi) - 1 : floor(hi)) : limit;
        if (a < -limit) a = -limit;
        if (z > limit) z = limit;
        if (a > z) return cfail(c, SM_ERR_UNSUPPORTED, "no integer of at most 16 digits satisfies the bounds");
        sm_schema_int_range(&b, (int64_t)a, (int64_t)z);
    } else {
        if ((has_lo && (floor(lo) != lo || fabs(lo) > limit)) || (has_hi && (floor(hi) != hi || fabs(hi) > limit)))
            return cfail(c, SM_ERR_UNSUPPORTED, "bounds on numbers must be integers of at most 16 digits");
        if (!sm_schema_number_range(&b, has_lo, (int64_t)lo, lo_excl, has_hi, (int64_t)hi, hi_excl)) {
            sm_sb_free(&b);
            return cfail(c, SM_ERR_UNSUPPORTED, "no number satisfies the bounds");
        }
    }
    sm_sb_add(&b, " space");
    return finish(c, name, &b);
}

static const char *union_of(conv *c, const char **names, size_t n, const char *name) {
    sm_sbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (i) sm_sb_add(&b, " | ");
        sm_sb_add(&b, names[i]);
    }
    return finish(c, name, &b);
}

static const char *const TYPES[] = {"string", "number", "integer", "boolean", "null", "array", "object", NULL};

static const char *check_type_name(conv *c, const json_t *t) {
    if (!json_is_string(t)) {
        cfail(c, SM_ERR_FORMAT, "'type' must be a string or an array of strings");
        return NULL;
    }
    if (!in_list(TYPES, json_string_value(t))) {
        cfail(c, SM_ERR_UNSUPPORTED, "unknown type '%s'", json_string_value(t));
        return NULL;
    }
    return json_string_value(t);
}

static const char *visit_object(conv *c, const json_t *s, const char *name) {
    const json_t *type = json_object_get(s, "type"), *v;
    const char *t = NULL;
    if (type && !json_is_array(type) && !(t = check_type_name(c, type))) return NULL;
    int maybe_object = !t || !strcmp(t, "object"), maybe_array = !t || !strcmp(t, "array");
    int maybe_string = !t || !strcmp(t, "string");

    if ((v = json_object_get(s, "$ref"))) {
        if (!json_is_string(v)) return cfail(c, SM_ERR_FORMAT, "'$ref' must be a string");
        const char *other = other_keyword(s, "$ref");
        if (other) return cfail(c, SM_ERR_UNSUPPORTED, "'%s' beside $ref is not supported", other);
        const char *r = resolve_ref(c, json_string_value(v));
        return r ? alias(c, name, r) : NULL;
    }
    const json_t *any = json_object_get(s, "anyOf"), *one = json_object_get(s, "oneOf");
    if (any || one) {
        if (any && one) return cfail(c, SM_ERR_UNSUPPORTED, "anyOf together with oneOf is not supported");
        const char *kw = any ? "anyOf" : "oneOf";
        const json_t *alts = any ? any : one;
        if (!json_is_array(alts) || !json_array_size(alts))
            return cfail(c, SM_ERR_FORMAT, "'%s' must be a non-empty array of schemas", kw);
        const char *other = other_keyword(s, "anyOf oneOf type");
        if (other) return cfail(c, SM_ERR_UNSUPPORTED, "'%s' beside %s is not supported", other, kw);
        if (one) warn(c, "oneOf is treated as anyOf (a value matching several alternatives is not excluded)");
        size_t n = json_array_size(alts);
        const char **names = sm_calloc(n, sizeof *names);
        if (!names) return oom(c);
        for (size_t i = 0; i < n && !c->failed; i++) {
            char suffix[48], seg[24];
            snprintf(suffix, sizeof suffix, name ? "%zu" : "alternative-%zu", i);
            snprintf(seg, sizeof seg, "%zu", i);
            names[i] = visit_child(c, json_array_get(alts, i), name, suffix, kw, seg);
        }
        const char *r = c->failed ? NULL : union_of(c, names, n, name);
        sm_free(names);
        return r;
    }
    if (json_is_array(type)) {
        size_t n = json_array_size(type);
        if (!n) return cfail(c, SM_ERR_FORMAT, "'type' is an empty array");
        const char **names = sm_calloc(n, sizeof *names);
        if (!names) return oom(c);
        for (size_t i = 0; i < n && !c->failed; i++) {
            const char *tn = check_type_name(c, json_array_get(type, i));
            json_t *copy = tn ? json_copy((json_t *)s) : NULL;
            if (tn && (!copy || json_object_set_new(copy, "type", json_string(tn)) != 0)) {
                json_decref(copy);
                oom(c);
                break;
            }
            if (!tn) break;
            char cn[NAME_MAX_LEN * 2 + 16];
            child_name(cn, sizeof cn, name, tn);
            names[i] = visit(c, copy, cn);
            json_decref(copy);
        }
        const char *r = c->failed ? NULL : union_of(c, names, n, name);
        sm_free(names);
        return r;
    }
    if ((v = json_object_get(s, "const"))) {
        if (!fits_type(v, t)) return cfail(c, SM_ERR_FORMAT, "'const' is not of type '%s'", t);
        if (!prim(c, "space")) return NULL;
        sm_sbuf b = {0};
        literal_of(&b, v);
        sm_sb_add(&b, " space");
        return finish(c, name, &b);
    }
    if ((v = json_object_get(s, "enum"))) {
        if (!json_is_array(v)) return cfail(c, SM_ERR_FORMAT, "'enum' must be an array");
        if (!prim(c, "space")) return NULL;
        sm_sbuf b = {0};
        int n = 0;
        sm_sb_add(&b, "(");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (!fits_type(json_array_get(v, i), t)) continue;
            if (n++) sm_sb_add(&b, " | ");
            literal_of(&b, json_array_get(v, i));
        }
        sm_sb_add(&b, ") space");
        if (!n) {
            sm_sb_free(&b);
            return cfail(c, SM_ERR_UNSUPPORTED, "'enum' has no value%s%s", t ? " of type " : "", t ? t : "");
        }
        return finish(c, name, &b);
    }
    const json_t *props = json_object_get(s, "properties"), *addl = json_object_get(s, "additionalProperties");
    if (maybe_object && (props || (addl && !json_is_true(addl)))) {
        if (json_object_get(s, "allOf")) return cfail(c, SM_ERR_UNSUPPORTED, "allOf beside properties is not supported");
        if (props && !json_is_object(props)) return cfail(c, SM_ERR_FORMAT, "'properties' must be an object");
        if (addl && !json_is_object(addl) && !json_is_boolean(addl))
            return cfail(c, SM_ERR_FORMAT, "'additionalProperties' must be a schema or a boolean");
        if (!check_required(c, s, props) || !prim(c, "space")) return NULL;
        return object_rule(c, s, props, addl, name);
    }
    if (maybe_object && json_object_get(s, "allOf")) {
        if (!prim(c, "space")) return NULL;
        return allof_rule(c, s, name);
    }
    if (maybe_array && (json_object_get(s, "items") || json_object_get(s, "prefixItems") ||
                        (t && (json_object_get(s, "minItems") || json_object_get(s, "maxItems")))))
        return array_rule(c, s, name);
    if (maybe_string && (json_object_get(s, "pattern") || known_format(s))) return string_rule(c, s, name);
    if (t && !strcmp(t, "string")) return string_rule(c, s, name);
    if (t && (!strcmp(t, "integer") || !strcmp(t, "number")) &&
        (json_object_get(s, "minimum") || json_object_get(s, "maximum") || json_object_get(s, "exclusiveMinimum") ||
         json_object_get(s, "exclusiveMaximum")))
        return numeric_rule(c, s, name, !strcmp(t, "integer"));
    if ((!t && !has_constraints(s)) || (t && !strcmp(t, "object"))) {
        const json_t *req = json_object_get(s, "required");
        if (json_array_size(req)) return cfail(c, SM_ERR_UNSUPPORTED, "'required' without 'properties' is not supported");
        const char *r = prim(c, "object");
        return r ? alias(c, name, r) : NULL;
    }
    if (t) {
        const char *r = prim(c, t);
        return r ? alias(c, name, r) : NULL;
    }
    return cfail(c, SM_ERR_UNSUPPORTED, "cannot tell what this schema describes: give it a 'type'");
}

static const char *visit(conv *c, const json_t *s, const char *name) {
    if (c->failed) return NULL;
    if (c->depth >= MAX_DEPTH) return cfail(c, SM_ERR_UNSUPPORTED, "schemas nested deeper than %d levels", MAX_DEPTH);
    if (json_is_true(s)) {
        const char *r = prim(c, "value");
        return r ? alias(c, name, r) : NULL;
    }
    if (json_is_false(s)) return cfail(c, SM_ERR_UNSUPPORTED, "the schema 'false' matches nothing");
    if (!json_is_object(s)) return cfail(c, SM_ERR_FORMAT, "a schema must be an object or a boolean");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if (in_list(UNSUPPORTED, k))
            return cfail(c, SM_ERR_UNSUPPORTED, "keyword '%s' is not supported (a grammar cannot enforce it)", k);
        if (!strcmp(k, "uniqueItems") && json_is_true(v)) warn(c, "uniqueItems is not enforced");
        if (!strcmp(k, "additionalItems") && !json_is_false(v))
            return cfail(c, SM_ERR_UNSUPPORTED, "keyword 'additionalItems' is supported only as false");
    }
    c->depth++;
    const char *r = visit_object(c, s, name);
    c->depth--;
    return r;
}

/* ------------------------------------------------------------ the API */

static void conv_free(conv *c) {
    for (size_t i = 0; i < c->n_rules; i++) {
        sm_free(c->rules[i].name);
        sm_free(c->rules[i].body);
    }
    sm_free(c->rules);
    sm_free(c->table);
    for (size_t i = 0; i < c->n_refs; i++) sm_free(c->refs[i].ref);
    sm_free(c->refs);
    sm_sb_free(&c->warn);
}

/* The rules as GBNF text, "root" first. */
static char *write_rules(conv *c) {
    sm_sbuf out = {0};
    size_t at = find_rule(c, "root");
    if (at == SIZE_MAX) {
        cfail(c, SM_ERR_INVALID_ARG, "the grammar has no root rule");
        return NULL;
    }
    sm_sb_printf(&out, "root ::= %s\n", c->rules[at].body);
    for (size_t i = 0; i < c->n_rules; i++)
        if (i != at) sm_sb_printf(&out, "%s ::= %s\n", c->rules[i].name, c->rules[i].body ? c->rules[i].body : "");
    if (out.oom) {
        sm_sb_free(&out);
        oom(c);
        return NULL;
    }
    return sm_sb_take(&out);
}

sm_status sm_json_schema_to_grammar(const json_t *schema, char **grammar, char *warnings, size_t warnings_cap,
                                    sm_error *err) {
    if (!schema || !grammar) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_json_schema_to_grammar: bad arguments");
    *grammar = NULL;
    if (warnings && warnings_cap) warnings[0] = '\0';
    conv c;
    memset(&c, 0, sizeof c);
    c.root = schema;
    c.err = err;
    c.status = SM_OK;
    if (visit(&c, schema, NULL)) *grammar = write_rules(&c);
    if (warnings && warnings_cap && c.warn.n) snprintf(warnings, warnings_cap, "%s", c.warn.p);
    sm_status st = *grammar ? SM_OK : c.status ? c.status : SM_ERR_NOMEM;
    conv_free(&c);
    return st;
}

/* ---------------------------------------------------- the grammar builder */

struct sm_json_grammar {
    conv c;
};

sm_json_grammar *sm_json_grammar_new(sm_error *err) {
    sm_json_grammar *g = sm_calloc(1, sizeof *g);
    if (!g) {
        sm_fail(err, SM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    g->c.err = err;
    g->c.status = SM_OK;
    return g;
}

const char *sm_json_grammar_schema(sm_json_grammar *g, const char *name, const json_t *schema) {
    conv *c = &g->c;
    if (c->failed) return NULL;
    /* a schema's $refs point into itself: earlier schemas' are forgotten */
    for (size_t i = 0; i < c->n_refs; i++) sm_free(c->refs[i].ref);
    c->n_refs = 0;
    c->root = schema;
    c->path[0] = '\0';
    return visit(c, schema, strcmp(name, "root") ? name : NULL);   /* NULL: the root itself */
}

const char *sm_json_grammar_rule(sm_json_grammar *g, const char *name, const char *body) {
    conv *c = &g->c;
    if (c->failed) return NULL;
    /* the whitespace rule the tools' formats write between their pieces */
    if (strstr(body, "space") && !prim(c, "space")) return NULL;
    char rn[NAME_MAX_LEN + 8];
    if (!strcmp(name, "root")) snprintf(rn, sizeof rn, "root");
    else sanitize(rn, sizeof rn, name);
    return add_rule(c, rn, body);
}

sm_status sm_json_grammar_take(sm_json_grammar *g, char **text) {
    *text = NULL;
    if (!g->c.failed) *text = write_rules(&g->c);
    sm_status st = *text ? SM_OK : g->c.status ? g->c.status : SM_ERR_NOMEM;
    sm_json_grammar_free(g);
    return st;
}

void sm_json_grammar_free(sm_json_grammar *g) {
    if (!g) return;
    conv_free(&g->c);
    sm_free(g);
}

sm_status sm_json_schema_text_to_grammar(const char *text, size_t len, char **grammar, char *warnings,
                                         size_t warnings_cap, sm_error *err) {
    if (!text || !grammar) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_json_schema_text_to_grammar: bad arguments");
    *grammar = NULL;
    json_error_t je;
    json_t *schema = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!schema)
        return sm_fail(err, SM_ERR_FORMAT, "JSON schema is not valid JSON: line %d, column %d: %s", je.line, je.column,
                       je.text);
    sm_status st = sm_json_schema_to_grammar(schema, grammar, warnings, warnings_cap, err);
    json_decref(schema);
    return st;
}

void sm_json_schema_free(char *grammar) { sm_free(grammar); }

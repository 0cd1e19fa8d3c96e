/* jinja.c - runs a chat template as a Jinja program.
 *
 * Models ship their prompt format as a Jinja2 template (Hugging Face's
 * tokenizer.chat_template). This is the part of Jinja2 those templates
 * use, written from the Jinja2 documentation: {{ }}, {% if/elif/else %},
 * {% for %} (tuple targets, an `if` filter, else, loop.*, break and
 * continue), {% set %} (names, namespace attributes, blocks), {% macro %},
 * {% filter %}, {% raw %}, {% generation %}; expressions with Python's operators,
 * literals, slices, calls, filters, tests and the string, list and dict
 * methods templates call. Whitespace follows llama.cpp's minja at c392e509
 * for chat templates (trim_blocks, lstrip_blocks also before {{ }}, the
 * template's last newline dropped), so the output is what llama.cpp's
 * --jinja gives. As in minja, an undefined value counts as none.
 *
 * Parsing gives a tree, evaluation walks it. All memory (tree, values,
 * strings) comes from one arena freed at the end; errors leave through a
 * longjmp to sm_jinja_render. Depth, steps, output and memory are bounded
 * so a hostile template ends with an error, not a hang. */
#include "chat/jinja.h"
#include "core/error.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DEPTH 200                 /* nesting of blocks, expressions, macro calls */
#define MAX_STEPS 2000000ull          /* statements, loop turns, range items / 8 */
#define MAX_OUT ((size_t)64 << 20)    /* bytes of output */
#define MAX_MEM ((size_t)256 << 20)   /* bytes of arena */
#define MAX_RANGE 1000000

/* ------------------------------------------------------------- values */

typedef enum { V_UNDEF, V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_LIST, V_DICT, V_FUNC, V_MACRO } vtype;
typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct node node;

typedef struct val {
    vtype t;
    union {
        int64_t i;                            /* V_BOOL, V_INT, V_FUNC (which) */
        double f;
        struct { const char *s; size_t n; } str;
        jlist *l;
        jdict *d;
        struct { node *n; struct scope *env; } mac;   /* V_MACRO: the definition and where it was made */
    } u;
} val;

struct jlist { size_t n, cap; val *v; int tuple; };   /* a tuple prints as (a, b) */
struct jdict { size_t n, cap; val *k, *v; };

enum { F_RANGE, F_NAMESPACE, F_DICT, F_RAISE, F_STRFTIME };

/* --------------------------------------------------------------- tree */

enum {
    N_BLOCK, N_TEXT, N_OUT, N_IF, N_FOR, N_SET, N_SETATTR, N_SETBLOCK, N_FILTERBLOCK, N_MACRO, N_BREAK, N_CONTINUE,
    E_LIT, E_VAR, E_ATTR, E_INDEX, E_SLICE, E_CALL, E_FILTER, E_TEST, E_NOT, E_NEG, E_BIN, E_AND, E_OR,
    E_COND, E_LIST, E_DICT
};

struct node {
    int kind, op;
    size_t pos;                 /* byte offset in the template, for messages */
    node *a, *b, *c, *d;
    node **kids;
    size_t nkids;
    const char **names;         /* loop / set targets, macro parameters, keyword names */
    size_t nnames;
    const char *name, *name2;
    val v;
};

/* ------------------------------------------------------------- state */

typedef struct chunk { struct chunk *next; size_t cap, used; } chunk;

typedef struct scope { jdict vars; struct scope *parent; } scope;

typedef struct J J;
static void *jalloc(J *j, size_t n);

/* A scope in the arena, so a macro made in it can outlive the block. */
static scope *new_scope(J *j, scope *parent) {
    scope *s = jalloc(j, sizeof *s);
    memset(s, 0, sizeof *s);
    s->parent = parent;
    return s;
}

struct J {
    jmp_buf fail;
    sm_status status;
    char msg[256];
    const char *src;
    size_t len;
    chunk *mem;
    size_t mem_total;
    char *out;
    size_t out_n, out_cap;
    unsigned long long steps;
    int depth;
    int brk;                    /* 1 break, 2 continue pending */
    scope *globals;
    const sm_jinja_ctx *ctx;
};

static int line_of(const J *j, size_t pos) {
    int line = 1;
    for (size_t i = 0; i < pos && i < j->len; i++) line += j->src[i] == '\n';
    return line;
}

__attribute__((noreturn, format(printf, 3, 4)))
static void fail(J *j, size_t pos, const char *fmt, ...) {
    char m[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    snprintf(j->msg, sizeof j->msg, "chat template line %d: %s", line_of(j, pos), m);
    j->status = SM_ERR_FORMAT;
    longjmp(j->fail, 1);
}

__attribute__((noreturn)) static void oom(J *j) {
    snprintf(j->msg, sizeof j->msg, "out of memory while rendering the chat template");
    j->status = SM_ERR_NOMEM;
    longjmp(j->fail, 1);
}

static void *jalloc(J *j, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!j->mem || j->mem->cap - j->mem->used < n) {
        size_t cap = n > (64u << 10) ? n : (64u << 10);
        if (j->mem_total + cap > MAX_MEM) fail(j, 0, "the template needs more than %zu MiB", MAX_MEM >> 20);
        chunk *c = malloc(sizeof(chunk) + 16 + cap);
        if (!c) oom(j);
        c->next = j->mem;
        c->cap = cap;
        c->used = 0;
        j->mem = c;
        j->mem_total += cap;
    }
    char *base = (char *)(j->mem + 1);
    base += (16 - ((uintptr_t)base & 15)) & 15;
    void *p = base + j->mem->used;
    j->mem->used += n;
    return p;
}

static void step(J *j, size_t pos) {
    if (++j->steps > MAX_STEPS) fail(j, pos, "the template runs too long (more than %llu steps)", MAX_STEPS);
}

/* ------------------------------------------------------ value helpers */

static val mk_undef(void) { val v = {.t = V_UNDEF}; return v; }
static val mk_none(void) { val v = {.t = V_NONE}; return v; }
static val mk_bool(int b) { val v = {.t = V_BOOL}; v.u.i = b != 0; return v; }
static val mk_int(int64_t i) { val v = {.t = V_INT}; v.u.i = i; return v; }
static val mk_float(double f) { val v = {.t = V_FLOAT}; v.u.f = f; return v; }
static val mk_str(const char *s, size_t n) { val v = {.t = V_STR}; v.u.str.s = s; v.u.str.n = n; return v; }

static val str_copy(J *j, const char *s, size_t n) {
    char *p = jalloc(j, n + 1);
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return mk_str(p, n);
}

static val cstr(J *j, const char *s) { return str_copy(j, s, strlen(s)); }

static val mk_list(J *j, size_t cap) {
    val v = {.t = V_LIST};
    v.u.l = jalloc(j, sizeof(jlist));
    v.u.l->n = 0;
    v.u.l->tuple = 0;
    v.u.l->cap = cap ? cap : 4;
    v.u.l->v = jalloc(j, v.u.l->cap * sizeof(val));
    return v;
}

static void list_push(J *j, jlist *l, val x) {
    if (l->n == l->cap) {
        val *nv = jalloc(j, 2 * l->cap * sizeof(val));
        memcpy(nv, l->v, l->n * sizeof(val));
        l->v = nv;
        l->cap *= 2;
    }
    l->v[l->n++] = x;
}

static val mk_dict(J *j) {
    val v = {.t = V_DICT};
    v.u.d = jalloc(j, sizeof(jdict));
    memset(v.u.d, 0, sizeof(jdict));
    return v;
}

static int is_num(val v) { return v.t == V_INT || v.t == V_FLOAT || v.t == V_BOOL; }
static double num(val v) { return v.t == V_FLOAT ? v.u.f : (double)v.u.i; }
static int is_null(val v) { return v.t == V_UNDEF || v.t == V_NONE; }

static int veq(val a, val b);

static int key_eq(val k, const char *s, size_t n) { return k.t == V_STR && k.u.str.n == n && !memcmp(k.u.str.s, s, n); }

static val *dict_find(jdict *d, val key) {
    for (size_t i = 0; i < d->n; i++)
        if (veq(d->k[i], key)) return &d->v[i];
    return NULL;
}

static val *dict_find_s(jdict *d, const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < d->n; i++)
        if (key_eq(d->k[i], s, n)) return &d->v[i];
    return NULL;
}

static void dict_set(J *j, jdict *d, val key, val x) {
    val *p = dict_find(d, key);
    if (p) { *p = x; return; }
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 4;
        val *nk = jalloc(j, cap * sizeof(val)), *nv = jalloc(j, cap * sizeof(val));
        if (d->n) { memcpy(nk, d->k, d->n * sizeof(val)); memcpy(nv, d->v, d->n * sizeof(val)); }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = key;
    d->v[d->n++] = x;
}

static void dict_set_s(J *j, jdict *d, const char *s, val x) { dict_set(j, d, mk_str(s, strlen(s)), x); }

static int truthy(val v) {
    switch (v.t) {
    case V_UNDEF: case V_NONE: return 0;
    case V_BOOL: case V_INT: return v.u.i != 0;
    case V_FLOAT: return v.u.f != 0;
    case V_STR: return v.u.str.n > 0;
    case V_LIST: return v.u.l->n > 0;
    case V_DICT: return v.u.d->n > 0;
    default: return 1;
    }
}

static int veq(val a, val b) {
    if (is_num(a) && is_num(b)) return num(a) == num(b);
    if (is_null(a) && is_null(b)) return 1;
    if (a.t != b.t) return 0;
    switch (a.t) {
    case V_STR: return a.u.str.n == b.u.str.n && !memcmp(a.u.str.s, b.u.str.s, a.u.str.n);
    case V_LIST:
        if (a.u.l->n != b.u.l->n) return 0;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!veq(a.u.l->v[i], b.u.l->v[i])) return 0;
        return 1;
    case V_DICT:
        if (a.u.d->n != b.u.d->n) return 0;
        for (size_t i = 0; i < a.u.d->n; i++) {
            val *o = dict_find(b.u.d, a.u.d->k[i]);
            if (!o || !veq(a.u.d->v[i], *o)) return 0;
        }
        return 1;
    case V_FUNC: return a.u.i == b.u.i;
    case V_MACRO: return a.u.mac.n == b.u.mac.n;
    default: return 0;
    }
}

static const char *type_name(val v) {
    static const char *const names[] = {"undefined", "none", "boolean", "integer", "float",
                                        "string",    "list", "dict",    "function", "macro"};
    return names[v.t];
}

/* A growable byte string in the arena, for building output pieces. */
typedef struct sbuf { char *p; size_t n, cap; } sbuf;

static void sb_put(J *j, sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *np = jalloc(j, cap);
        if (b->n) memcpy(np, b->p, b->n);
        b->p = np;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_puts(J *j, sbuf *b, const char *s) { sb_put(j, b, s, strlen(s)); }

static val sb_val(sbuf *b) { return b->p ? mk_str(b->p, b->n) : mk_str("", 0); }

/* Python's repr of a float: the fewest digits that read back, positional
 * for exponents -4..15 (with ".0" when integral), else d.ddde+XX. */
static void put_float(J *j, sbuf *b, double f) {
    char t[64];
    if (isnan(f)) { sb_puts(j, b, "nan"); return; }
    if (isinf(f)) { sb_puts(j, b, f < 0 ? "-inf" : "inf"); return; }
    int p = 1;
    for (; p < 17; p++) {
        snprintf(t, sizeof t, "%.*e", p - 1, f);
        if (strtod(t, NULL) == f) break;
    }
    snprintf(t, sizeof t, "%.*e", p - 1, f);
    int exp = atoi(strchr(t, 'e') + 1);
    if (exp >= -4 && exp < 16) {
        snprintf(t, sizeof t, "%.*f", p - 1 - exp > 0 ? p - 1 - exp : 0, f);
        sb_puts(j, b, t);
        if (!strchr(t, '.')) sb_puts(j, b, ".0");
        return;
    }
    sb_puts(j, b, t);
}

static void put_repr(J *j, sbuf *b, val v);

/* str(v) in Python, as {{ v }} prints it. */
static void put_str(J *j, sbuf *b, val v) {
    char t[32];
    switch (v.t) {
    case V_UNDEF: return;
    case V_NONE: sb_puts(j, b, "None"); return;
    case V_BOOL: sb_puts(j, b, v.u.i ? "True" : "False"); return;
    case V_INT: snprintf(t, sizeof t, "%lld", (long long)v.u.i); sb_puts(j, b, t); return;
    case V_FLOAT: put_float(j, b, v.u.f); return;
    case V_STR: sb_put(j, b, v.u.str.s, v.u.str.n); return;
    default: put_repr(j, b, v); return;
    }
}

static void put_repr(J *j, sbuf *b, val v) {
    switch (v.t) {
    case V_STR: {
        /* Python's choice of quotes: double when the text has a single
         * quote and no double one */
        int dq = memchr(v.u.str.s, '\'', v.u.str.n) && !memchr(v.u.str.s, '"', v.u.str.n);
        const char *q = dq ? "\"" : "'";
        sb_puts(j, b, q);
        for (size_t i = 0; i < v.u.str.n; i++) {
            char c = v.u.str.s[i];
            if (c == q[0] || c == '\\') { sb_put(j, b, "\\", 1); sb_put(j, b, &c, 1); }
            else if (c == '\n') sb_puts(j, b, "\\n");
            else if (c == '\t') sb_puts(j, b, "\\t");
            else if (c == '\r') sb_puts(j, b, "\\r");
            else sb_put(j, b, &c, 1);
        }
        sb_puts(j, b, q);
        return;
    }
    case V_LIST:
        sb_puts(j, b, v.u.l->tuple ? "(" : "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) sb_puts(j, b, ", ");
            put_repr(j, b, v.u.l->v[i]);
        }
        sb_puts(j, b, v.u.l->tuple ? (v.u.l->n == 1 ? ",)" : ")") : "]");
        return;
    case V_DICT:
        sb_puts(j, b, "{");
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) sb_puts(j, b, ", ");
            put_repr(j, b, v.u.d->k[i]);
            sb_puts(j, b, ": ");
            put_repr(j, b, v.u.d->v[i]);
        }
        sb_puts(j, b, "}");
        return;
    case V_FUNC: case V_MACRO: sb_puts(j, b, "<function>"); return;
    default: put_str(j, b, v); return;
    }
}

static val to_str(J *j, val v) {
    if (v.t == V_STR) return v;
    sbuf b = {0};
    put_str(j, &b, v);
    return sb_val(&b);
}

/* JSON as Python's json.dumps(ensure_ascii=False) writes it (JSON_PY): ", "
 * and ": " between items, or "," and a new line of `indent` spaces when
 * indent >= 0. The polyfills write it as llama.cpp c392e509 does: nlohmann's
 * dump (JSON_NL: "," and ":" when compact) and minja's Value::dump (JSON_MINJA:
 * an empty list or dict still gets its indented lines). */
enum { JSON_PY, JSON_NL, JSON_MINJA };
static void put_json_as(J *j, sbuf *b, val v, int indent, int level, size_t pos, int style);
static void put_json(J *j, sbuf *b, val v, int indent, int level, size_t pos) {
    put_json_as(j, b, v, indent, level, pos, JSON_PY);
}
static void put_json_as(J *j, sbuf *b, val v, int indent, int level, size_t pos, int style) {
    char t[32];
    if (level > MAX_DEPTH) fail(j, pos, "tojson: the value is nested too deeply");
    switch (v.t) {
    case V_UNDEF: case V_NONE: sb_puts(j, b, "null"); return;
    case V_BOOL: sb_puts(j, b, v.u.i ? "true" : "false"); return;
    case V_INT: snprintf(t, sizeof t, "%lld", (long long)v.u.i); sb_puts(j, b, t); return;
    case V_FLOAT:
        if (!isfinite(v.u.f)) sb_puts(j, b, isnan(v.u.f) ? "NaN" : v.u.f < 0 ? "-Infinity" : "Infinity");
        else put_float(j, b, v.u.f);
        return;
    case V_STR:
        sb_puts(j, b, "\"");
        for (size_t i = 0; i < v.u.str.n; i++) {
            unsigned char c = (unsigned char)v.u.str.s[i];
            if (c == '"') sb_puts(j, b, "\\\"");
            else if (c == '\\') sb_puts(j, b, "\\\\");
            else if (c == '\n') sb_puts(j, b, "\\n");
            else if (c == '\r') sb_puts(j, b, "\\r");
            else if (c == '\t') sb_puts(j, b, "\\t");
            else if (c == '\b') sb_puts(j, b, "\\b");
            else if (c == '\f') sb_puts(j, b, "\\f");
            else if (c < 0x20) { snprintf(t, sizeof t, "\\u%04x", c); sb_puts(j, b, t); }
            else sb_put(j, b, (const char *)&c, 1);
        }
        sb_puts(j, b, "\"");
        return;
    case V_LIST: case V_DICT: {
        int is_list = v.t == V_LIST;
        size_t n = is_list ? v.u.l->n : v.u.d->n;
        sb_puts(j, b, is_list ? "[" : "{");
        int lines = indent >= 0 && (n || (style == JSON_MINJA && indent > 0));
        if (style == JSON_MINJA && indent > 0 && !n) {
            sb_puts(j, b, "\n");
            for (int s = 0; s < indent * (level + 1); s++) sb_puts(j, b, " ");
        }
        for (size_t i = 0; i < n; i++) {
            if (i) sb_puts(j, b, indent >= 0 ? "," : style == JSON_NL ? "," : ", ");
            if (indent >= 0) {
                sb_puts(j, b, "\n");
                for (int s = 0; s < indent * (level + 1); s++) sb_puts(j, b, " ");
            }
            if (!is_list) {
                val k = v.u.d->k[i];
                if (k.t == V_STR) put_json_as(j, b, k, indent, level + 1, pos, style);
                else { sbuf kb = {0}; put_str(j, &kb, k); put_json_as(j, b, sb_val(&kb), indent, level + 1, pos, style); }
                sb_puts(j, b, indent < 0 && style == JSON_NL ? ":" : ": ");
            }
            put_json_as(j, b, is_list ? v.u.l->v[i] : v.u.d->v[i], indent, level + 1, pos, style);
        }
        if (lines) {
            sb_puts(j, b, "\n");
            for (int s = 0; s < indent * level; s++) sb_puts(j, b, " ");
        }
        sb_puts(j, b, is_list ? "]" : "}");
        return;
    }
    default: fail(j, pos, "tojson: a %s cannot be written as JSON", type_name(v));
    }
}

/* Code points of a UTF-8 string: their byte offsets (n + 1 entries). */
static size_t *cp_offsets(J *j, const char *s, size_t n, size_t *count) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    size_t *off = jalloc(j, (c + 1) * sizeof(size_t));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) off[k++] = i;
    off[k] = n;
    *count = c;
    return off;
}

static int64_t length_of(J *j, val v, size_t pos) {
    switch (v.t) {
    case V_STR: { size_t c; cp_offsets(j, v.u.str.s, v.u.str.n, &c); return (int64_t)c; }
    case V_LIST: return (int64_t)v.u.l->n;
    case V_DICT: return (int64_t)v.u.d->n;
    case V_UNDEF: return 0;
    default: fail(j, pos, "a %s has no length", type_name(v));
    }
}

/* The items a for loop or a filter walks: a list's, a dict's keys, a
 * string's characters; undefined walks nothing. */
static jlist *items_of(J *j, val v, size_t pos) {
    if (v.t == V_LIST) return v.u.l;
    val l = mk_list(j, 4);
    if (v.t == V_DICT) {
        for (size_t i = 0; i < v.u.d->n; i++) list_push(j, l.u.l, v.u.d->k[i]);
    } else if (v.t == V_STR) {
        size_t c, *off = cp_offsets(j, v.u.str.s, v.u.str.n, &c);
        for (size_t i = 0; i < c; i++) list_push(j, l.u.l, mk_str(v.u.str.s + off[i], off[i + 1] - off[i]));
    } else if (!is_null(v)) {                             /* none walks nothing, as in minja */
        fail(j, pos, "cannot iterate over a %s", type_name(v));
    }
    return l.u.l;
}

/* --------------------------------------------------------------- lexer */

enum { T_TEXT, T_EXPR, T_STMT, T_COMMENT };

typedef struct tok {
    int kind;
    size_t s, e;                /* the content: text, or between the delimiters */
    int strip_pre, strip_post;  /* '-' after the opening, before the closing */
} tok;

typedef struct toks { tok *v; size_t n, cap; } toks;

static void tok_push(J *j, toks *t, tok k) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        tok *nv = jalloc(j, cap * sizeof(tok));
        if (t->n) memcpy(nv, t->v, t->n * sizeof(tok));
        t->v = nv;
        t->cap = cap;
    }
    t->v[t->n++] = k;
}

/* The end of a {{ }} or {% %} tag opened at `at`: the offset of the
 * closing delimiter, skipping string literals and nested brackets. */
static size_t tag_end(J *j, size_t at, char close) {
    const char *s = j->src;
    int depth = 0;
    for (size_t i = at; i + 1 < j->len; i++) {
        char c = s[i];
        if (c == '\'' || c == '"') {
            size_t k = i + 1;
            while (k < j->len && s[k] != c) k += s[k] == '\\' ? 2 : 1;
            if (k >= j->len) break;
            i = k;
        } else if (c == '(' || c == '[' || c == '{') {
            depth++;
        } else if (c == ')' || c == ']' || c == '}') {
            if (depth > 0) depth--;
            else if (c == '}' && close == '}' && s[i + 1] == '}') return i;
        } else if (c == '%' && close == '%' && s[i + 1] == '}' && depth == 0) {
            return i;
        }
    }
    fail(j, at, "a tag is not closed (no '%c}')", close);
}

static int is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_ident(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Whether the statement tag [s,e) is `word` (e.g. "raw"). */
static int stmt_is(const J *j, size_t s, size_t e, const char *word) {
    while (s < e && is_ws(j->src[s])) s++;
    size_t n = strlen(word);
    if (e - s < n || memcmp(j->src + s, word, n)) return 0;
    s += n;
    while (s < e && is_ws(j->src[s])) s++;
    return s == e;
}

static void lex(J *j, toks *t) {
    const char *s = j->src;
    size_t i = 0, n = j->len;
    while (i < n) {
        size_t k = i;
        while (k + 1 < n && !(s[k] == '{' && (s[k + 1] == '{' || s[k + 1] == '%' || s[k + 1] == '#'))) k++;
        if (k + 1 >= n) k = n;
        if (k > i) tok_push(j, t, (tok){T_TEXT, i, k, 0, 0});
        if (k >= n) break;
        char kind = s[k + 1];
        size_t b = k + 2;
        int pre = b < n && s[b] == '-';
        if (pre || (b < n && s[b] == '+')) b++;
        size_t e;
        if (kind == '#') {
            e = b;
            while (e + 1 < n && !(s[e] == '#' && s[e + 1] == '}')) e++;
            if (e + 1 >= n) fail(j, k, "a comment is not closed (no '#}')");
        } else {
            e = tag_end(j, b, kind == '{' ? '}' : '%');
        }
        int post = e > b && s[e - 1] == '-';
        size_t ce = post ? e - 1 : e;
        if (e > b && s[e - 1] == '+') ce = e - 1;
        tok tk = {kind == '{' ? T_EXPR : kind == '%' ? T_STMT : T_COMMENT, b, ce, pre, post};
        i = e + 2;
        if (tk.kind == T_STMT && stmt_is(j, b, ce, "raw")) {
            /* the text up to {% endraw %} as it stands */
            for (size_t r = i;; r++) {
                if (r + 1 >= n) fail(j, k, "{%% raw %%} without {%% endraw %%}");
                if (s[r] == '{' && s[r + 1] == '%') {
                    size_t rb = r + 2 + (r + 2 < n && (s[r + 2] == '-' || s[r + 2] == '+'));
                    size_t re = tag_end(j, rb, '%');
                    size_t rce = re > rb && s[re - 1] == '-' ? re - 1 : re;
                    if (stmt_is(j, rb, rce, "endraw")) {
                        tok_push(j, t, tk);
                        tok_push(j, t, (tok){T_TEXT, i, r, 0, 0});
                        tok_push(j, t, (tok){T_STMT, rb, rce, s[r + 2] == '-', rce != re});
                        i = re + 2;
                        break;
                    }
                }
            }
            continue;
        }
        tok_push(j, t, tk);
    }
}

/* ---------------------------------------------------- expression parser */

typedef struct P {
    J *j;
    size_t i, e;                /* the cursor in the current tag and its end */
    int depth;
} P;

static node *new_node(J *j, int kind, size_t pos) {
    node *n = jalloc(j, sizeof(node));
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->pos = pos;
    return n;
}

static void skip_ws(P *p) { while (p->i < p->e && is_ws(p->j->src[p->i])) p->i++; }

static int at_end(P *p) { skip_ws(p); return p->i >= p->e; }

/* Accepts the operator text op at the cursor. */
static int accept(P *p, const char *op) {
    skip_ws(p);
    size_t n = strlen(op);
    if (p->e - p->i < n || memcmp(p->j->src + p->i, op, n)) return 0;
    p->i += n;
    return 1;
}

static int peek_kw(P *p, const char *kw) {
    skip_ws(p);
    size_t n = strlen(kw);
    if (p->e - p->i < n || memcmp(p->j->src + p->i, kw, n)) return 0;
    return p->i + n >= p->e || !is_ident(p->j->src[p->i + n]);
}

static int accept_kw(P *p, const char *kw) {
    if (!peek_kw(p, kw)) return 0;
    p->i += strlen(kw);
    return 1;
}

static void expect(P *p, const char *op) {
    if (!accept(p, op)) fail(p->j, p->i, "expected '%s'", op);
}

static const char *ident(P *p) {
    skip_ws(p);
    size_t s = p->i;
    if (s >= p->e || !is_ident_start(p->j->src[s])) return NULL;
    while (p->i < p->e && is_ident(p->j->src[p->i])) p->i++;
    return str_copy(p->j, p->j->src + s, p->i - s).u.str.s;
}

static const char *need_ident(P *p, const char *what) {
    const char *n = ident(p);
    if (!n) fail(p->j, p->i, "expected %s", what);
    return n;
}

static void put_utf8(J *j, sbuf *b, uint32_t c) {
    char t[4];
    size_t n;
    if (c < 0x80) { t[0] = (char)c; n = 1; }
    else if (c < 0x800) { t[0] = (char)(0xC0 | c >> 6); t[1] = (char)(0x80 | (c & 63)); n = 2; }
    else if (c < 0x10000) { t[0] = (char)(0xE0 | c >> 12); t[1] = (char)(0x80 | (c >> 6 & 63)); t[2] = (char)(0x80 | (c & 63)); n = 3; }
    else { t[0] = (char)(0xF0 | c >> 18); t[1] = (char)(0x80 | (c >> 12 & 63)); t[2] = (char)(0x80 | (c >> 6 & 63)); t[3] = (char)(0x80 | (c & 63)); n = 4; }
    sb_put(j, b, t, n);
}

static val string_lit(P *p) {
    J *j = p->j;
    const char *s = j->src;
    char q = s[p->i++];
    sbuf b = {0};
    sb_put(j, &b, "", 0);
    while (p->i < p->e && s[p->i] != q) {
        char c = s[p->i++];
        if (c != '\\' || p->i >= p->e) { sb_put(j, &b, &c, 1); continue; }
        c = s[p->i++];
        switch (c) {
        case 'n': sb_puts(j, &b, "\n"); break;
        case 't': sb_puts(j, &b, "\t"); break;
        case 'r': sb_puts(j, &b, "\r"); break;
        case 'b': sb_puts(j, &b, "\b"); break;
        case 'f': sb_puts(j, &b, "\f"); break;
        case '0': sb_put(j, &b, "\0", 1); break;
        case 'u': case 'x': {
            int digits = c == 'u' ? 4 : 2;
            uint32_t cp = 0;
            for (int d = 0; d < digits; d++, p->i++) {
                char h = p->i < p->e ? s[p->i] : 0;
                int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                if (v < 0) fail(j, p->i, "a bad \\%c escape in a string", c);
                cp = cp * 16 + (uint32_t)v;
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
            put_utf8(j, &b, cp);
            break;
        }
        case '\n': break;
        default:
            if (c != '\\' && c != '\'' && c != '"') sb_puts(j, &b, "\\");
            sb_put(j, &b, &c, 1);
        }
    }
    if (p->i >= p->e) fail(j, p->i, "a string is not closed");
    p->i++;
    return sb_val(&b);
}

static node *parse_expr(P *p);
static node *parse_or(P *p);

static void enter(P *p) {
    if (++p->depth > MAX_DEPTH) fail(p->j, p->i, "the expression is nested too deeply");
}

/* Call arguments after '(' up to ')': positional, then name=value. */
static void parse_args(P *p, node *n) {
    size_t cap = 4;
    n->kids = jalloc(p->j, cap * sizeof(node *));
    n->names = jalloc(p->j, cap * sizeof(char *));
    while (!accept(p, ")")) {
        if (n->nkids && !accept(p, ",")) fail(p->j, p->i, "expected ',' or ')' in the arguments");
        if (accept(p, ")")) break;
        if (n->nkids == cap) {
            node **nk = jalloc(p->j, 2 * cap * sizeof(node *));
            const char **nn = jalloc(p->j, 2 * cap * sizeof(char *));
            memcpy(nk, n->kids, cap * sizeof(node *));
            memcpy(nn, n->names, cap * sizeof(char *));
            n->kids = nk;
            n->names = nn;
            cap *= 2;
        }
        size_t save = p->i;
        const char *name = ident(p);
        if (name && accept(p, "=") && !accept(p, "=")) {
            n->names[n->nkids] = name;
        } else {
            p->i = save;
            name = NULL;
            n->names[n->nkids] = NULL;
        }
        n->kids[n->nkids++] = parse_expr(p);
    }
    n->nnames = n->nkids;
}

static void add_kid(J *j, node *n, node *k, size_t *cap) {
    if (n->nkids == *cap) {
        *cap = *cap ? 2 * *cap : 4;
        node **nk = jalloc(j, *cap * sizeof(node *));
        if (n->nkids) memcpy(nk, n->kids, n->nkids * sizeof(node *));
        n->kids = nk;
    }
    n->kids[n->nkids++] = k;
}

/* A list's items or a dict's key: value pairs after the opening bracket,
 * up to the closing one, comma-separated (a trailing comma allowed). */
static node *parse_items(P *p, int kind, size_t pos) {
    J *j = p->j;
    const char *close = kind == E_LIST ? "]" : "}";
    enter(p);
    node *n = new_node(j, kind, pos);
    size_t cap = 0;
    while (!accept(p, close)) {
        if (n->nkids && !accept(p, ",")) fail(j, p->i, "expected ',' or '%s' in a %s", close, kind == E_LIST ? "list" : "dict");
        if (accept(p, close)) break;
        add_kid(j, n, parse_expr(p), &cap);
        if (kind == E_DICT) {
            expect(p, ":");
            add_kid(j, n, parse_expr(p), &cap);
        }
    }
    p->depth--;
    return n;
}

static node *parse_primary(P *p) {
    J *j = p->j;
    skip_ws(p);
    size_t pos = p->i;
    if (p->i >= p->e) fail(j, pos, "an expression is missing");
    char c = j->src[p->i];
    node *n;
    if (c == '\'' || c == '"') {
        n = new_node(j, E_LIT, pos);
        n->v = string_lit(p);
        skip_ws(p);
        while (p->i < p->e && (j->src[p->i] == '\'' || j->src[p->i] == '"')) {   /* 'a' 'b' */
            val more = string_lit(p);
            sbuf b = {0};
            sb_put(j, &b, n->v.u.str.s, n->v.u.str.n);
            sb_put(j, &b, more.u.str.s, more.u.str.n);
            n->v = sb_val(&b);
            skip_ws(p);
        }
        return n;
    }
    if (c >= '0' && c <= '9') {
        size_t s = p->i;
        int is_f = 0;
        while (p->i < p->e && ((j->src[p->i] >= '0' && j->src[p->i] <= '9') || j->src[p->i] == '_')) p->i++;
        if (p->i + 1 < p->e && j->src[p->i] == '.' && j->src[p->i + 1] >= '0' && j->src[p->i + 1] <= '9') {
            is_f = 1;
            p->i++;
            while (p->i < p->e && j->src[p->i] >= '0' && j->src[p->i] <= '9') p->i++;
        }
        if (p->i < p->e && (j->src[p->i] == 'e' || j->src[p->i] == 'E')) {
            size_t k = p->i + 1;
            if (k < p->e && (j->src[k] == '+' || j->src[k] == '-')) k++;
            if (k < p->e && j->src[k] >= '0' && j->src[k] <= '9') {
                is_f = 1;
                p->i = k;
                while (p->i < p->e && j->src[p->i] >= '0' && j->src[p->i] <= '9') p->i++;
            }
        }
        char t[64];
        size_t len = 0;
        for (size_t k = s; k < p->i && len < sizeof t - 1; k++)
            if (j->src[k] != '_') t[len++] = j->src[k];
        t[len] = 0;
        n = new_node(j, E_LIT, pos);
        if (is_f) {
            n->v = mk_float(strtod(t, NULL));
        } else {
            unsigned long long u = strtoull(t, NULL, 10);
            if (len > 18 && (u > (unsigned long long)INT64_MAX || len > 19)) fail(j, pos, "an integer literal is too large");
            n->v = mk_int((int64_t)u);
        }
        return n;
    }
    if (c == '(') {
        p->i++;
        enter(p);
        n = new_node(j, E_LIST, pos);                       /* a tuple: a list that prints as one */
        n->op = 1;
        if (accept(p, ")")) { p->depth--; return n; }
        node *first = parse_expr(p);
        if (accept(p, ")")) { p->depth--; return first; }
        size_t cap = 0;
        add_kid(j, n, first, &cap);
        while (accept(p, ",")) {
            if (accept(p, ")")) { p->depth--; return n; }
            add_kid(j, n, parse_expr(p), &cap);
        }
        expect(p, ")");
        p->depth--;
        return n;
    }
    if (c == '[' || c == '{') {
        p->i++;
        return parse_items(p, c == '[' ? E_LIST : E_DICT, pos);
    }
    const char *name = ident(p);
    if (!name) fail(j, pos, "unexpected '%c' in an expression", c);
    n = new_node(j, E_LIT, pos);
    if (!strcmp(name, "true") || !strcmp(name, "True")) n->v = mk_bool(1);
    else if (!strcmp(name, "false") || !strcmp(name, "False")) n->v = mk_bool(0);
    else if (!strcmp(name, "none") || !strcmp(name, "None")) n->v = mk_none();
    else { n->kind = E_VAR; n->name = name; }
    return n;
}

/* A test's name after `is` [not], with its arguments: in parentheses, or
 * one literal (`is divisibleby 3`, `is equalto 'x'`). */
static node *parse_test(P *p, node *operand, size_t pos) {
    node *n = new_node(p->j, E_TEST, pos);
    n->op = accept_kw(p, "not");
    n->a = operand;
    skip_ws(p);
    if (accept(p, "==")) n->name = "==";
    else if (accept(p, "!=")) n->name = "!=";
    else if (peek_kw(p, "none")) { p->i += 4; n->name = "none"; }
    else if (peek_kw(p, "true")) { p->i += 4; n->name = "true"; }
    else if (peek_kw(p, "false")) { p->i += 5; n->name = "false"; }
    else n->name = need_ident(p, "a test name after 'is'");
    if (accept(p, "(")) {
        parse_args(p, n);
    } else {
        skip_ws(p);
        char c = p->i < p->e ? p->j->src[p->i] : 0;
        if (c == '\'' || c == '"' || (c >= '0' && c <= '9')) {
            size_t cap = 0;
            add_kid(p->j, n, parse_primary(p), &cap);
        }
    }
    return n;
}

/* primary, then .name, [index or slice], (call), and with filters set
 * |filter and is test; n: an operand already parsed (or NULL) */
static node *parse_postfix(P *p, node *n, int filters) {
    J *j = p->j;
    if (!n) n = parse_primary(p);
    for (;;) {
        skip_ws(p);
        size_t pos = p->i;
        if (accept(p, ".")) {
            node *a = new_node(j, E_ATTR, pos);
            a->a = n;
            skip_ws(p);
            if (p->i < p->e && j->src[p->i] >= '0' && j->src[p->i] <= '9') {   /* x.0 */
                node *lit = parse_primary(p);
                a->kind = E_INDEX;
                a->b = lit;
            } else {
                a->name = need_ident(p, "an attribute name after '.'");
            }
            n = a;
        } else if (p->i < p->e && j->src[p->i] == '[') {
            p->i++;
            enter(p);
            node *parts[3] = {NULL, NULL, NULL};
            int colons = 0;
            for (;;) {
                skip_ws(p);
                if (accept(p, "]")) break;
                if (accept(p, ":")) {
                    if (++colons > 2) fail(j, p->i, "a slice has at most two ':'");
                    continue;
                }
                if (parts[colons]) fail(j, p->i, "expected ':' or ']' in a subscript");
                parts[colons] = parse_expr(p);
            }
            p->depth--;
            node *x;
            if (colons == 0) {
                if (!parts[0]) fail(j, pos, "an empty subscript");
                x = new_node(j, E_INDEX, pos);
                x->b = parts[0];
            } else {
                x = new_node(j, E_SLICE, pos);
                x->b = parts[0];
                x->c = parts[1];
                x->d = parts[2];
            }
            x->a = n;
            n = x;
        } else if (p->i < p->e && j->src[p->i] == '(') {
            p->i++;
            enter(p);
            node *call = new_node(j, E_CALL, pos);
            call->a = n;
            parse_args(p, call);
            p->depth--;
            n = call;
        } else if (filters && p->i < p->e && j->src[p->i] == '|' && !(p->i + 1 < p->e && j->src[p->i + 1] == '|')) {
            p->i++;
            node *f = new_node(j, E_FILTER, pos);
            f->a = n;
            f->name = need_ident(p, "a filter name after '|'");
            skip_ws(p);
            if (p->i < p->e && j->src[p->i] == '(') {
                p->i++;
                enter(p);
                parse_args(p, f);
                p->depth--;
            }
            n = f;
        } else if (filters && peek_kw(p, "is")) {
            p->i += 2;
            n = parse_test(p, n, pos);
        } else {
            return n;
        }
    }
}

static node *bin(J *j, int op, node *a, node *b, size_t pos) {
    node *n = new_node(j, E_BIN, pos);
    n->op = op;
    n->a = a;
    n->b = b;
    return n;
}

/* As Jinja2's parse_unary: a sign applies to the operand before its
 * filters, so -3|abs is abs(-3). */
static node *parse_unary(P *p, int filters) {
    skip_ws(p);
    size_t pos = p->i;
    node *n;
    if (accept(p, "-")) {
        enter(p);
        n = new_node(p->j, E_NEG, pos);
        n->a = parse_unary(p, 0);
        p->depth--;
    } else if (accept(p, "+")) {
        n = parse_unary(p, 0);
    } else {
        return parse_postfix(p, NULL, filters);
    }
    return filters ? parse_postfix(p, n, 1) : n;
}

/* One level of left-to-right binary operators: the operators' texts,
 * longest first, and their node codes; code 0 marks an operator of another
 * level that starts like one of these ("**" before "*"), which ends the
 * level instead of being taken. */
typedef struct binop { const char *text; int code; } binop;

static node *parse_level(P *p, const binop *ops, node *(*next)(P *)) {
    node *n = next(p);
    for (;;) {
        skip_ws(p);
        size_t pos = p->i;
        const binop *o = ops;
        while (o->text && !accept(p, o->text)) o++;
        if (!o->text || !o->code) {
            p->i = pos;
            return n;
        }
        n = bin(p->j, o->code, n, next(p), pos);
    }
}

static node *parse_unary_filtered(P *p) { return parse_unary(p, 1); }

static node *parse_pow(P *p) {
    static const binop ops[] = {{"**", 'p'}, {NULL, 0}};
    return parse_level(p, ops, parse_unary_filtered);
}

static node *parse_mul(P *p) {
    static const binop ops[] = {{"**", 0}, {"//", 'F'}, {"*", '*'}, {"/", '/'}, {"%", '%'}, {NULL, 0}};
    return parse_level(p, ops, parse_pow);
}

/* ~ binds tighter than + and -, as in Jinja2 */
static node *parse_concat(P *p) {
    static const binop ops[] = {{"~", '~'}, {NULL, 0}};
    return parse_level(p, ops, parse_mul);
}

static node *parse_add(P *p) {
    static const binop ops[] = {{"+", '+'}, {"-", '-'}, {NULL, 0}};
    return parse_level(p, ops, parse_concat);
}

static node *parse_compare(P *p) {
    node *n = parse_add(p);
    for (;;) {
        skip_ws(p);
        size_t pos = p->i;
        int op;
        if (accept(p, "==")) op = '=';
        else if (accept(p, "!=")) op = '!';
        else if (accept(p, "<=")) op = 'l';
        else if (accept(p, ">=")) op = 'g';
        else if (accept(p, "<")) op = '<';
        else if (accept(p, ">")) op = '>';
        else if (accept_kw(p, "in")) op = 'i';
        else if (peek_kw(p, "not")) {
            size_t save = p->i;
            p->i += 3;
            if (!accept_kw(p, "in")) { p->i = save; return n; }
            op = 'n';
        } else return n;
        n = bin(p->j, op, n, parse_add(p), pos);
    }
}

static node *parse_not(P *p) {
    skip_ws(p);
    size_t pos = p->i;
    if (accept_kw(p, "not")) {
        enter(p);
        node *n = new_node(p->j, E_NOT, pos);
        n->a = parse_not(p);
        p->depth--;
        return n;
    }
    return parse_compare(p);
}

/* a kw b kw c ..., left to right: nodes of `kind` over operands from next */
static node *parse_chain(P *p, const char *kw, int kind, node *(*next)(P *)) {
    node *n = next(p);
    size_t pos = p->i;
    while (accept_kw(p, kw)) {
        node *x = new_node(p->j, kind, pos);
        x->a = n;
        x->b = next(p);
        n = x;
    }
    return n;
}

static node *parse_and(P *p) { return parse_chain(p, "and", E_AND, parse_not); }
static node *parse_or(P *p) { return parse_chain(p, "or", E_OR, parse_and); }

/* or-expression [if cond [else expr]] */
static node *parse_expr(P *p) {
    enter(p);
    node *n = parse_or(p);
    size_t pos = p->i;
    if (accept_kw(p, "if")) {
        node *c = new_node(p->j, E_COND, pos);
        c->b = n;
        c->a = parse_or(p);
        if (accept_kw(p, "else")) c->c = parse_expr(p);
        n = c;
    }
    p->depth--;
    return n;
}

/* ------------------------------------------------------ template parser */

typedef struct TP {
    J *j;
    toks *t;
    size_t k;                   /* next token */
    int depth;
} TP;

/* A text token with the whitespace rules applied (see the top comment). */
static node *text_node(TP *tp, size_t k) {
    J *j = tp->j;
    tok *t = &tp->t->v[k];
    const char *s = j->src + t->s;
    size_t a = 0, b = t->e - t->s;
    int has_next = k + 1 < tp->t->n, has_prev = k > 0;
    if (has_next && tp->t->v[k + 1].strip_pre) {
        while (b > a && is_ws(s[b - 1])) b--;
    } else if (has_next) {
        size_t i = b;
        while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t')) i--;
        if ((i == 0 && k == 0) || (i > 0 && s[i - 1] == '\n')) b = i;
    }
    if (has_prev && tp->t->v[k - 1].strip_post) {
        while (a < b && is_ws(s[a])) a++;
    } else if (has_prev && tp->t->v[k - 1].kind != T_EXPR && a < b && s[a] == '\n') {
        a++;
    }
    if (!has_next && b > a && s[b - 1] == '\n') {
        b--;
        if (b > a && s[b - 1] == '\r') b--;
    }
    node *n = new_node(j, N_TEXT, t->s);
    n->v = mk_str(s + a, b - a);
    return n;
}

static node *parse_block(TP *tp, const char *const *ends, const char **ended);

/* The statement's parser over the tag's content. */
static P stmt_p(TP *tp, tok *t) { P p = {tp->j, t->s, t->e, 0}; return p; }

static void stmt_done(P *p) {
    if (!at_end(p)) fail(p->j, p->i, "unexpected text at the end of a tag");
}

/* A comma-separated list of names (loop or set targets). */
static void target_names(P *p, node *n) {
    size_t cap = 4;
    n->names = jalloc(p->j, cap * sizeof(char *));
    int paren = accept(p, "(");
    do {
        if (n->nnames == cap) {
            const char **nn = jalloc(p->j, 2 * cap * sizeof(char *));
            memcpy(nn, n->names, cap * sizeof(char *));
            n->names = nn;
            cap *= 2;
        }
        n->names[n->nnames++] = need_ident(p, "a variable name");
    } while (accept(p, ","));
    if (paren) expect(p, ")");
}

static node *parse_stmt(TP *tp, tok *t, const char *const *ends, const char **ended) {
    J *j = tp->j;
    P p = stmt_p(tp, t);
    size_t pos = t->s;
    const char *kw = need_ident(&p, "a statement name after '{%'");
    for (size_t i = 0; ends && ends[i]; i++)
        if (!strcmp(kw, ends[i])) { *ended = ends[i]; return NULL; }
    if (++tp->depth > MAX_DEPTH) fail(j, pos, "blocks are nested too deeply");
    node *n = NULL;
    if (!strcmp(kw, "if")) {
        static const char *const if_ends[] = {"elif", "else", "endif", NULL};
        n = new_node(j, N_IF, pos);
        n->a = parse_expr(&p);
        stmt_done(&p);
        const char *end = NULL;
        n->b = parse_block(tp, if_ends, &end);
        node *cur = n;
        while (end && !strcmp(end, "elif")) {
            P q = stmt_p(tp, &tp->t->v[tp->k - 1]);
            need_ident(&q, "elif");
            node *e = new_node(j, N_IF, tp->t->v[tp->k - 1].s);
            e->a = parse_expr(&q);
            stmt_done(&q);
            e->b = parse_block(tp, if_ends, &end);
            cur->c = e;
            cur = e;
        }
        if (end && !strcmp(end, "else")) {
            static const char *const else_ends[] = {"endif", NULL};
            cur->c = parse_block(tp, else_ends, &end);
        }
        if (!end || strcmp(end, "endif")) fail(j, pos, "{%% if %%} without {%% endif %%}");
    } else if (!strcmp(kw, "for")) {
        static const char *const for_ends[] = {"else", "endfor", NULL};
        n = new_node(j, N_FOR, pos);
        target_names(&p, n);
        if (!accept_kw(&p, "in")) fail(j, p.i, "expected 'in' in a for loop");
        n->a = parse_or(&p);
        if (accept_kw(&p, "if")) n->d = parse_or(&p);
        if (accept_kw(&p, "recursive")) fail(j, pos, "recursive loops are not supported");
        stmt_done(&p);
        const char *end = NULL;
        n->b = parse_block(tp, for_ends, &end);
        if (end && !strcmp(end, "else")) {
            static const char *const endfor[] = {"endfor", NULL};
            n->c = parse_block(tp, endfor, &end);
        }
        if (!end || strcmp(end, "endfor")) fail(j, pos, "{%% for %%} without {%% endfor %%}");
    } else if (!strcmp(kw, "set")) {
        size_t save = p.i;
        const char *first = need_ident(&p, "a variable name after 'set'");
        if (accept(&p, ".")) {
            n = new_node(j, N_SETATTR, pos);
            n->name = first;
            n->name2 = need_ident(&p, "an attribute name");
            expect(&p, "=");
            n->a = parse_expr(&p);
        } else {
            p.i = save;
            n = new_node(j, N_SET, pos);
            target_names(&p, n);
            if (accept(&p, "=")) {
                n->a = parse_expr(&p);
                if (accept(&p, ",")) {               /* set a, b = x, y */
                    node *l = new_node(j, E_LIST, pos);
                    size_t cap = 0;
                    add_kid(j, l, n->a, &cap);
                    do add_kid(j, l, parse_expr(&p), &cap); while (accept(&p, ","));
                    n->a = l;
                }
            } else {
                static const char *const endset[] = {"endset", NULL};
                if (n->nnames != 1) fail(j, pos, "a block set takes one name");
                stmt_done(&p);
                n->kind = N_SETBLOCK;
                n->name = n->names[0];
                const char *end = NULL;
                n->b = parse_block(tp, endset, &end);
                if (!end) fail(j, pos, "{%% set %%} without {%% endset %%}");
                tp->depth--;
                return n;
            }
        }
        stmt_done(&p);
    } else if (!strcmp(kw, "macro")) {
        static const char *const endmacro[] = {"endmacro", NULL};
        n = new_node(j, N_MACRO, pos);
        n->name = need_ident(&p, "a macro name");
        expect(&p, "(");
        size_t cap = 0, ncap = 4;
        n->names = jalloc(j, ncap * sizeof(char *));
        while (!accept(&p, ")")) {
            if (n->nnames && !accept(&p, ",")) fail(j, p.i, "expected ',' or ')' in the macro's parameters");
            if (n->nnames == ncap) {
                const char **nn = jalloc(j, 2 * ncap * sizeof(char *));
                memcpy(nn, n->names, ncap * sizeof(char *));
                n->names = nn;
                ncap *= 2;
            }
            n->names[n->nnames++] = need_ident(&p, "a parameter name");
            add_kid(j, n, accept(&p, "=") ? parse_expr(&p) : NULL, &cap);
        }
        stmt_done(&p);
        const char *end = NULL;
        n->b = parse_block(tp, endmacro, &end);
        if (!end) fail(j, pos, "{%% macro %%} without {%% endmacro %%}");
    } else if (!strcmp(kw, "filter")) {
        /* {% filter name(args) %}body{% endfilter %}: the body's text
         * through the filter (a filter node whose operand is the body) */
        static const char *const endfilter[] = {"endfilter", NULL};
        n = new_node(j, N_FILTERBLOCK, pos);
        node *f = new_node(j, E_FILTER, pos);
        f->name = need_ident(&p, "a filter name");
        if (accept(&p, "(")) parse_args(&p, f);
        stmt_done(&p);
        n->a = f;
        const char *end = NULL;
        n->b = parse_block(tp, endfilter, &end);
        if (!end) fail(j, pos, "{%% filter %%} without {%% endfilter %%}");
    } else if (!strcmp(kw, "break") || !strcmp(kw, "continue")) {
        n = new_node(j, kw[0] == 'b' ? N_BREAK : N_CONTINUE, pos);
        stmt_done(&p);
    } else if (!strcmp(kw, "generation") || !strcmp(kw, "raw")) {
        /* {% generation %} marks the assistant's text for training masks:
         * rendered as its body. {% raw %}'s body is one text token. */
        static const char *const endgen[] = {"endgeneration", NULL}, *const endraw[] = {"endraw", NULL};
        stmt_done(&p);
        const char *end = NULL;
        n = parse_block(tp, kw[0] == 'g' ? endgen : endraw, &end);
        if (!end) fail(j, pos, "{%% %s %%} is not closed", kw);
    } else {
        fail(j, pos, "unknown or misplaced statement '%s'", kw);
    }
    tp->depth--;
    return n;
}

/* Statements up to one of `ends` (consumed; *ended names it) or the end. */
static node *parse_block(TP *tp, const char *const *ends, const char **ended) {
    J *j = tp->j;
    node *blk = new_node(j, N_BLOCK, tp->k < tp->t->n ? tp->t->v[tp->k].s : j->len);
    size_t cap = 0;
    *ended = NULL;
    while (tp->k < tp->t->n) {
        size_t k = tp->k++;
        tok *t = &tp->t->v[k];
        node *n = NULL;
        if (t->kind == T_TEXT) {
            n = text_node(tp, k);
            if (!n->v.u.str.n) continue;
        } else if (t->kind == T_EXPR) {
            P p = {j, t->s, t->e, 0};
            n = new_node(j, N_OUT, t->s);
            n->a = parse_expr(&p);
            stmt_done(&p);
        } else if (t->kind == T_STMT) {
            n = parse_stmt(tp, t, ends, ended);
            if (!n) return blk;
        } else {
            continue;
        }
        add_kid(j, blk, n, &cap);
    }
    return blk;
}

/* ------------------------------------------------------------ evaluator */

static val eval(J *j, node *n, scope *sc);
static void exec(J *j, node *n, scope *sc);

static val *lookup(scope *sc, const char *name) {
    for (; sc; sc = sc->parent) {
        val *v = dict_find_s(&sc->vars, name);
        if (v) return v;
    }
    return NULL;
}

static void out_put(J *j, const char *s, size_t n) {
    if (!n) return;
    if (n > MAX_OUT - j->out_n) fail(j, 0, "the template writes more than %zu MiB", MAX_OUT >> 20);
    if (j->out_n + n + 1 > j->out_cap) {
        size_t cap = j->out_cap ? j->out_cap : 1024;
        while (cap < j->out_n + n + 1) cap *= 2;
        char *p = realloc(j->out, cap);
        if (!p) oom(j);
        j->out = p;
        j->out_cap = cap;
    }
    memcpy(j->out + j->out_n, s, n);
    j->out_n += n;
}

/* Arguments evaluated: positional values and name=value pairs. */
typedef struct args { val *pos; size_t npos; const char **kn; val *kv; size_t nkw; } args;

static args eval_args(J *j, node *n, scope *sc) {
    args a = {0};
    a.pos = jalloc(j, (n->nkids + 1) * sizeof(val));
    a.kv = jalloc(j, (n->nkids + 1) * sizeof(val));
    a.kn = jalloc(j, (n->nkids + 1) * sizeof(char *));
    for (size_t i = 0; i < n->nkids; i++) {
        val v = eval(j, n->kids[i], sc);
        if (n->names && n->names[i]) { a.kn[a.nkw] = n->names[i]; a.kv[a.nkw++] = v; }
        else a.pos[a.npos++] = v;
    }
    return a;
}

/* Argument i by position or by name; *found says whether it was given. */
static val arg(const args *a, size_t i, const char *name, int *found) {
    if (i < a->npos) { if (found) *found = 1; return a->pos[i]; }
    for (size_t k = 0; name && k < a->nkw; k++)
        if (!strcmp(a->kn[k], name)) { if (found) *found = 1; return a->kv[k]; }
    if (found) *found = 0;
    return mk_undef();
}

static val need_str(J *j, val v, size_t pos, const char *what) {
    if (v.t != V_STR) fail(j, pos, "%s must be a string, not a %s", what, type_name(v));
    return v;
}

static int64_t need_int(J *j, val v, size_t pos, const char *what) {
    if (v.t == V_INT || v.t == V_BOOL) return v.u.i;
    if (v.t == V_FLOAT && v.u.f == floor(v.u.f) && fabs(v.u.f) < 9e18) return (int64_t)v.u.f;
    fail(j, pos, "%s must be an integer, not a %s", what, type_name(v));
}

/* x.name or x[key] */
static val get_item(J *j, val obj, val key) {
    if (obj.t == V_DICT) {
        val *v = dict_find(obj.u.d, key);
        return v ? *v : mk_undef();
    }
    if (obj.t == V_LIST || obj.t == V_STR) {
        if (key.t != V_INT && key.t != V_BOOL) return mk_undef();
        int64_t i = key.u.i;
        if (obj.t == V_LIST) {
            int64_t n = (int64_t)obj.u.l->n;
            if (i < 0) i += n;
            return i >= 0 && i < n ? obj.u.l->v[i] : mk_undef();
        }
        size_t c, *off = cp_offsets(j, obj.u.str.s, obj.u.str.n, &c);
        if (i < 0) i += (int64_t)c;
        if (i < 0 || i >= (int64_t)c) return mk_undef();
        return mk_str(obj.u.str.s + off[i], off[i + 1] - off[i]);
    }
    return mk_undef();                                   /* none, undefined, numbers: nothing */
}

static void slice_bounds(int64_t len, val a, val b, val c, int64_t *start, int64_t *stop, int64_t *stp, J *j,
                         size_t pos) {
    int64_t s = is_null(c) ? 1 : need_int(j, c, pos, "a slice step");
    if (s == 0) fail(j, pos, "a slice step cannot be zero");
    int64_t lo, hi;
    if (s > 0) { lo = 0; hi = len; } else { lo = -1; hi = len - 1; }
    int64_t x, y;
    if (is_null(a)) x = s > 0 ? lo : hi;
    else {
        x = need_int(j, a, pos, "a slice bound");
        if (x < 0) { x += len; if (x < lo) x = lo; }
        else if (x > hi) x = hi;
    }
    if (is_null(b)) y = s > 0 ? hi : lo;
    else {
        y = need_int(j, b, pos, "a slice bound");
        if (y < 0) { y += len; if (y < lo) y = lo; }
        else if (y > hi) y = hi;
    }
    *start = x;
    *stop = y;
    *stp = s;
}

static val do_slice(J *j, val obj, val a, val b, val c, size_t pos) {
    int64_t s, e, st;
    if (obj.t == V_LIST) {
        slice_bounds((int64_t)obj.u.l->n, a, b, c, &s, &e, &st, j, pos);
        val r = mk_list(j, 4);
        for (int64_t i = s; st > 0 ? i < e : i > e; i += st) list_push(j, r.u.l, obj.u.l->v[i]);
        return r;
    }
    if (obj.t == V_STR) {
        size_t cnt, *off = cp_offsets(j, obj.u.str.s, obj.u.str.n, &cnt);
        slice_bounds((int64_t)cnt, a, b, c, &s, &e, &st, j, pos);
        if (st == 1) return mk_str(obj.u.str.s + off[s < e ? s : e], s < e ? off[e] - off[s] : 0);
        sbuf o = {0};
        sb_put(j, &o, "", 0);
        for (int64_t i = s; st > 0 ? i < e : i > e; i += st) sb_put(j, &o, obj.u.str.s + off[i], off[i + 1] - off[i]);
        return sb_val(&o);
    }
    if (obj.t == V_UNDEF) return mk_undef();
    fail(j, pos, "cannot slice a %s", type_name(obj));
}

static int cmp_vals(J *j, val a, val b, size_t pos) {
    if (is_num(a) && is_num(b)) return num(a) < num(b) ? -1 : num(a) > num(b);
    if (a.t == V_STR && b.t == V_STR) {
        size_t n = a.u.str.n < b.u.str.n ? a.u.str.n : b.u.str.n;
        int c = memcmp(a.u.str.s, b.u.str.s, n);
        if (c) return c < 0 ? -1 : 1;
        return a.u.str.n < b.u.str.n ? -1 : a.u.str.n > b.u.str.n;
    }
    fail(j, pos, "cannot order a %s and a %s", type_name(a), type_name(b));
}

static int contains(J *j, val hay, val x, size_t pos) {
    if (hay.t == V_STR) {
        if (x.t != V_STR) fail(j, pos, "'in <string>' needs a string on the left, not a %s", type_name(x));
        if (!x.u.str.n) return 1;
        for (size_t i = 0; i + x.u.str.n <= hay.u.str.n; i++)
            if (!memcmp(hay.u.str.s + i, x.u.str.s, x.u.str.n)) return 1;
        return 0;
    }
    if (hay.t == V_LIST) {
        for (size_t i = 0; i < hay.u.l->n; i++)
            if (veq(hay.u.l->v[i], x)) return 1;
        return 0;
    }
    if (hay.t == V_DICT) return dict_find(hay.u.d, x) != NULL;
    if (hay.t == V_UNDEF) return 0;
    fail(j, pos, "'in' needs a string, list or dict on the right, not a %s", type_name(hay));
}

static val arith(J *j, int op, val a, val b, size_t pos) {
    if (op == '~') {
        sbuf o = {0};
        put_str(j, &o, a);
        put_str(j, &o, b);
        return sb_val(&o);
    }
    if (op == '+' && (a.t == V_STR || b.t == V_STR)) {
        /* as minja: a string and anything concatenate, the other side
         * written as str() writes it (undefined as "None") */
        sbuf o = {0};
        sb_put(j, &o, "", 0);
        if (a.t == V_UNDEF) sb_puts(j, &o, "None"); else put_str(j, &o, a);
        if (b.t == V_UNDEF) sb_puts(j, &o, "None"); else put_str(j, &o, b);
        return sb_val(&o);
    }
    if (op == '+' && a.t == V_LIST && b.t == V_LIST) {
        val r = mk_list(j, a.u.l->n + b.u.l->n);
        for (size_t i = 0; i < a.u.l->n; i++) list_push(j, r.u.l, a.u.l->v[i]);
        for (size_t i = 0; i < b.u.l->n; i++) list_push(j, r.u.l, b.u.l->v[i]);
        return r;
    }
    if (op == '*' && ((a.t == V_STR && (b.t == V_INT || b.t == V_BOOL)) || (b.t == V_STR && (a.t == V_INT || a.t == V_BOOL)))) {
        val s = a.t == V_STR ? a : b;
        int64_t times = a.t == V_STR ? b.u.i : a.u.i;
        if (times > 0 && s.u.str.n && (uint64_t)times > MAX_OUT / s.u.str.n) fail(j, pos, "a repeated string is too long");
        sbuf o = {0};
        sb_put(j, &o, "", 0);
        for (int64_t i = 0; i < times; i++) sb_put(j, &o, s.u.str.s, s.u.str.n);
        return sb_val(&o);
    }
    if (!is_num(a) || !is_num(b))
        fail(j, pos, "cannot apply '%s' to a %s and a %s",
             op == 'F' ? "//" : op == 'p' ? "**" : (char[]){(char)op, 0}, type_name(a), type_name(b));
    int ints = a.t != V_FLOAT && b.t != V_FLOAT;
    if (ints && op != '/' && op != 'p') {
        int64_t x = a.u.i, y = b.u.i, r;
        switch (op) {
        case '+': if (__builtin_add_overflow(x, y, &r)) break; return mk_int(r);
        case '-': if (__builtin_sub_overflow(x, y, &r)) break; return mk_int(r);
        case '*': if (__builtin_mul_overflow(x, y, &r)) break; return mk_int(r);
        case 'F': case '%':
            if (y == 0) fail(j, pos, "division by zero");
            if (x == INT64_MIN && y == -1) break;
            r = x / y;
            if ((x % y != 0) && ((x < 0) != (y < 0))) r--;     /* Python floors */
            return mk_int(op == 'F' ? r : x - r * y);
        }
    }
    double x = num(a), y = num(b);
    switch (op) {
    case '+': return mk_float(x + y);
    case '-': return mk_float(x - y);
    case '*': return mk_float(x * y);
    case '/': if (y == 0) fail(j, pos, "division by zero"); return mk_float(x / y);
    case 'F': if (y == 0) fail(j, pos, "division by zero"); return mk_float(floor(x / y));
    case '%': if (y == 0) fail(j, pos, "division by zero"); return mk_float(x - floor(x / y) * y);
    case 'p': {
        double r = pow(x, y);
        if (ints && y >= 0 && fabs(r) < 9.2e18) return mk_int((int64_t)r);
        return mk_float(r);
    }
    }
    fail(j, pos, "an arithmetic overflow");
}

/* ----------------------------------------------------- strings' methods */

static int str_has_char(const char *set, size_t n, char c) {
    for (size_t i = 0; i < n; i++)
        if (set[i] == c) return 1;
    return 0;
}

/* strip / lstrip / rstrip (which: 3, 1, 2) of whitespace or of chars */
static val strip(val s, int which, val chars) {
    const char *p = s.u.str.s;
    size_t a = 0, b = s.u.str.n;
    int ws = chars.t != V_STR;
    if (which & 1)
        while (a < b && (ws ? is_ws(p[a]) : str_has_char(chars.u.str.s, chars.u.str.n, p[a]))) a++;
    if (which & 2)
        while (b > a && (ws ? is_ws(p[b - 1]) : str_has_char(chars.u.str.s, chars.u.str.n, p[b - 1]))) b--;
    return mk_str(p + a, b - a);
}

static char lower_c(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }
static char upper_c(char c) { return c >= 'a' && c <= 'z' ? (char)(c - 32) : c; }

/* upper, lower, title, capitalize (ASCII letters; other bytes kept) */
static val recase(J *j, val s, char how) {
    val r = str_copy(j, s.u.str.s, s.u.str.n);
    char *p = (char *)r.u.str.s;
    int prev_letter = 0;
    for (size_t i = 0; i < r.u.str.n; i++) {
        char c = p[i];
        int letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (how == 'u') p[i] = upper_c(c);
        else if (how == 'l') p[i] = lower_c(c);
        else if (how == 't') p[i] = prev_letter ? lower_c(c) : upper_c(c);
        else p[i] = i == 0 ? upper_c(c) : lower_c(c);
        prev_letter = letter || ((unsigned char)c >= 0x80 && prev_letter) || (c >= '0' && c <= '9' && prev_letter);
    }
    return r;
}

static val replace(J *j, val s, val from, val to, int64_t count) {
    sbuf o = {0};
    sb_put(j, &o, "", 0);
    size_t i = 0, n = s.u.str.n, fn = from.u.str.n;
    int64_t done = 0;
    while (i <= n) {
        if ((count < 0 || done < count) && (fn == 0 || (i + fn <= n && !memcmp(s.u.str.s + i, from.u.str.s, fn)))) {
            sb_put(j, &o, to.u.str.s, to.u.str.n);
            done++;
            if (fn == 0) {
                if (i < n) sb_put(j, &o, s.u.str.s + i, 1);
                i++;
            } else {
                i += fn;
            }
            continue;
        }
        if (i < n) sb_put(j, &o, s.u.str.s + i, 1);
        i++;
    }
    return sb_val(&o);
}

static val split(J *j, val s, val sep, int64_t maxsplit, size_t pos) {
    val r = mk_list(j, 4);
    const char *p = s.u.str.s;
    size_t n = s.u.str.n, i = 0;
    if (sep.t != V_STR) {                                  /* runs of whitespace */
        while (i < n) {
            while (i < n && is_ws(p[i])) i++;
            if (i >= n) break;
            if (maxsplit >= 0 && (int64_t)r.u.l->n >= maxsplit) {
                size_t e = n;
                while (e > i && is_ws(p[e - 1])) e--;
                list_push(j, r.u.l, mk_str(p + i, e - i));
                break;
            }
            size_t b = i;
            while (i < n && !is_ws(p[i])) i++;
            list_push(j, r.u.l, mk_str(p + b, i - b));
        }
        return r;
    }
    if (!sep.u.str.n) fail(j, pos, "split: an empty separator");
    size_t b = 0;
    while (i + sep.u.str.n <= n) {
        if ((maxsplit < 0 || (int64_t)r.u.l->n < maxsplit) && !memcmp(p + i, sep.u.str.s, sep.u.str.n)) {
            list_push(j, r.u.l, mk_str(p + b, i - b));
            i += sep.u.str.n;
            b = i;
        } else {
            i++;
        }
    }
    list_push(j, r.u.l, mk_str(p + b, n - b));
    return r;
}

static val join(J *j, jlist *l, val sep, val attr) {
    sbuf o = {0};
    sb_put(j, &o, "", 0);
    for (size_t i = 0; i < l->n; i++) {
        if (i && sep.t == V_STR) sb_put(j, &o, sep.u.str.s, sep.u.str.n);
        val x = l->v[i];
        if (attr.t == V_STR) x = get_item(j, x, attr);
        put_str(j, &o, x);
    }
    return sb_val(&o);
}

static int starts_ends(val s, val x, int end) {
    if (x.t != V_STR || x.u.str.n > s.u.str.n) return 0;
    const char *p = s.u.str.s + (end ? s.u.str.n - x.u.str.n : 0);
    return !memcmp(p, x.u.str.s, x.u.str.n);
}

/* obj.name(args), for the methods of strings, lists and dicts. found = 0
 * when obj's type has no such method. */
static val method(J *j, val obj, const char *m, const args *a, size_t pos, int *found) {
    *found = 1;
    if (obj.t == V_STR) {
        if (!strcmp(m, "strip")) return strip(obj, 3, arg(a, 0, "chars", NULL));
        if (!strcmp(m, "lstrip")) return strip(obj, 1, arg(a, 0, "chars", NULL));
        if (!strcmp(m, "rstrip")) return strip(obj, 2, arg(a, 0, "chars", NULL));
        if (!strcmp(m, "upper")) return recase(j, obj, 'u');
        if (!strcmp(m, "lower")) return recase(j, obj, 'l');
        if (!strcmp(m, "title")) return recase(j, obj, 't');
        if (!strcmp(m, "capitalize")) return recase(j, obj, 'c');
        if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
            val x = arg(a, 0, NULL, NULL);
            int end = m[0] == 'e';
            if (x.t == V_LIST) {
                for (size_t i = 0; i < x.u.l->n; i++)
                    if (starts_ends(obj, x.u.l->v[i], end)) return mk_bool(1);
                return mk_bool(0);
            }
            return mk_bool(starts_ends(obj, need_str(j, x, pos, m), end));
        }
        if (!strcmp(m, "split")) {
            int f;
            val ms = arg(a, 1, "maxsplit", &f);
            return split(j, obj, arg(a, 0, "sep", NULL), f ? need_int(j, ms, pos, "maxsplit") : -1, pos);
        }
        if (!strcmp(m, "replace")) {
            int f;
            val cnt = arg(a, 2, "count", &f);
            return replace(j, obj, need_str(j, arg(a, 0, "old", NULL), pos, "replace's old"),
                           need_str(j, arg(a, 1, "new", NULL), pos, "replace's new"), f ? need_int(j, cnt, pos, "count") : -1);
        }
        if (!strcmp(m, "find") || !strcmp(m, "count")) {
            val x = need_str(j, arg(a, 0, "sub", NULL), pos, m);
            int64_t hits = 0;
            for (size_t i = 0; i + x.u.str.n <= obj.u.str.n;) {
                if (!memcmp(obj.u.str.s + i, x.u.str.s, x.u.str.n)) {
                    if (m[0] == 'f') {
                        size_t c;
                        cp_offsets(j, obj.u.str.s, i, &c);
                        return mk_int((int64_t)c);
                    }
                    hits++;
                    i += x.u.str.n ? x.u.str.n : 1;
                } else {
                    i++;
                }
            }
            return mk_int(m[0] == 'f' ? -1 : hits);
        }
        if (!strcmp(m, "join")) {
            val l = arg(a, 0, NULL, NULL);
            return join(j, items_of(j, l, pos), obj, mk_undef());
        }
    } else if (obj.t == V_LIST) {
        jlist *l = obj.u.l;
        if (!strcmp(m, "append")) { list_push(j, l, arg(a, 0, NULL, NULL)); return mk_none(); }
        if (!strcmp(m, "pop")) {
            if (!l->n) fail(j, pos, "pop from an empty list");
            int f;
            val iv = arg(a, 0, NULL, &f);
            int64_t i = f ? need_int(j, iv, pos, "pop's index") : (int64_t)l->n - 1;
            if (i < 0) i += (int64_t)l->n;
            if (i < 0 || i >= (int64_t)l->n) fail(j, pos, "pop index out of range");
            val x = l->v[i];
            memmove(l->v + i, l->v + i + 1, (l->n - (size_t)i - 1) * sizeof(val));
            l->n--;
            return x;
        }
        if (!strcmp(m, "insert")) {
            int64_t i = need_int(j, arg(a, 0, NULL, NULL), pos, "insert's index");
            if (i < 0) i += (int64_t)l->n;
            if (i < 0) i = 0;
            if (i > (int64_t)l->n) i = (int64_t)l->n;
            list_push(j, l, mk_none());
            memmove(l->v + i + 1, l->v + i, (l->n - 1 - (size_t)i) * sizeof(val));
            l->v[i] = arg(a, 1, NULL, NULL);
            return mk_none();
        }
    } else if (obj.t == V_DICT) {
        jdict *d = obj.u.d;
        if (!strcmp(m, "items") || !strcmp(m, "keys") || !strcmp(m, "values")) {
            val r = mk_list(j, d->n);
            for (size_t i = 0; i < d->n; i++) {
                if (m[0] == 'k') list_push(j, r.u.l, d->k[i]);
                else if (m[0] == 'v') list_push(j, r.u.l, d->v[i]);
                else {
                    val pair = mk_list(j, 2);
                    pair.u.l->tuple = 1;
                    list_push(j, pair.u.l, d->k[i]);
                    list_push(j, pair.u.l, d->v[i]);
                    list_push(j, r.u.l, pair);
                }
            }
            return r;
        }
        if (!strcmp(m, "get")) {
            val *v = dict_find(d, arg(a, 0, "key", NULL));
            return v ? *v : a->npos > 1 ? a->pos[1] : mk_none();
        }
    }
    *found = 0;
    return mk_undef();
}

/* ---------------------------------------------------- filters and tests */

static int run_test(J *j, const char *name, val v, const args *a, size_t pos);

/* The test named by a select/reject argument list from index `from`. */
static int test_from(J *j, const args *a, size_t from, val x, size_t pos) {
    if (a->npos <= from) return truthy(x);
    val name = need_str(j, a->pos[from], pos, "a test name");
    args rest = {a->pos + from + 1, a->npos - from - 1, NULL, NULL, 0};
    char nm[32];
    snprintf(nm, sizeof nm, "%.*s", (int)name.u.str.n, name.u.str.s);
    return run_test(j, nm, x, &rest, pos);
}

static val filter(J *j, const char *f, val x, const args *a, size_t pos);

static val apply_filter_named(J *j, val name, val x, size_t pos) {
    char nm[32];
    snprintf(nm, sizeof nm, "%.*s", (int)name.u.str.n, name.u.str.s);
    args none = {0};
    return filter(j, nm, x, &none, pos);
}

static int cmp_sort(J *j, val a, val b, val attr, size_t pos) {
    if (attr.t == V_STR) { a = get_item(j, a, attr); b = get_item(j, b, attr); }
    return cmp_vals(j, a, b, pos);
}

static val filter(J *j, const char *f, val x, const args *a, size_t pos) {
    if (!strcmp(f, "length") || !strcmp(f, "count")) return mk_int(length_of(j, x, pos));
    /* minja (llama.cpp's --jinja) trims a missing value as None: "None" */
    if (!strcmp(f, "trim")) return strip(to_str(j, x.t == V_UNDEF ? mk_none() : x), 3, arg(a, 0, "chars", NULL));
    if (!strcmp(f, "upper") || !strcmp(f, "lower") || !strcmp(f, "title") || !strcmp(f, "capitalize"))
        return recase(j, need_str(j, to_str(j, x), pos, f), f[0] == 'u' ? 'u' : f[0] == 'l' ? 'l' : f[0] == 't' ? 't' : 'c');
    if (!strcmp(f, "string")) return to_str(j, x);
    if (!strcmp(f, "safe") || !strcmp(f, "e") || !strcmp(f, "escape")) {
        if (f[0] == 's') return x;
        val s = to_str(j, x);
        sbuf o = {0};
        sb_put(j, &o, "", 0);
        for (size_t i = 0; i < s.u.str.n; i++) {
            char c = s.u.str.s[i];
            const char *r = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '"' ? "&#34;" : c == '\'' ? "&#39;" : NULL;
            if (r) sb_puts(j, &o, r); else sb_put(j, &o, &c, 1);
        }
        return sb_val(&o);
    }
    if (!strcmp(f, "tojson")) {
        int fi;
        val ind = arg(a, 0, "indent", &fi);
        int indent = fi && !is_null(ind) ? (int)need_int(j, ind, pos, "tojson's indent") : -1;
        if (indent > 64) indent = 64;
        sbuf o = {0};
        put_json(j, &o, x, indent, 0, pos);
        return sb_val(&o);
    }
    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        int boolean = truthy(arg(a, 1, "boolean", NULL));
        if (x.t == V_UNDEF || (boolean && !truthy(x))) {
            val d = arg(a, 0, "default_value", NULL);
            return d.t == V_UNDEF ? str_copy(j, "", 0) : d;
        }
        return x;
    }
    if (!strcmp(f, "int")) {
        if (x.t == V_STR) {
            char t[64];
            snprintf(t, sizeof t, "%.*s", (int)(x.u.str.n < 63 ? x.u.str.n : 63), x.u.str.s);
            char *end;
            long long v = strtoll(t, &end, 10);
            return mk_int(end != t ? v : 0);
        }
        if (x.t == V_FLOAT) return mk_int(isfinite(x.u.f) && fabs(x.u.f) < 9e18 ? (int64_t)x.u.f : 0);
        return mk_int(is_num(x) ? x.u.i : 0);
    }
    if (!strcmp(f, "float")) {
        if (x.t == V_STR) {
            char t[64];
            snprintf(t, sizeof t, "%.*s", (int)(x.u.str.n < 63 ? x.u.str.n : 63), x.u.str.s);
            return mk_float(strtod(t, NULL));
        }
        return mk_float(is_num(x) ? num(x) : 0);
    }
    if (!strcmp(f, "abs")) {
        if (x.t == V_FLOAT) return mk_float(fabs(x.u.f));
        int64_t v = need_int(j, x, pos, "abs's input");
        return mk_int(v < 0 && v != INT64_MIN ? -v : v);
    }
    if (!strcmp(f, "replace")) {
        int fc;
        val c = arg(a, 2, "count", &fc);
        return replace(j, need_str(j, to_str(j, x), pos, "replace's input"), need_str(j, arg(a, 0, "old", NULL), pos, "replace's old"),
                       need_str(j, arg(a, 1, "new", NULL), pos, "replace's new"), fc && !is_null(c) ? need_int(j, c, pos, "count") : -1);
    }
    if (!strcmp(f, "indent")) {
        val s = to_str(j, x);
        val w = arg(a, 0, "width", NULL);
        int64_t width = w.t == V_UNDEF ? 4 : need_int(j, w, pos, "indent's width");
        if (width < 0) width = 0;
        if (width > 256) width = 256;
        int first = truthy(arg(a, 1, "first", NULL)), blank = truthy(arg(a, 2, "blank", NULL));
        sbuf o = {0};
        sb_put(j, &o, "", 0);
        size_t i = 0, n = s.u.str.n;
        int line = 0;
        while (i <= n) {
            size_t e = i;
            while (e < n && s.u.str.s[e] != '\n') e++;
            int empty = e == i;
            if ((line > 0 || first) && (!empty || blank) && !(e == n && empty && line > 0))
                for (int64_t k = 0; k < width; k++) sb_puts(j, &o, " ");
            sb_put(j, &o, s.u.str.s + i, e - i);
            if (e < n) sb_puts(j, &o, "\n");
            i = e + 1;
            line++;
        }
        return sb_val(&o);
    }
    if (!strcmp(f, "join")) return join(j, items_of(j, x, pos), arg(a, 0, "d", NULL), arg(a, 1, "attribute", NULL));
    if (!strcmp(f, "first") || !strcmp(f, "last")) {
        if (x.t == V_STR) { val idx = mk_int(f[0] == 'f' ? 0 : -1); return get_item(j, x, idx); }
        jlist *l = items_of(j, x, pos);
        return l->n ? l->v[f[0] == 'f' ? 0 : l->n - 1] : mk_undef();
    }
    if (!strcmp(f, "list")) {
        jlist *l = items_of(j, x, pos);
        val r = mk_list(j, l->n);
        for (size_t i = 0; i < l->n; i++) list_push(j, r.u.l, l->v[i]);
        return r;
    }
    if (!strcmp(f, "reverse")) {
        if (x.t == V_STR) return do_slice(j, x, mk_undef(), mk_undef(), mk_int(-1), pos);
        jlist *l = items_of(j, x, pos);
        val r = mk_list(j, l->n);
        for (size_t i = l->n; i-- > 0;) list_push(j, r.u.l, l->v[i]);
        return r;
    }
    if (!strcmp(f, "items")) {
        if (x.t == V_UNDEF) return mk_list(j, 1);
        if (x.t != V_DICT) fail(j, pos, "items needs a dict, not a %s", type_name(x));
        int found;
        args none = {0};
        return method(j, x, "items", &none, pos, &found);
    }
    if (!strcmp(f, "dictsort")) {
        if (x.t != V_DICT) fail(j, pos, "dictsort needs a dict, not a %s", type_name(x));
        int found;
        args none = {0};
        val r = method(j, x, "items", &none, pos, &found);
        jlist *l = r.u.l;
        for (size_t i = 1; i < l->n; i++)                       /* stable insertion sort by key */
            for (size_t k = i; k > 0 && cmp_vals(j, l->v[k - 1].u.l->v[0], l->v[k].u.l->v[0], pos) > 0; k--) {
                val t = l->v[k]; l->v[k] = l->v[k - 1]; l->v[k - 1] = t;
            }
        return r;
    }
    if (!strcmp(f, "sort")) {
        jlist *l = items_of(j, x, pos);
        int rev = truthy(arg(a, 0, "reverse", NULL));
        val attr = arg(a, 2, "attribute", NULL);
        val r = mk_list(j, l->n);
        for (size_t i = 0; i < l->n; i++) list_push(j, r.u.l, l->v[i]);
        jlist *o = r.u.l;
        if (o->n > 4096) fail(j, pos, "sort: more than 4096 items");
        for (size_t i = 1; i < o->n; i++)
            for (size_t k = i; k > 0; k--) {
                int c = cmp_sort(j, o->v[k - 1], o->v[k], attr, pos);
                if (rev ? c >= 0 : c <= 0) break;
                val t = o->v[k]; o->v[k] = o->v[k - 1]; o->v[k - 1] = t;
            }
        return r;
    }
    if (!strcmp(f, "unique")) {
        jlist *l = items_of(j, x, pos);
        val r = mk_list(j, l->n);
        if (l->n > 4096) fail(j, pos, "unique: more than 4096 items");
        for (size_t i = 0; i < l->n; i++)
            if (!contains(j, r, l->v[i], pos)) list_push(j, r.u.l, l->v[i]);
        return r;
    }
    if (!strcmp(f, "sum") || !strcmp(f, "min") || !strcmp(f, "max")) {
        jlist *l = items_of(j, x, pos);
        val attr = arg(a, f[1] == 'u' ? 0 : 1, "attribute", NULL);
        if (f[1] == 'u') {
            val s = mk_int(0);
            for (size_t i = 0; i < l->n; i++)
                s = arith(j, '+', s, attr.t == V_STR ? get_item(j, l->v[i], attr) : l->v[i], pos);
            return s;
        }
        if (!l->n) return mk_undef();
        val best = l->v[0];
        for (size_t i = 1; i < l->n; i++) {
            int c = cmp_sort(j, l->v[i], best, attr, pos);
            if (f[1] == 'i' ? c < 0 : c > 0) best = l->v[i];
        }
        return best;
    }
    if (!strcmp(f, "map")) {
        jlist *l = items_of(j, x, pos);
        int fa;
        val attr = arg(a, 99, "attribute", &fa);
        val def = arg(a, 99, "default", NULL);
        val r = mk_list(j, l->n);
        for (size_t i = 0; i < l->n; i++) {
            val y;
            if (fa) {
                y = get_item(j, l->v[i], attr);
                if (y.t == V_UNDEF && def.t != V_UNDEF) y = def;
            } else if (a->npos) {
                y = apply_filter_named(j, need_str(j, a->pos[0], pos, "map's filter"), l->v[i], pos);
            } else {
                fail(j, pos, "map needs a filter name or attribute=");
            }
            list_push(j, r.u.l, y);
        }
        return r;
    }
    if (!strcmp(f, "select") || !strcmp(f, "reject") || !strcmp(f, "selectattr") || !strcmp(f, "rejectattr")) {
        jlist *l = items_of(j, x, pos);
        int keep = f[0] == 's', by_attr = strlen(f) > 6;
        val r = mk_list(j, 4);
        for (size_t i = 0; i < l->n; i++) {
            val y = l->v[i];
            if (by_attr) y = get_item(j, y, need_str(j, arg(a, 0, NULL, NULL), pos, "an attribute name"));
            if (test_from(j, a, by_attr ? 1 : 0, y, pos) == keep) list_push(j, r.u.l, l->v[i]);
        }
        return r;
    }
    if (!strcmp(f, "batch") || !strcmp(f, "slice") || !strcmp(f, "wordcount") || !strcmp(f, "center") ||
        !strcmp(f, "format") || !strcmp(f, "truncate") || !strcmp(f, "urlencode"))
        fail(j, pos, "the filter '%s' is not supported", f);
    fail(j, pos, "unknown filter '%s'", f);
}

static int run_test(J *j, const char *t, val v, const args *a, size_t pos) {
    if (!strcmp(t, "defined")) return v.t != V_UNDEF && v.t != V_NONE;   /* as minja */
    if (!strcmp(t, "undefined")) return v.t == V_UNDEF || v.t == V_NONE;
    if (!strcmp(t, "none")) return is_null(v);
    if (!strcmp(t, "string")) return v.t == V_STR;
    if (!strcmp(t, "number")) return v.t == V_INT || v.t == V_FLOAT;
    if (!strcmp(t, "integer")) return v.t == V_INT;
    if (!strcmp(t, "float")) return v.t == V_FLOAT;
    if (!strcmp(t, "boolean")) return v.t == V_BOOL;
    if (!strcmp(t, "true")) return v.t == V_BOOL && v.u.i;
    if (!strcmp(t, "false")) return v.t == V_BOOL && !v.u.i;
    if (!strcmp(t, "mapping")) return v.t == V_DICT;
    if (!strcmp(t, "iterable")) return v.t == V_LIST || v.t == V_DICT || v.t == V_STR;
    if (!strcmp(t, "sequence")) return v.t == V_LIST || v.t == V_STR || v.t == V_DICT;
    if (!strcmp(t, "callable")) return v.t == V_FUNC || v.t == V_MACRO;
    if (!strcmp(t, "odd") || !strcmp(t, "even")) {
        int64_t i = need_int(j, v, pos, "the value tested");
        return (i % 2 != 0) == (t[0] == 'o');
    }
    if (!strcmp(t, "divisibleby")) {
        int64_t d = need_int(j, arg(a, 0, "num", NULL), pos, "divisibleby's number");
        return d != 0 && need_int(j, v, pos, "the value tested") % d == 0;
    }
    if (!strcmp(t, "lower") || !strcmp(t, "upper")) {
        if (v.t != V_STR) return 0;
        for (size_t i = 0; i < v.u.str.n; i++) {
            char c = v.u.str.s[i];
            if (t[0] == 'l' ? (c >= 'A' && c <= 'Z') : (c >= 'a' && c <= 'z')) return 0;
        }
        return 1;
    }
    val o = arg(a, 0, NULL, NULL);
    if (!strcmp(t, "equalto") || !strcmp(t, "eq") || !strcmp(t, "==") || !strcmp(t, "sameas")) return veq(v, o);
    if (!strcmp(t, "ne") || !strcmp(t, "!=")) return !veq(v, o);
    if (!strcmp(t, "lt") || !strcmp(t, "lessthan")) return cmp_vals(j, v, o, pos) < 0;
    if (!strcmp(t, "gt") || !strcmp(t, "greaterthan")) return cmp_vals(j, v, o, pos) > 0;
    if (!strcmp(t, "le")) return cmp_vals(j, v, o, pos) <= 0;
    if (!strcmp(t, "ge")) return cmp_vals(j, v, o, pos) >= 0;
    if (!strcmp(t, "in")) return contains(j, o, v, pos);
    fail(j, pos, "unknown test '%s'", t);
}

/* ---------------------------------------------------------- functions */

static val call_macro(J *j, val mv, const args *a, size_t pos) {
    node *m = mv.u.mac.n;
    if (++j->depth > MAX_DEPTH) fail(j, pos, "macros call each other too deeply");
    scope *sc = new_scope(j, mv.u.mac.env);
    for (size_t i = 0; i < m->nnames; i++) {
        int f;
        val v = arg(a, i, m->names[i], &f);
        if (!f && m->kids[i]) v = eval(j, m->kids[i], sc);
        dict_set_s(j, &sc->vars, m->names[i], v);
    }
    if (a->npos > m->nnames) fail(j, pos, "the macro '%s' takes %zu arguments, %zu given", m->name, m->nnames, a->npos);
    size_t mark = j->out_n;
    int brk = j->brk;
    exec(j, m->b, sc);
    j->brk = brk;
    val r = str_copy(j, j->out ? j->out + mark : "", j->out_n - mark);
    j->out_n = mark;
    j->depth--;
    return r;
}

static val call_func(J *j, int which, const args *a, size_t pos) {
    switch (which) {
    case F_RAISE: {
        val m = to_str(j, arg(a, 0, "message", NULL));
        fail(j, pos, "the template raised an error: %.*s", (int)(m.u.str.n < 150 ? m.u.str.n : 150), m.u.str.s);
    }
    case F_RANGE: {
        int64_t lo = 0, hi, st = 1;
        if (a->npos == 1) hi = need_int(j, a->pos[0], pos, "range's stop");
        else if (a->npos == 2 || a->npos == 3) {
            lo = need_int(j, a->pos[0], pos, "range's start");
            hi = need_int(j, a->pos[1], pos, "range's stop");
            if (a->npos == 3) st = need_int(j, a->pos[2], pos, "range's step");
        } else fail(j, pos, "range takes 1 to 3 arguments");
        if (st == 0) fail(j, pos, "range's step cannot be zero");
        /* the count first (in 128 bits, so no bound overflows) */
        __int128 span = st > 0 ? (__int128)hi - lo : (__int128)lo - hi, step_abs = st > 0 ? st : -(__int128)st;
        __int128 count = span <= 0 ? 0 : (span + step_abs - 1) / step_abs;
        if (count > MAX_RANGE) fail(j, pos, "range is too long (more than %d numbers)", MAX_RANGE);
        j->steps += (unsigned long long)count / 8;
        step(j, pos);
        val r = mk_list(j, (size_t)count);
        for (int64_t i = 0; i < (int64_t)count; i++) list_push(j, r.u.l, mk_int(lo + i * st));
        return r;
    }
    case F_NAMESPACE: case F_DICT: {
        val d = mk_dict(j);
        if (a->npos == 1 && a->pos[0].t == V_DICT)
            for (size_t i = 0; i < a->pos[0].u.d->n; i++) dict_set(j, d.u.d, a->pos[0].u.d->k[i], a->pos[0].u.d->v[i]);
        for (size_t i = 0; i < a->nkw; i++) dict_set_s(j, d.u.d, a->kn[i], a->kv[i]);
        return d;
    }
    case F_STRFTIME: {
        val f = need_str(j, arg(a, 0, "format", NULL), pos, "strftime_now's format");
        char fmt[128], out[256];
        snprintf(fmt, sizeof fmt, "%.*s", (int)(f.u.str.n < 127 ? f.u.str.n : 127), f.u.str.s);
        time_t t = (time_t)j->ctx->now;
        struct tm tm;
        if (!localtime_r(&t, &tm)) fail(j, pos, "strftime_now: the time cannot be converted");
        size_t n = strftime(out, sizeof out, fmt, &tm);
        return str_copy(j, out, n);
    }
    }
    fail(j, pos, "not callable");
}

/* ------------------------------------------------------------ evaluate */

static val eval(J *j, node *n, scope *sc) {
    if (++j->depth > MAX_DEPTH + 64) fail(j, n->pos, "the expression is nested too deeply");
    val r;
    switch (n->kind) {
    case E_LIT: r = n->v; break;
    case E_VAR: { val *v = lookup(sc, n->name); r = v ? *v : mk_undef(); break; }
    case E_ATTR: r = get_item(j, eval(j, n->a, sc), mk_str(n->name, strlen(n->name))); break;
    case E_INDEX: { val o = eval(j, n->a, sc); r = get_item(j, o, eval(j, n->b, sc)); break; }
    case E_SLICE: {
        val o = eval(j, n->a, sc);
        val a = n->b ? eval(j, n->b, sc) : mk_undef(), b = n->c ? eval(j, n->c, sc) : mk_undef();
        val c = n->d ? eval(j, n->d, sc) : mk_undef();
        r = do_slice(j, o, a, b, c, n->pos);
        break;
    }
    case E_CALL: {
        if (n->a->kind == E_ATTR) {                         /* obj.method(...) */
            val obj = eval(j, n->a->a, sc);
            args a = eval_args(j, n, sc);
            int found;
            r = method(j, obj, n->a->name, &a, n->pos, &found);
            if (found) break;
            val f = get_item(j, obj, mk_str(n->a->name, strlen(n->a->name)));
            if (f.t == V_MACRO) { r = call_macro(j, f, &a, n->pos); break; }
            if (f.t == V_FUNC) { r = call_func(j, (int)f.u.i, &a, n->pos); break; }
            fail(j, n->pos, "a %s has no method '%s'", type_name(obj), n->a->name);
        }
        val f = eval(j, n->a, sc);
        args a = eval_args(j, n, sc);
        if (f.t == V_MACRO) r = call_macro(j, f, &a, n->pos);
        else if (f.t == V_FUNC) r = call_func(j, (int)f.u.i, &a, n->pos);
        else if (n->a->kind == E_VAR) fail(j, n->pos, "'%s' is not a function (%s)", n->a->name, type_name(f));
        else fail(j, n->pos, "a %s is not callable", type_name(f));
        break;
    }
    case E_FILTER: {
        val x = eval(j, n->a, sc);
        args a = eval_args(j, n, sc);
        r = filter(j, n->name, x, &a, n->pos);
        break;
    }
    case E_TEST: {
        val x = eval(j, n->a, sc);
        args a = eval_args(j, n, sc);
        r = mk_bool(run_test(j, n->name, x, &a, n->pos) != n->op);
        break;
    }
    case E_NOT: r = mk_bool(!truthy(eval(j, n->a, sc))); break;
    case E_NEG: {
        val x = eval(j, n->a, sc);
        if (x.t == V_FLOAT) r = mk_float(-x.u.f);
        else if ((x.t == V_INT || x.t == V_BOOL) && x.u.i != INT64_MIN) r = mk_int(-x.u.i);
        else fail(j, n->pos, "cannot negate a %s", type_name(x));
        break;
    }
    case E_AND: { val a = eval(j, n->a, sc); r = truthy(a) ? eval(j, n->b, sc) : a; break; }
    case E_OR: { val a = eval(j, n->a, sc); r = truthy(a) ? a : eval(j, n->b, sc); break; }
    case E_COND: r = truthy(eval(j, n->a, sc)) ? eval(j, n->b, sc) : n->c ? eval(j, n->c, sc) : mk_undef(); break;
    case E_LIST: {
        r = mk_list(j, n->nkids);
        r.u.l->tuple = n->op;
        for (size_t i = 0; i < n->nkids; i++) list_push(j, r.u.l, eval(j, n->kids[i], sc));
        break;
    }
    case E_DICT: {
        r = mk_dict(j);
        for (size_t i = 0; i + 1 < n->nkids; i += 2) {
            val k = eval(j, n->kids[i], sc);
            dict_set(j, r.u.d, k, eval(j, n->kids[i + 1], sc));
        }
        break;
    }
    case E_BIN: {
        val a = eval(j, n->a, sc), b = eval(j, n->b, sc);
        switch (n->op) {
        case '=': r = mk_bool(veq(a, b)); break;
        case '!': r = mk_bool(!veq(a, b)); break;
        case '<': r = mk_bool(cmp_vals(j, a, b, n->pos) < 0); break;
        case '>': r = mk_bool(cmp_vals(j, a, b, n->pos) > 0); break;
        case 'l': r = mk_bool(cmp_vals(j, a, b, n->pos) <= 0); break;
        case 'g': r = mk_bool(cmp_vals(j, a, b, n->pos) >= 0); break;
        case 'i': r = mk_bool(contains(j, b, a, n->pos)); break;
        case 'n': r = mk_bool(!contains(j, b, a, n->pos)); break;
        default: r = arith(j, n->op, a, b, n->pos);
        }
        break;
    }
    default: fail(j, n->pos, "internal: not an expression");
    }
    j->depth--;
    return r;
}

/* Binds loop or set targets: one name takes the value, several unpack it. */
static void bind(J *j, scope *sc, node *n, val v) {
    if (n->nnames == 1) { dict_set_s(j, &sc->vars, n->names[0], v); return; }
    jlist *l = items_of(j, v, n->pos);
    if (l->n != n->nnames) fail(j, n->pos, "cannot unpack %zu values into %zu names", l->n, n->nnames);
    for (size_t i = 0; i < n->nnames; i++) dict_set_s(j, &sc->vars, n->names[i], l->v[i]);
}

static void exec_for(J *j, node *n, scope *sc) {
    jlist *all = items_of(j, eval(j, n->a, sc), n->pos);
    scope *inner = new_scope(j, sc);
    jlist *l = all;
    if (n->d) {                                          /* for x in xs if cond */
        val kept = mk_list(j, all->n);
        for (size_t i = 0; i < all->n; i++) {
            step(j, n->pos);
            bind(j, inner, n, all->v[i]);
            if (truthy(eval(j, n->d, inner))) list_push(j, kept.u.l, all->v[i]);
        }
        l = kept.u.l;
    }
    if (!l->n) {
        if (n->c) exec(j, n->c, sc);
        return;
    }
    /* loop.*: the keys set once, the values rewritten each turn */
    static const char *const keys[] = {"index0", "index", "revindex0", "revindex", "first", "last", "length",
                                       "previtem", "nextitem"};
    val loop = mk_dict(j);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) dict_set_s(j, loop.u.d, keys[k], mk_undef());
    dict_set_s(j, &inner->vars, "loop", loop);
    for (size_t i = 0; i < l->n; i++) {
        step(j, n->pos);
        int64_t len = (int64_t)l->n, k = (int64_t)i;
        val *lv = loop.u.d->v;
        lv[0] = mk_int(k);
        lv[1] = mk_int(k + 1);
        lv[2] = mk_int(len - k - 1);
        lv[3] = mk_int(len - k);
        lv[4] = mk_bool(i == 0);
        lv[5] = mk_bool(i + 1 == l->n);
        lv[6] = mk_int(len);
        lv[7] = i ? l->v[i - 1] : mk_undef();
        lv[8] = i + 1 < l->n ? l->v[i + 1] : mk_undef();
        bind(j, inner, n, l->v[i]);
        exec(j, n->b, inner);
        if (j->brk == 1) { j->brk = 0; break; }
        j->brk = 0;
    }
}

static void exec(J *j, node *n, scope *sc) {
    step(j, n->pos);
    switch (n->kind) {
    case N_BLOCK:
        for (size_t i = 0; i < n->nkids && !j->brk; i++) exec(j, n->kids[i], sc);
        return;
    case N_TEXT: out_put(j, n->v.u.str.s, n->v.u.str.n); return;
    case N_OUT: {
        val v = eval(j, n->a, sc);
        if (v.t == V_STR) { out_put(j, v.u.str.s, v.u.str.n); return; }
        sbuf b = {0};
        put_str(j, &b, v);
        out_put(j, b.p, b.n);
        return;
    }
    case N_IF:
        for (; n && n->kind == N_IF; n = n->c)
            if (truthy(eval(j, n->a, sc))) { exec(j, n->b, sc); return; }
        if (n) exec(j, n, sc);
        return;
    case N_FOR: exec_for(j, n, sc); return;
    case N_SET: bind(j, sc, n, eval(j, n->a, sc)); return;
    case N_SETATTR: {
        val *obj = lookup(sc, n->name);
        if (!obj || obj->t != V_DICT) fail(j, n->pos, "'%s' is not a namespace", n->name);
        dict_set_s(j, obj->u.d, n->name2, eval(j, n->a, sc));
        return;
    }
    case N_SETBLOCK: {
        size_t mark = j->out_n;
        exec(j, n->b, sc);
        val v = str_copy(j, j->out ? j->out + mark : "", j->out_n - mark);
        j->out_n = mark;
        dict_set_s(j, &sc->vars, n->name, v);
        return;
    }
    case N_FILTERBLOCK: {
        size_t mark = j->out_n;
        exec(j, n->b, sc);
        val body = str_copy(j, j->out ? j->out + mark : "", j->out_n - mark);
        j->out_n = mark;
        args a = eval_args(j, n->a, sc);
        val v = to_str(j, filter(j, n->a->name, body, &a, n->pos));
        out_put(j, v.u.str.s, v.u.str.n);
        return;
    }
    case N_MACRO: {
        val m = {.t = V_MACRO};
        m.u.mac.n = n;
        m.u.mac.env = sc;
        dict_set_s(j, &sc->vars, n->name, m);
        return;
    }
    case N_BREAK: j->brk = 1; return;
    case N_CONTINUE: j->brk = 2; return;
    default: fail(j, n->pos, "internal: not a statement");
    }
}

/* ------------------------------------------------------------------ API */

static void free_all(J *j) {
    for (chunk *c = j->mem; c;) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
    j->mem = NULL;
}

static val func(int which) { val v = {.t = V_FUNC}; v.u.i = which; return v; }

/* ------------------------------------------- the context's messages */

/* A caller's value; with args, a string that comes with its JSON reading
 * (a tool call's arguments) is that reading. */
static val from_value(J *j, const sm_chat_value *v, int depth, int as_args) {
    if (!v) return mk_none();
    if (depth > MAX_DEPTH) fail(j, 0, "a message's or tool's value is nested too deeply");
    switch (v->type) {
    case SM_CHAT_VALUE_BOOL: return mk_bool(v->i != 0);
    case SM_CHAT_VALUE_INT: return mk_int(v->i);
    case SM_CHAT_VALUE_FLOAT: return mk_float(v->f);
    case SM_CHAT_VALUE_STRING:
        if (as_args && v->json) return from_value(j, v->json, depth + 1, 0);
        return str_copy(j, v->s ? v->s : "", v->s ? v->n : 0);
    case SM_CHAT_VALUE_LIST: {
        val l = mk_list(j, v->n);
        for (size_t i = 0; i < v->n; i++) list_push(j, l.u.l, from_value(j, &v->items[i], depth + 1, 0));
        return l;
    }
    case SM_CHAT_VALUE_DICT: {
        val d = mk_dict(j);
        for (size_t i = 0; i < v->n; i++) dict_set_s(j, d.u.d, v->keys[i] ? v->keys[i] : "", from_value(j, &v->items[i], depth + 1, 0));
        return d;
    }
    default: return mk_none();
    }
}

static void dict_del_s(jdict *d, const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < d->n; i++)
        if (key_eq(d->k[i], s, n)) {
            memmove(d->k + i, d->k + i + 1, (d->n - i - 1) * sizeof(val));
            memmove(d->v + i, d->v + i + 1, (d->n - i - 1) * sizeof(val));
            d->n--;
            return;
        }
}

static val dict_get_s(val d, const char *s) {
    val *p = d.t == V_DICT ? dict_find_s(d.u.d, s) : NULL;
    return p ? *p : mk_undef();
}

static val json_text(J *j, val v, int indent, int style) {
    sbuf b = {0};
    put_json_as(j, &b, v, indent, 0, 0, style);
    return sb_val(&b);
}

static val concat3(J *j, val a, const char *mid, val c) {
    sbuf b = {0};
    sb_put(j, &b, a.u.str.s, a.u.str.n);
    sb_puts(j, &b, mid);
    sb_put(j, &b, c.u.str.s, c.u.str.n);
    return sb_val(&b);
}

/* Message i as llama.cpp's server gives it to minja: role, content (none
 * when NULL), then the caller's extra fields; a tool call's arguments as
 * objects when a polyfill reads them so. */
static val message_val(J *j, const sm_jinja_ctx *ctx, size_t i) {
    val m = mk_dict(j);
    dict_set_s(j, m.u.d, "role", cstr(j, ctx->msgs[i].role ? ctx->msgs[i].role : ""));
    dict_set_s(j, m.u.d, "content", ctx->msgs[i].content ? cstr(j, ctx->msgs[i].content) : mk_none());
    const sm_chat_value *x = ctx->extras ? ctx->extras[i] : NULL;
    int read_args = (ctx->polyfill & (SM_JINJA_POLY_OBJECT_ARGS | SM_JINJA_POLY_TOOL_CALLS)) != 0;
    for (size_t k = 0; x && x->type == SM_CHAT_VALUE_DICT && k < x->n; k++) {
        const char *key = x->keys[k] ? x->keys[k] : "";
        const sm_chat_value *v = &x->items[k];
        if (strcmp(key, "tool_calls") || !read_args || v->type != SM_CHAT_VALUE_LIST) {
            dict_set_s(j, m.u.d, key, from_value(j, v, 0, 0));
            continue;
        }
        /* tool_calls[*].function.arguments read as JSON for the polyfills */
        val calls = mk_list(j, v->n);
        for (size_t c = 0; c < v->n; c++) {
            const sm_chat_value *tc = &v->items[c];
            val t = from_value(j, tc, 0, 0);
            for (size_t f = 0; tc->type == SM_CHAT_VALUE_DICT && f < tc->n; f++) {
                const sm_chat_value *fn = &tc->items[f];
                if (!tc->keys[f] || strcmp(tc->keys[f], "function") || fn->type != SM_CHAT_VALUE_DICT) continue;
                val fv = dict_get_s(t, "function");
                for (size_t a = 0; a < fn->n; a++)
                    if (fn->keys[a] && !strcmp(fn->keys[a], "arguments"))
                        dict_set_s(j, fv.u.d, "arguments", from_value(j, &fn->items[a], 0, 1));
            }
            list_push(j, calls.u.l, t);
        }
        dict_set_s(j, m.u.d, key, calls);
    }
    return m;
}

static val role_content(J *j, const char *role, val content) {
    val m = mk_dict(j);
    dict_set_s(j, m.u.d, "role", cstr(j, role));
    dict_set_s(j, m.u.d, "content", content);
    return m;
}

/* `messages`, through minja's polyfills (chat-template.hpp's apply) when
 * ctx->polyfill asks for them. */
static val build_messages(J *j, const sm_jinja_ctx *ctx) {
    val in = mk_list(j, ctx->n_msgs + 1);
    for (size_t i = 0; i < ctx->n_msgs; i++) list_push(j, in.u.l, message_val(j, ctx, i));
    unsigned poly = ctx->polyfill;
    if (!poly) return in;
    if (poly & SM_JINJA_POLY_TOOLS) {
        /* add_system: the text joins the first system message or becomes one */
        sbuf b = {0};
        sb_puts(j, &b, "You can call any of the following tools to satisfy the user's requests: ");
        val tools = from_value(j, ctx->tools, 0, 0);
        put_json_as(j, &b, tools, 2, 0, 0, JSON_MINJA);
        if (ctx->tool_call_example && *ctx->tool_call_example) {
            sb_puts(j, &b, "\n\nExample tool call syntax:\n\n");
            sb_puts(j, &b, ctx->tool_call_example);
            sb_puts(j, &b, "\n\n");
        }
        val text = sb_val(&b);
        val first = in.u.l->n ? in.u.l->v[0] : mk_undef();
        val r = dict_get_s(first, "role"), c = dict_get_s(first, "content");
        if (r.t == V_STR && key_eq(r, "system", 6)) {
            if (c.t != V_STR) fail(j, 0, "the first system message's content is not text");
            in.u.l->v[0] = role_content(j, "system", concat3(j, c, "\n\n", text));
        } else {
            list_push(j, in.u.l, mk_none());
            memmove(in.u.l->v + 1, in.u.l->v, (in.u.l->n - 1) * sizeof(val));
            in.u.l->v[0] = role_content(j, "system", text);
        }
    }
    val out = mk_list(j, in.u.l->n);
    sbuf pending = {0};
    for (size_t i = 0; i < in.u.l->n; i++) {
        val m = in.u.l->v[i];
        val r = dict_get_s(m, "role");
        int is_system = r.t == V_STR && key_eq(r, "system", 6), is_user = r.t == V_STR && key_eq(r, "user", 4);
        int is_tool = r.t == V_STR && key_eq(r, "tool", 4);
        val calls = dict_get_s(m, "tool_calls");
        if ((poly & SM_JINJA_POLY_TOOL_CALLS) && calls.t != V_UNDEF) {
            val list = mk_list(j, 4), c = dict_get_s(m, "content");
            for (size_t k = 0; calls.t == V_LIST && k < calls.u.l->n; k++) {
                val tc = calls.u.l->v[k], type = dict_get_s(tc, "type");
                if (!(type.t == V_STR && key_eq(type, "function", 8))) continue;
                val fn = dict_get_s(tc, "function"), o = mk_dict(j);
                dict_set_s(j, o.u.d, "name", dict_get_s(fn, "name"));
                dict_set_s(j, o.u.d, "arguments", dict_get_s(fn, "arguments"));
                val id = dict_get_s(tc, "id");
                if (id.t != V_UNDEF) dict_set_s(j, o.u.d, "id", id);
                list_push(j, list.u.l, o);
            }
            val o = mk_dict(j);
            dict_set_s(j, o.u.d, "tool_calls", list);
            if (!is_null(c) && !(c.t == V_STR && c.u.str.n == 0)) dict_set_s(j, o.u.d, "content", c);
            dict_set_s(j, m.u.d, "content", json_text(j, o, 2, JSON_NL));
            dict_del_s(m.u.d, "tool_calls");
        }
        if ((poly & SM_JINJA_POLY_TOOL_RESPONSES) && is_tool) {
            dict_set_s(j, m.u.d, "role", cstr(j, "user"));
            val o = mk_dict(j), resp = mk_dict(j), name = dict_get_s(m, "name"), id = dict_get_s(m, "tool_call_id");
            dict_set_s(j, resp.u.d, "content", dict_get_s(m, "content"));
            if (name.t != V_UNDEF) dict_set_s(j, resp.u.d, "name", name);
            if (id.t != V_UNDEF) dict_set_s(j, resp.u.d, "tool_call_id", id);
            dict_set_s(j, o.u.d, "tool_response", resp);
            dict_set_s(j, m.u.d, "content", json_text(j, o, 2, JSON_NL));
            dict_del_s(m.u.d, "name");
        }
        val c = dict_get_s(m, "content");
        if ((poly & SM_JINJA_POLY_SYSTEM) && !is_null(c)) {
            if (c.t != V_STR) fail(j, 0, "a message's content is not text");
            if (is_system) {
                if (pending.n) sb_puts(j, &pending, "\n");
                sb_put(j, &pending, c.u.str.s, c.u.str.n);
                continue;
            }
            if (is_user) {
                if (pending.n) {
                    if (c.u.str.n) sb_puts(j, &pending, "\n");
                    sb_put(j, &pending, c.u.str.s, c.u.str.n);
                    dict_set_s(j, m.u.d, "content", sb_val(&pending));
                    pending = (sbuf){0};
                }
            } else if (pending.n) {
                list_push(j, out.u.l, role_content(j, "user", sb_val(&pending)));
                pending = (sbuf){0};
            }
        }
        list_push(j, out.u.l, m);
    }
    if (pending.n) list_push(j, out.u.l, role_content(j, "user", sb_val(&pending)));
    return out;
}

sm_status sm_jinja_render(const char *src, size_t len, const sm_jinja_ctx *ctx, char **out, size_t *out_len,
                          sm_error *err) {
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!src || !ctx || !out) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_jinja_render: no template, context or output");
    J *j = calloc(1, sizeof *j);
    if (!j) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    j->src = src;
    j->len = len;
    j->ctx = ctx;
    if (setjmp(j->fail)) {
        sm_status st = sm_fail(err, j->status, "%s", j->msg);
        free(j->out);
        free_all(j);
        free(j);
        return st;
    }
    toks t = {0};
    lex(j, &t);
    TP tp = {j, &t, 0, 0};
    const char *ended = NULL;
    node *root = parse_block(&tp, NULL, &ended);

    scope *globals = new_scope(j, NULL);
    j->globals = globals;
    dict_set_s(j, &globals->vars, "messages", build_messages(j, ctx));
    if (ctx->tools) dict_set_s(j, &globals->vars, "tools", from_value(j, ctx->tools, 0, 0));
    /* further variables, set after the others as minja's extra_context */
    for (size_t i = 0; ctx->vars && ctx->vars->type == SM_CHAT_VALUE_DICT && i < ctx->vars->n; i++)
        if (ctx->vars->keys[i]) dict_set_s(j, &globals->vars, ctx->vars->keys[i], from_value(j, &ctx->vars->items[i], 0, 0));
    dict_set_s(j, &globals->vars, "add_generation_prompt", mk_bool(ctx->add_generation_prompt));
    dict_set_s(j, &globals->vars, "bos_token", cstr(j, ctx->bos_token ? ctx->bos_token : ""));
    dict_set_s(j, &globals->vars, "eos_token", cstr(j, ctx->eos_token ? ctx->eos_token : ""));
    dict_set_s(j, &globals->vars, "raise_exception", func(F_RAISE));
    dict_set_s(j, &globals->vars, "range", func(F_RANGE));
    dict_set_s(j, &globals->vars, "namespace", func(F_NAMESPACE));
    dict_set_s(j, &globals->vars, "dict", func(F_DICT));
    dict_set_s(j, &globals->vars, "strftime_now", func(F_STRFTIME));
    exec(j, root, new_scope(j, globals));

    if (!j->out) {
        j->out = malloc(1);
        if (!j->out) oom(j);
    }
    j->out[j->out_n] = 0;
    *out = j->out;
    if (out_len) *out_len = j->out_n;
    free_all(j);
    free(j);
    return SM_OK;
}

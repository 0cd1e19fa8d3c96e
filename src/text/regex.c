/* regex.c - see regex.h. Patterns are parsed into a node graph once; a
 * match walks it with explicit continuations, so backtracking into a
 * repeat or out of a group needs no copying. A repeat of a single-character
 * class (the common \p{L}+) is matched iteratively to keep recursion shallow. */
#include "regex.h"
#include "unicode.h"
#include "core/alloc.h"

#include <stdio.h>
#include <string.h>

enum { N_SET, N_ALT, N_GROUP, N_LOOK, N_REPEAT, N_BOL, N_EOL };
enum { I_RANGE, I_CATS, I_NOT_CATS, I_SPACE, I_NOT_SPACE };

typedef struct set_item {
    int kind;
    uint32_t lo, hi;
    uint64_t cats;     /* bit per sm_unicode_category */
} set_item;

typedef struct node node;
struct node {
    int type;
    node *next;
    /* N_SET */
    int negate, n_items;
    set_item *items;
    /* N_ALT */
    int n_alts;
    node **alts;
    /* N_GROUP, N_LOOK, N_REPEAT */
    node *child;
    int min, max;      /* max < 0: unbounded */
};

struct sm_regex {
    node *root;
    node *nodes;
    int n_nodes, cap_nodes;
    set_item *items;
    int n_items, cap_items;
    node **alt_ptrs;
    int n_alt_ptrs, cap_alt_ptrs;
};

/* ---------------------------------------------------------------- parse */

typedef struct parser {
    sm_regex *re;
    const uint32_t *p;
    size_t n, i;
    char *err;
    size_t err_cap;
    int failed;
} parser;

static void perr(parser *ps, const char *msg) {
    if (!ps->failed && ps->err) snprintf(ps->err, ps->err_cap, "regex: %s at position %zu", msg, ps->i);
    ps->failed = 1;
}

static node *new_node(parser *ps, int type) {
    sm_regex *re = ps->re;
    if (re->n_nodes >= re->cap_nodes) { perr(ps, "pattern too complex"); return NULL; }
    node *n = &re->nodes[re->n_nodes++];
    memset(n, 0, sizeof *n);
    n->type = type;
    return n;
}

static set_item *new_item(parser *ps) {
    sm_regex *re = ps->re;
    if (re->n_items >= re->cap_items) { perr(ps, "pattern too complex"); return NULL; }
    set_item *it = &re->items[re->n_items++];
    memset(it, 0, sizeof *it);
    return it;
}

static int peek(parser *ps) { return ps->i < ps->n ? (int)ps->p[ps->i] : -1; }

static uint64_t cat_mask(const char *name) {
    static const char *names[] = {"Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No",
                                  "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So",
                                  "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"};
    uint64_t m = 0;
    size_t len = strlen(name);
    for (int c = 0; c < SM_UC_COUNT; c++) {
        if (len == 1 && names[c][0] == name[0]) m |= 1ull << c;
        if (len == 2 && names[c][0] == name[0] && names[c][1] == name[1]) m |= 1ull << c;
    }
    return m;
}

static int hex_value(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* After a backslash: fills one class item; returns 0 on error. */
static int parse_escape(parser *ps, set_item *it) {
    int c = peek(ps);
    if (c < 0) { perr(ps, "trailing backslash"); return 0; }
    ps->i++;
    it->kind = I_RANGE;
    switch (c) {
    case 's': it->kind = I_SPACE; return 1;
    case 'S': it->kind = I_NOT_SPACE; return 1;
    case 'd': it->lo = '0'; it->hi = '9'; return 1;
    case 'D': it->kind = I_NOT_CATS; it->cats = 1ull << SM_UC_ND; return 1;
    case 'n': it->lo = it->hi = '\n'; return 1;
    case 'r': it->lo = it->hi = '\r'; return 1;
    case 't': it->lo = it->hi = '\t'; return 1;
    case 'f': it->lo = it->hi = '\f'; return 1;
    case 'v': it->lo = it->hi = '\v'; return 1;
    case 'x': case 'u': {
        /* a code point: \x{H...} (Perl, PCRE), \xHH or \uHHHH (ECMAScript) */
        int braced = peek(ps) == '{', n_max = braced ? 6 : (c == 'x' ? 2 : 4), n = 0;
        uint32_t cp = 0;
        if (braced) ps->i++;
        while (n < n_max && hex_value(peek(ps)) >= 0) { cp = cp * 16 + (uint32_t)hex_value(peek(ps)); ps->i++; n++; }
        if (n == 0 || (!braced && n != n_max) || (braced && peek(ps) != '}') || cp > 0x10FFFF) {
            perr(ps, "bad \\x or \\u escape");
            return 0;
        }
        if (braced) ps->i++;
        it->lo = it->hi = cp;
        return 1;
    }
    case 'p': case 'P': {
        char name[4] = {0};
        if (peek(ps) != '{') { perr(ps, "expected { after \\p"); return 0; }
        ps->i++;
        int k = 0;
        while (peek(ps) >= 0 && peek(ps) != '}' && k < 3) name[k++] = (char)ps->p[ps->i++];
        if (peek(ps) != '}') { perr(ps, "bad \\p{...}"); return 0; }
        ps->i++;
        uint64_t m = cat_mask(name);
        if (!m) { perr(ps, "unknown Unicode category"); return 0; }
        it->kind = c == 'p' ? I_CATS : I_NOT_CATS;
        it->cats = m;
        return 1;
    }
    default:
        it->lo = it->hi = (uint32_t)c;
        return 1;
    }
}

static node *parse_class(parser *ps) {
    node *n = new_node(ps, N_SET);
    if (!n) return NULL;
    ps->i++;  /* [ */
    if (peek(ps) == '^') { n->negate = 1; ps->i++; }
    n->items = &ps->re->items[ps->re->n_items];
    int first = 1;
    while (peek(ps) >= 0 && (peek(ps) != ']' || first)) {
        first = 0;
        set_item *it = new_item(ps);
        if (!it) return NULL;
        if (peek(ps) == '\\') {
            ps->i++;
            if (!parse_escape(ps, it)) return NULL;
        } else {
            it->kind = I_RANGE;
            it->lo = it->hi = ps->p[ps->i++];
        }
        /* a range a-b (a '-' before ']' is literal) */
        if (it->kind == I_RANGE && it->lo == it->hi && peek(ps) == '-' && ps->i + 1 < ps->n && ps->p[ps->i + 1] != ']') {
            ps->i++;
            uint32_t hi;
            if (peek(ps) == '\\') {
                set_item tmp;
                ps->i++;
                if (!parse_escape(ps, &tmp)) return NULL;
                if (tmp.kind != I_RANGE) { perr(ps, "bad range"); return NULL; }
                hi = tmp.lo;
            } else {
                hi = ps->p[ps->i++];
            }
            if (hi < it->lo) { perr(ps, "range out of order"); return NULL; }
            it->hi = hi;
        }
        n->n_items++;
    }
    if (peek(ps) != ']') { perr(ps, "unterminated [ ]"); return NULL; }
    ps->i++;
    return n;
}

static node *parse_alt(parser *ps);

static node *parse_atom(parser *ps) {
    int c = peek(ps);
    if (c == '(') {
        ps->i++;
        int type = N_GROUP, neg = 0;
        if (peek(ps) == '?') {
            ps->i++;
            int k = peek(ps);
            ps->i++;
            if (k == ':') type = N_GROUP;
            else if (k == '=') type = N_LOOK;
            else if (k == '!') { type = N_LOOK; neg = 1; }
            else { perr(ps, "unsupported group"); return NULL; }
        }
        node *g = new_node(ps, type);
        if (!g) return NULL;
        g->negate = neg;
        g->child = parse_alt(ps);
        if (ps->failed) return NULL;
        if (peek(ps) != ')') { perr(ps, "missing )"); return NULL; }
        ps->i++;
        return g;
    }
    if (c == '[') return parse_class(ps);
    if (c == '^') { ps->i++; return new_node(ps, N_BOL); }
    if (c == '$') { ps->i++; return new_node(ps, N_EOL); }
    node *n = new_node(ps, N_SET);
    if (!n) return NULL;
    set_item *it = new_item(ps);
    if (!it) return NULL;
    n->items = it;
    n->n_items = 1;
    if (c == '.') {
        ps->i++;
        /* any character but a line break, as in ECMAScript */
        it->kind = I_RANGE;
        it->lo = it->hi = '\n';
        n->negate = 1;
    } else if (c == '\\') {
        ps->i++;
        if (!parse_escape(ps, it)) return NULL;
    } else if (c == '*' || c == '+' || c == '?' || c == '{' || c == ')' || c == '|') {
        perr(ps, "nothing to repeat");
        return NULL;
    } else {
        ps->i++;
        it->kind = I_RANGE;
        it->lo = it->hi = (uint32_t)c;
    }
    return n;
}

static int parse_number(parser *ps, int *out) {
    int v = 0, any = 0;
    while (peek(ps) >= '0' && peek(ps) <= '9' && v < 100000) { v = v * 10 + (peek(ps) - '0'); ps->i++; any = 1; }
    *out = v;
    return any;
}

static node *parse_seq(parser *ps) {
    node *head = NULL, *tail = NULL;
    while (!ps->failed && peek(ps) >= 0 && peek(ps) != '|' && peek(ps) != ')') {
        node *a = parse_atom(ps);
        if (!a) return NULL;
        int c = peek(ps), min = -1, max = -1;
        if (c == '?') { min = 0; max = 1; ps->i++; }
        else if (c == '*') { min = 0; max = -1; ps->i++; }
        else if (c == '+') { min = 1; max = -1; ps->i++; }
        else if (c == '{') {
            size_t save = ps->i;
            ps->i++;
            if (parse_number(ps, &min)) {
                max = min;
                if (peek(ps) == ',') { ps->i++; if (!parse_number(ps, &max)) max = -1; }
                if (peek(ps) == '}') ps->i++;
                else { ps->i = save; min = -1; }
            } else {
                ps->i = save;
                min = -1;
            }
            if (min < 0) {  /* a literal '{' */
                ps->i = save;
            }
        }
        if (min >= 0) {
            if (peek(ps) == '?') { perr(ps, "lazy quantifiers are not supported"); return NULL; }
            if (max >= 0 && max < min) { perr(ps, "bad repeat bounds"); return NULL; }
            node *r = new_node(ps, N_REPEAT);
            if (!r) return NULL;
            r->child = a;
            r->min = min;
            r->max = max;
            a = r;
        }
        if (tail) tail->next = a;
        else head = a;
        tail = a;
    }
    return head;
}

static node *parse_alt(parser *ps) {
    node *first = parse_seq(ps);
    if (ps->failed || peek(ps) != '|') return first;
    node *alt = new_node(ps, N_ALT);
    if (!alt) return NULL;
    sm_regex *re = ps->re;
    alt->alts = &re->alt_ptrs[re->n_alt_ptrs];
    /* alternatives are stored contiguously; nested alternations are
     * parsed inside groups, after this list is complete */
    node *list[256];
    int n = 0;
    list[n++] = first;
    while (!ps->failed && peek(ps) == '|') {
        ps->i++;
        if (n == 256) { perr(ps, "too many alternatives"); return NULL; }
        list[n++] = parse_seq(ps);
    }
    if (ps->failed) return NULL;
    if (re->n_alt_ptrs + n > re->cap_alt_ptrs) { perr(ps, "pattern too complex"); return NULL; }
    alt->alts = &re->alt_ptrs[re->n_alt_ptrs];
    memcpy(alt->alts, list, (size_t)n * sizeof *list);
    re->n_alt_ptrs += n;
    alt->n_alts = n;
    return alt;
}

void sm_regex_free(sm_regex *re) {
    if (!re) return;
    sm_free(re->nodes);
    sm_free(re->items);
    sm_free(re->alt_ptrs);
    sm_free(re);
}

sm_regex *sm_regex_compile(const char *pattern, char *err, size_t err_cap) {
    size_t len = strlen(pattern);
    sm_regex *re = sm_calloc(1, sizeof *re);
    uint32_t *cps = sm_alloc((len + 1) * sizeof *cps);
    if (!re || !cps) {
        sm_free(re);
        sm_free(cps);
        if (err) snprintf(err, err_cap, "regex: out of memory");
        return NULL;
    }
    size_t n = sm_utf8_to_cps(pattern, len, cps);
    re->cap_nodes = re->cap_items = re->cap_alt_ptrs = (int)n * 2 + 8;
    re->nodes = sm_alloc((size_t)re->cap_nodes * sizeof *re->nodes);
    re->items = sm_alloc((size_t)re->cap_items * sizeof *re->items);
    re->alt_ptrs = sm_alloc((size_t)re->cap_alt_ptrs * sizeof *re->alt_ptrs);
    parser ps = {re, cps, n, 0, err, err_cap, 0};
    if (!re->nodes || !re->items || !re->alt_ptrs) perr(&ps, "out of memory");
    else re->root = parse_alt(&ps);
    if (!ps.failed && ps.i != n) perr(&ps, "unbalanced )");
    sm_free(cps);
    if (ps.failed) {
        sm_regex_free(re);
        return NULL;
    }
    return re;
}

/* ---------------------------------------------------------------- match */

static int item_matches(const set_item *it, uint32_t c) {
    switch (it->kind) {
    case I_RANGE: return c >= it->lo && c <= it->hi;
    case I_CATS: return (it->cats >> sm_unicode_category(c)) & 1;
    case I_NOT_CATS: return !((it->cats >> sm_unicode_category(c)) & 1);
    case I_SPACE: return sm_unicode_is_space(c);
    case I_NOT_SPACE: return !sm_unicode_is_space(c);
    }
    return 0;
}

static int set_matches(const node *n, uint32_t c) {
    int in = 0;
    for (int i = 0; i < n->n_items && !in; i++) in = item_matches(&n->items[i], c);
    return in != n->negate;
}

typedef struct subject {
    const uint32_t *s;
    size_t n;
} subject;

/* What to match after the current node list ends. */
typedef struct cont {
    const node *n;           /* continue with this list ... */
    const node *rep;         /* ... or, if set, another round of this repeat */
    int count;
    size_t start;
    const struct cont *next;
} cont;

static int match_list(const subject *S, const node *n, size_t pos, const cont *k, size_t *end, int depth);

static int repeat_round(const subject *S, const node *r, int count, size_t pos, const cont *k, size_t *end, int depth) {
    if (r->max < 0 || count < r->max) {
        cont c = {NULL, r, count + 1, pos, k};
        if (match_list(S, r->child, pos, &c, end, depth + 1)) return 1;
    }
    return count >= r->min && match_list(S, r->next, pos, k, end, depth + 1);
}

static int match_list(const subject *S, const node *n, size_t pos, const cont *k, size_t *end, int depth) {
    if (depth > 20000) return 0;  /* a pathological pattern gives up rather than overflowing the stack */
    while (n) {
        switch (n->type) {
        case N_SET:
            if (pos >= S->n || !set_matches(n, S->s[pos])) return 0;
            pos++;
            n = n->next;
            continue;
        case N_BOL:
            if (pos != 0) return 0;
            n = n->next;
            continue;
        case N_EOL:
            if (pos != S->n) return 0;
            n = n->next;
            continue;
        case N_LOOK: {
            size_t e;
            int found = match_list(S, n->child, pos, NULL, &e, depth + 1);
            if (found == n->negate) return 0;
            n = n->next;
            continue;
        }
        case N_GROUP: {
            cont c = {n->next, NULL, 0, 0, k};
            return match_list(S, n->child, pos, &c, end, depth + 1);
        }
        case N_ALT:
            for (int i = 0; i < n->n_alts; i++) {
                cont c = {n->next, NULL, 0, 0, k};
                if (match_list(S, n->alts[i], pos, &c, end, depth + 1)) return 1;
            }
            return 0;
        case N_REPEAT: {
            const node *ch = n->child;
            if (ch->type == N_SET && !ch->next) {
                /* greedy run of one class, then back off one at a time */
                size_t max = n->max < 0 ? S->n - pos : (size_t)n->max, run = 0;
                while (run < max && pos + run < S->n && set_matches(ch, S->s[pos + run])) run++;
                for (size_t r = run + 1; r-- > (size_t)n->min;)
                    if (match_list(S, n->next, pos + r, k, end, depth + 1)) return 1;
                return 0;
            }
            return repeat_round(S, n, 0, pos, k, end, depth + 1);
        }
        }
        return 0;
    }
    if (!k) {
        *end = pos;
        return 1;
    }
    if (k->rep) {
        /* an empty round would repeat forever: stop repeating */
        if (pos == k->start) return k->count - 1 >= k->rep->min && match_list(S, k->rep->next, pos, k->next, end, depth + 1);
        return repeat_round(S, k->rep, k->count, pos, k->next, end, depth + 1);
    }
    return match_list(S, k->n, pos, k->next, end, depth + 1);
}

int sm_regex_search(const sm_regex *re, const uint32_t *s, size_t n, size_t from, size_t *ms, size_t *me) {
    subject S = {s, n};
    for (size_t p = from; p < n; p++) {
        size_t e;
        if (match_list(&S, re->root, p, NULL, &e, 0) && e > p) {
            *ms = p;
            *me = e;
            return 1;
        }
    }
    return 0;
}

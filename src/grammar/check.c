/* check.c - refusing left-recursive grammars.
 *
 * A pushdown matcher expands the leftmost rule of a stack until a
 * character set is on top; a rule that can begin with itself (directly,
 * through other rules, or after rules that can match nothing) never stops
 * expanding. llama.cpp refuses such grammars when it builds them; so do
 * we. Our test is exact: first which rules can match the empty string (a
 * worklist, linear in the grammar), then a cycle search over the "can
 * begin with" edges. llama.cpp's own test only counts rules with a
 * literally empty alternative as empty, so it misses some recursions that
 * then loop; every grammar it refuses we refuse. */
#include "grammar.h"
#include "core/alloc.h"
#include "core/error.h"

#include <string.h>

/* Which rules can match the empty string. */
static int find_nullable(const sm_grammar *g, uint8_t *nullable) {
    uint32_t n_rules = g->n_rules, n_alts = g->n_alts;
    uint32_t *missing = sm_alloc(((size_t)n_alts + 1) * sizeof *missing);   /* refs not yet known nullable */
    uint32_t *alt_rule = sm_alloc(((size_t)n_alts + 1) * sizeof *alt_rule);
    uint32_t *occ_first = sm_calloc((size_t)n_rules + 2, sizeof *occ_first);
    uint32_t *queue = sm_alloc(((size_t)n_rules + 1) * sizeof *queue);
    uint32_t *occ = NULL;
    int ok = missing && alt_rule && occ_first && queue;
    size_t n_occ = 0;
    for (uint32_t r = 0; ok && r < n_rules; r++)
        for (uint32_t a = g->rule_alt[r]; a < g->rule_alt[r + 1]; a++) {
            alt_rule[a] = r;
            uint32_t refs = 0, sets = 0;
            for (uint32_t p = g->alt_start[a]; GI_KIND(g->items[p]) != GI_END; p++) {
                if (GI_KIND(g->items[p]) == GI_SET) sets++;
                else refs++;
            }
            missing[a] = sets ? UINT32_MAX : refs;
            if (!sets)
                for (uint32_t p = g->alt_start[a]; GI_KIND(g->items[p]) != GI_END; p++) {
                    occ_first[GI_ARG(g->items[p]) + 1]++;
                    n_occ++;
                }
        }
    if (ok) occ = sm_alloc((n_occ + 1) * sizeof *occ);
    ok = ok && occ;
    if (ok) {
        /* occ_first[r] .. occ_first[r+1]: the alternatives (without sets)
         * that refer to rule r, once per reference. */
        for (uint32_t r = 0; r < n_rules; r++) occ_first[r + 1] += occ_first[r];
        uint32_t *fill = queue;   /* borrowed as the fill cursor */
        memcpy(fill, occ_first, (size_t)n_rules * sizeof *fill);
        for (uint32_t a = 0; a < n_alts; a++)
            if (missing[a] != UINT32_MAX)
                for (uint32_t p = g->alt_start[a]; GI_KIND(g->items[p]) != GI_END; p++)
                    occ[fill[GI_ARG(g->items[p])]++] = a;
        memset(nullable, 0, n_rules);
        uint32_t head = 0, tail = 0;
        for (uint32_t a = 0; a < n_alts; a++)
            if (missing[a] == 0 && !nullable[alt_rule[a]]) {
                nullable[alt_rule[a]] = 1;
                queue[tail++] = alt_rule[a];
            }
        while (head < tail) {
            uint32_t r = queue[head++];
            for (uint32_t i = occ_first[r]; i < occ_first[r + 1]; i++) {
                uint32_t a = occ[i];
                if (--missing[a] == 0 && !nullable[alt_rule[a]]) {
                    nullable[alt_rule[a]] = 1;
                    queue[tail++] = alt_rule[a];
                }
            }
        }
    }
    sm_free(missing);
    sm_free(alt_rule);
    sm_free(occ_first);
    sm_free(queue);
    sm_free(occ);
    return ok;
}

sm_status sm_grammar_check_left_recursion(const sm_grammar *g, const char *const *names, const uint32_t *lines,
                                          sm_error *err) {
    uint32_t n = g->n_rules;
    uint8_t *nullable = sm_alloc((size_t)n + 1);
    uint8_t *color = sm_calloc((size_t)n + 1, 1);             /* 0 new, 1 on the path, 2 done */
    uint32_t *path = sm_alloc(((size_t)n + 1) * sizeof *path); /* DFS: rule */
    uint32_t *cursor = sm_alloc(((size_t)n + 1) * sizeof *cursor); /* next item to look at, per path entry */
    sm_status st = SM_OK;
    if (!nullable || !color || !path || !cursor || !find_nullable(g, nullable)) {
        st = sm_fail(err, SM_ERR_NOMEM, "out of memory while checking the grammar");
        goto done;
    }
    /* The "can begin with" edges of rule r: for each alternative, the refs
     * up to and including its first item that cannot be empty. The DFS
     * walks them item by item: cursor is an item position, with
     * SM_NO_NODE meaning "move to the next alternative". */
    for (uint32_t start = 0; start < n && st == SM_OK; start++) {
        if (color[start]) continue;
        path[0] = start;
        cursor[0] = g->alt_start[g->rule_alt[start]];
        color[start] = 1;
        uint32_t depth = 1;
        while (depth > 0) {
            uint32_t r = path[depth - 1], p = cursor[depth - 1];
            /* Find the next edge of r from position p. */
            uint32_t next = SM_NO_NODE;
            for (;;) {
                uint32_t it = g->items[p];
                if (GI_KIND(it) == GI_REF) {
                    next = GI_ARG(it);
                    /* After this ref, continue in the same alternative only
                     * if it can be empty; else jump to the alternative's end. */
                    if (nullable[next]) {
                        p++;
                    } else {
                        while (GI_KIND(g->items[p]) != GI_END) p++;
                    }
                    break;
                }
                /* A set ends the alternative's leftmost part; so does END. */
                while (GI_KIND(g->items[p]) != GI_END) p++;
                /* p is this alternative's END: the next alternative starts
                 * right after, if r has one. */
                if (p < g->alt_start[g->rule_alt[r + 1] - 1]) {
                    p++;
                    continue;
                }
                break;   /* that was the last alternative */
            }
            if (next == SM_NO_NODE) {
                color[r] = 2;
                depth--;
                continue;
            }
            cursor[depth - 1] = p;
            if (color[next] == 1) {
                st = sm_fail(err, SM_ERR_UNSUPPORTED,
                             "left recursion: rule '%s' (line %u) can begin with itself, which llama.cpp's grammars "
                             "do not allow either (write x ::= \"b\" \"a\"* rather than x ::= x \"a\" | \"b\")",
                             names[next], lines[next]);
                break;
            }
            if (color[next] == 0) {
                color[next] = 1;
                path[depth] = next;
                cursor[depth] = g->alt_start[g->rule_alt[next]];
                depth++;
            }
        }
    }
done:
    sm_free(nullable);
    sm_free(color);
    sm_free(path);
    sm_free(cursor);
    return st;
}

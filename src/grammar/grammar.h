/* grammar.h - the compiled form of a GBNF grammar and the matcher's
 * internals, shared by the parser (parse.c, check.c), the matcher
 * (matcher.c) and the vocabulary mask (mask.c).
 *
 * A grammar is a list of rules; a rule is a list of alternatives; an
 * alternative is a run of items ending with an END item. An item is a
 * character set (one code point out of a set of ranges) or a reference to
 * a rule. All alternatives live in one `items` array, so a position in the
 * grammar is one index. The matcher keeps llama.cpp's model of the state
 * (a set of pushdown stacks of positions, see matcher.c); the data layout
 * and algorithms here are our own. */
#ifndef SM_GRAMMAR_GRAMMAR_H
#define SM_GRAMMAR_GRAMMAR_H

#include "smallmind.h"

#include <stdint.h>

/* Item encoding: kind in the low 2 bits, argument (set or rule id) above. */
enum { GI_END = 0, GI_SET = 1, GI_REF = 2, GI_ALT = 3 /* parser only */ };
#define GI_MAKE(kind, arg) (((uint32_t)(arg) << 2) | (uint32_t)(kind))
#define GI_KIND(it) ((it) & 3u)
#define GI_ARG(it) ((it) >> 2)

#define SM_CP_MAX 0x10FFFFu

/* Limits that keep hostile grammars bounded in memory and time. */
#define SM_GRAMMAR_MAX_TEXT (16u << 20)     /* bytes of GBNF text */
#define SM_GRAMMAR_MAX_ITEMS (1u << 22)     /* items after expanding repetitions */
#define SM_GRAMMAR_MAX_RULES (1u << 20)     /* rules, named and generated */
#define SM_GRAMMAR_MAX_NESTING 256          /* nested parentheses */
#define SM_GRAMMAR_MAX_REPEAT 100000        /* the numbers in {m,n} */
/* Stack nodes a matcher may hold (each costs about 20 bytes), and stacks
 * it may follow at once (each step costs time in proportion). */
#define SM_MATCHER_MAX_NODES (1u << 20)
#define SM_MATCHER_MAX_STACKS 8192u

struct sm_grammar {
    uint32_t *items;
    uint32_t n_items;
    uint32_t *alt_start;   /* first item of each alternative */
    uint32_t *rule_alt;    /* rule r's alternatives: alt_start[rule_alt[r] .. rule_alt[r+1]) */
    uint32_t n_rules, n_alts;
    uint32_t start_pos;    /* the items {REF root, END}: where matching starts */
    /* Character sets: sorted, disjoint, non-adjacent ranges (negated classes
     * are complemented when parsed), plus a bitmap of their ASCII part. */
    uint32_t n_sets;
    uint32_t *set_ascii;   /* 4 words per set */
    uint32_t *set_first;   /* set s's ranges: range[2*set_first[s] .. 2*set_first[s+1]) */
    uint32_t *ranges;      /* lo, hi pairs */
};

/* Whether set s contains code point c / intersects [lo, hi]. */
static inline int sm_gset_has(const sm_grammar *g, uint32_t s, uint32_t c) {
    if (c < 128) return (g->set_ascii[4 * s + (c >> 5)] >> (c & 31)) & 1u;
    uint32_t a = g->set_first[s], b = g->set_first[s + 1];
    while (a < b) {   /* first range whose hi >= c */
        uint32_t mid = a + (b - a) / 2;
        if (g->ranges[2 * mid + 1] < c) a = mid + 1;
        else b = mid;
    }
    return a < g->set_first[s + 1] && g->ranges[2 * a] <= c;
}

int sm_gset_intersects(const sm_grammar *g, uint32_t s, uint32_t lo, uint32_t hi);

/* check.c: refuses left recursion. names[r] is a printable name for rule r
 * and lines[r] the line it was defined on (for the message). */
sm_status sm_grammar_check_left_recursion(const sm_grammar *g, const char *const *names, const uint32_t *lines,
                                          sm_error *err);

/* ------------------------------------------------------------- matcher */

#define SM_NO_NODE 0xFFFFFFFFu

/* A matcher state: its stacks are the nodes tops[off .. off+n) of the
 * matcher's top arena (each is the top of one stack; its item is a
 * character set); `accepting` says an empty stack is among them (the
 * grammar is complete). need > 0: in the middle of a UTF-8 character with
 * `need` continuation bytes to come; cp holds its bits so far and [lo, hi]
 * the code points it can still become. */
typedef struct sm_gstate {
    uint32_t off, n;
    uint32_t cp, lo, hi;
    uint8_t accepting, need;
} sm_gstate;

struct sm_grammar_matcher {
    const sm_grammar *g;
    /* Stack nodes, hash-consed: (pos, parent) is unique, so equal stacks
     * are equal node ids. parent < id always. */
    uint32_t *npos, *npar, *nstamp;
    uint32_t n_nodes, cap_nodes;
    uint32_t *table;       /* node id + 1, 0 = empty; 2 * cap_nodes slots */
    uint32_t table_mask;
    uint32_t stamp;        /* bumped per step; nstamp marks nodes seen in it */
    uint32_t top_base;     /* where the tops of the state being made start in ar */
    /* Tops of states: the committed state first, then scratch. */
    uint32_t *ar;
    uint32_t ar_n, ar_cap;
    sm_gstate cur;         /* the committed state (cur.off == 0) */
    uint32_t *work;        /* expansion work list */
    uint32_t work_cap;
    uint32_t pool_gen;     /* bumped when node ids change meaning (compaction, reset) */
    uint32_t live_nodes;   /* nodes left by the last compaction */
    /* The vocabulary walk's cache of states and transitions (mask.c). */
    uint32_t *st_off, *st_n, *st_cp, *st_lo, *st_hi;
    uint8_t *st_flags;
    uint32_t n_st, cap_st;
    uint32_t *st_loop;     /* 16 words per state: bytes whose move is known, bytes that loop */
    uint32_t *st_tops;     /* the states' sorted tops */
    uint32_t n_st_tops, st_tops_cap;
    uint32_t st_pool_gen;  /* pool_gen the cache was made in */
    uint32_t *st_table;    /* interned states: id + 1 */
    uint32_t st_table_cap;
    uint32_t *tr_dense;    /* transitions of the first states: [state * 256 + byte] */
    uint32_t tr_dense_cap; /* entries */
    uint32_t *tr_key, *tr_val, *tr_gen;  /* and of the others: (state, byte) -> state */
    uint32_t tr_cap, tr_n, tr_gen_now;
    uint32_t *level;       /* per trie depth */
    uint32_t level_cap;
    int failed;            /* a limit was hit; sticky until reset */
    char fail_msg[160];
};

/* The internal matcher steps, shared with mask.c. Each returns 1 when the
 * input is a valid continuation (out filled, its tops appended to the
 * arena), 0 when it is rejected, -1 when a limit was hit (m->failed). */
int sm_gm_step_byte(sm_grammar_matcher *m, const sm_gstate *in, uint8_t byte, sm_gstate *out);
/* Gets the matcher ready for an operation (compacts or grows its node pool
 * between operations); 0 if it has failed. */
int sm_gm_prepare(sm_grammar_matcher *m);
/* Grows a uint32 buffer to hold at least need elements. */
int sm_gm_grow(uint32_t **buf, uint32_t *cap, size_t need);
void sm_gm_fail(sm_grammar_matcher *m, const char *msg);

#endif

/* matcher.c - following a grammar over UTF-8 bytes.
 *
 * The state is llama.cpp's: a set of pushdown stacks, each a list of grammar
 * positions still to match (top = next), every top a character set; an
 * empty stack means the input so far is a complete sentence. Accepting a
 * code point keeps the stacks whose top matches, moves them one item on
 * and expands rule references at the top until sets are on top again.
 *
 * Our representation: a stack is a linked list of nodes (position,
 * parent) in a pool, hash-consed so that equal stacks are the same node id.
 * Stacks then share their tails, duplicates vanish by id, and an expansion
 * already done in this step is recognised by a stamp on the node (this also
 * keeps grammars such as x ::= y | y, y ::= z | z, ... linear). Nodes are
 * never freed one by one: between operations, when the pool is half full,
 * the nodes reachable from the current stacks are compacted to the front
 * (parents always have smaller ids, so one ascending pass renumbers them).
 * The pool, its hash table and the scratch buffers are allocated once and
 * grow only when the stacks outgrow them, up to SM_MATCHER_MAX_NODES.
 *
 * Bytes: a state may sit in the middle of a UTF-8 character; it then keeps
 * the range of code points the character can still become and is alive
 * while some top's set intersects that range. Decoding is strict (no
 * overlong forms, surrogates or values above U+10FFFF). */
#include "grammar.h"
#include "core/alloc.h"
#include "core/error.h"

#include <stdio.h>
#include <string.h>

#define INITIAL_NODES 1024u
#define MARK_DEAD 0xFFFFFFFFu
#define MARK_LIVE 0xFFFFFFFEu

int sm_gset_intersects(const sm_grammar *g, uint32_t s, uint32_t lo, uint32_t hi) {
    uint32_t a = g->set_first[s], b = g->set_first[s + 1], end = b;
    while (a < b) {   /* first range whose hi >= lo */
        uint32_t mid = a + (b - a) / 2;
        if (g->ranges[2 * mid + 1] < lo) a = mid + 1;
        else b = mid;
    }
    return a < end && g->ranges[2 * a] <= hi;
}

void sm_gm_fail(sm_grammar_matcher *m, const char *msg) {
    if (m->failed) return;
    m->failed = 1;
    snprintf(m->fail_msg, sizeof m->fail_msg, "%s", msg);
}

/* ------------------------------------------------------------ node pool */

static uint32_t node_hash(uint32_t pos, uint32_t par) {
    uint32_t h = pos * 0x9E3779B1u ^ (par + 0x7F4A7C15u) * 0x85EBCA77u;
    h ^= h >> 16;
    h *= 0x7FEB352Du;
    h ^= h >> 15;
    return h;
}

static void table_rebuild(sm_grammar_matcher *m) {
    memset(m->table, 0, ((size_t)m->table_mask + 1) * sizeof *m->table);
    for (uint32_t id = 0; id < m->n_nodes; id++) {
        uint32_t h = node_hash(m->npos[id], m->npar[id]) & m->table_mask;
        while (m->table[h]) h = (h + 1) & m->table_mask;
        m->table[h] = id + 1;
    }
}

/* Gives the pool room for cap nodes (cap >= n_nodes). */
static int pool_resize(sm_grammar_matcher *m, uint32_t cap) {
    uint32_t *npos = sm_alloc((size_t)cap * sizeof *npos);
    uint32_t *npar = sm_alloc((size_t)cap * sizeof *npar);
    uint32_t *nstamp = sm_calloc(cap, sizeof *nstamp);
    uint32_t *table = sm_alloc((size_t)cap * 2 * sizeof *table);
    if (!npos || !npar || !nstamp || !table) {
        sm_free(npos);
        sm_free(npar);
        sm_free(nstamp);
        sm_free(table);
        return 0;
    }
    if (m->n_nodes) {
        memcpy(npos, m->npos, (size_t)m->n_nodes * sizeof *npos);
        memcpy(npar, m->npar, (size_t)m->n_nodes * sizeof *npar);
        memcpy(nstamp, m->nstamp, (size_t)m->n_nodes * sizeof *nstamp);
    }
    sm_free(m->npos);
    sm_free(m->npar);
    sm_free(m->nstamp);
    sm_free(m->table);
    m->npos = npos;
    m->npar = npar;
    m->nstamp = nstamp;
    m->table = table;
    m->cap_nodes = cap;
    m->table_mask = cap * 2 - 1;
    table_rebuild(m);
    return 1;
}

/* The node (pos, par), made if new. On failure (limit or memory) returns
 * SM_NO_NODE with m->failed set: callers check m->failed. */
static uint32_t make_node(sm_grammar_matcher *m, uint32_t pos, uint32_t par) {
    uint32_t h = node_hash(pos, par) & m->table_mask;
    for (uint32_t slot; (slot = m->table[h]) != 0; h = (h + 1) & m->table_mask)
        if (m->npos[slot - 1] == pos && m->npar[slot - 1] == par) return slot - 1;
    if (m->n_nodes == m->cap_nodes) {
        if (m->cap_nodes >= SM_MATCHER_MAX_NODES) {
            char msg[120];
            snprintf(msg, sizeof msg, "the grammar's stacks need more than %u nodes (nested too deeply)",
                     SM_MATCHER_MAX_NODES);
            sm_gm_fail(m, msg);
            return SM_NO_NODE;
        }
        if (!pool_resize(m, m->cap_nodes * 2)) {
            sm_gm_fail(m, "out of memory growing the grammar matcher's stacks");
            return SM_NO_NODE;
        }
        h = node_hash(pos, par) & m->table_mask;
        while (m->table[h]) h = (h + 1) & m->table_mask;
    }
    uint32_t id = m->n_nodes++;
    m->npos[id] = pos;
    m->npar[id] = par;
    m->nstamp[id] = 0;
    m->table[h] = id + 1;
    return id;
}

static void next_stamp(sm_grammar_matcher *m) {
    if (++m->stamp == 0) {
        memset(m->nstamp, 0, (size_t)m->n_nodes * sizeof *m->nstamp);
        m->stamp = 1;
    }
}

static int push_top(sm_grammar_matcher *m, uint32_t id) {
    if (m->ar_n - m->top_base >= SM_MATCHER_MAX_STACKS) {
        sm_gm_fail(m, "the grammar is too ambiguous: it needs more than 8192 stacks at once");
        return 0;
    }
    if (m->ar_n == m->ar_cap && !sm_gm_grow(&m->ar, &m->ar_cap, (size_t)m->ar_n + 1)) {
        sm_gm_fail(m, "out of memory in the grammar matcher");
        return 0;
    }
    m->ar[m->ar_n++] = id;
    return 1;
}

static int push_work(sm_grammar_matcher *m, uint32_t *n, uint32_t id) {
    if (*n == m->work_cap && !sm_gm_grow(&m->work, &m->work_cap, (size_t)*n + 1)) {
        sm_gm_fail(m, "out of memory in the grammar matcher");
        return 0;
    }
    m->work[(*n)++] = id;
    return 1;
}

/* Expands the stack `raw` (SM_NO_NODE: the empty stack) until sets are on
 * top, appending the new tops to the arena; sets *accepting when an empty
 * stack is reached. Nodes stamped in this step are not expanded again. */
static void expand(sm_grammar_matcher *m, uint32_t raw, uint8_t *accepting) {
    const sm_grammar *g = m->g;
    uint32_t n = 0;
    if (!push_work(m, &n, raw)) return;
    while (n > 0) {
        uint32_t x = m->work[--n];
        if (x == SM_NO_NODE) {
            *accepting = 1;
            continue;
        }
        if (m->nstamp[x] == m->stamp) continue;
        m->nstamp[x] = m->stamp;
        uint32_t pos = m->npos[x], it = g->items[pos];
        if (GI_KIND(it) == GI_SET) {
            if (!push_top(m, x)) return;
            continue;
        }
        /* A rule reference: the stack continues after it (or pops), with
         * one of the rule's alternatives on top. */
        uint32_t par = m->npar[x];
        uint32_t cont = GI_KIND(g->items[pos + 1]) == GI_END ? par : make_node(m, pos + 1, par);
        if (m->failed) return;
        uint32_t r = GI_ARG(it);
        for (uint32_t a = g->rule_alt[r]; a < g->rule_alt[r + 1]; a++) {
            uint32_t s = g->alt_start[a];
            uint32_t y = GI_KIND(g->items[s]) == GI_END ? cont : make_node(m, s, cont);
            if (m->failed || !push_work(m, &n, y)) return;
        }
    }
}

/* Accepts one code point from the stacks of in. */
static int step_cp(sm_grammar_matcher *m, const sm_gstate *in, uint32_t cp, sm_gstate *out) {
    const sm_grammar *g = m->g;
    next_stamp(m);
    uint8_t accepting = 0;
    int matched = 0;
    uint32_t off = m->ar_n;
    m->top_base = off;
    for (uint32_t j = 0; j < in->n; j++) {
        uint32_t t = m->ar[in->off + j], pos = m->npos[t];
        if (!sm_gset_has(g, GI_ARG(g->items[pos]), cp)) continue;
        matched = 1;
        uint32_t raw = GI_KIND(g->items[pos + 1]) == GI_END ? m->npar[t] : make_node(m, pos + 1, m->npar[t]);
        if (m->failed) return -1;
        expand(m, raw, &accepting);
        if (m->failed) return -1;
    }
    memset(out, 0, sizeof *out);
    out->off = off;
    out->n = m->ar_n - off;
    out->accepting = accepting;
    return matched;
}

/* Whether some top of s can match a code point in [s->lo, s->hi]. */
static int feasible(const sm_grammar_matcher *m, const sm_gstate *s) {
    const sm_grammar *g = m->g;
    for (uint32_t j = 0; j < s->n; j++)
        if (sm_gset_intersects(g, GI_ARG(g->items[m->npos[m->ar[s->off + j]]]), s->lo, s->hi)) return 1;
    return 0;
}

int sm_gm_step_byte(sm_grammar_matcher *m, const sm_gstate *in, uint8_t byte, sm_gstate *out) {
    if (in->need == 0) {
        if (byte < 0x80) return step_cp(m, in, byte, out);
        uint32_t need, v, lo, hi;
        if (byte >= 0xC2 && byte <= 0xDF) {
            need = 1;
            v = byte & 0x1Fu;
            lo = v << 6;
            hi = lo | 0x3F;
        } else if (byte >= 0xE0 && byte <= 0xEF) {
            need = 2;
            v = byte & 0x0Fu;
            lo = byte == 0xE0 ? 0x800 : v << 12;
            hi = byte == 0xED ? 0xD7FF : (v << 12) | 0xFFF;
        } else if (byte >= 0xF0 && byte <= 0xF4) {
            need = 3;
            v = byte & 0x07u;
            lo = byte == 0xF0 ? 0x10000 : v << 18;
            hi = byte == 0xF4 ? 0x10FFFF : (v << 18) | 0x3FFFF;
        } else {
            return 0;   /* a continuation byte or an impossible lead byte */
        }
        *out = *in;
        out->accepting = 0;
        out->need = (uint8_t)need;
        out->cp = v;
        out->lo = lo;
        out->hi = hi;
        return feasible(m, out);
    }
    if ((byte & 0xC0) != 0x80) return 0;
    uint32_t need = in->need - 1u, v = (in->cp << 6) | (byte & 0x3Fu);
    uint32_t lo = v << (6 * need), hi = lo | ((1u << (6 * need)) - 1u);
    if (lo < in->lo) lo = in->lo;
    if (hi > in->hi) hi = in->hi;
    if (lo > hi) return 0;   /* overlong, surrogate or beyond U+10FFFF */
    if (need == 0) {
        sm_gstate whole = *in;
        whole.need = 0;
        return step_cp(m, &whole, v, out);
    }
    *out = *in;
    out->need = (uint8_t)need;
    out->cp = v;
    out->lo = lo;
    out->hi = hi;
    return feasible(m, out);
}

/* ------------------------------------------------------- between steps */

/* Keeps only the nodes reachable from the committed state, renumbered in
 * their order (so parents stay below children). */
static void compact(sm_grammar_matcher *m) {
    uint32_t n = m->n_nodes;
    for (uint32_t i = 0; i < n; i++) m->nstamp[i] = MARK_DEAD;
    for (uint32_t j = 0; j < m->cur.n; j++)
        for (uint32_t x = m->ar[j]; x != SM_NO_NODE && m->nstamp[x] == MARK_DEAD; x = m->npar[x])
            m->nstamp[x] = MARK_LIVE;
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (m->nstamp[i] != MARK_LIVE) continue;
        uint32_t p = m->npar[i];
        m->npos[k] = m->npos[i];
        m->npar[k] = p == SM_NO_NODE ? SM_NO_NODE : m->nstamp[p];
        m->nstamp[i] = k++;
    }
    for (uint32_t j = 0; j < m->cur.n; j++) m->ar[j] = m->nstamp[m->ar[j]];
    m->n_nodes = m->live_nodes = k;
    m->pool_gen++;
    memset(m->nstamp, 0, (size_t)m->cap_nodes * sizeof *m->nstamp);
    m->stamp = 0;
    table_rebuild(m);
}

int sm_gm_prepare(sm_grammar_matcher *m) {
    if (m->failed) return 0;
    m->ar_n = m->cur.n;
    /* Compact when the pool is half full and enough nodes were made since
     * the last compaction for it to be worth the pass. */
    if (m->n_nodes > m->cap_nodes / 2 && m->n_nodes - m->live_nodes >= m->cap_nodes / 4) {
        compact(m);
        if (m->n_nodes > m->cap_nodes / 4 && m->cap_nodes < SM_MATCHER_MAX_NODES &&
            !pool_resize(m, m->cap_nodes * 2)) {
            sm_gm_fail(m, "out of memory growing the grammar matcher's stacks");
            return 0;
        }
    }
    return 1;
}

/* The start state: the start rule expanded. */
static void start(sm_grammar_matcher *m) {
    m->failed = 0;
    m->fail_msg[0] = '\0';
    m->n_nodes = m->live_nodes = 0;
    m->pool_gen++;
    memset(m->table, 0, ((size_t)m->table_mask + 1) * sizeof *m->table);
    memset(m->nstamp, 0, (size_t)m->cap_nodes * sizeof *m->nstamp);
    m->stamp = 0;
    m->ar_n = 0;
    memset(&m->cur, 0, sizeof m->cur);
    next_stamp(m);
    m->top_base = 0;
    uint32_t raw = make_node(m, m->g->start_pos, SM_NO_NODE);
    uint8_t accepting = 0;
    if (!m->failed) expand(m, raw, &accepting);
    m->cur.n = m->ar_n;
    m->cur.accepting = accepting;
}

/* --------------------------------------------------------------- the API */

sm_status sm_grammar_matcher_new(const sm_grammar *g, sm_grammar_matcher **out, sm_error *err) {
    if (!g || !out) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_grammar_matcher_new: grammar and out are required");
    *out = NULL;
    sm_grammar_matcher *m = sm_calloc(1, sizeof *m);
    if (!m) return sm_fail(err, SM_ERR_NOMEM, "out of memory creating a grammar matcher");
    m->g = g;
    if (!pool_resize(m, INITIAL_NODES) || !sm_gm_grow(&m->ar, &m->ar_cap, 256) ||
        !sm_gm_grow(&m->work, &m->work_cap, 256)) {
        sm_grammar_matcher_free(m);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory creating a grammar matcher");
    }
    start(m);
    if (m->failed) {
        sm_status st = sm_fail(err, SM_ERR_NOMEM, "%s", m->fail_msg);
        sm_grammar_matcher_free(m);
        return st;
    }
    *out = m;
    return SM_OK;
}

static int copy_u32(uint32_t **dst, const uint32_t *src, size_t n, size_t cap) {
    *dst = sm_alloc((cap ? cap : 1) * sizeof **dst);
    if (!*dst) return 0;
    if (n) memcpy(*dst, src, n * sizeof **dst);
    return 1;
}

sm_status sm_grammar_matcher_clone(const sm_grammar_matcher *src, sm_grammar_matcher **out, sm_error *err) {
    if (!src || !out) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_grammar_matcher_clone: matcher and out are required");
    *out = NULL;
    sm_grammar_matcher *m = sm_calloc(1, sizeof *m);
    if (!m) return sm_fail(err, SM_ERR_NOMEM, "out of memory cloning a grammar matcher");
    m->g = src->g;
    m->n_nodes = src->n_nodes;
    m->live_nodes = src->live_nodes;
    m->cap_nodes = src->cap_nodes;
    m->table_mask = src->table_mask;
    m->stamp = src->stamp;
    m->cur = src->cur;
    m->ar_n = src->cur.n;
    m->ar_cap = src->ar_cap;
    m->work_cap = src->work_cap;
    m->failed = src->failed;
    memcpy(m->fail_msg, src->fail_msg, sizeof m->fail_msg);
    int ok = copy_u32(&m->npos, src->npos, src->n_nodes, src->cap_nodes) &&
             copy_u32(&m->npar, src->npar, src->n_nodes, src->cap_nodes) &&
             copy_u32(&m->nstamp, src->nstamp, src->n_nodes, src->cap_nodes) &&
             copy_u32(&m->table, src->table, (size_t)src->table_mask + 1, (size_t)src->table_mask + 1) &&
             copy_u32(&m->ar, src->ar, src->cur.n, src->ar_cap) && copy_u32(&m->work, NULL, 0, src->work_cap);
    if (!ok) {
        sm_grammar_matcher_free(m);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory cloning a grammar matcher");
    }
    *out = m;
    return SM_OK;
}

void sm_grammar_matcher_free(sm_grammar_matcher *m) {
    if (!m) return;
    sm_free(m->npos);
    sm_free(m->npar);
    sm_free(m->nstamp);
    sm_free(m->table);
    sm_free(m->ar);
    sm_free(m->work);
    sm_free(m->st_off);
    sm_free(m->st_n);
    sm_free(m->st_cp);
    sm_free(m->st_lo);
    sm_free(m->st_hi);
    sm_free(m->st_flags);
    sm_free(m->st_table);
    sm_free(m->tr_dense);
    sm_free(m->st_tops);
    sm_free(m->st_loop);
    sm_free(m->tr_key);
    sm_free(m->tr_val);
    sm_free(m->tr_gen);
    sm_free(m->level);
    sm_free(m);
}

void sm_grammar_matcher_reset(sm_grammar_matcher *m) {
    if (m) start(m);
}

/* Runs the bytes from the committed state. Returns 1 with the final state
 * in *end (its tops in the arena), 0 at the first rejected byte (its offset
 * in *bad), -1 on failure. The committed tops stay at ar[0 .. cur.n). */
static int run(sm_grammar_matcher *m, const uint8_t *p, size_t len, sm_gstate *end, size_t *bad) {
    uint32_t keep = m->cur.n;
    sm_gstate s = m->cur;
    for (size_t i = 0; i < len; i++) {
        sm_gstate t;
        int r = sm_gm_step_byte(m, &s, p[i], &t);
        if (r <= 0) {
            m->ar_n = keep;
            *bad = i;
            return r;
        }
        /* Only the newest state's tops are needed: slide them down to just
         * after the committed ones. */
        if (t.off > keep) {
            memmove(m->ar + keep, m->ar + t.off, (size_t)t.n * sizeof *m->ar);
            t.off = keep;
        }
        m->ar_n = t.off >= keep ? t.off + t.n : keep;
        s = t;
    }
    *end = s;
    return 1;
}

sm_status sm_grammar_matcher_accept(sm_grammar_matcher *m, const void *bytes, size_t len, sm_error *err) {
    if (!m || (!bytes && len)) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_grammar_matcher_accept: bad arguments");
    if (!sm_gm_prepare(m)) return sm_fail(err, SM_ERR_NOMEM, "%s", m->fail_msg);
    sm_gstate s;
    size_t bad = 0;
    int r = run(m, bytes, len, &s, &bad);
    if (r < 0) return sm_fail(err, SM_ERR_NOMEM, "%s", m->fail_msg);
    if (r == 0)
        return sm_fail(err, SM_ERR_INVALID_ARG, "the grammar does not allow byte 0x%02X at offset %zu of the %zu bytes",
                       ((const uint8_t *)bytes)[bad], bad, len);
    if (s.off != 0) memmove(m->ar, m->ar + s.off, (size_t)s.n * sizeof *m->ar);
    s.off = 0;
    m->cur = s;
    m->ar_n = s.n;
    return SM_OK;
}

int sm_grammar_matcher_try(sm_grammar_matcher *m, const void *bytes, size_t len) {
    if (!m || (!bytes && len) || !sm_gm_prepare(m)) return 0;
    sm_gstate s;
    size_t bad;
    int r = run(m, bytes, len, &s, &bad);
    m->ar_n = m->cur.n;
    return r == 1;
}

int sm_grammar_matcher_is_complete(const sm_grammar_matcher *m) {
    return m && !m->failed && m->cur.accepting && m->cur.need == 0;
}

int sm_grammar_matcher_can_continue(const sm_grammar_matcher *m) { return m && !m->failed && m->cur.n > 0; }

sm_status sm_grammar_matcher_filter(sm_grammar_matcher *m, const char *const *pieces, const size_t *lens, size_t n,
                                    uint8_t *allowed, sm_error *err) {
    if (!m || (n && (!pieces || !lens || !allowed)))
        return sm_fail(err, SM_ERR_INVALID_ARG, "sm_grammar_matcher_filter: bad arguments");
    for (size_t i = 0; i < n; i++) allowed[i] = lens[i] > 0 && sm_grammar_matcher_try(m, pieces[i], lens[i]);
    if (m->failed) return sm_fail(err, SM_ERR_NOMEM, "%s", m->fail_msg);
    return SM_OK;
}

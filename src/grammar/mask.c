/* mask.c - which tokens of a vocabulary a grammar allows next.
 *
 * A vocabulary is prepared once per model (sm_grammar_vocab_new): the
 * tokens' bytes are sorted and laid out as a byte trie in preorder, so a
 * node's subtree is the run of nodes up to nend[node] and the tokens ending
 * at a node are a run of the sorted ids. The mask is one pass over that
 * array: each node's state is its parent's state advanced by the node's
 * byte; a rejected byte skips the whole subtree.
 *
 * Within one pass, states are interned (sorted tops plus the UTF-8 partial)
 * and transitions (state, byte) -> state are cached. Inside a JSON string,
 * say, almost every byte leads back to the same state, so most trie nodes
 * cost one cache lookup instead of a grammar step. Nothing is freed during
 * a pass (the nodes it makes are garbage the next compaction drops). */
#include "grammar.h"
#include "core/alloc.h"
#include "core/error.h"

#include <string.h>

#define TR_DEAD 0xFFFFFFFFu
#define TR_FAIL 0xFFFFFFFEu
#define MAX_STATES (1u << 24)

struct sm_grammar_vocab {
    uint32_t n_tokens;
    uint32_t *tok_off;      /* token t's bytes: bytes[tok_off[t] .. tok_off[t+1]) */
    uint8_t *bytes;
    uint32_t n_nodes, max_depth;
    uint8_t *nbyte;         /* the byte leading into each trie node */
    uint32_t *ndepth;       /* 1 for children of the root */
    uint32_t *nend;         /* one past the node's subtree */
    uint32_t *ntok;         /* tokens ending at node i: sorted[ntok[i] .. ntok[i+1]) */
    uint32_t *sorted;       /* non-empty token ids in byte order */
};

/* ------------------------------------------------------------ vocabulary */

static int token_less(const sm_grammar_vocab *v, uint32_t a, uint32_t b) {
    uint32_t la = v->tok_off[a + 1] - v->tok_off[a], lb = v->tok_off[b + 1] - v->tok_off[b];
    int c = memcmp(v->bytes + v->tok_off[a], v->bytes + v->tok_off[b], la < lb ? la : lb);
    if (c) return c < 0;
    if (la != lb) return la < lb;
    return a < b;
}

/* Bottom-up merge sort of ids (tmp has room for n). */
static void sort_tokens(const sm_grammar_vocab *v, uint32_t *ids, uint32_t *tmp, uint32_t n) {
    uint32_t *src = ids, *dst = tmp;
    for (uint32_t w = 1; w < n; w *= 2) {
        for (uint32_t lo = 0; lo < n; lo += 2 * w) {
            uint32_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            uint32_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) dst[k++] = token_less(v, src[j], src[i]) ? src[j++] : src[i++];
            while (i < mid) dst[k++] = src[i++];
            while (j < hi) dst[k++] = src[j++];
        }
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != ids) memcpy(ids, src, (size_t)n * sizeof *ids);
}

void sm_grammar_vocab_free(sm_grammar_vocab *v) {
    if (!v) return;
    sm_free(v->tok_off);
    sm_free(v->bytes);
    sm_free(v->nbyte);
    sm_free(v->ndepth);
    sm_free(v->nend);
    sm_free(v->ntok);
    sm_free(v->sorted);
    sm_free(v);
}

sm_status sm_grammar_vocab_new(const char *const *pieces, const size_t *lens, size_t n_tokens, sm_grammar_vocab **out,
                               sm_error *err) {
    if (!out || (n_tokens && (!pieces || !lens)))
        return sm_fail(err, SM_ERR_INVALID_ARG, "sm_grammar_vocab_new: bad arguments");
    *out = NULL;
    if (n_tokens > 0x7FFFFFFFu) return sm_fail(err, SM_ERR_INVALID_ARG, "vocabulary of %zu tokens is too large", n_tokens);
    size_t total = 0;
    for (size_t i = 0; i < n_tokens; i++) {
        if (lens[i] && !pieces[i]) return sm_fail(err, SM_ERR_INVALID_ARG, "token %zu has a length but no bytes", i);
        total += lens[i];
        if (total > 0x7FFFFFFFu) return sm_fail(err, SM_ERR_INVALID_ARG, "the vocabulary's pieces exceed 2 GiB");
    }
    sm_grammar_vocab *v = sm_calloc(1, sizeof *v);
    if (!v) return sm_fail(err, SM_ERR_NOMEM, "out of memory preparing the vocabulary");
    v->n_tokens = (uint32_t)n_tokens;
    v->tok_off = sm_alloc((n_tokens + 1) * sizeof *v->tok_off);
    v->bytes = sm_alloc(total + 1);
    v->sorted = sm_alloc((n_tokens + 1) * sizeof *v->sorted);
    v->nbyte = sm_alloc(total + 1);
    v->ndepth = sm_alloc((total + 1) * sizeof *v->ndepth);
    v->nend = sm_alloc((total + 1) * sizeof *v->nend);
    v->ntok = sm_alloc((total + 2) * sizeof *v->ntok);
    uint32_t *tmp = sm_alloc((n_tokens + 1) * sizeof *tmp);
    size_t max_len = 0;
    for (size_t i = 0; i < n_tokens; i++)
        if (lens[i] > max_len) max_len = lens[i];
    uint32_t *path = sm_alloc((max_len + 1) * sizeof *path);
    if (!v->tok_off || !v->bytes || !v->sorted || !v->nbyte || !v->ndepth || !v->nend || !v->ntok || !tmp || !path) {
        sm_free(tmp);
        sm_free(path);
        sm_grammar_vocab_free(v);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory preparing the vocabulary");
    }
    uint32_t off = 0, k = 0;
    for (size_t i = 0; i < n_tokens; i++) {
        v->tok_off[i] = off;
        if (lens[i]) memcpy(v->bytes + off, pieces[i], lens[i]);
        off += (uint32_t)lens[i];
        if (lens[i]) v->sorted[k++] = (uint32_t)i;
    }
    v->tok_off[n_tokens] = off;
    sort_tokens(v, v->sorted, tmp, k);

    /* The trie in preorder: a token shares the nodes of its common prefix
     * with the previous one and adds the rest. */
    uint32_t n = 0, fill = 0, prev_len = 0;
    const uint8_t *prev = NULL;
    for (uint32_t j = 0; j < k; j++) {
        uint32_t t = v->sorted[j], len = v->tok_off[t + 1] - v->tok_off[t];
        const uint8_t *b = v->bytes + v->tok_off[t];
        uint32_t lcp = 0;
        while (prev && lcp < len && lcp < prev_len && prev[lcp] == b[lcp]) lcp++;
        for (uint32_t d = lcp + 1; d <= len; d++) {
            v->nbyte[n] = b[d - 1];
            v->ndepth[n] = d;
            path[d] = n++;
        }
        uint32_t end = path[len];
        while (fill <= end) v->ntok[fill++] = j;
        prev = b;
        prev_len = len;
    }
    while (fill <= n) v->ntok[fill++] = k;
    v->n_nodes = n;
    v->max_depth = (uint32_t)max_len;
    /* Subtree ends: a node's subtree stops at the next node no deeper. */
    uint32_t sp = 0;
    for (uint32_t i = 0; i < n; i++) {
        while (sp > 0 && v->ndepth[path[sp - 1]] >= v->ndepth[i]) v->nend[path[--sp]] = i;
        path[sp++] = i;
    }
    while (sp > 0) v->nend[path[--sp]] = n;
    sm_free(tmp);
    sm_free(path);
    *out = v;
    return SM_OK;
}

size_t sm_grammar_vocab_size(const sm_grammar_vocab *v) { return v ? v->n_tokens : 0; }

int sm_grammar_matcher_try_token(sm_grammar_matcher *m, const sm_grammar_vocab *v, int32_t token) {
    if (!m || !v || token < 0 || (uint32_t)token >= v->n_tokens) return 0;
    uint32_t a = v->tok_off[token], b = v->tok_off[token + 1];
    return b > a && sm_grammar_matcher_try(m, v->bytes + a, b - a);
}

sm_status sm_grammar_matcher_accept_token(sm_grammar_matcher *m, const sm_grammar_vocab *v, int32_t token,
                                          sm_error *err) {
    if (!m || !v || token < 0 || (uint32_t)token >= v->n_tokens)
        return sm_fail(err, SM_ERR_TOKEN_RANGE, "sm_grammar_matcher_accept_token: token %d is not in the vocabulary",
                       (int)token);
    uint32_t a = v->tok_off[token], b = v->tok_off[token + 1];
    return sm_grammar_matcher_accept(m, v->bytes + a, b - a, err);
}

/* ------------------------------------------------------ states of a pass */

static void sort_ids(uint32_t *a, uint32_t n) {
    if (n < 24) {
        for (uint32_t i = 1; i < n; i++) {
            uint32_t x = a[i], j = i;
            while (j > 0 && a[j - 1] > x) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = x;
        }
        return;
    }
    /* Heap sort: no allocation. */
    for (uint32_t start = n / 2; start-- > 0;) {
        for (uint32_t i = start;;) {
            uint32_t c = 2 * i + 1;
            if (c >= n) break;
            if (c + 1 < n && a[c + 1] > a[c]) c++;
            if (a[i] >= a[c]) break;
            uint32_t t = a[i];
            a[i] = a[c];
            a[c] = t;
            i = c;
        }
    }
    for (uint32_t end = n - 1; end > 0; end--) {
        uint32_t t = a[0];
        a[0] = a[end];
        a[end] = t;
        for (uint32_t i = 0;;) {
            uint32_t c = 2 * i + 1;
            if (c >= end) break;
            if (c + 1 < end && a[c + 1] > a[c]) c++;
            if (a[i] >= a[c]) break;
            t = a[i];
            a[i] = a[c];
            a[c] = t;
            i = c;
        }
    }
}

static uint32_t state_hash(const sm_grammar_matcher *m, const sm_gstate *s) {
    uint32_t h = 2166136261u ^ (s->accepting | (uint32_t)s->need << 1);
    h = (h ^ s->cp) * 16777619u;
    h = (h ^ s->lo) * 16777619u;
    h = (h ^ s->hi) * 16777619u;
    for (uint32_t i = 0; i < s->n; i++) h = (h ^ m->ar[s->off + i]) * 16777619u;
    return h;
}

static int state_equal(const sm_grammar_matcher *m, uint32_t id, const sm_gstate *s) {
    return m->st_n[id] == s->n && m->st_flags[id] == (s->accepting | (uint32_t)s->need << 1) && m->st_cp[id] == s->cp &&
           m->st_lo[id] == s->lo && m->st_hi[id] == s->hi &&
           (m->st_off[id] == s->off || memcmp(m->ar + m->st_off[id], m->ar + s->off, (size_t)s->n * sizeof *m->ar) == 0);
}

static sm_gstate state_get(const sm_grammar_matcher *m, uint32_t id) {
    sm_gstate s;
    s.off = m->st_off[id];
    s.n = m->st_n[id];
    s.cp = m->st_cp[id];
    s.lo = m->st_lo[id];
    s.hi = m->st_hi[id];
    s.accepting = m->st_flags[id] & 1;
    s.need = (uint8_t)(m->st_flags[id] >> 1);
    return s;
}

static int grow_states(sm_grammar_matcher *m) {
    uint32_t cap = m->cap_st ? 2 * m->cap_st : 256;
    uint32_t *a = sm_alloc((size_t)cap * sizeof *a), *b = sm_alloc((size_t)cap * sizeof *b);
    uint32_t *c = sm_alloc((size_t)cap * sizeof *c), *d = sm_alloc((size_t)cap * sizeof *d);
    uint32_t *e = sm_alloc((size_t)cap * sizeof *e);
    uint8_t *f = sm_alloc(cap);
    uint32_t *t = sm_calloc((size_t)cap * 2, sizeof *t);
    if (!a || !b || !c || !d || !e || !f || !t) {
        sm_free(a); sm_free(b); sm_free(c); sm_free(d); sm_free(e); sm_free(f); sm_free(t);
        return 0;
    }
    size_t n = m->n_st;
    if (n) {
        memcpy(a, m->st_off, n * sizeof *a);
        memcpy(b, m->st_n, n * sizeof *b);
        memcpy(c, m->st_cp, n * sizeof *c);
        memcpy(d, m->st_lo, n * sizeof *d);
        memcpy(e, m->st_hi, n * sizeof *e);
        memcpy(f, m->st_flags, n);
    }
    sm_free(m->st_off); sm_free(m->st_n); sm_free(m->st_cp); sm_free(m->st_lo); sm_free(m->st_hi);
    sm_free(m->st_flags); sm_free(m->st_table);
    m->st_off = a; m->st_n = b; m->st_cp = c; m->st_lo = d; m->st_hi = e; m->st_flags = f; m->st_table = t;
    m->cap_st = cap;
    m->st_table_cap = cap * 2;
    for (uint32_t id = 0; id < m->n_st; id++) {
        sm_gstate s = state_get(m, id);
        uint32_t h = state_hash(m, &s) & (m->st_table_cap - 1);
        while (m->st_table[h]) h = (h + 1) & (m->st_table_cap - 1);
        m->st_table[h] = id + 1;
    }
    return 1;
}

/* The id of state s (its tops sorted), added if new; TR_FAIL on failure. */
static uint32_t intern(sm_grammar_matcher *m, const sm_gstate *s) {
    if (m->st_table_cap) {
        uint32_t mask = m->st_table_cap - 1, h = state_hash(m, s) & mask;
        for (uint32_t slot; (slot = m->st_table[h]) != 0; h = (h + 1) & mask)
            if (state_equal(m, slot - 1, s)) return slot - 1;
    }
    if (m->n_st >= MAX_STATES) {
        sm_gm_fail(m, "the vocabulary walk met more than 16777216 grammar states");
        return TR_FAIL;
    }
    if (m->n_st == m->cap_st && !grow_states(m)) {
        sm_gm_fail(m, "out of memory in the vocabulary walk");
        return TR_FAIL;
    }
    uint32_t id = m->n_st++;
    m->st_off[id] = s->off;
    m->st_n[id] = s->n;
    m->st_cp[id] = s->cp;
    m->st_lo[id] = s->lo;
    m->st_hi[id] = s->hi;
    m->st_flags[id] = (uint8_t)(s->accepting | s->need << 1);
    uint32_t mask = m->st_table_cap - 1, h = state_hash(m, s) & mask;
    while (m->st_table[h]) h = (h + 1) & mask;
    m->st_table[h] = id + 1;
    return id;
}

static int tr_grow(sm_grammar_matcher *m) {
    uint32_t cap = m->tr_cap ? 2 * m->tr_cap : 4096;
    uint32_t *k = sm_alloc((size_t)cap * sizeof *k), *v = sm_alloc((size_t)cap * sizeof *v);
    uint32_t *g = sm_calloc(cap, sizeof *g);
    if (!k || !v || !g) {
        sm_free(k); sm_free(v); sm_free(g);
        return 0;
    }
    for (uint32_t i = 0; i < m->tr_cap; i++) {
        if (m->tr_gen[i] != m->tr_gen_now) continue;
        uint32_t h = (m->tr_key[i] * 0x9E3779B1u) & (cap - 1);
        while (g[h] == m->tr_gen_now) h = (h + 1) & (cap - 1);
        k[h] = m->tr_key[i];
        v[h] = m->tr_val[i];
        g[h] = m->tr_gen_now;
    }
    sm_free(m->tr_key); sm_free(m->tr_val); sm_free(m->tr_gen);
    m->tr_key = k; m->tr_val = v; m->tr_gen = g;
    m->tr_cap = cap;
    return 1;
}

/* The state after state id and byte b: an id, TR_DEAD or TR_FAIL. */
static uint32_t transition(sm_grammar_matcher *m, uint32_t id, uint8_t b) {
    uint32_t key = id << 8 | b, mask = m->tr_cap - 1, h = (key * 0x9E3779B1u) & mask;
    for (; m->tr_gen[h] == m->tr_gen_now; h = (h + 1) & mask)
        if (m->tr_key[h] == key) return m->tr_val[h];
    sm_gstate in = state_get(m, id), out;
    uint32_t before = m->ar_n;
    int r = sm_gm_step_byte(m, &in, b, &out);
    if (r < 0) return TR_FAIL;
    uint32_t val = TR_DEAD;
    if (r > 0) {
        int fresh = out.off >= before;
        if (fresh) sort_ids(m->ar + out.off, out.n);
        uint32_t n_before = m->n_st;
        val = intern(m, &out);
        if (val == TR_FAIL) return TR_FAIL;
        if (fresh && m->n_st == n_before) m->ar_n = before;   /* known state: drop the copy */
    }
    if ((m->tr_n + 1) * 2 > m->tr_cap) {
        if (!tr_grow(m)) {
            sm_gm_fail(m, "out of memory in the vocabulary walk");
            return TR_FAIL;
        }
        mask = m->tr_cap - 1;
    }
    h = (key * 0x9E3779B1u) & mask;
    while (m->tr_gen[h] == m->tr_gen_now) h = (h + 1) & mask;
    m->tr_key[h] = key;
    m->tr_val[h] = val;
    m->tr_gen[h] = m->tr_gen_now;
    m->tr_n++;
    return val;
}

sm_status sm_grammar_matcher_mask(sm_grammar_matcher *m, const sm_grammar_vocab *v, uint8_t *allowed,
                                  size_t *n_allowed, sm_error *err) {
    if (n_allowed) *n_allowed = 0;
    if (!m || !v || (!allowed && v->n_tokens))
        return sm_fail(err, SM_ERR_INVALID_ARG, "sm_grammar_matcher_mask: bad arguments");
    memset(allowed, 0, v->n_tokens);
    if (!sm_gm_prepare(m)) return sm_fail(err, SM_ERR_NOMEM, "%s", m->fail_msg);
    /* A fresh pass: no states, no cached transitions. */
    if (!m->tr_cap && !tr_grow(m)) return sm_fail(err, SM_ERR_NOMEM, "out of memory in the vocabulary walk");
    if (++m->tr_gen_now == 0) {
        memset(m->tr_gen, 0, (size_t)m->tr_cap * sizeof *m->tr_gen);
        m->tr_gen_now = 1;
    }
    m->tr_n = 0;
    m->n_st = 0;
    if (m->st_table_cap) memset(m->st_table, 0, (size_t)m->st_table_cap * sizeof *m->st_table);
    if (!sm_gm_grow(&m->level, &m->level_cap, (size_t)v->max_depth + 1) ||
        !sm_gm_grow(&m->ar, &m->ar_cap, (size_t)2 * m->cur.n + 1))
        return sm_fail(err, SM_ERR_NOMEM, "out of memory in the vocabulary walk");
    /* The committed state, its tops sorted into a copy. */
    sm_gstate s0 = m->cur;
    memcpy(m->ar + m->cur.n, m->ar, (size_t)m->cur.n * sizeof *m->ar);
    s0.off = m->cur.n;
    m->ar_n = 2 * m->cur.n;
    sort_ids(m->ar + s0.off, s0.n);
    uint32_t id0 = intern(m, &s0);
    size_t count = 0;
    if (id0 != TR_FAIL) {
        m->level[0] = id0;
        for (uint32_t i = 0; i < v->n_nodes;) {
            uint32_t r = transition(m, m->level[v->ndepth[i] - 1], v->nbyte[i]);
            if (r == TR_FAIL) break;
            if (r == TR_DEAD) {
                i = v->nend[i];
                continue;
            }
            m->level[v->ndepth[i]] = r;
            for (uint32_t j = v->ntok[i]; j < v->ntok[i + 1]; j++) allowed[v->sorted[j]] = 1;
            count += v->ntok[i + 1] - v->ntok[i];
            i++;
        }
    }
    m->ar_n = m->cur.n;
    if (m->failed) {
        memset(allowed, 0, v->n_tokens);
        return sm_fail(err, SM_ERR_NOMEM, "%s", m->fail_msg);
    }
    if (n_allowed) *n_allowed = count;
    return SM_OK;
}

/* mask.c - which tokens of a vocabulary a grammar allows next.
 *
 * A vocabulary is prepared once per model (sm_grammar_vocab_new): the
 * tokens' bytes are sorted and laid out as a byte trie in preorder, so a
 * node's subtree is the run of nodes up to nend[node] and the tokens ending
 * at a node are a run of the sorted ids. The mask is one pass over that
 * array: each node's state is its parent's state advanced by the node's
 * byte; a rejected byte skips the whole subtree.
 *
 * States met by the walk are interned (sorted tops plus the UTF-8 partial)
 * and transitions (state, byte) -> state cached, across walks: inside a
 * JSON string almost every byte leads back to the same state, and
 * consecutive walks meet mostly the same states, so most trie nodes cost a
 * table lookup instead of a grammar step. The cache holds stack node ids,
 * so it is emptied when the node pool is compacted or reset (the nodes the
 * walks make are garbage for that compaction to drop), and when it has
 * grown past CACHE_STATES states. */
#include "grammar.h"
#include "core/alloc.h"
#include "core/error.h"

#include <string.h>

#define TR_DEAD 0xFFFFFFFFu
#define TR_FAIL 0xFFFFFFFEu
#define TR_UNKNOWN 0xFFFFFFFDu
#define MAX_STATES (1u << 24)
#define DENSE_STATES 4096u   /* states whose transitions are a plain table (1 KiB each) */
#define CACHE_STATES (1u << 16)   /* the cache is emptied between walks beyond this */
#define CACHE_TOPS (1u << 22)

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
    uint32_t *nset;         /* big subtrees: index of the set of bytes in them, else NO_SET */
    uint32_t *sets;         /* 8 words per set */
    uint32_t n_sets;
};

#define NO_SET 0xFFFFFFFFu
#define BIG_SUBTREE 32      /* nodes; smaller subtrees are simply walked */

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
    sm_free(v->nset);
    sm_free(v->sets);
    sm_free(v);
}

/* The set of bytes in each big subtree, for skipping a subtree whose bytes
 * all lead a state back to itself. Children come after their parent in
 * preorder, so a backward pass can gather each level's union. */
static int subtree_sets(sm_grammar_vocab *v) {
    uint32_t n = v->n_nodes, n_big = 0;
    for (uint32_t i = 0; i < n; i++) n_big += v->nend[i] - i >= BIG_SUBTREE;
    v->nset = sm_alloc(((size_t)n + 1) * sizeof *v->nset);
    v->sets = sm_calloc((size_t)8 * (n_big + 1), sizeof *v->sets);
    uint32_t *acc = sm_calloc((size_t)8 * (v->max_depth + 2), sizeof *acc);
    if (!v->nset || !v->sets || !acc) {
        sm_free(acc);
        return 0;
    }
    uint32_t next = n_big;
    for (uint32_t i = n; i-- > 0;) {
        uint32_t d = v->ndepth[i], *mine = acc + 8 * d, *kids = acc + 8 * (d + 1);
        uint32_t set[8];
        for (int w = 0; w < 8; w++) {
            set[w] = kids[w];
            kids[w] = 0;
        }
        set[v->nbyte[i] >> 5] |= 1u << (v->nbyte[i] & 31);
        for (int w = 0; w < 8; w++) mine[w] |= set[w];
        v->nset[i] = NO_SET;
        if (v->nend[i] - i >= BIG_SUBTREE) {
            v->nset[i] = --next;
            memcpy(v->sets + 8 * (size_t)next, set, sizeof set);
        }
    }
    v->n_sets = n_big;
    sm_free(acc);
    return 1;
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
    if (!subtree_sets(v)) {
        sm_grammar_vocab_free(v);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory preparing the vocabulary");
    }
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

static uint32_t state_hash(const uint32_t *tops, const sm_gstate *s) {
    uint32_t h = 2166136261u ^ (s->accepting | (uint32_t)s->need << 1);
    h = (h ^ s->cp) * 16777619u;
    h = (h ^ s->lo) * 16777619u;
    h = (h ^ s->hi) * 16777619u;
    for (uint32_t i = 0; i < s->n; i++) h = (h ^ tops[i]) * 16777619u;
    return h;
}

/* Whether cached state id is s (whose tops are in the arena). */
static int state_equal(const sm_grammar_matcher *m, uint32_t id, const sm_gstate *s) {
    return m->st_n[id] == s->n && m->st_flags[id] == (s->accepting | (uint32_t)s->need << 1) && m->st_cp[id] == s->cp &&
           m->st_lo[id] == s->lo && m->st_hi[id] == s->hi &&
           memcmp(m->st_tops + m->st_off[id], m->ar + s->off, (size_t)s->n * sizeof *m->ar) == 0;
}

/* State id with its tops copied to the end of the arena, ready to step;
 * 0 on failure. */
static int load_state(sm_grammar_matcher *m, uint32_t id, sm_gstate *s) {
    uint32_t n = m->st_n[id];
    if (!sm_gm_grow(&m->ar, &m->ar_cap, (size_t)m->ar_n + n)) {
        sm_gm_fail(m, "out of memory in the vocabulary walk");
        return 0;
    }
    memcpy(m->ar + m->ar_n, m->st_tops + m->st_off[id], (size_t)n * sizeof *m->ar);
    s->off = m->ar_n;
    s->n = n;
    s->cp = m->st_cp[id];
    s->lo = m->st_lo[id];
    s->hi = m->st_hi[id];
    s->accepting = m->st_flags[id] & 1;
    s->need = (uint8_t)(m->st_flags[id] >> 1);
    m->ar_n += n;
    return 1;
}

static void table_insert(sm_grammar_matcher *m, uint32_t id) {
    sm_gstate s = {0};
    s.n = m->st_n[id];
    s.cp = m->st_cp[id];
    s.lo = m->st_lo[id];
    s.hi = m->st_hi[id];
    s.accepting = m->st_flags[id] & 1;
    s.need = (uint8_t)(m->st_flags[id] >> 1);
    uint32_t mask = m->st_table_cap - 1, h = state_hash(m->st_tops + m->st_off[id], &s) & mask;
    while (m->st_table[h]) h = (h + 1) & mask;
    m->st_table[h] = id + 1;
}

static int grow_states(sm_grammar_matcher *m) {
    uint32_t cap = m->cap_st ? 2 * m->cap_st : 256;
    uint32_t *a = sm_alloc((size_t)cap * sizeof *a), *b = sm_alloc((size_t)cap * sizeof *b);
    uint32_t *c = sm_alloc((size_t)cap * sizeof *c), *d = sm_alloc((size_t)cap * sizeof *d);
    uint32_t *e = sm_alloc((size_t)cap * sizeof *e);
    uint8_t *f = sm_alloc(cap);
    uint32_t *t = sm_calloc((size_t)cap * 2, sizeof *t);
    uint32_t *l = sm_alloc((size_t)cap * 16 * sizeof *l);
    if (!a || !b || !c || !d || !e || !f || !t || !l) {
        sm_free(a); sm_free(b); sm_free(c); sm_free(d); sm_free(e); sm_free(f); sm_free(t); sm_free(l);
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
        memcpy(l, m->st_loop, n * 16 * sizeof *l);
    }
    sm_free(m->st_off); sm_free(m->st_n); sm_free(m->st_cp); sm_free(m->st_lo); sm_free(m->st_hi);
    sm_free(m->st_flags); sm_free(m->st_table); sm_free(m->st_loop);
    m->st_off = a; m->st_n = b; m->st_cp = c; m->st_lo = d; m->st_hi = e; m->st_flags = f; m->st_table = t;
    m->st_loop = l;
    m->cap_st = cap;
    m->st_table_cap = cap * 2;
    for (uint32_t id = 0; id < m->n_st; id++) table_insert(m, id);
    return 1;
}

/* The id of state s (tops sorted, in the arena), cached if new; TR_FAIL
 * on failure. */
static uint32_t intern(sm_grammar_matcher *m, const sm_gstate *s) {
    if (m->st_table_cap) {
        uint32_t mask = m->st_table_cap - 1, h = state_hash(m->ar + s->off, s) & mask;
        for (uint32_t slot; (slot = m->st_table[h]) != 0; h = (h + 1) & mask)
            if (state_equal(m, slot - 1, s)) return slot - 1;
    }
    if (m->n_st >= MAX_STATES) {
        sm_gm_fail(m, "the vocabulary walk met more than 16777216 grammar states");
        return TR_FAIL;
    }
    if ((m->n_st == m->cap_st && !grow_states(m)) ||
        !sm_gm_grow(&m->st_tops, &m->st_tops_cap, (size_t)m->n_st_tops + s->n) ||
        (m->n_st < DENSE_STATES && !sm_gm_grow(&m->tr_dense, &m->tr_dense_cap, ((size_t)m->n_st + 1) * 256))) {
        sm_gm_fail(m, "out of memory in the vocabulary walk");
        return TR_FAIL;
    }
    if (m->n_st < DENSE_STATES)
        for (uint32_t i = 0; i < 256; i++) m->tr_dense[(size_t)m->n_st * 256 + i] = TR_UNKNOWN;
    uint32_t id = m->n_st++;
    memcpy(m->st_tops + m->n_st_tops, m->ar + s->off, (size_t)s->n * sizeof *m->ar);
    m->st_off[id] = m->n_st_tops;
    m->n_st_tops += s->n;
    m->st_n[id] = s->n;
    m->st_cp[id] = s->cp;
    m->st_lo[id] = s->lo;
    m->st_hi[id] = s->hi;
    m->st_flags[id] = (uint8_t)(s->accepting | s->need << 1);
    memset(m->st_loop + 16 * (size_t)id, 0, 16 * sizeof *m->st_loop);
    table_insert(m, id);
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

/* Empties the cache (its node ids are stale, or it has grown large). */
static int cache_clear(sm_grammar_matcher *m) {
    if ((!m->tr_cap && !tr_grow(m)) || !sm_gm_grow(&m->st_tops, &m->st_tops_cap, 64)) return 0;
    m->n_st = 0;
    m->n_st_tops = 0;
    if (m->st_table_cap) memset(m->st_table, 0, (size_t)m->st_table_cap * sizeof *m->st_table);
    if (++m->tr_gen_now == 0) {
        memset(m->tr_gen, 0, (size_t)m->tr_cap * sizeof *m->tr_gen);
        m->tr_gen_now = 1;
    }
    m->tr_n = 0;
    m->st_pool_gen = m->pool_gen;
    return 1;
}

/* The state after state id and byte b: an id, TR_DEAD or TR_FAIL. */
static uint32_t transition(sm_grammar_matcher *m, uint32_t id, uint8_t b) {
    uint32_t key = id << 8 | b, mask = m->tr_cap - 1, h = (key * 0x9E3779B1u) & mask;
    if (id < DENSE_STATES) {
        uint32_t known = m->tr_dense[key];
        if (known != TR_UNKNOWN) return known;
    } else {
        for (; m->tr_gen[h] == m->tr_gen_now; h = (h + 1) & mask)
            if (m->tr_key[h] == key) return m->tr_val[h];
    }
    uint32_t before = m->ar_n;
    sm_gstate in, out;
    if (!load_state(m, id, &in)) return TR_FAIL;
    int r = sm_gm_step_byte(m, &in, b, &out);
    uint32_t val = r < 0 ? TR_FAIL : TR_DEAD;
    if (r > 0) {
        if (out.off != in.off) sort_ids(m->ar + out.off, out.n);
        val = intern(m, &out);
    }
    m->ar_n = before;
    if (val == TR_FAIL) return val;
    /* known[b] and loops[b]: whether b leads id back to itself. */
    m->st_loop[16 * (size_t)id + (b >> 5)] |= 1u << (b & 31);
    if (val == id) m->st_loop[16 * (size_t)id + 8 + (b >> 5)] |= 1u << (b & 31);
    if (id < DENSE_STATES) {
        m->tr_dense[key] = val;
        return val;
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

/* Whether every byte of set leads state id back to itself (1), or not (0);
 * TR_FAIL on failure. Bytes already known to leave decide at once. */
static uint32_t all_loop(sm_grammar_matcher *m, uint32_t id, const uint32_t *set) {
    const uint32_t *known = m->st_loop + 16 * (size_t)id, *loops = known + 8;
    for (int w = 0; w < 8; w++)
        if (set[w] & known[w] & ~loops[w]) return 0;
    for (int w = 0; w < 8; w++) {
        for (uint32_t todo = set[w] & ~m->st_loop[16 * (size_t)id + w]; todo; todo &= todo - 1) {
            uint32_t b = 32 * (uint32_t)w + (uint32_t)__builtin_ctz(todo);
            uint32_t r = transition(m, id, (uint8_t)b);
            if (r == TR_FAIL) return TR_FAIL;
            if (r != id) return 0;
        }
    }
    return 1;
}

sm_status sm_grammar_matcher_mask(sm_grammar_matcher *m, const sm_grammar_vocab *v, uint8_t *allowed,
                                  size_t *n_allowed, sm_error *err) {
    if (n_allowed) *n_allowed = 0;
    if (!m || !v || (!allowed && v->n_tokens))
        return sm_fail(err, SM_ERR_INVALID_ARG, "sm_grammar_matcher_mask: bad arguments");
    if (v->n_tokens) memset(allowed, 0, v->n_tokens);
    if (!sm_gm_prepare(m)) return sm_fail(err, SM_ERR_NOMEM, "%s", m->fail_msg);
    /* The cache holds node ids: drop it after the pool was compacted or
     * reset, and when it has grown large. */
    if ((m->st_pool_gen != m->pool_gen || m->n_st > CACHE_STATES || m->n_st_tops > CACHE_TOPS || !m->tr_cap) &&
        !cache_clear(m))
        return sm_fail(err, SM_ERR_NOMEM, "out of memory in the vocabulary walk");
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
            uint32_t from = m->level[v->ndepth[i] - 1];
            if (v->nset[i] != NO_SET) {
                /* A big subtree whose bytes all loop: all its tokens are allowed. */
                uint32_t loop = all_loop(m, from, v->sets + 8 * (size_t)v->nset[i]);
                if (loop == TR_FAIL) break;
                if (loop) {
                    for (uint32_t j = v->ntok[i]; j < v->ntok[v->nend[i]]; j++) allowed[v->sorted[j]] = 1;
                    count += v->ntok[v->nend[i]] - v->ntok[i];
                    i = v->nend[i];
                    continue;
                }
            }
            uint32_t r = transition(m, from, v->nbyte[i]);
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
        if (v->n_tokens) memset(allowed, 0, v->n_tokens);
        return sm_fail(err, SM_ERR_NOMEM, "%s", m->fail_msg);
    }
    if (n_allowed) *n_allowed = count;
    return SM_OK;
}

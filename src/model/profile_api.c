/* profile_api.c - reading a profiled session: the scope tree as rows, and
 * the memory the session and model use. (The reports made of them are the
 * command's: src/cli/profile_sections.c and profile_report.c.) */
#define _DEFAULT_SOURCE
#include "session.h"
#include "core/alloc.h"
#include "core/error.h"

#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static void fill_row(const sm_prof *p, int node, int depth, int parent, sm_profile_row *r) {
    const sm_prof_node *n = &p->nodes[node];
    r->name = sm_prof_name(p, n->id);
    r->depth = depth;
    r->parent = parent;
    r->layer = n->layer;
    r->calls = n->calls;
    r->incl_ms = (double)sm_prof_ns(p, n->incl_ns) * 1e-6;
    r->self_ms = (double)sm_prof_ns(p, n->incl_ns > n->child_ns ? n->incl_ns - n->child_ns : 0) * 1e-6;
    r->min_ms = n->calls ? (double)sm_prof_ns(p, n->min_ns) * 1e-6 : 0.0;
    r->max_ms = (double)sm_prof_ns(p, n->max_ns) * 1e-6;
    r->flops = n->flops;
    r->bytes = n->bytes;
    r->alloc_count = n->alloc_count;
    r->alloc_bytes = n->alloc_bytes;
}

int sm_session_profile(const sm_session *s, sm_profile_row *rows, int cap) {
    if (!s || !s->prof_store) return 0;
    const sm_prof *p = s->prof_store;
    /* depth-first, iteratively: a stack of (node, depth, parent row) */
    int stack[SM_PROF_MAX_DEPTH + 2][3], sp = 0, n = 0;
    for (int c = p->nodes[0].first_child; c >= 0; c = p->nodes[c].next_sibling) {
        stack[sp][0] = c; stack[sp][1] = 0; stack[sp][2] = -1; sp = 1;
        while (sp > 0) {
            int node = stack[sp - 1][0], depth = stack[sp - 1][1], parent = stack[sp - 1][2];
            sp--;
            int row = n++;
            if (row < cap) fill_row(p, node, depth, parent, &rows[row]);
            /* push children in reverse so the first child comes out first */
            int kids[256], nk = 0;
            for (int k = p->nodes[node].first_child; k >= 0 && nk < 256; k = p->nodes[k].next_sibling) kids[nk++] = k;
            for (int k = nk - 1; k >= 0 && sp < SM_PROF_MAX_DEPTH + 2; k--) {
                stack[sp][0] = kids[k]; stack[sp][1] = depth + 1; stack[sp][2] = row; sp++;
            }
        }
    }
    return n;
}

void sm_session_profile_reset(sm_session *s) {
    if (s && s->prof_store) sm_prof_reset(s->prof_store);
}

void sm_session_profile_enable(sm_session *s, int on) {
    if (s) s->prof = on ? s->prof_store : NULL;
}

void sm_session_memory(const sm_session *s, sm_memory_info *info) {
    memset(info, 0, sizeof *info);
    const sm_model *m = s->model;
    const sm_hparams *hp = &m->hp;
    info->arena = s->block_bytes;
    info->kv_cache = 2ull * hp->n_layers * (uint64_t)s->n_ctx * hp->n_kv_heads * hp->head_dim * sizeof(float);
    info->weights_mapped = m->file.size;
    info->weights_interleaved = m->x16_bytes;
    if (m->file.data) {
        long page = sysconf(_SC_PAGESIZE);
        size_t pages = (m->file.size + (size_t)page - 1) / (size_t)page;
        unsigned char *vec = sm_alloc(pages);
        if (vec && mincore((void *)m->file.data, m->file.size, vec) == 0) {
            uint64_t res = 0;
            for (size_t i = 0; i < pages; i++) res += vec[i] & 1;
            info->weights_resident = res * (uint64_t)page;
            if (info->weights_resident > m->file.size) info->weights_resident = m->file.size;
        }
        sm_free(vec);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) info->peak_rss = (uint64_t)ru.ru_maxrss * 1024;
}

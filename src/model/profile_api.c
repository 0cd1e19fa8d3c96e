/* profile_api.c - reading a profiled session: the scope tree as rows, the
 * markdown report sections, and the memory the session and model use. */
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
    r->name = sm_scope_name(n->id);
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

/* Per-step totals, summed over every place in the tree a step occurs. */
typedef struct step_total {
    const char *name;
    uint64_t calls, alloc_count, alloc_bytes;
    double incl_ms, self_ms, min_ms, max_ms;
} step_total;

static int totals(const sm_profile_row *rows, int n, step_total *t) {
    int nt = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < nt && strcmp(t[k].name, rows[i].name) != 0) k++;
        if (k == nt) {
            memset(&t[nt], 0, sizeof t[nt]);
            t[nt].name = rows[i].name;
            t[nt].min_ms = 1e300;
            nt++;
        }
        t[k].calls += rows[i].calls;
        t[k].incl_ms += rows[i].incl_ms;
        t[k].self_ms += rows[i].self_ms;
        t[k].alloc_count += rows[i].alloc_count;
        t[k].alloc_bytes += rows[i].alloc_bytes;
        if (rows[i].calls && rows[i].min_ms < t[k].min_ms) t[k].min_ms = rows[i].min_ms;
        if (rows[i].max_ms > t[k].max_ms) t[k].max_ms = rows[i].max_ms;
    }
    for (int k = 0; k < nt; k++)
        if (t[k].min_ms > 1e299) t[k].min_ms = 0;
    return nt;
}

/* Insertion sort by a key, descending (a few dozen entries). */
static void sort_totals(step_total *t, int n, int key) {
    for (int i = 1; i < n; i++) {
        step_total x = t[i];
        double kx = key == 0 ? x.self_ms : key == 1 ? (double)x.alloc_bytes : (double)x.calls;
        int j = i;
        while (j > 0) {
            double kj = key == 0 ? t[j - 1].self_ms : key == 1 ? (double)t[j - 1].alloc_bytes : (double)t[j - 1].calls;
            if (kj >= kx) break;
            t[j] = t[j - 1];
            j--;
        }
        t[j] = x;
    }
}

static int is_attention(const char *n) {
    return !strcmp(n, "attention norm") || strstr(n, "Q") || strstr(n, "K projection") || strstr(n, "V projection") ||
           !strcmp(n, "RoPE") || strstr(n, "attention ") || !strcmp(n, "softmax") || !strcmp(n, "output projection");
}

sm_status sm_session_profile_write(const sm_session *s, FILE *out, unsigned sections, sm_error *err) {
    if (!s || !s->prof_store) return sm_fail(err, SM_ERR_INVALID_ARG, "profiling is not enabled on this session");
    int n = sm_session_profile(s, NULL, 0);
    sm_profile_row *rows = sm_alloc((size_t)(n ? n : 1) * sizeof *rows);
    step_total *t = sm_alloc((size_t)(n ? n : 1) * sizeof *t);
    if (!rows || !t) {
        sm_free(rows);
        sm_free(t);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    }
    sm_session_profile(s, rows, n);
    int nt = totals(rows, n, t);
    double total = 0.0;  /* measured time: every top scope but the model load */
    for (int i = 0; i < n; i++)
        if (rows[i].depth == 0 && strcmp(rows[i].name, "load") != 0) total += rows[i].incl_ms;
    if (total <= 0.0) total = 1e-9;

    if (sections & SM_PROFILE_HOT_PATHS) {
        sort_totals(t, nt, 0);
        fprintf(out, "## Hot paths\n\nSteps by self time (time not spent in a sub-step), summed over every layer and call site.\n\n");
        fprintf(out, "| rank | scope | self ms | self %% | inclusive ms | calls | avg ms | min ms | max ms |\n");
        fprintf(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int k = 0, r = 1; k < nt; k++) {
            if (!strcmp(t[k].name, "load")) continue;
            fprintf(out, "| %d | %s | %.3f | %.1f | %.3f | %llu | %.5f | %.5f | %.5f |\n", r++, t[k].name, t[k].self_ms,
                    100.0 * t[k].self_ms / total, t[k].incl_ms, (unsigned long long)t[k].calls,
                    t[k].calls ? t[k].incl_ms / (double)t[k].calls : 0.0, t[k].min_ms, t[k].max_ms);
        }
        fprintf(out, "\n");
    }
    if (sections & SM_PROFILE_ALLOCATORS) {
        sort_totals(t, nt, 1);
        fprintf(out, "## Top allocators\n\nAllocations made through the library's allocator while the step was the innermost scope.\n\n");
        fprintf(out, "| scope | allocations | bytes |\n|---|---:|---:|\n");
        int any = 0;
        for (int k = 0; k < nt; k++)
            if (t[k].alloc_count) {
                fprintf(out, "| %s | %llu | %llu |\n", t[k].name, (unsigned long long)t[k].alloc_count,
                        (unsigned long long)t[k].alloc_bytes);
                any = 1;
            }
        if (!any) fprintf(out, "| (none) | 0 | 0 |\n");
        fprintf(out, "\n");
    }
    if (sections & SM_PROFILE_MOST_CALLED) {
        sort_totals(t, nt, 2);
        fprintf(out, "## Most called\n\n| scope | calls | avg us |\n|---|---:|---:|\n");
        for (int k = 0; k < nt && k < 12; k++)
            fprintf(out, "| %s | %llu | %.2f |\n", t[k].name, (unsigned long long)t[k].calls,
                    t[k].calls ? 1e3 * t[k].incl_ms / (double)t[k].calls : 0.0);
        fprintf(out, "\n");
    }
    if (sections & SM_PROFILE_TREE) {
        fprintf(out, "## Call hierarchy\n\nInclusive / self milliseconds and calls; layers shown as `layer N`.\n\n```\n");
        for (int i = 0; i < n; i++) {
            char label[96];
            if (rows[i].layer >= 0 && !strcmp(rows[i].name, "layer")) snprintf(label, sizeof label, "layer %d", rows[i].layer);
            else snprintf(label, sizeof label, "%s", rows[i].name);
            fprintf(out, "%*s%-*s %10.3f %10.3f %8llu\n", 2 * rows[i].depth, "", 34 - 2 * rows[i].depth, label,
                    rows[i].incl_ms, rows[i].self_ms, (unsigned long long)rows[i].calls);
        }
        fprintf(out, "```\n\n");
    }
    if (sections & SM_PROFILE_LAYERS) {
        int n_layers = s->model->hp.n_layers;
        fprintf(out, "## Per layer\n\nResidual adds are fused into the output and FFN-down projections.\n\n"
                     "| layer | total ms | attention ms | FFN ms | share %% |\n|---:|---:|---:|---:|---:|\n");
        for (int l = 0; l < n_layers; l++) {
            double tot = 0, att = 0, ffn = 0;
            for (int i = 0; i < n; i++) {
                if (rows[i].layer != l) continue;
                if (!strcmp(rows[i].name, "layer")) tot += rows[i].incl_ms;
                else if (is_attention(rows[i].name)) att += rows[i].self_ms;
                else ffn += rows[i].self_ms;
            }
            fprintf(out, "| %d | %.3f | %.3f | %.3f | %.1f |\n", l, tot, att, ffn, 100.0 * tot / total);
        }
        fprintf(out, "\n");
    }
    sm_free(rows);
    sm_free(t);
    return SM_OK;
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

/* profile_api.c - reading a profiled session: the scope tree as rows (with
 * what a roofline needs of each step), its timeline, and the memory the
 * session and model use. (The reports made of them are the command's:
 * src/cli/profile_sections.c, profile_report.c and the files they use.) */
#define _DEFAULT_SOURCE
#include "session.h"
#include "profile_api.h"
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

/* The tree in depth-first order into rows (and steps, if given). */
static int walk(const sm_prof *p, sm_profile_row *rows, sm_profile_step *steps, int cap) {
    /* depth-first, iteratively: a stack of (node, depth, parent row) */
    int stack[SM_PROF_MAX_DEPTH + 2][3], sp = 0, n = 0;
    for (int c = p->nodes[0].first_child; c >= 0; c = p->nodes[c].next_sibling) {
        stack[sp][0] = c; stack[sp][1] = 0; stack[sp][2] = -1; sp = 1;
        while (sp > 0) {
            int node = stack[sp - 1][0], depth = stack[sp - 1][1], parent = stack[sp - 1][2];
            sp--;
            int row = n++;
            if (row < cap && rows) fill_row(p, node, depth, parent, &rows[row]);
            if (row < cap && steps) {
                const sm_prof_node *nd = &p->nodes[node];
                const sm_step_info *si = nd->id >= 0 && nd->id < SM_SC_COUNT ? &sm_step_infos[nd->id] : NULL;
                fill_row(p, node, depth, parent, &steps[row].row);
                steps[row].kind = si ? si->kind : SM_STEP_GROUP;
                steps[row].fma = si ? si->fma : 0;
                steps[row].pass = si ? si->pass : 0;
                steps[row].tasks = nd->tasks;
                steps[row].int8 = nd->flops && 2 * nd->int_flops >= nd->flops;
                steps[row].bf16 = nd->flops && 2 * nd->bf16_flops >= nd->flops;
            }
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

int sm_session_profile(const sm_session *s, sm_profile_row *rows, int cap) {
    if (!s || !s->prof_store) return 0;
    return walk(s->prof_store, rows, NULL, cap);
}

int sm_session_profile_steps(const sm_session *s, sm_profile_step *rows, int cap) {
    if (!s || !s->prof_store) return 0;
    return walk(s->prof_store, NULL, rows, cap);
}

/* For the trainer, whose profiler is its own (train/train_profile.c). */
int sm_prof_steps(const sm_prof *p, sm_profile_step *rows, int cap) { return walk(p, NULL, rows, cap); }

void sm_session_profile_reset(sm_session *s) {
    if (s && s->prof_store) sm_prof_reset(s->prof_store);
}

void sm_session_profile_enable(sm_session *s, int on) {
    if (!s) return;
    s->prof = on ? s->prof_store : NULL;
    if (!s->prof_store) return;
    sm_threadpool_set_hook(s->pool, on ? sm_prof_task_hook : NULL, s->prof_store);
}

/* ------------------------------------------------------------ timelines */

void sm_session_trace_tasks(sm_session *s, int on) {
    if (s && s->prof_store) s->prof_store->steps_only = !on;
}

sm_status sm_session_trace_start(sm_session *s, size_t events_per_thread, sm_error *err) {
    if (!s || !s->prof_store)
        return sm_fail(err, SM_ERR_INVALID_ARG, "a trace needs a session created with profiling on");
    if (events_per_thread == 0) events_per_thread = 65536;
    if (events_per_thread < 16 || events_per_thread > ((size_t)1 << 28))
        return sm_fail(err, SM_ERR_INVALID_ARG, "%zu trace events per thread is out of range (16 to %d)",
                       events_per_thread, 1 << 28);
    if (sm_prof_trace_start(s->prof_store, s->n_threads, events_per_thread) != 0)
        return sm_fail(err, SM_ERR_NOMEM, "out of memory for a trace of %zu events per thread", events_per_thread);
    return SM_OK;
}

void sm_session_trace_stop(sm_session *s) {
    if (s && s->prof_store) sm_prof_trace_stop(s->prof_store);
}

size_t sm_session_trace_spans(const sm_session *s, int thread, sm_trace_span *out, size_t cap) {
    if (!s || !s->prof_store || !s->prof_store->trace) return 0;
    const sm_prof *p = s->prof_store;
    return sm_trace_spans(p->trace, thread, p->ns_per_tick, p->names, p->n_names, out, cap);
}

sm_trace_write_params sm_trace_write_default_params(void) {
    sm_trace_write_params p;
    memset(&p, 0, sizeof p);
    p.pid = 1;
    return p;
}

/* What both the session's and the trainer's traces share. */
sm_status sm_prof_trace_write(const sm_prof *p, FILE *f, const sm_trace_write_params *wp, int rate_id, sm_error *err) {
    if (!p || !p->trace) return sm_fail(err, SM_ERR_INVALID_ARG, "no trace is being recorded");
    if (!f) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_session_trace_write: the stream is NULL");
    sm_trace_write_params d = sm_trace_write_default_params();
    if (!wp) wp = &d;
    sm_trace_format fmt = {wp->pid, wp->process_name, "main", wp->origin_ns, wp->since_ns, wp->events_only,
                           rate_id, p->ns_per_tick, p->names, p->n_names};
    if (sm_trace_write(p->trace, f, &fmt) != 0) return sm_fail(err, SM_ERR_IO, "cannot write the trace");
    return SM_OK;
}

sm_status sm_session_trace_write(const sm_session *s, FILE *f, const sm_trace_write_params *wp, sm_error *err) {
    if (!s || !s->prof_store) return sm_fail(err, SM_ERR_INVALID_ARG, "the session is not profiled");
    return sm_prof_trace_write(s->prof_store, f, wp, SM_SC_TOKEN, err);
}

void sm_session_memory(const sm_session *s, sm_memory_info *info) {
    memset(info, 0, sizeof *info);
    const sm_model *m = s->model;
    const sm_hparams *hp = &m->hp;
    info->arena = s->block_bytes;
    info->kv_cache = (uint64_t)hp->n_layers * s->n_ctx * sm_kv_position_bytes(s);
    info->weights_mapped = m->file.size;
    info->weights_read = m->file.copied;
    info->weights_interleaved = m->x16_bytes;
    if (m->file.data) {
        long page = sysconf(_SC_PAGESIZE);
        /* from the page the data starts in (a file read, not mapped, may
         * start inside one) */
        uintptr_t start = (uintptr_t)m->file.data & ~(uintptr_t)(page - 1);
        size_t span = (size_t)((uintptr_t)m->file.data - start) + m->file.size;
        size_t pages = (span + (size_t)page - 1) / (size_t)page;
        unsigned char *vec = sm_alloc(pages);
        if (vec && mincore((void *)start, span, vec) == 0) {
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

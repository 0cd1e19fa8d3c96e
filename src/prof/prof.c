/* prof.c - see prof.h. */
#include "prof.h"
#include "core/alloc.h"
#include "core/clock.h"

#include <string.h>

const char *sm_prof_name(const sm_prof *p, int id) { return id >= 0 && id < p->n_names ? p->names[id] : "?"; }

/* The time-stamp counter costs a few nanoseconds where clock_gettime costs
 * twenty; it is used when the CPU says it ticks at a constant rate. */
#if defined(__x86_64__)
static int tsc_usable(void) {
    unsigned a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x80000007u));
    return (d >> 8) & 1;  /* invariant TSC */
}
#define ticks sm_prof_ticks
#else
static int tsc_usable(void) { return 0; }
#define ticks sm_prof_ticks
#endif

static void calibrate(sm_prof *p) {
    p->use_tsc = tsc_usable();
    p->ns_per_tick = 1.0;
    if (!p->use_tsc) return;
    uint64_t t0 = sm_now_ns(), c0 = ticks(p), t1;
    do { t1 = sm_now_ns(); } while (t1 - t0 < 2000000);  /* 2 ms */
    uint64_t c1 = ticks(p);
    p->ns_per_tick = c1 > c0 ? (double)(t1 - t0) / (double)(c1 - c0) : 1.0;
}

static void init_root(sm_prof *p) {
    memset(&p->nodes[0], 0, sizeof p->nodes[0]);
    p->nodes[0].id = 0;   /* the root */
    p->nodes[0].layer = -1;
    p->nodes[0].parent = p->nodes[0].first_child = p->nodes[0].next_sibling = p->nodes[0].cursor = -1;
    p->n_nodes = 1;
    p->depth = 1;
    p->stack[0] = 0;
    p->start[0] = ticks(p);
    sm_alloc_counters(&p->alloc_count_mark, &p->alloc_bytes_mark);
    p->overflow = 0;
}

sm_prof *sm_prof_new(int cap, const char *const *names, int n_names) {
    sm_prof *p = sm_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->names = names;
    p->n_names = n_names;
    p->nodes = sm_alloc((size_t)cap * sizeof *p->nodes);
    if (!p->nodes) {
        sm_free(p);
        return NULL;
    }
    p->cap = cap;
    calibrate(p);
    init_root(p);
    return p;
}

void sm_prof_free(sm_prof *p) {
    if (!p) return;
    sm_trace_free(p->trace);
    sm_free(p->nodes);
    sm_free(p);
}

void sm_prof_reset(sm_prof *p) { init_root(p); }

static int child_node(sm_prof *p, int parent, int id, int layer) {
    for (int c = p->nodes[parent].first_child; c >= 0; c = p->nodes[c].next_sibling)
        if (p->nodes[c].id == id && p->nodes[c].layer == layer) return c;
    if (p->n_nodes == p->cap) return -1;
    int c = p->n_nodes++;
    sm_prof_node *n = &p->nodes[c];
    memset(n, 0, sizeof *n);
    n->id = (int16_t)id;
    n->layer = (int16_t)layer;
    n->parent = parent;
    n->first_child = n->cursor = -1;
    n->min_ns = UINT64_MAX;
    /* append, so children keep the order in which they first ran */
    int *link = &p->nodes[parent].first_child;
    while (*link >= 0) link = &p->nodes[*link].next_sibling;
    *link = c;
    n->next_sibling = -1;
    return c;
}

int sm_prof_child(sm_prof *p, int parent, int id, int layer) {
    int c = p->depth < SM_PROF_MAX_DEPTH ? child_node(p, parent, id, layer) : -1;
    if (c < 0) {
        /* out of room: time the rest as part of the parent */
        p->overflow = 1;
        c = parent;
    }
    return c;
}

void sm_prof_add(sm_prof *p, int id, uint64_t ns) {
    int parent = p->stack[p->depth - 1];
    int c = child_node(p, parent, id, p->nodes[parent].layer);
    if (c < 0) { p->overflow = 1; return; }
    uint64_t t = (uint64_t)((double)ns / p->ns_per_tick);
    sm_prof_node *n = &p->nodes[c];
    n->calls++;
    n->incl_ns += t;
    if (t < n->min_ns) n->min_ns = t;
    if (t > n->max_ns) n->max_ns = t;
    p->nodes[parent].child_ns += t;
}

void sm_prof_task_hook(void *user, int ith, int end) {
    sm_prof *p = user;
    if (ith == 0 && !end) {
        sm_prof_node *n = &p->nodes[p->stack[p->depth - 1]];
        n->tasks++;
        p->task.trace = p->steps_only ? NULL : p->trace;
        p->task.use_tsc = p->use_tsc;
        p->task.id = n->id;
        p->task.layer = n->layer;
    }
    sm_trace *t = p->task.trace;
    if (!t || ith >= t->n_threads) return;
    sm_trace_thread *th = &t->threads[ith];
    uint64_t now = sm_prof_clock(p->task.use_tsc);
    if (!end) {
        th->open = now;
        return;
    }
    sm_trace_push(t, ith, th->open, now, p->task.id, p->task.layer, SM_TRACE_TASK, 0);
}

int sm_prof_trace_start(sm_prof *p, int n_threads, size_t cap) {
    sm_prof_trace_stop(p);
    sm_trace *t = sm_trace_new(n_threads, cap, 0);
    if (!t) return -1;
    t->start_ns = sm_now_ns();
    t->start_ticks = ticks(p);
    t->alloc_start = sm_alloc_bytes_tls;
    p->trace = t;
    return 0;
}

void sm_prof_trace_stop(sm_prof *p) {
    sm_trace_free(p->trace);
    p->trace = NULL;
}

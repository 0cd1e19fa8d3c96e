/* prof.h - the profiler's scope tree. A session with profiling enabled
 * owns one sm_prof; every step of the forward pass and of generation opens
 * and closes a scope (the ids and names are the caller's: model/steps.h).
 * Each node of the tree is one (scope, layer) under one parent and
 * accumulates calls, inclusive time, time spent in children, min/max, the
 * work done (FLOPs, bytes of weights read), the allocations made while it
 * was the innermost scope and the tasks it handed to the thread pool. Nodes
 * live in a block allocated up front: profiling allocates nothing while it
 * runs. When a trace is attached (trace.h), every closed scope and every
 * thread's share of a pool task is also recorded on a timeline. */
#ifndef SM_PROF_PROF_H
#define SM_PROF_PROF_H

#include <stdint.h>
#include "core/alloc.h"
#include "core/clock.h"
#include "trace.h"
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

/* Times are kept in ticks of the profiler's clock (TSC cycles where the
 * CPU has an invariant TSC, else nanoseconds) and converted when read:
 * sm_prof_ns(p, ticks). */
typedef struct sm_prof_node {
    int16_t id, layer;           /* layer -1 outside the layers */
    int32_t parent, first_child, next_sibling;
    int32_t cursor;              /* the child expected next: the sibling of the one opened last */
    uint64_t calls, incl_ns, child_ns, min_ns, max_ns;   /* in ticks */
    uint64_t flops, bytes;
    uint64_t int_flops;          /* the part of flops done as 8-bit integer dots */
    uint64_t bf16_flops;         /* the part done as BF16 dots (mixed precision's products) */
    uint64_t alloc_count, alloc_bytes;   /* charged while innermost */
    uint64_t tasks;              /* hand-offs to the thread pool while innermost */
} sm_prof_node;

#define SM_PROF_MAX_DEPTH 32

typedef struct sm_prof {
    sm_prof_node *nodes;
    const char *const *names;                      /* indexed by scope id; id 0 is the root */
    int n_names;
    int n_nodes, cap;
    int depth;
    int stack[SM_PROF_MAX_DEPTH];
    uint64_t start[SM_PROF_MAX_DEPTH];            /* in ticks of the profiler's clock */
    uint64_t alloc_count_mark, alloc_bytes_mark;   /* allocator counters when last charged */
    int overflow;                                  /* nodes or depth ran out */
    double ns_per_tick;                            /* the clock below, calibrated */
    int use_tsc;
    sm_trace *trace;                               /* the timeline being recorded, or NULL */
    int steps_only;                                /* the timeline leaves out the pool's task shares */
    /* What the pool's workers read for the task at hand (sm_prof_task_hook),
     * written by the profiled thread before it hands the task out, on a
     * cache line of its own: the lines the scope stack lives on change at
     * every step, and a worker reading them pulled them across cores. */
    struct {
        sm_trace *trace;
        int use_tsc;
        int16_t id, layer;                         /* the innermost scope */
    } __attribute__((aligned(64))) task;
} sm_prof;

/* cap nodes; names[id] names scope id (its caller's list, which must
 * outlive the profiler; id 0 is the root). NULL when out of memory. */
sm_prof *sm_prof_new(int cap, const char *const *names, int n_names);
/* A scope id's name, "?" when out of range. */
const char *sm_prof_name(const sm_prof *p, int id);
void sm_prof_free(sm_prof *p);
void sm_prof_reset(sm_prof *p);

/* The slow path of begin: finds or makes the child node. */
int sm_prof_child(sm_prof *p, int parent, int id, int layer);
/* Closes a scope that ran out of room (see begin). */
void sm_prof_overflowed(sm_prof *p);

/* The profiler's clock: the TSC when calibrated to it, else CLOCK_MONOTONIC. */
static inline uint64_t sm_prof_clock(int use_tsc) {
#if defined(__x86_64__)
    if (use_tsc) return __rdtsc();
#endif
    (void)use_tsc;
    return sm_now_ns();
}

static inline uint64_t sm_prof_ticks(const sm_prof *p) { return sm_prof_clock(p->use_tsc); }

static inline uint64_t sm_prof_ns(const sm_prof *p, uint64_t ticks) {
    return (uint64_t)((double)ticks * p->ns_per_tick);
}

/* Allocations since the last charge go to the scope that was innermost. */
static inline void sm_prof_charge_allocs(sm_prof *p) {
    uint64_t c, b;
    sm_alloc_counters(&c, &b);
    if (c == p->alloc_count_mark) return;
    sm_prof_node *n = &p->nodes[p->stack[p->depth - 1]];
    n->alloc_count += c - p->alloc_count_mark;
    n->alloc_bytes += b - p->alloc_bytes_mark;
    p->alloc_count_mark = c;
    p->alloc_bytes_mark = b;
}

/* Opens a scope; layer -1 inherits the enclosing scope's layer. Inline:
 * it runs dozens of times per token. */
static inline void sm_prof_begin(sm_prof *p, int id, int layer) {
    sm_prof_charge_allocs(p);
    int parent = p->stack[p->depth - 1];
    const sm_prof_node *pn = &p->nodes[parent];
    if (layer < 0) layer = pn->layer;
    int c = pn->cursor;
    if (c < 0 || p->nodes[c].id != id || p->nodes[c].layer != layer || p->depth >= SM_PROF_MAX_DEPTH) {
        c = sm_prof_child(p, parent, id, layer);
        if (c != parent) p->nodes[parent].cursor = p->nodes[c].next_sibling >= 0 ? p->nodes[c].next_sibling : p->nodes[parent].first_child;
    } else {
        p->nodes[parent].cursor = p->nodes[c].next_sibling >= 0 ? p->nodes[c].next_sibling : p->nodes[parent].first_child;
    }
    p->stack[p->depth] = c;
    /* its own clock read: work between two steps that no scope covers stays
     * the parent's own time instead of being charged to the next step */
    p->start[p->depth] = sm_prof_ticks(p);
    if (p->depth < SM_PROF_MAX_DEPTH) p->depth++;
}

/* Closes the innermost scope, crediting it with the work done: flops
 * operations, int_flops of them as 8-bit integer dots and bf16_flops as
 * BF16 dots. */
static inline void sm_prof_end_dots(sm_prof *p, uint64_t flops, uint64_t int_flops, uint64_t bf16_flops,
                                    uint64_t bytes) {
    if (p->depth <= 1) return;
    uint64_t now = sm_prof_ticks(p);
    sm_prof_charge_allocs(p);
    p->depth--;
    int c = p->stack[p->depth];
    if (c == p->stack[p->depth - 1]) return;  /* a scope that overflowed into its parent */
    uint64_t t = now - p->start[p->depth];
    sm_prof_node *n = &p->nodes[c];
    n->calls++;
    n->incl_ns += t;
    if (t < n->min_ns) n->min_ns = t;
    if (t > n->max_ns) n->max_ns = t;
    n->flops += flops;
    n->int_flops += int_flops;
    n->bf16_flops += bf16_flops;
    n->bytes += bytes;
    p->nodes[n->parent].child_ns += t;
    /* charge_allocs above left the allocator's byte count in the mark */
    if (p->trace) sm_trace_push(p->trace, 0, p->start[p->depth], now, n->id, n->layer, SM_TRACE_STEP, p->alloc_bytes_mark);
}
static inline void sm_prof_end(sm_prof *p, uint64_t flops, uint64_t bytes) { sm_prof_end_dots(p, flops, 0, 0, bytes); }

/* Adds a finished measurement (e.g. model load, timed before the session
 * existed) as a child of the current scope. */
void sm_prof_add(sm_prof *p, int id, uint64_t ns);

/* The thread pool's task hook (core/threadpool.h) with the profiler as
 * user: counts the hand-offs of the innermost scope and, while a trace is
 * recorded, each thread's share of the task as a span named after that
 * scope. The profiled thread's call before the task is handed out notes
 * the scope in p->task; workers read only that and write their own ring. */
void sm_prof_task_hook(void *user, int ith, int end);

/* Starts recording a timeline of n_threads threads (the profiled one and
 * the pool's workers) in rings of cap events; a trace being recorded is
 * dropped first. -1 when out of memory. */
int sm_prof_trace_start(sm_prof *p, int n_threads, size_t cap);
void sm_prof_trace_stop(sm_prof *p);
/* A counter value (SM_TRACE_TOKENS_PER_S, ...) on the timeline, now. */
static inline void sm_prof_counter(sm_prof *p, int counter, double value) {
    if (!p->trace) return;
    sm_trace_event *e = sm_trace_slot(&p->trace->threads[0], p->trace->cap);
    e->t0 = e->t1 = sm_prof_ticks(p);
    e->u.value = value;
    e->id = (int16_t)counter;
    e->layer = -1;
    e->kind = SM_TRACE_COUNTER;
}

/* Instrumentation points: a NULL profiler costs one branch. */
#define SM_PROF_BEGIN(prof, id, layer) do { if (prof) sm_prof_begin((prof), (id), (layer)); } while (0)
#define SM_PROF_END(prof, flops, bytes) do { if (prof) sm_prof_end((prof), (flops), (bytes)); } while (0)
#define SM_PROF_END_INT(prof, flops, int_flops, bytes) \
    do { if (prof) sm_prof_end_dots((prof), (flops), (int_flops), 0, (bytes)); } while (0)
#define SM_PROF_END_BF16(prof, flops, bf16_flops, bytes) \
    do { if (prof) sm_prof_end_dots((prof), (flops), 0, (bf16_flops), (bytes)); } while (0)

#endif

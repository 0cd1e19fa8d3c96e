/* prof.h - the profiler's scope tree. A session with profiling enabled
 * owns one sm_prof; every step of the forward pass and of generation opens
 * and closes a scope. Each node of the tree is one (scope, layer) under one
 * parent and accumulates calls, inclusive time, time spent in children,
 * min/max, the work done (FLOPs, bytes of weights read) and the
 * allocations made while it was the innermost scope. Nodes live in a block
 * allocated up front: profiling allocates nothing while it runs. */
#ifndef SM_PROF_PROF_H
#define SM_PROF_PROF_H

#include <stdint.h>

enum sm_scope_id {
    SM_SC_ROOT, SM_SC_LOAD, SM_SC_GENERATE, SM_SC_ENCODE, SM_SC_PREFILL, SM_SC_TOKEN, SM_SC_FORWARD,
    SM_SC_EMBED, SM_SC_LAYER, SM_SC_ATTN_NORM, SM_SC_Q_PROJ, SM_SC_K_PROJ, SM_SC_V_PROJ, SM_SC_QKV_PROJ,
    SM_SC_ROPE, SM_SC_ATT_SCORES, SM_SC_SOFTMAX, SM_SC_ATT_V, SM_SC_O_PROJ, SM_SC_RESIDUAL, SM_SC_FFN_NORM,
    SM_SC_FFN_GATE, SM_SC_FFN_UP, SM_SC_FFN_ACT, SM_SC_FFN_DOWN, SM_SC_FINAL_NORM, SM_SC_LOGITS,
    SM_SC_SAMPLE, SM_SC_DECODE, SM_SC_USER, SM_SC_COUNT
};

const char *sm_scope_name(int id);

typedef struct sm_prof_node {
    int16_t id, layer;           /* layer -1 outside the layers */
    int32_t parent, first_child, next_sibling;
    int32_t cursor;              /* the child opened last: the next is usually its sibling */
    uint64_t calls, incl_ns, child_ns, min_ns, max_ns;
    uint64_t flops, bytes;
    uint64_t alloc_count, alloc_bytes;   /* charged while innermost */
} sm_prof_node;

#define SM_PROF_MAX_DEPTH 32

typedef struct sm_prof {
    sm_prof_node *nodes;
    int n_nodes, cap;
    int depth;
    int stack[SM_PROF_MAX_DEPTH];
    uint64_t start[SM_PROF_MAX_DEPTH];            /* in ticks of the profiler's clock */
    uint64_t alloc_count_mark, alloc_bytes_mark;   /* allocator counters when last charged */
    int overflow;                                  /* nodes or depth ran out */
    double ns_per_tick;                            /* the clock below, calibrated */
    uint64_t last_end;                             /* when the last scope closed ... */
    int just_ended;                                /* ... if nothing happened since */
    int use_tsc;
} sm_prof;

/* cap nodes; returns NULL when out of memory. */
sm_prof *sm_prof_new(int cap);
void sm_prof_free(sm_prof *p);
void sm_prof_reset(sm_prof *p);

void sm_prof_begin(sm_prof *p, int id, int layer);
/* Closes the innermost scope, crediting it with the work done. */
void sm_prof_end(sm_prof *p, uint64_t flops, uint64_t bytes);
/* Adds a finished measurement (e.g. model load, timed before the session
 * existed) as a child of the current scope. */
void sm_prof_add(sm_prof *p, int id, uint64_t ns);

/* Instrumentation points: a NULL profiler costs one branch. */
#define SM_PROF_BEGIN(prof, id, layer) do { if (prof) sm_prof_begin((prof), (id), (layer)); } while (0)
#define SM_PROF_END(prof, flops, bytes) do { if (prof) sm_prof_end((prof), (flops), (bytes)); } while (0)

#endif

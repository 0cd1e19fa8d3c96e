/* trace.h - the timeline a profiler records when asked: every scope the
 * profiled thread closes and every share of a thread-pool task each thread
 * runs, in one ring of events per thread (the newest kept, so memory is
 * bounded and nothing is shared between threads while they run), written
 * out as Chrome trace-event JSON (trace.c) that Perfetto and
 * chrome://tracing open. */
#ifndef SM_PROF_TRACE_H
#define SM_PROF_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { SM_TRACE_STEP = 0, SM_TRACE_TASK = 1, SM_TRACE_COUNTER = 2 };
/* Counters a caller can push (SM_TRACE_COUNTER events); "bytes allocated"
 * is made from the steps' allocator readings when the trace is written. */
enum { SM_TRACE_TOKENS_PER_S = 0 };

/* 32 bytes. Times in ticks of the profiler's clock. */
typedef struct sm_trace_event {
    uint64_t t0, t1;             /* a counter: t0 = when, t1 unused */
    union {
        uint64_t alloc_bytes;    /* a step: the thread's allocator byte count when it closed */
        double value;            /* a counter's value */
    } u;
    int16_t id, layer;           /* the step (a task: the step that handed it out); a counter: its number */
    uint8_t kind;                /* SM_TRACE_* */
    uint8_t pad[3];
} sm_trace_event;

/* One thread's ring, on cache lines of its own. */
typedef struct sm_trace_thread {
    sm_trace_event *ev;
    uint64_t n;                  /* events ever pushed; the ring holds the last min(n, cap) */
    size_t at;                   /* the next slot: n % cap, kept without a division */
    uint64_t open;               /* start of the task share this thread is running */
    char pad[32];
} __attribute__((aligned(64))) sm_trace_thread;

typedef struct sm_trace {
    int n_threads;               /* index 0: the profiled thread; 1..: the pool's workers */
    size_t cap;                  /* events per thread */
    sm_trace_thread *threads;
    void *block;                 /* the memory of threads[] and the rings */
    uint64_t start_ticks, start_ns;   /* when recording began, on the profiler's clock and CLOCK_MONOTONIC */
    uint64_t alloc_start;        /* the profiled thread's allocator bytes then */
} sm_trace;

/* n_threads rings of cap events (cap >= 16). NULL when out of memory. */
sm_trace *sm_trace_new(int n_threads, size_t cap, uint64_t start_ticks);
void sm_trace_free(sm_trace *t);

static inline sm_trace_event *sm_trace_slot(sm_trace_thread *th, size_t cap) {
    sm_trace_event *e = &th->ev[th->at];
    th->n++;
    if (++th->at == cap) th->at = 0;
    return e;
}

static inline void sm_trace_push(sm_trace *t, int thread, uint64_t t0, uint64_t t1, int id, int layer, int kind,
                                 uint64_t alloc_bytes) {
    sm_trace_event *e = sm_trace_slot(&t->threads[thread], t->cap);
    e->t0 = t0;
    e->t1 = t1;
    e->u.alloc_bytes = alloc_bytes;
    e->id = (int16_t)id;
    e->layer = (int16_t)layer;
    e->kind = (uint8_t)kind;
}

/* How the file is written (see sm_trace_write_params in smallmind.h,
 * which sm_session_trace_write copies into this). */
typedef struct sm_trace_format {
    int pid;
    const char *process_name;
    const char *main_thread_name;
    uint64_t origin_ns;          /* CLOCK_MONOTONIC time of ts 0; 0 = when recording began */
    uint64_t since_ns;           /* only events that end at or after this CLOCK_MONOTONIC time */
    int events_only;             /* no enclosing object: events separated by commas */
    int rate_id;                 /* a step each of whose events is one token (-1: none): a tokens/s counter */
    double ns_per_tick;
    const char *const *names;    /* step names by id */
    int n_names;
} sm_trace_format;

/* Writes the trace; 0, or -1 when out of memory or the stream failed. */
int sm_trace_write(const sm_trace *t, FILE *f, const sm_trace_format *fmt);

/* One thread's spans (steps and task shares, not counters), oldest first,
 * as the public sm_trace_span; returns how many the ring holds. */
struct sm_trace_span;
size_t sm_trace_spans(const sm_trace *t, int thread, double ns_per_tick, const char *const *names, int n_names,
                      struct sm_trace_span *out, size_t cap);

/* Events held and events lost to the rings' wrapping, over all threads. */
void sm_trace_counts(const sm_trace *t, uint64_t *held, uint64_t *dropped);

#endif

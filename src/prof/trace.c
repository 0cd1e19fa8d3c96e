/* trace.c - the per-thread event rings (see trace.h) and their Chrome
 * trace-event JSON. The format is Google's "Trace Event Format" document
 * (the JSON Object Format: {"traceEvents": [...], "otherData": {...}}):
 * complete events (ph "X") with ts and dur in microseconds, metadata
 * events (ph "M") naming the process and threads, counter events (ph "C").
 * Times are written from integer nanoseconds, so a child never appears to
 * start before or end after its parent through rounding. */
#include "trace.h"
#include "smallmind.h"
#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

sm_trace *sm_trace_new(int n_threads, size_t cap, uint64_t start_ticks) {
    if (n_threads < 1 || cap < 16 || cap > ((size_t)1 << 32)) return NULL;
    sm_trace *t = sm_calloc(1, sizeof *t);
    if (!t) return NULL;
    size_t head = ((size_t)n_threads * sizeof(sm_trace_thread) + 63) & ~(size_t)63;
    t->block = sm_alloc_aligned(head + (size_t)n_threads * cap * sizeof(sm_trace_event));
    if (!t->block) {
        sm_free(t);
        return NULL;
    }
    /* touched now, so the rings' pages are not faulted in while timing */
    memset(t->block, 0, head + (size_t)n_threads * cap * sizeof(sm_trace_event));
    t->threads = t->block;
    sm_trace_event *ev = (sm_trace_event *)((char *)t->block + head);
    for (int i = 0; i < n_threads; i++) t->threads[i].ev = ev + (size_t)i * cap;
    t->n_threads = n_threads;
    t->cap = cap;
    t->start_ticks = start_ticks;
    return t;
}

void sm_trace_free(sm_trace *t) {
    if (!t) return;
    sm_free(t->block);
    sm_free(t);
}

void sm_trace_counts(const sm_trace *t, uint64_t *held, uint64_t *dropped) {
    *held = *dropped = 0;
    for (int i = 0; i < t->n_threads; i++) {
        uint64_t n = t->threads[i].n;
        *held += n < t->cap ? n : t->cap;
        *dropped += n > t->cap ? n - t->cap : 0;
    }
}

size_t sm_trace_spans(const sm_trace *t, int thread, double ns_per_tick, const char *const *names, int n_names,
                      sm_trace_span *out, size_t cap) {
    if (thread < 0 || thread >= t->n_threads) return 0;
    const sm_trace_thread *th = &t->threads[thread];
    size_t held = th->n < t->cap ? (size_t)th->n : t->cap, first = th->n < t->cap ? 0 : (size_t)(th->n % t->cap);
    size_t n = 0;
    for (size_t k = 0; k < held; k++) {
        const sm_trace_event *e = &th->ev[(first + k) % t->cap];
        if (e->kind == SM_TRACE_COUNTER) continue;
        if (n < cap && out) {
            uint64_t b = e->t0 > t->start_ticks ? e->t0 - t->start_ticks : 0, d = e->t1 > e->t0 ? e->t1 - e->t0 : 0;
            out[n].name = e->id >= 0 && e->id < n_names ? names[e->id] : "?";
            out[n].layer = e->layer;
            out[n].task = e->kind == SM_TRACE_TASK;
            out[n].start_ns = t->start_ns + (uint64_t)((double)b * ns_per_tick);
            out[n].dur_ns = (uint64_t)((double)d * ns_per_tick);
        }
        n++;
    }
    return n;
}

/* ------------------------------------------------------------ writing */

typedef struct writer {
    FILE *f;
    const sm_trace *t;
    const sm_trace_format *fmt;
    int64_t origin_ns;
    int first;                   /* no event written yet (for the commas) */
} writer;

/* CLOCK_MONOTONIC nanoseconds of a tick count; ticks before the recording
 * began are taken as its start (an event cut at the start of the trace). */
static int64_t ns_of(const writer *w, uint64_t ticks) {
    uint64_t d = ticks > w->t->start_ticks ? ticks - w->t->start_ticks : 0;
    return (int64_t)w->t->start_ns + (int64_t)((double)d * w->fmt->ns_per_tick);
}

static void str(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* Microseconds with three decimals, exactly, from nanoseconds. */
static void us(FILE *f, int64_t ns) {
    if (ns < 0) {
        fputc('-', f);
        ns = -ns;
    }
    fprintf(f, "%lld.%03lld", (long long)(ns / 1000), (long long)(ns % 1000));
}

static void next(writer *w) {
    fputs(w->first ? "\n" : ",\n", w->f);
    w->first = 0;
}

static const char *name_of(const writer *w, int id) {
    return id >= 0 && id < w->fmt->n_names ? w->fmt->names[id] : "?";
}

static void meta(writer *w, int tid, const char *what, const char *name, int sort) {
    next(w);
    fprintf(w->f, "{\"ph\": \"M\", \"pid\": %d, \"tid\": %d, \"name\": \"%s\", \"args\": {", w->fmt->pid, tid, what);
    if (name) {
        fputs("\"name\": ", w->f);
        str(w->f, name);
    } else {
        fprintf(w->f, "\"sort_index\": %d", sort);
    }
    fputs("}}", w->f);
}

static int by_start(const void *a, const void *b) {
    const sm_trace_event *x = a, *y = b;
    if (x->t0 != y->t0) return x->t0 < y->t0 ? -1 : 1;
    if (x->t1 != y->t1) return x->t1 > y->t1 ? -1 : 1;   /* the enclosing one first */
    return (int)x->kind - (int)y->kind;                   /* a step before the task it handed out */
}

typedef struct counter {
    int64_t ns;
    double value;
    int which;                   /* 0 tokens/s, 1 bytes allocated */
} counter;

static int by_time(const void *a, const void *b) {
    const counter *x = a, *y = b;
    if (x->ns != y->ns) return x->ns < y->ns ? -1 : 1;
    return 0;
}

static const char *const counter_names[] = {"tokens/s", "bytes allocated"};

/* One thread's events, oldest to newest, into out; returns how many. */
static size_t gather(const writer *w, int thread, sm_trace_event *out) {
    const sm_trace_thread *th = &w->t->threads[thread];
    size_t cap = w->t->cap, held = th->n < cap ? (size_t)th->n : cap, first = th->n < cap ? 0 : (size_t)(th->n % cap);
    size_t n = 0;
    for (size_t k = 0; k < held; k++) {
        const sm_trace_event *e = &th->ev[(first + k) % cap];
        uint64_t end = e->kind == SM_TRACE_COUNTER ? e->t0 : e->t1;
        if (w->fmt->since_ns && ns_of(w, end) < (int64_t)w->fmt->since_ns) continue;
        out[n++] = *e;
    }
    return n;
}

int sm_trace_write(const sm_trace *t, FILE *f, const sm_trace_format *fmt) {
    writer w = {f, t, fmt, (int64_t)(fmt->origin_ns ? fmt->origin_ns : t->start_ns), 1};
    sm_trace_event *ev = sm_alloc(t->cap * sizeof *ev);
    counter *cn = sm_alloc((2 * t->cap + 2) * sizeof *cn);
    if (!ev || !cn) {
        sm_free(ev);
        sm_free(cn);
        return -1;
    }
    uint64_t held, dropped;
    sm_trace_counts(t, &held, &dropped);
    if (!fmt->events_only) fputs("{\"traceEvents\": [", f);
    meta(&w, 0, "process_name", fmt->process_name ? fmt->process_name : "smallmind", 0);
    char labels[160];
    snprintf(labels, sizeof labels, "ring of %zu events per thread, %llu dropped", t->cap, (unsigned long long)dropped);
    next(&w);
    fprintf(f, "{\"ph\": \"M\", \"pid\": %d, \"tid\": 0, \"name\": \"process_labels\", \"args\": {\"labels\": \"%s\"}}",
            fmt->pid, labels);
    for (int i = 0; i < t->n_threads; i++) {
        char name[32];
        if (i == 0) snprintf(name, sizeof name, "%s", fmt->main_thread_name ? fmt->main_thread_name : "main");
        else snprintf(name, sizeof name, "worker %d", i);
        meta(&w, i + 1, "thread_name", name, 0);
        meta(&w, i + 1, "thread_sort_index", NULL, i);
    }
    size_t nc = 0;
    for (int i = 0; i < t->n_threads; i++) {
        size_t n = gather(&w, i, ev);
        qsort(ev, n, sizeof *ev, by_start);
        for (size_t k = 0; k < n; k++) {
            const sm_trace_event *e = &ev[k];
            if (e->kind == SM_TRACE_COUNTER) {
                if (i == 0 && nc < 2 * t->cap) cn[nc++] = (counter){ns_of(&w, e->t0) - w.origin_ns, e->u.value, e->id};
                continue;
            }
            int64_t b = ns_of(&w, e->t0) - w.origin_ns, d = ns_of(&w, e->t1) - w.origin_ns - b;
            next(&w);
            fputs("{\"ph\": \"X\", \"name\": ", f);
            str(f, name_of(&w, e->id));
            fprintf(f, ", \"cat\": \"%s\", \"pid\": %d, \"tid\": %d, \"ts\": ", e->kind == SM_TRACE_TASK ? "task" : "step",
                    fmt->pid, i + 1);
            us(f, b);
            fputs(", \"dur\": ", f);
            us(f, d < 0 ? 0 : d);
            if (e->layer >= 0) fprintf(f, ", \"args\": {\"layer\": %d}", e->layer);
            fputc('}', f);
        }
        if (i != 0) continue;
        /* the counters: tokens/s over each token, and the bytes the profiled
         * thread has allocated since recording began, where they change */
        uint64_t last_bytes = UINT64_MAX;
        for (size_t k = 0; k < n && nc + 2 <= 2 * t->cap + 2; k++) {
            const sm_trace_event *e = &ev[k];
            if (e->kind != SM_TRACE_STEP) continue;
            int64_t b = ns_of(&w, e->t0) - w.origin_ns, end = ns_of(&w, e->t1) - w.origin_ns;
            if (e->id == fmt->rate_id && end > b) {
                cn[nc++] = (counter){b, 1e9 / (double)(end - b), 0};
                if (nc < 2 * t->cap + 2) cn[nc++] = (counter){end, 0.0, 0};
            }
        }
        /* allocations by the time each step closed, in closing order */
        for (size_t k = 0; k < n; k++) ev[k].t0 = ev[k].kind == SM_TRACE_STEP ? ev[k].t1 : UINT64_MAX;
        qsort(ev, n, sizeof *ev, by_start);
        size_t steps = 0;
        while (steps < n && ev[steps].kind == SM_TRACE_STEP) steps++;   /* they sort first */
        for (size_t k = 0; k < steps && nc < 2 * t->cap + 2; k++) {
            uint64_t bytes = ev[k].u.alloc_bytes - t->alloc_start;
            if (bytes == last_bytes && k + 1 < steps) continue;   /* the last is always written */
            last_bytes = bytes;
            cn[nc++] = (counter){ns_of(&w, ev[k].t1) - w.origin_ns, (double)bytes, 1};
        }
    }
    /* stable enough: counters of one name never share a time and a value */
    qsort(cn, nc, sizeof *cn, by_time);
    for (size_t k = 0; k < nc; k++) {
        next(&w);
        fprintf(f, "{\"ph\": \"C\", \"name\": \"%s\", \"pid\": %d, \"tid\": 1, \"ts\": ", counter_names[cn[k].which],
                fmt->pid);
        us(f, cn[k].ns);
        fprintf(f, ", \"args\": {\"%s\": %.6g}}", cn[k].which ? "bytes" : "tokens/s", cn[k].value);
    }
    if (!fmt->events_only) {
        fprintf(f, "\n],\n\"displayTimeUnit\": \"ms\",\n\"otherData\": {\"producer\": \"SmallMind\", "
                   "\"clock\": \"CLOCK_MONOTONIC, microseconds from the origin\", \"origin_monotonic_ns\": %lld, "
                   "\"ring_events_per_thread\": %zu, \"bytes_per_event\": %zu, \"threads\": %d, "
                   "\"events_held\": %llu, \"events_dropped\": %llu, "
                   "\"memory_bound\": \"a ring of %zu events per thread keeps the newest; %llu older events were dropped\"}}\n",
                (long long)w.origin_ns, t->cap, sizeof(sm_trace_event), t->n_threads, (unsigned long long)held,
                (unsigned long long)dropped, t->cap, (unsigned long long)dropped);
    }
    sm_free(ev);
    sm_free(cn);
    return ferror(f) ? -1 : 0;
}

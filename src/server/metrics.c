/* metrics.c - see metrics.h. Names follow Prometheus's conventions
 * (snake case, a unit suffix, _total for counters). */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int statuses[METRIC_STATUSES] = {200, 400, 401, 404, 405, 413, 429, 500, 503, 0, 0, 0};
static const double latency_le[HIST_BUCKETS] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 1e300};
static const double ttft_le[HIST_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 1e300};
static const char *const names[EP_COUNT] = {"chat_completions", "completions", "embeddings", "models",
                                            "health", "metrics", "page", "debug_trace", "other"};

void metrics_init(metrics *m) {
    memset(m, 0, sizeof *m);
    m->latency.le = latency_le;
    m->ttft.le = ttft_le;
}

const char *endpoint_name(enum endpoint e) { return names[e]; }

void metrics_request(metrics *m, enum endpoint e, int status) {
    for (int i = 0; i < METRIC_STATUSES && statuses[i]; i++)
        if (statuses[i] == status) {
            m->requests[e][i]++;
            return;
        }
    m->requests[e][METRIC_STATUSES - 1]++;   /* any other status: counted as 0 */
}

void metrics_observe(histogram *h, double v) {
    for (int i = 0; i < HIST_BUCKETS; i++)
        if (v <= h->le[i]) h->count[i]++;
    h->n++;
    h->sum += v;
}

typedef struct out {
    char *buf;
    size_t len, cap;
} out;

static void put(out *o, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (o->buf && o->len + (size_t)n < o->cap) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap ? o->cap * 2 : 4096;
        while (cap < o->len + (size_t)n + 1) cap *= 2;
        char *g = realloc(o->buf, cap);
        if (!g) return;
        o->buf = g;
        o->cap = cap;
    }
}

static void hist(out *o, const char *name, const char *help, const histogram *h) {
    put(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < HIST_BUCKETS; i++) {
        if (i == HIST_BUCKETS - 1) put(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count[i]);
        else put(o, "%s_bucket{le=\"%g\"} %llu\n", name, h->le[i], (unsigned long long)h->count[i]);
    }
    put(o, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->n);
}

static void counter(out *o, const char *name, const char *help, uint64_t v) {
    put(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, (unsigned long long)v);
}

static void gauge(out *o, const char *name, const char *help, long v) {
    put(o, "# HELP %s %s\n# TYPE %s gauge\n%s %ld\n", name, help, name, name, v);
}

char *metrics_render(const metrics *m, int queue, int busy, int slots, int loaded, size_t *len) {
    out o = {0};
    put(&o, "# HELP smallmind_requests_total HTTP requests answered, by endpoint and status.\n"
            "# TYPE smallmind_requests_total counter\n");
    for (int e = 0; e < EP_COUNT; e++)
        for (int i = 0; i < METRIC_STATUSES; i++)
            if (m->requests[e][i])
                put(&o, "smallmind_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n", names[e], statuses[i],
                    (unsigned long long)m->requests[e][i]);
    counter(&o, "smallmind_prompt_tokens_total", "Prompt tokens of the requests started (cached ones included).",
            m->prompt_tokens);
    counter(&o, "smallmind_prompt_tokens_cached_total", "Prompt tokens reused from a slot's earlier request.",
            m->cached_tokens);
    counter(&o, "smallmind_generated_tokens_total", "Tokens generated.", m->generated_tokens);
    counter(&o, "smallmind_batch_steps_total", "Forward passes the scheduler ran.", m->batch_steps);
    counter(&o, "smallmind_batch_rows_total", "Token rows in those passes (rows / steps = mean batch size).",
            m->batch_rows);
    hist(&o, "smallmind_request_duration_seconds", "Time from a completion request's arrival to its end.", &m->latency);
    hist(&o, "smallmind_time_to_first_token_seconds", "Time from a completion request's arrival to its first token.",
         &m->ttft);
    gauge(&o, "smallmind_queue_depth", "Requests waiting for a slot.", queue);
    gauge(&o, "smallmind_slots_busy", "Slots running a request.", busy);
    gauge(&o, "smallmind_slots_total", "Slots (--parallel).", slots);
    gauge(&o, "smallmind_model_loaded", "1 once the model is loaded.", loaded);
    *len = o.len;
    return o.buf;
}

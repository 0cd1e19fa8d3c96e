/* metrics.h - the server's counters and histograms, written in
 * Prometheus's text exposition format (version 0.0.4) for GET /metrics.
 * Guarded by the server's mutex. */
#ifndef SM_SERVER_METRICS_H
#define SM_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum endpoint { EP_CHAT, EP_COMPLETIONS, EP_EMBEDDINGS, EP_MODELS, EP_HEALTH, EP_METRICS, EP_PAGE, EP_TRACE, EP_OTHER, EP_COUNT };

#define METRIC_STATUSES 12
#define HIST_BUCKETS 12

typedef struct histogram {
    const double *le;           /* upper bounds, the last +Inf */
    uint64_t count[HIST_BUCKETS];
    uint64_t n;
    double sum;
} histogram;

typedef struct metrics {
    uint64_t requests[EP_COUNT][METRIC_STATUSES];
    uint64_t prompt_tokens, cached_tokens, generated_tokens, batch_steps, batch_rows;
    histogram latency, ttft;
} metrics;

void metrics_init(metrics *m);
const char *endpoint_name(enum endpoint e);
void metrics_request(metrics *m, enum endpoint e, int status);
void metrics_observe(histogram *h, double v);
/* The text; free() it. queue and busy are gauges read by the caller. */
char *metrics_render(const metrics *m, int queue, int busy, int slots, int loaded, size_t *len);

#endif

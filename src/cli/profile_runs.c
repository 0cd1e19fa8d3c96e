/* profile_runs.c - a run's steps from the timeline (sm_session_trace_spans),
 * measured so that preemption does not count: each step's time in the run
 * is, for every place in the call tree it occurs, its number of calls times
 * the median of their self times. On a busy machine a call that the
 * scheduler interrupts lasts milliseconds instead of microseconds and makes
 * a plain sum of a run's calls mostly noise; the median of a step's calls
 * is not moved by a minority of them. Also calls times the fastest call:
 * for a step that computes in the L1 cache, interference from the rest of
 * the machine only ever adds time, and the fastest call is the code's own
 * speed. Comparisons (profile_compare.c) judge whichever of the two the
 * base runs spread less, and show the plain sums beside them. */
#include "profile_report.h"

#include <stdlib.h>
#include <string.h>

typedef struct span_ref {
    const sm_trace_span *s;
    int node;
    double self_ns;
} span_ref;

static int by_start(const void *a, const void *b) {
    const span_ref *x = a, *y = b;
    if (x->s->start_ns != y->s->start_ns) return x->s->start_ns < y->s->start_ns ? -1 : 1;
    if (x->s->dur_ns != y->s->dur_ns) return x->s->dur_ns > y->s->dur_ns ? -1 : 1;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define MAX_NODES 4096
#define MAX_DEPTH 64

/* The self times (negative ones as 0) of node k's calls, into self. */
static size_t node_selves(const span_ref *refs, size_t m, int k, double *self) {
    size_t c = 0;
    for (size_t i = 0; i < m; i++)
        if (refs[i].node == k) self[c++] = refs[i].self_ns > 0 ? refs[i].self_ns : 0;
    return c;
}

/* The median of c > 0 values (sorted here). */
static double median(double *v, size_t c) {
    qsort(v, c, sizeof *v, cmp_double);
    return c % 2 ? v[c / 2] : 0.5 * (v[c / 2 - 1] + v[c / 2]);
}

/* The call tree of m spans sorted by by_start: each span's node (parent
 * node, name, layer: the same place in the tree, whichever call) and its
 * self time (its duration less its children's). A stack of open spans:
 * sorted by start, a span is inside the top one when it ends by the top's
 * end. Returns the number of nodes, or -1 when MAX_NODES or MAX_DEPTH is
 * exceeded. */
static int span_tree(span_ref *refs, size_t m, int *parent, int *layer, const char **name) {
    int stack[MAX_DEPTH], sp = 0, n_nodes = 0;
    for (size_t i = 0; i < m; i++) {
        const sm_trace_span *s = refs[i].s;
        while (sp > 0 && s->start_ns + s->dur_ns > refs[stack[sp - 1]].s->start_ns + refs[stack[sp - 1]].s->dur_ns) sp--;
        int par = sp > 0 ? refs[stack[sp - 1]].node : -1, k = 0;
        while (k < n_nodes && !(parent[k] == par && layer[k] == s->layer && !strcmp(name[k], s->name))) k++;
        if (k == n_nodes) {
            if (n_nodes == MAX_NODES) return -1;
            parent[k] = par;
            layer[k] = s->layer;
            name[k] = s->name;
            n_nodes++;
        }
        refs[i].node = k;
        refs[i].self_ns = (double)s->dur_ns;
        if (sp > 0) refs[stack[sp - 1]].self_ns -= (double)s->dur_ns;
        if (sp == MAX_DEPTH) return -1;
        stack[sp++] = (int)i;
    }
    return n_nodes;
}

int profile_run_robust(const sm_trace_span *spans, size_t n, uint64_t since_ns, const char **names, int *n_names,
                       double *out_ms, double *fastest_ms) {
    span_ref *refs = malloc((n + 1) * sizeof *refs);
    int *parent = malloc(MAX_NODES * sizeof *parent), *layer = malloc(MAX_NODES * sizeof *layer);
    const char **name = malloc(MAX_NODES * sizeof *name);
    double *self = malloc((n + 1) * sizeof *self);
    int rc = -1;
    if (!refs || !parent || !layer || !name || !self) goto done;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!spans[i].task && spans[i].start_ns >= since_ns) refs[m++] = (span_ref){&spans[i], -1, 0};
    qsort(refs, m, sizeof *refs, by_start);
    int n_nodes = span_tree(refs, m, parent, layer, name);
    if (n_nodes < 0) goto done;
    for (int j = 0; j < *n_names; j++) out_ms[j] = fastest_ms[j] = 0;
    /* per node: calls x the median self time */
    for (int k = 0; k < n_nodes; k++) {
        size_t c = node_selves(refs, m, k, self);
        if (!c) continue;
        double med = median(self, c);
        int j = 0;
        while (j < *n_names && strcmp(names[j], name[k])) j++;
        if (j == *n_names) {
            if (j == PROFILE_MAX_STEPS) continue;
            names[(*n_names)++] = name[k];
            out_ms[j] = fastest_ms[j] = 0;
        }
        out_ms[j] += (double)c * med * 1e-6;
        fastest_ms[j] += (double)c * self[0] * 1e-6;
    }
    rc = 0;
done:
    free(refs);
    free(parent);
    free(layer);
    free(name);
    free(self);
    return rc;
}

/* The span tree's node for a row: the same names and layers up to the top. */
static int same_path(const sm_profile_step *rows, int r, const int *parent, const int *layer, const char **name, int k) {
    while (r >= 0 && k >= 0) {
        if (strcmp(rows[r].row.name, name[k]) || rows[r].row.layer != layer[k]) return 0;
        r = rows[r].row.parent;
        k = parent[k];
    }
    return r < 0 && k < 0;
}

int profile_rows_robust(const sm_trace_span *spans, size_t n, const sm_profile_step *rows, int n_rows, double *self_ms) {
    span_ref *refs = malloc((n + 1) * sizeof *refs);
    int *parent = malloc(MAX_NODES * sizeof *parent), *layer = malloc(MAX_NODES * sizeof *layer);
    const char **name = malloc(MAX_NODES * sizeof *name);
    double *self = malloc((n + 1) * sizeof *self);
    int rc = -1, found = 0;
    if (!refs || !parent || !layer || !name || !self) goto done;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!spans[i].task) refs[m++] = (span_ref){&spans[i], -1, 0};
    qsort(refs, m, sizeof *refs, by_start);
    int n_nodes = span_tree(refs, m, parent, layer, name);
    if (n_nodes < 0) goto done;
    for (int r = 0; r < n_rows; r++) {
        int k = 0;
        while (k < n_nodes && !same_path(rows, r, parent, layer, name, k)) k++;
        size_t c = k < n_nodes ? node_selves(refs, m, k, self) : 0;
        /* only where the ring held every call */
        if (k == n_nodes || c != rows[r].row.calls) {
            self_ms[r] = rows[r].row.self_ms;
            continue;
        }
        double med = median(self, c);
        self_ms[r] = (double)c * med * 1e-6;
        found++;
    }
    rc = found;
done:
    free(refs);
    free(parent);
    free(layer);
    free(name);
    free(self);
    return rc;
}

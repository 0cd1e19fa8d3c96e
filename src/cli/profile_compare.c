/* profile_compare.c - two profile reports side by side (`smallmind profile
 * --compare BASE.json NEW.json`, and the baseline section of `profile
 * --baseline BASE.json`): per step its time in each run, and overall the
 * total, tokens/s, ms/token percentiles, allocations and bytes per token,
 * each with a verdict: "faster", "slower" or "within noise".
 *
 * The noise comes from the runs' own spread, without assuming a
 * distribution (a busy machine gives runs with outliers and drifts): the
 * ratio new/base is the Hodges-Lehmann estimate, the median of the ratios
 * of every new run to every base run, and its confidence interval at
 * 99.9 % is read off the same ratios at the ranks the exact Mann-Whitney
 * distribution gives (Hollander and Wolfe, Nonparametric Statistical
 * Methods, ch. 4). A change is called one when the whole interval lies
 * beyond 3 % (beyond 10 % when the runs are too few for 99.9 %, which
 * the output says). */
#include "profile_report.h"
#include "json/profile_read.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FLOOR 0.03          /* the smallest change ever called a change */
#define FLOOR_FEW_RUNS 0.10
#define ALPHA 0.001         /* two-sided */

typedef struct verdict {
    double base, now;        /* medians over the runs */
    double ratio;            /* new / base, Hodges-Lehmann */
    double lo, hi;           /* its confidence interval */
    int enough;              /* the runs allow the 99.9 % interval */
    int v;                   /* -1 faster, 0 within noise, 1 slower */
} verdict;

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *x, int n) {
    double *s = malloc((size_t)(n ? n : 1) * sizeof *s);
    if (!s) return 0;
    memcpy(s, x, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_d);
    double m = n == 0 ? 0 : n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

/* The largest k >= 1 with P(U < k) <= alpha / 2 under the null hypothesis
 * (every ordering of the nb + nn runs equally likely), U the Mann-Whitney
 * count; 0 when even k = 1 is too likely. Exact counts for small samples,
 * the normal approximation beyond. */
static int rank_k(int nb, int nn, double alpha) {
    long long m = (long long)nb * nn;
    if (m > 40000) {
        double sd = sqrt((double)nb * nn * (nb + nn + 1) / 12.0), z = 3.2905;   /* 99.9 % two-sided */
        double k = (double)m / 2 - z * sd;
        return k < 1 ? 0 : (int)k;
    }
    /* f[j][u]: orderings of j base runs and the new runs with count u, built up one base run at a time */
    double *f = calloc((size_t)(m + 1) * (size_t)(nb + 1), sizeof *f);
    if (!f) return 0;
#define F(j, u) f[(size_t)(j) * (size_t)(m + 1) + (size_t)(u)]
    /* g(a, b, u) = g(a - 1, b, u - b) + g(a, b - 1, u): iterate over b (new runs) outermost */
    double *g = calloc((size_t)(m + 1) * (size_t)(nb + 1), sizeof *g);
    if (!g) { free(f); return 0; }
    for (int a = 0; a <= nb; a++) F(a, 0) = 1;   /* b = 0: one ordering, U = 0 */
    for (int b = 1; b <= nn; b++) {
        memset(g, 0, (size_t)(m + 1) * (size_t)(nb + 1) * sizeof *g);
        for (int a = 0; a <= nb; a++)
            for (long long u = 0; u <= (long long)a * b; u++) {
                double v = F(a, u);                          /* g(a, b - 1, u) */
                if (a > 0 && u >= b) v += g[(size_t)(a - 1) * (size_t)(m + 1) + (size_t)(u - b)];
                g[(size_t)a * (size_t)(m + 1) + (size_t)u] = v;
            }
        memcpy(f, g, (size_t)(m + 1) * (size_t)(nb + 1) * sizeof *f);
    }
    double total = 0;
    for (long long u = 0; u <= m; u++) total += F(nb, u);
    int k = 0;
    double below = 0;
    for (long long u = 0; u <= m; u++) {
        below += F(nb, u);                  /* P(U <= u) */
        if (below / total > alpha / 2) break;
        k = (int)u + 1;                     /* P(U < k) <= alpha / 2 */
    }
#undef F
    free(f);
    free(g);
    return k;
}

/* Samples of a time (or, with higher_faster, a rate). eps: a value as good
 * as zero (a tick of the clock). */
static verdict judge(const double *b, int nb, const double *n, int nn, double eps, int higher_faster) {
    verdict r;
    memset(&r, 0, sizeof r);
    r.base = median(b, nb);
    r.now = median(n, nn);
    r.ratio = r.lo = r.hi = 1;
    size_t m = (size_t)nb * (size_t)nn;
    double *d = malloc((m ? m : 1) * sizeof *d);
    if (!d || m == 0) {
        free(d);
        return r;
    }
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < nn; j++) d[(size_t)i * nn + j] = log(n[j] + eps) - log(b[i] + eps);
    qsort(d, m, sizeof *d, cmp_d);
    double hl = m % 2 ? d[m / 2] : 0.5 * (d[m / 2 - 1] + d[m / 2]);
    int k = rank_k(nb, nn, ALPHA);
    r.enough = k >= 1;
    if (k < 1) k = 1;
    double lo = d[k - 1], hi = d[m - (size_t)k];
    free(d);
    if (higher_faster) {   /* a rate: faster is higher, so turn it into a time ratio */
        double t = lo;
        hl = -hl, lo = -hi, hi = -t;
    }
    r.ratio = exp(hl);
    r.lo = exp(lo);
    r.hi = exp(hi);
    double floor_ = log1p(r.enough ? FLOOR : FLOOR_FEW_RUNS);
    r.v = lo > floor_ ? 1 : hi < -floor_ ? -1 : 0;
    return r;
}

static const char *word(int v) { return v > 0 ? "slower" : v < 0 ? "faster" : "within noise"; }

/* The samples of one metric of a report, by a getter. */
typedef double (*getter)(const sm_json_run *r, int step);
static double g_wall(const sm_json_run *r, int s) { (void)s; return r->wall_ms; }
static double g_decode(const sm_json_run *r, int s) { (void)s; return r->decode_tps; }
static double g_prefill(const sm_json_run *r, int s) { (void)s; return r->prefill_tps; }
static double g_p50(const sm_json_run *r, int s) { (void)s; return r->p50_ms; }
static double g_p90(const sm_json_run *r, int s) { (void)s; return r->p90_ms; }
static double g_p99(const sm_json_run *r, int s) { (void)s; return r->p99_ms; }
static double g_step(const sm_json_run *r, int s) { return s >= 0 ? r->self_ms[s] : 0; }
static double g_robust(const sm_json_run *r, int s) { return s >= 0 && r->robust_ms ? r->robust_ms[s] : 0; }
static double g_fastest(const sm_json_run *r, int s) { return s >= 0 && r->fastest_ms ? r->fastest_ms[s] : 0; }
static double g_total(const sm_json_run *r, int s) { (void)r; (void)s; return 0; }   /* filled below */
static double g_total_robust(const sm_json_run *r, int s) { (void)r; (void)s; return 0; }

static double *samples(const sm_json_profile *p, getter g, int step) {
    double *x = malloc((size_t)(p->n_runs ? p->n_runs : 1) * sizeof *x);
    if (!x) return NULL;
    for (int i = 0; i < p->n_runs; i++) {
        if (g == g_total || g == g_total_robust) {
            const double *v = g == g_total ? p->runs[i].self_ms : p->runs[i].robust_ms;
            x[i] = 0;
            for (int k = 0; k < p->n_steps && v; k++) x[i] += v[k];
        } else {
            x[i] = g(&p->runs[i], step);
        }
    }
    return x;
}

/* One table row: the verdict on g's samples; with plain, also the medians
 * of the plain per-run sums (when the verdict is on the robust times). */
static int row(FILE *f, const char *name, const sm_json_profile *b, int bs, const sm_json_profile *n, int ns, getter g,
               int higher_faster, const char *fmt, getter plain) {
    double *xb = samples(b, g, bs), *xn = samples(n, g, ns);
    double *pb = plain ? samples(b, plain, bs) : NULL, *pn = plain ? samples(n, plain, ns) : NULL;
    int v_out = 0;
    if (xb && xn && (!plain || (pb && pn))) {
        /* a clock read is about 10 ns: anything shorter is as good as zero */
        verdict v = judge(xb, b->n_runs, xn, n->n_runs, 1e-5, higher_faster);
        char cb[32], cn[32];
        snprintf(cb, sizeof cb, fmt, v.base);
        snprintf(cn, sizeof cn, fmt, v.now);
        fprintf(f, "| %s | %s | %s | %+.4f | x%.3f | x%.3f to x%.3f | %s |", name, cb, cn, v.now - v.base, v.ratio,
                v.lo, v.hi, word(v.v));
        if (plain)
            fprintf(f, " %s, %.4f / %.4f |", g == g_fastest ? "fastest" : "median", median(pb, b->n_runs),
                    median(pn, n->n_runs));
        fputc('\n', f);
        v_out = v.v;
    }
    free(xb);
    free(xn);
    free(pb);
    free(pn);
    return v_out;
}

static void count_row(FILE *f, const char *name, const sm_json_profile *b, const sm_json_profile *n, int bytes) {
    double *xb = malloc((size_t)b->n_runs * sizeof *xb), *xn = malloc((size_t)n->n_runs * sizeof *xn);
    if (!xb || !xn) {
        free(xb);
        free(xn);
        return;
    }
    for (int i = 0; i < b->n_runs; i++) xb[i] = bytes ? b->runs[i].bytes_per_token : b->runs[i].allocs_per_token;
    for (int i = 0; i < n->n_runs; i++) xn[i] = bytes ? n->runs[i].bytes_per_token : n->runs[i].allocs_per_token;
    double mb = median(xb, b->n_runs), mn = median(xn, n->n_runs);
    /* counts are exact: any difference is one */
    fprintf(f, "| %s | %.2f | %.2f | %+.2f | - | exact | %s |\n", name, mb, mn, mn - mb,
            mn > mb ? "more" : mn < mb ? "fewer" : "same");
    free(xb);
    free(xn);
}

/* The spread of a measure over a report's runs: the median absolute
 * deviation of the logarithms. */
static double spread(const sm_json_profile *p, getter g, int step) {
    double *x = samples(p, g, step);
    if (!x) return INFINITY;
    for (int i = 0; i < p->n_runs; i++) x[i] = log(x[i] + 1e-5);
    double m = median(x, p->n_runs);
    for (int i = 0; i < p->n_runs; i++) x[i] = fabs(x[i] - m);
    double mad = median(x, p->n_runs);
    free(x);
    return mad;
}

static int find(const sm_json_profile *p, const char *name) {
    for (int i = 0; i < p->n_steps; i++)
        if (!strcmp(p->steps[i], name)) return i;
    return -1;
}

int profile_compare_write(FILE *f, const sm_json_profile *b, const char *bname, const sm_json_profile *n,
                          const char *nname, int heading) {
    const char *h = heading > 1 ? "##" : "#";
    fprintf(f, "%s Profile comparison\n\n| | base | new |\n|---|---|---|\n| report | %s | %s |\n", h, bname, nname);
    fprintf(f, "| model | %s | %s |\n| workload | %d runs x %d tokens after %d | %d runs x %d tokens after %d |\n",
            b->model, n->model, b->n_runs, b->tokens, b->prompt_tokens, n->n_runs, n->tokens, n->prompt_tokens);
    fprintf(f, "| threads, kernels | %d, %s | %d, %s |\n\n", b->threads, b->kernels, n->threads, n->kernels);
    if (strcmp(b->model, n->model) || b->tokens != n->tokens || b->prompt_tokens != n->prompt_tokens)
        fprintf(f, "**The workloads differ: the times below are not comparable step for step.**\n\n");
    fprintf(f, "Ratios are new / base as times (for tokens/s too: below 1 is faster): the median of the ratios of "
               "every new run to every base run (Hodges-Lehmann), with its distribution-free confidence interval "
               "from the runs' spread (the exact Mann-Whitney ranks at 99.9 %%). A change is called one when the "
               "whole interval lies beyond %.0f %%; otherwise it is within noise.\n\n", 100 * FLOOR);
    if (rank_k(b->n_runs, n->n_runs, ALPHA) < 1)
        fprintf(f, "**%d and %d runs are too few for a 99.9 %% interval**: the interval spans every pair of runs and "
                   "only changes beyond %.0f %% are called. Run N_INFERENCES = 7 or more in both.\n\n", b->n_runs,
                n->n_runs, 100 * FLOOR_FEW_RUNS);
    if (b->n_reports == 1 || n->n_reports == 1)
        fprintf(f, "**%s one report**: the runs of one process share the machine's state while it ran, and on a "
                   "shared machine two processes of the same build can differ by tens of percent on steps that "
                   "compute in the L1 cache (docs/BENCHMARKS.md, \"Comparing two builds on this machine\"). The "
                   "interval covers the spread of the runs, not that. To tell a change from the machine, pool "
                   "several reports a side, taken in turns with the other build's: --compare A1.json,A2.json,... "
                   "B1.json,B2.json,...\n\n",
                b->n_reports == 1 && n->n_reports == 1 ? "Each side is" : b->n_reports == 1 ? "The base is" : "The new side is");
    fprintf(f, "%s# Overall\n\n| metric | base | new | new - base | ratio | 99.9 %% interval | verdict |\n"
               "|---|---:|---:|---:|---:|---:|---|\n", h);
    int robust = b->robust && n->robust;
    int overall = row(f, robust ? "total step time per run (ms, robust)" : "total self time per run (ms)", b, -1, n, -1,
                      robust ? g_total_robust : g_total, 0, "%.3f", NULL);
    row(f, "run wall time (ms)", b, -1, n, -1, g_wall, 0, "%.3f", NULL);
    row(f, "decode tokens/s", b, -1, n, -1, g_decode, 1, "%.1f", NULL);
    row(f, "prefill tokens/s", b, -1, n, -1, g_prefill, 1, "%.1f", NULL);
    row(f, "ms/token p50", b, -1, n, -1, g_p50, 0, "%.4f", NULL);
    row(f, "ms/token p90", b, -1, n, -1, g_p90, 0, "%.4f", NULL);
    row(f, "ms/token p99", b, -1, n, -1, g_p99, 0, "%.4f", NULL);
    count_row(f, "allocations per token", b, n, 0);
    count_row(f, "bytes allocated per token", b, n, 1);
    if (robust)
        fprintf(f, "\n%s# Steps\n\nA step's time in a run, summed over layers and call sites, is its calls times "
                   "the median of their self times at each place in the call tree (\"median\"), so that calls the "
                   "scheduler interrupted do not count, or its calls times the fastest of them (\"fastest\"): "
                   "interference from the rest of the machine only adds time, so for a step that computes in the "
                   "cache the fastest call is the code's own speed. Each step is judged on whichever of the two "
                   "spreads less over the base runs; medians over the runs. The last column has the plain sums of "
                   "self times, which interruptions inflate.\n\n"
                   "| step | base ms | new ms | new - base | ratio | 99.9 %% interval | verdict | measure, plain sums base / new |\n"
                   "|---|---:|---:|---:|---:|---:|---|---:|\n", h);
    else
        fprintf(f, "\n%s# Steps\n\nSelf time per run (median over the runs), summed over layers and call sites.\n\n"
                   "| step | base ms | new ms | new - base | ratio | 99.9 %% interval | verdict |\n|---|---:|---:|---:|---:|---:|---|\n", h);
    getter gp = robust ? g_step : NULL;
    /* the base's steps by their median self time, then the steps only new has */
    int *order = malloc((size_t)(b->n_steps + n->n_steps + 1) * sizeof *order);
    double *key = malloc((size_t)(b->n_steps + 1) * sizeof *key);
    int no = 0;
    if (order && key) {
        for (int i = 0; i < b->n_steps; i++) {
            double *x = samples(b, robust ? g_robust : g_step, i);
            key[i] = x ? median(x, b->n_runs) : 0;
            free(x);
            int j = no++;
            while (j > 0 && key[order[j - 1]] < key[i]) { order[j] = order[j - 1]; j--; }
            order[j] = i;
        }
        for (int i = 0; i < no; i++) {
            const char *name = b->steps[order[i]];
            getter gs = !robust ? g_step : spread(b, g_fastest, order[i]) < spread(b, g_robust, order[i]) ? g_fastest
                                                                                                       : g_robust;
            row(f, name, b, order[i], n, find(n, name), gs, 0, "%.4f", gp);
        }
        for (int i = 0; i < n->n_steps; i++)
            if (find(b, n->steps[i]) < 0) row(f, n->steps[i], b, -1, n, i, robust ? g_robust : g_step, 0, "%.4f", gp);
    }
    free(order);
    free(key);
    fprintf(f, "\n**Overall: %s**\n", word(overall));
    return overall;
}

/* profile_sections.c - the markdown sections of a profile report made from
 * a profiled session's scope tree (sm_session_profile): hot paths, top
 * allocators, most called, the call hierarchy and time per layer. Used by
 * `smallmind profile` and `run --profile`. */
#include "profile_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-step totals, summed over every place in the tree a step occurs. */
typedef struct step_total {
    const char *name;
    uint64_t calls, alloc_count, alloc_bytes;
    double incl_ms, self_ms, min_ms, max_ms;
} step_total;

static int totals(const sm_profile_row *rows, int n, step_total *t) {
    int nt = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < nt && strcmp(t[k].name, rows[i].name) != 0) k++;
        if (k == nt) {
            memset(&t[nt], 0, sizeof t[nt]);
            t[nt].name = rows[i].name;
            t[nt].min_ms = 1e300;
            nt++;
        }
        t[k].calls += rows[i].calls;
        t[k].incl_ms += rows[i].incl_ms;
        t[k].self_ms += rows[i].self_ms;
        t[k].alloc_count += rows[i].alloc_count;
        t[k].alloc_bytes += rows[i].alloc_bytes;
        if (rows[i].calls && rows[i].min_ms < t[k].min_ms) t[k].min_ms = rows[i].min_ms;
        if (rows[i].max_ms > t[k].max_ms) t[k].max_ms = rows[i].max_ms;
    }
    for (int k = 0; k < nt; k++)
        if (t[k].min_ms > 1e299) t[k].min_ms = 0;
    return nt;
}

/* Insertion sort by a key, descending (a few dozen entries). */
static void sort_totals(step_total *t, int n, int key) {
    for (int i = 1; i < n; i++) {
        step_total x = t[i];
        double kx = key == 0 ? x.self_ms : key == 1 ? (double)x.alloc_bytes : (double)x.calls;
        int j = i;
        while (j > 0) {
            double kj = key == 0 ? t[j - 1].self_ms : key == 1 ? (double)t[j - 1].alloc_bytes : (double)t[j - 1].calls;
            if (kj >= kx) break;
            t[j] = t[j - 1];
            j--;
        }
        t[j] = x;
    }
}

static int is_attention(const char *n) {
    return !strcmp(n, "attention norm") || strstr(n, "Q") || strstr(n, "K projection") || strstr(n, "V projection") ||
           !strcmp(n, "RoPE") || strstr(n, "attention ") || !strcmp(n, "softmax") || !strcmp(n, "output projection");
}

int profile_write_sections(const sm_session *s, int n_layers, FILE *out, unsigned sections) {
    int n = sm_session_profile(s, NULL, 0);
    if (n == 0) return -1;   /* profiling is off */
    sm_profile_row *rows = malloc((size_t)n * sizeof *rows);
    step_total *t = malloc((size_t)n * sizeof *t);
    if (!rows || !t) {
        free(rows);
        free(t);
        return -1;
    }
    sm_session_profile(s, rows, n);
    int nt = totals(rows, n, t);
    double total = 0.0;  /* measured time: every top scope but the model load */
    for (int i = 0; i < n; i++)
        if (rows[i].depth == 0 && strcmp(rows[i].name, "load") != 0) total += rows[i].incl_ms;
    if (total <= 0.0) total = 1e-9;

    if (sections & PROFILE_HOT_PATHS) {
        sort_totals(t, nt, 0);
        fprintf(out, "## Hot paths\n\nSteps by self time (time not spent in a sub-step), summed over every layer and call site.\n\n");
        fprintf(out, "| rank | scope | self ms | self %% | inclusive ms | calls | avg ms | min ms | max ms |\n");
        fprintf(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int k = 0, r = 1; k < nt; k++) {
            if (!strcmp(t[k].name, "load")) continue;
            fprintf(out, "| %d | %s | %.3f | %.1f | %.3f | %llu | %.5f | %.5f | %.5f |\n", r++, t[k].name, t[k].self_ms,
                    100.0 * t[k].self_ms / total, t[k].incl_ms, (unsigned long long)t[k].calls,
                    t[k].calls ? t[k].incl_ms / (double)t[k].calls : 0.0, t[k].min_ms, t[k].max_ms);
        }
        fprintf(out, "\n");
    }
    if (sections & PROFILE_ALLOCATORS) {
        sort_totals(t, nt, 1);
        fprintf(out, "## Top allocators\n\nAllocations made through the library's allocator while the step was the innermost scope.\n\n");
        fprintf(out, "| scope | allocations | bytes |\n|---|---:|---:|\n");
        int any = 0;
        for (int k = 0; k < nt; k++)
            if (t[k].alloc_count) {
                fprintf(out, "| %s | %llu | %llu |\n", t[k].name, (unsigned long long)t[k].alloc_count,
                        (unsigned long long)t[k].alloc_bytes);
                any = 1;
            }
        if (!any) fprintf(out, "| (none) | 0 | 0 |\n");
        fprintf(out, "\n");
    }
    if (sections & PROFILE_MOST_CALLED) {
        sort_totals(t, nt, 2);
        fprintf(out, "## Most called\n\n| scope | calls | avg us |\n|---|---:|---:|\n");
        for (int k = 0; k < nt && k < 12; k++)
            fprintf(out, "| %s | %llu | %.2f |\n", t[k].name, (unsigned long long)t[k].calls,
                    t[k].calls ? 1e3 * t[k].incl_ms / (double)t[k].calls : 0.0);
        fprintf(out, "\n");
    }
    if (sections & PROFILE_TREE) {
        fprintf(out, "## Call hierarchy\n\nInclusive / self milliseconds and calls; layers shown as `layer N`.\n\n```\n");
        for (int i = 0; i < n; i++) {
            char label[96];
            if (rows[i].layer >= 0 && !strcmp(rows[i].name, "layer")) snprintf(label, sizeof label, "layer %d", rows[i].layer);
            else snprintf(label, sizeof label, "%s", rows[i].name);
            fprintf(out, "%*s%-*s %10.3f %10.3f %8llu\n", 2 * rows[i].depth, "", 34 - 2 * rows[i].depth, label,
                    rows[i].incl_ms, rows[i].self_ms, (unsigned long long)rows[i].calls);
        }
        fprintf(out, "```\n\n");
    }
    if (sections & PROFILE_LAYERS) {
        fprintf(out, "## Per layer\n\nResidual adds are fused into the output and FFN-down projections.\n\n"
                     "| layer | total ms | attention ms | FFN ms | share %% |\n|---:|---:|---:|---:|---:|\n");
        for (int l = 0; l < n_layers; l++) {
            double tot = 0, att = 0, ffn = 0;
            for (int i = 0; i < n; i++) {
                if (rows[i].layer != l) continue;
                if (!strcmp(rows[i].name, "layer")) tot += rows[i].incl_ms;
                else if (is_attention(rows[i].name)) att += rows[i].self_ms;
                else ffn += rows[i].self_ms;
            }
            fprintf(out, "| %d | %.3f | %.3f | %.3f | %.1f |\n", l, tot, att, ffn, 100.0 * tot / total);
        }
        fprintf(out, "\n");
    }
    free(rows);
    free(t);
    return 0;
}


/* profile_read.h - reading back the JSON report `smallmind profile --json`
 * writes, with Jansson: what a comparison of two reports needs (the
 * workload and every run's samples). */
#ifndef SM_JSON_PROFILE_READ_H
#define SM_JSON_PROFILE_READ_H

#include <stddef.h>
#include "smallmind.h"

typedef struct sm_json_run {
    double wall_ms, prefill_tps, decode_tps, p50_ms, p90_ms, p99_ms;
    double allocs_per_token, bytes_per_token;
    double *self_ms;            /* n_steps values, by step (0 for a step this run lacks) */
    double *robust_ms;          /* calls x median self time, by step, or NULL when the report has none */
    double *fastest_ms;         /* calls x fastest self time, likewise */
} sm_json_run;

typedef struct sm_json_profile {
    const char *model, *kernels;   /* point into doc */
    int inferences, tokens, prompt_tokens, threads;
    const char **steps;         /* the step names of every run, first seen first */
    int n_steps;
    sm_json_run *runs;
    int n_runs;
    int robust;                 /* every run has robust_ms */
    int n_reports;              /* the reports (processes) its runs come from: 1, or n merged */
    double *values;             /* the self times' block */
    void *doc;                  /* the parsed document (json_t *) */
} sm_json_profile;

/* Parses len bytes of a report. Errors name `source` (a file name):
 * SM_ERR_FORMAT for bad JSON, a report without runs (written before
 * reports carried them) or a value of the wrong kind; SM_ERR_NOMEM. */
sm_status sm_json_profile_parse(const char *text, size_t len, const char *source, sm_json_profile *out, sm_error *err);
void sm_json_profile_free(sm_json_profile *p);

/* The runs of n reports as one (reports of the same workload taken in
 * turns with another build's, so that the machine's drifts are in both
 * sides' spread). The names point into the parts, which must outlive it;
 * free it with sm_json_profile_free. *same: 0 when the parts' models or
 * workloads differ. */
sm_status sm_json_profile_merge(const sm_json_profile *parts, int n, sm_json_profile *out, int *same, sm_error *err);

#endif

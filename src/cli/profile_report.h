/* profile_report.h - what `smallmind profile` measured, and the writers
 * of its markdown, JSON and SVG reports. */
#ifndef SM_CLI_PROFILE_REPORT_H
#define SM_CLI_PROFILE_REPORT_H

#include <limits.h>
#include "smallmind.h"

/* One step of the roofline: a step summed over its layers within one
 * phase (decode, prefill, forward, backward, ...), judged against the
 * ceiling of the level its data comes from (profile_roofline.c). */
typedef struct roof_step {
    const char *name, *phase;
    uint64_t calls, flops, bytes, tasks;
    double self_ms;
    int kind, fma, int8, bf16, pooled, threads;   /* int8, bf16: judged against that dot peak */
    double per_call, per_layer, footprint, working_set;   /* bytes */
    int level;                   /* enum sm_mem_level */
    double gflops, gbps, ceil_gbps, ceil_gflops, pct_bw, pct_peak, intensity, ridge;
    int compute_bound, over_bw, over_peak;
} roof_step;

#define PROFILE_MAX_STEPS 64

/* One of the runs a report is made of: what a comparison needs of it. */
typedef struct profile_run {
    double wall_ms, prefill_tps, decode_tps, p50_ms, p90_ms, p99_ms;
    double allocs_per_token, bytes_per_token;
    int n_generated;
    double self_ms[PROFILE_MAX_STEPS];   /* by profile_data.step_names */
    double robust_ms[PROFILE_MAX_STEPS]; /* calls x median self time (profile_runs.c) */
    double fastest_ms[PROFILE_MAX_STEPS];/* calls x fastest self time */
    int has_robust;                      /* the timeline held the whole run */
} profile_run;

/* A run's time per step as calls x median self time (and as calls x the
 * fastest), from the spans of the session's thread that start at or after
 * since_ns; steps new to names are added. 0, or -1 when out of memory or
 * the spans make no tree. */
int profile_run_robust(const sm_trace_span *spans, size_t n, uint64_t since_ns, const char **names, int *n_names,
                       double *out_ms, double *fastest_ms);
/* Each row's self time as its calls x their median self time, from the
 * spans (of all the runs), where they hold every call of the row; the
 * other rows keep their self time. Returns the rows so measured, or -1. */
int profile_rows_robust(const sm_trace_span *spans, size_t n, const sm_profile_step *rows, int n_rows, double *self_ms);

typedef struct profile_data {
    /* what was asked */
    const char *out_path, *json_path, *svg_path, *model_path;
    const char *trace_path, *folded_path, *flame_path, *baseline_path;
    char roofline_path[PATH_MAX];    /* the roofline chart, beside the report (refused if longer) */
    int deep, default_model, n_inferences, n_tokens, prompt_len, threads;
    sm_model_info info;
    const sm_session *session;
    /* machine */
    double peak_gflops, bw_cache_gbps, bw_dram_gbps;
    /* results */
    double total_ms, generation_wall_ms;
    double prefill_tps, decode_tps, ttft_ms, p50_ms, p90_ms, p99_ms;
    int n_generated;
    double decode_tps_plain, decode_tps_profiled, overhead_pct;
    sm_memory_info mem;
    sm_profile_row *rows;
    int n_rows;
    sm_kernel_result kernels[16];
    int n_kernels;
    sm_machine machine;
    int n_measurements;          /* of the machine, merged into machine */
    sm_profile_step *steps;      /* the rows again, with what the roofline needs */
    roof_step roof[PROFILE_MAX_STEPS];
    int n_roof;
    int roof_robust;             /* rows whose roofline time is calls x median call */
    profile_run *runs;
    int n_runs;
    const char *step_names[PROFILE_MAX_STEPS];
    int n_step_names;
    const char *compare_md;      /* the comparison with the baseline, markdown (or NULL) */
    /* derived by the writer */
    double coverage_pct, bytes_per_token, allocs_per_token;
    uint64_t total_allocs, total_alloc_bytes;
} profile_data;

/* Sections of the markdown profile report. */
enum {
    PROFILE_HOT_PATHS = 1,     /* steps by total time, self and inclusive */
    PROFILE_ALLOCATORS = 2,    /* steps by bytes allocated */
    PROFILE_MOST_CALLED = 4,   /* steps by calls */
    PROFILE_TREE = 8,          /* the call hierarchy */
    PROFILE_LAYERS = 16,       /* time per layer, attention and FFN apart */
    PROFILE_ALL = 31
};

/* Writes the chosen sections of a profiled session's report as markdown
 * (n_layers: the model's). Returns 0, or -1 when profiling is off or
 * memory ran out. */
int profile_write_sections(const sm_session *s, int n_layers, FILE *out, unsigned sections);

/* Writes the markdown report and, if asked, the JSON and the SVG. Returns
 * 0 on success, else fills err. */
int profile_report_write(profile_data *d, sm_error *err);

/* Folded stacks (counts: self microseconds) and a flame graph of the rows
 * (profile_flame.c); 0, or -1 when the stream failed. */
int profile_write_folded(FILE *f, const sm_profile_row *rows, int n);
int profile_write_flame(FILE *f, const sm_profile_row *rows, int n, const char *title);
/* Both, to files, from a profiled session's or trainer's steps; NULL paths
 * are skipped. 0, or -1 with a message printed. */
int profile_write_flame_files(const char *cmd, const sm_profile_step *steps, int n, const char *folded_path,
                              const char *flame_path, const char *title);

/* The roofline (profile_roofline.c): steps grouped by name and phase,
 * judged against m's ceilings; threads is the session's. Sorted by self
 * time. */
extern const char *const roofline_level_names[SM_MEM_LEVELS];
/* Measures the machine into m; *count says how often it was measured
 * before (0 the first time): again, every figure keeps the higher value.
 * 0 on an error (in err). */
int cli_measure_machine(int threads, sm_machine *m, int *count, sm_error *err);
int roofline_build(const sm_profile_step *rows, int n, const sm_machine *m, int threads, roof_step *out, int cap);
void roofline_write_machine(FILE *f, const sm_machine *m, int count);
void roofline_write_markdown(FILE *f, const roof_step *s, int n, const sm_machine *m, int count,
                             const char *svg_name, int median_calls);
void roofline_write_svg(FILE *f, const roof_step *s, int n, const sm_machine *m, const char *title);
void roofline_write_json(FILE *f, const roof_step *s, int n);
void machine_write_json(FILE *f, const sm_machine *m);
/* The comparison of two reports read back from JSON (profile_compare.c):
 * markdown with a verdict per step and overall; heading 1 for a document
 * of its own, 2 for a section of a report. Returns the overall verdict:
 * 1 slower, -1 faster, 0 within noise. */
typedef struct sm_json_profile sm_json_profile;
int profile_compare_write(FILE *f, const sm_json_profile *base, const char *base_name, const sm_json_profile *now,
                          const char *now_name, int heading);

/* The step to optimise first (the most self time), and the advice. */
const roof_step *roofline_first(const roof_step *s, int n);
void roofline_write_advice(FILE *f, const roof_step *r, double total_self_ms);

#endif

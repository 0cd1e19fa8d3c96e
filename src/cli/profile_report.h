/* profile_report.h - what `smallmind profile` measured, and the writers
 * of its markdown, JSON and SVG reports. */
#ifndef SM_CLI_PROFILE_REPORT_H
#define SM_CLI_PROFILE_REPORT_H

#include "smallmind.h"

typedef struct profile_data {
    /* what was asked */
    const char *out_path, *json_path, *svg_path, *model_path;
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

#endif

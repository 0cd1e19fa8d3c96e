/* fuzz_profile_json.c - libFuzzer target: the reader of `smallmind profile
 * --json` reports (src/json/profile_read.c) that --compare and --baseline
 * use, on arbitrary bytes. Checks, besides memory safety: a report it
 * accepts has runs, every run has n_steps finite times >= 0, and merging
 * it with itself doubles its runs. */
#include "json/profile_read.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

static void check(int cond) {
    if (!cond) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sm_json_profile p;
    sm_error err;
    if (sm_json_profile_parse((const char *)data, size, "fuzz", &p, &err) != SM_OK) return 0;
    check(p.n_runs > 0 && p.runs && p.n_steps >= 0);
    for (int r = 0; r < p.n_runs; r++)
        for (int k = 0; k < p.n_steps; k++) {
            check(isfinite(p.runs[r].self_ms[k]) && p.runs[r].self_ms[k] >= 0);
            if (p.robust) check(p.runs[r].robust_ms && p.runs[r].robust_ms[k] >= 0);
        }
    sm_json_profile parts[2] = {p, p}, all;
    int same = 0;
    if (sm_json_profile_merge(parts, 2, &all, &same, &err) == SM_OK) {
        check(all.n_runs == 2 * p.n_runs && all.n_steps == p.n_steps && same == 1);
        sm_json_profile_free(&all);
    }
    sm_json_profile_free(&p);
    return 0;
}

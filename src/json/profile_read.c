/* profile_read.c - a profile report read back from JSON (see
 * profile_read.h). Only the members a comparison uses are read; each is
 * checked for its kind and range, so any document gives either a whole
 * report or one error. */
#include "json/profile_read.h"
#include "core/alloc.h"
#include "core/error.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#define MAX_RUNS 100000
#define MAX_STEPS 1024

/* A finite number >= 0 at key of o (absent: def). */
static int number(const json_t *o, const char *key, double def, double *out) {
    const json_t *v = json_object_get(o, key);
    if (!v) { *out = def; return 1; }
    if (!json_is_number(v)) return 0;
    double x = json_number_value(v);
    if (!isfinite(x) || x < 0) return 0;
    *out = x;
    return 1;
}

static int integer(const json_t *o, const char *key, int *out) {
    double x;
    if (!number(o, key, 0, &x) || x > 1e9) return 0;
    *out = (int)x;
    return 1;
}

static const char *string(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

static int step_index(sm_json_profile *p, const char *name) {
    for (int i = 0; i < p->n_steps; i++)
        if (!strcmp(p->steps[i], name)) return i;
    return -1;
}

sm_status sm_json_profile_parse(const char *text, size_t len, const char *source, sm_json_profile *out,
                                sm_error *err) {
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return sm_fail(err, SM_ERR_FORMAT, "%s:%d:%d: invalid JSON: %s", source, je.line, je.column, je.text);
    out->doc = root;
    sm_status st = SM_OK;
    const json_t *runs = json_object_get(root, "runs");
    size_t nr = json_array_size(runs);
    if (!json_is_object(root) || !json_is_array(runs) || nr == 0) {
        st = sm_fail(err, SM_ERR_FORMAT, "%s: not a profile report with per-run samples (\"runs\"); write it with "
                     "this version's smallmind profile --json", source);
        goto fail;
    }
    if (nr > MAX_RUNS) { st = sm_fail(err, SM_ERR_FORMAT, "%s: %zu runs is too many", source, nr); goto fail; }
    const json_t *model = json_object_get(root, "model"), *work = json_object_get(root, "workload");
    const json_t *sys = json_object_get(root, "system");
    out->model = string(model, "path");
    out->kernels = string(sys, "kernels");
    if (!integer(work, "inferences", &out->inferences) || !integer(work, "tokens", &out->tokens) ||
        !integer(work, "prompt_tokens", &out->prompt_tokens) || !integer(sys, "threads", &out->threads)) {
        st = sm_fail(err, SM_ERR_FORMAT, "%s: the workload or system has a value that is not a count", source);
        goto fail;
    }
    /* the step names: every key of every run's self_ms, first seen first */
    out->steps = sm_alloc(MAX_STEPS * sizeof *out->steps);
    if (!out->steps) { st = sm_fail(err, SM_ERR_NOMEM, "out of memory reading %s", source); goto fail; }
    for (size_t r = 0; r < nr; r++) {
        const json_t *self = json_object_get(json_array_get(runs, r), "self_ms");
        if (!json_is_object(self)) {
            st = sm_fail(err, SM_ERR_FORMAT, "%s: runs[%zu] has no \"self_ms\" object", source, r);
            goto fail;
        }
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)self, key, v) {
            if (step_index(out, key) >= 0) continue;
            if (out->n_steps == MAX_STEPS) {
                st = sm_fail(err, SM_ERR_FORMAT, "%s: more than %d steps", source, MAX_STEPS);
                goto fail;
            }
            out->steps[out->n_steps++] = key;
        }
    }
    out->runs = sm_calloc(nr, sizeof *out->runs);
    out->values = sm_calloc(3 * nr * (size_t)(out->n_steps ? out->n_steps : 1), sizeof *out->values);
    if (!out->runs || !out->values) { st = sm_fail(err, SM_ERR_NOMEM, "out of memory reading %s", source); goto fail; }
    out->n_runs = (int)nr;
    out->n_reports = 1;
    out->robust = 1;
    for (size_t r = 0; r < nr; r++) {
        const json_t *o = json_array_get(runs, r);
        sm_json_run *run = &out->runs[r];
        run->self_ms = out->values + 3 * r * (size_t)out->n_steps;
        run->robust_ms = run->self_ms + out->n_steps;
        run->fastest_ms = run->robust_ms + out->n_steps;
        if (!number(o, "wall_ms", 0, &run->wall_ms) || !number(o, "prefill_tps", 0, &run->prefill_tps) ||
            !number(o, "decode_tps", 0, &run->decode_tps) || !number(o, "ms_per_token_p50", 0, &run->p50_ms) ||
            !number(o, "ms_per_token_p90", 0, &run->p90_ms) || !number(o, "ms_per_token_p99", 0, &run->p99_ms) ||
            !number(o, "allocations_per_token", 0, &run->allocs_per_token) ||
            !number(o, "bytes_per_token", 0, &run->bytes_per_token)) {
            st = sm_fail(err, SM_ERR_FORMAT, "%s: runs[%zu] has a value that is not a number >= 0", source, r);
            goto fail;
        }
        for (int k = 0; k < 3; k++) {
            static const char *const members[3] = {"self_ms", "self_ms_robust", "self_ms_fastest"};
            const char *member = members[k], *key;
            const json_t *obj = json_object_get(o, member), *v;
            double *dst = k == 0 ? run->self_ms : k == 1 ? run->robust_ms : run->fastest_ms;
            if (k && !obj) {
                out->robust = 0;   /* both robust measures or none */
                run->robust_ms = run->fastest_ms = NULL;
                break;
            }
            if (!json_is_object(obj)) {
                st = sm_fail(err, SM_ERR_FORMAT, "%s: runs[%zu].%s is not an object", source, r, member);
                goto fail;
            }
            json_object_foreach((json_t *)obj, key, v) {
                double x = json_is_number(v) ? json_number_value(v) : -1;
                int i = step_index(out, key);
                if (!isfinite(x) || x < 0 || i < 0) {
                    st = sm_fail(err, SM_ERR_FORMAT, "%s: runs[%zu].%s[\"%s\"] is not a time of a step", source, r,
                                 member, key);
                    goto fail;
                }
                dst[i] = x;
            }
        }
    }
    return SM_OK;
fail:
    sm_json_profile_free(out);
    return st;
}

void sm_json_profile_free(sm_json_profile *p) {
    if (!p) return;
    sm_free(p->steps);
    sm_free(p->runs);
    sm_free(p->values);
    if (p->doc) json_decref((json_t *)p->doc);
    memset(p, 0, sizeof *p);
}

sm_status sm_json_profile_merge(const sm_json_profile *parts, int n, sm_json_profile *out, int *same, sm_error *err) {
    memset(out, 0, sizeof *out);
    *same = 1;
    if (n < 1) return sm_fail(err, SM_ERR_INVALID_ARG, "no reports to merge");
    *out = parts[0];
    out->doc = NULL;
    out->steps = sm_alloc(MAX_STEPS * sizeof *out->steps);
    out->n_steps = out->n_runs = 0;
    out->robust = 1;
    size_t runs = 0;
    for (int i = 0; i < n; i++) runs += (size_t)parts[i].n_runs;
    out->runs = sm_calloc(runs ? runs : 1, sizeof *out->runs);
    if (!out->steps || !out->runs) goto nomem;
    for (int i = 0; i < n; i++) {
        const sm_json_profile *p = &parts[i];
        if (strcmp(p->model, parts[0].model) || p->tokens != parts[0].tokens || p->prompt_tokens != parts[0].prompt_tokens)
            *same = 0;
        out->robust &= p->robust;
        for (int k = 0; k < p->n_steps; k++)
            if (step_index(out, p->steps[k]) < 0) {
                if (out->n_steps == MAX_STEPS) {
                    sm_json_profile_free(out);
                    return sm_fail(err, SM_ERR_FORMAT, "the reports have more than %d steps", MAX_STEPS);
                }
                out->steps[out->n_steps++] = p->steps[k];
            }
    }
    out->values = sm_calloc(3 * runs * (size_t)(out->n_steps ? out->n_steps : 1), sizeof *out->values);
    if (!out->values) goto nomem;
    for (int i = 0; i < n; i++) {
        const sm_json_profile *p = &parts[i];
        for (int r = 0; r < p->n_runs; r++) {
            sm_json_run *run = &out->runs[out->n_runs];
            *run = p->runs[r];
            run->self_ms = out->values + 3 * (size_t)out->n_runs * (size_t)out->n_steps;
            run->robust_ms = out->robust ? run->self_ms + out->n_steps : NULL;
            run->fastest_ms = out->robust ? run->robust_ms + out->n_steps : NULL;
            for (int k = 0; k < p->n_steps; k++) {
                int j = step_index(out, p->steps[k]);
                run->self_ms[j] = p->runs[r].self_ms[k];
                if (out->robust) {
                    run->robust_ms[j] = p->runs[r].robust_ms[k];
                    run->fastest_ms[j] = p->runs[r].fastest_ms[k];
                }
            }
            out->n_runs++;
        }
    }
    out->inferences = out->n_runs;
    out->n_reports = n;
    return SM_OK;
nomem:
    sm_json_profile_free(out);
    return sm_fail(err, SM_ERR_NOMEM, "out of memory merging reports");
}

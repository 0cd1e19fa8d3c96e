/* train_profile.c - training with the profiler on (see train_profile.h).
 * The first optimizer step of a run warms up (first touches of the
 * activations, the pool's threads) and counts for nothing; after it, the
 * odd steps are timed and the even ones run with the profiler paused, so
 * the profiler's cost is the fastest timed step against the fastest paused
 * one, on the same memory within one run (on a shared machine interference
 * only ever adds time). The forward, backward and optimizer are timed by
 * trainer.c's and train.c's scopes (model/steps.h). */
#include "train_profile.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/outfile.h"
#include "model/profile_api.h"
#include "model/steps.h"

#include <stdio.h>
#include <string.h>

enum { STEP_WARMUP, STEP_TIMED, STEP_PAUSED };

struct sm_train_profile {
    sm_prof *prof;
    sm_train_profile_params pp;
    sm_profile_step *rows;
    int n_rows;
    sm_train_profile_info info;
    double ms_timed, ms_paused;           /* the fastest of each */
};

sm_train_profile *sm_train_profile_new(const sm_train_profile_params *pp, sm_error *err) {
    sm_train_profile *tp = sm_calloc(1, sizeof *tp);
    if (!tp) {
        sm_fail(err, SM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (pp) tp->pp = *pp;
    if (tp->pp.trace_events == 0) tp->pp.trace_events = (size_t)1 << 18;
    if (tp->pp.trace_events < 16 || tp->pp.trace_events > ((size_t)1 << 28)) {
        sm_fail(err, SM_ERR_INVALID_ARG, "%zu trace events per thread is out of range (16 to %d)", tp->pp.trace_events,
                1 << 28);
        sm_free(tp);
        return NULL;
    }
    return tp;
}

void sm_train_profile_free(sm_train_profile *tp) {
    if (!tp) return;
    sm_prof_free(tp->prof);
    sm_free(tp->rows);
    sm_free(tp);
}

sm_status sm_train_profile_begin(sm_train_profile *tp, sm_trainer *t, sm_error *err) {
    int layers = t->cfg.hp.n_layers;
    /* per layer: forward and backward operations, a recomputed forward */
    tp->prof = sm_prof_new(128 + 64 * layers, sm_step_names, SM_SC_COUNT);
    if (!tp->prof) return sm_fail(err, SM_ERR_NOMEM, "out of memory for the profiler");
    if (tp->pp.trace_path && sm_prof_trace_start(tp->prof, sm_threadpool_size(t->pool), tp->pp.trace_events) != 0)
        return sm_fail(err, SM_ERR_NOMEM, "out of memory for a trace of %zu events per thread", tp->pp.trace_events);
    tp->ms_timed = tp->ms_paused = -1;
    return SM_OK;
}

static int kind_of(int k, int n) {
    if (n == 1) return STEP_TIMED;   /* nothing else to time */
    if (k == 0) return STEP_WARMUP;
    return k % 2 ? STEP_TIMED : STEP_PAUSED;
}

sm_prof *sm_train_profile_step_start(sm_train_profile *tp, sm_trainer *t, int k, int n) {
    int timed = kind_of(k, n) == STEP_TIMED;
    t->prof = timed ? tp->prof : NULL;
    sm_threadpool_set_hook(t->pool, timed ? sm_prof_task_hook : NULL, tp->prof);
    return t->prof;
}

void sm_train_profile_step_end(sm_train_profile *tp, sm_trainer *t, int k, double ms, double tokens) {
    if (t->prof) {
        tp->info.steps_profiled++;
        tp->info.wall_ms_profiled += ms;
        if (tp->ms_timed < 0 || ms < tp->ms_timed) tp->ms_timed = ms;
        sm_prof_counter(tp->prof, SM_TRACE_TOKENS_PER_S, ms > 0 ? tokens / (ms * 1e-3) : 0);
    } else if (k > 0) {
        tp->info.steps_paused++;
        if (tp->ms_paused < 0 || ms < tp->ms_paused) tp->ms_paused = ms;
    }
    tp->info.tokens_per_step = (uint64_t)tokens;
    t->prof = NULL;
    sm_threadpool_set_hook(t->pool, NULL, NULL);
}

/* What a scope costs (a begin and an end, with the trace recorded or not)
 * and what a task hand-off costs the profiled thread, in nanoseconds: the
 * fastest of a few batches on a profiler of its own. */
static void scope_costs(int with_trace, double *scope_ns, double *task_ns) {
    *scope_ns = *task_ns = 0;
    sm_prof *p = sm_prof_new(16, sm_step_names, SM_SC_COUNT);
    if (!p) return;
    if (with_trace) sm_prof_trace_start(p, 1, 1024);
    double best[2] = {1e30, 1e30};
    for (int b = 0; b < 7; b++) {
        for (int k = 0; k < 2; k++) {
            uint64_t t0 = sm_now_ns();
            for (int i = 0; i < 10000; i++) {
                if (k == 0) {
                    sm_prof_begin(p, SM_SC_LOSS, -1);
                    sm_prof_end(p, 0, 0);
                } else {
                    sm_prof_task_hook(p, 0, 0);
                    sm_prof_task_hook(p, 0, 1);
                }
            }
            double ns = (double)(sm_now_ns() - t0) / 10000;
            if (ns < best[k]) best[k] = ns;
        }
    }
    *scope_ns = best[0];
    *task_ns = best[1];
    sm_prof_free(p);
}

sm_status sm_train_profile_end(sm_train_profile *tp, sm_trainer *t, sm_error *err) {
    sm_train_profile_info *in = &tp->info;
    in->threads = sm_threadpool_size(t->pool);
    in->layers = t->cfg.hp.n_layers;
    in->dim = t->cfg.hp.dim;
    in->heads = t->cfg.hp.n_heads;
    in->ffn = t->cfg.hp.ffn_dim;
    in->vocab = t->cfg.hp.n_vocab;
    in->step_ms_profiled = tp->ms_timed > 0 ? tp->ms_timed : 0;
    in->step_ms_paused = tp->ms_paused > 0 ? tp->ms_paused : 0;
    in->parameter_bytes = in->gradient_bytes = (uint64_t)t->n_floats * sizeof(float);
    in->moment_bytes = 2 * in->parameter_bytes;
    in->activation_bytes = (uint64_t)t->act_floats * sizeof(float);
    in->activation_bytes_full = (uint64_t)t->act_floats_full * sizeof(float);
    in->scratch_bytes = (uint64_t)(t->scratch_floats + t->mm_floats) * sizeof(float);
    in->frozen_bytes = (uint64_t)t->frozen_f32_floats * sizeof(float);
    for (int i = 0; i < t->n_params; i++)
        if (t->params[i].layer == 0) in->layer_parameter_bytes += (uint64_t)t->params[i].rows * t->params[i].cols * 4;
    tp->n_rows = sm_prof_steps(tp->prof, NULL, 0);
    tp->rows = sm_calloc((size_t)tp->n_rows + 1, sizeof *tp->rows);
    if (!tp->rows) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    sm_prof_steps(tp->prof, tp->rows, tp->n_rows);
    double scope_ns, task_ns, scopes = 0, tasks = 0;
    scope_costs(tp->pp.trace_path != NULL, &scope_ns, &task_ns);
    for (int i = 0; i < tp->n_rows; i++) {
        scopes += (double)tp->rows[i].row.calls;
        tasks += (double)tp->rows[i].tasks;
    }
    if (in->steps_profiled > 0) {
        in->scope_ns = scope_ns;
        in->scopes_per_step = scopes / in->steps_profiled;
        double ms = in->step_ms_paused > 0 ? in->step_ms_paused : in->step_ms_profiled;
        if (ms > 0)
            in->overhead_estimate_pct = 100.0 * (scopes * scope_ns + tasks * task_ns) / in->steps_profiled / (ms * 1e6);
    }
    sm_status st = SM_OK;
    if (tp->pp.trace_path) {
        /* written as every file is (core/outfile.h): checked, atomic */
        sm_output *o;
        if ((st = sm_output_open(tp->pp.trace_path, &o, err))) return st;
        FILE *f = sm_output_stream(o);
        sm_trace_write_params wp = sm_trace_write_default_params();
        wp.process_name = "smallmind train";
        st = f ? sm_prof_trace_write(tp->prof, f, &wp, -1, err) : SM_OK;
        if (st) sm_output_discard(o);
        else st = sm_output_commit(o, err);
        sm_prof_trace_stop(tp->prof);
    }
    return st;
}

void sm_train_profile_get_info(const sm_train_profile *tp, sm_train_profile_info *info) { *info = tp->info; }

int sm_train_profile_steps(const sm_train_profile *tp, sm_profile_step *rows, int cap) {
    if (!tp || !tp->rows) return 0;
    int n = tp->n_rows < cap ? tp->n_rows : cap;
    if (rows && n > 0) memcpy(rows, tp->rows, (size_t)n * sizeof *rows);
    return tp->n_rows;
}

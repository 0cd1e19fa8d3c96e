/* train_report.c - the report of `smallmind train --profile`: forward,
 * backward and optimizer time per layer and per operation, GFLOP/s per
 * operation against the measured peak, memory per block, the roofline,
 * the profiler's own cost, as markdown and JSON beside the trained model
 * (MODEL.profile.md, MODEL.profile.json, MODEL.roofline.svg). */
#include "train_report.h"
#include "args.h"
#include "profile_report.h"
#include "common.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* MODEL.gguf -> MODEL<suffix>; 0 when it does not fit (never cut short). */
static int beside(const char *out, const char *suffix, char *buf, size_t cap) {
    size_t n = strlen(out);
    if (n > 5 && !strcmp(out + n - 5, ".gguf")) n -= 5;
    int w = snprintf(buf, cap, "%.*s%s", (int)n, out, suffix);
    return w >= 0 && (size_t)w < cap;
}

int train_report_prepare(const char *cmd, const char *out, const char *folded, const char *flame) {
    static const char *const suffix[3] = {".profile.md", ".profile.json", ".roofline.svg"};
    char path[PATH_MAX];
    for (int i = 0; i < 3; i++) {
        if (!beside(out, suffix[i], path, sizeof path)) {
            cli_error(cmd, "--out is too long for its profile report '%s' (%d bytes at most)", suffix[i], PATH_MAX - 1);
            return 0;
        }
        if (!cli_prepare_output(cmd, path)) return 0;
    }
    return (!folded || cli_prepare_output(cmd, folded)) && (!flame || cli_prepare_output(cmd, flame));
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

typedef struct train_report {
    const sm_train_params *p;
    sm_train_profile_info info;
    sm_profile_step *rows;
    int n;
    sm_machine machine;
    roof_step roof[PROFILE_MAX_STEPS];
    int n_roof;
    double attributed_ms, self_ms, overhead_pct, coverage_pct;
    char md[PATH_MAX], json[PATH_MAX], svg[PATH_MAX];
} train_report;

/* The nearest ancestor named `name`, or -1. */
static int ancestor(const sm_profile_step *rows, int i, const char *name) {
    for (int r = rows[i].row.parent; r >= 0; r = rows[r].row.parent)
        if (!strcmp(rows[r].row.name, name)) return r;
    return -1;
}

static void mib(FILE *f, uint64_t b) { fprintf(f, "%.2f MiB", (double)b / 1048576.0); }

/* Per operation, forward and backward apart: time per step and GFLOP/s. */
typedef struct op_total {
    const char *name;
    double ms[2];
    uint64_t flops[2], tasks[2], calls[2];
    int bf16[2];   /* mixed precision's products: judged against the BF16 dot peak */
} op_total;

static void write_md(train_report *r, FILE *f) {
    const sm_train_profile_info *in = &r->info;
    const sm_train_params *p = r->p;
    double steps = in->steps_profiled ? in->steps_profiled : 1;
    fprintf(f, "# SmallMind training profile\n\n| | |\n|---|---|\n");
    fprintf(f, "| model | dim %d, %d layers, %d heads, ffn %d, vocabulary %d, %.2f M parameters |\n", in->dim,
            in->layers, in->heads, in->ffn, in->vocab, (double)in->parameter_bytes / 4e6);
    fprintf(f, "| workload | %d optimizer steps timed, %d run with the profiler paused (the first step warms up and "
               "counts for neither); %llu tokens per step (batch %d x %d, %d micro-batch%s) |\n",
            in->steps_profiled, in->steps_paused, (unsigned long long)in->tokens_per_step, p->batch, p->seq, p->accum,
            p->accum > 1 ? "es" : "");
    fprintf(f, "| threads | %d |\n\n", in->threads);
    fprintf(f, "## Summary\n\n| metric | value |\n|---|---:|\n");
    fprintf(f, "| step time, fastest timed / fastest paused | %.3f / %.3f ms |\n", in->step_ms_profiled, in->step_ms_paused);
    fprintf(f, "| tokens/s (fastest timed step) | %.0f |\n",
            in->step_ms_profiled > 0 ? (double)in->tokens_per_step / (in->step_ms_profiled * 1e-3) : 0.0);
    fprintf(f, "| profiling overhead, measured | %.2f %% (fastest timed step against fastest paused one) |\n",
            r->overhead_pct);
    fprintf(f, "| profiling overhead, from its cost | %.3f %% (%.0f scopes per step at %.1f ns each, and the pool's "
               "hand-offs) |\n", in->overhead_estimate_pct, in->scopes_per_step, in->scope_ns);
    fprintf(f, "| operations' self times / wall time of the timed steps | %.1f %% (%.3f of %.3f ms) |\n",
            r->coverage_pct, r->attributed_ms, in->wall_ms_profiled);
    fprintf(f, "| all self times / wall time | %.1f %% |\n\n",
            in->wall_ms_profiled > 0 ? 100.0 * r->self_ms / in->wall_ms_profiled : 0.0);

    fprintf(f, "## Memory per block\n\n| block | size |\n|---|---:|\n| parameters | ");
    mib(f, in->parameter_bytes);
    fprintf(f, " |\n| gradients | ");
    mib(f, in->gradient_bytes);
    fprintf(f, " |\n| AdamW moments (m and v) | ");
    mib(f, in->moment_bytes);
    fprintf(f, " |\n| activations of one micro-batch | ");
    mib(f, in->activation_bytes);
    if (in->activation_bytes < in->activation_bytes_full) {
        fprintf(f, " (");
        mib(f, in->activation_bytes_full);
        fprintf(f, " without gradient checkpointing)");
    }
    fprintf(f, " |\n| backward temporaries and the products' buffers | ");
    mib(f, in->scratch_bytes);
    if (in->frozen_bytes) {
        fprintf(f, " |\n| LoRA: the frozen base's matrices as F32 rows and transposes | ");
        mib(f, in->frozen_bytes);
    }
    fprintf(f, " |\n| one layer's parameters (gradients and each moment the same) | ");
    mib(f, in->layer_parameter_bytes);
    fprintf(f, " |\n\n");

    /* forward, backward, optimizer and the rest of a step */
    static const char *const parts[] = {"batch", "forward", "loss", "backward", "optimizer", "evaluation", "checkpoint",
                                        "all-reduce"};
    fprintf(f, "## Forward, backward and optimizer\n\nPer timed step.\n\n| part | ms | share of the step |\n|---|---:|---:|\n");
    for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
        double ms = 0;
        int seen = 0;
        for (int i = 0; i < r->n; i++)
            if (r->rows[i].row.depth == 1 && !strcmp(r->rows[i].row.name, parts[k])) {
                ms += r->rows[i].row.incl_ms;
                seen = 1;
            }
        if (!strcmp(parts[k], "all-reduce") && !seen) {
            fprintf(f, "| all-reduce (communication) | 0 | - (not run under MPI: data-parallel training times its "
                       "gradient exchange as the step \"all-reduce\") |\n");
            continue;
        }
        if (!seen) continue;
        fprintf(f, "| %s | %.3f | %.1f %% |\n", parts[k], ms / steps,
                in->wall_ms_profiled > 0 ? 100.0 * ms / in->wall_ms_profiled : 0.0);
    }
    fprintf(f, "\n## Per layer\n\nPer timed step, ms.\n\n| layer | forward | backward |\n|---:|---:|---:|\n");
    for (int l = 0; l < in->layers; l++) {
        double fw = 0, bw = 0;
        for (int i = 0; i < r->n; i++) {
            const sm_profile_row *w = &r->rows[i].row;
            if (strcmp(w->name, "layer") || w->layer != l) continue;
            if (ancestor(r->rows, i, "backward") >= 0) bw += w->incl_ms;
            else if (ancestor(r->rows, i, "evaluation") < 0) fw += w->incl_ms;
        }
        fprintf(f, "| %d | %.3f | %.3f |\n", l, fw / steps, bw / steps);
    }
    /* per operation, over all layers, outside evaluation */
    op_total ops[PROFILE_MAX_STEPS];
    int no = 0;
    for (int i = 0; i < r->n; i++) {
        const sm_profile_step *s = &r->rows[i];
        if (s->kind == SM_STEP_GROUP || ancestor(r->rows, i, "evaluation") >= 0) continue;
        int dir = ancestor(r->rows, i, "backward") >= 0;
        if (!dir && ancestor(r->rows, i, "forward") < 0) continue;
        int k = 0;
        while (k < no && strcmp(ops[k].name, s->row.name)) k++;
        if (k == no) {
            if (no == PROFILE_MAX_STEPS) continue;
            memset(&ops[no], 0, sizeof ops[no]);
            ops[no++].name = s->row.name;
        }
        ops[k].ms[dir] += s->row.self_ms;
        ops[k].flops[dir] += s->row.flops;
        ops[k].tasks[dir] += s->tasks;
        ops[k].calls[dir] += s->row.calls;
        ops[k].bf16[dir] |= s->bf16 && r->machine.peak_bf16_gflops[0] > 0;
    }
    fprintf(f, "\n## Per operation\n\nPer timed step, summed over the layers; GFLOP/s against the measured FP32 FMA "
               "peak of the threads the operation ran on (%.1f GFLOP/s on one core, %.1f on %d)",
            r->machine.peak_gflops[0], r->machine.peak_gflops[1], r->machine.threads);
    if (r->machine.peak_bf16_gflops[0] > 0)
        fprintf(f, ", or for mixed precision's products (BF16 dots, marked BF16) the BF16 dot peak (%.1f and %.1f)",
                r->machine.peak_bf16_gflops[0], r->machine.peak_bf16_gflops[1]);
    fprintf(f, ".\n\n| operation | forward ms | GFLOP/s | of peak | backward ms | GFLOP/s | of peak |\n"
               "|---|---:|---:|---:|---:|---:|---:|\n");
    for (int k = 0; k < no; k++) {
        fprintf(f, "| %s", ops[k].name);
        for (int d = 0; d < 2; d++) {
            if (!ops[k].calls[d]) {
                fprintf(f, " | - | - | -");
                continue;
            }
            double sec = ops[k].ms[d] * 1e-3, g = sec > 0 ? (double)ops[k].flops[d] / sec * 1e-9 : 0;
            int pooled = in->threads > 1 && 2 * ops[k].tasks[d] >= ops[k].calls[d];
            double peak = ops[k].bf16[d] ? r->machine.peak_bf16_gflops[pooled] : r->machine.peak_gflops[pooled];
            fprintf(f, " | %.3f | %.2f | %.1f %%%s", ops[k].ms[d] / steps, g, peak > 0 ? 100 * g / peak : 0,
                    ops[k].bf16[d] ? " BF16" : "");
        }
        fprintf(f, " |\n");
    }
    fprintf(f, "\n");
    roofline_write_markdown(f, r->roof, r->n_roof, &r->machine, 1, base_name(r->svg), 0);
    const roof_step *first = roofline_first(r->roof, r->n_roof);
    double roof_self = 0;
    for (int k = 0; k < r->n_roof; k++) roof_self += r->roof[k].self_ms;
    if (first) roofline_write_advice(f, first, roof_self);
    fprintf(f, "\n## Call hierarchy\n\nInclusive / self milliseconds over the timed steps, and calls.\n\n```\n");
    for (int i = 0; i < r->n; i++) {
        const sm_profile_row *w = &r->rows[i].row;
        char label[96];
        if (w->layer >= 0 && !strcmp(w->name, "layer")) snprintf(label, sizeof label, "layer %d", w->layer);
        else snprintf(label, sizeof label, "%s", w->name);
        fprintf(f, "%*s%-*s %10.3f %10.3f %8llu\n", 2 * w->depth, "", 34 - 2 * w->depth > 1 ? 34 - 2 * w->depth : 1,
                label, w->incl_ms, w->self_ms, (unsigned long long)w->calls);
    }
    fprintf(f, "```\n");
}

static void write_json(train_report *r, FILE *f) {
    const sm_train_profile_info *in = &r->info;
    fprintf(f, "{\n  \"summary\": {\"threads\": %d, \"layers\": %d, \"steps_profiled\": %d, \"steps_paused\": %d, "
               "\"tokens_per_step\": %llu, \"step_ms_profiled\": %.4f, \"step_ms_paused\": %.4f, "
               "\"wall_ms_profiled\": %.4f, \"attributed_ms\": %.4f, \"self_ms\": %.4f, \"coverage_pct\": %.3f, "
               "\"overhead_pct\": %.3f, \"overhead_estimate_pct\": %.4f, \"scope_ns\": %.2f, \"scopes_per_step\": %.1f},\n",
            in->threads, in->layers, in->steps_profiled, in->steps_paused, (unsigned long long)in->tokens_per_step,
            in->step_ms_profiled, in->step_ms_paused, in->wall_ms_profiled, r->attributed_ms, r->self_ms,
            r->coverage_pct, r->overhead_pct, in->overhead_estimate_pct, in->scope_ns, in->scopes_per_step);
    fprintf(f, "  \"memory\": {\"parameters\": %llu, \"gradients\": %llu, \"moments\": %llu, \"activations\": %llu, "
               "\"activations_without_checkpointing\": %llu, \"scratch\": %llu, \"layer_parameters\": %llu, "
               "\"frozen_f32\": %llu},\n",
            (unsigned long long)in->parameter_bytes, (unsigned long long)in->gradient_bytes,
            (unsigned long long)in->moment_bytes, (unsigned long long)in->activation_bytes,
            (unsigned long long)in->activation_bytes_full, (unsigned long long)in->scratch_bytes,
            (unsigned long long)in->layer_parameter_bytes, (unsigned long long)in->frozen_bytes);
    fprintf(f, "  \"machine\": ");
    machine_write_json(f, &r->machine);
    fprintf(f, ",\n  \"roofline\": ");
    roofline_write_json(f, r->roof, r->n_roof);
    fprintf(f, ",\n  \"scopes\": [");
    for (int i = 0; i < r->n; i++) {
        const sm_profile_step *s = &r->rows[i];
        fprintf(f, "%s\n    {\"name\": \"%s\", \"depth\": %d, \"parent\": %d, \"layer\": %d, \"calls\": %llu, "
                   "\"incl_ms\": %.6f, \"self_ms\": %.6f, \"flops\": %llu, \"bytes\": %llu, \"kind\": %d, \"tasks\": %llu}",
                i ? "," : "", s->row.name, s->row.depth, s->row.parent, s->row.layer, (unsigned long long)s->row.calls,
                s->row.incl_ms, s->row.self_ms, (unsigned long long)s->row.flops, (unsigned long long)s->row.bytes,
                s->kind, (unsigned long long)s->tasks);
    }
    fprintf(f, "\n  ]\n}\n");
}

static void svg(train_report *r, FILE *f) {
    roofline_write_svg(f, r->roof, r->n_roof, &r->machine, "SmallMind roofline: training");
}

static int to_file(const char *cmd, const char *path, void (*fn)(train_report *, FILE *), train_report *r) {
    sm_output *o;
    FILE *f = cli_output_open(cmd, path, &o);
    if (!f) return -1;
    fn(r, f);
    return cli_output_close(cmd, o);
}

int train_report_write(const char *cmd, const sm_train_params *p, const sm_train_profile *tp, const char *folded,
                       const char *flame) {
    train_report *r = calloc(1, sizeof *r);
    if (!r) return -1;
    r->p = p;
    sm_train_profile_get_info(tp, &r->info);
    r->n = sm_train_profile_steps(tp, NULL, 0);
    r->rows = calloc((size_t)r->n + 1, sizeof *r->rows);
    int rc = -1;
    if (!r->rows) goto done;
    sm_train_profile_steps(tp, r->rows, r->n);
    fprintf(stderr, "smallmind train: measuring this machine for the roofline...\n");
    sm_error err = {0};
    int count = 0;
    if (!cli_measure_machine(r->info.threads, &r->machine, &count, &err)) {
        cli_error(cmd, "%s", err.message);
        goto done;
    }
    r->n_roof = roofline_build(r->rows, r->n, &r->machine, r->info.threads, r->roof, PROFILE_MAX_STEPS);
    for (int i = 0; i < r->n; i++) {
        r->self_ms += r->rows[i].row.self_ms;
        if (r->rows[i].kind != SM_STEP_GROUP) r->attributed_ms += r->rows[i].row.self_ms;
    }
    const sm_train_profile_info *in = &r->info;
    r->coverage_pct = in->wall_ms_profiled > 0 ? 100.0 * r->attributed_ms / in->wall_ms_profiled : 0;
    r->overhead_pct = in->step_ms_paused > 0 && in->step_ms_profiled > 0
                          ? 100.0 * (in->step_ms_profiled / in->step_ms_paused - 1.0) : 0;
    if (!beside(p->out, ".profile.md", r->md, sizeof r->md) || !beside(p->out, ".profile.json", r->json, sizeof r->json) ||
        !beside(p->out, ".roofline.svg", r->svg, sizeof r->svg)) {
        cli_error(cmd, "--out is too long for its profile report");
        goto done;
    }
    if (to_file(cmd, r->md, write_md, r) || to_file(cmd, r->json, write_json, r) || to_file(cmd, r->svg, svg, r) ||
        profile_write_flame_files(cmd, r->rows, r->n, folded, flame, "SmallMind flame graph: training") != 0)
        goto done;
    fprintf(stderr, "smallmind train: profile in %s (%.1f %% of the step in named operations, overhead %.2f %% "
                    "measured, %.3f %% from the profiler's cost)\n", r->md, r->coverage_pct, r->overhead_pct,
            in->overhead_estimate_pct);
    rc = 0;
done:
    free(r->rows);
    free(r);
    return rc;
}

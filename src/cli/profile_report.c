/* profile_report.c - the `smallmind profile` report: markdown (every
 * section), JSON (the same data) and an SVG bar chart of the hot paths. */
#include "profile_report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static long sysconf_cores(void) { return sysconf(_SC_NPROCESSORS_ONLN); }

#ifndef SM_BUILD_FLAGS
#define SM_BUILD_FLAGS "unknown"
#endif

/* The original C# engine's published figures, deep configuration. */
#define ORIGINAL_TPS 6.4
#define ORIGINAL_MB_PER_TOKEN 51.5
#define ORIGINAL_MS_PER_TOKEN 165.0

typedef struct step {
    const char *name;
    double self_ms, incl_ms;
    uint64_t calls, flops, bytes;
} step;

static int is_under(const profile_data *d, int row, const char *ancestor) {
    for (int r = d->rows[row].parent; r >= 0; r = d->rows[r].parent)
        if (!strcmp(d->rows[r].name, ancestor)) return 1;
    return 0;
}

/* Steps summed over layers and call sites, by self time, descending. */
static int steps_by_self(const profile_data *d, step *s) {
    int n = 0;
    for (int i = 0; i < d->n_rows; i++) {
        const sm_profile_row *r = &d->rows[i];
        if (!strcmp(r->name, "load")) continue;
        int k = 0;
        while (k < n && strcmp(s[k].name, r->name)) k++;
        if (k == n) { memset(&s[n], 0, sizeof s[n]); s[n].name = r->name; n++; }
        s[k].self_ms += r->self_ms;
        s[k].incl_ms += r->incl_ms;
        s[k].calls += r->calls;
        s[k].flops += r->flops;
        s[k].bytes += r->bytes;
    }
    for (int i = 1; i < n; i++) {
        step x = s[i];
        int j = i;
        while (j > 0 && s[j - 1].self_ms < x.self_ms) { s[j] = s[j - 1]; j--; }
        s[j] = x;
    }
    return n;
}

static void cpu_model(char *out, size_t cap) {
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c += 2;
                c[strcspn(c, "\n")] = '\0';
                snprintf(out, cap, "%s", c);
            }
            break;
        }
    fclose(f);
}

static void derive(profile_data *d) {
    double self_sum = 0;
    uint64_t tok_allocs = 0, tok_bytes = 0;
    for (int i = 0; i < d->n_rows; i++) {
        const sm_profile_row *r = &d->rows[i];
        d->total_allocs += r->alloc_count;
        d->total_alloc_bytes += r->alloc_bytes;
        if (strcmp(r->name, "load") != 0) self_sum += r->self_ms;
        if (!strcmp(r->name, "token") || is_under(d, i, "token")) {
            tok_allocs += r->alloc_count;
            tok_bytes += r->alloc_bytes;
        }
    }
    d->coverage_pct = d->generation_wall_ms > 0 ? 100.0 * self_sum / d->generation_wall_ms : 0;
    d->allocs_per_token = d->n_generated ? (double)tok_allocs / d->n_generated : 0;
    d->bytes_per_token = d->n_generated ? (double)tok_bytes / d->n_generated : 0;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void write_markdown(profile_data *d, FILE *f) {
    time_t now = time(NULL);
    char date[64], cpu[256];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    cpu_model(cpu, sizeof cpu);
    struct utsname u;
    if (uname(&u) != 0) memset(&u, 0, sizeof u);
    const sm_model_info *in = &d->info;
    int n_scopes = d->n_rows;
    step s[64];
    int ns = steps_by_self(d, s);

    fprintf(f, "# SmallMind profile report\n\n");
    fprintf(f, "| | |\n|---|---|\n");
    fprintf(f, "| date | %s |\n| total time | %.1f ms (generation %.1f ms) |\n", date, d->total_ms, d->generation_wall_ms);
    fprintf(f, "| total allocations | %llu (%llu bytes) in the profiled runs |\n", (unsigned long long)d->total_allocs,
            (unsigned long long)d->total_alloc_bytes);
    fprintf(f, "| scopes | %d nodes in the call tree, %d distinct steps |\n", n_scopes, ns);
    fprintf(f, "| model | %s: %s, vocab %d, context %d, dim %d, %d layers, %d heads (kv %d), ffn %d, %.2f M parameters |\n",
            d->model_path, in->arch, in->n_vocab, in->n_ctx_train, in->dim, in->n_layers, in->n_heads, in->n_kv_heads,
            in->ffn_dim, (double)in->n_params / 1e6);
    fprintf(f, "| workload | %d inferences x %d tokens after a %d-token prompt, greedy |\n\n", d->n_inferences,
            d->n_tokens, d->prompt_len);
    if (d->svg_path) fprintf(f, "![hot paths](%s)\n\n", base_name(d->svg_path));
    if (d->trace_path || d->folded_path || d->flame_path)
        fprintf(f, "Also written: %s%s%s%s%s%s.\n\n", d->trace_path ? "a timeline of every thread " : "",
                d->trace_path ? base_name(d->trace_path) : "", d->folded_path ? ", folded stacks " : "",
                d->folded_path ? base_name(d->folded_path) : "", d->flame_path ? ", a flame graph " : "",
                d->flame_path ? base_name(d->flame_path) : "");

    fprintf(f, "## System\n\n| | |\n|---|---|\n");
    fprintf(f, "| OS | %s %s %s |\n| CPU | %s |\n| cores | %ld online |\n", u.sysname, u.release, u.machine, cpu,
            sysconf_cores());
    fprintf(f, "| SIMD available | %s |\n| kernels in use | %s |\n", sm_cpu_simd_features(), sm_kernel_level());
    fprintf(f, "| compiler | %s, flags `%s` |\n| threads | %d |\n", __VERSION__, SM_BUILD_FLAGS, d->threads ? d->threads : 1);
    fprintf(f, "| measured peak | %.1f GFLOP/s FP32 FMA on one core, %.1f on %d threads; read %.1f / %.1f / %.1f / "
               "%.1f GB/s from L1 / L2 / L3 / memory on one core (see Roofline) |\n\n",
            d->machine.peak_gflops[0], d->machine.peak_gflops[1], d->machine.threads, d->machine.read_gbps[0][0],
            d->machine.read_gbps[0][1], d->machine.read_gbps[0][2], d->machine.read_gbps[0][3]);

    fprintf(f, "## Summary\n\n| metric | value |\n|---|---:|\n");
    fprintf(f, "| prefill | %.1f tok/s |\n| decode | %.1f tok/s |\n", d->prefill_tps, d->decode_tps);
    fprintf(f, "| ms/token p50 / p90 / p99 | %.4f / %.4f / %.4f |\n", d->p50_ms, d->p90_ms, d->p99_ms);
    fprintf(f, "| time to first token | %.3f ms |\n", d->ttft_ms);
    fprintf(f, "| bytes allocated per generated token | %.0f |\n| allocations per generated token | %.2f |\n",
            d->bytes_per_token, d->allocs_per_token);
    fprintf(f, "| peak RSS | %.1f MiB |\n", (double)d->mem.peak_rss / 1048576.0);
    fprintf(f, "| weights | %.2f MiB %s, %.2f MiB resident |\n", (double)d->mem.weights_mapped / 1048576.0,
            d->mem.weights_read ? "read into memory (--no-mmap)" : "mapped", (double)d->mem.weights_resident / 1048576.0);
    if (d->mem.weights_interleaved)
        fprintf(f, "| weights interleaved for the 16-row kernels (heap) | %.2f MiB |\n",
                (double)d->mem.weights_interleaved / 1048576.0);
    fprintf(f, "| KV cache | %.2f MiB |\n| session arena (KV cache included) | %.2f MiB |\n",
            (double)d->mem.kv_cache / 1048576.0, (double)d->mem.arena / 1048576.0);
    fprintf(f, "| self times / generation wall time | %.1f %% |\n", d->coverage_pct);
    fprintf(f, "| profiling overhead | %.2f %% (decode %.1f tok/s profiled vs %.1f tok/s not, at the 10th percentile of per-token time over interleaved runs of one session) |\n\n",
            d->overhead_pct, d->decode_tps_profiled, d->decode_tps_plain);

    profile_write_sections(d->session, d->info.n_layers, f, PROFILE_HOT_PATHS | PROFILE_ALLOCATORS | PROFILE_MOST_CALLED);
    profile_write_sections(d->session, d->info.n_layers, f, PROFILE_TREE | PROFILE_LAYERS);

    fprintf(f, "## Insights\n\n");
    double total_self = 0;
    for (int k = 0; k < ns; k++) total_self += s[k].self_ms;
    if (ns >= 3 && total_self > 0)
        fprintf(f, "- **Where time goes:** %s %.1f %%, %s %.1f %%, %s %.1f %% of all self time.\n", s[0].name,
                100 * s[0].self_ms / total_self, s[1].name, 100 * s[1].self_ms / total_self, s[2].name,
                100 * s[2].self_ms / total_self);
    if (d->overhead_pct > 3.0) {
        int scopes_per_token = 0;
        for (int i = 0; i < d->n_rows; i++)
            if (!strcmp(d->rows[i].name, "token") || is_under(d, i, "token")) scopes_per_token += (int)d->rows[i].calls;
        scopes_per_token = d->n_generated ? scopes_per_token / d->n_generated : 0;
        fprintf(f, "- **Profiler cost:** each timed step costs about 25 ns (two clock reads and the bookkeeping); this "
                   "model's token takes %.1f us and %d steps are timed in it, so profiling adds %.1f %%. On larger "
                   "models (try --deep) it is below 1 %%.\n", d->p50_ms * 1e3, scopes_per_token, d->overhead_pct);
    }
    if (d->allocs_per_token == 0)
        fprintf(f, "- **Allocations in the token loop:** none — generating a token allocates 0 bytes.\n");
    else
        fprintf(f, "- **Allocations in the token loop:** %.2f allocations (%.0f bytes) per token — see Top allocators; "
                   "move them to session creation.\n", d->allocs_per_token, d->bytes_per_token);
    fprintf(f, "\n");
    roofline_write_markdown(f, d->roof, d->n_roof, &d->machine, d->n_measurements, base_name(d->roofline_path),
                            d->roof_robust > 0);
    const roof_step *first = roofline_first(d->roof, d->n_roof);
    double roof_self = 0;
    for (int k = 0; k < d->n_roof; k++) roof_self += d->roof[k].self_ms;
    int wrong = 0;
    for (int k = 0; k < d->n_roof; k++) wrong += d->roof[k].over_bw || d->roof[k].over_peak;
    if (wrong)
        fprintf(f, "- **%d step%s above %s ceiling:** a ceiling this machine's probe measured is lower than what "
                   "a step achieved, so that ceiling (or the level the step was judged against) is wrong; its "
                   "percentages are not efficiencies.\n", wrong, wrong > 1 ? "s are" : " is", wrong > 1 ? "their" : "its");
    if (first) roofline_write_advice(f, first, roof_self);
    fprintf(f, "\n");

    if (d->deep) {
        fprintf(f, "## Kernel micro-benchmarks\n\n| kernel | level | result |\n|---|---|---:|\n");
        for (int k = 0; k < d->n_kernels; k++)
            fprintf(f, "| %s | %s | %.2f %s |\n", d->kernels[k].name, d->kernels[k].level, d->kernels[k].value, d->kernels[k].unit);
        fprintf(f, "\nSIMD variants (AVX2, AVX-512, NEON) are benchmarked here once they exist; this build has: %s.\n\n",
                sm_kernel_level());
    }

    fprintf(f, "## Against the original engine\n\n");
    double ms_tok = d->decode_tps > 0 ? 1e3 / d->decode_tps : 0;
    fprintf(f, "The original C# engine, deep configuration: %.1f tok/s, %.1f MB allocated per token, %.0f ms/token. "
               "SmallMind here%s: %.1f tok/s (%.0fx), %.0f bytes allocated per token, %.3f ms/token.\n",
            ORIGINAL_TPS, ORIGINAL_MB_PER_TOKEN, ORIGINAL_MS_PER_TOKEN,
            d->deep && d->default_model ? " on the same configuration" : " (a different configuration: compare with --deep)",
            d->decode_tps, d->decode_tps / ORIGINAL_TPS, d->bytes_per_token, ms_tok);
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void write_json(const profile_data *d, FILE *f) {
    const sm_model_info *in = &d->info;
    fprintf(f, "{\n  \"model\": {\"path\": ");
    json_str(f, d->model_path);
    fprintf(f, ", \"arch\": ");
    json_str(f, in->arch);
    fprintf(f, ", \"vocab\": %d, \"context\": %d, \"dim\": %d, \"layers\": %d, \"heads\": %d, \"kv_heads\": %d, "
               "\"ffn\": %d, \"params\": %llu, \"weights_bytes\": %llu},\n",
            in->n_vocab, in->n_ctx_train, in->dim, in->n_layers, in->n_heads, in->n_kv_heads, in->ffn_dim,
            (unsigned long long)in->n_params, (unsigned long long)in->weights_bytes);
    fprintf(f, "  \"workload\": {\"inferences\": %d, \"tokens\": %d, \"prompt_tokens\": %d, \"deep\": %s},\n",
            d->n_inferences, d->n_tokens, d->prompt_len, d->deep ? "true" : "false");
    fprintf(f, "  \"system\": {\"simd\": ");
    json_str(f, sm_cpu_simd_features());
    fprintf(f, ", \"kernels\": ");
    json_str(f, sm_kernel_level());
    fprintf(f, ", \"compiler\": ");
    json_str(f, __VERSION__);
    fprintf(f, ", \"threads\": %d, \"peak_gflops\": %.3f, \"cache_gbps\": %.3f, \"dram_gbps\": %.3f},\n", d->threads,
            d->peak_gflops, d->bw_cache_gbps, d->bw_dram_gbps);
    fprintf(f, "  \"machine\": ");
    machine_write_json(f, &d->machine);
    fprintf(f, ",\n  \"roofline\": ");
    roofline_write_json(f, d->roof, d->n_roof);
    fprintf(f, ",\n  \"runs\": [");
    for (int k = 0; k < d->n_runs; k++) {
        const profile_run *r = &d->runs[k];
        fprintf(f, "%s\n    {\"wall_ms\": %.4f, \"generated\": %d, \"prefill_tps\": %.3f, \"decode_tps\": %.3f, "
                   "\"ms_per_token_p50\": %.5f, \"ms_per_token_p90\": %.5f, \"ms_per_token_p99\": %.5f, "
                   "\"allocations_per_token\": %.4f, \"bytes_per_token\": %.2f, \"self_ms\": {",
                k ? "," : "", r->wall_ms, r->n_generated, r->prefill_tps, r->decode_tps, r->p50_ms, r->p90_ms, r->p99_ms,
                r->allocs_per_token, r->bytes_per_token);
        for (int j = 0; j < d->n_step_names; j++) {
            fprintf(f, "%s", j ? ", " : "");
            json_str(f, d->step_names[j]);
            fprintf(f, ": %.6f", r->self_ms[j]);
        }
        fprintf(f, "}");
        for (int which = 0; which < 2 && r->has_robust; which++) {
            fprintf(f, ", \"%s\": {", which ? "self_ms_fastest" : "self_ms_robust");
            for (int j = 0; j < d->n_step_names; j++) {
                fprintf(f, "%s", j ? ", " : "");
                json_str(f, d->step_names[j]);
                fprintf(f, ": %.6f", which ? r->fastest_ms[j] : r->robust_ms[j]);
            }
            fprintf(f, "}");
        }
        fprintf(f, "}");
    }
    fprintf(f, "%s],\n", d->n_runs ? "\n  " : "");
    fprintf(f, "  \"summary\": {\"total_ms\": %.3f, \"generation_wall_ms\": %.3f, \"prefill_tps\": %.3f, "
               "\"decode_tps\": %.3f, \"ms_per_token_p50\": %.5f, \"ms_per_token_p90\": %.5f, \"ms_per_token_p99\": %.5f, "
               "\"ttft_ms\": %.4f, \"bytes_per_token\": %.1f, \"allocations_per_token\": %.3f, \"peak_rss_bytes\": %llu, "
               "\"weights_mapped_bytes\": %llu, \"weights_read\": %s, \"weights_resident_bytes\": %llu, \"weights_interleaved_bytes\": %llu, \"kv_cache_bytes\": %llu, "
               "\"arena_bytes\": %llu, \"self_time_coverage_pct\": %.3f, \"overhead_pct\": %.3f, "
               "\"decode_tps_unprofiled\": %.3f, \"total_allocations\": %llu},\n",
            d->total_ms, d->generation_wall_ms, d->prefill_tps, d->decode_tps, d->p50_ms, d->p90_ms, d->p99_ms, d->ttft_ms,
            d->bytes_per_token, d->allocs_per_token, (unsigned long long)d->mem.peak_rss,
            (unsigned long long)d->mem.weights_mapped, d->mem.weights_read ? "true" : "false",
            (unsigned long long)d->mem.weights_resident, (unsigned long long)d->mem.weights_interleaved, (unsigned long long)d->mem.kv_cache, (unsigned long long)d->mem.arena, d->coverage_pct, d->overhead_pct,
            d->decode_tps_plain, (unsigned long long)d->total_allocs);
    fprintf(f, "  \"scopes\": [\n");
    for (int i = 0; i < d->n_rows; i++) {
        const sm_profile_row *r = &d->rows[i];
        fprintf(f, "    {\"name\": ");
        json_str(f, r->name);
        fprintf(f, ", \"depth\": %d, \"parent\": %d, \"layer\": %d, \"calls\": %llu, \"incl_ms\": %.6f, \"self_ms\": %.6f, "
                   "\"min_ms\": %.6f, \"max_ms\": %.6f, \"flops\": %llu, \"bytes\": %llu, \"alloc_count\": %llu, "
                   "\"alloc_bytes\": %llu, \"tasks\": %llu}%s\n",
                r->depth, r->parent, r->layer, (unsigned long long)r->calls, r->incl_ms, r->self_ms, r->min_ms, r->max_ms,
                (unsigned long long)r->flops, (unsigned long long)r->bytes, (unsigned long long)r->alloc_count,
                (unsigned long long)r->alloc_bytes, d->steps ? (unsigned long long)d->steps[i].tasks : 0ull,
                i + 1 < d->n_rows ? "," : "");
    }
    fprintf(f, "  ],\n  \"kernels\": [");
    for (int k = 0; k < d->n_kernels; k++) {
        fprintf(f, "%s\n    {\"name\": ", k ? "," : "");
        json_str(f, d->kernels[k].name);
        fprintf(f, ", \"level\": ");
        json_str(f, d->kernels[k].level);
        fprintf(f, ", \"value\": %.4f, \"unit\": ", d->kernels[k].value);
        json_str(f, d->kernels[k].unit);
        fprintf(f, "}");
    }
    fprintf(f, "%s]\n}\n", d->n_kernels ? "\n  " : "");
}

static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

static void write_svg(const profile_data *d, FILE *f) {
    step s[64];
    int ns = steps_by_self(d, s);
    if (ns > 16) ns = 16;
    double max = ns ? s[0].self_ms : 1, total = 0;
    for (int i = 0; i < d->n_rows; i++)
        if (strcmp(d->rows[i].name, "load")) total += d->rows[i].self_ms;
    if (max <= 0) max = 1;
    int w = 900, row = 26, top = 50, h = top + ns * row + 30;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"sans-serif\" font-size=\"13\">\n", w, h, w, h);
    fprintf(f, "  <rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "  <text x=\"10\" y=\"24\" font-size=\"16\" font-weight=\"bold\">SmallMind hot paths: self time per step (%.1f ms in all)</text>\n", total);
    for (int k = 0; k < ns; k++) {
        double bw = (w - 420) * s[k].self_ms / max;
        int y = top + k * row;
        fprintf(f, "  <text x=\"200\" y=\"%d\" text-anchor=\"end\">", y + 16);
        xml_text(f, s[k].name);
        fprintf(f, "</text>\n  <rect x=\"210\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", y + 3, bw, row - 6,
                k < 3 ? "#d9534f" : "#5b8def");
        fprintf(f, "  <text x=\"%.1f\" y=\"%d\">%.3f ms (%.1f%%), %llu calls</text>\n", 216 + bw, y + 16, s[k].self_ms,
                total > 0 ? 100 * s[k].self_ms / total : 0, (unsigned long long)s[k].calls);
    }
    fprintf(f, "</svg>\n");
}

/* The report is composed in memory, then written as every SmallMind file
 * is (sm_output_*): a regular file only, atomically, every write checked. */
static int write_file(const char *path, void (*fn)(profile_data *, FILE *), profile_data *d, sm_error *err) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        err->status = SM_ERR_NOMEM;
        snprintf(err->message, sizeof err->message, "out of memory composing '%s'", path);
        return -1;
    }
    fn(d, f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(text);
        err->status = SM_ERR_NOMEM;
        snprintf(err->message, sizeof err->message, "out of memory composing '%s'", path);
        return -1;
    }
    sm_output *o;
    sm_status st = sm_output_open(path, &o, err);
    if (!st && (st = sm_output_write(o, text, len, err))) sm_output_discard(o);
    else if (!st) st = sm_output_commit(o, err);
    free(text);
    return st ? -1 : 0;
}

static void md(profile_data *d, FILE *f) { write_markdown(d, f); }
static void roof(profile_data *d, FILE *f) {
    char title[160];
    snprintf(title, sizeof title, "SmallMind roofline: %s, %d thread%s", d->info.arch, d->threads, d->threads > 1 ? "s" : "");
    roofline_write_svg(f, d->roof, d->n_roof, &d->machine, title);
}
static void js(profile_data *d, FILE *f) { write_json(d, f); }
static void sv(profile_data *d, FILE *f) { write_svg(d, f); }

int profile_report_write(profile_data *d, sm_error *err) {
    derive(d);
    if (write_file(d->out_path, md, d, err)) return -1;
    if (d->roofline_path[0] && write_file(d->roofline_path, roof, d, err)) return -1;
    if (d->json_path && write_file(d->json_path, js, d, err)) return -1;
    if (d->svg_path && write_file(d->svg_path, sv, d, err)) return -1;
    return 0;
}

/* profile_roofline.c - judging each profiled step against the machine's
 * measured ceilings (sm_measure_machine), as a table, an SVG chart and the
 * "optimise first" advice. The roofline model is Williams, Waterman and
 * Patterson's: a step that does I FLOPs per byte it reads cannot run
 * faster than min(peak, I x bandwidth); it is compute bound when I is above
 * the ridge peak / bandwidth, else memory bound.
 *
 * Which bandwidth: the level the step's data comes from. Weights and the KV
 * cache are read again only in the next pass (the next token, the next
 * prompt batch, the next training step), after everything else that pass
 * reads, so they come from the smallest level that holds the pass's
 * footprint (the bytes of weights and cache it reads); a step whose work is
 * split over the threads (it handed tasks to the pool) reads 1/threads of it
 * per core, which counts for the private L1 and L2, while L3 is shared.
 * Activations were written by the step before: they come from the level
 * their own size fits. Pooled steps are judged against the all-threads
 * ceilings, the others against one core's. A step above its ceiling is
 * reported as such, with the ceiling called wrong, never as a plain
 * percentage over 100. */
#include "profile_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const roofline_level_names[SM_MEM_LEVELS] = {"L1", "L2", "L3", "DRAM"};

/* The pass a row runs in (its nearest ancestor that is one), or -1. */
static int pass_of(const sm_profile_step *rows, int i) {
    for (int r = rows[i].row.parent; r >= 0; r = rows[r].row.parent)
        if (rows[r].pass) return r;
    return -1;
}

static int layer_of(const sm_profile_step *rows, int i) {
    for (int r = rows[i].row.parent; r >= 0; r = rows[r].row.parent)
        if (rows[r].row.layer >= 0 && !strcmp(rows[r].row.name, "layer")) return r;
    return -1;
}

static int reread(const sm_profile_step *s) { return s->kind == SM_STEP_WEIGHTS || s->kind == SM_STEP_KV_CACHE; }

static const char *phase_name(const char *pass) {
    if (!pass) return "";
    if (!strcmp(pass, "token")) return "decode";
    return pass;
}

int roofline_build(const sm_profile_step *rows, int n, const sm_machine *m, int threads, roof_step *out, int cap) {
    /* bytes of weights and cache per call of each pass and of each layer */
    double *per_pass = calloc((size_t)n + 1, sizeof *per_pass), *per_layer = calloc((size_t)n + 1, sizeof *per_layer);
    if (!per_pass || !per_layer) {
        free(per_pass);
        free(per_layer);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        if (!reread(&rows[i]) || !rows[i].row.calls) continue;
        int p = pass_of(rows, i), l = layer_of(rows, i);
        if (p >= 0 && rows[p].row.calls) per_pass[p] += (double)rows[i].row.bytes / (double)rows[p].row.calls;
        if (l >= 0 && rows[l].row.calls) per_layer[l] += (double)rows[i].row.bytes / (double)rows[l].row.calls;
    }
    int ns = 0;
    for (int i = 0; i < n; i++) {
        const sm_profile_step *s = &rows[i];
        if (s->kind == SM_STEP_GROUP || !s->row.calls || (!s->row.flops && !s->row.bytes)) continue;
        int p = pass_of(rows, i), l = layer_of(rows, i);
        const char *phase = phase_name(p >= 0 ? rows[p].row.name : NULL);
        int k = 0;
        while (k < ns && (strcmp(out[k].name, s->row.name) || strcmp(out[k].phase, phase))) k++;
        if (k == ns) {
            if (ns == cap) continue;
            memset(&out[ns], 0, sizeof out[ns]);
            out[ns].name = s->row.name;
            out[ns].phase = phase;
            out[ns].kind = s->kind;
            out[ns].fma = s->fma;
            out[ns].int8 = s->int8 && s->fma;
            out[ns].bf16 = s->bf16 && s->fma;
            ns++;
        }
        roof_step *r = &out[k];
        r->calls += s->row.calls;
        r->flops += s->row.flops;
        r->bytes += s->row.bytes;
        r->tasks += s->tasks;
        r->self_ms += s->row.self_ms;
        if (p >= 0 && per_pass[p] > r->footprint) r->footprint = per_pass[p];
        if (l >= 0 && per_layer[l] > r->per_layer) r->per_layer = per_layer[l];
    }
    free(per_pass);
    free(per_layer);
    for (int k = 0; k < ns; k++) {
        roof_step *r = &out[k];
        r->pooled = threads > 1 && 2 * r->tasks >= r->calls;
        r->threads = r->pooled ? threads : 1;
        r->per_call = (double)r->bytes / (double)r->calls;
        r->working_set = r->kind == SM_STEP_ACTIVATIONS ? r->per_call : fmax(r->per_call, r->footprint);
        double priv = r->working_set / r->threads;
        if (priv <= (double)m->cache_bytes[0]) r->level = SM_MEM_L1;
        else if (m->cache_bytes[1] && priv <= (double)m->cache_bytes[1]) r->level = SM_MEM_L2;
        else if (m->cache_bytes[2] && r->working_set <= (double)m->cache_bytes[2]) r->level = SM_MEM_L3;
        else r->level = SM_MEM_DRAM;
        double sec = r->self_ms * 1e-3;
        r->gflops = sec > 0 ? (double)r->flops / sec * 1e-9 : 0;
        r->gbps = sec > 0 ? (double)r->bytes / sec * 1e-9 : 0;
        r->ceil_gbps = m->read_gbps[r->pooled][r->level];
        /* integer and BF16 dots are bounded by their own peak where it was measured */
        if (r->int8 && !(m->peak_int8_gops[r->pooled] > 0)) r->int8 = 0;
        if (r->bf16 && !(m->peak_bf16_gflops[r->pooled] > 0)) r->bf16 = 0;
        r->ceil_gflops = r->int8   ? m->peak_int8_gops[r->pooled]
                         : r->bf16 ? m->peak_bf16_gflops[r->pooled]
                                   : m->peak_gflops[r->pooled];
        r->intensity = r->bytes ? (double)r->flops / (double)r->bytes : INFINITY;
        r->ridge = r->ceil_gbps > 0 ? r->ceil_gflops / r->ceil_gbps : 0;
        r->pct_bw = r->ceil_gbps > 0 ? 100.0 * r->gbps / r->ceil_gbps : 0;
        r->pct_peak = r->fma && r->ceil_gflops > 0 ? 100.0 * r->gflops / r->ceil_gflops : 0;
        r->compute_bound = r->intensity >= r->ridge;
        r->over_bw = r->pct_bw > 100.0;
        r->over_peak = r->pct_peak > 100.0;
    }
    /* by self time, descending */
    for (int i = 1; i < ns; i++) {
        roof_step x = out[i];
        int j = i;
        while (j > 0 && out[j - 1].self_ms < x.self_ms) { out[j] = out[j - 1]; j--; }
        out[j] = x;
    }
    return ns;
}

static void mib(FILE *f, double bytes) {
    if (bytes >= 1048576.0) fprintf(f, "%.2f MiB", bytes / 1048576.0);
    else if (bytes >= 1024.0) fprintf(f, "%.1f KiB", bytes / 1024.0);
    else fprintf(f, "%.0f B", bytes);
}

/* the peak a step is judged against */
static const char *peak_name(const roof_step *r) { return r->int8 ? "int8" : r->bf16 ? "BF16" : "FMA"; }

static const char *label(const roof_step *r, char *buf, size_t cap) {
    if (r->phase[0]) snprintf(buf, cap, "%s (%s)", r->name, r->phase);
    else snprintf(buf, cap, "%s", r->name);
    return buf;
}

void roofline_write_machine(FILE *f, const sm_machine *m, int count) {
    fprintf(f, "| ceiling | one core | %d threads |\n|---|---:|---:|\n", m->threads);
    fprintf(f, "| FP32 FMA peak | %.1f GFLOP/s | %.1f GFLOP/s |\n", m->peak_gflops[0], m->peak_gflops[1]);
    if (m->peak_int8_gops[0] > 0)
        fprintf(f, "| int8 dot peak (VNNI) | %.1f GOP/s | %.1f GOP/s |\n", m->peak_int8_gops[0], m->peak_int8_gops[1]);
    if (m->peak_bf16_gflops[0] > 0)
        fprintf(f, "| BF16 dot peak (AVX512_BF16) | %.1f GFLOP/s | %.1f GFLOP/s |\n", m->peak_bf16_gflops[0],
                m->peak_bf16_gflops[1]);
    for (int l = 0; l < SM_MEM_LEVELS; l++) {
        fprintf(f, "| read from %s (", roofline_level_names[l]);
        if (l < 3) {
            mib(f, (double)m->cache_bytes[l]);
            fprintf(f, "; probe ");
        }
        mib(f, (double)m->probe_bytes[0][l]);
        fprintf(f, " per thread) | %.1f GB/s | %.1f GB/s |\n", m->read_gbps[0][l], m->read_gbps[1][l]);
    }
    fprintf(f, "\nCache sizes from %s. Each figure is the 98th percentile of 240 short samples (a few hundred "
               "for the peak); measured %d time%s in %.2f s, the higher figures kept (on a shared machine "
               "interference only ever lowers one).\n\n", m->cache_source, count,
            count > 1 ? "s" : "", m->seconds);
}

void roofline_write_markdown(FILE *f, const roof_step *s, int n, const sm_machine *m, int count, const char *svg_name,
                             int median_calls) {
    fprintf(f, "## Roofline\n\nEach step against the ceiling of the level its data comes from. Weights and the KV "
               "cache are read again only in the next pass, after everything else the pass reads (its footprint), "
               "so they come from the smallest level that holds the footprint (per thread for the private L1 and "
               "L2 when the step splits its work over the threads); activations come from the level their size per "
               "call fits. Steps that hand work to the thread pool are judged against the all-threads ceilings, "
               "the others against one core's. Compute is judged only for multiply-adds (products, attention), "
               "which the FMA peak bounds, or the int8 dot peak where a product ran as 8-bit integer dots "
               "(quantized weights against the input quantized to 8 bits: marked int8), or the BF16 dot peak where "
               "it ran as BF16 dots (training's mixed precision: marked BF16).%s\n\n",
            median_calls ? " A step's time here is its calls times its median call (from the timeline), so that "
                           "calls the scheduler interrupted do not lower its rates." : "");
    roofline_write_machine(f, m, count);
    if (svg_name) fprintf(f, "![roofline](%s)\n\n", svg_name);
    fprintf(f, "| step | threads | per call | per layer | per pass | level | GB/s | of ceiling | GFLOP/s | of FMA peak "
               "| FLOP/byte | ridge | bound |\n|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|\n");
    for (int k = 0; k < n; k++) {
        const roof_step *r = &s[k];
        char name[128];
        fprintf(f, "| %s | %d | ", label(r, name, sizeof name), r->threads);
        mib(f, r->per_call);
        fprintf(f, " | ");
        if (r->per_layer > 0) mib(f, r->per_layer); else fputs("-", f);
        fprintf(f, " | ");
        if (r->footprint > 0) mib(f, r->footprint); else fputs("-", f);
        fprintf(f, " | %s | %.2f / %.1f | ", roofline_level_names[r->level], r->gbps, r->ceil_gbps);
        if (r->over_bw) fprintf(f, "**above: %.0f %% — the %s ceiling is wrong** | ", r->pct_bw, roofline_level_names[r->level]);
        else fprintf(f, "%.1f %% | ", r->pct_bw);
        fprintf(f, "%.2f | ", r->gflops);
        if (!r->fma) fprintf(f, "- (not multiply-adds) | ");
        else if (r->over_peak) fprintf(f, "**above: %.0f %% — the %s peak is wrong** | ", r->pct_peak, peak_name(r));
        else fprintf(f, "%.1f %% of %.1f%s%s | ", r->pct_peak, r->ceil_gflops, r->int8 || r->bf16 ? " " : "",
                     r->int8 || r->bf16 ? peak_name(r) : "");
        if (isinf(r->intensity)) fprintf(f, "- | %.2f | compute |\n", r->ridge);
        else fprintf(f, "%.3f | %.2f | %s |\n", r->intensity, r->ridge, r->compute_bound ? "compute" : "memory");
    }
    fprintf(f, "\n");
}

const roof_step *roofline_first(const roof_step *s, int n) {
    for (int k = 0; k < n; k++)
        if (s[k].self_ms > 0) return &s[k];
    return NULL;
}

void roofline_write_advice(FILE *f, const roof_step *r, double total_self_ms) {
    char name[128];
    label(r, name, sizeof name);
    double share = total_self_ms > 0 ? 100.0 * r->self_ms / total_self_ms : 0;
    if (r->compute_bound) {
        fprintf(f, "- **Optimise first:** %s (%.1f %% of self time) is **compute bound**: %.2f FLOP/byte is above the "
                   "ridge (%.2f) of the %s ceiling it reads from, and it reaches %.2f GFLOP/s of the %.1f GFLOP/s "
                   "%s peak of %d thread%s (%.0f %%). The lever is the arithmetic: wider SIMD, register blocking, "
                   "more threads.\n",
                name, share, r->intensity, r->ridge, roofline_level_names[r->level], r->gflops, r->ceil_gflops,
                r->int8 ? "int8 dot" : r->bf16 ? "BF16 dot" : "FMA", r->threads, r->threads > 1 ? "s" : "", r->pct_peak);
    } else {
        fprintf(f, "- **Optimise first:** %s (%.1f %% of self time) is **memory bound**: %.3f FLOP/byte is below the "
                   "ridge (%.2f) of the %s ceiling its data comes from, and it moves %.2f GB/s of the %.1f GB/s "
                   "%s gives %d thread%s (%.0f %%). The lever is bytes: smaller weight types (F16, Q8_0, Q4_0), "
                   "fused steps, more tokens per pass over the weights%s.\n",
                name, share, r->intensity, r->ridge, roofline_level_names[r->level], r->gbps, r->ceil_gbps,
                roofline_level_names[r->level], r->threads, r->threads > 1 ? "s" : "", r->pct_bw,
                r->pct_bw < 50 ? "; at this share of the ceiling the kernel itself comes first (prefetching, "
                                 "more threads)" : "");
    }
}

/* ------------------------------------------------------------ the chart */

#define RW 900
#define RH 560
#define RL 70      /* plot area */
#define RR 230
#define RT 50
#define RB 60

typedef struct axes {
    double x0, x1, y0, y1;   /* log10 ranges */
} axes;

static double px(const axes *a, double x) { return RL + (log10(x) - a->x0) / (a->x1 - a->x0) * (RW - RL - RR); }
static double py(const axes *a, double y) { return RH - RB - (log10(y) - a->y0) / (a->y1 - a->y0) * (RH - RT - RB); }

static const char *const phase_colours[] = {"#d9534f", "#5b8def", "#3c9a5f", "#9b59b6", "#e67e22", "#555555"};

void roofline_write_svg(FILE *f, const roof_step *s, int n, const sm_machine *m, const char *title) {
    axes a = {1e300, -1e300, 1e300, -1e300};
    for (int k = 0; k < n; k++) {
        if (s[k].flops == 0 || s[k].bytes == 0 || s[k].gflops <= 0) continue;
        a.x0 = fmin(a.x0, log10(s[k].intensity));
        a.x1 = fmax(a.x1, log10(s[k].intensity));
        a.y0 = fmin(a.y0, log10(s[k].gflops));
    }
    double top = fmax(m->peak_gflops[0], m->peak_gflops[1]);
    for (int t = 0; t < 2; t++)
        for (int l = 0; l < SM_MEM_LEVELS; l++)
            if (m->read_gbps[t][l] > 0) {
                double ridge = m->peak_gflops[t] / m->read_gbps[t][l];
                a.x0 = fmin(a.x0, log10(ridge));
                a.x1 = fmax(a.x1, log10(ridge));
            }
    if (a.x0 > a.x1) { a.x0 = -2; a.x1 = 2; }
    if (a.y0 > 1e299) a.y0 = log10(top) - 3;
    a.x0 = floor(a.x0 - 0.3);
    a.x1 = ceil(a.x1 + 0.3);
    a.y0 = floor(fmin(a.y0, log10(top) - 2) - 0.2);
    a.y1 = ceil(log10(top) + 0.3);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
               "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", RW, RH, RW, RH);
    fprintf(f, "<text x=\"%d\" y=\"24\" font-size=\"15\" font-weight=\"bold\">", RL);
    for (const char *c = title ? title : "roofline"; *c; c++) {
        if (*c == '<') fputs("&lt;", f); else if (*c == '&') fputs("&amp;", f); else if (*c == '>') fputs("&gt;", f);
        else fputc(*c, f);
    }
    fprintf(f, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n", RL, RT,
            RW - RL - RR, RH - RT - RB);
    /* decade grid and labels */
    for (int e = (int)a.x0; e <= (int)a.x1; e++) {
        double x = px(&a, pow(10, e));
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eee\"/><text x=\"%.1f\" y=\"%d\" "
                   "text-anchor=\"middle\">%g</text>\n", x, RT, x, RH - RB, x, RH - RB + 16, pow(10, e));
    }
    for (int e = (int)a.y0; e <= (int)a.y1; e++) {
        double y = py(&a, pow(10, e));
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/><text x=\"%d\" y=\"%.1f\" "
                   "text-anchor=\"end\">%g</text>\n", RL, y, RW - RR, y, RL - 6, y + 4, pow(10, e));
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">arithmetic intensity (FLOP per byte read)</text>\n",
            (RL + RW - RR) / 2, RH - 22);
    fprintf(f, "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">GFLOP/s</text>\n",
            (RT + RH - RB) / 2, (RT + RH - RB) / 2);
    /* ceilings: the bandwidth slopes up to the ridge, then the peak */
    double xmin = pow(10, a.x0), xmax = pow(10, a.x1);
    for (int t = 0; t < 2; t++) {
        const char *dash = t ? "" : " stroke-dasharray=\"5,4\"";
        for (int l = 0; l < SM_MEM_LEVELS; l++) {
            double bw = m->read_gbps[t][l];
            if (bw <= 0) continue;
            /* from where the slope enters the plot to the ridge */
            double ridge = m->peak_gflops[t] / bw, xs = fmax(xmin, pow(10, a.y0) / bw);
            if (ridge <= xs) continue;
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"%s/>\n", px(&a, xs),
                    py(&a, bw * xs), px(&a, ridge), py(&a, m->peak_gflops[t]), dash);
        }
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" stroke-width=\"1.5\"%s/>\n",
                px(&a, xmin), py(&a, m->peak_gflops[t]), px(&a, xmax), py(&a, m->peak_gflops[t]), dash);
    }
    /* ceiling labels at the right */
    int ly = RT + 10;
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">ceilings (dashed: one core; solid: %d threads)</text>\n",
            RW - RR + 10, ly, m->threads);
    ly += 16;
    fprintf(f, "<text x=\"%d\" y=\"%d\">FMA peak %.1f / %.1f GFLOP/s</text>\n", RW - RR + 10, ly, m->peak_gflops[0],
            m->peak_gflops[1]);
    for (int l = 0; l < SM_MEM_LEVELS; l++) {
        ly += 14;
        fprintf(f, "<text x=\"%d\" y=\"%d\">%s %.1f / %.1f GB/s</text>\n", RW - RR + 10, ly, roofline_level_names[l],
                m->read_gbps[0][l], m->read_gbps[1][l]);
    }
    /* the steps */
    const char *phases[6];
    int np = 0;
    ly += 24;
    for (int k = 0; k < n; k++) {
        const roof_step *r = &s[k];
        if (r->flops == 0 || r->bytes == 0 || r->gflops <= 0) continue;
        int c = 0;
        while (c < np && strcmp(phases[c], r->phase)) c++;
        if (c == np && np < 6) {
            phases[np++] = r->phase;
            fprintf(f, "<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text>\n",
                    RW - RR + 14, ly - 4, phase_colours[c], RW - RR + 24, ly, r->phase[0] ? r->phase : "other");
            ly += 14;
        }
        if (c >= 6) c = 5;
        double x = px(&a, r->intensity), y = py(&a, r->gflops);
        char name[128];
        fprintf(f, "<g><title>%s: %.3f FLOP/B, %.2f GFLOP/s, %.2f GB/s (%s, %.0f %% of its ceiling)</title>",
                label(r, name, sizeof name), r->intensity, r->gflops, r->gbps, roofline_level_names[r->level],
                r->pct_bw);
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\" font-size=\"9\">%s"
                   "</text></g>\n", x, y, phase_colours[c], x + 6, y - 4, r->name);
    }
    fprintf(f, "</svg>\n");
}

void roofline_write_json(FILE *f, const roof_step *s, int n) {
    fprintf(f, "[");
    for (int k = 0; k < n; k++) {
        const roof_step *r = &s[k];
        fprintf(f, "%s\n    {\"step\": \"%s\", \"phase\": \"%s\", \"calls\": %llu, \"self_ms\": %.6f, \"flops\": %llu, "
                   "\"bytes\": %llu, \"threads\": %d, \"bytes_per_call\": %.0f, \"bytes_per_layer\": %.0f, "
                   "\"bytes_per_pass\": %.0f, \"level\": \"%s\", \"gbps\": %.4f, \"ceiling_gbps\": %.4f, "
                   "\"pct_of_bandwidth\": %.3f, \"gflops\": %.4f, \"fma\": %s, \"int8\": %s, \"bf16\": %s, "
                   "\"ceiling_gflops\": %.4f, \"pct_of_peak\": %.3f, \"intensity\": %.6g, \"ridge\": %.6g, \"bound\": \"%s\", "
                   "\"ceiling_wrong\": %s}",
                k ? "," : "", r->name, r->phase, (unsigned long long)r->calls, r->self_ms, (unsigned long long)r->flops,
                (unsigned long long)r->bytes, r->threads, r->per_call, r->per_layer, r->footprint,
                roofline_level_names[r->level], r->gbps, r->ceil_gbps, r->pct_bw, r->gflops, r->fma ? "true" : "false",
                r->int8 ? "true" : "false", r->bf16 ? "true" : "false", r->ceil_gflops, r->pct_peak,
                isinf(r->intensity) ? 1e30 : r->intensity, r->ridge,
                r->compute_bound ? "compute" : "memory", r->over_bw || r->over_peak ? "true" : "false");
    }
    fprintf(f, "%s]", n ? "\n  " : "");
}

void machine_write_json(FILE *f, const sm_machine *m) {
    fprintf(f, "{\"threads\": %d, \"cache_bytes\": [%zu, %zu, %zu], \"cache_source\": \"%s\", "
               "\"peak_gflops\": [%.3f, %.3f], \"peak_int8_gops\": [%.3f, %.3f], \"peak_bf16_gflops\": [%.3f, %.3f], "
               "\"read_gbps\": {", m->threads, m->cache_bytes[0], m->cache_bytes[1], m->cache_bytes[2],
            m->cache_source, m->peak_gflops[0], m->peak_gflops[1], m->peak_int8_gops[0], m->peak_int8_gops[1],
            m->peak_bf16_gflops[0], m->peak_bf16_gflops[1]);
    for (int l = 0; l < SM_MEM_LEVELS; l++)
        fprintf(f, "%s\"%s\": [%.3f, %.3f]", l ? ", " : "", roofline_level_names[l], m->read_gbps[0][l],
                m->read_gbps[1][l]);
    fprintf(f, "}, \"probe_bytes\": {");
    for (int l = 0; l < SM_MEM_LEVELS; l++)
        fprintf(f, "%s\"%s\": [%zu, %zu]", l ? ", " : "", roofline_level_names[l], m->probe_bytes[0][l],
                m->probe_bytes[1][l]);
    fprintf(f, "}, \"seconds\": %.3f}", m->seconds);
}

int cli_measure_machine(int threads, sm_machine *m, int *count, sm_error *err) {
    sm_machine now;
    if (sm_measure_machine(threads, &now, err) != SM_OK) return 0;
    if ((*count)++ == 0) {
        *m = now;
        return 1;
    }
    for (int t = 0; t < 2; t++) {
        m->peak_gflops[t] = fmax(m->peak_gflops[t], now.peak_gflops[t]);
        m->peak_int8_gops[t] = fmax(m->peak_int8_gops[t], now.peak_int8_gops[t]);
        m->peak_bf16_gflops[t] = fmax(m->peak_bf16_gflops[t], now.peak_bf16_gflops[t]);
        for (int l = 0; l < SM_MEM_LEVELS; l++) m->read_gbps[t][l] = fmax(m->read_gbps[t][l], now.read_gbps[t][l]);
    }
    m->seconds += now.seconds;
    return 1;
}

/* cmd_profile.c - `smallmind profile`: runs a model with every step timed
 * and writes the report (markdown with a roofline chart, optionally JSON, a
 * hot-path SVG, a Chrome trace, folded stacks and a flame graph), or
 * compares two reports (--compare). Without -m it builds the original
 * tool's models (GPT-2 style, random weights, seed 42). The report itself
 * is written by profile_report.c, the comparison by profile_compare.c. */
#include "args.h"
#include "commands.h"
#include "profile_report.h"
#ifdef SM_HAVE_JANSSON
#include "json/profile_read.h"
#endif

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <time.h>

static uint64_t sm_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void profile_usage(void) {
    printf("usage: smallmind profile [OUT.md] [N_INFERENCES=3] [TOKENS=50] [--deep] [-m MODEL] [-z TOKENIZER]\n"
           "                         [-t N] [--prompt N] [-ctk T] [-ctv T] [--no-mmap] [--json OUT.json] [--svg OUT.svg]\n"
           "                         [--trace OUT.json] [--folded OUT.txt] [--flame OUT.svg] [--baseline BASE.json]\n"
           "       smallmind profile --compare BASE.json[,BASE2.json...] NEW.json[,NEW2.json...]\n"
           "\n"
           "Generates TOKENS tokens N_INFERENCES times with every step of the forward pass\n"
           "timed, and writes a report: hot paths, allocations, call hierarchy, per-layer\n"
           "times, a roofline (each step's GB/s and GFLOP/s against the measured ceiling of\n"
           "the cache level its data comes from, and the FMA peak; chart in OUT.roofline.svg)\n"
           "and what to optimise first. OUT.md defaults to profile.md.\n"
           "\n"
           "  --prompt N   a prompt of N tokens (default: 10, 32 with --deep, 16 with -m)\n"
           "  --no-mmap    read the model into memory (huge pages) instead of mapping it\n"
           "  --trace F    a timeline of the reported runs, every thread (Chrome trace-event\n"
           "               JSON: open it in Perfetto or chrome://tracing)\n"
           "  --folded F   folded stacks (self microseconds) for flamegraph.pl, inferno, speedscope\n"
           "  --flame F    a flame graph (SVG) of the same\n"
           "  --compare BASE.json NEW.json   compares two --json reports: per step and overall,\n"
           "               faster, slower or within noise (the noise measured from the runs; use\n"
           "               N_INFERENCES >= 7). Either side may be several reports separated by\n"
           "               commas, their runs pooled (take them in turns with the other build's)\n"
           "  --baseline BASE.json           the same comparison, of this run, in the report\n"
           "\n"
           "Without -m it profiles the original tool's models, built with random weights\n"
           "(seed 42), GPT-2 style with an untied head:\n"
           "  standard  vocab 256, context 64, dim 128, 2 layers, 4 heads, a 10-token prompt\n"
           "  --deep    vocab 512, context 128, dim 256, 4 layers, 8 heads, a 32-token prompt;\n"
           "            also runs kernel micro-benchmarks\n"
           "  --json F  the same data as JSON;  --svg F  a chart of the hot paths (linked from the report)\n");
}

typedef struct timing_cb {
    uint64_t last_ns;
    double *lat_ms;
    int n_lat, cap;
} timing_cb;

static int on_token(void *user, sm_token token, const char *text, size_t len) {
    timing_cb *t = user;
    if (token < 0) return 0;
    uint64_t now = sm_now_ns();
    if (t->last_ns && t->n_lat < t->cap) t->lat_ms[t->n_lat++] = (double)(now - t->last_ns) * 1e-6;
    t->last_ns = now;
    return 0;
}

/* One generation from the given prompt ids; returns its wall seconds. */
static double run_once(sm_session *s, const sm_token *prompt, int n_prompt, int n_tokens, timing_cb *cb,
                       sm_generate_stats *st, sm_error *err, int *ok) {
    sm_session_reset(s);
    sm_generate_params gp = sm_generate_default_params();
    gp.n_predict = n_tokens;
    gp.sampler.temperature = 0.0f;
    gp.ignore_eos = 1;
    gp.prompt_tokens = prompt;
    gp.n_prompt_tokens = n_prompt;
    if (cb) cb->last_ns = 0;
    uint64_t t0 = sm_now_ns();
    *ok = sm_generate(s, NULL, &gp, cb ? on_token : NULL, cb, st, err) == SM_OK;
    return (double)(sm_now_ns() - t0) * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *sorted, int n, double p) {
    if (n == 0) return 0.0;
    int i = (int)ceil(p / 100.0 * n) - 1;
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    return sorted[i];
}

#define PROMPT_MAX 1024
#define MAX_SIDE 64       /* reports pooled on one side of a comparison */
#define TRACE_EVENTS (1u << 18)   /* per thread: 8 MiB each */

/* OUT.md -> OUT.roofline.svg; 0 when it does not fit (never cut short). */
static int roofline_path(const char *out, char *buf, size_t cap) {
    size_t n = strlen(out);
    if (n > 3 && !strcmp(out + n - 3, ".md")) n -= 3;
    int w = snprintf(buf, cap, "%.*s.roofline.svg", (int)n, out);
    return w >= 0 && (size_t)w < cap;
}

/* What a run adds to the cumulative accounts: self time per step name and
 * the allocations in the token loop. */
typedef struct run_totals {
    double self_ms[PROFILE_MAX_STEPS];
    uint64_t tok_allocs, tok_bytes, calls;
} run_totals;

static int under_token(const sm_profile_row *rows, int i) {
    for (int r = i; r >= 0; r = rows[r].parent)
        if (!strcmp(rows[r].name, "token")) return 1;
    return 0;
}

static int take_totals(const sm_session *s, profile_data *d, run_totals *t) {
    int n = sm_session_profile(s, NULL, 0);
    sm_profile_row *rows = calloc((size_t)n + 1, sizeof *rows);
    if (!rows) return 0;
    sm_session_profile(s, rows, n);
    memset(t, 0, sizeof *t);
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < d->n_step_names && strcmp(d->step_names[k], rows[i].name)) k++;
        if (k == d->n_step_names) {
            if (k == PROFILE_MAX_STEPS) continue;
            d->step_names[d->n_step_names++] = rows[i].name;
        }
        t->self_ms[k] += rows[i].self_ms;
        t->calls += rows[i].calls;
        if (under_token(rows, i)) {
            t->tok_allocs += rows[i].alloc_count;
            t->tok_bytes += rows[i].alloc_bytes;
        }
    }
    free(rows);
    return 1;
}

static int write_trace(const char *cmd, const sm_session *s, const char *path) {
    sm_output *o;
    FILE *f = cli_output_open(cmd, path, &o);
    if (!f) return -1;
    sm_trace_write_params wp = sm_trace_write_default_params();
    wp.process_name = "smallmind profile";
    sm_error err = {0};
    if (sm_session_trace_write(s, f, &wp, &err) != SM_OK) {
        sm_output_discard(o);
        cli_error(cmd, "cannot write '%s': %s", path, err.message);
        return -1;
    }
    return cli_output_close(cmd, o);
}

#ifdef SM_HAVE_JANSSON
static int load_report(const char *cmd, const char *path, sm_json_profile *p) {
    size_t len;
    char *text = read_text_file(cmd, path, 256u << 20, &len);
    if (!text) return 0;
    sm_error err = {0};
    sm_status st = sm_json_profile_parse(text, len, path, p, &err);
    free(text);
    if (st != SM_OK) {
        cli_error(cmd, "%s", err.message);
        return 0;
    }
    return 1;
}

/* One side of a comparison: a report, or several separated by commas,
 * their runs pooled. parts holds the reports read (free them after out). */
typedef struct side {
    sm_json_profile parts[MAX_SIDE];
    int n;
    sm_json_profile all;
} side;

static void side_free(side *s) {
    sm_json_profile_free(&s->all);
    for (int i = 0; i < s->n; i++) sm_json_profile_free(&s->parts[i]);
    s->n = 0;
}

static int load_side(const char *cmd, const char *list, side *s) {
    memset(s, 0, sizeof *s);
    char *copy = strdup(list);
    if (!copy) return 0;
    int ok = 1;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && ok; tok = strtok_r(NULL, ",", &save)) {
        if (s->n == MAX_SIDE) {
            cli_error(cmd, "at most %d reports on one side of a comparison", MAX_SIDE);
            ok = 0;
        } else if (!load_report(cmd, tok, &s->parts[s->n])) {
            ok = 0;
        } else {
            s->n++;
        }
    }
    free(copy);
    if (ok && s->n == 0) {
        cli_error(cmd, "no report named in '%s'", list);
        ok = 0;
    }
    int same = 1;
    sm_error err = {0};
    if (ok && sm_json_profile_merge(s->parts, s->n, &s->all, &same, &err) != SM_OK) {
        cli_error(cmd, "%s", err.message);
        ok = 0;
    }
    if (ok && !same) fprintf(stderr, "smallmind %s: warning: the reports in '%s' have different workloads\n", cmd, list);
    if (!ok) side_free(s);
    return ok;
}
#endif

/* --compare BASE NEW: the comparison on stdout. */
static int compare_files(const char *cmd, const char *base, const char *now) {
#ifdef SM_HAVE_JANSSON
    side *b = calloc(1, sizeof *b), *n = calloc(1, sizeof *n);
    int rc = SM_EXIT_ERROR;
    if (b && n && load_side(cmd, base, b)) {
        if (load_side(cmd, now, n)) {
            profile_compare_write(stdout, &b->all, base, &n->all, now, 1);
            fflush(stdout);
            rc = ferror(stdout) ? SM_EXIT_ERROR : SM_EXIT_OK;
            side_free(n);
        }
        side_free(b);
    }
    free(b);
    free(n);
    return rc;
#else
    (void)base;
    (void)now;
    cli_error(cmd, "--compare reads JSON with Jansson, and this smallmind was built without it");
    return SM_EXIT_ERROR;
#endif
}

/* --baseline: the comparison appended to the report; the overall verdict,
 * or 2 on an error (printed). */
static int append_baseline(const char *cmd, const profile_data *d) {
#ifdef SM_HAVE_JANSSON
    side *b = calloc(1, sizeof *b), *n = calloc(1, sizeof *n);
    int v = 2;
    if (b && n && load_side(cmd, d->baseline_path, b)) {
        if (load_side(cmd, d->json_path, n)) {
            /* the report again with the comparison after it, written as
             * every file is (atomically): never half a report */
            size_t len;
            char *report = read_text_file(cmd, d->out_path, 256u << 20, &len);
            sm_output *o = NULL;
            FILE *f = report ? cli_output_open(cmd, d->out_path, &o) : NULL;
            if (f) {
                fwrite(report, 1, len, f);
                fputc('\n', f);
                v = profile_compare_write(f, &b->all, d->baseline_path, &n->all, "this run", 2);
                if (cli_output_close(cmd, o)) v = 2;
            }
            free(report);
            side_free(n);
        }
        side_free(b);
    }
    free(b);
    free(n);
    return v;
#else
    (void)d;
    cli_error(cmd, "--baseline reads JSON with Jansson, and this smallmind was built without it");
    return 2;
#endif
}

/* The run that began at since_ns from the timeline: its steps as calls x
 * median self time, if the ring held all of its calls. */
static void robust_run(const sm_session *s, uint64_t calls, profile_data *d, profile_run *run) {
    size_t n = sm_session_trace_spans(s, 0, NULL, 0);
    sm_trace_span *spans = malloc((n + 1) * sizeof *spans);
    if (!spans) return;
    n = sm_session_trace_spans(s, 0, spans, n);
    /* the run's steps are the last `calls` step spans, if the ring held them */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!spans[i].task) spans[m++] = spans[i];
    if (m >= calls &&
        profile_run_robust(spans + (m - calls), calls, 0, d->step_names, &d->n_step_names, run->robust_ms,
                           run->fastest_ms) == 0)
        run->has_robust = 1;
    free(spans);
}

/* The rows' self times as calls x median call where the timeline holds
 * every call; *measured: how many rows were. */
static void robust_rows(const sm_session *s, sm_profile_step *rows, int n_rows, int *measured) {
    size_t n = sm_session_trace_spans(s, 0, NULL, 0);
    sm_trace_span *spans = malloc((n + 1) * sizeof *spans);
    double *self = malloc(((size_t)n_rows + 1) * sizeof *self);
    *measured = 0;
    if (spans && self) {
        n = sm_session_trace_spans(s, 0, spans, n);
        int got = profile_rows_robust(spans, n, rows, n_rows, self);
        if (got > 0) {
            for (int i = 0; i < n_rows; i++) rows[i].row.self_ms = self[i];
            *measured = got;
        }
    }
    free(spans);
    free(self);
}

/* Builds the original tool's model in a temporary file; returns its path. */
static int build_default_model(int deep, char *path, size_t cap) {
    const char *dir = getenv("TMPDIR");
    int w = snprintf(path, cap, "%s/smallmind-profile-XXXXXX", dir && *dir ? dir : "/tmp");
    if (w < 0 || (size_t)w >= cap) {
        cli_error("profile", "TMPDIR is too long for a temporary model file (%d bytes at most)", (int)cap - 30);
        return 0;
    }
    int fd = mkstemp(path);
    if (fd < 0) {
        cli_error("profile", "cannot create a temporary model file in '%s': %s", dir && *dir ? dir : "/tmp",
                  strerror(errno));
        return 0;
    }
    close(fd);
    sm_init_params p = sm_init_default_params();
    p.arch = "gpt2";
    p.n_vocab = deep ? 512 : 256;
    p.n_ctx = deep ? 128 : 64;
    p.dim = deep ? 256 : 128;
    p.n_layers = deep ? 4 : 2;
    p.n_heads = deep ? 8 : 4;
    p.ffn_dim = 4 * p.dim;
    p.seed = 42;
    p.name = deep ? "original deep profile model" : "original standard profile model";
    sm_error err = {0};
    if (sm_model_init_file(&p, path, &err) != SM_OK) {
        cli_error("profile", "%s", err.message);
        unlink(path);
        return 0;
    }
    return 1;
}

int cmd_profile(int argc, char **argv) {
    cli_args a = {"profile", argc, 0, argv, NULL, 0};
    profile_data d;
    memset(&d, 0, sizeof d);
    const char *out = NULL, *model_path = NULL, *tok = NULL;
    long long n_inf = 3, n_tok = 50, threads = 0, prompt_n = 0, v;
    const char *compare_base = NULL, *compare_new = NULL;
    int n_pos = 0, type_k = SM_KV_F32, type_v = SM_KV_F32, kvopt;   /* -ctk, -ctv */
    for (a.i = 0; a.i < argc; a.i++) {
        const char *s;
#define VALUE() do { if (!(s = arg_value(&a))) return SM_EXIT_USAGE; } while (0)
        if (arg_is(&a, "-h", "--help")) { profile_usage(); return SM_EXIT_OK; }
        else if (arg_is(&a, NULL, "--deep")) d.deep = 1;
        else if (arg_is(&a, "-m", "--model")) { VALUE(); model_path = s; }
        else if (arg_is(&a, "-z", "--tokenizer")) { VALUE(); tok = s; }
        else if (arg_is(&a, "-t", "--threads")) { VALUE(); if (!parse_int(&a, "-t", s, 1, 1024, &threads)) return SM_EXIT_USAGE; }
        else if ((kvopt = cli_kv_arg(&a, &type_k, &type_v)) != 0) { if (kvopt < 0) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--no-mmap")) a.no_mmap = 1;
        else if (arg_is(&a, NULL, "--json")) { VALUE(); d.json_path = s; }
        else if (arg_is(&a, NULL, "--svg")) { VALUE(); d.svg_path = s; }
        else if (arg_is(&a, NULL, "--trace")) { VALUE(); d.trace_path = s; }
        else if (arg_is(&a, NULL, "--folded")) { VALUE(); d.folded_path = s; }
        else if (arg_is(&a, NULL, "--flame")) { VALUE(); d.flame_path = s; }
        else if (arg_is(&a, NULL, "--baseline")) { VALUE(); d.baseline_path = s; }
        else if (arg_is(&a, NULL, "--prompt")) { VALUE(); if (!parse_int(&a, "--prompt", s, 1, PROMPT_MAX, &prompt_n)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--compare")) {
            /* two values: --compare BASE NEW (or --compare=BASE NEW) */
            int need = a.inline_value ? 1 : 2;
            if (a.i + need >= argc) {
                cli_error(a.cmd, "--compare needs two reports: --compare BASE.json NEW.json");
                return SM_EXIT_USAGE;
            }
            compare_base = a.inline_value ? a.inline_value : argv[++a.i];
            compare_new = argv[++a.i];
        }
        else if (argv[a.i][0] == '-' && argv[a.i][1]) { cli_error(a.cmd, "unknown option '%s' (see smallmind profile --help)", argv[a.i]); return SM_EXIT_USAGE; }
        else if (n_pos == 0 && !(argv[a.i][0] >= '0' && argv[a.i][0] <= '9')) { out = argv[a.i]; n_pos = 1; }
        else if (n_pos <= 1) { if (!parse_int(&a, "N_INFERENCES", argv[a.i], 1, 10000, &n_inf)) return SM_EXIT_USAGE; n_pos = 2; }
        else if (n_pos == 2) { if (!parse_int(&a, "TOKENS", argv[a.i], 1, 1 << 20, &n_tok)) return SM_EXIT_USAGE; n_pos = 3; }
        else { cli_error(a.cmd, "unexpected argument '%s'", argv[a.i]); return SM_EXIT_USAGE; }
#undef VALUE
    }
    (void)v;
    if (compare_base) return compare_files(a.cmd, compare_base, compare_new);
    d.out_path = out ? out : "profile.md";
    if (!roofline_path(d.out_path, d.roofline_path, sizeof d.roofline_path)) {
        cli_error(a.cmd, "the report path is too long for its roofline chart (%zu bytes at most)",
                  sizeof d.roofline_path - 1);
        return SM_EXIT_USAGE;
    }
    /* every output is checked before minutes of profiling */
    const char *outs[] = {d.out_path, d.json_path, d.svg_path, d.trace_path, d.folded_path, d.flame_path, d.roofline_path};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
        if (outs[i] && !cli_prepare_output(a.cmd, outs[i])) return SM_EXIT_ERROR;
    d.n_inferences = (int)n_inf;
    d.n_tokens = (int)n_tok;
    uint64_t t_start = sm_now_ns();

    char tmp_model[512] = "";
    if (!model_path) {
        if (!build_default_model(d.deep, tmp_model, sizeof tmp_model)) return SM_EXIT_ERROR;
        model_path = tmp_model;
        d.default_model = 1;
    }
    sm_model *m = cli_load_model(&a, model_path, tok);
    if (tmp_model[0]) unlink(tmp_model);  /* the mapping keeps the data */
    if (!m) return SM_EXIT_ERROR;
    sm_model_get_info(m, &d.info);
    d.model_path = d.default_model ? (d.deep ? "built-in deep profile model" : "built-in standard profile model") : model_path;
    d.prompt_len = prompt_n ? (int)prompt_n : d.default_model ? (d.deep ? 32 : 10) : 16;
    if (d.prompt_len + d.n_tokens > d.info.n_ctx_train) {
        cli_error(a.cmd, "a %d-token prompt and %d tokens do not fit the model's context of %d; ask for fewer TOKENS",
                  d.prompt_len, d.n_tokens, d.info.n_ctx_train);
        sm_model_free(m);
        return SM_EXIT_USAGE;
    }
    /* the prompt: token ids drawn with seed 42, as the original tool did */
    sm_token prompt[PROMPT_MAX];
    uint64_t r = 42;
    for (int i = 0; i < d.prompt_len; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        prompt[i] = (sm_token)((r >> 33) % (uint64_t)d.info.n_vocab);
    }

    sm_session_params sp = sm_session_default_params();
    sp.n_ctx = d.prompt_len + d.n_tokens;
    sp.n_threads = (int)threads;
    sp.type_k = (sm_kv_type)type_k;
    sp.type_v = (sm_kv_type)type_v;
    sp.seed = 42;
    sm_session *prof = NULL;
    sm_error err = {0};
    int rc = SM_EXIT_ERROR, ok = 1;
    sp.profile = 1;
    if (sm_session_create(m, &sp, &prof, &err) != SM_OK) goto fail;
    d.threads = sm_session_threads(prof);
    /* the runs' step times need only the steps; the pool's task shares
     * (two clock reads per share on every thread) only for --trace */
    sm_session_trace_tasks(prof, d.trace_path != NULL);

    /* The machine's ceilings, once before the runs and once after: on a
     * shared machine the better of two moments is nearer the truth. */
    fprintf(stderr, "smallmind profile: measuring this machine (FMA, int8 and BF16 dot peaks, L1/L2/L3/memory bandwidth)...\n");
    if (!cli_measure_machine(d.threads, &d.machine, &d.n_measurements, &err)) goto fail;

    if (sm_session_trace_start(prof, TRACE_EVENTS, &err) != SM_OK) goto fail;
    /* Overhead: the same generation on the same session (so the same
     * memory) with timing paused and resumed, interleaved, best of many
     * each (the machine is shared and noisy). */
    fprintf(stderr, "smallmind profile: measuring the profiler's overhead...\n");
    sm_generate_stats st;
    /* Per-token latencies, compared at the 10th percentile: interference
     * from the rest of the machine only ever adds time. */
    int max_lat = 31 * d.n_tokens;
    timing_cb lat_plain = {0, calloc((size_t)max_lat + 1, sizeof(double)), 0, max_lat};
    timing_cb lat_prof = {0, calloc((size_t)max_lat + 1, sizeof(double)), 0, max_lat};
    uint64_t oh_start = sm_now_ns();
    /* at least 7 pairs (2 for a model whose pairs take seconds), more while under 0.3 s */
    for (int k = 0; ok; k++) {
        uint64_t spent = sm_now_ns() - oh_start;
        if (!(k < 2 || (k < 7 && spent < 3000000000ull) || (k < 31 && spent < 300000000ull))) break;
        sm_session_profile_enable(prof, 0);
        run_once(prof, prompt, d.prompt_len, d.n_tokens, &lat_plain, &st, &err, &ok);
        sm_session_profile_enable(prof, 1);
        run_once(prof, prompt, d.prompt_len, d.n_tokens, &lat_prof, &st, &err, &ok);
    }
    if (!ok) { free(lat_plain.lat_ms); free(lat_prof.lat_ms); goto fail; }
    qsort(lat_plain.lat_ms, (size_t)lat_plain.n_lat, sizeof(double), cmp_double);
    qsort(lat_prof.lat_ms, (size_t)lat_prof.n_lat, sizeof(double), cmp_double);
    double p10_plain = percentile(lat_plain.lat_ms, lat_plain.n_lat, 10);
    double p10_prof = percentile(lat_prof.lat_ms, lat_prof.n_lat, 10);
    free(lat_plain.lat_ms);
    free(lat_prof.lat_ms);
    d.decode_tps_plain = p10_plain > 0 ? 1e3 / p10_plain : 0;
    d.decode_tps_profiled = p10_prof > 0 ? 1e3 / p10_prof : 0;
    d.overhead_pct = p10_plain > 0 ? 100.0 * (p10_prof / p10_plain - 1.0) : 0.0;

    /* The profiled runs the report describes, each one's samples kept for
     * comparisons, every thread on the timeline if asked. */
    fprintf(stderr, "smallmind profile: %d inferences of %d tokens...\n", d.n_inferences, d.n_tokens);
    sm_session_profile_reset(prof);
    /* the timeline is always recorded: comparisons need every call (and
     * the overhead above was measured with it on) */
    if (sm_session_trace_start(prof, TRACE_EVENTS, &err) != SM_OK) goto fail;
    timing_cb cb = {0};
    cb.cap = d.n_inferences * d.n_tokens;
    cb.lat_ms = calloc((size_t)cb.cap + 1, sizeof *cb.lat_ms);
    d.runs = calloc((size_t)d.n_inferences, sizeof *d.runs);
    run_totals prev, now;
    memset(&prev, 0, sizeof prev);
    double prompt_s = 0, gen_s = 0, ttft = 0, wall = 0;
    int n_prompt = 0, n_gen = 0;
    for (int k = 0; k < d.n_inferences && ok && d.runs; k++) {
        int lat0 = cb.n_lat;
        double w = run_once(prof, prompt, d.prompt_len, d.n_tokens, &cb, &st, &err, &ok);
        wall += w;
        prompt_s += st.prompt_seconds;
        gen_s += st.gen_seconds;
        ttft += st.ttft_seconds;
        n_prompt += st.n_prompt;
        n_gen += st.n_generated;
        profile_run *run = &d.runs[d.n_runs++];
        run->wall_ms = w * 1e3;
        run->n_generated = st.n_generated;
        run->prefill_tps = st.prompt_seconds > 0 ? st.n_prompt / st.prompt_seconds : 0;
        run->decode_tps = st.gen_seconds > 0 ? st.n_generated / st.gen_seconds : 0;
        qsort(cb.lat_ms + lat0, (size_t)(cb.n_lat - lat0), sizeof *cb.lat_ms, cmp_double);
        run->p50_ms = percentile(cb.lat_ms + lat0, cb.n_lat - lat0, 50);
        run->p90_ms = percentile(cb.lat_ms + lat0, cb.n_lat - lat0, 90);
        run->p99_ms = percentile(cb.lat_ms + lat0, cb.n_lat - lat0, 99);
        if (!take_totals(prof, &d, &now)) { ok = 0; snprintf(err.message, sizeof err.message, "out of memory"); break; }
        for (int j = 0; j < d.n_step_names; j++) run->self_ms[j] = now.self_ms[j] - prev.self_ms[j];
        robust_run(prof, now.calls - prev.calls, &d, run);
        run->allocs_per_token = st.n_generated ? (double)(now.tok_allocs - prev.tok_allocs) / st.n_generated : 0;
        run->bytes_per_token = st.n_generated ? (double)(now.tok_bytes - prev.tok_bytes) / st.n_generated : 0;
        prev = now;
    }
    if (!ok || !d.runs) { free(cb.lat_ms); goto fail; }
    if (d.trace_path && write_trace(a.cmd, prof, d.trace_path) != 0) { free(cb.lat_ms); goto done; }
    d.generation_wall_ms = wall * 1e3;
    d.prefill_tps = prompt_s > 0 ? n_prompt / prompt_s : 0;
    d.decode_tps = gen_s > 0 ? n_gen / gen_s : 0;
    d.ttft_ms = ttft / d.n_inferences * 1e3;
    d.n_generated = n_gen;
    qsort(cb.lat_ms, (size_t)cb.n_lat, sizeof *cb.lat_ms, cmp_double);
    d.p50_ms = percentile(cb.lat_ms, cb.n_lat, 50);
    d.p90_ms = percentile(cb.lat_ms, cb.n_lat, 90);
    d.p99_ms = percentile(cb.lat_ms, cb.n_lat, 99);
    free(cb.lat_ms);

    d.n_rows = sm_session_profile(prof, NULL, 0);
    d.rows = calloc((size_t)d.n_rows + 1, sizeof *d.rows);
    d.steps = calloc((size_t)d.n_rows + 1, sizeof *d.steps);
    if (!d.rows || !d.steps) { snprintf(err.message, sizeof err.message, "out of memory"); goto fail_rows; }
    sm_session_profile(prof, d.rows, d.n_rows);
    sm_session_profile_steps(prof, d.steps, d.n_rows);
    /* the roofline's step times: calls x median call, from the timeline */
    sm_profile_step *roof_rows = calloc((size_t)d.n_rows + 1, sizeof *roof_rows);
    if (!roof_rows) { snprintf(err.message, sizeof err.message, "out of memory"); goto fail_rows; }
    memcpy(roof_rows, d.steps, (size_t)d.n_rows * sizeof *roof_rows);
    robust_rows(prof, roof_rows, d.n_rows, &d.roof_robust);
    sm_session_trace_stop(prof);
    sm_session_memory(prof, &d.mem);
    /* after the memory snapshot: the bandwidth probe's buffers would
     * otherwise be the peak RSS */
    fprintf(stderr, "smallmind profile: measuring this machine again...\n");
    if (!cli_measure_machine(d.threads, &d.machine, &d.n_measurements, &err)) goto fail_rows;
    d.peak_gflops = d.machine.peak_gflops[0];
    d.bw_cache_gbps = d.machine.read_gbps[0][SM_MEM_L3];
    d.bw_dram_gbps = d.machine.read_gbps[0][SM_MEM_DRAM];
    d.n_roof = roofline_build(roof_rows, d.n_rows, &d.machine, d.threads, d.roof, PROFILE_MAX_STEPS);
    free(roof_rows);
    if (d.deep) {
        fprintf(stderr, "smallmind profile: kernel micro-benchmarks...\n");
        d.n_kernels = sm_kernel_benchmarks(d.kernels, (int)(sizeof d.kernels / sizeof d.kernels[0]));
    }
    d.total_ms = (double)(sm_now_ns() - t_start) * 1e-6;
    d.session = prof;
    /* a baseline needs this run as JSON: a temporary file unless asked for */
    char tmp_json[512] = "";
    if (d.baseline_path && !d.json_path) {
        const char *dir = getenv("TMPDIR");
        snprintf(tmp_json, sizeof tmp_json, "%s/smallmind-profile-XXXXXX", dir && *dir ? dir : "/tmp");
        int fd = mkstemp(tmp_json);
        if (fd < 0) { snprintf(err.message, sizeof err.message, "cannot create a temporary file"); goto fail_rows; }
        close(fd);
        d.json_path = tmp_json;
    }
    if (profile_report_write(&d, &err) != 0) {
        cli_error(a.cmd, "%s", err.message);
        if (tmp_json[0]) unlink(tmp_json);
        goto done_rows;
    }
    if (profile_write_flame_files(a.cmd, d.steps, d.n_rows, d.folded_path, d.flame_path,
                                  "SmallMind flame graph: generation") != 0) {
        if (tmp_json[0]) unlink(tmp_json);
        goto done_rows;
    }
    int cmp = 0;
    if (d.baseline_path) {
        cmp = append_baseline(a.cmd, &d);
        if (tmp_json[0]) unlink(tmp_json);
        if (cmp == 2) goto done_rows;
        if (tmp_json[0]) d.json_path = NULL;
    }
    fprintf(stderr, "smallmind profile: wrote %s%s%s%s%s (decode %.0f tok/s, %.3f ms/token p50, %.0f B/token, overhead %.1f%%)\n",
            d.out_path, d.json_path ? ", " : "", d.json_path ? d.json_path : "", d.svg_path ? ", " : "",
            d.svg_path ? d.svg_path : "", d.decode_tps, d.p50_ms, d.bytes_per_token, d.overhead_pct);
    if (d.baseline_path)
        fprintf(stderr, "smallmind profile: against %s: %s\n", d.baseline_path,
                cmp > 0 ? "slower" : cmp < 0 ? "faster" : "within noise");
    rc = SM_EXIT_OK;
    goto done_rows;
fail_rows:
    cli_error(a.cmd, "%s", err.message);
done_rows:
    free(d.rows);
    free(d.steps);
    goto done;
fail:
    cli_error(a.cmd, "%s", err.message);
done:
    free(d.runs);
    sm_session_free(prof);
    sm_model_free(m);
    return rc;
}

/* cmd_profile.c - `smallmind profile`: runs a model with every step timed
 * and writes the report (markdown, optionally JSON and an SVG chart).
 * Without -m it builds the original tool's models (GPT-2 style, random
 * weights, seed 42). The report itself is written by profile_report.c. */
#include "args.h"
#include "commands.h"
#include "profile_report.h"

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
           "                         [-t N] [--json OUT.json] [--svg OUT.svg]\n"
           "\n"
           "Generates TOKENS tokens N_INFERENCES times with every step of the forward pass\n"
           "timed, and writes a report: hot paths, allocations, call hierarchy, per-layer\n"
           "times, achieved GFLOP/s and GB/s against this machine's measured peak, and what\n"
           "to optimise first. OUT.md defaults to profile.md.\n"
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
    cli_args a = {"profile", argc, 0, argv, NULL};
    profile_data d;
    memset(&d, 0, sizeof d);
    const char *out = NULL, *model_path = NULL, *tok = NULL;
    long long n_inf = 3, n_tok = 50, threads = 0, v;
    int n_pos = 0;
    for (a.i = 0; a.i < argc; a.i++) {
        const char *s;
#define VALUE() do { if (!(s = arg_value(&a))) return SM_EXIT_USAGE; } while (0)
        if (arg_is(&a, "-h", "--help")) { profile_usage(); return SM_EXIT_OK; }
        else if (arg_is(&a, NULL, "--deep")) d.deep = 1;
        else if (arg_is(&a, "-m", "--model")) { VALUE(); model_path = s; }
        else if (arg_is(&a, "-z", "--tokenizer")) { VALUE(); tok = s; }
        else if (arg_is(&a, "-t", "--threads")) { VALUE(); if (!parse_int(&a, "-t", s, 1, 1024, &threads)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--json")) { VALUE(); d.json_path = s; }
        else if (arg_is(&a, NULL, "--svg")) { VALUE(); d.svg_path = s; }
        else if (argv[a.i][0] == '-' && argv[a.i][1]) { cli_error(a.cmd, "unknown option '%s' (see smallmind profile --help)", argv[a.i]); return SM_EXIT_USAGE; }
        else if (n_pos == 0 && !(argv[a.i][0] >= '0' && argv[a.i][0] <= '9')) { out = argv[a.i]; n_pos = 1; }
        else if (n_pos <= 1) { if (!parse_int(&a, "N_INFERENCES", argv[a.i], 1, 10000, &n_inf)) return SM_EXIT_USAGE; n_pos = 2; }
        else if (n_pos == 2) { if (!parse_int(&a, "TOKENS", argv[a.i], 1, 1 << 20, &n_tok)) return SM_EXIT_USAGE; n_pos = 3; }
        else { cli_error(a.cmd, "unexpected argument '%s'", argv[a.i]); return SM_EXIT_USAGE; }
#undef VALUE
    }
    (void)v;
    d.out_path = out ? out : "profile.md";
    /* every output is checked before minutes of profiling */
    if (!cli_prepare_output(a.cmd, d.out_path) || (d.json_path && !cli_prepare_output(a.cmd, d.json_path)) ||
        (d.svg_path && !cli_prepare_output(a.cmd, d.svg_path)))
        return SM_EXIT_ERROR;
    d.n_inferences = (int)n_inf;
    d.n_tokens = (int)n_tok;
    uint64_t t_start = sm_now_ns();

    char tmp_model[512] = "";
    if (!model_path) {
        if (!build_default_model(d.deep, tmp_model, sizeof tmp_model)) return SM_EXIT_ERROR;
        model_path = tmp_model;
        d.default_model = 1;
    }
    sm_model *m = cli_load_model(a.cmd, model_path, tok);
    if (tmp_model[0]) unlink(tmp_model);  /* the mapping keeps the data */
    if (!m) return SM_EXIT_ERROR;
    sm_model_get_info(m, &d.info);
    d.model_path = d.default_model ? (d.deep ? "built-in deep profile model" : "built-in standard profile model") : model_path;
    d.prompt_len = d.default_model ? (d.deep ? 32 : 10) : 16;
    if (d.prompt_len + d.n_tokens > d.info.n_ctx_train) {
        cli_error(a.cmd, "a %d-token prompt and %d tokens do not fit the model's context of %d; ask for fewer TOKENS",
                  d.prompt_len, d.n_tokens, d.info.n_ctx_train);
        sm_model_free(m);
        return SM_EXIT_USAGE;
    }
    /* the prompt: token ids drawn with seed 42, as the original tool did */
    sm_token prompt[64];
    uint64_t r = 42;
    for (int i = 0; i < d.prompt_len; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        prompt[i] = (sm_token)((r >> 33) % (uint64_t)d.info.n_vocab);
    }

    sm_session_params sp = sm_session_default_params();
    sp.n_ctx = d.prompt_len + d.n_tokens;
    sp.n_threads = (int)threads;
    sp.seed = 42;
    sm_session *prof = NULL;
    sm_error err = {0};
    int rc = SM_EXIT_ERROR, ok = 1;
    sp.profile = 1;
    if (sm_session_create(m, &sp, &prof, &err) != SM_OK) goto fail;
    d.threads = sp.n_threads ? sp.n_threads : 0;

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
    for (int k = 0; (k < 7 || (k < 31 && sm_now_ns() - oh_start < 300000000ull)) && ok; k++) {
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

    /* The profiled runs the report describes. */
    fprintf(stderr, "smallmind profile: %d inferences of %d tokens...\n", d.n_inferences, d.n_tokens);
    sm_session_profile_reset(prof);
    timing_cb cb = {0};
    cb.cap = d.n_inferences * d.n_tokens;
    cb.lat_ms = calloc((size_t)cb.cap + 1, sizeof *cb.lat_ms);
    double prompt_s = 0, gen_s = 0, ttft = 0, wall = 0;
    int n_prompt = 0, n_gen = 0;
    for (int k = 0; k < d.n_inferences && ok; k++) {
        wall += run_once(prof, prompt, d.prompt_len, d.n_tokens, &cb, &st, &err, &ok);
        prompt_s += st.prompt_seconds;
        gen_s += st.gen_seconds;
        ttft += st.ttft_seconds;
        n_prompt += st.n_prompt;
        n_gen += st.n_generated;
    }
    if (!ok) { free(cb.lat_ms); goto fail; }
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
    sm_session_profile(prof, d.rows, d.n_rows);
    sm_session_memory(prof, &d.mem);
    /* after the memory snapshot: the bandwidth probe's buffer would
     * otherwise be the peak RSS */
    fprintf(stderr, "smallmind profile: measuring this machine...\n");
    d.peak_gflops = sm_measure_peak_gflops();
    d.bw_cache_gbps = sm_measure_read_gbps(4u << 20);
    d.bw_dram_gbps = sm_measure_read_gbps(256u << 20);
    if (d.deep) {
        fprintf(stderr, "smallmind profile: kernel micro-benchmarks...\n");
        d.n_kernels = sm_kernel_benchmarks(d.kernels, (int)(sizeof d.kernels / sizeof d.kernels[0]));
    }
    d.total_ms = (double)(sm_now_ns() - t_start) * 1e-6;
    d.session = prof;
    if (profile_report_write(&d, &err) != 0) {
        cli_error(a.cmd, "%s", err.message);
        free(d.rows);
        goto done;
    }
    fprintf(stderr, "smallmind profile: wrote %s%s%s%s%s (decode %.0f tok/s, %.3f ms/token p50, %.0f B/token, overhead %.1f%%)\n",
            d.out_path, d.json_path ? ", " : "", d.json_path ? d.json_path : "", d.svg_path ? ", " : "",
            d.svg_path ? d.svg_path : "", d.decode_tps, d.p50_ms, d.bytes_per_token, d.overhead_pct);
    free(d.rows);
    rc = SM_EXIT_OK;
    goto done;
fail:
    cli_error(a.cmd, "%s", err.message);
done:
    sm_session_free(prof);
    sm_model_free(m);
    return rc;
}

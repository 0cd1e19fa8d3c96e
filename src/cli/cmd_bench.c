/* cmd_bench.c - `smallmind bench`: prompt processing (pp) and token
 * generation (tg) speed, in llama-bench's terms and table layout. */
#include "args.h"
#include "commands.h"
#include "common.h"
#include "grammar_opts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void bench_usage(void) {
    printf("usage: smallmind bench [-m MODEL] [-p 128] [-n 64] [-d 0] [-t 1,2] [-r 3] [-o md|json|csv] [--kernels NAME]\n"
           "                       [-ctk f32|f16|bf16|q8_0] [-ctv ...] [-mmp 0|1]\n"
           "\n"
           "Measures prompt processing (ppN: N prompt tokens in one evaluation) and token\n"
           "generation (tgN: N tokens decoded one at a time from an empty context), each\n"
           "repeated -r times after a warm-up, for every thread count in -t. Prints a table\n"
           "like llama-bench's: model, size, params, kernels, threads, test, t/s (mean +- sd).\n"
           "-p 0 or -n 0 skips that test. Without -m, the built-in model.\n"
           "\n"
           "-d N (--n-depth, as llama-bench's) runs both tests after N tokens already in the\n"
           "context (evaluated before the clock starts): 'tg64 @ d800' is decoding 64 tokens\n"
           "at positions 800 to 863, where attention reads the cache of 800 tokens each time.\n"
           "-ctk / -ctv f16 (or bf16, q8_0) keep the cache's keys / values in F16 (llama-bench's\n"
           "default; SmallMind's is f32): the table then shows type_k and type_v.\n"
           "-mmp 0 (--mmap 0, or --no-mmap; llama-bench's -mmp) reads the model into memory in\n"
           "huge pages instead of mapping it; the table then shows an mmap column.\n"
           "\n"
           "With a grammar (--grammar TEXT, --grammar-file FILE, --json-schema FILE|TEXT or\n"
           "--json) two more rows measure sampled decoding: 'tgN sampled' (temperature 1,\n"
           "top-k 40, seed 1) and 'tgN grammar' (the same under the grammar, the matcher\n"
           "started again whenever a document is complete), and their ratio is printed.\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct result {
    int threads;
    char test[32];
    double mean, sd;
    int n_tokens;
} result;

/* The weight type holding the most bytes, for the model column. */
static const char *main_type(const sm_model *m) {
    static const char *types[16];
    uint64_t bytes[16] = {0};
    int nt = 0;
    for (int i = 0; i < sm_model_tensor_count(m); i++) {
        sm_tensor_info t;
        if (!sm_model_tensor(m, i, &t) || t.n_dims < 2) continue;
        int k = 0;
        while (k < nt && strcmp(types[k], t.type)) k++;
        if (k == nt && nt < 16) types[nt++] = t.type;
        if (k < 16) bytes[k] += t.n_bytes;
    }
    int best = 0;
    for (int k = 1; k < nt; k++)
        if (bytes[k] > bytes[best]) best = k;
    return nt ? types[best] : "?";
}

enum { TEST_PP, TEST_TG, TEST_SAMPLED, TEST_GRAMMAR };

/* Sampled decoding: each token evaluated, then the next sampled from its
 * logits (under the grammar for TEST_GRAMMAR; a finished document or an
 * end-of-generation token starts the matcher again, and decoding goes on). */
static int run_sampled(sm_session *s, const sm_model *model, const sm_token *toks, int n, cli_grammar *g, sm_error *err) {
    sm_sampler_params sp = sm_sampler_default_params();
    sp.temperature = 1.0f;
    sp.top_k = 40;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    if (g) cli_grammar_restart(g);
    sm_token t = toks[0];
    for (int i = 0; i < n; i++) {
        if (sm_session_eval(s, &t, 1, err)) return 0;
        if (i + 1 == n) break;
        if (!g) {
            if (sm_session_sample(s, &sp, &t, err)) return 0;
        } else {
            if (sm_grammar_matcher_is_complete(g->matcher) && !sm_grammar_matcher_can_continue(g->matcher)) cli_grammar_restart(g);
            sm_token prev = t;
            if (sm_session_sample_grammar(s, &sp, g->matcher, g->vocab, &t, err)) return 0;
            if (sm_token_is_eog(model, t)) {
                cli_grammar_restart(g);
                t = prev;
            }
        }
    }
    return 1;
}

/* One repetition of a test, after the depth's tokens (evaluated once per
 * session: the session goes back to them). */
static int run_test(sm_session *s, const sm_model *model, const sm_token *toks, int depth, int n, int test,
                    cli_grammar *g, double *seconds, sm_error *err) {
    if (sm_session_truncate(s, depth, err)) return 0;
    toks += depth;
    double t0 = now_s();
    if (test == TEST_PP) {
        if (sm_session_eval(s, toks, (size_t)n, err)) return 0;
    } else if (test == TEST_TG) {
        for (int i = 0; i < n; i++)
            if (sm_session_eval(s, &toks[i], 1, err)) return 0;
    } else if (!run_sampled(s, model, toks, n, test == TEST_GRAMMAR ? g : NULL, err)) {
        return 0;
    }
    *seconds = now_s() - t0;
    return 1;
}

int cmd_bench(int argc, char **argv) {
    cli_args a = {"bench", argc, 0, argv, NULL, 0};
    const char *model_path = NULL, *threads_arg = "1,2", *out_fmt = "md", *kernels = NULL;
    long long n_pp = 128, n_tg = 64, reps = 3, depth = 0;
    int type_k = SM_KV_F32, type_v = SM_KV_F32, kvopt;   /* -ctk, -ctv */
    cli_grammar grammar = {0};
    int gopt;
    for (a.i = 0; a.i < argc; a.i++) {
        const char *v;
#define VALUE() do { if (!(v = arg_value(&a))) return SM_EXIT_USAGE; } while (0)
        if (arg_is(&a, "-h", "--help")) { bench_usage(); return SM_EXIT_OK; }
        else if (arg_is(&a, "-m", "--model")) { VALUE(); model_path = v; }
        else if (arg_is(&a, "-p", "--n-prompt")) { VALUE(); if (!parse_int(&a, "-p", v, 0, 1 << 16, &n_pp)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-n", "--n-gen")) { VALUE(); if (!parse_int(&a, "-n", v, 0, 1 << 16, &n_tg)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-d", "--n-depth")) { VALUE(); if (!parse_int(&a, "-d", v, 0, 1 << 20, &depth)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-r", "--repetitions")) { VALUE(); if (!parse_int(&a, "-r", v, 1, 1000, &reps)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-t", "--threads")) { VALUE(); threads_arg = v; }
        else if (arg_is(&a, "-o", "--output")) { VALUE(); out_fmt = v; }
        else if (arg_is(&a, NULL, "--kernels")) { VALUE(); kernels = v; }
        else if ((kvopt = cli_kv_arg(&a, &type_k, &type_v)) != 0) { if (kvopt < 0) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-mmp", "--mmap")) {
            long long mmp;
            VALUE();
            if (!parse_int(&a, "-mmp", v, 0, 1, &mmp)) return SM_EXIT_USAGE;
            a.no_mmap = !mmp;
        }
        else if (arg_is(&a, NULL, "--no-mmap")) a.no_mmap = 1;
        else if ((gopt = cli_grammar_arg(&a, &grammar)) != 0) { if (gopt < 0) return SM_EXIT_USAGE; }
        else { cli_error(a.cmd, "unknown option '%s' (see smallmind bench --help)", argv[a.i]); return SM_EXIT_USAGE; }
#undef VALUE
    }
    if (strcmp(out_fmt, "md") && strcmp(out_fmt, "json") && strcmp(out_fmt, "csv")) {
        cli_error(a.cmd, "-o must be md, json or csv, not '%s'", out_fmt);
        return SM_EXIT_USAGE;
    }
    int threads[16], n_threads = 0;
    for (const char *p = threads_arg; *p;) {
        char *end;
        long t = strtol(p, &end, 10);
        if (end == p || t < 1 || t > 1024 || n_threads == 16 || (*end && *end != ',')) {
            cli_error(a.cmd, "invalid value '%s' for -t: expected thread counts like 1,2", threads_arg);
            return SM_EXIT_USAGE;
        }
        threads[n_threads++] = (int)t;
        p = *end ? end + 1 : end;
    }
    if (n_pp == 0 && n_tg == 0) { cli_error(a.cmd, "nothing to measure: -p and -n are both 0"); return SM_EXIT_USAGE; }
    char builtin[4096];
    if (!model_path && !(model_path = cli_default_model(builtin, sizeof builtin))) {
        cli_error(a.cmd, "no model given and the built-in models/kjv-3m.gguf is not beside smallmind: pass -m MODEL.gguf");
        return SM_EXIT_USAGE;
    }
    sm_model *m = cli_load_model(&a, model_path, NULL);
    if (!m) return SM_EXIT_ERROR;
    if (cli_grammar_setup(a.cmd, &grammar, m) != 0) {
        sm_model_free(m);
        return SM_EXIT_USAGE;
    }
    int n_tests = grammar.matcher && n_tg > 1 ? 4 : 2;
    sm_model_info info;
    sm_model_get_info(m, &info);
    int need = (int)(depth + (n_pp > n_tg ? n_pp : n_tg));
    if (need > info.n_ctx_train) {
        cli_error(a.cmd, "the model's context is %d tokens; -d plus -p (and -d plus -n) must fit in it", info.n_ctx_train);
        sm_model_free(m);
        return SM_EXIT_USAGE;
    }
    sm_token *toks = malloc((size_t)need * sizeof *toks);
    uint64_t r = 42;
    for (int i = 0; i < need; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (sm_token)((r >> 33) % (uint64_t)info.n_vocab);
    }
    result res[64 * 4];
    int n_res = 0, rc = SM_EXIT_OK;
    const char *kernel_name = "?";
    for (int ti = 0; ti < n_threads && rc == SM_EXIT_OK; ti++) {
        sm_session_params sp = sm_session_default_params();
        sp.n_ctx = need;
        sp.n_threads = threads[ti];
        sp.kernels = kernels;
        sp.type_k = (sm_kv_type)type_k;
        sp.type_v = (sm_kv_type)type_v;
        sm_session *s = NULL;
        sm_error err = {0};
        if (sm_session_create(m, &sp, &s, &err)) { cli_error(a.cmd, "%s", err.message); rc = SM_EXIT_ERROR; break; }
        kernel_name = sm_session_kernels(s);
        if (depth > 0 && sm_session_eval(s, toks, (size_t)depth, &err)) {
            cli_error(a.cmd, "%s", err.message);
            sm_session_free(s);
            rc = SM_EXIT_ERROR;
            break;
        }
        for (int test = 0; test < n_tests; test++) {
            int n = (int)(test == TEST_PP ? n_pp : n_tg);
            if (n == 0 || test == TEST_GRAMMAR) continue;
            /* sampled and grammar-constrained decoding alternate, rep by
             * rep, so that a noisy machine affects both alike */
            int pair = test == TEST_SAMPLED, n_run = pair ? 2 : 1;
            double sec, sum[2] = {0, 0}, sq[2] = {0, 0};
            for (int k = -1; k < reps && rc == SM_EXIT_OK; k++) {   /* k = -1: the warm-up */
                for (int j = 0; j < n_run; j++) {
                    if (!run_test(s, m, toks, (int)depth, n, test + j, &grammar, &sec, &err)) {
                        cli_error(a.cmd, "%s", err.message);
                        rc = SM_EXIT_ERROR;
                        break;
                    }
                    if (k < 0) continue;
                    sum[j] += n / sec;
                    sq[j] += (n / sec) * (n / sec);
                }
            }
            if (rc != SM_EXIT_OK) break;
            for (int j = 0; j < n_run; j++) {
                result *x = &res[n_res++];
                x->threads = threads[ti];
                static const char *const suffix[] = {"", "", " sampled", " grammar"};
                int w = snprintf(x->test, sizeof x->test, "%s%d%s", test == TEST_PP ? "pp" : "tg", n, suffix[test + j]);
                if (depth > 0 && w > 0 && (size_t)w < sizeof x->test)
                    snprintf(x->test + w, sizeof x->test - (size_t)w, " @ d%lld", depth);
                x->mean = sum[j] / reps;
                x->sd = reps > 1 ? sqrt(fmax(0, (sq[j] - sum[j] * sum[j] / reps) / (reps - 1))) : 0;
                x->n_tokens = n;
                fprintf(stderr, "smallmind bench: %s, %d threads: %.2f t/s\n", x->test, x->threads, x->mean);
            }
        }
        sm_session_free(s);
    }
    for (int i = 1; i < n_res; i++)
        if (strstr(res[i].test, " grammar") && strstr(res[i - 1].test, " sampled"))
            fprintf(stderr, "smallmind bench: %d threads: grammar-constrained decoding at %.2fx the speed of sampled decoding\n",
                    res[i].threads, res[i].mean / res[i - 1].mean);
    char model_name[160];
    snprintf(model_name, sizeof model_name, "%s %.1fM %s", info.arch, (double)info.n_params / 1e6, main_type(m));
    double size_mib = (double)info.weights_bytes / 1048576.0, params_m = (double)info.n_params / 1e6;
    static const char *const kv_name[] = {[SM_KV_F32] = "f32", [SM_KV_F16] = "f16", [SM_KV_BF16] = "bf16",
                                          [SM_KV_Q8_0] = "q8_0"};
    const char *tk = kv_name[type_k], *tv = kv_name[type_v];
    if (rc == SM_EXIT_OK) {
        if (!strcmp(out_fmt, "md")) {
            /* the cache's types as columns when one is not the default, as llama-bench does */
            int kv = type_k != SM_KV_F32 || type_v != SM_KV_F32;
            printf("| model | size | params | kernels | threads |%s%s test | t/s |\n|---|---:|---:|---|---:|%s%s---:|---:|\n",
                   kv ? " type_k | type_v |" : "", a.no_mmap ? " mmap |" : "", kv ? "---|---|" : "", a.no_mmap ? "---:|" : "");
            for (int i = 0; i < n_res; i++) {
                printf("| %s | %.2f MiB | %.2f M | %s | %d |", model_name, size_mib, params_m, kernel_name, res[i].threads);
                if (kv) printf(" %s | %s |", tk, tv);
                if (a.no_mmap) printf(" 0 |");
                printf(" %s | %.2f ± %.2f |\n", res[i].test, res[i].mean, res[i].sd);
            }
        } else if (!strcmp(out_fmt, "csv")) {
            printf("model,size_bytes,params,kernels,threads,test,avg_ts,stddev_ts,n_depth,type_k,type_v,use_mmap\n");
            for (int i = 0; i < n_res; i++)
                printf("\"%s\",%llu,%llu,%s,%d,%s,%.4f,%.4f,%lld,%s,%s,%d\n", model_name, (unsigned long long)info.weights_bytes,
                       (unsigned long long)info.n_params, kernel_name, res[i].threads, res[i].test, res[i].mean, res[i].sd,
                       depth, tk, tv, !a.no_mmap);
        } else {
            printf("[\n");
            for (int i = 0; i < n_res; i++)
                printf("  {\"model\": \"%s\", \"size_bytes\": %llu, \"params\": %llu, \"kernels\": \"%s\", \"threads\": %d, "
                       "\"test\": \"%s\", \"n_prompt\": %d, \"n_gen\": %d, \"n_depth\": %lld, \"type_k\": \"%s\", \"type_v\": \"%s\", \"use_mmap\": %s, \"avg_ts\": %.4f, \"stddev_ts\": %.4f}%s\n",
                       model_name, (unsigned long long)info.weights_bytes, (unsigned long long)info.n_params, kernel_name,
                       res[i].threads, res[i].test, res[i].test[0] == 'p' ? res[i].n_tokens : 0,
                       res[i].test[0] == 't' ? res[i].n_tokens : 0, depth, tk, tv, a.no_mmap ? "false" : "true", res[i].mean, res[i].sd,
                       i + 1 < n_res ? "," : "");
            printf("]\n");
        }
    }
    free(toks);
    cli_grammar_free(&grammar);
    sm_model_free(m);
    return rc;
}

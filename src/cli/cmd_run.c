/* cmd_run.c - `smallmind run`: generate text, streaming it to stdout, with
 * a statistics line on stderr. */
#include "args.h"
#include "commands.h"
#include "profile_report.h"
#include "draft_opts.h"
#include "grammar_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_STOPS 16
#define MAX_PROMPT_FILE (64u << 20)

static void run_usage(void) {
    printf("usage: smallmind run -m MODEL [options]\n"
           "\n"
           "Generates text from a GGUF or llama2.c model and streams it to stdout.\n"
           "Statistics (tokens/s, time to first token, peak memory) go to stderr.\n"
           "\n"
           "model:\n"
           "  -m, --model FILE        model file (.gguf, or llama2.c .bin); default: the built-in\n"
           "                          models/kjv-3m.gguf (or $SMALLMIND_MODEL)\n"
           "  -z, --tokenizer FILE    tokenizer.bin for a llama2.c model\n"
           CLI_LORA_USAGE
           "prompt:\n"
           "  -p, --prompt TEXT       prompt (default: none, start from the BOS token)\n"
           "  -f, --file FILE         read the prompt from a file (one final newline is dropped)\n"
           "      --no-display-prompt do not echo the prompt before the generated text\n"
           "  -e, --escape            turn \\n \\r \\t \\' \\\" \\\\ and \\xHH in the prompt, -r and --stop into the\n"
           "                          characters (llama.cpp's default, so on unless --no-escape)\n"
           "      --no-escape         take them literally\n"
           "generation:\n"
           "  -n, --n-predict N       tokens to generate (default 256; -1 = until the context is full)\n"
           "  -c, --ctx-size N        context size in tokens (default: min(model context, 4096))\n"
           "  -ctk, --cache-type-k T  the cached keys' type: f32 (default), f16, bf16 (half) or q8_0\n"
           "  -ctv, --cache-type-v T  the cached values' type: the same choice (q8_0: 34 bytes per 32)\n"
           "      --stop TEXT         stop when TEXT is generated (not printed); repeatable, up to %d\n"
           "  -r, --reverse-prompt TEXT  stop after TEXT is generated (printed: llama.cpp's -r, where\n"
           "                          it hands control back); repeatable\n"
           "      --ignore-eos        never end at end-of-generation tokens (end of text, end of turn):\n"
           "                          they are not drawn, as llama.cpp's --ignore-eos\n"
           "      --session FILE      continue the session saved in FILE if it exists (the prompt, if any,\n"
           "                          follows what it holds), and save the session there at the end\n"
           "sampling:\n"
           "      --temp T            temperature; 0 = greedy (default 0.8)\n"
           "      --top-k N           keep the N most likely tokens; 0 = off (default 40)\n"
           "      --top-p P           keep the smallest set with probability >= P; 1 = off (default 0.95)\n"
           "      --min-p P           drop tokens below P x the top probability; 0 = off (default 0.05)\n"
           "      --repeat-penalty F  penalise recent tokens; 1 = off (default 1.0)\n"
           "      --repeat-last-n N   how many recent tokens to penalise; -1 = whole context (default 64)\n"
           "      --presence-penalty F   lower recent tokens' logits by F (OpenAI's; 0 = off, the default)\n"
           "      --frequency-penalty F  lower them by F per time seen (0 = off, the default)\n"
           "  -s, --seed N            RNG seed (default: random; the seed used is printed)\n"
           CLI_GRAMMAR_USAGE
           "performance:\n"
           "  -t, --threads N         worker threads (default: physical cores)\n"
           CLI_LLAMACPP_USAGE
           "      --kernels NAME      force a kernel variant: scalar, avx2, avx512 (default: best here)\n"
           "  -md, --draft FILE       speculative decoding: a smaller model with the same vocabulary\n"
           "                          proposes tokens that the model checks in one batch (greedy output\n"
           "                          unchanged; sampling keeps the model's distribution)\n"
           "      --draft-n N         tokens the draft proposes per round, at most (default 4, up to 64)\n"
           "      --draft-p-min P     a round's proposals stop where the draft's likeliest token has\n"
           "                          less than P (default 0: always N)\n"
           "      --profile           time every step and print the hot paths to stderr\n"
           "      --check             check every layer of every token for NaN/Inf and stop naming the layer\n"
           "                          (without it only the prompt's logits are checked)\n"
           "      --trace FILE.json   (with --profile) a timeline of every thread as Chrome trace-event\n"
           "                          JSON, for Perfetto or chrome://tracing\n"
           "      --folded FILE       (with --profile) folded stacks, self microseconds (flamegraph.pl)\n"
           "      --flame FILE.svg    (with --profile) a flame graph\n"
           "\n"
           "example: smallmind run -m stories260K.gguf -p \"Once upon a time\" -n 64 --temp 0\n",
           MAX_STOPS);
}

typedef struct run_output {
    int wrote_any;
    int ends_with_newline;
    sm_token last;          /* the last token generated */
    /* -r: the reverse prompts, and the end of the text printed (its last
     * 4-8 KiB; a reverse prompt is at most 4 KiB) to look for them in */
    const char *const *rev;
    int n_rev;
    size_t tail_len;
    char tail[2 * 4096];
    int rev_hit;
} run_output;

/* Whether the text printed so far ends a reverse prompt that this piece of
 * it completed (llama.cpp looks for them at the end of its output too). */
static int reverse_prompt_seen(run_output *o, const char *text, size_t len) {
    const size_t half = sizeof o->tail / 2;
    for (size_t i = 0; i < len; i++) {
        if (o->tail_len == sizeof o->tail) {   /* keep the last half */
            memmove(o->tail, o->tail + half, half);
            o->tail_len = half;
        }
        o->tail[o->tail_len++] = text[i];
    }
    size_t fresh = len < o->tail_len ? len : o->tail_len;   /* the piece's bytes at the end of tail */
    for (int r = 0; r < o->n_rev; r++) {
        size_t rl = strlen(o->rev[r]);
        for (size_t end = o->tail_len - fresh + 1; end <= o->tail_len; end++)   /* ends inside this piece */
            if (end >= rl && !memcmp(o->tail + end - rl, o->rev[r], rl)) return 1;
    }
    return 0;
}

static int on_token(void *user, sm_token token, const char *text, size_t len) {
    run_output *o = user;
    if (token >= 0) o->last = token;
    if (len > 0) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        o->wrote_any = 1;
        o->ends_with_newline = text[len - 1] == '\n';
        if (o->n_rev && reverse_prompt_seen(o, text, len)) {
            o->rev_hit = 1;
            return 1;
        }
    }
    return 0;
}

/* --trace, --folded, --flame of a profiled session; 0, or -1 (printed). */
static int profile_outputs(const char *cmd, const sm_session *s, const char *trace, const char *folded,
                           const char *flame) {
    if (trace) {
        sm_output *o;
        FILE *f = cli_output_open(cmd, trace, &o);
        if (!f) return -1;
        sm_error err = {0};
        sm_trace_write_params wp = sm_trace_write_default_params();
        wp.process_name = "smallmind run";
        if (sm_session_trace_write(s, f, &wp, &err) != SM_OK) {
            sm_output_discard(o);
            cli_error(cmd, "cannot write '%s': %s", trace, err.message);
            return -1;
        }
        if (cli_output_close(cmd, o)) return -1;
    }
    int n = sm_session_profile_steps(s, NULL, 0);
    sm_profile_step *rows = calloc((size_t)n + 1, sizeof *rows);
    if (!rows) return -1;
    sm_session_profile_steps(s, rows, n);
    int rc = profile_write_flame_files(cmd, rows, n, folded, flame, "SmallMind flame graph: smallmind run");
    free(rows);
    return rc;
}

static double peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0.0;
    return (double)ru.ru_maxrss / 1024.0;
}

int cmd_run(int argc, char **argv) {
    cli_args a = {"run", argc, 0, argv, NULL, 0};
    const char *model_path = NULL, *tok_path = NULL, *prompt = NULL, *prompt_file = NULL, *kernels = NULL;
    const char *session_path = NULL;
    cli_draft draft = CLI_DRAFT_DEFAULT;
    int dopt;
    cli_grammar grammar = {0};
    int gopt;
    char *stops[MAX_STOPS], *revs[MAX_STOPS];
    int n_stops = 0, n_revs = 0, echo = 1, escape = 1;
    long long n_predict = 256, n_ctx = 0, threads = 0, seed = -1, top_k = 40, last_n = 64;
    int type_k = SM_KV_F32, type_v = SM_KV_F32, kvopt;   /* -ctk, -ctv */
    double temp = 0.8, top_p = 0.95, min_p = 0.05, penalty = 1.0, presence = 0.0, frequency = 0.0;
    int ignore_eos = 0, profile = 0, check = 0, lr;
    cli_lora lora = {0};
    const char *trace_path = NULL, *folded_path = NULL, *flame_path = NULL;
    for (a.i = 0; a.i < argc; a.i++) {
        const char *v;
#define VALUE() do { if (!(v = arg_value(&a))) return SM_EXIT_USAGE; } while (0)
        if (arg_is(&a, "-h", "--help")) { run_usage(); return SM_EXIT_OK; }
        else if ((lr = cli_lora_arg(&a, &lora)) != 0) { if (lr < 0) return SM_EXIT_USAGE; }
        else if ((lr = cli_llamacpp_arg(&a)) != 0) { if (lr < 0) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-m", "--model")) { VALUE(); model_path = v; }
        else if (arg_is(&a, "-z", "--tokenizer")) { VALUE(); tok_path = v; }
        else if (arg_is(&a, "-p", "--prompt")) { VALUE(); prompt = v; }
        else if (arg_is(&a, "-e", "--escape")) escape = 1;
        else if (arg_is(&a, NULL, "--no-escape")) escape = 0;
        else if (arg_is(&a, "-no-cnv", "--no-conversation")) continue;   /* llama-cli's; run never converses */
        else if (arg_is(&a, "-r", "--reverse-prompt")) {
            VALUE();
            if (n_revs == MAX_STOPS) { cli_error(a.cmd, "at most %d -r strings", MAX_STOPS); return SM_EXIT_USAGE; }
            if (!*v || strlen(v) > 4096) { cli_error(a.cmd, "-r needs a string of 1 to 4096 bytes"); return SM_EXIT_USAGE; }
            revs[n_revs++] = (char *)v;
        }
        else if (arg_is(&a, NULL, "--presence-penalty")) { VALUE(); if (!parse_float(&a, "--presence-penalty", v, -100.0, 100.0, &presence)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--frequency-penalty")) { VALUE(); if (!parse_float(&a, "--frequency-penalty", v, -100.0, 100.0, &frequency)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-f", "--file")) { VALUE(); prompt_file = v; }
        else if (arg_is(&a, NULL, "--no-display-prompt")) echo = 0;
        else if (arg_is(&a, NULL, "--ignore-eos")) ignore_eos = 1;
        else if (arg_is(&a, NULL, "--profile")) profile = 1;
        else if (arg_is(&a, NULL, "--check")) check = 1;
        else if (arg_is(&a, NULL, "--trace")) { VALUE(); trace_path = v; }
        else if (arg_is(&a, NULL, "--folded")) { VALUE(); folded_path = v; }
        else if (arg_is(&a, NULL, "--flame")) { VALUE(); flame_path = v; }
        else if (arg_is(&a, NULL, "--kernels")) { VALUE(); kernels = v; }
        else if (arg_is(&a, NULL, "--session")) { VALUE(); session_path = v; }
        else if ((dopt = cli_draft_arg(&a, &draft)) != 0) { if (dopt < 0) return SM_EXIT_USAGE; }
        else if ((gopt = cli_grammar_arg(&a, &grammar)) != 0) { if (gopt < 0) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--stop")) {
            VALUE();
            if (n_stops == MAX_STOPS) { cli_error(a.cmd, "at most %d --stop strings", MAX_STOPS); return SM_EXIT_USAGE; }
            if (!*v) { cli_error(a.cmd, "--stop needs a non-empty string"); return SM_EXIT_USAGE; }
            stops[n_stops++] = (char *)v;
        }
        else if (arg_is(&a, "-n", "--n-predict")) { VALUE(); if (!parse_int(&a, "-n", v, -1, 1 << 24, &n_predict)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-c", "--ctx-size")) { VALUE(); if (!parse_int(&a, "-c", v, 0, 1 << 24, &n_ctx)) return SM_EXIT_USAGE; }
        else if ((kvopt = cli_kv_arg(&a, &type_k, &type_v)) != 0) { if (kvopt < 0) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-t", "--threads")) { VALUE(); if (!parse_int(&a, "-t", v, 1, 1024, &threads)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-s", "--seed")) { VALUE(); if (!parse_int(&a, "--seed", v, -1, INT64_MAX, &seed)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--temp")) { VALUE(); if (!parse_float(&a, "--temp", v, 0.0, 100.0, &temp)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--top-k")) { VALUE(); if (!parse_int(&a, "--top-k", v, 0, 1 << 24, &top_k)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--top-p")) { VALUE(); if (!parse_float(&a, "--top-p", v, 0.0, 1.0, &top_p)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--min-p")) { VALUE(); if (!parse_float(&a, "--min-p", v, 0.0, 1.0, &min_p)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--repeat-penalty")) { VALUE(); if (!parse_float(&a, "--repeat-penalty", v, 0.01, 100.0, &penalty)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--repeat-last-n")) { VALUE(); if (!parse_int(&a, "--repeat-last-n", v, -1, 1 << 24, &last_n)) return SM_EXIT_USAGE; }
        else { cli_error(a.cmd, "unknown option '%s' (see smallmind run --help)", argv[a.i]); return SM_EXIT_USAGE; }
#undef VALUE
    }
    if (prompt && prompt_file) { cli_error(a.cmd, "give the prompt with -p or -f, not both"); return SM_EXIT_USAGE; }
    if ((trace_path || folded_path || flame_path) && !profile) {
        cli_error(a.cmd, "--trace, --folded and --flame come with --profile");
        return SM_EXIT_USAGE;
    }
    /* the profile's files and the session file are checked before the model is loaded */
    if ((trace_path && !cli_prepare_output(a.cmd, trace_path)) || (folded_path && !cli_prepare_output(a.cmd, folded_path)) ||
        (flame_path && !cli_prepare_output(a.cmd, flame_path)) || (session_path && !cli_prepare_output(a.cmd, session_path)))
        return SM_EXIT_ERROR;
    /* llama.cpp's escapes, after every option is read (--no-escape may come last); argv's strings are
     * writable and only get shorter */
    if (escape) {
        if (prompt) cli_unescape((char *)prompt);
        for (int i = 0; i < n_stops; i++) cli_unescape(stops[i]);
        for (int i = 0; i < n_revs; i++) cli_unescape(revs[i]);
    }
    if (prompt && !*prompt) {
        cli_error(a.cmd, "the prompt is empty; leave out -p to generate from the start token");
        return SM_EXIT_USAGE;
    }
    char *file_text = NULL;
    if (prompt_file) {
        size_t len;
        if (!(file_text = read_text_file(a.cmd, prompt_file, MAX_PROMPT_FILE, &len))) return SM_EXIT_ERROR;
        if (len > 0 && file_text[len - 1] == '\n') file_text[--len] = '\0';
        if (len == 0) { cli_error(a.cmd, "prompt file '%s' is empty", prompt_file); free(file_text); return SM_EXIT_USAGE; }
        if (strlen(file_text) != len) { cli_error(a.cmd, "prompt file '%s' contains a NUL byte", prompt_file); free(file_text); return SM_EXIT_ERROR; }
        if (escape) cli_unescape(file_text);   /* llama.cpp escapes a prompt file's text too */
        prompt = file_text;
    }

    char builtin[4096];
    if (!model_path) {
        model_path = cli_default_model(builtin, sizeof builtin);
        if (!model_path) {
            cli_error(a.cmd, "no model given and the built-in models/kjv-3m.gguf is not beside smallmind: pass -m MODEL.gguf");
            free(file_text);
            return SM_EXIT_USAGE;
        }
    }
    sm_model *model = cli_load_model(&a, model_path, tok_path);
    if (!model) { free(file_text); return SM_EXIT_ERROR; }
    if (cli_grammar_setup(a.cmd, &grammar, model) != 0) {
        cli_grammar_free(&grammar);
        sm_model_free(model);
        free(file_text);
        return SM_EXIT_USAGE;
    }
    sm_model_info info;
    sm_model_get_info(model, &info);
    uint64_t used_seed = seed >= 0 ? (uint64_t)seed : ((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
    sm_session_params sp = sm_session_default_params();
    sp.n_ctx = (int)n_ctx;
    sp.type_k = (sm_kv_type)type_k;
    sp.type_v = (sm_kv_type)type_v;
    sp.n_threads = (int)threads;
    sp.seed = used_seed;
    sp.profile = profile;
    sp.check = check;
    sp.kernels = kernels;
    sm_session *session = NULL;
    sm_error err = {0};
    int rc = SM_EXIT_ERROR;
    if ((sp.lora_rank_max = cli_lora_load(a.cmd, &lora, model)) < 0) goto done;
    struct stat sst;
    int resumed = session_path && stat(session_path, &sst) == 0;
    if (resumed ? sm_session_load(model, session_path, &sp, &session, &err) != SM_OK
                : sm_session_create(model, &sp, &session, &err) != SM_OK) {
        cli_error(a.cmd, "%s", err.message);
        goto done;
    }
    if (cli_draft_setup(&a, &draft, &sp, session) != 0) goto done;
    if (trace_path && sm_session_trace_start(session, 1u << 18, &err) != SM_OK) {
        cli_error(a.cmd, "%s", err.message);
        goto done;
    }
    if (cli_lora_set(a.cmd, &lora, session)) goto done;
    if (info.warning) fprintf(stderr, "smallmind run: warning: %s\n", info.warning);
    if (n_ctx > info.n_ctx_train)
        fprintf(stderr, "smallmind run: warning: context %lld is longer than the %d tokens the model was trained on\n",
                n_ctx, info.n_ctx_train);
    sm_generate_params gp = sm_generate_default_params();
    gp.n_predict = (int)n_predict;
    gp.sampler.temperature = (float)temp;
    gp.sampler.top_k = (int)top_k;
    gp.sampler.top_p = (float)top_p;
    gp.sampler.min_p = (float)min_p;
    gp.sampler.repeat_penalty = (float)penalty;
    gp.sampler.repeat_last_n = (int)last_n;
    gp.sampler.presence_penalty = (float)presence;
    gp.sampler.frequency_penalty = (float)frequency;
    gp.stop = (const char *const *)stops;
    gp.n_stop = n_stops;
    gp.ignore_eos = ignore_eos;
    gp.grammar = grammar.matcher;
    gp.grammar_vocab = grammar.vocab;
    cli_draft_use(&draft, &gp);

    run_output out = {0, 0, -1, (const char *const *)revs, n_revs, 0, {0}, 0};
    if (prompt) {
        /* Check the prompt (UTF-8, length) before anything is echoed. */
        size_t need = 0;
        sm_status st = sm_tokenize(model, prompt, strlen(prompt), info.add_bos, NULL, 0, &need, &err);
        if (st != SM_OK && st != SM_ERR_BUFFER_TOO_SMALL) {
            cli_error(a.cmd, "prompt: %s", err.message);
            goto done;
        }
        int room = sm_session_n_ctx(session) - sm_session_n_past(session);
        if (need > (size_t)room) {
            cli_error(a.cmd, "the prompt is %zu tokens but the context has room for %d; raise -c", need, room);
            goto done;
        }
        if (echo) {
            fputs(prompt, stdout);
            fflush(stdout);
        }
    }
    sm_generate_stats stats;
    if (sm_generate(session, prompt, &gp, on_token, &out, &stats, &err) != SM_OK) {
        if (prompt && echo) fputc('\n', stdout);
        cli_error(a.cmd, "%s", err.message);
        goto done;
    }
    fputc('\n', stdout);
    fflush(stdout);
    if (session_path) {
        /* the session holds all the text printed: the last token too, which
         * generation samples and prints but does not evaluate */
        if ((stats.stopped_by == 0 || stats.stopped_by == 3) && stats.n_generated > stats.n_gen_kept &&
            sm_session_n_past(session) < sm_session_n_ctx(session) &&
            sm_session_eval(session, &out.last, 1, &err) != SM_OK) {
            cli_error(a.cmd, "%s", err.message);
            goto done;
        }
        if (sm_session_save(session, session_path, &err) != SM_OK) {
            cli_error(a.cmd, "cannot save the session: %s", err.message);
            goto done;
        }
    }
    const char *why[] = {"token limit", "end of generation", "stop string", "stopped", "context full",
                         "the grammar is complete"};
    if (stats.stopped_by == 3 && out.rev_hit) why[3] = "reverse prompt";
    char held[64] = "";
    if (resumed) snprintf(held, sizeof held, " after %d from the session", stats.n_reused);
    fprintf(stderr,
            "\nsmallmind run: prompt %d tokens%s (%.1f tok/s) | generated %d tokens (%.1f tok/s) | "
            "first token %.2f ms | peak RSS %.1f MiB | seed %llu | stop: %s\n",
            stats.n_prompt, held,
            stats.prompt_seconds > 0 ? stats.n_prompt / stats.prompt_seconds : 0.0,
            stats.n_generated, stats.gen_seconds > 0 ? stats.n_generated / stats.gen_seconds : 0.0,
            stats.ttft_seconds * 1e3, peak_rss_mib(), (unsigned long long)used_seed,
            why[stats.stopped_by >= 0 && stats.stopped_by <= 5 ? stats.stopped_by : 3]);
    if (draft.session)
        fprintf(stderr, "smallmind run: draft: %d of %d proposed tokens accepted (%.1f %%)\n", stats.n_draft_accepted,
                stats.n_drafted, stats.n_drafted ? 100.0 * stats.n_draft_accepted / stats.n_drafted : 0.0);
    if (profile) {
        fputc('\n', stderr);
        profile_write_sections(session, info.n_layers, stderr, PROFILE_HOT_PATHS);
        if (profile_outputs(a.cmd, session, trace_path, folded_path, flame_path) != 0) goto done;
    }
    rc = SM_EXIT_OK;
done:
    cli_draft_free(&draft);
    sm_session_free(session);
    cli_lora_free(&lora);
    cli_grammar_free(&grammar);
    sm_model_free(model);
    free(file_text);
    return rc;
}

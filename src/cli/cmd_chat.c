/* cmd_chat.c - `smallmind chat`: talk to a model in the terminal (or from
 * a pipe), one user line per turn, in the model's chat template, with the
 * conversation's KV cache kept across turns (chat_state.c), commands
 * (/help, /reset, /system, /save, /load, /stats, /exit), a saved session to
 * resume from, and Ctrl-C: during a reply it stops the reply; at the prompt
 * it ends the program. The signal handler only sets a flag; the reply stops
 * through the token callback's return value. */
#include "args.h"
#include "chat_state.h"
#include "commands.h"
#include "draft_opts.h"
#include "grammar_opts.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static void chat_usage(void) {
    printf("usage: smallmind chat [-m MODEL] [options]\n"
           "\n"
           "Talks with a model: each line you type (or each line of a pipe) is a user turn; the\n"
           "reply streams to stdout. The conversation is formatted with the model's chat template\n"
           "(tokenizer.chat_template; chatml, with a warning, for a model without one) and its KV\n"
           "cache is kept across turns, so each turn evaluates only its new tokens. A reply ends at\n"
           "the model's end-of-generation tokens or the template's end-of-turn text.\n"
           "\n"
           "  -m, --model FILE          model (.gguf or llama2.c .bin); default: the built-in chat model\n"
           "                            models/kjv-chat-3m.gguf (or $SMALLMIND_CHAT_MODEL), else\n"
           "                            the built-in models/kjv-3m.gguf\n"
           "  -z, --tokenizer FILE      tokenizer.bin for a llama2.c model\n"
           "  -sys, --system TEXT       system prompt (also --system-prompt, or -p as llama-cli's\n"
           "                            conversation mode takes it; -cnv is accepted)\n"
           "      --chat-template NAME|FILE  a built-in template by name, or a file with a template's text\n"
           "      --jinja               run the chat template (the model's or --chat-template's) as the Jinja\n"
           "                            program it is, as llama.cpp's --jinja does, instead of recognising\n"
           "                            a built-in format in it\n"
           "  -n, --n-predict N         at most N tokens per reply (default 512; -1 = no limit)\n"
           "  -c, --ctx-size N          context size (default: min(model context, 4096))\n"
           "  -ctk, --cache-type-k T    the cached keys' type: f32 (default), f16, bf16 (half) or q8_0\n"
           "  -ctv, --cache-type-v T    the cached values' type: the same choice (q8_0: 34 bytes per 32)\n"
           "      --context-policy P    when the context is full: stop (say so), drop-oldest (drop the\n"
           "                            oldest turns, keep the system prompt, read the rest again) or\n"
           "                            shift (keep the first tokens, discard half of the rest and go on;\n"
           "                            the default, or drop-oldest for models that cannot shift)\n"
           "      --keep N              tokens a shift keeps (default: the system prompt's)\n"
           "      --session FILE        resume the conversation saved in FILE if it exists, and save it\n"
           "                            there after every turn\n"
           "      --ignore-eos          never end replies at end-of-generation tokens (they are not drawn)\n"
           "      --grammar TEXT, --grammar-file FILE, --json-schema FILE|TEXT, --json\n"
           "                            each reply follows the grammar (as `smallmind run`) and ends\n"
           "                            when it is complete\n"
           "sampling (as `smallmind run`): --temp T (0.8), --top-k N (40), --top-p P (0.95),\n"
           "  --min-p P (0.05), --repeat-penalty F (1.0), --repeat-last-n N (64), -s/--seed N\n"
           "performance: -t/--threads N, --kernels NAME\n"
           CLI_LLAMACPP_USAGE
           "  -md, --draft FILE         speculative decoding with a smaller model of the same vocabulary\n"
           "      --draft-n N           tokens it proposes per round, at most (default 4)\n"
           "      --draft-p-min P       stop proposing where its likeliest token has less than P (default 0)\n"
           "  -v, --verbose             a statistics line per turn on stderr\n"
           "      --ids                 the token ids of each reply on stderr\n"
           CLI_LORA_USAGE
           "\n"
           "commands (a line that starts with '/'; '//' sends a line that starts with '/'):\n"
           "  /help  /reset  /system TEXT  /save FILE  /load FILE  /stats  /exit\n"
           "A line that ends with '\\' continues on the next line. Ctrl-C stops a reply; at the\n"
           "prompt it exits.\n");
}

static void commands_help(void) {
    printf("/help           this list\n"
           "/reset          start the conversation again (the system prompt stays)\n"
           "/system TEXT    set the system prompt (empty: none); the next turn reads the change\n"
           "/save FILE      save the session (tokens, KV cache, sampler, conversation)\n"
           "/load FILE      load a saved session and continue it\n"
           "/stats          the context, the last turn and the whole conversation in numbers\n"
           "/exit           leave (so do end of input and Ctrl-C at the prompt)\n");
}

typedef struct chat_cli {
    chat c;
    const char *session_path;
    int tty_in, verbose, show_ids;
    char *sys_arg;
} chat_cli;

static int print_piece(void *user, const char *text, size_t len) {
    (void)user;
    if (len) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
    }
    return interrupted != 0;
}

static const char *stop_reason(int why) {
    static const char *const names[] = {"token limit", "end-of-generation token", "end-of-turn text", "interrupted",
                                        "context full", "grammar complete"};
    return why >= 0 && why <= 5 ? names[why] : "?";
}

static void print_stats(chat_cli *k, FILE *f) {
    chat *c = &k->c;
    const sm_generate_stats *l = &c->last;
    static const char *const policies[] = {"stop", "drop-oldest", "shift"};
    fprintf(f, "context: %d of %d tokens (template %s, policy %s, keep %d)\n", sm_session_n_past(c->session),
            sm_session_n_ctx(c->session), c->tmpl, policies[c->policy], chat_n_keep(c));
    if (c->totals.turns)
        fprintf(f, "last turn: prompt %d evaluated, %d reused; reply %d tokens at %.1f tok/s; first token %.2f ms; "
                   "%d discarded by shifts; stop: %s\n",
                l->n_prompt, l->n_reused, l->n_generated, l->gen_seconds > 0 ? l->n_generated / l->gen_seconds : 0.0,
                l->ttft_seconds * 1e3, l->n_discarded, stop_reason(l->stopped_by));
    fprintf(f, "conversation: %d turns, %d messages; %lld prompt tokens evaluated, %lld reused, %lld generated, "
               "%lld discarded by shifts, %d turns dropped\n",
            c->totals.turns, c->n_msgs, c->totals.evaluated, c->totals.reused, c->totals.generated,
            c->totals.discarded, c->totals.dropped_turns);
}

static int save_to(chat_cli *k, const char *path) {
    /* refused early if it cannot be written; stale temporary files beside it removed */
    if (!cli_prepare_output("chat", path)) return -1;
    size_t len = 0;
    void *app = chat_pack(&k->c, &len);
    sm_error err = {0};
    sm_status st = app ? sm_session_save_ex(k->c.session, path, app, len, &err) : SM_ERR_NOMEM;
    free(app);
    if (st != SM_OK) {
        cli_error("chat", "cannot save the session: %s", app ? err.message : "out of memory");
        return -1;
    }
    return 0;
}

/* The conversation a loaded session carries; a file without one (saved by
 * `run`) continues from its tokens with the system prompt given. */
static void adopt_loaded(chat_cli *k) {
    size_t len = 0;
    const void *app = sm_session_app_data(k->c.session, &len);
    if (chat_unpack(&k->c, app, len) != 0) {
        chat_set_system(&k->c, k->sys_arg);
        if (app) fprintf(stderr, "smallmind chat: warning: the session file's conversation is not readable; its "
                                 "tokens are kept\n");
    } else if (k->sys_arg && (!k->c.has_system || strcmp(k->c.msgs[0].content, k->sys_arg) != 0)) {
        fprintf(stderr, "smallmind chat: warning: the saved conversation's system prompt is kept (change it with "
                        "/system)\n");
    }
}

/* A command line; returns 1 to leave. */
static int command(chat_cli *k, char *line) {
    char *arg = line + strcspn(line, " \t");
    if (*arg) *arg++ = '\0';
    arg += strspn(arg, " \t");
    chat *c = &k->c;
    if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) return 1;
    if (!strcmp(line, "/help")) commands_help();
    else if (!strcmp(line, "/stats")) print_stats(k, stdout);
    else if (!strcmp(line, "/reset")) {
        chat_reset(c);
        fprintf(stderr, "smallmind chat: the conversation starts again\n");
    } else if (!strcmp(line, "/system")) {
        if (chat_set_system(c, *arg ? arg : NULL) != 0) cli_error("chat", "out of memory");
        else fprintf(stderr, "smallmind chat: %s\n", *arg ? "system prompt set" : "no system prompt");
    } else if (!strcmp(line, "/save") || !strcmp(line, "/load")) {
        if (!*arg) {
            cli_error("chat", "%s needs a file name", line);
            return 0;
        }
        if (line[1] == 's') {
            if (save_to(k, arg) == 0)
                fprintf(stderr, "smallmind chat: saved %d tokens to '%s'\n", sm_session_n_past(c->session), arg);
            return 0;
        }
        sm_error err = {0};
        if (sm_session_load_into(c->session, arg, &err) != SM_OK) {
            cli_error("chat", "%s", err.message);
            return 0;
        }
        adopt_loaded(k);
        fprintf(stderr, "smallmind chat: loaded %d tokens and %d messages from '%s'\n", sm_session_n_past(c->session),
                c->n_msgs, arg);
    } else {
        cli_error("chat", "unknown command '%s' (/help lists them)", line);
    }
    return 0;
}

/* One line of input (without its newline), with '\' continuations; NULL at
 * the end of input or on Ctrl-C (then *sig is set). */
static char *read_turn(chat_cli *k, int *sig) {
    char *all = NULL, *line = NULL;
    size_t all_len = 0, cap = 0;
    *sig = 0;
    for (;;) {
        if (k->tty_in) {
            fputs(all ? ". " : "> ", stdout);
            fflush(stdout);
        }
        if (interrupted) { *sig = 1; break; }
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            if (interrupted || errno == EINTR) *sig = 1;
            break;
        }
        if (n > 0 && line[n - 1] == '\n') line[--n] = '\0';
        if (n > 0 && line[n - 1] == '\r') line[--n] = '\0';
        int more = n > 0 && line[n - 1] == '\\';
        if (more) line[--n] = '\0';
        char *t = realloc(all, all_len + (size_t)n + 2);
        if (!t) break;
        all = t;
        memcpy(all + all_len, line, (size_t)n);
        all_len += (size_t)n;
        if (more) all[all_len++] = '\n';
        all[all_len] = '\0';
        if (!more) {
            free(line);
            return all;
        }
    }
    free(line);
    if (all && !*sig && all_len) return all;   /* the input ended after a continuation */
    free(all);
    return NULL;
}


int cmd_chat(int argc, char **argv) {
    cli_args a = {"chat", argc, 0, argv, NULL, 0};
    const char *model_path = NULL, *tok_path = NULL, *tmpl_arg = NULL, *kernels = NULL, *policy_arg = NULL;
    int jinja = 0;
    cli_draft draft = CLI_DRAFT_DEFAULT;
    int dopt;
    chat_cli k;
    memset(&k, 0, sizeof k);
    long long n_predict = 512, n_ctx = 0, threads = 0, seed = -1, top_k = 40, last_n = 64, keep = -1;
    int type_k = SM_KV_F32, type_v = SM_KV_F32, kvopt;   /* -ctk, -ctv */
    double temp = 0.8, top_p = 0.95, min_p = 0.05, penalty = 1.0;
    int ignore_eos = 0, sampling_given = 0, gopt, lr;
    cli_lora lora = {0};
    const char *sys = NULL;
    cli_grammar grammar = {0};
    for (a.i = 0; a.i < argc; a.i++) {
        const char *v;
#define VALUE() do { if (!(v = arg_value(&a))) return SM_EXIT_USAGE; } while (0)
#define SAMPLING() (sampling_given = 1)
        if (arg_is(&a, "-h", "--help")) { chat_usage(); return SM_EXIT_OK; }
        else if ((lr = cli_lora_arg(&a, &lora)) != 0) { if (lr < 0) return SM_EXIT_USAGE; }
        else if ((lr = cli_llamacpp_arg(&a)) != 0) { if (lr < 0) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-m", "--model")) { VALUE(); model_path = v; }
        else if (arg_is(&a, "-z", "--tokenizer")) { VALUE(); tok_path = v; }
        /* llama-cli's conversation mode (c392e509) takes -p as the system prompt */
        else if (arg_is(&a, "-sys", "--system") || arg_is(&a, NULL, "--system-prompt") || arg_is(&a, "-p", "--prompt")) {
            VALUE();
            if (sys) { cli_error(a.cmd, "give the system prompt once (-sys, --system-prompt or -p)"); return SM_EXIT_USAGE; }
            sys = v;
        }
        else if (arg_is(&a, "-cnv", "--conversation")) continue;   /* llama-cli's; chat always converses */
        else if (arg_is(&a, NULL, "--chat-template") || arg_is(&a, NULL, "--chat-template-file")) { VALUE(); tmpl_arg = v; }
        else if (arg_is(&a, NULL, "--jinja")) jinja = 1;
        else if (arg_is(&a, NULL, "--context-policy")) { VALUE(); policy_arg = v; }
        else if (arg_is(&a, NULL, "--session")) { VALUE(); k.session_path = v; }
        else if (arg_is(&a, NULL, "--kernels")) { VALUE(); kernels = v; }
        else if ((dopt = cli_draft_arg(&a, &draft)) != 0) { if (dopt < 0) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--ignore-eos")) ignore_eos = 1;
        else if (arg_is(&a, "-v", "--verbose")) k.verbose = 1;
        else if (arg_is(&a, NULL, "--ids")) k.show_ids = 1;
        else if (arg_is(&a, NULL, "--keep")) { VALUE(); if (!parse_int(&a, "--keep", v, 0, 1 << 24, &keep)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-n", "--n-predict")) { VALUE(); if (!parse_int(&a, "-n", v, -1, 1 << 24, &n_predict)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-c", "--ctx-size")) { VALUE(); if (!parse_int(&a, "-c", v, 0, 1 << 24, &n_ctx)) return SM_EXIT_USAGE; }
        else if ((kvopt = cli_kv_arg(&a, &type_k, &type_v)) != 0) { if (kvopt < 0) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-t", "--threads")) { VALUE(); if (!parse_int(&a, "-t", v, 1, 1024, &threads)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-s", "--seed")) { VALUE(); if (!parse_int(&a, "--seed", v, -1, INT64_MAX, &seed)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--temp")) { VALUE(); SAMPLING(); if (!parse_float(&a, "--temp", v, 0.0, 100.0, &temp)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--top-k")) { VALUE(); SAMPLING(); if (!parse_int(&a, "--top-k", v, 0, 1 << 24, &top_k)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--top-p")) { VALUE(); SAMPLING(); if (!parse_float(&a, "--top-p", v, 0.0, 1.0, &top_p)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--min-p")) { VALUE(); SAMPLING(); if (!parse_float(&a, "--min-p", v, 0.0, 1.0, &min_p)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--repeat-penalty")) { VALUE(); SAMPLING(); if (!parse_float(&a, "--repeat-penalty", v, 0.01, 100.0, &penalty)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--repeat-last-n")) { VALUE(); SAMPLING(); if (!parse_int(&a, "--repeat-last-n", v, -1, 1 << 24, &last_n)) return SM_EXIT_USAGE; }
        else if ((gopt = cli_grammar_arg(&a, &grammar)) != 0) { if (gopt < 0) return SM_EXIT_USAGE; }
        else { cli_error(a.cmd, "unknown option '%s' (see smallmind chat --help)", argv[a.i]); return SM_EXIT_USAGE; }
#undef SAMPLING
#undef VALUE
    }
    int policy = CHAT_SHIFT, policy_given = policy_arg != NULL;
    if (policy_arg) {
        if (!strcmp(policy_arg, "stop")) policy = CHAT_STOP;
        else if (!strcmp(policy_arg, "drop-oldest")) policy = CHAT_DROP_OLDEST;
        else if (!strcmp(policy_arg, "shift")) policy = CHAT_SHIFT;
        else {
            cli_error(a.cmd, "unknown --context-policy '%s' (stop, drop-oldest or shift)", policy_arg);
            return SM_EXIT_USAGE;
        }
    }
    if (sys && !*sys) sys = NULL;

    /* the session file is checked before the model is loaded */
    if (k.session_path && !cli_prepare_output(a.cmd, k.session_path)) return SM_EXIT_ERROR;
    char builtin[4096];
    if (!model_path && !(model_path = cli_default_chat_model(builtin, sizeof builtin)) &&
        !(model_path = cli_default_model(builtin, sizeof builtin))) {
        cli_error(a.cmd, "no model given and the built-in models/kjv-chat-3m.gguf is not beside smallmind: "
                         "pass -m MODEL.gguf");
        return SM_EXIT_USAGE;
    }
    int rc = SM_EXIT_ERROR;
    char *tmpl_text = NULL, *jinja_text = NULL;
    sm_session *session = NULL;
    sm_error err = {0};
    sm_model *model = cli_load_model(&a, model_path, tok_path);
    if (!model) return SM_EXIT_ERROR;
    sm_model_info info;
    sm_model_get_info(model, &info);
    if (info.warning) fprintf(stderr, "smallmind chat: warning: %s\n", info.warning);
    if (cli_grammar_setup(a.cmd, &grammar, model) != 0) goto done;
    if (tmpl_arg && !(tmpl_text = cli_template_value(a.cmd, tmpl_arg))) goto done;
    sm_chat_template_info ti;
    if (jinja && cli_jinja_template(a.cmd, model, tmpl_text, &jinja_text, &ti) != 0) goto done;
    if (!jinja_text && sm_chat_template_resolve(model, tmpl_text, &ti, &err) != SM_OK) {
        cli_error(a.cmd, "%s", err.message);
        goto done;
    }

    sm_session_params sp = sm_session_default_params();
    sp.n_ctx = (int)n_ctx;
    sp.type_k = (sm_kv_type)type_k;
    sp.type_v = (sm_kv_type)type_v;
    sp.n_threads = (int)threads;
    sp.seed = seed >= 0 ? (uint64_t)seed : ((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
    sp.kernels = kernels;
    if ((sp.lora_rank_max = cli_lora_load(a.cmd, &lora, model)) < 0) goto done;
    struct stat st;
    int resumed = k.session_path && stat(k.session_path, &st) == 0;
    if (resumed ? sm_session_load(model, k.session_path, &sp, &session, &err) != SM_OK
                : sm_session_create(model, &sp, &session, &err) != SM_OK) {
        cli_error(a.cmd, "%s", err.message);
        goto done;
    }
    if (cli_draft_setup(&a, &draft, &sp, session) != 0) goto done;
    if (cli_lora_set(a.cmd, &lora, session)) goto done;
    if (n_ctx > info.n_ctx_train)
        fprintf(stderr, "smallmind chat: warning: context %lld is longer than the %d tokens the model was trained on\n",
                n_ctx, info.n_ctx_train);
    if (policy == CHAT_SHIFT && sm_session_shift(session, 0, 0, &err) == SM_ERR_UNSUPPORTED) {
        if (policy_given) {
            cli_error(a.cmd, "--context-policy shift: %s", err.message);
            goto done;
        }
        policy = CHAT_DROP_OLDEST;
    }
    if (ti.warning) fprintf(stderr, "smallmind chat: warning: %s\n", ti.warning);

    chat *c = &k.c;
    chat_init(c, model, session, ti.name, ti.eot);
    c->jinja = jinja_text;
    c->policy = policy;
    c->keep_arg = (int)keep;
    c->n_predict = (int)n_predict;
    k.sys_arg = (char *)sys;
    sm_sampler_params *s = &c->gp.sampler;
    *s = (sm_sampler_params){(float)temp, (int)top_k, (float)top_p, (float)min_p, (float)penalty, (int)last_n, 0.0f, 0.0f, 0};
    c->gp.ignore_eos = ignore_eos;
    cli_draft_use(&draft, &c->gp);
    c->gp.grammar = grammar.matcher;
    c->gp.grammar_vocab = grammar.vocab;
    if (resumed) {
        adopt_loaded(&k);
        if (!sampling_given) sm_session_sampler(session, s);   /* the saved settings, unless others are given */
    } else if (sys && chat_set_system(c, sys) != 0) {
        cli_error(a.cmd, "out of memory");
        goto done;
    }
    if (keep >= sm_session_n_ctx(session) / 2)
        fprintf(stderr, "smallmind chat: warning: --keep %lld is more than half the context; a shift keeps %d\n", keep,
                chat_n_keep(c));

    k.tty_in = isatty(STDIN_FILENO);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;   /* no SA_RESTART: a read at the prompt returns when Ctrl-C is pressed */
    sigaction(SIGINT, &sa, NULL);
    if (k.tty_in)
        fprintf(stderr, "smallmind chat: %s, template %s%s. /help lists the commands; Ctrl-C stops a reply, "
                        "Ctrl-C at the prompt exits.\n", info.name, ti.name,
                resumed ? " (resumed)" : "");
    rc = SM_EXIT_OK;
    for (;;) {
        int sig = 0;
        char *line = read_turn(&k, &sig);
        if (!line) {
            if (k.tty_in || sig) fputc('\n', stdout);
            if (sig) rc = 130;
            break;
        }
        char *text = line + strspn(line, " \t");
        if (!*text) { free(line); continue; }
        if (text[0] == '/' && text[1] != '/') {
            int leave = command(&k, text);
            free(line);
            if (leave) break;
            continue;
        }
        if (text[0] == '/') text++;
        interrupted = 0;
        cli_grammar_restart(&grammar);   /* each reply is one document of the grammar */
        sm_error terr = {0};
        int ok = chat_turn(c, text, print_piece, &k, &terr) == 0;
        free(line);
        if (!ok) {
            cli_error(a.cmd, "%s", terr.message);
            continue;
        }
        fputc('\n', stdout);
        fflush(stdout);
        interrupted = 0;
        const sm_generate_stats *l = &c->last;
        if (l->stopped_by == 4)
            fprintf(stderr, "smallmind chat: the context is full (%d tokens): /reset to start again, or use "
                            "--context-policy drop-oldest or shift\n", sm_session_n_ctx(session));
        if (k.verbose)
            fprintf(stderr, "smallmind chat: turn %d: prompt %d evaluated, %d reused | reply %d tokens (%.1f tok/s) | "
                            "first token %.2f ms | context %d/%d | discarded %d | stop: %s\n",
                    c->totals.turns, l->n_prompt, l->n_reused, l->n_generated,
                    l->gen_seconds > 0 ? l->n_generated / l->gen_seconds : 0.0, l->ttft_seconds * 1e3,
                    sm_session_n_past(session), sm_session_n_ctx(session), l->n_discarded, stop_reason(l->stopped_by));
        if (k.show_ids) {
            fprintf(stderr, "smallmind chat: ids:");
            for (int i = 0; i < c->n_reply_ids; i++) fprintf(stderr, " %d", c->reply_ids[i]);
            fputc('\n', stderr);
        }
        if (k.session_path && save_to(&k, k.session_path) != 0) rc = SM_EXIT_ERROR;
    }
done:
    chat_free(&k.c);
    cli_draft_free(&draft);
    sm_session_free(session);
    cli_lora_free(&lora);
    sm_model_free(model);
    cli_grammar_free(&grammar);
    free(tmpl_text);
    free(jinja_text);
    return rc;
}

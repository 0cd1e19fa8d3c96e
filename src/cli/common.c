/* common.c - what several subcommands share beyond argument parsing:
 * loading the model a command was given and its LoRA adapters, and finding
 * the built-in models. */
#include "common.h"
#include "args.h"

#include <limits.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

sm_model *cli_load_model(const cli_args *a, const char *path, const char *tokenizer) {
    const char *cmd = a->cmd;
    if (!path) {
        cli_error(cmd, "no model given: pass -m MODEL.gguf (or a llama2.c .bin with -z TOKENIZER.bin)");
        return NULL;
    }
    sm_model_params mp = sm_model_default_params();
    mp.tokenizer_path = tokenizer;
    /* these only read the file: no run-time weight layout */
    mp.skip_repack = !strcmp(cmd, "inspect") || !strcmp(cmd, "tokenize");
    mp.inspect = !strcmp(cmd, "inspect");   /* lists even what it cannot run */
    mp.no_mmap = a->no_mmap;
    sm_model *m = NULL;
    sm_error err = {0};
    if (sm_model_load(path, &mp, &m, &err) != SM_OK) {
        cli_error(cmd, "%s", err.message);
        return NULL;
    }
    return m;
}

static void on_stale(void *user, const char *file, uint64_t bytes) {
    fprintf(stderr, "smallmind %s: removed '%s' (%llu bytes), the temporary file of a write that was interrupted\n",
            (const char *)user, file, (unsigned long long)bytes);
}

int cli_prepare_output(const char *cmd, const char *path) {
    sm_error err = {0};
    if (sm_output_check(path, &err) != SM_OK) {
        cli_error(cmd, "%s", err.message);
        return 0;
    }
    sm_output_remove_stale(path, on_stale, (void *)cmd);
    return 1;
}

FILE *cli_output_open(const char *cmd, const char *path, sm_output **out) {
    sm_error err = {0};
    *out = NULL;
    if (sm_output_open(path, out, &err) != SM_OK) {
        cli_error(cmd, "%s", err.message);
        return NULL;
    }
    FILE *f = sm_output_stream(*out);
    if (!f) {
        cli_error(cmd, "cannot write '%s': no stream", path);
        sm_output_discard(*out);
        *out = NULL;
    }
    return f;
}

int cli_output_close(const char *cmd, sm_output *o) {
    sm_error err = {0};
    if (sm_output_commit(o, &err) != SM_OK) {
        cli_error(cmd, "%s", err.message);
        return -1;
    }
    return 0;
}

/* A file beside the command in a checkout or build directory, or where
 * `make install` puts it; $env first (used as it is: no copy to cut short). */
static const char *find_model(const char *env_name, const char *file, char *buf, size_t cap) {
    const char *env = getenv(env_name);
    if (env && *env) return env;
    char exe[PATH_MAX + 1];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe);
    if (n <= 0 || (size_t)n >= sizeof exe) return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = '\0';
    const char *rel[] = {"/models/", "/../models/", "/../share/smallmind/"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        int w = snprintf(buf, cap, "%s%s%s", exe, rel[i], file);
        if (w > 0 && (size_t)w < cap && access(buf, R_OK) == 0) return buf;
    }
    return NULL;
}

const char *cli_default_model(char *buf, size_t cap) { return find_model("SMALLMIND_MODEL", "kjv-3m.gguf", buf, cap); }

const char *cli_default_chat_model(char *buf, size_t cap) {
    return find_model("SMALLMIND_CHAT_MODEL", "kjv-chat-3m.gguf", buf, cap);
}

int cli_lora_arg(cli_args *a, cli_lora *l) {
    int scaled = arg_is(a, NULL, "--lora-scaled");
    if (!scaled && !arg_is(a, NULL, "--lora")) return 0;
    const char *flag = scaled ? "--lora-scaled" : "--lora", *path = arg_value(a);
    if (!path) return -1;
    double scale = 1.0;
    if (scaled) {
        if (a->i + 1 >= a->argc) {
            cli_error(a->cmd, "--lora-scaled needs a file and a scale (see --help)");
            return -1;
        }
        if (!parse_float(a, flag, a->argv[++a->i], -1e6, 1e6, &scale)) return -1;
    }
    if (l->n == CLI_MAX_LORA) {
        cli_error(a->cmd, "at most %d adapters", CLI_MAX_LORA);
        return -1;
    }
    l->path[l->n] = path;
    l->scale[l->n++] = (float)scale;
    return 1;
}

/* llama.cpp options that change nothing here. A note says so for those that
 * would change how llama.cpp runs (GPU layers, batch sizes, flash
 * attention, locking memory); the ones about its console and
 * log (and its warm-up run, which SmallMind does not make) are taken
 * quietly. */
int cli_llamacpp_arg(cli_args *a) {
    const char *flag = a->argv[a->i], *v = NULL, *why = NULL;
    long long n;
    if (arg_is(a, "-ngl", "--n-gpu-layers") || arg_is(a, NULL, "--gpu-layers")) {
        if (!(v = arg_value(a))) return -1;
        if (strcmp(v, "auto") && strcmp(v, "all") && !parse_int(a, "-ngl", v, -1, 1 << 24, &n)) return -1;
        fprintf(stderr, "smallmind %s: note: -ngl %s ignored: SmallMind runs on the CPU\n", a->cmd, v);
        return 1;
    }
    if (arg_is(a, "-b", "--batch-size") || arg_is(a, "-ub", "--ubatch-size")) {
        if (!(v = arg_value(a)) || !parse_int(a, flag, v, 1, 1 << 24, &n)) return -1;
        fprintf(stderr, "smallmind %s: note: %s %s ignored: SmallMind sizes its batches itself\n", a->cmd, flag, v);
        return 1;
    }
    if (arg_is(a, "-fa", "--flash-attn")) {
        /* a flag in older llama.cpp, on|off|auto in newer */
        if (a->inline_value) v = a->inline_value;
        else if (a->i + 1 < a->argc && (!strcmp(a->argv[a->i + 1], "on") || !strcmp(a->argv[a->i + 1], "off") ||
                                        !strcmp(a->argv[a->i + 1], "auto")))
            v = a->argv[++a->i];
        if (v && strcmp(v, "on") && strcmp(v, "off") && strcmp(v, "auto")) {
            cli_error(a->cmd, "invalid value '%s' for --flash-attn: expected on, off or auto", v);
            return -1;
        }
        why = "attention always runs in blocks with an online softmax";
    } else if (arg_is(a, NULL, "--mlock")) {
        why = "the weights are mapped, not locked";
    } else if (arg_is(a, NULL, "--no-mmap") || arg_is(a, NULL, "--mmap")) {
        a->no_mmap = !strcmp(flag, "--no-mmap");
        return 1;
    } else if (arg_is(a, NULL, "--no-warmup") || arg_is(a, NULL, "--simple-io") || arg_is(a, "-co", "--color") ||
               arg_is(a, NULL, "--log-disable")) {
        return 1;
    } else {
        return 0;
    }
    fprintf(stderr, "smallmind %s: note: %s ignored: %s\n", a->cmd, flag, why);
    return 1;
}

/* llama.cpp's string_process_escapes (common.cpp): \n \r \t \' \" \\ and
 * \xHH; any other backslash stays as it is. \x00 stays too (a C string
 * cannot hold the byte). In place; the result is never longer. */
void cli_unescape(char *s) {
    char *o = s;
    for (const char *p = s; *p; p++) {
        if (p[0] != '\\' || !p[1]) { *o++ = *p; continue; }
        char c = 0;
        switch (p[1]) {
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case '\'': c = '\''; break;
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case 'x':
                if (isxdigit((unsigned char)p[2]) && isxdigit((unsigned char)p[3])) {
                    char hex[3] = {p[2], p[3], 0};
                    c = (char)strtol(hex, NULL, 16);
                    if (c) { *o++ = c; p += 3; continue; }
                }
                break;
        }
        if (c) { *o++ = c; p++; }
        else { *o++ = p[0]; *o++ = p[1]; p++; }
    }
    *o = '\0';
}

int cli_lora_load(const char *cmd, cli_lora *l, const sm_model *model) {
    int max_rank = 0;
    for (int i = 0; i < l->n; i++) {
        sm_error err = {0};
        if (sm_adapter_load(model, l->path[i], &l->adapter[i], &err) != SM_OK) {
            cli_error(cmd, "%s", err.message);
            return -1;
        }
        sm_adapter_info info;
        sm_adapter_get_info(l->adapter[i], &info);
        if (info.max_rank > max_rank) max_rank = info.max_rank;
    }
    return max_rank;
}

int cli_lora_set(const char *cmd, cli_lora *l, sm_session *session) {
    for (int i = 0; i < l->n; i++) {
        sm_error err = {0};
        if (l->scale[i] != 0.0f && sm_session_set_adapter(session, l->adapter[i], l->scale[i], &err) != SM_OK) {
            cli_error(cmd, "%s: %s", l->path[i], err.message);
            return -1;
        }
    }
    return 0;
}

void cli_lora_free(cli_lora *l) {
    for (int i = 0; i < l->n; i++) sm_adapter_free(l->adapter[i]);
    l->n = 0;
}

int cli_jinja_template(const char *cmd, const sm_model *model, const char *tmpl, char **text,
                       sm_chat_template_info *ti) {
    memset(ti, 0, sizeof *ti);
    sm_error err = {0};
    if (sm_chat_jinja_template(model, tmpl, text, &err) != SM_OK) {
        cli_error(cmd, "%s", err.message);
        return -1;
    }
    if (!*text) return 0;
    const char *like = sm_chat_template_detect(*text);
    ti->origin = tmpl ? "argument" : "model";
    ti->name = like ? like : "jinja";
    ti->eot = sm_chat_template_eot(*text);
    return 0;
}

char *cli_template_value(const char *cmd, const char *v) {
    size_t n;
    const char *const *names = sm_chat_template_names(&n);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v, names[i])) return strdup(v);
    struct stat st;
    if (stat(v, &st) == 0 && !S_ISDIR(st.st_mode)) {
        size_t len;
        char *t = read_text_file(cmd, v, 1u << 20, &len);
        if (t && strlen(t) != len) {
            cli_error(cmd, "the template file '%s' contains a NUL byte", v);
            free(t);
            return NULL;
        }
        return t;
    }
    char *t = strdup(v);
    if (!t) cli_error(cmd, "out of memory");
    return t;
}

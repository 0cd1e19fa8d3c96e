/* common.c - what several subcommands share beyond argument parsing:
 * loading the model a command was given, and finding the built-in one. */
#include "common.h"
#include "args.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

sm_model *cli_load_model(const char *cmd, const char *path, const char *tokenizer) {
    if (!path) {
        cli_error(cmd, "no model given: pass -m MODEL.gguf (or a llama2.c .bin with -z TOKENIZER.bin)");
        return NULL;
    }
    sm_model_params mp = sm_model_default_params();
    mp.tokenizer_path = tokenizer;
    /* these only read the file: no run-time weight layout */
    mp.skip_repack = !strcmp(cmd, "inspect") || !strcmp(cmd, "tokenize");
    mp.inspect = !strcmp(cmd, "inspect");   /* lists even what it cannot run */
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

const char *cli_default_model(char *buf, size_t cap) {
    const char *env = getenv("SMALLMIND_MODEL");
    if (env && *env) return env;   /* used as it is: no copy to cut short */
    char exe[PATH_MAX + 1];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe);
    if (n <= 0 || (size_t)n >= sizeof exe) return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = '\0';
    /* beside the command in a checkout or build directory, or where `make install` puts it */
    const char *rel[] = {"/models/kjv-3m.gguf", "/../models/kjv-3m.gguf", "/../share/smallmind/kjv-3m.gguf"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        int w = snprintf(buf, cap, "%s%s", exe, rel[i]);
        if (w > 0 && (size_t)w < cap && access(buf, R_OK) == 0) return buf;
    }
    return NULL;
}

/* main.c - the `smallmind` command: dispatches to a subcommand. */
#include "args.h"
#include "commands.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "SmallMind %s - run small transformer language models on the CPU\n"
            "\n"
            "usage: smallmind <command> [options]\n"
            "\n"
            "commands:\n"
            "  run        generate text from a model (GGUF or llama2.c .bin)\n"
            "  inspect    print a model file's metadata and tensor table\n"
            "  tokenize   show how a model's tokenizer splits a text\n"
            "  init       write a randomly initialised model of any shape\n"
            "  train      train a GPT-2 or LLaMA model on a text file\n"
            "  profile    time every step of generation and report where time and memory go\n"
            "  bench      measure prompt and generation speed, as llama-bench does\n"
            "  quantize   convert a model's weights to F16, Q8_0, Q4_0, Q4_K or Q6_K\n"
            "  perplexity measure a model's perplexity on a text file\n"
            "\n"
            "`smallmind <command> --help` describes each command's options.\n"
            "example: smallmind run -p \"In the beginning\"   (the built-in model, trained on the King James Bible)\n",
            SM_VERSION);
}

sm_model *cli_load_model(const char *cmd, const char *path, const char *tokenizer) {
    if (!path) {
        cli_error(cmd, "no model given: pass -m MODEL.gguf (or a llama2.c .bin with -z TOKENIZER.bin)");
        return NULL;
    }
    sm_model_params mp = sm_model_default_params();
    mp.tokenizer_path = tokenizer;
    /* these only read the file: no run-time weight layout */
    mp.skip_repack = !strcmp(cmd, "inspect") || !strcmp(cmd, "tokenize");
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
    const char *rel[] = {"/models/kjv-3m.gguf", "/../models/kjv-3m.gguf"};
    for (int i = 0; i < 2; i++) {
        int w = snprintf(buf, cap, "%s%s", exe, rel[i]);
        if (w > 0 && (size_t)w < cap && access(buf, R_OK) == 0) return buf;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return SM_EXIT_USAGE;
    }
    const char *c = argv[1];
    if (!strcmp(c, "-h") || !strcmp(c, "--help") || !strcmp(c, "help")) {
        usage(stdout);
        return SM_EXIT_OK;
    }
    if (!strcmp(c, "--version") || !strcmp(c, "version")) {
        printf("smallmind %s\nsimd: %s\nkernels: %s\n", SM_VERSION, sm_cpu_simd_features(), sm_kernels_list());
        return SM_EXIT_OK;
    }
    static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
        {"run", cmd_run}, {"inspect", cmd_inspect}, {"tokenize", cmd_tokenize}, {"init", cmd_init},
        {"profile", cmd_profile}, {"quantize", cmd_quantize}, {"bench", cmd_bench}, {"perplexity", cmd_perplexity},
        {"train", cmd_train}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(c, cmds[i].name)) continue;
        int rc = cmds[i].fn(argc - 2, argv + 2);
        /* what went to stdout must have been written: a full disk or a
         * closed pipe is an error, not a silent success */
        errno = 0;
        if (fflush(stdout) != 0 || ferror(stdout)) {
            cli_error(c, "cannot write the output: %s", errno ? strerror(errno) : "write error");
            if (rc == SM_EXIT_OK) rc = SM_EXIT_ERROR;
        }
        return rc;
    }
    cli_error(NULL, "unknown command '%s' (see smallmind --help)", c);
    return SM_EXIT_USAGE;
}

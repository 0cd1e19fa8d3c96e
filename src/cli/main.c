/* main.c - the `smallmind` command: dispatches to a subcommand. */
#include "args.h"
#include "commands.h"

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

const char *cli_default_model(char *buf, size_t cap) {
    const char *env = getenv("SMALLMIND_MODEL");
    if (env && *env) {
        snprintf(buf, cap, "%s", env);
        return buf;
    }
    char exe[2048];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = '\0';
    /* beside the command in a checkout or build directory, or where `make install` puts it */
    const char *rel[] = {"/models/kjv-3m.gguf", "/../models/kjv-3m.gguf", "/../share/smallmind/kjv-3m.gguf"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(buf, cap, "%s%s", exe, rel[i]);
        if (access(buf, R_OK) == 0) return buf;
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
    if (!strcmp(c, "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(c, "inspect")) return cmd_inspect(argc - 2, argv + 2);
    if (!strcmp(c, "tokenize")) return cmd_tokenize(argc - 2, argv + 2);
    if (!strcmp(c, "init")) return cmd_init(argc - 2, argv + 2);
    if (!strcmp(c, "profile")) return cmd_profile(argc - 2, argv + 2);
    if (!strcmp(c, "quantize")) return cmd_quantize(argc - 2, argv + 2);
    if (!strcmp(c, "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(c, "perplexity")) return cmd_perplexity(argc - 2, argv + 2);
    if (!strcmp(c, "train")) return cmd_train(argc - 2, argv + 2);
    cli_error(NULL, "unknown command '%s' (see smallmind --help)", c);
    return SM_EXIT_USAGE;
}

/* cmd_quantize.c - `smallmind quantize IN.gguf OUT.gguf [TYPE]`. */
#include "args.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void quantize_usage(void) {
    printf("usage: smallmind quantize IN.gguf OUT.gguf [TYPE]\n"
           "\n"
           "Writes a copy of a model with its weight matrices converted to TYPE:\n"
           "  F16, Q8_0, Q4_0, Q3_K, Q4_K, Q5_K (one type; the output matrix in Q6_K), or\n"
           "  Q4_1, Q5_0, Q5_1, IQ4_NL, BF16 (every matrix in that type), or\n"
           "  Q4_0_MIXED (the default: Q4_0, output matrix in Q6_K, as llama.cpp's Q4_0 files), or\n"
           "  a llama-quantize mix, each tensor typed by llama.cpp's rules (by its role and layer):\n"
           "  Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, IQ4_XS\n"
           "Norms and biases stay F32; a matrix whose rows do not divide into the type's\n"
           "blocks falls back to Q8_0, then F16 (the mixes: to llama.cpp's fallback types).\n"
           "The output loads in llama.cpp too.\n"
           "Measure what it costs with `smallmind perplexity`.\n");
}

static void on_progress(void *user, int done, int total, const char *name) {
    (void)user;
    fprintf(stderr, "\rsmallmind quantize: %d/%d tensors (%s)%-20s", done, total, name, "");
    if (done == total) fputc('\n', stderr);
}

int cmd_quantize(int argc, char **argv) {
    cli_args a = {"quantize", argc, 0, argv, NULL, 0};
    const char *pos[3] = {NULL, NULL, NULL};
    int n = 0;
    for (a.i = 0; a.i < argc; a.i++) {
        if (arg_is(&a, "-h", "--help")) { quantize_usage(); return SM_EXIT_OK; }
        if (argv[a.i][0] == '-' && argv[a.i][1]) { cli_error(a.cmd, "unknown option '%s'", argv[a.i]); return SM_EXIT_USAGE; }
        if (n == 3) { cli_error(a.cmd, "unexpected argument '%s'", argv[a.i]); return SM_EXIT_USAGE; }
        pos[n++] = argv[a.i];
    }
    if (n < 2) { cli_error(a.cmd, "give the input and output files: smallmind quantize IN.gguf OUT.gguf [TYPE]"); return SM_EXIT_USAGE; }
    /* the same file under another name (a link, ./x) counts too */
    struct stat si, so;
    if (!strcmp(pos[0], pos[1]) ||
        (stat(pos[0], &si) == 0 && stat(pos[1], &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)) {
        cli_error(a.cmd, "the output must not be the input file");
        return SM_EXIT_USAGE;
    }
    if (!cli_prepare_output(a.cmd, pos[1])) return SM_EXIT_ERROR;
    sm_error err = {0};
    if (sm_model_quantize_file(pos[0], pos[1], pos[2] ? pos[2] : "Q4_0_MIXED", on_progress, NULL, &err) != SM_OK) {
        cli_error(a.cmd, "%s", err.message);
        return err.status == SM_ERR_INVALID_ARG ? SM_EXIT_USAGE : SM_EXIT_ERROR;
    }
    fprintf(stderr, "smallmind quantize: wrote %s (%s)\n", pos[1], pos[2] ? pos[2] : "Q4_0_MIXED");
    return SM_EXIT_OK;
}

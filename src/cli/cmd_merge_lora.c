/* cmd_merge_lora.c - `smallmind merge-lora BASE ADAPTER OUT`: a model with
 * LoRA adapters baked into its weights. */
#include "args.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

static void merge_usage(void) {
    printf("usage: smallmind merge-lora BASE.gguf ADAPTER.gguf OUT.gguf [options]\n"
           "\n"
           "Writes BASE with the LoRA adapter baked in: each adapted matrix W becomes\n"
           "W + scale * alpha / rank * B A, dequantized, summed in F32 and quantized back to\n"
           "its own type (or --type). The result runs like `smallmind run -m BASE --lora ADAPTER`\n"
           "and loads in llama.cpp. A chat template the adapter carries is written when the\n"
           "base has none. The file appears atomically.\n"
           "\n"
           "  --scale S              the adapter's scale (default 1)\n"
           "  --lora FILE            another adapter to bake in as well (repeatable)\n"
           "  --lora-scaled FILE S   the same with a scale\n"
           "  --type T               convert every matrix to T, a type `smallmind quantize` takes\n"
           "                         (F32, F16, Q8_0, Q4_0, Q4_K, ...; not the llama-quantize mixes);\n"
           "                         default: each keeps its type\n");
}

int cmd_merge_lora(int argc, char **argv) {
    cli_args a = {"merge-lora", argc, 0, argv, NULL, 0};
    const char *pos[3] = {NULL, NULL, NULL}, *type = NULL;
    int n = 0, lr;
    double scale = 1.0;
    cli_lora more = {0};
    for (a.i = 0; a.i < argc; a.i++) {
        const char *v;
        if (arg_is(&a, "-h", "--help")) { merge_usage(); return SM_EXIT_OK; }
        else if ((lr = cli_lora_arg(&a, &more)) != 0) { if (lr < 0) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--scale")) {
            if (!(v = arg_value(&a)) || !parse_float(&a, "--scale", v, -1e6, 1e6, &scale)) return SM_EXIT_USAGE;
        } else if (arg_is(&a, NULL, "--type")) {
            if (!(type = arg_value(&a))) return SM_EXIT_USAGE;
        } else if (argv[a.i][0] == '-' && argv[a.i][1]) {
            cli_error(a.cmd, "unknown option '%s' (see smallmind merge-lora --help)", argv[a.i]);
            return SM_EXIT_USAGE;
        } else if (n == 3) {
            cli_error(a.cmd, "unexpected argument '%s'", argv[a.i]);
            return SM_EXIT_USAGE;
        } else {
            pos[n++] = argv[a.i];
        }
    }
    if (n < 3) { cli_error(a.cmd, "give the base, the adapter and the output: smallmind merge-lora BASE ADAPTER OUT"); return SM_EXIT_USAGE; }
    if (!strcmp(pos[0], pos[2]) || !strcmp(pos[1], pos[2])) {
        cli_error(a.cmd, "the output must not be one of the input files");
        return SM_EXIT_USAGE;
    }
    const char *paths[1 + CLI_MAX_LORA];
    float scales[1 + CLI_MAX_LORA];
    paths[0] = pos[1];
    scales[0] = (float)scale;
    for (int i = 0; i < more.n; i++) {
        paths[1 + i] = more.path[i];
        scales[1 + i] = more.scale[i];
    }
    sm_error err = {0};
    if (sm_model_merge_lora_file(pos[0], paths, scales, 1 + more.n, pos[2], type, &err) != SM_OK) {
        cli_error(a.cmd, "%s", err.message);
        return err.status == SM_ERR_INVALID_ARG ? SM_EXIT_USAGE : SM_EXIT_ERROR;
    }
    fprintf(stderr, "smallmind merge-lora: wrote %s\n", pos[2]);
    return SM_EXIT_OK;
}

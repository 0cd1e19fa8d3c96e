/* cmd_inspect.c - `smallmind inspect`: a model file's metadata and tensors. */
#include "args.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

static void inspect_usage(void) {
    printf("usage: smallmind inspect [-m] MODEL [-z TOKENIZER] [--no-tensors]\n"
           "\n"
           "Prints the file format, every metadata entry (arrays shortened), the tensor\n"
           "table (name, type, shape, file offset, bytes) and a summary of the model.\n");
}

int cmd_inspect(int argc, char **argv) {
    cli_args a = {"inspect", argc, 0, argv, NULL, 0};
    const char *path = NULL, *tok = NULL;
    int tensors = 1;
    for (a.i = 0; a.i < argc; a.i++) {
        const char *v;
        if (arg_is(&a, "-h", "--help")) { inspect_usage(); return SM_EXIT_OK; }
        else if (arg_is(&a, "-m", "--model")) { if (!(v = arg_value(&a))) return SM_EXIT_USAGE; path = v; }
        else if (arg_is(&a, "-z", "--tokenizer")) { if (!(v = arg_value(&a))) return SM_EXIT_USAGE; tok = v; }
        else if (arg_is(&a, NULL, "--no-tensors")) tensors = 0;
        else if (argv[a.i][0] == '-' && argv[a.i][1]) { cli_error(a.cmd, "unknown option '%s'", argv[a.i]); return SM_EXIT_USAGE; }
        else if (!path) path = argv[a.i];
        else { cli_error(a.cmd, "unexpected argument '%s'", argv[a.i]); return SM_EXIT_USAGE; }
    }
    sm_model *m = cli_load_model(&a, path, tok);
    if (!m) return SM_EXIT_ERROR;
    sm_model_info info;
    sm_model_get_info(m, &info);
    printf("file:     %s\nformat:   %s\n", path, info.format);
    int n_meta = sm_model_meta_count(m);
    printf("\nmetadata (%d entries):\n", n_meta);
    for (int i = 0; i < n_meta; i++) {
        char key[1024], type[64], value[512];
        if (sm_model_meta(m, i, key, sizeof key, type, sizeof type, value, sizeof value))
            printf("  %-44s %-14s %s\n", key, type, value);
    }
    int n_t = sm_model_tensor_count(m);
    if (tensors) {
        printf("\ntensors (%d):\n  %-32s %-6s %-24s %12s %12s\n", n_t, "name", "type", "shape", "offset", "bytes");
        for (int i = 0; i < n_t; i++) {
            sm_tensor_info t;
            if (!sm_model_tensor(m, i, &t)) continue;
            char shape[96];
            size_t w = 0;
            for (int d = 0; d < t.n_dims; d++)
                w += (size_t)snprintf(shape + w, sizeof shape - w, "%s%llu", d ? " x " : "", (unsigned long long)t.ne[d]);
            printf("  %-32s %-6s %-24s %12llu %12llu\n", t.name, t.type, shape, (unsigned long long)t.offset,
                   (unsigned long long)t.n_bytes);
        }
    }
    if (info.warning) printf("\nwarning:  %s\n", info.warning);
    printf("\nsummary:\n  name %s | arch %s | vocab %d", info.name, info.arch, info.n_vocab);
    if (info.has_weights) {
        printf(" | context %d | dim %d | layers %d | heads %d (kv %d) | ffn %d", info.n_ctx_train, info.dim,
               info.n_layers, info.n_heads, info.n_kv_heads, info.ffn_dim);
        if (info.n_expert) printf(" | %d experts (%d per token)", info.n_expert, info.n_expert_used);
        printf(" | %.2f M parameters | %.2f MiB of weights", (double)info.n_params / 1e6,
               (double)info.weights_bytes / (1024.0 * 1024.0));
    }
    else if (info.unsupported)
        printf(" | cannot run (below)");
    else
        printf(" | vocabulary only (no weights)");
    printf("\n");
    int status = SM_EXIT_OK;
    if (info.unsupported) {
        fflush(stdout);
        cli_error(a.cmd, "SmallMind cannot run this model: %s", info.unsupported);
        status = SM_EXIT_ERROR;
    }
    sm_model_free(m);
    return status;
}

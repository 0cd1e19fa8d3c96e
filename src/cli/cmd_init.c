/* cmd_init.c - `smallmind init`: write a randomly initialised model. */
#include "args.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

static void init_usage(void) {
    printf("usage: smallmind init OUT.gguf [options]\n"
           "\n"
           "Writes a randomly initialised model of any shape as a GGUF file (for training\n"
           "from scratch, benchmarks and tests). llama.cpp loads it too.\n"
           "\n"
           "  --arch ARCH          architecture (default llama): any SmallMind runs (llama, gpt2,\n"
           "                       qwen2, qwen3, phi3, gemma3, ...); an unknown name lists them all\n"
           "  --dim N              embedding size (default 288)\n"
           "  --layers N           transformer blocks (default 6)\n"
           "  --heads N            attention heads (default 6)\n"
           "  --kv-heads N         key/value heads, llama only (default = heads)\n"
           "  --ffn N              feed-forward size (default 768)\n"
           "  --ctx N              context length (default 256)\n"
           "  --vocab N            size of the built-in byte-level vocabulary (default 512)\n"
           "  --vocab-from FILE    copy the tokenizer of another GGUF file instead\n"
           "  --tied               share the token embedding with the output head\n"
           "  --experts N          a mixture of N experts of --ffn rows in each layer (llama as\n"
           "                       Mixtral; granitemoe, olmoe, qwen2moe, qwen3moe need it)\n"
           "  --experts-used K     experts each token goes through (default 2)\n"
           "  --type f32|f16       element type of the matrices (default f32)\n"
           "  --seed N             RNG seed (default 42)\n"
           "  --init-std F         standard deviation of the weights (default 0.02)\n"
           "  --random-norms       random norm weights and biases too (for numerical tests)\n"
           "  --name TEXT          general.name\n"
           "\n"
           "example: smallmind init tiny.gguf --arch gpt2 --dim 128 --layers 2 --heads 4 --ffn 512 --ctx 64 --vocab 300\n");
}

int cmd_init(int argc, char **argv) {
    cli_args a = {"init", argc, 0, argv, NULL, 0};
    sm_init_params p = sm_init_default_params();
    const char *out = NULL;
    long long v;
    double f;
    for (a.i = 0; a.i < argc; a.i++) {
        const char *s;
#define VALUE() do { if (!(s = arg_value(&a))) return SM_EXIT_USAGE; } while (0)
#define INT(flag, lo, hi, dst) do { VALUE(); if (!parse_int(&a, flag, s, lo, hi, &v)) return SM_EXIT_USAGE; dst = (int)v; } while (0)
        if (arg_is(&a, "-h", "--help")) { init_usage(); return SM_EXIT_OK; }
        else if (arg_is(&a, NULL, "--arch")) { VALUE(); p.arch = s; }   /* the library knows the architectures */
        else if (arg_is(&a, NULL, "--dim")) INT("--dim", 1, 65536, p.dim);
        else if (arg_is(&a, NULL, "--layers")) INT("--layers", 1, 1024, p.n_layers);
        else if (arg_is(&a, NULL, "--heads")) INT("--heads", 1, 65536, p.n_heads);
        else if (arg_is(&a, NULL, "--kv-heads")) INT("--kv-heads", 1, 65536, p.n_kv_heads);
        else if (arg_is(&a, NULL, "--ffn")) INT("--ffn", 1, 1 << 20, p.ffn_dim);
        else if (arg_is(&a, NULL, "--ctx")) INT("--ctx", 1, 1 << 20, p.n_ctx);
        else if (arg_is(&a, NULL, "--vocab")) INT("--vocab", 1, 1 << 20, p.n_vocab);
        else if (arg_is(&a, NULL, "--vocab-from")) { VALUE(); p.vocab_from = s; }
        else if (arg_is(&a, NULL, "--tied")) p.tied = 1;
        else if (arg_is(&a, NULL, "--experts")) INT("--experts", 0, 256, p.n_expert);
        else if (arg_is(&a, NULL, "--experts-used")) INT("--experts-used", 1, 256, p.n_expert_used);
        else if (arg_is(&a, NULL, "--random-norms")) p.random_norms = 1;
        else if (arg_is(&a, NULL, "--name")) { VALUE(); p.name = s; }
        else if (arg_is(&a, NULL, "--type")) {
            VALUE();
            if (!strcmp(s, "f16")) p.f16 = 1;
            else if (!strcmp(s, "f32")) p.f16 = 0;
            else { cli_error(a.cmd, "--type must be f32 or f16, not '%s'", s); return SM_EXIT_USAGE; }
        }
        else if (arg_is(&a, "-s", "--seed")) { VALUE(); if (!parse_int(&a, "--seed", s, 0, INT64_MAX, &v)) return SM_EXIT_USAGE; p.seed = (uint64_t)v; }
        else if (arg_is(&a, NULL, "--init-std")) { VALUE(); if (!parse_float(&a, "--init-std", s, 1e-6, 10.0, &f)) return SM_EXIT_USAGE; p.init_std = (float)f; }
        else if (arg_is(&a, "-o", "--out")) { VALUE(); out = s; }
        else if (argv[a.i][0] == '-' && argv[a.i][1]) { cli_error(a.cmd, "unknown option '%s' (see smallmind init --help)", argv[a.i]); return SM_EXIT_USAGE; }
        else if (!out) out = argv[a.i];
        else { cli_error(a.cmd, "unexpected argument '%s'", argv[a.i]); return SM_EXIT_USAGE; }
#undef INT
#undef VALUE
    }
    if (!out) { cli_error(a.cmd, "give the output file: smallmind init OUT.gguf [options]"); return SM_EXIT_USAGE; }
    if (!cli_prepare_output(a.cmd, out)) return SM_EXIT_ERROR;
    sm_error err = {0};
    if (sm_model_init_file(&p, out, &err) != SM_OK) {
        cli_error(a.cmd, "%s", err.message);
        return SM_EXIT_ERROR;
    }
    sm_model *m = cli_load_model(&a, out, NULL);
    if (!m) return SM_EXIT_ERROR;
    sm_model_info info;
    sm_model_get_info(m, &info);
    fprintf(stderr, "smallmind init: wrote %s: %s, dim %d, %d layers, %d heads (kv %d), ffn %d, context %d, vocab %d, %.2f M parameters\n",
            out, info.arch, info.dim, info.n_layers, info.n_heads, info.n_kv_heads, info.ffn_dim, info.n_ctx_train,
            info.n_vocab, (double)info.n_params / 1e6);
    sm_model_free(m);
    return SM_EXIT_OK;
}

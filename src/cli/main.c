/* main.c - the `smallmind` command: dispatches to a subcommand. */
#include "args.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

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
            "  train      train a GPT-2 or LLaMA model on a text file, or a LoRA adapter, or on chat examples\n"
            "  profile    time every step of generation and report where time and memory go\n"
            "  bench      measure prompt and generation speed, as llama-bench does\n"
            "  quantize   convert a model's weights to F16, Q8_0, Q4_0, Q4_K or Q6_K\n"
            "  merge-lora bake LoRA adapters (from train --lora-rank) into a model's weights\n"
            "  perplexity measure a model's perplexity on a text file\n"
            "  chat       talk with a model: multi-turn, in its chat template, sessions saved and resumed\n"
            "  chat-template  print a conversation formatted with a model's chat template\n"
            "  serve      an OpenAI-compatible HTTP server with a chat page\n"
            "\n"
            "`smallmind <command> --help` describes each command's options.\n"
            "example: smallmind run -p \"In the beginning\"   (the built-in model, trained on the King James Bible)\n",
            SM_VERSION);
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
#ifdef SM_HAVE_MPI
        printf("mpi: yes (train under mpirun)\n");
#endif
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
    if (!strcmp(c, "chat-template")) return cmd_chat_template(argc - 2, argv + 2);
    if (!strcmp(c, "merge-lora")) return cmd_merge_lora(argc - 2, argv + 2);
    if (!strcmp(c, "serve")) return cmd_serve(argc - 2, argv + 2);
    if (!strcmp(c, "chat")) return cmd_chat(argc - 2, argv + 2);
    cli_error(NULL, "unknown command '%s' (see smallmind --help)", c);
    return SM_EXIT_USAGE;
}

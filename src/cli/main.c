/* main.c - the `smallmind` command: dispatches to a subcommand. */
#include "args.h"
#include "commands.h"

#include <errno.h>
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
            "  quantize   convert a model's weights to another type (F16, BF16, Q8_0, Q4_0, K-quants, mixes)\n"
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
    static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
        {"run", cmd_run}, {"inspect", cmd_inspect}, {"tokenize", cmd_tokenize}, {"init", cmd_init},
        {"profile", cmd_profile}, {"quantize", cmd_quantize}, {"bench", cmd_bench}, {"perplexity", cmd_perplexity},
        {"train", cmd_train}, {"chat-template", cmd_chat_template}, {"chat", cmd_chat}, {"serve", cmd_serve},
        {"merge-lora", cmd_merge_lora}};
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

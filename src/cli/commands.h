/* commands.h - the CLI's subcommands. Each takes the arguments after its
 * name and returns the process exit status. */
#ifndef SM_CLI_COMMANDS_H
#define SM_CLI_COMMANDS_H

#include "smallmind.h"

int cmd_run(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_train(int argc, char **argv);

/* Loads -m MODEL (with -z TOKENIZER for llama2.c files), printing any
 * error; NULL on failure. */
sm_model *cli_load_model(const char *cmd, const char *path, const char *tokenizer);

/* Checks that an output file can be written (a regular file or a new one,
 * a link's target, in a writable directory; see sm_output_check) before any
 * work starts, and removes the temporary files interrupted writes of it left
 * behind, saying so. Prints the error and returns 0 when it cannot be written. */
int cli_prepare_output(const char *cmd, const char *path);

/* The built-in model's path: $SMALLMIND_MODEL if set, else models/kjv-3m.gguf
 * beside the executable or one directory up (for build/smallmind); NULL if
 * there is none. */
const char *cli_default_model(char *buf, size_t cap);

#endif

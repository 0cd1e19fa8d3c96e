/* common.h - what several subcommands share beyond argument parsing
 * (common.c). */
#ifndef SM_CLI_COMMON_H
#define SM_CLI_COMMON_H

#include <stddef.h>
#include "smallmind.h"

/* Loads -m MODEL (with -z TOKENIZER for llama2.c files), printing any
 * error; NULL on failure. */
sm_model *cli_load_model(const char *cmd, const char *path, const char *tokenizer);

/* Checks that an output file can be written (a regular file or a new one,
 * a link's target, in a writable directory; see sm_output_check) before any
 * work starts, and removes the temporary files interrupted writes of it left
 * behind, saying so. Prints the error and returns 0 when it cannot be written. */
int cli_prepare_output(const char *cmd, const char *path);

/* A file written as SmallMind writes every file (sm_output_*: a regular file
 * only, atomically, every write checked), through a stdio stream.
 * cli_output_open prints the problem and returns NULL; cli_output_close
 * commits the file (prints the problem and returns -1 when it could not be
 * written); sm_output_discard abandons it. */
FILE *cli_output_open(const char *cmd, const char *path, sm_output **out);
int cli_output_close(const char *cmd, sm_output *o);

/* The built-in model's path: $SMALLMIND_MODEL if set, else models/kjv-3m.gguf
 * beside the executable or one directory up (for build/smallmind); NULL if
 * there is none. */
const char *cli_default_model(char *buf, size_t cap);

#endif

/* common.h - what several subcommands share beyond argument parsing
 * (common.c). */
#ifndef SM_CLI_COMMON_H
#define SM_CLI_COMMON_H

#include <stddef.h>
#include "smallmind.h"

/* Loads -m MODEL (with -z TOKENIZER for llama2.c files), mapped or, after
 * --no-mmap, read; printing any error; NULL on failure. */
struct cli_args;
sm_model *cli_load_model(const struct cli_args *a, const char *path, const char *tokenizer);

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

/* LoRA adapters a command was given: --lora FILE and --lora-scaled FILE
 * SCALE, repeatable (as llama.cpp's), loaded after the model and set on its
 * session. */
#define CLI_MAX_LORA 8
typedef struct cli_lora {
    const char *path[CLI_MAX_LORA];
    float scale[CLI_MAX_LORA];
    sm_adapter *adapter[CLI_MAX_LORA];
    int n;
} cli_lora;

struct cli_args;
/* If argv[a->i] is --lora or --lora-scaled, takes it and its values: 1;
 * not one of them: 0; a bad value: -1 (after a message). */
int cli_lora_arg(struct cli_args *a, cli_lora *l);
/* llama.cpp options that change nothing here, so that a llama.cpp command
 * line runs: -ngl / --n-gpu-layers / --gpu-layers N (an integer, "auto" or
 * "all"; ignored as llama.cpp does on a machine without a GPU), -b / -ub N,
 * -fa [on|off|auto], --mlock, --no-mmap (each with a note on stderr), and
 * --no-warmup, --simple-io, -co / --color, --log-disable (quietly). 1:
 * taken; 0: not one of them; -1: a bad value (after a message). */
int cli_llamacpp_arg(struct cli_args *a);
/* llama.cpp's escapes (its -e, on by default) in place: \n \r \t \' \" \\ \xHH. */
void cli_unescape(char *s);
#define CLI_LLAMACPP_USAGE                                                                                \
    "      --no-mmap           read the model into memory (huge pages), not map it: faster decode\n"   \
    "                          of a model larger than the caches, for a slower load\n"                 \
    "  -ngl N, -b N, -ub N, -fa, --mlock, --no-warmup, --simple-io, --color, --log-disable\n"            \
    "                          llama.cpp's options: accepted so its command lines run; they change\n"   \
    "                          nothing here (SmallMind runs on the CPU and plans its own batches)\n"
/* The usage lines of the two flags. */
#define CLI_LORA_USAGE                                                                                    \
    "      --lora FILE         apply a LoRA adapter (llama.cpp's GGUF adapter format); repeatable\n"     \
    "      --lora-scaled FILE SCALE  the same with a scale (--lora is SCALE 1)\n"
/* Loads the adapters against the model; returns the largest rank (for
 * sm_session_params.lora_rank_max), 0 without adapters, -1 after a message. */
int cli_lora_load(const char *cmd, cli_lora *l, const sm_model *model);
/* Sets them on a session; 0, or -1 after a message. */
int cli_lora_set(const char *cmd, cli_lora *l, sm_session *session);
void cli_lora_free(cli_lora *l);

/* The built-in chat model's path (what `smallmind chat` runs without -m):
 * $SMALLMIND_CHAT_MODEL if set, else models/kjv-chat-3m.gguf beside the
 * executable, one directory up, or in ../share/smallmind; NULL if none. */
const char *cli_default_chat_model(char *buf, size_t cap);

/* --jinja: the template to run as Jinja in *text (malloc'd): tmpl when it
 * is template text rather than a built-in name, else the model's
 * tokenizer.chat_template; and in *ti the built-in format it resembles, for
 * its end-of-turn text (name "jinja" when none). *text stays NULL when
 * there is none to run (then the built-in formats serve). The template is
 * tried on a one-message conversation first, so a template that cannot
 * run fails here. Returns 0, or -1 after reporting an error. */
int cli_jinja_template(const char *cmd, const sm_model *model, const char *tmpl, char **text,
                       sm_chat_template_info *ti);

/* --chat-template's value (and --chat-template-file's): a built-in name, a
 * file's text (up to 1 MiB), or the template text itself; malloc'd, or NULL
 * after reporting an error. */
char *cli_template_value(const char *cmd, const char *v);

#endif

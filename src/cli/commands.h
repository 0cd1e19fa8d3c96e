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
int cmd_chat_template(int argc, char **argv);
int cmd_merge_lora(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_chat(int argc, char **argv);

#include "common.h"   /* what the commands share */

#endif

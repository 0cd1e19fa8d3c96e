/* grammar_opts.h - the constrained-generation options `run` and `chat`
 * share: --grammar, --grammar-file, --json-schema and --json, turned into a
 * grammar, its matcher and the model's grammar vocabulary. */
#ifndef SM_CLI_GRAMMAR_OPTS_H
#define SM_CLI_GRAMMAR_OPTS_H

#include "args.h"
#include "smallmind.h"

typedef struct cli_grammar {
    const char *text;            /* --grammar TEXT */
    const char *file;            /* --grammar-file FILE */
    const char *schema;          /* --json-schema FILE|TEXT */
    int json;                    /* --json: any JSON value */
    sm_grammar *grammar;
    sm_grammar_matcher *matcher;
    sm_grammar_vocab *vocab;
} cli_grammar;

#define CLI_GRAMMAR_USAGE                                                                               \
    "constrained output:\n"                                                                             \
    "      --grammar TEXT      a GBNF grammar (llama.cpp's syntax) the output must follow\n"              \
    "      --grammar-file FILE the grammar from a file\n"                                                \
    "      --json-schema S     JSON that validates against the schema S (a file, or the schema's text)\n" \
    "      --json              any JSON value\n"                                                         \
    "                          generation ends when the output is complete\n"

/* 1 when argv[a->i] is one of the options (its value taken), 0 when it is
 * not, -1 after an error message. */
int cli_grammar_arg(cli_args *a, cli_grammar *g);
/* Builds what the options ask for (nothing when none was given); 0, or -1
 * after an error message. */
int cli_grammar_setup(const char *cmd, cli_grammar *g, const sm_model *model);
/* The output starts again (the matcher back at the grammar's start). */
void cli_grammar_restart(cli_grammar *g);
void cli_grammar_free(cli_grammar *g);

#endif

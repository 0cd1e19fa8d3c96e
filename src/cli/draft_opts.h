/* draft_opts.h - the speculative-decoding options `run` and `chat` share:
 * -md/--draft FILE (llama.cpp's --model-draft), --draft-n N (--draft-max)
 * and --draft-p-min P, turned into a draft model and its session. */
#ifndef SM_CLI_DRAFT_OPTS_H
#define SM_CLI_DRAFT_OPTS_H

#include "args.h"
#include "smallmind.h"

typedef struct cli_draft {
    const char *path;            /* -md, --draft FILE (NULL: no draft) */
    long long n;                 /* --draft-n N: tokens proposed per round, at most */
    double p_min;                /* --draft-p-min P: stop proposing below this confidence */
    sm_model *model;
    sm_session *session;
} cli_draft;

#define CLI_DRAFT_DEFAULT {NULL, 0, 0.0, NULL, NULL}   /* n 0: the library's default */

/* 1 when argv[a->i] is one of the options (its value taken), 0 when it is
 * not, -1 after an error message. */
int cli_draft_arg(cli_args *a, cli_draft *d);
/* Loads the draft and makes its session beside the target's (the same
 * parameters, the target's context, the next seed, no profiling); nothing
 * when no draft was given. 0, or -1 after an error message. */
int cli_draft_setup(const cli_args *a, cli_draft *d, const sm_session_params *sp, const sm_session *target);
/* Sets the generation parameters to use the draft (when there is one). */
void cli_draft_use(const cli_draft *d, sm_generate_params *gp);
void cli_draft_free(cli_draft *d);

#endif

/* draft_opts.c - see draft_opts.h. */
#include "draft_opts.h"
#include "common.h"

int cli_draft_arg(cli_args *a, cli_draft *d) {
    const char *v;
    if (arg_is(a, "-md", "--draft") || arg_is(a, NULL, "--model-draft")) {
        if (!(v = arg_value(a))) return -1;
        d->path = v;
        return 1;
    }
    if (arg_is(a, NULL, "--draft-n") || arg_is(a, NULL, "--draft-max")) {
        if (!(v = arg_value(a)) || !parse_int(a, "--draft-n", v, 1, 64, &d->n)) return -1;
        return 1;
    }
    if (arg_is(a, NULL, "--draft-p-min")) {
        if (!(v = arg_value(a)) || !parse_float(a, "--draft-p-min", v, 0.0, 1.0, &d->p_min)) return -1;
        return 1;
    }
    return 0;
}

int cli_draft_setup(const cli_args *a, cli_draft *d, const sm_session_params *sp, const sm_session *target) {
    const char *cmd = a->cmd;
    if (!d->path) return 0;
    if (!(d->model = cli_load_model(a, d->path, NULL))) return -1;
    sm_session_params dp = *sp;
    dp.n_ctx = sm_session_n_ctx(target);
    dp.seed = sp->seed + 1;
    dp.profile = 0;
    sm_error err = {0};
    if (sm_session_create(d->model, &dp, &d->session, &err) != SM_OK) {
        cli_error(cmd, "draft model: %s", err.message);
        return -1;
    }
    return 0;
}

void cli_draft_use(const cli_draft *d, sm_generate_params *gp) {
    gp->draft = d->session;
    gp->n_draft = (int)d->n;
    gp->draft_p_min = (float)d->p_min;
}

void cli_draft_free(cli_draft *d) {
    sm_session_free(d->session);
    sm_model_free(d->model);
    d->session = NULL;
    d->model = NULL;
}

/* grammar_opts.c - see grammar_opts.h. JSON Schemas are converted by
 * src/json (Jansson), present when the command was built with it. */
#include "grammar_opts.h"
#include "common.h"
#ifdef SM_HAVE_JANSSON
#include "json/json_schema.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GRAMMAR_FILE (16u << 20)

int cli_grammar_arg(cli_args *a, cli_grammar *g) {
    const char **dst = NULL;
    if (arg_is(a, NULL, "--grammar")) dst = &g->text;
    else if (arg_is(a, NULL, "--grammar-file")) dst = &g->file;
    else if (arg_is(a, NULL, "--json-schema")) dst = &g->schema;
    else if (arg_is(a, NULL, "--json")) { g->json = 1; return 1; }
    else return 0;
    if (!(*dst = arg_value(a))) return -1;
    return 1;
}

int cli_grammar_setup(const char *cmd, cli_grammar *g, const sm_model *model) {
    int given = (g->text != NULL) + (g->file != NULL) + (g->schema != NULL) + g->json;
    if (given == 0) return 0;
    if (given > 1) {
        cli_error(cmd, "give one of --grammar, --grammar-file, --json-schema and --json");
        return -1;
    }
    char *owned = NULL;
    const char *text = g->text;
    size_t len = text ? strlen(text) : 0;
    sm_error err = {0};
    if (g->json) {
        text = sm_grammar_json_value();
        len = strlen(text);
    } else if (g->file) {
        if (!(owned = read_text_file(cmd, g->file, MAX_GRAMMAR_FILE, &len))) return -1;
        text = owned;
    } else if (g->schema) {
#ifdef SM_HAVE_JANSSON
        const char *s = g->schema;
        size_t slen = strlen(s);
        char *file = NULL;
        if (*s != '{' && *s != '[') {   /* a file name rather than a schema */
            if (!(file = read_text_file(cmd, s, MAX_GRAMMAR_FILE, &slen))) return -1;
            s = file;
        }
        char warnings[512];
        char *converted = NULL;
        sm_status st = sm_json_schema_text_to_grammar(s, slen, &converted, warnings, sizeof warnings, &err);
        free(file);
        if (st) {
            cli_error(cmd, "--json-schema: %s", err.message);
            return -1;
        }
        if (warnings[0]) fprintf(stderr, "smallmind %s: warning: the schema's %s\n", cmd, warnings);
        owned = strdup(converted);
        sm_json_schema_free(converted);
        if (!owned) { cli_error(cmd, "out of memory"); return -1; }
        text = owned;
        len = strlen(owned);
#else
        cli_error(cmd, "--json-schema needs Jansson: install libjansson-dev and rebuild (make)");
        return -1;
#endif
    }
    int rc = -1;
    if (sm_grammar_parse(text, len, NULL, &g->grammar, &err) != SM_OK)
        cli_error(cmd, "%s", err.message);
    else if (sm_grammar_matcher_new(g->grammar, &g->matcher, &err) != SM_OK ||
             sm_grammar_vocab_for_model(model, &g->vocab, &err) != SM_OK)
        cli_error(cmd, "%s", err.message);
    else
        rc = 0;
    free(owned);
    return rc;
}

void cli_grammar_restart(cli_grammar *g) {
    if (g->matcher) sm_grammar_matcher_reset(g->matcher);
}

void cli_grammar_free(cli_grammar *g) {
    sm_grammar_matcher_free(g->matcher);
    sm_grammar_vocab_free(g->vocab);
    sm_grammar_free(g->grammar);
    g->matcher = NULL;
    g->vocab = NULL;
    g->grammar = NULL;
}

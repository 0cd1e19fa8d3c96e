/* test_grammar_json.c - the grammar engine and the JSON Schema converter
 * against llama.cpp's own test data (../shared/refs/llamacpp): the verdicts
 * of tests/test-grammar-integration.cpp (grammars and schemas, strings that
 * must be accepted or rejected, grammars that must fail to build) and the
 * cases of tests/test-json-schema-to-grammar.cpp (which schemas convert and
 * which are refused). Needs Jansson to read the data; compiled empty
 * without it. */
#ifdef SM_HAVE_JANSSON
#include "test.h"
#include "json/json_schema.h"

#include <jansson.h>
#include <stdlib.h>

static json_t *load_cases(const char *path) {
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    if (!doc) {
        test_fail(__FILE__, __LINE__, "%s: %s", path, je.text);
        return NULL;
    }
    return doc;
}

/* Whether the matcher takes s whole and is then complete (llama.cpp's
 * "accepted fully"). step: feed s in pieces of that many bytes (so pieces
 * end inside UTF-8 characters), each first tried then accepted. */
static int accepts(sm_grammar_matcher *m, const char *s, size_t step) {
    sm_grammar_matcher_reset(m);
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i += step) {
        size_t k = n - i < step ? n - i : step;
        int tried = sm_grammar_matcher_try(m, s + i, k);
        sm_status st = sm_grammar_matcher_accept(m, s + i, k, NULL);
        if (tried != (st == SM_OK)) test_fail(__FILE__, __LINE__, "try and accept disagree on \"%s\"", s);
        if (st != SM_OK) return 0;
    }
    return sm_grammar_matcher_is_complete(m);
}

static int build(const json_t *c, sm_grammar **g, char *why, size_t cap) {
    const char *kind = json_string_value(json_object_get(c, "kind"));
    sm_error err = {0};
    char *text = NULL;
    int ok;
    if (!strcmp(kind, "schema")) {
        const char *st = json_string_value(json_object_get(c, "schema_text"));
        if (sm_json_schema_text_to_grammar(st, strlen(st), &text, NULL, 0, &err) != SM_OK) {
            snprintf(why, cap, "%s", err.message);
            return 0;
        }
        ok = sm_grammar_parse(text, strlen(text), NULL, g, &err) == SM_OK;
    } else {
        const char *gt = json_string_value(json_object_get(c, "grammar"));
        ok = sm_grammar_parse(gt, strlen(gt), NULL, g, &err) == SM_OK;
    }
    if (!ok) snprintf(why, cap, "%s", err.message);
    sm_json_schema_free(text);
    return ok;
}

TEST(grammar_llamacpp_integration) {
    NEED_SHARED(path, "refs/llamacpp/grammar-integration.json");
    json_t *doc = load_cases(path);
    REQUIRE(doc);
    json_t *cases = json_object_get(doc, "cases");
    size_t n_strings = 0, n_refusals = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        const char *kind = json_string_value(json_object_get(c, "kind"));
        const char *desc = json_string_value(json_object_get(c, "description"));
        sm_grammar *g = NULL;
        char why[512] = "";
        int built = build(c, &g, why, sizeof why);
        if (!strcmp(kind, "build_fails") || !strcmp(kind, "missing_root") || !strcmp(kind, "parse_fails")) {
            CHECKF(!built, "case %zu (%s): must fail to build", i, desc);
            CHECKF(built || why[0], "case %zu (%s): failed without a message", i, desc);
            n_refusals++;
            sm_grammar_free(g);
            continue;
        }
        CHECKF(built, "case %zu (%s): %s", i, desc, why);
        if (!built) continue;
        sm_grammar_matcher *m;
        REQUIRE(sm_grammar_matcher_new(g, &m, NULL) == SM_OK);
        const json_t *pass = json_object_get(c, "passing"), *failing = json_object_get(c, "failing");
        for (size_t j = 0; j < json_array_size(pass); j++) {
            const char *s = json_string_value(json_array_get(pass, j));
            CHECKF(accepts(m, s, 1 << 20), "case %zu (%s): must accept \"%s\"", i, desc, s);
            CHECKF(accepts(m, s, 1), "case %zu (%s): must accept \"%s\" byte by byte", i, desc, s);
            CHECKF(accepts(m, s, 3), "case %zu (%s): must accept \"%s\" in 3-byte pieces", i, desc, s);
            n_strings++;
        }
        for (size_t j = 0; j < json_array_size(failing); j++) {
            const char *s = json_string_value(json_array_get(failing, j));
            CHECKF(!accepts(m, s, 1 << 20), "case %zu (%s): must reject \"%s\"", i, desc, s);
            CHECKF(!accepts(m, s, 1), "case %zu (%s): must reject \"%s\" byte by byte", i, desc, s);
            n_strings++;
        }
        sm_grammar_matcher_free(m);
        sm_grammar_free(g);
    }
    CHECKF(n_strings == 351, "%zu strings checked, the data has 351", n_strings);
    CHECKF(n_refusals == 6, "%zu refusals checked, the data has 6", n_refusals);
    json_decref(doc);
}

TEST(grammar_llamacpp_schema_conversion) {
    NEED_SHARED(path, "refs/llamacpp/json-schema-to-grammar.json");
    json_t *doc = load_cases(path);
    REQUIRE(doc);
    json_t *cases = json_object_get(doc, "cases");
    size_t n_ok = 0, n_refused = 0, n_theirs = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        const char *desc = json_string_value(json_object_get(c, "description"));
        const char *st = json_string_value(json_object_get(c, "schema_text"));
        int should = !strcmp(json_string_value(json_object_get(c, "expected_status")), "success");
        sm_error err = {0};
        char *text = NULL;
        sm_status s = sm_json_schema_text_to_grammar(st, strlen(st), &text, NULL, 0, &err);
        if (should) {
            CHECKF(s == SM_OK, "case %zu (%s): must convert: %s", i, desc, err.message);
            sm_grammar *g = NULL;
            if (s == SM_OK) {
                CHECKF(sm_grammar_parse(text, strlen(text), NULL, &g, &err) == SM_OK, "case %zu (%s): our grammar: %s\n%s",
                       i, desc, err.message, text);
                n_ok++;
            }
            sm_grammar_free(g);
            /* llama.cpp's own grammar for the schema is GBNF our parser must read. */
            const char *theirs = json_string_value(json_object_get(c, "expected_grammar"));
            g = NULL;
            CHECKF(sm_grammar_parse(theirs, strlen(theirs), NULL, &g, &err) == SM_OK,
                   "case %zu (%s): llama.cpp's grammar does not parse: %s", i, desc, err.message);
            n_theirs += g != NULL;
            sm_grammar_free(g);
        } else {
            CHECKF(s != SM_OK, "case %zu (%s): must be refused", i, desc);
            CHECKF(s == SM_OK || strstr(err.message, "type"), "case %zu (%s): unclear message: %s", i, desc, err.message);
            n_refused += s != SM_OK;
        }
        sm_json_schema_free(text);
    }
    CHECKF(n_ok == 63 && n_refused == 2 && n_theirs == 63, "%zu converted, %zu refused, %zu of llama.cpp's parsed", n_ok,
           n_refused, n_theirs);
    json_decref(doc);
}

#endif

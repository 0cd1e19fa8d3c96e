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

/* Converts schema text and checks strings (JSON texts) against the grammar. */
static void schema_verdicts(const char *schema, int want, const char *const *strings) {
    sm_error err = {0};
    char *text = NULL;
    if (sm_json_schema_text_to_grammar(schema, strlen(schema), &text, NULL, 0, &err) != SM_OK) {
        test_fail(__FILE__, __LINE__, "%s: %s", schema, err.message);
        return;
    }
    sm_grammar *g = NULL;
    sm_grammar_matcher *m = NULL;
    if (sm_grammar_parse(text, strlen(text), NULL, &g, &err) != SM_OK || sm_grammar_matcher_new(g, &m, &err) != SM_OK) {
        test_fail(__FILE__, __LINE__, "%s: %s\n%s", schema, err.message, text);
    } else {
        for (; *strings; strings++)
            CHECKF(accepts(m, *strings, 1 << 20) == want, "%s must %s %s\n%s", schema, want ? "accept" : "reject",
                   *strings, text);
    }
    sm_grammar_matcher_free(m);
    sm_grammar_free(g);
    sm_json_schema_free(text);
}

#define S_ACCEPTS(schema, ...) schema_verdicts(schema, 1, (const char *const[]){__VA_ARGS__, NULL})
#define S_REJECTS(schema, ...) schema_verdicts(schema, 0, (const char *const[]){__VA_ARGS__, NULL})

/* The message (or warnings, when it converts) for a schema. */
static const char *schema_message(const char *schema, int *converted) {
    static sm_error err;
    static char warnings[512];
    char *text = NULL;
    memset(&err, 0, sizeof err);
    *converted = sm_json_schema_text_to_grammar(schema, strlen(schema), &text, warnings, sizeof warnings, &err) == SM_OK;
    sm_json_schema_free(text);
    return *converted ? warnings : err.message;
}

#define S_ERROR(schema, want)                                                                            \
    do {                                                                                                 \
        int ok_;                                                                                         \
        const char *msg_ = schema_message(schema, &ok_);                                                 \
        CHECKF(!ok_ && strstr(msg_, want), "%s: expected an error with \"%s\", got \"%s\"", schema, want, \
               ok_ ? "(converted)" : msg_);                                                        \
    } while (0)
#define S_WARNS(schema, want)                                                                            \
    do {                                                                                                 \
        int ok_;                                                                                         \
        const char *msg_ = schema_message(schema, &ok_);                                                 \
        CHECKF(ok_ && strstr(msg_, want), "%s: expected a warning with \"%s\", got \"%s\"", schema, want, msg_); \
    } while (0)

/* Cases worked out from the JSON Schema 2020-12 validation spec and
 * ECMA-262 regular expressions (the values, then written as JSON text). */
TEST(json_schema_patterns) {
    /* The value a"b\c: quote and backslash come out escaped. */
    S_ACCEPTS("{\"type\": \"string\", \"pattern\": \"^a\\\"b\\\\\\\\c$\"}", "\"a\\\"b\\\\c\"");
    S_REJECTS("{\"type\": \"string\", \"pattern\": \"^a\\\"b\\\\\\\\c$\"}", "\"a\"b\\c\"", "\"a\\\"b\\c\"");
    /* Without anchors a pattern is found anywhere. */
    S_ACCEPTS("{\"pattern\": \"abc\"}", "\"abc\"", "\"xxabcyy\"");
    S_REJECTS("{\"pattern\": \"abc\"}", "\"ab\"", "\"abxc\"");
    /* ^A|B$ is (^A)|(B$). */
    S_ACCEPTS("{\"pattern\": \"^A|B$\"}", "\"A\"", "\"Axyz\"", "\"B\"", "\"xyzB\"");
    S_REJECTS("{\"pattern\": \"^A|B$\"}", "\"xA\"", "\"Bx\"");
    S_ACCEPTS("{\"pattern\": \"^[^a-z]{2,3}\\\\d+$\"}", "\"AB1\"", "\"%%%42\"");
    S_REJECTS("{\"pattern\": \"^[^a-z]{2,3}\\\\d+$\"}", "\"ab1\"", "\"A1\"", "\"ABCD1\"");
    /* "." is any character but a line terminator, quote included. */
    S_ACCEPTS("{\"pattern\": \"^.$\"}", "\"\xc3\xa9\"", "\"\\\"\"");
    S_REJECTS("{\"pattern\": \"^.$\"}", "\"\\n\"", "\"ab\"");
    S_ACCEPTS("{\"pattern\": \"^(?:x|y)*z{2}$\"}", "\"zz\"", "\"xyxzz\"");
    S_REJECTS("{\"pattern\": \"^(?:x|y)*z{2}$\"}", "\"xz\"", "\"zzz\"");
}

TEST(json_schema_numbers) {
    S_ACCEPTS("{\"type\": \"number\", \"exclusiveMinimum\": -1, \"maximum\": 0}", "-0.5", "0", "0.0", "-0.999");
    S_REJECTS("{\"type\": \"number\", \"exclusiveMinimum\": -1, \"maximum\": 0}", "-1", "-1.0", "0.1", "1", "-1.5");
    S_ACCEPTS("{\"type\": \"number\", \"exclusiveMinimum\": 0}", "0.001", "1", "0.5");
    S_REJECTS("{\"type\": \"number\", \"exclusiveMinimum\": 0}", "0", "0.0", "0.000", "-0.5");
    S_ACCEPTS("{\"type\": \"number\", \"minimum\": 10}", "10", "10.5", "123456");
    S_REJECTS("{\"type\": \"number\", \"minimum\": 10}", "9.99", "-10", "1e3");   /* no exponents when bounded */
    S_ACCEPTS("{\"type\": \"number\", \"maximum\": -7, \"exclusiveMinimum\": -9}", "-7", "-7.01", "-8.5", "-8.999");
    S_REJECTS("{\"type\": \"number\", \"maximum\": -7, \"exclusiveMinimum\": -9}", "-9", "-9.5", "-6.99", "-6.5");
    S_ACCEPTS("{\"type\": \"integer\", \"exclusiveMinimum\": -5.5, \"maximum\": 1000}", "-5", "0", "1000");
    S_REJECTS("{\"type\": \"integer\", \"exclusiveMinimum\": -5.5, \"maximum\": 1000}", "-6", "1001", "5.0");
    /* draft 4's boolean exclusiveMinimum */
    S_ACCEPTS("{\"type\": \"integer\", \"minimum\": 5, \"exclusiveMinimum\": true, \"maximum\": 7}", "6", "7");
    S_REJECTS("{\"type\": \"integer\", \"minimum\": 5, \"exclusiveMinimum\": true, \"maximum\": 7}", "5");
}

TEST(json_schema_strings_and_formats) {
    S_ACCEPTS("{\"format\": \"date\"}", "\"2024-02-29\"", "\"2000-02-29\"", "\"2023-04-30\"", "\"1999-12-31\"");
    S_REJECTS("{\"format\": \"date\"}", "\"2023-02-29\"", "\"1900-02-29\"", "\"2023-04-31\"", "\"2023-13-01\"",
              "\"2023-00-10\"");
    S_ACCEPTS("{\"format\": \"time\"}", "\"23:59:59Z\"", "\"08:00:00.5+02:00\"");
    S_REJECTS("{\"format\": \"time\"}", "\"24:00:00Z\"", "\"08:00:00\"");
    /* Lengths count characters: an escape or a 4-byte character is one. */
    S_ACCEPTS("{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 2}", "\"\xc3\xa9\xf0\x9f\x94\xb5\"", "\"\\n\\t\"");
    S_REJECTS("{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 2}", "\"a\"", "\"abc\"");
}

TEST(json_schema_structures) {
    const char *list = "{\"$defs\": {\"node\": {\"type\": \"object\", \"properties\": {\"v\": {\"type\": \"integer\"}, "
                       "\"next\": {\"anyOf\": [{\"$ref\": \"#/$defs/node\"}, {\"type\": \"null\"}]}}, "
                       "\"required\": [\"v\", \"next\"]}}, \"$ref\": \"#/$defs/node\"}";
    S_ACCEPTS(list, "{\"v\": 1, \"next\": {\"v\": 2, \"next\": null}}");
    S_REJECTS(list, "{\"v\": 1, \"next\": {\"v\": 2}}", "{\"v\": 1}");
    const char *keys = "{\"properties\": {\"caf\xc3\xa9\": {\"type\": \"null\"}}, "
                       "\"additionalProperties\": {\"type\": \"integer\"}}";
    S_ACCEPTS(keys, "{\"caf\xc3\xa9\": null, \"cafe\": 1}", "{\"caf\": 2, \"caf\xc3\xa9x\": 3}", "{}");
    S_REJECTS(keys, "{\"caf\xc3\xa9\": 1}", "{\"cafe\": null}");
    const char *tuple = "{\"prefixItems\": [{\"type\": \"string\"}, {\"type\": \"integer\"}], "
                        "\"items\": {\"type\": \"boolean\"}, "
                        "\"minItems\": 3, \"maxItems\": 4}";
    S_ACCEPTS(tuple, "[\"a\", 1, true]", "[\"a\", 1, true, false]");
    S_REJECTS(tuple, "[\"a\", 1]", "[\"a\", 1, true, false, true]", "[\"a\", 1, 2]");
    S_ACCEPTS("{\"type\": \"string\", \"enum\": [\"a\", 1]}", "\"a\"");
    S_REJECTS("{\"type\": \"string\", \"enum\": [\"a\", 1]}", "1");
    S_ACCEPTS("{\"const\": {\"k\": \"v\\n\"}}", "{\"k\":\"v\\n\"}");
    S_REJECTS("{\"const\": {\"k\": \"v\\n\"}}", "{\"k\": \"v\\n\"}");
    S_ACCEPTS("true", "1", "\"x\"", "[{}]");
    S_ACCEPTS("{}", "{}", "{\"a\": [1]}");   /* as llama.cpp: an empty schema is an object */
    S_REJECTS("{}", "1", "[]");
}

TEST(json_schema_refusals_and_warnings) {
    S_ERROR("{\"type\": \"object\", \"properties\": {\"a\": {\"not\": {}}}}",
            "at /properties/a: keyword 'not' is not supported");
    S_ERROR("{\"if\": {}, \"then\": {}}", "keyword 'if'");
    S_ERROR("{\"type\": \"object\", \"patternProperties\": {}}", "keyword 'patternProperties'");
    S_ERROR("{\"type\": \"number\", \"multipleOf\": 2}", "keyword 'multipleOf'");
    S_ERROR("{\"$ref\": \"https://example.com/s.json\"}", "only local $ref");
    S_ERROR("{\"$ref\": \"#/$defs/nope\"}", "points to nothing");
    S_ERROR("{\"type\": \"string\", \"pattern\": \"^(?=a)$\"}", "lookahead");
    S_ERROR("{\"pattern\": \"^(a)\\\\1$\"}", "backreferences");
    S_ERROR("{\"type\": \"number\", \"minimum\": 0.5}", "must be integers");
    S_ERROR("{\"type\": \"string\", \"minLength\": 5, \"maxLength\": 2}", "maxLength is below minLength");
    S_ERROR("{\"anyOf\": [{\"type\": \"string\"}], \"properties\": {}}", "'properties' beside anyOf");
    S_ERROR("{\"type\": \"object\", \"required\": [\"a\"], \"properties\": {\"b\": {}}}", "required property 'a'");
    S_ERROR("{\"minLength\": 3}", "give it a 'type'");
    S_ERROR("{\"type\": \"kaboom\"}", "unknown type 'kaboom'");
    S_ERROR("{", "not valid JSON: line 1");
    S_WARNS("{\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"uniqueItems\": true}",
            "uniqueItems is not enforced");
    S_WARNS("{\"type\": \"string\", \"format\": \"email\"}", "format 'email' is not enforced");
    S_WARNS("{\"oneOf\": [{\"type\": \"string\"}, {\"type\": \"integer\"}]}", "oneOf is treated as anyOf");
}

#endif

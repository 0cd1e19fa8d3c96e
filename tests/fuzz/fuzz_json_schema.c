/* fuzz_json_schema.c - libFuzzer target: the JSON Schema converter
 * (src/json, with Jansson) on arbitrary text; when it converts, our GBNF
 * parser must accept its grammar (a left recursion made by recursive $refs
 * is the schema's fault and refused) and the matcher must start on it.
 * Built by `make fuzz` when Jansson is present. */
#include "smallmind.h"
#include "json/json_schema.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = NULL, warnings[256];
    sm_error err;
    if (sm_json_schema_text_to_grammar((const char *)data, size, &text, warnings, sizeof warnings, &err) != SM_OK)
        return 0;
    sm_grammar *g = NULL;
    if (sm_grammar_parse(text, strlen(text), NULL, &g, &err) != SM_OK) {
        if (!strstr(err.message, "left recursion")) __builtin_trap();   /* we wrote a broken grammar */
    } else {
        sm_grammar_matcher *m = NULL;
        if (sm_grammar_matcher_new(g, &m, NULL) == SM_OK) {
            sm_grammar_matcher_try(m, "{\"a\": [1, \"x\"]}", 15);
            sm_grammar_matcher_free(m);
        }
        sm_grammar_free(g);
    }
    sm_json_schema_free(text);
    return 0;
}

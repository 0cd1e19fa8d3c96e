/* schema_sample.c - random JSON documents from the grammar our converter
 * makes for a JSON schema, for tests/schema_ajv.js to validate with an
 * independent validator (ajv). A document is a random walk over the bytes
 * the grammar allows, leaning towards closing characters so it ends.
 *
 *   schema_sample SCHEMA_FILE COUNT SEED
 * prints the documents each followed by a NUL byte; "!" for a walk that ran
 * too long, "DEAD" for one that reached a state with no way on and no end
 * (a broken grammar), "REFUSED <message>" when the schema is refused.
 * Build: cc -O2 -Iinclude -Isrc tests/tools/schema_sample.c src/json/*.c build/libsmallmind.a -ljansson -lm -lpthread */
#include "smallmind.h"
#include "json/json_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: schema_sample SCHEMA_FILE COUNT SEED\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) return 2;
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    rng += strtoull(argv[3], NULL, 10) * 0x9E3779B97F4A7C15ull;
    sm_error err;
    char *gtext, warnings[512];
    if (sm_json_schema_text_to_grammar(text, n, &gtext, warnings, sizeof warnings, &err) != SM_OK) {
        printf("REFUSED %s\n", err.message);
        return 0;
    }
    if (warnings[0]) fprintf(stderr, "warning: %s\n", warnings);
    sm_grammar *g;
    sm_grammar_matcher *m;
    if (sm_grammar_parse(gtext, strlen(gtext), NULL, &g, &err) != SM_OK || sm_grammar_matcher_new(g, &m, &err) != SM_OK) {
        printf("BROKEN %s\n", err.message);
        return 1;
    }
    static const char prefer[] = "\"}]0";   /* closing characters first */
    static char doc[4096];
    int count = atoi(argv[2]);
    for (int k = 0; k < count; k++) {
        sm_grammar_matcher_reset(m);
        size_t len = 0;
        int ok = 1;
        for (;;) {
            int complete = sm_grammar_matcher_is_complete(m);
            if (complete && (!sm_grammar_matcher_can_continue(m) || rnd(3) == 0)) break;
            if (len + 1 >= sizeof doc) {
                ok = 0;
                break;
            }
            uint8_t allowed[256];
            int n_allowed = 0, pick = -1;
            for (int b = 0; b < 256; b++) n_allowed += allowed[b] = (uint8_t)sm_grammar_matcher_try(m, &(char){(char)b}, 1);
            if (!n_allowed) {
                ok = -1;   /* a dead end: cannot happen when the grammar is right */
                break;
            }
            if (rnd(10) < (len > 200 ? 9u : 3u))
                for (const char *p = prefer; *p && pick < 0; p++)
                    if (allowed[(uint8_t)*p]) pick = (uint8_t)*p;
            if (pick < 0) {
                int r = (int)rnd((uint32_t)n_allowed);
                for (int b = 0; b < 256; b++)
                    if (allowed[b] && r-- == 0) pick = b;
            }
            char c = (char)pick;
            sm_grammar_matcher_accept(m, &c, 1, NULL);
            doc[len++] = c;
        }
        if (ok <= 0) {
            printf("%s%c", ok ? "DEAD" : "!", 0);
            continue;
        }
        fwrite(doc, 1, len, stdout);
        putchar(0);
    }
    sm_grammar_matcher_free(m);
    sm_grammar_free(g);
    sm_json_schema_free(gtext);
    return 0;
}

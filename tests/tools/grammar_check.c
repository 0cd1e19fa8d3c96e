/* grammar_check.c - our grammar engine's verdicts in the format of
 * tests/tools/grammar_oracle.cpp (llama.cpp's), for tests/grammar_diff.py.
 * Input, repeated: "G <n>\n" + n bytes of GBNF, "S <n>\n" + n bytes per
 * string, "E\n". Output: "P 1|0", then "1", "0" or "-" per string, "E". */
#include "smallmind.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_block(char *tag, char **out, size_t *n) {
    char head[64];
    if (!fgets(head, sizeof head, stdin)) return 0;
    *tag = head[0];
    if (*tag == 'E') return 1;
    *n = strtoul(head + 2, NULL, 10);
    free(*out);
    *out = malloc(*n + 1);
    if (!*out || fread(*out, 1, *n, stdin) != *n) return 0;
    (*out)[*n] = '\0';
    return 1;
}

int main(void) {
    sm_grammar *g = NULL;
    sm_grammar_matcher *m = NULL;
    char tag, *text = NULL;
    size_t n = 0;
    while (read_block(&tag, &text, &n)) {
        if (tag == 'G') {
            sm_grammar_matcher_free(m);
            sm_grammar_free(g);
            m = NULL;
            g = NULL;
            sm_error err;
            int ok = sm_grammar_parse(text, n, "root", &g, &err) == SM_OK && sm_grammar_matcher_new(g, &m, &err) == SM_OK;
            printf("P %d\n", ok);
            if (!ok) fprintf(stderr, "%s\n", err.message);
        } else if (tag == 'S') {
            if (!m) {
                printf("-\n");
                continue;
            }
            sm_grammar_matcher_reset(m);
            printf("%d\n", sm_grammar_matcher_accept(m, text, n, NULL) == SM_OK && sm_grammar_matcher_is_complete(m));
        } else {
            printf("E\n");
        }
    }
    free(text);
    sm_grammar_matcher_free(m);
    sm_grammar_free(g);
    return 0;
}

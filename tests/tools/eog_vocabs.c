/* eog_vocabs.c - writes the vocabulary files of tests/unit/eog_vocabs.h
 * into a directory, as NAME.gguf, for tests/refs/make_eog_refs.sh. */
#include "../unit/eog_vocabs.h"

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: eog_vocabs DIR\n"); return 2; }
    for (int c = 0; c < EOG_VOCAB_CASES; c++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.gguf", argv[1], eog_vocab_cases[c].name);
        if (eog_vocab_write(c, path) != 0) { fprintf(stderr, "cannot write %s\n", path); return 1; }
    }
    return 0;
}

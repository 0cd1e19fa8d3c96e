/* eog_refs.c - prints llama.cpp's end-of-generation tokens of each GGUF
 * file named on the command line (llama_vocab_is_eog over the whole
 * vocabulary, vocabulary only), one line per file: its name, then the ids.
 * Built and run by make_eog_refs.sh against a llama.cpp build. */
#include <stdio.h>
#include <string.h>
#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)level; (void)text; (void)user;
}

int main(int argc, char **argv) {
    llama_log_set(quiet, NULL);
    llama_backend_init();
    for (int a = 1; a < argc; a++) {
        struct llama_model_params mp = llama_model_default_params();
        mp.vocab_only = true;
        struct llama_model *m = llama_model_load_from_file(argv[a], mp);
        if (!m) { fprintf(stderr, "cannot load %s\n", argv[a]); return 1; }
        const struct llama_vocab *v = llama_model_get_vocab(m);
        const char *base = strrchr(argv[a], '/');
        printf("%s", base ? base + 1 : argv[a]);
        for (int t = 0; t < llama_vocab_n_tokens(v); t++)
            if (llama_vocab_is_eog(v, t)) printf(" %d", t);
        printf("\n");
        llama_model_free(m);
    }
    llama_backend_free();
    return 0;
}

/* test_support.c - test-only constructors that reach below the public API. */
#include "model/model.h"
#include "core/alloc.h"
#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_write.h"
#include "io/llama2c.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *vocab_with_pre(const char *src, const char *pre) {
    size_t size;
    char *data = read_file(src, &size);
    sm_gguf g;
    if (!data || sm_gguf_parse(data, size, &g, NULL) != SM_OK) {
        free(data);
        return NULL;
    }
    sm_gguf_writer *w = sm_gguf_writer_new();
    for (uint64_t i = 0; i < g.n_kv; i++)
        if (!sm_gguf_str_eq(g.kv[i].key, "tokenizer.ggml.pre")) sm_gguf_put_copy(w, &g.kv[i]);
    if (pre) sm_gguf_put_str(w, "tokenizer.ggml.pre", pre);
    char *path = strdup("/tmp/sm_test_XXXXXX");
    int fd = path ? mkstemp(path) : -1;
    if (fd >= 0) close(fd);
    int ok = fd >= 0 && sm_gguf_writer_save(w, path, NULL) == SM_OK;
    sm_gguf_writer_free(w);
    sm_gguf_free(&g);
    free(data);
    if (!ok) {
        if (fd >= 0) unlink(path);
        free(path);
        return NULL;
    }
    return path;
}

/* A vocabulary-only model from a tokenizer.bin, for tokenizer tests where no
 * matching llama2.c model exists (the 32000-token Llama 2 tokenizer). */
sm_status sm_test_vocab_from_llama2c(const void *data, size_t size, int n_vocab, sm_model **out, sm_error *err) {
    sm_llama2c_token *toks;
    sm_status st = sm_llama2c_parse_tokenizer(data, size, n_vocab, &toks, err);
    if (st) return st;
    sm_model *m = sm_calloc(1, sizeof *m);
    sm_vocab_entry *e = sm_alloc((size_t)n_vocab * sizeof *e);
    for (int i = 0; i < n_vocab; i++) e[i] = (sm_vocab_entry){toks[i].text, toks[i].len, toks[i].score, 0};
    st = sm_vocab_build(&m->vocab, e, n_vocab, SM_VOCAB_SPM_PLAIN, err);
    sm_free(e);
    sm_free(toks);
    m->vocab.bos = 1;
    m->vocab.eos = 2;
    *out = m;
    return st;
}

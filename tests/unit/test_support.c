/* test_support.c - test-only constructors that reach below the public API. */
#include "model/model.h"
#include "core/alloc.h"
#include "core/error.h"
#include "io/llama2c.h"

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

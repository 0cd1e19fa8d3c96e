/* fuzz_tokenizer.c - libFuzzer target: a llama2.c tokenizer.bin of a
 * fuzzed vocabulary size, then encoding and decoding fuzzed text with it.
 * Input: u16 vocabulary size, u16 text length, text, tokenizer file. The
 * text length's top bit turns on special-token parsing with phi-3's strip
 * attributes. */
#include "model/model.h"
#include "core/alloc.h"
#include "io/llama2c.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    uint16_t n_vocab, text_len;
    memcpy(&n_vocab, data, 2);
    memcpy(&text_len, data + 2, 2);
    data += 4;
    size -= 4;
    unsigned flags = SM_TOKENIZE_ADD_BOS;
    if (text_len & 0x8000) {
        flags |= SM_TOKENIZE_PARSE_SPECIAL;
        text_len &= 0x7FFF;
    }
    if (text_len > size) text_len = (uint16_t)size;
    const char *text = (const char *)data;
    sm_llama2c_token *toks;
    if (sm_llama2c_parse_tokenizer(data + text_len, size - text_len, n_vocab, &toks, NULL) != SM_OK) return 0;
    sm_vocab_entry *e = sm_alloc((size_t)n_vocab * sizeof *e);
    for (int i = 0; i < n_vocab; i++) e[i] = (sm_vocab_entry){toks[i].text, toks[i].len, toks[i].score, 0};
    sm_vocab v;
    if (sm_vocab_build(&v, e, n_vocab, SM_VOCAB_SPM_PLAIN, NULL) == SM_OK) {
        v.bos = n_vocab > 1 ? 1 : -1;
        if (flags & SM_TOKENIZE_PARSE_SPECIAL) sm_vocab_set_strip_rules(&v, "phi3", 4, NULL, 0);
        sm_token out[1024];
        size_t n;
        sm_status st = sm_vocab_encode(&v, text, text_len, flags, out, 1024, &n, NULL);
        for (size_t i = 0; st == SM_OK && i < n; i++) {
            const char *piece;
            int pl = sm_vocab_piece(&v, out[i], &piece);
            if (pl < 0) __builtin_trap();  /* the encoder made an id outside the vocabulary */
        }
        sm_vocab_free(&v);
    }
    sm_free(e);
    sm_free(toks);
    return 0;
}

/* llama2c.h - readers for llama2.c's legacy model (.bin) and tokenizer.bin.
 *
 * Model: seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size, seq_len; a negative vocab_size means the classifier is stored
 * separately), then float32 tensors in a fixed order, freq_cis included.
 * Tokenizer: int32 max_token_length, then per token a float32 score, an
 * int32 length and that many bytes. */
#ifndef SM_IO_LLAMA2C_H
#define SM_IO_LLAMA2C_H

#include <stddef.h>
#include <stdint.h>
#include "smallmind.h"

typedef struct sm_llama2c_model {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int shared_classifier;
    /* Views into the file; per-layer tensors are stacked layer after layer. */
    const float *token_embedding, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn,
        *w1, *w2, *w3, *rms_final, *wcls;
} sm_llama2c_model;

sm_status sm_llama2c_parse(const void *data, size_t size, sm_llama2c_model *out, sm_error *err);

typedef struct sm_llama2c_token {
    const char *text;    /* points into the file, not NUL-terminated */
    uint32_t len;
    float score;
} sm_llama2c_token;

/* Reads n_vocab entries (the count is not in the file; it comes from the
 * model). *tokens is allocated with sm_alloc; free it with sm_free. */
sm_status sm_llama2c_parse_tokenizer(const void *data, size_t size, int n_vocab,
                                     sm_llama2c_token **tokens, sm_error *err);

#endif

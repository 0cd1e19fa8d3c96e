/* bpe.h - byte-level BPE (GPT-2 style): bytes mapped to printable code
 * points (byte_map.h), a pre-tokenizer that splits text with the regexes its
 * model was trained with (pretok.h), and merges applied by rank within each
 * piece. Also learning such a vocabulary from a corpus (bpe_train.c). */
#ifndef SM_TEXT_BPE_H
#define SM_TEXT_BPE_H

#include <stddef.h>
#include <stdint.h>
#include "smallmind.h"
#include "byte_map.h"
#include "token_table.h"

typedef struct sm_text_span {
    const char *ptr;
    size_t len;
} sm_text_span;

typedef struct sm_bpe sm_bpe;

/* Sets the vocabulary up for BPE with the pre-tokenizer named `pre`
 * (tokenizer.ggml.pre; unknown or NULL = llama.cpp's default split, with
 * *fallback set as sm_pretok_new says; BOS added as the pre-tokenizer's
 * model does, until the file says) and the merges ("left right", in rank
 * order). The vocabulary owns the result (sm_vocab_free frees it). */
sm_status sm_bpe_attach(sm_vocab *v, const char *pre, size_t pre_len, const sm_text_span *merges, size_t n_merges,
                        int *fallback, sm_error *err);
void sm_bpe_free(sm_bpe *b);

/* Appends the tokens of text to tokens[*n...] (counting past capacity).
 * Fails (SM_ERR_UNSUPPORTED, naming the byte) when the vocabulary has
 * neither a token for one of the text's bytes nor an unknown token. */
sm_status sm_bpe_encode(const sm_vocab *v, const char *text, size_t len, sm_token *tokens, size_t capacity,
                        size_t *n, sm_error *err);

/* Learns a byte-level BPE vocabulary of at most n_vocab tokens from text:
 * the 256 byte tokens, then merges of the most frequent adjacent pair within
 * gpt-2 pre-tokenizer pieces (ties: the smaller pair of ids), then
 * <|endoftext|>. tokens and merges ("left right") are written as GGUF keeps
 * them (bytes as GPT-2's code points); free them with sm_bpe_strings_free. */
sm_status sm_bpe_learn(const char *text, size_t len, int n_vocab, char ***tokens, int *n_tokens, char ***merges,
                       int *n_merges, sm_error *err);
void sm_bpe_strings_free(char **strings, int n);

#endif

/* vocab.h - a vocabulary that encodes text: the token table (token_table.h)
 * with its encoder (SentencePiece, spm.h, or byte-level BPE, bpe.h). Special
 * tokens are cut out of the text first, then each stretch of plain text goes
 * to the encoder. */
#ifndef SM_TEXT_VOCAB_H
#define SM_TEXT_VOCAB_H

#include <stddef.h>
#include <stdint.h>
#include "smallmind.h"
#include "token_table.h"

/* Frees the table and the encoder attached to it. */
void sm_vocab_free(sm_vocab *v);

/* Encodes text. flags: SM_TOKENIZE_ADD_BOS, SM_TOKENIZE_PARSE_SPECIAL (see
 * smallmind.h). On SM_ERR_BUFFER_TOO_SMALL *n_tokens holds the count needed. */
sm_status sm_vocab_encode(const sm_vocab *v, const char *text, size_t len, unsigned flags, sm_token *tokens,
                          size_t capacity, size_t *n_tokens, sm_error *err);

/* Gives special tokens the strip attributes llama.cpp gives them by model
 * (GGUF does not store them): by tokenizer.ggml.pre (jina-v2-de/-es/-code:
 * "<mask>" strips on its left) or by general.name (phi-3: every special token
 * but "<unk>", "<s>" and "<|endoftext|>" strips on its right). Either string
 * may be NULL. */
void sm_vocab_set_strip_rules(sm_vocab *v, const char *model_name, size_t name_len, const char *pre, size_t pre_len);

#endif

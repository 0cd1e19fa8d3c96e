/* spm.h - SentencePiece-style encoding of one stretch of text: characters
 * merged pairwise, best-scoring token first, with byte fallback. */
#ifndef SM_TEXT_SPM_H
#define SM_TEXT_SPM_H

#include <stddef.h>
#include "token_table.h"

/* Appends the tokens of text (valid UTF-8) to tokens[*n...], counting past
 * capacity. add_prefix puts the dummy-prefix space in front. */
sm_status sm_spm_encode(const sm_vocab *v, const char *text, size_t len, int add_prefix, sm_token *tokens,
                        size_t capacity, size_t *n, sm_error *err);

#endif

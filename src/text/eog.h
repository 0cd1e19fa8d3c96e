/* eog.h - the end-of-generation tokens of a vocabulary: the tokens at which
 * a generation loop stops (the end of text, the end of a chat turn, ...),
 * computed once when the vocabulary is loaded. */
#ifndef SM_TEXT_EOG_H
#define SM_TEXT_EOG_H

#include "token_table.h"

/* Token ids a file's metadata names (tokenizer.ggml.eot_token_id,
 * eom_token_id, fim_pad_token_id, fim_rep_token_id, fim_sep_token_id); -1
 * where absent or out of range. */
typedef struct sm_eog_ids {
    int32_t eot, eom, fim_pad, fim_rep, fim_sep;
    int32_t fim_pre, fim_suf, fim_mid;   /* (not end tokens: sm_vocab_find_fim) */
} sm_eog_ids;

/* Sets SM_TOKEN_EOG on the end-of-generation tokens, by llama.cpp's rule
 * (src/llama-vocab.cpp, load, at c392e509): v->eos; the end-of-turn,
 * end-of-message and fill-in-the-middle pad/repo/separator tokens, each from
 * ids or else found by its text; and every token whose text is <|eot_id|>,
 * <|im_end|>, <|end|>, <end_of_turn>, <|endoftext|>, <|eom_id|> or <EOT>.
 * ids may be NULL (llama2.c files name none). */
void sm_vocab_mark_eog(sm_vocab *v, const sm_eog_ids *ids);

/* Fills v->fim: the ids named (fim_pre/suf/mid/pad/rep/sep_token_id, or
 * the deprecated prefix/suffix/middle_token_id), else each found by
 * llama.cpp's texts (Qwen's <|fim_prefix|>, <fim-prefix>, DeepSeek's, <PRE>,
 * ...). ids may be NULL. */
void sm_vocab_find_fim(sm_vocab *v, const sm_eog_ids *ids);

static inline int sm_vocab_is_eog(const sm_vocab *v, int32_t id) {
    return id >= 0 && id < v->n && (v->attr[id] & SM_TOKEN_EOG) != 0;
}

#endif

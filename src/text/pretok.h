/* pretok.h - the pre-tokenizers of byte-level BPE vocabularies: the text is
 * split with the regexes the model was trained with (named by GGUF's
 * tokenizer.ggml.pre) before merges run within each piece. */
#ifndef SM_TEXT_PRETOK_H
#define SM_TEXT_PRETOK_H

#include <stddef.h>
#include <stdint.h>
#include "smallmind.h"

typedef struct sm_pretok sm_pretok;

/* The pre-tokenizer named `name` (len bytes). An unknown name, or NULL (a
 * file without tokenizer.ggml.pre), gives llama.cpp's "default" split and
 * sets *fallback to 1 (unknown) or 2 (NULL). */
sm_status sm_pretok_new(const char *name, size_t len, sm_pretok **out, int *fallback, sm_error *err);
void sm_pretok_free(sm_pretok *p);

/* Whether a piece that is a whole token is emitted without merging (llama3). */
int sm_pretok_ignore_merges(const sm_pretok *p);

/* Whether the vocabulary adds BOS when its file does not say (llama3,
 * tekken, chameleon: llama.cpp's defaults for them). */
int sm_pretok_add_bos(const sm_pretok *p);

/* Splits cps into pieces: every pattern in turn splits every current piece
 * further, keeping both its matches and the text between them. Writes the
 * pieces' starts and lengths (room for n_cps each; the scratch arrays too)
 * and returns their count. */
size_t sm_pretok_split(const sm_pretok *p, const uint32_t *cps, size_t n_cps, uint32_t *starts, uint32_t *lens,
                       uint32_t *scratch_starts, uint32_t *scratch_lens);

/* The i-th entry of the table: its '|'-separated names, or NULL past the
 * end (for the tests, which compile every entry). */
const char *sm_pretok_names(size_t i);

/* The gpt-2 pattern (the one bpe:N tokenizers are learned with). */
const char *sm_pretok_gpt2_pattern(void);

#endif

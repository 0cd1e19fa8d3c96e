/* token_table.h - a vocabulary's token table: texts, scores, types and
 * attributes, lookup by text, and the pieces (bytes) tokens decode to. The
 * encoders (spm.h, bpe.h) read it; vocab.h puts them together.
 *
 * SentencePiece token texts are stored with the space mark U+2581 already
 * replaced by ' ', the form llama2.c's tokenizer.bin uses too, so one code
 * path serves both file formats. Byte-level BPE texts are kept as written;
 * their pieces are the bytes they stand for. */
#ifndef SM_TEXT_TOKEN_TABLE_H
#define SM_TEXT_TOKEN_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include "smallmind.h"

/* Numbering as in GGUF's tokenizer.ggml.token_type. */
enum sm_token_type {
    SM_TOK_UNDEFINED = 0, SM_TOK_NORMAL = 1, SM_TOK_UNKNOWN = 2, SM_TOK_CONTROL = 3,
    SM_TOK_USER_DEFINED = 4, SM_TOK_UNUSED = 5, SM_TOK_BYTE = 6
};

/* Token attributes GGUF does not store (llama.cpp sets them per model; see
 * sm_vocab_set_strip_rules in vocab.h): a special token found in the text
 * swallows the white space on its left / right. SM_TOKEN_EOG: the token ends
 * generation (sm_vocab_mark_eog in eog.h). */
enum { SM_TOKEN_LSTRIP = 1, SM_TOKEN_RSTRIP = 2, SM_TOKEN_EOG = 4 };

typedef struct sm_vocab_entry {
    const char *text;
    uint32_t len;
    float score;
    int type;       /* SM_TOK_UNDEFINED: inferred from the text */
} sm_vocab_entry;

/* How token texts are written in the file. */
enum sm_vocab_kind {
    SM_VOCAB_SPM_MARKED = 0,  /* SentencePiece, spaces as U+2581 (GGUF) */
    SM_VOCAB_SPM_PLAIN = 1,   /* SentencePiece, spaces as ' ' (llama2.c) */
    SM_VOCAB_BPE = 2          /* byte-level BPE, bytes as GPT-2's code points */
};

struct sm_bpe;

/* The fill-in-the-middle tokens: prefix, suffix, middle, pad, repository,
 * file separator. */
enum sm_fim_kind { SM_FIM_PRE, SM_FIM_SUF, SM_FIM_MID, SM_FIM_PAD, SM_FIM_REP, SM_FIM_SEP, SM_FIM_COUNT };

typedef struct sm_vocab {
    int n;
    int kind;
    struct sm_bpe *bpe;     /* BPE merges and pre-tokenizer (bpe.h); NULL for SPM */
    char *block;            /* all texts, then all pieces */
    uint32_t *text_off, *text_len, *piece_off, *piece_len;
    float *score;
    uint8_t *type;
    uint8_t *attr;          /* SM_TOKEN_LSTRIP | SM_TOKEN_RSTRIP | SM_TOKEN_EOG */
    int32_t *slots;         /* open-addressing hash of text -> id */
    uint32_t slot_mask;
    int32_t byte_id[256];   /* -1 where the vocabulary has no byte token */
    int32_t bos, eos, unk;  /* -1 when absent */
    int32_t fim[SM_FIM_COUNT];   /* fill-in-the-middle tokens (enum sm_fim_kind); -1 when absent */
    /* the special tokens (control, user-defined and unknown ones with a
     * text), longest text first, which the encoder finds in the text before
     * tokenizing the rest */
    int32_t *special_ids;
    int n_special;
    int add_bos, add_space_prefix;
    uint32_t max_piece_len;
} sm_vocab;

/* Builds the vocabulary from entries written as `kind` says. A BPE
 * vocabulary also needs sm_bpe_attach() before it can encode. */
sm_status sm_vocab_build(sm_vocab *v, const sm_vocab_entry *entries, int n, int kind, sm_error *err);
/* Frees what sm_vocab_build allocated (sm_vocab_free in vocab.h frees the
 * encoders too). */
void sm_vocab_table_free(sm_vocab *v);

/* Id of the token with exactly this text, or -1. */
int32_t sm_vocab_lookup(const sm_vocab *v, const char *text, size_t len);

/* The bytes a token decodes to; -1 for an id out of range. */
int sm_vocab_piece(const sm_vocab *v, sm_token id, const char **piece);

/* Whether the token is found in the text before tokenizing: user-defined
 * tokens always, control and unknown ones when special text is parsed. */
static inline int sm_vocab_is_special(const sm_vocab *v, int32_t id) {
    int t = v->type[id];
    return t == SM_TOK_CONTROL || t == SM_TOK_USER_DEFINED || t == SM_TOK_UNKNOWN;
}

#endif

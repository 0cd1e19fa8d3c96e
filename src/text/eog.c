/* eog.c - see eog.h. The rule and the token texts are llama.cpp's
 * (src/llama-vocab.cpp at c392e509: the special-token ids read from the
 * metadata, the text detection of EOT/EOM/FIM tokens, then the
 * special_eog_ids set). llama.cpp also turns those tokens into control
 * tokens when the file did not; we leave their types as stored. */
#include "eog.h"

#include <string.h>

/* DeepSeek's end of sentence, "<｜end▁of▁sentence｜>" (U+FF5C, U+2581). */
#define DEEPSEEK_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>"

/* The token with this text, or -1. SentencePiece texts are stored with
 * U+2581 turned into ' ' (token_table.h), so the text is looked up so too. */
static int32_t find(const sm_vocab *v, const char *text) {
    char buf[64];
    size_t n = 0, len = strlen(text);
    if (v->kind != SM_VOCAB_SPM_MARKED) return sm_vocab_lookup(v, text, len);
    for (size_t i = 0; i < len && n < sizeof buf; i++) {
        if (i + 2 < len && (unsigned char)text[i] == 0xE2 && (unsigned char)text[i + 1] == 0x96 &&
            (unsigned char)text[i + 2] == 0x81) {
            buf[n++] = ' ';
            i += 2;
        } else {
            buf[n++] = text[i];
        }
    }
    return sm_vocab_lookup(v, buf, n);
}

/* The id the metadata gave, else the first of the texts the vocabulary has. */
static int32_t given_or_found(const sm_vocab *v, int32_t given, const char *const *texts) {
    if (given >= 0 && given < v->n) return given;
    for (; *texts; texts++) {
        int32_t id = find(v, *texts);
        if (id >= 0) return id;
    }
    return -1;
}

static void mark(sm_vocab *v, int32_t id) {
    if (id >= 0 && id < v->n) v->attr[id] |= SM_TOKEN_EOG;
}

/* the fill-in-the-middle tokens' texts, as llama.cpp finds them */
static const char *const pad_texts[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL};
static const char *const rep_texts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", NULL};
static const char *const sep_texts[] = {"<|file_sep|>", NULL};

void sm_vocab_find_fim(sm_vocab *v, const sm_eog_ids *ids) {
    sm_eog_ids none = {-1, -1, -1, -1, -1, -1, -1, -1};
    if (!ids) ids = &none;
    /* DeepSeek's "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>" (U+FF5C, U+2581) */
    static const char *const pre_texts[] = {"<|fim_prefix|>", "<fim-prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>",
                                            "<PRE>", NULL};
    static const char *const suf_texts[] = {"<|fim_suffix|>", "<fim-suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "hole\xef\xbd\x9c>",
                                            "<SUF>", NULL};
    static const char *const mid_texts[] = {"<|fim_middle|>", "<fim-middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>",
                                            "<MID>", NULL};
    v->fim[SM_FIM_PRE] = given_or_found(v, ids->fim_pre, pre_texts);
    v->fim[SM_FIM_SUF] = given_or_found(v, ids->fim_suf, suf_texts);
    v->fim[SM_FIM_MID] = given_or_found(v, ids->fim_mid, mid_texts);
    v->fim[SM_FIM_PAD] = given_or_found(v, ids->fim_pad, pad_texts);
    v->fim[SM_FIM_REP] = given_or_found(v, ids->fim_rep, rep_texts);
    v->fim[SM_FIM_SEP] = given_or_found(v, ids->fim_sep, sep_texts);
}

void sm_vocab_mark_eog(sm_vocab *v, const sm_eog_ids *ids) {
    sm_eog_ids none = {-1, -1, -1, -1, -1, -1, -1, -1};
    if (!ids) ids = &none;
    static const char *const eot_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                            "<EOT>", DEEPSEEK_EOS, NULL};
    static const char *const eom_texts[] = {"<|eom_id|>", NULL};
    static const char *const eog_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                            "<|eom_id|>", "<EOT>", NULL};
    for (int i = 0; i < v->n; i++) v->attr[i] &= (uint8_t)~SM_TOKEN_EOG;
    mark(v, given_or_found(v, ids->fim_pad, pad_texts));
    mark(v, given_or_found(v, ids->fim_rep, rep_texts));
    mark(v, given_or_found(v, ids->fim_sep, sep_texts));
    for (const char *const *t = eog_texts; *t; t++) mark(v, find(v, *t));
    mark(v, v->eos);
    mark(v, given_or_found(v, ids->eot, eot_texts));
    mark(v, given_or_found(v, ids->eom, eom_texts));
}

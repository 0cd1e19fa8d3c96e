/* eog_vocabs.h - small vocabulary-only GGUF files (SentencePiece, with the
 * 256 byte tokens llama.cpp's loader wants) that exercise each part of the
 * end-of-generation rule: tokens found by their text, the ids the metadata
 * names, the fill-in-the-middle roles, an id out of range, DeepSeek's
 * end-of-sentence text. The unit test writes them with this code, and
 * tests/refs/make_eog_refs.sh writes the same files (tests/tools/eog_vocabs.c)
 * for llama.cpp to record its answers on. */
#ifndef SM_TEST_EOG_VOCABS_H
#define SM_TEST_EOG_VOCABS_H

#include <stdio.h>
#include <string.h>
#include "io/gguf_write.h"

#define EOG_VOCAB_CASES 6

/* Each case: its extra tokens (after <unk> <s> </s> and the 256 bytes, so
 * the first has id 259), which of them are control tokens, and the id keys. */
typedef struct eog_vocab_case {
    const char *name;
    const char *tokens[12];
    const char *control;               /* one char per extra token: 'c' control, else normal */
    const char *keys[5];               /* tokenizer.ggml.<key>_token_id ... */
    int values[5];
} eog_vocab_case;

#define DS_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>"

static const eog_vocab_case eog_vocab_cases[EOG_VOCAB_CASES] = {
    {"eog-chatml", {"<|im_start|>", "<|im_end|>", "<|endoftext|>", "hello", NULL}, "ccc", {NULL}, {0}},
    {"eog-eot-key", {"<|my_turn_end|>", "<|eot_id|>", "<end_of_turn>", "<EOT>", "world", NULL}, "cnnc",
     {"eot", NULL}, {259}},
    {"eog-eom", {"<|eom_id|>", "<|end|>", "<|special_eom|>", "x", NULL}, "cc", {"eom", NULL}, {261}},
    {"eog-fim", {"<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<fim-pad>", "<PAD>", "<|my_pad|>", "y", NULL},
     "cccccc", {"fim_pad", "fim_sep", NULL}, {264, 262}},
    {"eog-range", {"<|eot_id|>", "z", NULL}, "c", {"eot", "eom", "fim_rep", NULL}, {100000, 260, 5000}},
    {"eog-deepseek", {DS_EOS, "w", NULL}, "c", {NULL}, {0}},
};

/* Writes case c as a vocabulary-only GGUF at path; 0 on success. */
static int eog_vocab_write(int c, const char *path) {
    const eog_vocab_case *k = &eog_vocab_cases[c];
    const char *tok[3 + 256 + 12];
    char bytes[256][8];
    float scores[3 + 256 + 12];
    int32_t types[3 + 256 + 12];
    int n = 0;
    tok[n] = "<unk>"; types[n++] = 2;
    tok[n] = "<s>"; types[n++] = 3;
    tok[n] = "</s>"; types[n++] = 3;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        tok[n] = bytes[b];
        types[n++] = 6;
    }
    for (int i = 0; k->tokens[i]; i++) {
        tok[n] = k->tokens[i];
        types[n++] = i < (int)strlen(k->control) && k->control[i] == 'c' ? 3 : 1;
    }
    for (int i = 0; i < n; i++) scores[i] = -(float)i;
    sm_gguf_writer *w = sm_gguf_writer_new();
    if (!w) return -1;
    sm_gguf_put_str(w, "general.architecture", "llama");
    sm_gguf_put_str(w, "general.name", k->name);
    sm_gguf_put_str(w, "tokenizer.ggml.model", "llama");
    sm_gguf_put_str_array(w, "tokenizer.ggml.tokens", tok, (size_t)n);
    sm_gguf_put_f32_array(w, "tokenizer.ggml.scores", scores, (size_t)n);
    sm_gguf_put_i32_array(w, "tokenizer.ggml.token_type", types, (size_t)n);
    sm_gguf_put_u32(w, "tokenizer.ggml.bos_token_id", 1);
    sm_gguf_put_u32(w, "tokenizer.ggml.eos_token_id", 2);
    for (int i = 0; i < 5 && k->keys[i]; i++) {
        char key[64];
        snprintf(key, sizeof key, "tokenizer.ggml.%s_token_id", k->keys[i]);
        sm_gguf_put_u32(w, key, (uint32_t)k->values[i]);
    }
    sm_status st = sm_gguf_writer_save(w, path, NULL);
    sm_gguf_writer_free(w);
    return st == SM_OK ? 0 : -1;
}

#endif

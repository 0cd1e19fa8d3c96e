/* text_api.c - the public tokenizer calls on a loaded model, and its
 * end-of-generation tokens. */
#include "model.h"
#include "core/error.h"
#include "text/eog.h"

#include <string.h>

sm_status sm_tokenize(const sm_model *m, const char *text, size_t len, int add_bos, sm_token *tokens,
                      size_t capacity, size_t *n_tokens, sm_error *err) {
    return sm_tokenize_ex(m, text, len, add_bos ? SM_TOKENIZE_ADD_BOS : 0, tokens, capacity, n_tokens, err);
}

sm_status sm_tokenize_ex(const sm_model *m, const char *text, size_t len, unsigned flags, sm_token *tokens,
                         size_t capacity, size_t *n_tokens, sm_error *err) {
    size_t dummy;
    if (!n_tokens) n_tokens = &dummy;
    *n_tokens = 0;
    if (!m) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_tokenize: model is NULL");
    if (!tokens && capacity) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_tokenize: tokens is NULL");
    return sm_vocab_encode(&m->vocab, text, len, flags, tokens, capacity, n_tokens, err);
}

int sm_token_piece(const sm_model *m, sm_token token, const char **piece) {
    return sm_vocab_piece(&m->vocab, token, piece);
}

sm_status sm_detokenize(const sm_model *m, const sm_token *tokens, size_t n, char *buf, size_t capacity,
                        size_t *len, sm_error *err) {
    size_t dummy;
    if (!len) len = &dummy;
    *len = 0;
    if (!m || (!tokens && n)) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_detokenize: model and tokens are required");
    size_t w = 0;
    int at_start = 1;
    for (size_t i = 0; i < n; i++) {
        const char *p;
        int pl = sm_vocab_piece(&m->vocab, tokens[i], &p);
        if (pl < 0)
            return sm_fail(err, SM_ERR_TOKEN_RANGE, "token id %d at index %zu is outside the vocabulary", tokens[i], i);
        /* The dummy-prefix space the encoder added is not part of the text. */
        if (at_start && pl > 0) {
            if (m->vocab.add_space_prefix && p[0] == ' ') { p++; pl--; }
            at_start = 0;
        }
        if (w + (size_t)pl < capacity) memcpy(buf + w, p, (size_t)pl);
        w += (size_t)pl;
    }
    *len = w;
    if (w + 1 > capacity)
        return sm_fail(err, SM_ERR_BUFFER_TOO_SMALL, "text needs %zu bytes, buffer holds %zu", w + 1, capacity);
    buf[w] = '\0';
    return SM_OK;
}

int sm_token_is_eog(const sm_model *m, sm_token token) { return m && sm_vocab_is_eog(&m->vocab, token); }

int sm_model_eog_tokens(const sm_model *m, sm_token *out, int cap) {
    int n = 0;
    for (int i = 0; m && i < m->vocab.n; i++)
        if (sm_vocab_is_eog(&m->vocab, i)) {
            if (out && n < cap) out[n] = i;
            n++;
        }
    return n;
}

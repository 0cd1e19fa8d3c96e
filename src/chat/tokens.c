/* tokens.c - a conversation as training tokens: formatted with a chat
 * template and tokenized, with a mask that marks the assistant's replies
 * (what a chat model learns to write) apart from their context. The text
 * is cut where each reply begins and ends: the formatting of the messages
 * before a reply with the assistant's opening (add_assistant) must be a
 * prefix of the formatting that includes the reply; each piece is
 * tokenized on its own (with special tokens parsed), as a chat loop
 * tokenizes the prompt up to the opening and then generates the reply. */
#include "core/alloc.h"
#include "core/error.h"

#include <string.h>

/* Appends the tokens of text[0..len) with mask value m. */
static sm_status add_piece(const sm_model *model, const char *text, size_t len, uint8_t m, sm_token *tokens,
                           uint8_t *mask, size_t cap, size_t *n, sm_error *err) {
    if (len == 0) return SM_OK;
    size_t got = 0, room = *n < cap ? cap - *n : 0;
    sm_status st = sm_tokenize_ex(model, text, len, SM_TOKENIZE_PARSE_SPECIAL, tokens ? tokens + *n : NULL, room, &got,
                                  err);
    if (st == SM_ERR_BUFFER_TOO_SMALL || (st == SM_OK && !tokens)) st = SM_OK, tokens = NULL;
    if (st) return st;
    if (mask && tokens && *n + got <= cap) memset(mask + *n, m, got);
    *n += got;
    return SM_OK;
}

sm_status sm_chat_tokenize(const sm_model *model, const char *tmpl, const sm_chat_message *msgs, size_t n_msgs,
                           int add_bos, sm_token *tokens, uint8_t *mask, size_t cap, size_t *n_tokens, sm_error *err) {
    if (!model || !msgs || !n_tokens || n_msgs == 0)
        return sm_fail(err, SM_ERR_INVALID_ARG, "sm_chat_tokenize: a model, messages and n_tokens are required");
    *n_tokens = 0;
    sm_chat_template_info info;
    sm_status st = sm_chat_template_resolve(model, tmpl, &info, err);
    if (st) return st;
    size_t full_len = 0;
    if ((st = sm_chat_apply(info.name, msgs, n_msgs, 0, NULL, 0, &full_len, err)) && st != SM_ERR_BUFFER_TOO_SMALL)
        return st;
    char *full = sm_alloc(full_len + 1), *head = sm_alloc(full_len + 256 + 1);
    if (!full || !head) {
        sm_free(full);
        sm_free(head);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    }
    st = sm_chat_apply(info.name, msgs, n_msgs, 0, full, full_len + 1, &full_len, err);
    size_t n = 0, done = 0;   /* tokens so far; bytes of `full` tokenized so far */
    sm_model_info mi;
    sm_model_get_info(model, &mi);
    if (!st && add_bos && mi.bos >= 0) {
        if (tokens && cap > 0) {
            tokens[0] = mi.bos;
            if (mask) mask[0] = 0;
        }
        n = 1;
    }
    for (size_t i = 0; !st && i < n_msgs; i++) {
        if (strcmp(msgs[i].role, "assistant")) continue;
        /* the context up to the reply (with the assistant's opening), then the reply */
        size_t h = 0, f = 0;
        st = sm_chat_apply(info.name, msgs, i, 1, head, full_len + 256 + 1, &h, err);
        if (st == SM_ERR_BUFFER_TOO_SMALL) st = sm_fail(err, SM_ERR_UNSUPPORTED, "the %s template's opening is too long", info.name);
        char *upto = NULL;
        if (!st) {
            upto = sm_alloc(full_len + 1);
            if (!upto) st = sm_fail(err, SM_ERR_NOMEM, "out of memory");
        }
        if (!st) st = sm_chat_apply(info.name, msgs, i + 1, 0, upto, full_len + 1, &f, err);
        if (!st && (h < done || f < h || memcmp(head, full, h) || memcmp(upto, full, f)))
            st = sm_fail(err, SM_ERR_UNSUPPORTED,
                         "the %s template does not write the conversation message by message (message %zu), so the "
                         "replies cannot be told apart",
                         info.name, i);
        sm_free(upto);
        if (!st) st = add_piece(model, full + done, h - done, 0, tokens, mask, cap, &n, err);
        if (!st) st = add_piece(model, full + h, f - h, 1, tokens, mask, cap, &n, err);
        done = f;
    }
    if (!st) st = add_piece(model, full + done, full_len - done, 0, tokens, mask, cap, &n, err);
    sm_free(full);
    sm_free(head);
    if (st) return st;
    *n_tokens = n;
    if (tokens && n > cap) return sm_fail(err, SM_ERR_BUFFER_TOO_SMALL, "%zu tokens do not fit in %zu", n, cap);
    return SM_OK;
}

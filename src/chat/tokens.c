/* tokens.c - a conversation as training tokens: formatted with a chat
 * template and tokenized, with a mask that marks the assistant's replies
 * (what a chat model learns to write) apart from their context. The text
 * is cut where each reply begins and ends: the formatting of the messages
 * before a reply with the assistant's opening (add_assistant) must be a
 * prefix of the formatting that includes the reply; each piece is
 * tokenized on its own (with special tokens parsed), as a chat loop
 * tokenizes the prompt up to the opening and then generates the reply.
 * The formatting is a built-in format's, or a template run as Jinja. */
#include "chat/template.h"
#include "core/alloc.h"
#include "core/error.h"

#include <string.h>
#include <time.h>

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

/* How a conversation is formatted: the built-in format `name`, or (jinja
 * set) the template text `tmpl`, else the model's, run as Jinja with the
 * trailing EOS kept and one time for every rendering of the conversation. */
typedef struct formatter {
    const sm_model *model;
    const char *name, *tmpl;
    int jinja;
    long long now;
} formatter;

static sm_status format(const formatter *f, const sm_chat_message *msgs, size_t n, int add, char *buf, size_t cap,
                        size_t *len, sm_error *err) {
    if (f->jinja) return sm_chat_format_jinja_ex(f->model, f->tmpl, msgs, n, add, 1, f->now, buf, cap, len, err);
    return sm_chat_apply(f->name, msgs, n, add, buf, cap, len, err);
}

/* msgs[0..n) formatted into *out (sm_alloc'd, NUL-terminated) */
static sm_status format_alloc(const formatter *f, const sm_chat_message *msgs, size_t n, int add, char **out,
                              size_t *len, sm_error *err) {
    *out = NULL;
    size_t need = 0;
    sm_status st = format(f, msgs, n, add, NULL, 0, &need, err);
    if (st && st != SM_ERR_BUFFER_TOO_SMALL) return st;
    char *b = sm_alloc(need + 1);
    if (!b) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    if ((st = format(f, msgs, n, add, b, need + 1, len, err))) {
        sm_free(b);
        return st;
    }
    *out = b;
    return SM_OK;
}

static sm_status tokenize(const formatter *f, const char *what, const sm_chat_message *msgs, size_t n_msgs, int add_bos,
                          sm_token *tokens, uint8_t *mask, size_t cap, size_t *n_tokens, sm_error *err) {
    const sm_model *model = f->model;
    char *full = NULL;
    size_t full_len = 0, n = 0, done = 0;   /* tokens so far; bytes of `full` tokenized so far */
    sm_status st = format_alloc(f, msgs, n_msgs, 0, &full, &full_len, err);
    if (st) return st;
    sm_model_info mi;
    sm_model_get_info(model, &mi);
    if (add_bos && mi.bos >= 0) {
        if (tokens && cap > 0) {
            tokens[0] = mi.bos;
            if (mask) mask[0] = 0;
        }
        n = 1;
    }
    for (size_t i = 0; !st && i < n_msgs; i++) {
        if (strcmp(msgs[i].role, "assistant")) continue;
        /* the context up to the reply (with the assistant's opening), then the reply */
        char *head = NULL, *upto = NULL;
        size_t h = 0, u = 0;
        st = format_alloc(f, msgs, i, 1, &head, &h, err);
        if (!st) st = format_alloc(f, msgs, i + 1, 0, &upto, &u, err);
        if (!st && (h < done || u < h || h > full_len || u > full_len || memcmp(head, full, h) || memcmp(upto, full, u)))
            st = sm_fail(err, SM_ERR_UNSUPPORTED,
                         "the %s template does not write the conversation message by message (message %zu), so the "
                         "replies cannot be told apart",
                         what, i);
        sm_free(head);
        sm_free(upto);
        if (!st) st = add_piece(model, full + done, h - done, 0, tokens, mask, cap, &n, err);
        if (!st) st = add_piece(model, full + h, u - h, 1, tokens, mask, cap, &n, err);
        done = u;
    }
    if (!st) st = add_piece(model, full + done, full_len - done, 0, tokens, mask, cap, &n, err);
    sm_free(full);
    if (st) return st;
    *n_tokens = n;
    if (tokens && n > cap) return sm_fail(err, SM_ERR_BUFFER_TOO_SMALL, "%zu tokens do not fit in %zu", n, cap);
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
    formatter f = {model, info.name, NULL, 0, 0};
    return tokenize(&f, info.name, msgs, n_msgs, add_bos, tokens, mask, cap, n_tokens, err);
}

sm_status sm_chat_tokenize_jinja(const sm_model *model, const char *tmpl, const sm_chat_message *msgs, size_t n_msgs,
                                 int add_bos, sm_token *tokens, uint8_t *mask, size_t cap, size_t *n_tokens,
                                 sm_error *err) {
    if (!model || !msgs || !n_tokens || n_msgs == 0)
        return sm_fail(err, SM_ERR_INVALID_ARG, "sm_chat_tokenize_jinja: a model, messages and n_tokens are required");
    *n_tokens = 0;
    formatter f = {model, "chatml", tmpl, 1, (long long)time(NULL)};
    return tokenize(&f, "Jinja", msgs, n_msgs, add_bos, tokens, mask, cap, n_tokens, err);
}

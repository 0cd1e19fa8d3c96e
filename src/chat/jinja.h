/* jinja.h - runs a chat template as the Jinja program it is (the subset of
 * Jinja2 that models' tokenizer.chat_template texts use), for --jinja. */
#ifndef SM_CHAT_JINJA_H
#define SM_CHAT_JINJA_H

#include <stddef.h>
#include "smallmind.h"

/* What a chat template sees: `messages` (a list of {role, content}),
 * `add_generation_prompt`, `bos_token`, `eos_token`, and the functions
 * raise_exception(msg), strftime_now(fmt) (at `now`, seconds since the
 * epoch, local time), range, namespace and dict. */
typedef struct sm_jinja_ctx {
    const sm_chat_message *msgs;
    size_t n_msgs;
    int add_generation_prompt;
    const char *bos_token, *eos_token;   /* NULL = "" */
    long long now;
} sm_jinja_ctx;

/* Parses and renders src[0..len) (need not be NUL-terminated). On SM_OK
 * *out is a malloc'd NUL-terminated string of *out_len bytes; the caller
 * frees it. A syntax error, a raise_exception() or a runaway template
 * (too deep, too long, too much output) is SM_ERR_FORMAT with a one-line
 * message naming the template line; SM_ERR_NOMEM when memory runs out. */
sm_status sm_jinja_render(const char *src, size_t len, const sm_jinja_ctx *ctx, char **out, size_t *out_len,
                          sm_error *err);

#endif

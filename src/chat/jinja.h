/* jinja.h - runs a chat template as the Jinja program it is (the subset of
 * Jinja2 that models' tokenizer.chat_template texts use), for --jinja. */
#ifndef SM_CHAT_JINJA_H
#define SM_CHAT_JINJA_H

#include <stddef.h>
#include "smallmind.h"

/* What a chat template sees: `messages` (a list of {role, content} and
 * each message's extra fields), `tools`,
 * `add_generation_prompt`, `bos_token`, `eos_token`, and the functions
 * raise_exception(msg), strftime_now(fmt) (at `now`, seconds since the
 * epoch, local time), range, namespace and dict. */
typedef struct sm_jinja_ctx {
    const sm_chat_message *msgs;
    size_t n_msgs;
    int add_generation_prompt;
    const char *bos_token, *eos_token;   /* NULL = "" */
    long long now;
    const sm_chat_value *tools;              /* `tools` (NULL = undefined) */
    const sm_chat_value *const *extras;      /* NULL, or per message NULL or a DICT of further fields */
    unsigned polyfill;                       /* SM_JINJA_POLY_*: what the messages get written into */
    const char *tool_call_example;           /* for SM_JINJA_POLY_TOOLS (NULL = none) */
    const sm_chat_value *vars;               /* NULL, or a DICT of further variables */
} sm_jinja_ctx;

/* minja's polyfills (common/minja/chat-template.hpp at llama.cpp c392e509),
 * applied to the messages in its order before the template runs */
#define SM_JINJA_POLY_SYSTEM         1u   /* system texts merged into the next user message */
#define SM_JINJA_POLY_TOOLS          2u   /* the tools described in a system text */
#define SM_JINJA_POLY_TOOL_CALLS     4u   /* tool calls as the reply's JSON content */
#define SM_JINJA_POLY_TOOL_RESPONSES 8u   /* tool results as user messages of JSON */
#define SM_JINJA_POLY_OBJECT_ARGS   16u   /* tool call arguments as objects */

/* Parses and renders src[0..len) (need not be NUL-terminated). On SM_OK
 * *out is a malloc'd NUL-terminated string of *out_len bytes; the caller
 * frees it. A syntax error, a raise_exception() or a runaway template
 * (too deep, too long, too much output) is SM_ERR_FORMAT with a one-line
 * message naming the template line; SM_ERR_NOMEM when memory runs out. */
sm_status sm_jinja_render(const char *src, size_t len, const sm_jinja_ctx *ctx, char **out, size_t *out_len,
                          sm_error *err);

#endif

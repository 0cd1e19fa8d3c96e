/* chat.c - the public chat-template calls: checking the messages, choosing
 * the format (an argument, the model's tokenizer.chat_template, or chatml),
 * and formatting a whole conversation, the part of it past an offset, or
 * the text one new message adds. */
#include "chat/template.h"
#include "core/error.h"
#include "text/utf8.h"

#include <stdint.h>
#include <string.h>

const char *const *sm_chat_template_names(size_t *n) {
    if (n) *n = SM_CHAT_FMT_COUNT;
    return sm_chat_fmt_names();
}

const char *sm_chat_template_detect(const char *tmpl) {
    int f = tmpl ? sm_chat_fmt_detect(tmpl, strlen(tmpl)) : -1;
    return f < 0 ? NULL : sm_chat_fmt_name(f);
}

const char *sm_chat_template_eot(const char *tmpl) {
    int f = tmpl ? sm_chat_fmt_detect(tmpl, strlen(tmpl)) : -1;
    return f < 0 ? NULL : sm_chat_fmt_eot(f);
}

/* A template that resolves to no format: a name-like argument is quoted,
 * template text is only described. */
static sm_status unknown_template(sm_error *err, const char *t, size_t len) {
    char list[400];
    sm_chat_fmt_list(list, sizeof list);
    int name_like = len > 0 && len <= 48 && sm_utf8_validate(t, len) == len;
    for (size_t i = 0; name_like && i < len; i++)
        if ((unsigned char)t[i] < 0x20 || t[i] == '{' || t[i] == '%') name_like = 0;
    if (name_like)
        return sm_fail(err, SM_ERR_UNSUPPORTED, "unknown chat template '%.*s' (built-in: %s)", (int)len, t, list);
    return sm_fail(err, SM_ERR_UNSUPPORTED,
                   "the chat template is not one of the built-in formats (it has none of their markers; "
                   "built-in: %s)", list);
}

static sm_status resolve_arg(const char *tmpl, int *fmt, sm_error *err) {
    if (!tmpl) tmpl = "chatml";   /* as llama_chat_apply_template with no template */
    size_t len = strlen(tmpl);
    *fmt = sm_chat_fmt_detect(tmpl, len);
    return *fmt < 0 ? unknown_template(err, tmpl, len) : SM_OK;
}

sm_status sm_chat_check_messages(const sm_chat_message *m, size_t n, size_t first, sm_error *err) {
    if (n && !m) return sm_fail(err, SM_ERR_INVALID_ARG, "no messages given (NULL with a count of %zu)", n);
    for (size_t i = 0; i < n; i++) {
        if (!m[i].role || !m[i].content)
            return sm_fail(err, SM_ERR_INVALID_ARG, "messages[%zu] has no %s", first + i, m[i].role ? "content" : "role");
        size_t rl = strlen(m[i].role), cl = strlen(m[i].content);
        size_t bad = sm_utf8_validate(m[i].role, rl);
        if (bad < rl)
            return sm_fail(err, SM_ERR_UTF8, "messages[%zu]: the role is not valid UTF-8 (byte %zu)", first + i, bad);
        bad = sm_utf8_validate(m[i].content, cl);
        if (bad < cl)
            return sm_fail(err, SM_ERR_UTF8, "messages[%zu]: the content is not valid UTF-8 (byte %zu)", first + i, bad);
    }
    return SM_OK;
}

sm_status sm_chat_finish(char *buf, size_t cap, size_t need, size_t *len, sm_error *err) {
    if (len) *len = need;
    if (!buf && cap == 0) return SM_OK;
    if (need >= cap)
        return sm_fail(err, SM_ERR_BUFFER_TOO_SMALL, "the formatted prompt needs %zu bytes and a NUL; the buffer has %zu",
                       need, cap);
    buf[need] = '\0';
    return SM_OK;
}

static sm_status apply_fmt(int fmt, const sm_chat_message *msgs, size_t n, int add, size_t from, char *buf,
                           size_t cap, size_t *len, sm_error *err) {
    sm_chat_list l = {msgs, NULL, n, 0};
    sm_chat_out o = {buf, cap, 0, from, 0, 0, 0};
    sm_chat_render(fmt, &l, add, &o);
    if (o.overflow) return sm_fail(err, SM_ERR_INVALID_ARG, "the formatted prompt is too long");
    if (o.total < from)
        return sm_fail(err, SM_ERR_INVALID_ARG, "the formatted prompt is %zu bytes, shorter than the offset %zu",
                       o.total, from);
    return sm_chat_finish(buf, cap, o.total - from, len, err);
}

sm_status sm_chat_apply_from(const char *tmpl, const sm_chat_message *msgs, size_t n, int add_assistant, size_t from,
                             char *buf, size_t cap, size_t *len, sm_error *err) {
    if (len) *len = 0;
    if (!buf && cap) return sm_fail(err, SM_ERR_INVALID_ARG, "no buffer given for %zu bytes", cap);
    int fmt;
    sm_status st = resolve_arg(tmpl, &fmt, err);
    if (st == SM_OK) st = sm_chat_check_messages(msgs, n, 0, err);
    if (st != SM_OK) return st;
    return apply_fmt(fmt, msgs, n, add_assistant, from, buf, cap, len, err);
}

sm_status sm_chat_apply(const char *tmpl, const sm_chat_message *msgs, size_t n, int add_assistant, char *buf,
                        size_t cap, size_t *len, sm_error *err) {
    return sm_chat_apply_from(tmpl, msgs, n, add_assistant, 0, buf, cap, len, err);
}

/* common_chat_format_single (llama.cpp common/chat.cpp, non-Jinja route):
 * the past is formatted only when there is one. */
sm_status sm_chat_format_single(const char *tmpl, const sm_chat_message *past, size_t n_past,
                                const sm_chat_message *msg, int add_assistant, char *buf, size_t cap, size_t *len,
                                sm_error *err) {
    if (len) *len = 0;
    if (!buf && cap) return sm_fail(err, SM_ERR_INVALID_ARG, "no buffer given for %zu bytes", cap);
    if (!msg) return sm_fail(err, SM_ERR_INVALID_ARG, "no new message given");
    int fmt;
    sm_status st = resolve_arg(tmpl, &fmt, err);
    if (st == SM_OK) st = sm_chat_check_messages(past, n_past, 0, err);
    if (st == SM_OK) st = sm_chat_check_messages(msg, 1, n_past, err);
    if (st != SM_OK) return st;

    sm_chat_out before = {NULL, 0, 0, 0, 0, 0, 0};
    if (n_past > 0) {
        sm_chat_list l = {past, NULL, n_past, 0};
        sm_chat_render(fmt, &l, 0, &before);
    }
    size_t nl = add_assistant && before.total > 0 && before.last == '\n';
    sm_chat_list l = {past, msg, n_past, 1};
    sm_chat_out after = {buf, cap, nl, before.total, 0, 0, 0};
    sm_chat_render(fmt, &l, add_assistant, &after);
    if (before.overflow || after.overflow) return sm_fail(err, SM_ERR_INVALID_ARG, "the formatted prompt is too long");
    if (after.total < before.total)
        return sm_fail(err, SM_ERR_UNSUPPORTED, "the conversation with the new message formats shorter (%zu bytes) "
                       "than without it (%zu)", after.total, before.total);
    if (nl && buf && cap) buf[0] = '\n';
    return sm_chat_finish(buf, cap, nl + (after.total - before.total), len, err);
}

sm_status sm_chat_template_resolve(const sm_model *model, const char *tmpl, sm_chat_template_info *info,
                                   sm_error *err) {
    if (!info) return sm_fail(err, SM_ERR_INVALID_ARG, "no info to fill");
    memset(info, 0, sizeof *info);
    int fmt = SM_CHAT_CHATML;
    info->origin = "default";
    if (tmpl) {
        sm_status st = resolve_arg(tmpl, &fmt, err);
        if (st != SM_OK) return st;
        info->origin = "argument";
    } else if (model) {
        const char *text = NULL;
        size_t len = 0;
        int r = sm_model_meta_str(model, "tokenizer.chat_template", &text, &len);
        /* an empty template counts as none, as in llama.cpp */
        int f = r == 1 && len > 0 ? sm_chat_fmt_detect(text, len) : -1;
        if (f >= 0) {
            fmt = f;
            info->origin = "model";
        } else if (r == 1 && len > 0) {
            info->warning = "the model's chat template (tokenizer.chat_template) is not one of the built-in formats; "
                            "using chatml, which may not suit this model (choose one with --chat-template)";
        } else if (r < 0) {
            info->warning = "the model's tokenizer.chat_template is not a string; using chatml";
        } else {
            info->warning = "the model has no chat template (tokenizer.chat_template); using chatml";
        }
    }
    info->name = sm_chat_fmt_name(fmt);
    info->eot = sm_chat_fmt_eot(fmt);
    return SM_OK;
}

sm_status sm_chat_format(const sm_model *model, const char *tmpl, const sm_chat_message *msgs, size_t n,
                         int add_assistant, char *buf, size_t cap, size_t *len, sm_error *err) {
    sm_chat_template_info info;
    if (len) *len = 0;
    sm_status st = sm_chat_template_resolve(model, tmpl, &info, err);
    if (st != SM_OK) return st;
    return sm_chat_apply(info.name, msgs, n, add_assistant, buf, cap, len, err);
}

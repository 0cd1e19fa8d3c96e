/* responses.c - see responses.h. A Response's output is what the chat
 * answer holds, in this order: a reasoning item (the reply's thinking, when
 * the template separates it), a message item with one output_text part, and
 * a function_call item per tool call. */
#include "responses.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD "invalid_request_error"

static const char *kind_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static const char *str_or(const json_t *o, const char *key, const char *dflt) {
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

/* ------------------------------------------------------------ request */

/* A content as text: a string, or an array of text parts joined (the
 * Responses kinds input_text and output_text, and chat's text). */
static json_t *content_text(json_t *c, const char *param, req_error *e) {
    if (!c || json_is_null(c)) return json_string("");
    if (json_is_string(c)) return json_incref(c);
    if (!json_is_array(c)) {
        req_fail(e, 400, BAD, param, "'%s' must be a string or an array of parts, not %s", param, kind_name(c));
        return NULL;
    }
    size_t n = 0, i;
    json_t *part;
    json_array_foreach(c, i, part) {
        const char *t = json_is_object(part) ? str_or(part, "type", "") : "";
        if (strcmp(t, "input_text") && strcmp(t, "output_text") && strcmp(t, "text")) {
            req_fail(e, 400, BAD, param, "a part of type '%.40s' in '%s': this server reads text only (input_text)",
                     t, param);
            return NULL;
        }
        if (!json_is_string(json_object_get(part, "text"))) {
            req_fail(e, 400, BAD, param, "a text part in '%s' has no 'text' string", param);
            return NULL;
        }
        n += json_string_length(json_object_get(part, "text"));
    }
    char *s = malloc(n + 1);
    if (!s) return NULL;
    size_t at = 0;
    json_array_foreach(c, i, part) {
        const json_t *t = json_object_get(part, "text");
        memcpy(s + at, json_string_value(t), json_string_length(t));
        at += json_string_length(t);
    }
    json_t *r = json_stringn_nocheck(s, at);
    free(s);
    return r;
}

/* one input item into chat messages; *calls is the assistant message that
 * consecutive function_call items join (NULL after any other item) */
static int input_item(json_t *msgs, json_t *item, json_t **calls, req_error *e) {
    if (!json_is_object(item)) return req_fail(e, 400, BAD, "input", "an item of 'input' is %s, not an object",
                                               kind_name(item));
    const char *type = str_or(item, "type", NULL);
    if (!type || !strcmp(type, "message")) {
        *calls = NULL;
        const char *role = str_or(item, "role", NULL);
        if (!role) return req_fail(e, 400, BAD, "input", "a message in 'input' has no 'role' string");
        if (!strcmp(role, "developer")) role = "system";
        if (strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "system"))
            return req_fail(e, 400, BAD, "input", "role '%.40s' in 'input' (user, assistant, system or developer)",
                            role);
        json_t *text = content_text(json_object_get(item, "content"), "input", e);
        if (!text) return e->status ? -1 : req_fail(e, 500, "server_error", NULL, "out of memory");
        return json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", role, "content", text)) ? -1 : 0;
    }
    if (!strcmp(type, "function_call")) {
        const char *name = str_or(item, "name", NULL), *args = str_or(item, "arguments", "{}");
        const char *id = str_or(item, "call_id", str_or(item, "id", NULL));
        if (!name || !id) return req_fail(e, 400, BAD, "input", "a function_call in 'input' needs 'name' and 'call_id'");
        json_t *call = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function", "function", "name", name,
                                 "arguments", args);
        if (!*calls) {
            *calls = json_pack("{s:s, s:n, s:[]}", "role", "assistant", "content", "tool_calls");
            if (!*calls || json_array_append_new(msgs, *calls)) return req_fail(e, 500, "server_error", NULL, "out of memory");
        }
        return json_array_append_new(json_object_get(*calls, "tool_calls"), call) ? -1 : 0;
    }
    *calls = NULL;
    if (!strcmp(type, "function_call_output")) {
        const char *id = str_or(item, "call_id", NULL);
        if (!id) return req_fail(e, 400, BAD, "input", "a function_call_output in 'input' needs 'call_id'");
        json_t *text = content_text(json_object_get(item, "output"), "input", e);
        if (!text) return e->status ? -1 : req_fail(e, 500, "server_error", NULL, "out of memory");
        return json_array_append_new(msgs, json_pack("{s:s, s:s, s:o}", "role", "tool", "tool_call_id", id, "content",
                                                     text)) ? -1 : 0;
    }
    if (!strcmp(type, "reasoning")) return 0;   /* an earlier reply's thinking: not part of the prompt */
    return req_fail(e, 400, BAD, "input", "input items of type '%.40s' are not supported here (messages, "
                    "function_call and function_call_output are)", type);
}

/* tools: Responses' flat function tools (chat's nested ones pass as they are) */
static json_t *chat_tools(json_t *tools, req_error *e) {
    if (!json_is_array(tools)) {
        req_fail(e, 400, BAD, "tools", "'tools' must be an array, not %s", kind_name(tools));
        return NULL;
    }
    json_t *out = json_array(), *t;
    size_t i;
    json_array_foreach(tools, i, t) {
        const char *type = json_is_object(t) ? str_or(t, "type", "") : "";
        if (strcmp(type, "function")) {
            json_decref(out);
            req_fail(e, 400, BAD, "tools", "tool type '%.40s' is not available on this server (function tools are)",
                     type);
            return NULL;
        }
        json_t *f = json_object_get(t, "function");
        if (json_is_object(f)) {
            json_array_append(out, t);
            continue;
        }
        f = json_object();
        const char *keys[] = {"name", "description", "parameters", "strict"};
        for (int k = 0; k < 4; k++)
            if (json_object_get(t, keys[k])) json_object_set(f, keys[k], json_object_get(t, keys[k]));
        json_array_append_new(out, json_pack("{s:s, s:o}", "type", "function", "function", f));
    }
    return out;
}

int responses_request(const char *body, size_t len, char **chat, void **echo, req_error *e) {
    *chat = NULL;
    *echo = NULL;
    json_error_t je;
    json_t *in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!in) return req_fail(e, 400, BAD, "", "the body is not valid JSON: %.200s (line %d)", je.text, je.line);
    json_t *out = json_object(), *msgs = json_array(), *v;
    int rc = -1;
    if (!out || !msgs) {
        req_fail(e, 500, "server_error", NULL, "out of memory");
        goto done;
    }
    if (!json_is_object(in)) {
        req_fail(e, 400, BAD, "", "the body must be a JSON object, not %s", kind_name(in));
        goto done;
    }
    if ((v = json_object_get(in, "previous_response_id")) && !json_is_null(v)) {
        req_fail(e, 400, BAD, "previous_response_id", "this server keeps no responses: send the whole conversation "
                 "in 'input' instead of 'previous_response_id'");
        goto done;
    }
    if ((v = json_object_get(in, "conversation")) && !json_is_null(v)) {
        req_fail(e, 400, BAD, "conversation", "this server keeps no conversations: send the whole conversation in 'input'");
        goto done;
    }
    if (json_is_true(json_object_get(in, "background"))) {
        req_fail(e, 400, BAD, "background", "background responses are not supported: leave 'background' false");
        goto done;
    }
    if ((v = json_object_get(in, "instructions")) && !json_is_null(v)) {
        if (!json_is_string(v)) {
            req_fail(e, 400, BAD, "instructions", "'instructions' must be a string, not %s", kind_name(v));
            goto done;
        }
        if (json_string_length(v)) json_array_append_new(msgs, json_pack("{s:s, s:O}", "role", "system", "content", v));
    }
    v = json_object_get(in, "input");
    if (json_is_string(v)) {
        json_array_append_new(msgs, json_pack("{s:s, s:O}", "role", "user", "content", v));
    } else if (json_is_array(v)) {
        json_t *item, *calls = NULL;
        size_t i;
        json_array_foreach(v, i, item)
            if (input_item(msgs, item, &calls, e)) goto done;
    } else {
        req_fail(e, 400, BAD, "input", v ? "'input' must be a string or an array of items, not %s" : "'input' is missing",
                 v ? kind_name(v) : "");
        goto done;
    }
    if (json_array_size(msgs) == 0) {
        req_fail(e, 400, BAD, "input", "'input' holds no message");
        goto done;
    }
    json_object_set(out, "messages", msgs);
    /* what chat takes under the same name */
    static const char *const same[] = {"model", "temperature", "top_p", "stream", "seed", "stop", "parallel_tool_calls",
                                       "top_k", "min_p", "presence_penalty", "frequency_penalty", "repeat_penalty",
                                       "repeat_last_n", "ignore_eos"};
    for (size_t k = 0; k < sizeof same / sizeof same[0]; k++)
        if ((v = json_object_get(in, same[k]))) json_object_set(out, same[k], v);
    if ((v = json_object_get(in, "max_output_tokens")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
            req_fail(e, 400, BAD, "max_output_tokens", "'max_output_tokens' must be a positive integer");
            goto done;
        }
        json_object_set(out, "max_tokens", v);
    }
    if (json_is_true(json_object_get(in, "stream")))   /* the closing event carries the usage */
        json_object_set_new(out, "stream_options", json_pack("{s:b}", "include_usage", 1));
    if ((v = json_object_get(in, "tools")) && !json_is_null(v)) {
        json_t *t = chat_tools(v, e);
        if (!t) goto done;
        json_object_set_new(out, "tools", t);
    }
    if ((v = json_object_get(in, "tool_choice")) && !json_is_null(v)) {
        if (json_is_string(v)) {
            json_object_set(out, "tool_choice", v);
        } else if (json_is_object(v) && !strcmp(str_or(v, "type", ""), "function") && str_or(v, "name", NULL)) {
            json_object_set_new(out, "tool_choice", json_pack("{s:s, s:{s:s}}", "type", "function", "function", "name",
                                                              str_or(v, "name", "")));
        } else {
            req_fail(e, 400, BAD, "tool_choice", "'tool_choice' must be auto, none, required or a function by name");
            goto done;
        }
    }
    json_t *fmt = json_object_get(json_object_get(in, "text"), "format");
    if (fmt && !json_is_null(fmt)) {
        const char *t = json_is_object(fmt) ? str_or(fmt, "type", "") : "";
        if (!strcmp(t, "json_object")) {
            json_object_set_new(out, "response_format", json_pack("{s:s}", "type", "json_object"));
        } else if (!strcmp(t, "json_schema")) {
            json_t *js = json_object();
            const char *keys[] = {"name", "schema", "strict", "description"};
            for (int k = 0; k < 4; k++)
                if (json_object_get(fmt, keys[k])) json_object_set(js, keys[k], json_object_get(fmt, keys[k]));
            json_object_set_new(out, "response_format", json_pack("{s:s, s:o}", "type", "json_schema", "json_schema", js));
        } else if (strcmp(t, "text")) {
            req_fail(e, 400, BAD, "text.format", "'text.format' type must be text, json_object or json_schema");
            goto done;
        }
    }
    /* what the Response echoes */
    json_t *keep = json_object();
    static const char *const echoed[] = {"instructions", "max_output_tokens", "temperature", "top_p", "tools",
                                         "tool_choice", "parallel_tool_calls", "text", "metadata", "user"};
    for (size_t k = 0; k < sizeof echoed / sizeof echoed[0]; k++)
        if ((v = json_object_get(in, echoed[k]))) json_object_set(keep, echoed[k], v);
    *chat = json_dumps(out, JSON_COMPACT);
    if (!*chat) {
        json_decref(keep);
        req_fail(e, 500, "server_error", NULL, "out of memory");
        goto done;
    }
    *echo = keep;
    rc = 0;
done:
    json_decref(msgs);
    json_decref(out);
    json_decref(in);
    return rc;
}

void responses_echo_free(void *echo) { json_decref(echo); }

/* ------------------------------------------------------------ answers */

static json_t *echo_or(const json_t *echo, const char *key, json_t *dflt) {
    json_t *v = json_object_get(echo, key);
    if (v && !json_is_null(v)) {
        json_decref(dflt);
        return json_incref(v);
    }
    return dflt;
}

/* chat usage to Responses usage */
static json_t *usage_of(const json_t *u) {
    if (!json_is_object(u)) return json_null();
    json_int_t in = json_integer_value(json_object_get(u, "prompt_tokens"));
    json_int_t out = json_integer_value(json_object_get(u, "completion_tokens"));
    json_int_t cached = json_integer_value(json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens"));
    return json_pack("{s:I, s:{s:I}, s:I, s:{s:i}, s:I}", "input_tokens", in, "input_tokens_details", "cached_tokens",
                     cached, "output_tokens", out, "output_tokens_details", "reasoning_tokens", 0, "total_tokens", in + out);
}

/* the Response object; output and usage are taken */
static json_t *response_object(const json_t *echo, const char *id, json_int_t created, const char *model,
                               const char *status, json_t *output, json_t *usage) {
    int incomplete = !strcmp(status, "incomplete");
    json_t *r = json_pack("{s:s, s:s, s:I, s:s, s:n, s:o, s:s, s:o, s:o, s:n}", "id", id, "object", "response",
                          "created_at", created, "status", status, "error", "incomplete_details",
                          incomplete ? json_pack("{s:s}", "reason", "max_output_tokens") : json_null(), "model", model,
                          "output", output ? output : json_array(), "usage", usage ? usage : json_null(),
                          "previous_response_id");
    json_object_set_new(r, "instructions", echo_or(echo, "instructions", json_null()));
    json_object_set_new(r, "max_output_tokens", echo_or(echo, "max_output_tokens", json_null()));
    json_object_set_new(r, "temperature", echo_or(echo, "temperature", json_real(1.0)));
    json_object_set_new(r, "top_p", echo_or(echo, "top_p", json_real(1.0)));
    json_object_set_new(r, "tools", echo_or(echo, "tools", json_array()));
    json_object_set_new(r, "tool_choice", echo_or(echo, "tool_choice", json_string("auto")));
    json_object_set_new(r, "parallel_tool_calls", echo_or(echo, "parallel_tool_calls", json_true()));
    json_object_set_new(r, "text", echo_or(echo, "text", json_pack("{s:{s:s}}", "format", "type", "text")));
    json_object_set_new(r, "metadata", echo_or(echo, "metadata", json_object()));
    json_object_set_new(r, "user", echo_or(echo, "user", json_null()));
    json_object_set_new(r, "store", json_false());   /* nothing is kept */
    json_object_set_new(r, "truncation", json_string("disabled"));
    json_object_set_new(r, "reasoning", json_pack("{s:n, s:n}", "effort", "summary"));
    return r;
}

static json_t *text_part(const char *text, size_t n) {
    return json_pack("{s:s, s:s%, s:[]}", "type", "output_text", "text", text, n, "annotations");
}

static json_t *message_item(const char *id, const char *status, json_t *parts) {
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", id, "type", "message", "status", status, "role", "assistant",
                     "content", parts);
}

static json_t *reasoning_item(const char *id, const char *text, size_t n) {
    return json_pack("{s:s, s:s, s:[], s:[{s:s, s:s%}]}", "id", id, "type", "reasoning", "summary", "content", "type",
                     "reasoning_text", "text", text, n);
}

static json_t *call_item(const char *id, const char *status, const char *call_id, const char *name, const char *args) {
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", id, "type", "function_call", "status", status, "call_id",
                     call_id, "name", name, "arguments", args);
}

/* "chatcmpl-HEX" -> "PREFIXHEX" (letters, digits and _ only, at most 40 of them) */
static void item_id(char *out, size_t cap, const char *prefix, const char *chat_id, int n) {
    const char *dash = chat_id ? strchr(chat_id, '-') : NULL;
    const char *hex = dash ? dash + 1 : chat_id ? chat_id : "0";
    char clean[41];
    size_t k = 0;
    for (; *hex && k < 40; hex++)
        if ((*hex >= '0' && *hex <= '9') || (*hex >= 'a' && *hex <= 'z') || (*hex >= 'A' && *hex <= 'Z') || *hex == '_')
            clean[k++] = *hex;
    clean[k] = '\0';
    if (n >= 0) snprintf(out, cap, "%s%s_%d", prefix, clean, n);
    else snprintf(out, cap, "%s%s", prefix, clean);
}

char *responses_answer(const char *completion, const void *echo_) {
    const json_t *echo = echo_;
    json_t *c = json_loads(completion, 0, NULL);
    if (!c) return NULL;
    const char *cid = str_or(c, "id", "0");
    json_t *choice = json_array_get(json_object_get(c, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    json_t *output = json_array();
    char id[96];
    const json_t *r = json_object_get(msg, "reasoning_content");
    if (json_is_string(r) && json_string_length(r)) {
        item_id(id, sizeof id, "rs_", cid, -1);
        json_array_append_new(output, reasoning_item(id, json_string_value(r), json_string_length(r)));
    }
    const json_t *text = json_object_get(msg, "content");
    json_t *calls = json_object_get(msg, "tool_calls");
    const char *finish = str_or(choice, "finish_reason", "stop");
    int cut = !strcmp(finish, "length");   /* max_output_tokens ended it */
    if ((json_is_string(text) && json_string_length(text)) || json_array_size(calls) == 0) {
        item_id(id, sizeof id, "msg_", cid, -1);
        const char *s = json_is_string(text) ? json_string_value(text) : "";
        size_t n = json_is_string(text) ? json_string_length(text) : 0;
        json_array_append_new(output, message_item(id, cut ? "incomplete" : "completed", json_pack("[o]", text_part(s, n))));
    }
    json_t *call;
    size_t i;
    json_array_foreach(calls, i, call) {
        json_t *f = json_object_get(call, "function");
        item_id(id, sizeof id, "fc_", cid, (int)i);
        json_array_append_new(output, call_item(id, "completed", str_or(call, "id", id), str_or(f, "name", ""),
                                                str_or(f, "arguments", "{}")));
    }
    item_id(id, sizeof id, "resp_", cid, -1);
    json_t *resp = response_object(echo, id, json_integer_value(json_object_get(c, "created")), str_or(c, "model", ""),
                                   cut ? "incomplete" : "completed", output,
                                   usage_of(json_object_get(c, "usage")));
    char *s = json_dumps(resp, JSON_COMPACT);
    json_decref(resp);
    json_decref(c);
    return s;
}

/* ------------------------------------------------------------ the stream */

typedef struct text_buf { char *p; size_t n, cap; int oom; } text_buf;

static void tb_put(text_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *g = realloc(b->p, cap);
        if (!g) {
            b->oom = 1;
            return;
        }
        b->p = g;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

struct resp_stream {
    json_t *echo;
    char *chat_id, id[96], msg_id[96];
    json_int_t created;
    char *model;
    long seq;
    int started, msg_open, msg_index, n_out, failed;
    text_buf text, reasoning;
    json_t *calls;               /* [{call_id, name, arguments}] as the chunks build them */
    json_t *output;              /* the finished items, by output index */
    char finish[32];
    json_t *usage;
    text_buf ev;                 /* the events of one call */
};

resp_stream *responses_stream_new(const void *echo) {
    resp_stream *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->echo = json_incref((json_t *)echo);
    st->calls = json_array();
    st->output = json_array();
    st->msg_index = -1;
    return st;
}

void responses_stream_free(resp_stream *st) {
    if (!st) return;
    json_decref(st->echo);
    json_decref(st->calls);
    json_decref(st->output);
    json_decref(st->usage);
    free(st->chat_id);
    free(st->model);
    free(st->text.p);
    free(st->reasoning.p);
    free(st->ev.p);
    free(st);
}

/* one event: its type and sequence number go in first; ev is taken */
static void emit(resp_stream *st, const char *type, json_t *ev) {
    if (!ev) {
        st->ev.oom = 1;
        return;
    }
    json_object_set_new(ev, "type", json_string(type));
    json_object_set_new(ev, "sequence_number", json_integer(st->seq++));
    char *s = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (!s) {
        st->ev.oom = 1;
        return;
    }
    tb_put(&st->ev, "event: ", 7);
    tb_put(&st->ev, type, strlen(type));
    tb_put(&st->ev, "\ndata: ", 7);
    tb_put(&st->ev, s, strlen(s));
    tb_put(&st->ev, "\n\n", 2);
    free(s);
}

static char *take_events(resp_stream *st) {
    if (st->ev.oom) return NULL;
    char *s = st->ev.p ? st->ev.p : strdup("");
    st->ev.p = NULL;
    st->ev.n = st->ev.cap = 0;
    return s;
}

static json_t *snapshot(resp_stream *st, const char *status) {
    return response_object(st->echo, st->id, st->created, st->model, status, json_copy(st->output),
                           st->usage ? usage_of(st->usage) : NULL);
}

/* the message item and its one text part, opened at the next output index */
static void open_message(resp_stream *st) {
    st->msg_open = 1;
    st->msg_index = st->n_out++;
    emit(st, "response.output_item.added", json_pack("{s:i, s:o}", "output_index", st->msg_index, "item",
                                                     message_item(st->msg_id, "in_progress", json_array())));
    emit(st, "response.content_part.added", json_pack("{s:s, s:i, s:i, s:o}", "item_id", st->msg_id, "output_index",
                                                      st->msg_index, "content_index", 0, "part", text_part("", 0)));
}

/* the thinking so far as one finished reasoning item (before any other) */
static void flush_reasoning(resp_stream *st) {
    if (!st->reasoning.n) return;
    char id[96];
    item_id(id, sizeof id, "rs_", st->chat_id, -1);
    int idx = st->n_out++;
    emit(st, "response.output_item.added",
         json_pack("{s:i, s:o}", "output_index", idx, "item", reasoning_item(id, "", 0)));
    json_t *done = reasoning_item(id, st->reasoning.p, st->reasoning.n);
    json_object_set_new(done, "status", json_string("completed"));
    emit(st, "response.output_item.done", json_pack("{s:i, s:O}", "output_index", idx, "item", done));
    json_array_append_new(st->output, done);
    st->reasoning.n = 0;
}

char *responses_stream_chunk(resp_stream *st, const char *chunk) {
    json_t *c = json_loads(chunk, 0, NULL);
    if (!c) return take_events(st);
    json_t *err = json_object_get(c, "error");
    if (err) {
        st->failed = 1;
        emit(st, "error", json_pack("{s:O?, s:O?, s:O?}", "code", json_object_get(err, "code"), "message",
                                    json_object_get(err, "message"), "param", json_object_get(err, "param")));
        json_decref(c);
        return take_events(st);
    }
    if (!st->started) {
        st->started = 1;
        st->chat_id = strdup(str_or(c, "id", "chatcmpl-0"));
        st->model = strdup(str_or(c, "model", ""));
        if (!st->chat_id || !st->model) {
            st->ev.oom = 1;
            json_decref(c);
            return take_events(st);
        }
        item_id(st->id, sizeof st->id, "resp_", st->chat_id, -1);
        item_id(st->msg_id, sizeof st->msg_id, "msg_", st->chat_id, -1);
        st->created = json_integer_value(json_object_get(c, "created"));
        emit(st, "response.created", json_pack("{s:o}", "response", snapshot(st, "in_progress")));
        emit(st, "response.in_progress", json_pack("{s:o}", "response", snapshot(st, "in_progress")));
    }
    json_t *u = json_object_get(c, "usage");
    if (json_is_object(u)) {
        json_decref(st->usage);
        st->usage = json_incref(u);
    }
    json_t *choice = json_array_get(json_object_get(c, "choices"), 0);
    json_t *delta = json_object_get(choice, "delta");
    const json_t *r = json_object_get(delta, "reasoning_content");
    if (json_is_string(r)) tb_put(&st->reasoning, json_string_value(r), json_string_length(r));
    const json_t *t = json_object_get(delta, "content");
    if (json_is_string(t) && json_string_length(t)) {
        flush_reasoning(st);
        if (!st->msg_open) open_message(st);
        tb_put(&st->text, json_string_value(t), json_string_length(t));
        emit(st, "response.output_text.delta",
             json_pack("{s:s, s:i, s:i, s:s%, s:[]}", "item_id", st->msg_id, "output_index", st->msg_index,
                       "content_index", 0, "delta", json_string_value(t), json_string_length(t), "logprobs"));
    }
    json_t *calls = json_object_get(delta, "tool_calls"), *call;
    size_t i;
    json_array_foreach(calls, i, call) {
        json_int_t k = json_is_integer(json_object_get(call, "index")) ? json_integer_value(json_object_get(call, "index"))
                                                                       : (json_int_t)i;
        json_t *f = json_object_get(call, "function");
        if (k < 0 || k > 1024) continue;
        while ((json_int_t)json_array_size(st->calls) <= k)
            json_array_append_new(st->calls, json_pack("{s:s, s:s, s:s}", "call_id", "", "name", "", "arguments", ""));
        json_t *have = json_array_get(st->calls, (size_t)k);
        if (json_is_string(json_object_get(call, "id"))) json_object_set(have, "call_id", json_object_get(call, "id"));
        if (json_is_string(json_object_get(f, "name"))) json_object_set(have, "name", json_object_get(f, "name"));
        const json_t *a = json_object_get(f, "arguments");
        if (json_is_string(a) && json_string_length(a)) {
            const json_t *was = json_object_get(have, "arguments");
            size_t n0 = json_string_length(was), n1 = json_string_length(a);
            char *joined = malloc(n0 + n1 + 1);
            if (!joined) {
                st->ev.oom = 1;
                break;
            }
            memcpy(joined, json_string_value(was), n0);
            memcpy(joined + n0, json_string_value(a), n1);
            json_object_set_new(have, "arguments", json_stringn_nocheck(joined, n0 + n1));
            free(joined);
        }
    }
    const json_t *fin = json_object_get(choice, "finish_reason");
    if (json_is_string(fin)) snprintf(st->finish, sizeof st->finish, "%s", json_string_value(fin));
    json_decref(c);
    return take_events(st);
}

char *responses_stream_end(resp_stream *st) {
    if (st->failed || !st->started) return take_events(st);
    int incomplete = !strcmp(st->finish, "length");
    flush_reasoning(st);
    if (!st->msg_open && json_array_size(st->calls) == 0) open_message(st);   /* an empty reply is still one message */
    if (st->msg_open) {
        const char *s = st->text.p ? st->text.p : "";
        emit(st, "response.output_text.done", json_pack("{s:s, s:i, s:i, s:s%, s:[]}", "item_id", st->msg_id,
                                                        "output_index", st->msg_index, "content_index", 0, "text", s,
                                                        st->text.n, "logprobs"));
        emit(st, "response.content_part.done", json_pack("{s:s, s:i, s:i, s:o}", "item_id", st->msg_id, "output_index",
                                                         st->msg_index, "content_index", 0, "part",
                                                         text_part(s, st->text.n)));
        json_t *item = message_item(st->msg_id, incomplete ? "incomplete" : "completed",
                                    json_pack("[o]", text_part(s, st->text.n)));
        emit(st, "response.output_item.done", json_pack("{s:i, s:O}", "output_index", st->msg_index, "item", item));
        json_array_append_new(st->output, item);
    }
    json_t *call;
    size_t i;
    json_array_foreach(st->calls, i, call) {
        char id[96];
        item_id(id, sizeof id, "fc_", st->chat_id, (int)i);
        const char *call_id = str_or(call, "call_id", ""), *name = str_or(call, "name", "");
        const char *args = str_or(call, "arguments", "");
        int idx = st->n_out++;
        emit(st, "response.output_item.added",
             json_pack("{s:i, s:o}", "output_index", idx, "item", call_item(id, "in_progress", *call_id ? call_id : id,
                                                                            name, "")));
        emit(st, "response.function_call_arguments.delta",
             json_pack("{s:s, s:i, s:s}", "item_id", id, "output_index", idx, "delta", args));
        emit(st, "response.function_call_arguments.done",
             json_pack("{s:s, s:i, s:s}", "item_id", id, "output_index", idx, "arguments", args));
        json_t *item = call_item(id, "completed", *call_id ? call_id : id, name, args);
        emit(st, "response.output_item.done", json_pack("{s:i, s:O}", "output_index", idx, "item", item));
        json_array_append_new(st->output, item);
    }
    emit(st, incomplete ? "response.incomplete" : "response.completed",
         json_pack("{s:o}", "response", snapshot(st, incomplete ? "incomplete" : "completed")));
    return take_events(st);
}

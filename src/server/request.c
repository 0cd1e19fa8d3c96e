/* request.c - OpenAI request bodies to parameters (see request.h). The
 * JSON is parsed by Jansson, which checks the UTF-8 and refuses "\u0000"
 * in strings and duplicate keys. Members this server does not know are
 * ignored, as OpenAI-compatible servers do (llama.cpp's too); known ones
 * with a wrong type or value, or asking for what it cannot do (n > 1,
 * echo), are a 400 naming the parameter. Parameter ranges are
 * OpenAI's (API reference, "Create chat completion"). */
#include "request.h"
#include "json/json_schema.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD "invalid_request_error"

int req_fail(req_error *e, int status, const char *type, const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = type;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "something else";
}

/* A member that is absent or null leaves *out as it is. */
static int get_number(json_t *o, const char *key, double lo, double hi, float *out, req_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return req_fail(e, 400, BAD, key, "'%s' must be a number, not %s", key, kind(v));
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi)
        return req_fail(e, 400, BAD, key, "'%s' is %g; it must be between %g and %g", key, d, lo, hi);
    *out = (float)d;
    return 0;
}

static int get_int(json_t *o, const char *key, long long lo, long long hi, long long *out, req_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) return req_fail(e, 400, BAD, key, "'%s' must be an integer, not %s", key, kind(v));
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return req_fail(e, 400, BAD, key, "'%s' is %lld; it must be between %lld and %lld", key, x, lo, hi);
    *out = x;
    return 0;
}

static int get_bool(json_t *o, const char *key, int *out, req_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return req_fail(e, 400, BAD, key, "'%s' must be a boolean, not %s", key, kind(v));
    *out = json_is_true(v);
    return 0;
}

static char *own(request *r, size_t len) {
    char **grown = realloc(r->owned, (r->n_owned + 1) * sizeof *grown);
    if (!grown) return NULL;
    r->owned = grown;
    char *s = malloc(len + 1);
    if (s) r->owned[r->n_owned++] = s;
    return s;
}

void *req_own(request *r, size_t len) {
    char *s = own(r, len);
    if (s) memset(s, 0, len + 1);
    return s;
}

int req_grammar(request *r, const char *text, const char *param, req_error *e) {
    sm_error err = {0};
    char *copy = req_own(r, strlen(text));
    if (!copy) return req_fail(e, 500, "server_error", NULL, "out of memory");
    r->grammar_text = strcpy(copy, text);
    sm_status st = sm_grammar_parse(text, strlen(text), NULL, &r->grammar, &err);
    if (st == SM_OK) st = sm_grammar_matcher_new(r->grammar, &r->matcher, &err);
    if (st == SM_ERR_NOMEM) return req_fail(e, 500, "server_error", NULL, "out of memory");
    if (st) return req_fail(e, 400, BAD, param, "%s: the grammar: %s", param, err.message);
    return 0;
}

static int make_grammar(request *r, const char *text, req_error *e) { return req_grammar(r, text, "response_format", e); }

/* A JSON schema (param names it) to the request's grammar. */
static int schema_grammar(request *r, json_t *schema, const char *param, req_error *e) {
    if (!json_is_object(schema) && !json_is_boolean(schema))
        return req_fail(e, 400, BAD, param, "the JSON schema in %s must be an object, not %s", param, kind(schema));
    sm_error err = {0};
    char *text = NULL;
    sm_status st = sm_json_schema_to_grammar(schema, &text, NULL, 0, &err);
    if (st == SM_ERR_NOMEM) return req_fail(e, 500, "server_error", NULL, "out of memory");
    if (st) return req_fail(e, 400, BAD, param, "%s: the JSON schema cannot be used: %s", param, err.message);
    int rc = req_grammar(r, text, param, e);
    sm_json_schema_free(text);
    return rc;
}

/* response_format (OpenAI's "Structured Outputs"): {"type": "text"} (free
 * text), {"type": "json_object"} (any JSON object), {"type": "json_schema",
 * "json_schema": {"name": ..., "schema": {...}, "strict": ...}} (JSON valid
 * under the schema; without "schema", any object). llama.cpp's server also
 * takes {"type": "json_object", "schema": {...}}; so do we. */
static int parse_response_format(json_t *o, request *r, req_error *e) {
    const char *P = "response_format";
    json_t *rf = json_object_get(o, P);
    if (!rf || json_is_null(rf)) return 0;
    if (!json_is_object(rf)) return req_fail(e, 400, BAD, P, "'response_format' must be an object, not %s", kind(rf));
    json_t *type = json_object_get(rf, "type");
    if (!json_is_string(type))
        return req_fail(e, 400, BAD, P, "'response_format.type' must be \"text\", \"json_object\" or \"json_schema\"");
    const char *t = json_string_value(type);
    json_t *schema = NULL;
    if (!strcmp(t, "text")) {
        return 0;
    } else if (!strcmp(t, "json_object")) {
        schema = json_object_get(rf, "schema");
    } else if (!strcmp(t, "json_schema")) {
        json_t *js = json_object_get(rf, "json_schema");
        if (!json_is_object(js))
            return req_fail(e, 400, BAD, P, "'response_format.json_schema' must be an object with the schema in \"schema\"");
        schema = json_object_get(js, "schema");
    } else {
        return req_fail(e, 400, BAD, P, "'response_format.type' is '%s'; it must be \"text\", \"json_object\" or "
                        "\"json_schema\"", t);
    }
    if (!schema || json_is_null(schema)) return make_grammar(r, sm_grammar_json_object(), e);
    return schema_grammar(r, schema, P, e);
}

/* Log probabilities of the generated tokens. Chat: "logprobs" true, and
 * "top_logprobs" 0 to 20 alternatives per token (only with it). Completions
 * (the legacy API): "logprobs" 0 to 5, the alternatives per token. */
static int parse_logprobs(json_t *o, request *r, req_error *e) {
    req_params *p = &r->p;
    long long top = -1;   /* -1: not given */
    if (r->kind == REQ_COMPLETION) {
        if (get_int(o, "logprobs", 0, REQ_MAX_LOGPROBS_LEGACY, &top, e)) return -1;
        p->logprobs = top >= 0;
    } else {
        if (get_bool(o, "logprobs", &p->logprobs, e)) return -1;
        if (get_int(o, "top_logprobs", 0, REQ_MAX_TOP_LOGPROBS, &top, e)) return -1;
        if (top >= 0 && !p->logprobs)
            return req_fail(e, 400, BAD, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
    }
    if (top > 0) p->top_logprobs = (int)top;
    return 0;
}

/* Sampling and stopping: what chat and completions share. */
static int parse_params(json_t *o, const req_limits *lim, request *r, req_error *e) {
    req_params *p = &r->p;
    long long v;
    if (get_bool(o, "stream", &p->stream, e)) return -1;
    json_t *so = json_object_get(o, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so))
            return req_fail(e, 400, BAD, "stream_options", "'stream_options' must be an object, not %s", kind(so));
        if (get_bool(so, "include_usage", &p->include_usage, e)) return -1;
    }
    /* max_completion_tokens is the newer name; either may be given */
    const char *names[2] = {"max_tokens", "max_completion_tokens"};
    for (int i = 0; i < 2; i++) {
        json_t *x = json_object_get(o, names[i]);
        if (!x || json_is_null(x)) continue;
        if (!json_is_integer(x))
            return req_fail(e, 400, BAD, names[i], "'%s' must be an integer, not %s", names[i], kind(x));
        long long m = json_integer_value(x);
        if (m < 1) return req_fail(e, 400, BAD, names[i], "'%s' is %lld; it must be at least 1", names[i], m);
        if (m > lim->n_ctx)
            return req_fail(e, 400, BAD, names[i], "'%s' is too large: %lld; the context holds %d tokens", names[i], m,
                            lim->n_ctx);
        p->max_tokens = (int)m;
    }
    if (get_number(o, "temperature", 0.0, 2.0, &p->temperature, e)) return -1;
    if (get_number(o, "top_p", 0.0, 1.0, &p->top_p, e)) return -1;
    if (get_number(o, "presence_penalty", -2.0, 2.0, &p->presence_penalty, e)) return -1;
    if (get_number(o, "frequency_penalty", -2.0, 2.0, &p->frequency_penalty, e)) return -1;
    /* llama.cpp's extensions */
    if (get_number(o, "min_p", 0.0, 1.0, &p->min_p, e)) return -1;
    if (get_number(o, "repeat_penalty", 0.01, 100.0, &p->repeat_penalty, e)) return -1;
    if (get_bool(o, "ignore_eos", &p->ignore_eos, e)) return -1;
    v = p->top_k;
    if (get_int(o, "top_k", 0, 1 << 24, &v, e)) return -1;
    p->top_k = (int)v;
    v = p->repeat_last_n;
    if (get_int(o, "repeat_last_n", -1, 1 << 24, &v, e)) return -1;
    p->repeat_last_n = (int)v;
    json_t *seed = json_object_get(o, "seed");
    if (seed && !json_is_null(seed)) {
        if (!json_is_integer(seed)) return req_fail(e, 400, BAD, "seed", "'seed' must be an integer, not %s", kind(seed));
        p->has_seed = 1;
        p->seed = (uint64_t)json_integer_value(seed);
    }
    v = 1;
    if (get_int(o, "n", 1, 128, &v, e)) return -1;
    if (v != 1) return req_fail(e, 400, BAD, "n", "'n' is %lld; this server makes one choice per request", v);
    if (parse_logprobs(o, r, e)) return -1;
    json_t *stop = json_object_get(o, "stop");
    if (stop && !json_is_null(stop)) {
        json_t *one[1] = {stop};
        json_t **list = one;
        size_t n = 1;
        if (json_is_array(stop)) {
            n = json_array_size(stop);
            int max = r->native ? REQ_MAX_STOP : REQ_MAX_STOP_OPENAI;
            if (n > (size_t)max)
                return req_fail(e, 400, BAD, "stop", "'stop' has %zu strings; at most %d are allowed", n, max);
            list = NULL;
        } else if (!json_is_string(stop)) {
            return req_fail(e, 400, BAD, "stop", "'stop' must be a string or an array of strings, not %s", kind(stop));
        }
        for (size_t i = 0; i < n; i++) {
            json_t *s = list ? list[i] : json_array_get(stop, i);
            if (!json_is_string(s))
                return req_fail(e, 400, BAD, "stop", "'stop' must be a string or an array of strings, not %s",
                                json_is_array(stop) ? "an array holding other things" : kind(s));
            size_t sl = json_string_length(s);
            if (sl == 0) continue;   /* an empty stop string stops nothing */
            if (sl > REQ_MAX_STOP_BYTES)
                return req_fail(e, 400, BAD, "stop", "a stop string is %zu bytes; at most %d are allowed", sl,
                                REQ_MAX_STOP_BYTES);
            if (memchr(json_string_value(s), '\0', sl))
                return req_fail(e, 400, BAD, "stop", "a stop string holds a NUL character");
            p->stop[p->n_stop++] = json_string_value(s);
        }
    }
    return parse_response_format(o, r, e);
}

/* A message's content: a string, null (nothing), or an array of parts of
 * which the "text" ones are joined. */
static int message_content(request *r, json_t *c, size_t i, const char **out, req_error *e) {
    if (json_is_null(c)) {
        *out = "";
        return 0;
    }
    if (json_is_string(c)) {
        if (memchr(json_string_value(c), '\0', json_string_length(c)))
            return req_fail(e, 400, BAD, "messages", "messages[%zu].content holds a NUL character", i);
        *out = json_string_value(c);
        return 0;
    }
    if (!json_is_array(c))
        return req_fail(e, 400, BAD, "messages", "messages[%zu].content must be a string or an array of parts, not %s", i,
                        kind(c));
    size_t total = 0, n = json_array_size(c);
    for (size_t k = 0; k < n; k++) {
        json_t *part = json_array_get(c, k), *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(type))
            return req_fail(e, 400, BAD, "messages", "messages[%zu].content[%zu] must be an object with a \"type\"", i, k);
        if (strcmp(json_string_value(type), "text") != 0)
            return req_fail(e, 400, BAD, "messages", "messages[%zu].content[%zu] is of type '%s'; only text is supported",
                            i, k, json_string_value(type));
        if (!json_is_string(text))
            return req_fail(e, 400, BAD, "messages", "messages[%zu].content[%zu].text must be a string", i, k);
        if (memchr(json_string_value(text), '\0', json_string_length(text)))
            return req_fail(e, 400, BAD, "messages", "messages[%zu].content[%zu].text holds a NUL character", i, k);
        total += json_string_length(text);
    }
    char *joined = own(r, total);
    if (!joined) return req_fail(e, 500, "server_error", NULL, "out of memory");
    size_t at = 0;
    for (size_t k = 0; k < n; k++) {
        json_t *text = json_object_get(json_array_get(c, k), "text");
        memcpy(joined + at, json_string_value(text), json_string_length(text));
        at += json_string_length(text);
    }
    joined[at] = '\0';
    *out = joined;
    return 0;
}

/* ------------------------------------------------------------ tools */

/* Room for n values, freed with the request. */
static sm_chat_value *values(request *r, size_t n) {
    sm_chat_value *v = (sm_chat_value *)own(r, (n ? n : 1) * sizeof *v);
    if (v) memset(v, 0, (n ? n : 1) * sizeof *v);
    return v;
}

/* A JSON value as the template sees it; strings and keys point into the
 * document. 0, or -1 when out of memory or nested past 64 levels. */
static int to_value(request *r, json_t *j, sm_chat_value *v, int depth) {
    if (depth > 64) return -1;
    switch (json_typeof(j)) {
    case JSON_NULL: v->type = SM_CHAT_VALUE_NULL; return 0;
    case JSON_TRUE: case JSON_FALSE: v->type = SM_CHAT_VALUE_BOOL; v->i = json_is_true(j); return 0;
    case JSON_INTEGER: v->type = SM_CHAT_VALUE_INT; v->i = json_integer_value(j); return 0;
    case JSON_REAL: v->type = SM_CHAT_VALUE_FLOAT; v->f = json_real_value(j); return 0;
    case JSON_STRING: v->type = SM_CHAT_VALUE_STRING; v->s = json_string_value(j); v->n = json_string_length(j); return 0;
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        sm_chat_value *items = values(r, n);
        if (!items) return -1;
        for (size_t i = 0; i < n; i++)
            if (to_value(r, json_array_get(j, i), &items[i], depth + 1)) return -1;
        v->type = SM_CHAT_VALUE_LIST, v->items = items, v->n = n;
        return 0;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(j), i = 0;
        sm_chat_value *items = values(r, n);
        const char **keys = (const char **)own(r, (n ? n : 1) * sizeof *keys);
        if (!items || !keys) return -1;
        const char *key;
        json_t *x;
        json_object_foreach(j, key, x) {
            keys[i] = key;
            if (to_value(r, x, &items[i++], depth + 1)) return -1;
        }
        v->type = SM_CHAT_VALUE_DICT, v->items = items, v->keys = keys, v->n = n;
        return 0;
    }
    }
    return -1;
}

/* A dict of n entries to fill in order (keys are static strings). */
static sm_chat_value *dict_of(request *r, sm_chat_value *v, size_t n) {
    sm_chat_value *items = values(r, n);
    const char **keys = (const char **)own(r, n * sizeof *keys);
    if (!items || !keys) return NULL;
    v->type = SM_CHAT_VALUE_DICT, v->items = items, v->keys = keys, v->n = 0;
    return items;
}

static void dict_add(sm_chat_value *d, const char *key, sm_chat_value x) {
    ((const char **)d->keys)[d->n] = key;
    ((sm_chat_value *)d->items)[d->n++] = x;
}

static sm_chat_value str_value(json_t *s) {
    sm_chat_value v = {.type = SM_CHAT_VALUE_STRING, .s = json_string_value(s), .n = json_string_length(s)};
    return v;
}

#define NOMEM() req_fail(e, 500, "server_error", NULL, "out of memory")

/* "tools": OpenAI's [{"type": "function", "function": {"name", "description",
 * "parameters"}}], rebuilt in that order as llama.cpp c392e509 gives them to
 * the template; "tool_choice" ("auto", "none", "required") and
 * "parallel_tool_calls". Tools need --jinja (as there); a streamed reply
 * with tools sends its calls once they are read (http.c). */
static int parse_tools(json_t *o, const req_limits *lim, request *r, req_error *e) {
    json_t *tools = json_object_get(o, "tools"), *choice = json_object_get(o, "tool_choice");
    int given = tools && !json_is_null(tools);
    if (given && !json_is_array(tools)) return req_fail(e, 400, BAD, "tools", "'tools' must be an array, not %s", kind(tools));
    if (given && json_array_size(tools) > 0) {
        if (!lim->jinja) return req_fail(e, 400, BAD, "tools", "tools param requires --jinja flag");
    }
    if (choice && !json_is_null(choice)) {
        if (!lim->jinja) return req_fail(e, 400, BAD, "tool_choice", "Unsupported param: tool_choice");
        const char *c = json_is_string(choice) ? json_string_value(choice) : "";
        if (!strcmp(c, "auto")) r->tool_choice = REQ_TOOLS_AUTO;
        else if (!strcmp(c, "none")) r->tool_choice = REQ_TOOLS_NONE;
        else if (!strcmp(c, "required")) r->tool_choice = REQ_TOOLS_REQUIRED;
        else return req_fail(e, 400, BAD, "tool_choice", "'tool_choice' must be \"auto\", \"none\" or \"required\"");
    }
    if (get_bool(o, "parallel_tool_calls", &r->parallel_tool_calls, e)) return -1;
    size_t n = given ? json_array_size(tools) : 0;
    if (n == 0) return 0;
    sm_chat_value *list = values(r, 1), *items = values(r, n);
    if (!list || !items) return NOMEM();
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(tools, i), *type = json_object_get(t, "type"), *fn = json_object_get(t, "function");
        if (!json_is_object(t) || !json_is_string(type) || strcmp(json_string_value(type), "function"))
            return req_fail(e, 400, BAD, "tools", "tools[%zu] must be an object of \"type\": \"function\"", i);
        json_t *name = json_object_get(fn, "name"), *desc = json_object_get(fn, "description"),
               *params = json_object_get(fn, "parameters");
        if (!json_is_object(fn) || !json_is_string(name) || json_string_length(name) == 0)
            return req_fail(e, 400, BAD, "tools", "tools[%zu].function must be an object with a \"name\"", i);
        if (desc && !json_is_null(desc) && !json_is_string(desc))
            return req_fail(e, 400, BAD, "tools", "tools[%zu].function.description must be a string", i);
        if (params && !json_is_null(params) && !json_is_object(params))
            return req_fail(e, 400, BAD, "tools", "tools[%zu].function.parameters must be an object (a JSON Schema)", i);
        sm_chat_value *tv = dict_of(r, &items[i], 2), f = {0};
        sm_chat_value *fv = tv ? dict_of(r, &f, 3) : NULL;
        if (!fv) return NOMEM();
        dict_add(&f, "name", str_value(name));
        if (desc && json_is_string(desc)) dict_add(&f, "description", str_value(desc));
        if (params && json_is_object(params)) {
            sm_chat_value pv = {0};
            if (to_value(r, params, &pv, 0)) return req_fail(e, 400, BAD, "tools", "tools[%zu].function.parameters is too deep", i);
            dict_add(&f, "parameters", pv);
        }
        dict_add(&items[i], "type", str_value(type));
        dict_add(&items[i], "function", f);
    }
    list->type = SM_CHAT_VALUE_LIST, list->items = items, list->n = n;
    r->tools = list;
    return 0;
}

/* A message's fields beside role and content, in llama.cpp's order: name,
 * tool_call_id, tool_calls ({"type", "function": {"name", "arguments"},
 * "id"}, the arguments a string, also read as JSON when they are), and a
 * null content for a reply that only calls tools. NULL when none. */
static int message_extra(json_t *m, size_t i, int null_content, request *r, const sm_chat_value **out, req_error *e) {
    json_t *name = json_object_get(m, "name"), *id = json_object_get(m, "tool_call_id"),
           *calls = json_object_get(m, "tool_calls"), *reasoning = json_object_get(m, "reasoning_content");
    if (name && !json_is_null(name) && !json_is_string(name))
        return req_fail(e, 400, BAD, "messages", "messages[%zu].name must be a string", i);
    if (id && !json_is_null(id) && !json_is_string(id))
        return req_fail(e, 400, BAD, "messages", "messages[%zu].tool_call_id must be a string", i);
    if (reasoning && !json_is_null(reasoning) && !json_is_string(reasoning))
        return req_fail(e, 400, BAD, "messages", "messages[%zu].reasoning_content must be a string", i);
    if (calls && !json_is_null(calls) && !json_is_array(calls))
        return req_fail(e, 400, BAD, "messages", "messages[%zu].tool_calls must be an array", i);
    int has_calls = calls && json_is_array(calls) && json_array_size(calls) > 0;
    int has_name = name && json_is_string(name) && json_string_length(name) > 0;
    int has_id = id && json_is_string(id) && json_string_length(id) > 0;
    int has_reasoning = reasoning && json_is_string(reasoning) && json_string_length(reasoning) > 0;
    *out = NULL;
    if (!has_calls && !has_name && !has_id && !has_reasoning && !null_content) return 0;
    sm_chat_value *x = values(r, 1);
    if (!x || !dict_of(r, x, 5)) return NOMEM();
    if (null_content) dict_add(x, "content", (sm_chat_value){.type = SM_CHAT_VALUE_NULL});
    if (has_reasoning) dict_add(x, "reasoning_content", str_value(reasoning));
    if (has_name) dict_add(x, "name", str_value(name));
    if (has_id) dict_add(x, "tool_call_id", str_value(id));
    if (has_calls) {
        size_t n = json_array_size(calls);
        sm_chat_value list = {.type = SM_CHAT_VALUE_LIST, .n = n}, *items = values(r, n);
        if (!items) return NOMEM();
        list.items = items;
        for (size_t k = 0; k < n; k++) {
            json_t *tc = json_array_get(calls, k), *type = json_object_get(tc, "type"), *fn = json_object_get(tc, "function");
            json_t *fname = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments"), *cid = json_object_get(tc, "id");
            if (!json_is_object(tc) || !json_is_string(type) || strcmp(json_string_value(type), "function") ||
                !json_is_object(fn) || !json_is_string(fname))
                return req_fail(e, 400, BAD, "messages",
                                "messages[%zu].tool_calls[%zu] must be {\"type\": \"function\", \"function\": {\"name\", \"arguments\"}}", i, k);
            if (args && !json_is_string(args))
                return req_fail(e, 400, BAD, "messages", "messages[%zu].tool_calls[%zu].function.arguments must be a string of JSON", i, k);
            if (cid && !json_is_null(cid) && !json_is_string(cid))
                return req_fail(e, 400, BAD, "messages", "messages[%zu].tool_calls[%zu].id must be a string", i, k);
            sm_chat_value f = {0}, a = {.type = SM_CHAT_VALUE_STRING, .s = "", .n = 0};
            if (!dict_of(r, &f, 2) || !dict_of(r, &items[k], 3)) return NOMEM();
            if (args) {
                a = str_value(args);
                json_t *parsed = json_loadb(a.s, a.n, JSON_DECODE_ANY, NULL);
                if (parsed) {
                    void **grown = realloc(r->docs, (r->n_docs + 1) * sizeof *grown);
                    if (!grown) {
                        json_decref(parsed);
                        return NOMEM();
                    }
                    r->docs = grown;
                    r->docs[r->n_docs++] = parsed;
                    sm_chat_value *pv = values(r, 1);
                    if (!pv || to_value(r, parsed, pv, 0)) return NOMEM();
                    a.json = pv;
                }
            }
            dict_add(&f, "name", str_value(fname));
            dict_add(&f, "arguments", a);
            dict_add(&items[k], "type", str_value(type));
            dict_add(&items[k], "function", f);
            if (cid && json_is_string(cid) && json_string_length(cid)) dict_add(&items[k], "id", str_value(cid));
        }
        dict_add(x, "tool_calls", list);
    }
    *out = x;
    return 0;
}

static int parse_messages(json_t *o, request *r, req_error *e) {
    json_t *arr = json_object_get(o, "messages");
    if (!arr) return req_fail(e, 400, BAD, "messages", "'messages' is required");
    if (!json_is_array(arr)) return req_fail(e, 400, BAD, "messages", "'messages' must be an array, not %s", kind(arr));
    size_t n = json_array_size(arr);
    if (n == 0) return req_fail(e, 400, BAD, "messages", "'messages' is empty");
    r->msgs = calloc(n, sizeof *r->msgs);
    if (!r->msgs) return req_fail(e, 500, "server_error", NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(arr, i);
        if (!json_is_object(m))
            return req_fail(e, 400, BAD, "messages", "messages[%zu] must be an object, not %s", i, kind(m));
        json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        if (!json_is_string(role) || json_string_length(role) == 0 ||
            memchr(json_string_value(role), '\0', json_string_length(role)))
            return req_fail(e, 400, BAD, "messages", "messages[%zu].role must be a non-empty string", i);
        json_t *calls = json_object_get(m, "tool_calls");
        int has_calls = json_is_array(calls) && json_array_size(calls) > 0;
        if (!content && !has_calls) return req_fail(e, 400, BAD, "messages", "messages[%zu] has no 'content'", i);
        r->msgs[i].role = json_string_value(role);
        if (content && message_content(r, content, i, &r->msgs[i].content, e)) return -1;
        if (!content) r->msgs[i].content = "";
        /* a reply that only calls tools has a null content, as llama.cpp gives it */
        const sm_chat_value *x = NULL;
        if (message_extra(m, i, has_calls && !r->msgs[i].content[0], r, &x, e)) return -1;
        if (x && !r->extras && !(r->extras = calloc(n, sizeof *r->extras))) return NOMEM();
        if (x) r->extras[i] = x;
        r->n_msgs++;
    }
    return 0;
}

/* A prompt or input: a string, or an array of token ids. */
static int one_prompt(json_t *v, const req_limits *lim, const char *param, req_prompt *out, req_error *e) {
    if (json_is_string(v)) {
        out->text = json_string_value(v);
        out->len = json_string_length(v);
        if (memchr(out->text, '\0', out->len)) return req_fail(e, 400, BAD, param, "'%s' holds a NUL character", param);
        return 0;
    }
    size_t n = json_array_size(v);
    if (n == 0) return req_fail(e, 400, BAD, param, "'%s' is empty", param);
    out->tokens = malloc(n * sizeof *out->tokens);
    if (!out->tokens) return req_fail(e, 500, "server_error", NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(v, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) >= lim->n_vocab)
            return req_fail(e, 400, BAD, param, "'%s' token %zu is not a token id (0 to %d)", param, i, lim->n_vocab - 1);
        out->tokens[out->n_tokens++] = (sm_token)json_integer_value(t);
    }
    return 0;
}

static int all_ints(json_t *a) {
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!json_is_integer(json_array_get(a, i))) return 0;
    return 1;
}

/* "prompt" (completions) or "input" (embeddings): a string, an array of
 * token ids, or (embeddings: several) an array of those. */
static int parse_prompts(json_t *o, const char *param, size_t max, const req_limits *lim, request *r, req_error *e) {
    json_t *v = json_object_get(o, param);
    if (!v || json_is_null(v)) return req_fail(e, 400, BAD, param, "'%s' is required", param);
    size_t n = 1;
    int list = json_is_array(v) && (json_array_size(v) == 0 || !all_ints(v));
    if (list) {
        n = json_array_size(v);
        if (n == 0) return req_fail(e, 400, BAD, param, "'%s' is empty", param);
        if (n > max) return req_fail(e, 400, BAD, param, "'%s' has %zu entries; at most %zu are allowed", param, n, max);
    } else if (!json_is_string(v) && !json_is_array(v)) {
        return req_fail(e, 400, BAD, param, "'%s' must be a string or an array, not %s", param, kind(v));
    }
    r->prompts = calloc(n, sizeof *r->prompts);
    if (!r->prompts) return req_fail(e, 500, "server_error", NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *x = list ? json_array_get(v, i) : v;
        if (list && !json_is_string(x) && !(json_is_array(x) && all_ints(x)))
            return req_fail(e, 400, BAD, param, "%s[%zu] must be a string or an array of token ids, not %s", param, i,
                            kind(x));
        r->n_prompts++;
        if (one_prompt(x, lim, param, &r->prompts[i], e)) return -1;
    }
    return 0;
}

/* The body as a JSON object (the request holds it), with the request's
 * kind and defaults set; NULL with e set when it is not one. */
static json_t *begin(enum req_kind kind_, const char *body, size_t len, request *r, req_error *e) {
    memset(r, 0, sizeof *r);
    r->kind = kind_;
    /* OpenAI's defaults: temperature 1, no truncation, no penalties */
    r->p = (req_params){.max_tokens = -1, .temperature = 1.0f, .top_p = 1.0f, .repeat_penalty = 1.0f,
                        .repeat_last_n = 64};
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        req_fail(e, 400, BAD, NULL, "invalid JSON at line %d, column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    r->doc = root;
    if (!json_is_object(root)) {
        req_fail(e, 400, BAD, NULL, "the body must be a JSON object, not %s", kind(root));
        return NULL;
    }
    json_t *model = json_object_get(root, "model");
    if (model && !json_is_null(model) && !json_is_string(model)) {
        req_fail(e, 400, BAD, "model", "'model' must be a string, not %s", kind(model));
        return NULL;
    }
    return root;
}

/* what /infill adds to /completion's body, checked as llama-server checks it */
static int parse_infill(json_t *root, const req_limits *lim, request *r, req_error *e) {
    json_t *prompt = json_object_get(root, "prompt"), *extra = json_object_get(root, "input_extra");
    if (prompt && !json_is_string(prompt)) return req_fail(e, 400, BAD, "prompt", "\"prompt\" must be a string");
    r->prompts = calloc(1, sizeof *r->prompts);
    if (!r->prompts) return req_fail(e, 500, "server_error", NULL, "out of memory");
    r->n_prompts = 1;
    if (prompt && one_prompt(prompt, lim, "prompt", &r->prompts[0], e)) return -1;
    if (!prompt) r->prompts[0].text = "";
    static const char *const parts[] = {"input_prefix", "input_suffix"};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(root, parts[i]);
        if (!v) return req_fail(e, 400, BAD, parts[i], "\"%s\" is required", parts[i]);
        int ok = json_is_string(v) || json_is_array(v);
        for (size_t k = 0; ok && json_is_array(v) && k < json_array_size(v); k++) {
            json_t *x = json_array_get(v, k);
            ok = json_is_string(x) || (json_is_integer(x) && json_integer_value(x) >= 0 && json_integer_value(x) < lim->n_vocab);
        }
        if (!ok)
            return req_fail(e, 400, BAD, parts[i], "\"%s\" must be a string or an array of strings and token ids (0 to %d)",
                            parts[i], lim->n_vocab - 1);
    }
    if (extra && !json_is_null(extra) && !json_is_array(extra))
        return req_fail(e, 400, BAD, "input_extra", "\"input_extra\" must be an array of {\"filename\": string, \"text\": string}");
    for (size_t k = 0; k < json_array_size(extra); k++) {
        json_t *c = json_array_get(extra, k), *text = json_object_get(c, "text"), *file = json_object_get(c, "filename");
        if (!json_is_string(text))
            return req_fail(e, 400, BAD, "input_extra", "extra_context chunk must contain a \"text\" field with a string value");
        if (file && !json_is_string(file))
            return req_fail(e, 400, BAD, "input_extra", "extra_context chunk's \"filename\" field must be a string");
    }
    return 0;
}

static int parse_native(const char *body, size_t len, const req_limits *lim, int infill, request *r, req_error *e) {
    json_t *root = begin(REQ_COMPLETION, body, len, r, e);
    if (!root) return -1;
    r->native = 1;
    /* llama-server's defaults (common_params_sampling at c392e509) */
    r->p.temperature = 0.8f, r->p.top_k = 40, r->p.top_p = 0.95f, r->p.min_p = 0.05f;
    if ((infill ? parse_infill(root, lim, r, e) : parse_prompts(root, "prompt", 1, lim, r, e)) ||
        parse_params(root, lim, r, e))
        return -1;
    long long v = -2;
    if (get_int(root, "n_predict", -1, lim->n_ctx, &v, e)) return -1;
    if (v != -2) r->p.max_tokens = (int)v;   /* -1: no limit; 0 gives one token, as llama-server */
    v = 0;
    if (get_int(root, "n_probs", 0, REQ_MAX_TOP_LOGPROBS, &v, e)) return -1;
    if (v > 0) r->p.logprobs = 1, r->p.top_logprobs = (int)v;
    if (r->p.has_seed && (r->p.seed == UINT64_MAX || r->p.seed == 0xFFFFFFFFu)) r->p.has_seed = 0;   /* -1: a random one */
    json_t *grammar = json_object_get(root, "grammar"), *schema = json_object_get(root, "json_schema");
    /* (with both, the grammar, as llama-server) */
    if (grammar && !json_is_null(grammar) && !(json_is_string(grammar) && !json_string_length(grammar))) {
        if (!json_is_string(grammar)) return req_fail(e, 400, BAD, "grammar", "'grammar' must be a string, not %s", kind(grammar));
        if (r->grammar) return req_fail(e, 400, BAD, "grammar", "'grammar' and a JSON schema cannot both be given");
        return req_grammar(r, json_string_value(grammar), "grammar", e);
    }
    if (schema && !json_is_null(schema)) {
        if (r->grammar) return req_fail(e, 400, BAD, "json_schema", "'json_schema' and 'response_format' cannot both be given");
        return schema_grammar(r, schema, "json_schema", e);
    }
    return 0;
}

int request_parse_native(const char *body, size_t len, const req_limits *lim, request *r, req_error *e) {
    return parse_native(body, len, lim, 0, r, e);
}

int request_parse_infill(const char *body, size_t len, const req_limits *lim, request *r, req_error *e) {
    return parse_native(body, len, lim, 1, r, e);
}

int request_parse(enum req_kind kind_, const char *body, size_t len, const req_limits *lim, request *r, req_error *e) {
    json_t *root = begin(kind_, body, len, r, e);
    if (!root) return -1;
    switch (kind_) {
    case REQ_CHAT:
        if (parse_messages(root, r, e)) return -1;
        if (parse_params(root, lim, r, e)) return -1;
        return parse_tools(root, lim, r, e);
    case REQ_COMPLETION: {
        r->p.max_tokens = 16;   /* the completions API's default */
        if (parse_prompts(root, "prompt", 1, lim, r, e)) return -1;
        int echo = 0;
        if (get_bool(root, "echo", &echo, e)) return -1;
        if (echo) return req_fail(e, 400, BAD, "echo", "'echo' is not supported by this server");
        long long best_of = 1;
        if (get_int(root, "best_of", 1, 128, &best_of, e)) return -1;
        if (best_of != 1) return req_fail(e, 400, BAD, "best_of", "'best_of' must be 1 on this server");
        json_t *suffix = json_object_get(root, "suffix");
        if (suffix && !json_is_null(suffix)) return req_fail(e, 400, BAD, "suffix", "'suffix' is not supported by this server");
        return parse_params(root, lim, r, e);
    }
    case REQ_EMBEDDING: {
        if (parse_prompts(root, "input", 2048, lim, r, e)) return -1;
        json_t *fmt = json_object_get(root, "encoding_format");
        if (fmt && !json_is_null(fmt)) {
            if (!json_is_string(fmt) ||
                (strcmp(json_string_value(fmt), "float") && strcmp(json_string_value(fmt), "base64")))
                return req_fail(e, 400, BAD, "encoding_format", "'encoding_format' must be \"float\" or \"base64\"");
            r->base64 = !strcmp(json_string_value(fmt), "base64");
        }
        return 0;
    }
    }
    return req_fail(e, 400, BAD, NULL, "unknown request kind");
}

void request_free(request *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_prompts; i++) free(r->prompts[i].tokens);
    free(r->prompts);
    free(r->msgs);
    free(r->extras);
    for (size_t i = 0; i < r->n_docs; i++) json_decref((json_t *)r->docs[i]);
    free(r->docs);
    for (size_t i = 0; i < r->n_owned; i++) free(r->owned[i]);
    free(r->owned);
    sm_sb_free(&r->trigger_text);
    free(r->triggers);
    sm_grammar_matcher_free(r->matcher);
    sm_grammar_free(r->grammar);
    if (r->doc) json_decref((json_t *)r->doc);
    memset(r, 0, sizeof *r);
}

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

/* The grammar text to a grammar and this request's matcher. */
static int make_grammar(request *r, const char *text, req_error *e) {
    sm_error err = {0};
    sm_status st = sm_grammar_parse(text, strlen(text), NULL, &r->grammar, &err);
    if (st == SM_OK) st = sm_grammar_matcher_new(r->grammar, &r->matcher, &err);
    if (st == SM_ERR_NOMEM) return req_fail(e, 500, "server_error", NULL, "out of memory");
    if (st) return req_fail(e, 400, BAD, "response_format", "response_format: the schema's grammar: %s", err.message);
    return 0;
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
    if (!json_is_object(schema) && !json_is_boolean(schema))
        return req_fail(e, 400, BAD, P, "the JSON schema in response_format must be an object, not %s", kind(schema));
    sm_error err = {0};
    char *text = NULL;
    sm_status st = sm_json_schema_to_grammar(schema, &text, NULL, 0, &err);
    if (st == SM_ERR_NOMEM) return req_fail(e, 500, "server_error", NULL, "out of memory");
    if (st) return req_fail(e, 400, BAD, P, "response_format: the JSON schema cannot be used: %s", err.message);
    int rc = make_grammar(r, text, e);
    sm_json_schema_free(text);
    return rc;
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
            if (n > REQ_MAX_STOP)
                return req_fail(e, 400, BAD, "stop", "'stop' has %zu strings; at most %d are allowed", n, REQ_MAX_STOP);
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
        if (!content) return req_fail(e, 400, BAD, "messages", "messages[%zu] has no 'content'", i);
        r->msgs[i].role = json_string_value(role);
        if (message_content(r, content, i, &r->msgs[i].content, e)) return -1;
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

int request_parse(enum req_kind kind_, const char *body, size_t len, const req_limits *lim, request *r, req_error *e) {
    memset(r, 0, sizeof *r);
    r->kind = kind_;
    /* OpenAI's defaults: temperature 1, no truncation, no penalties */
    r->p = (req_params){.max_tokens = -1, .temperature = 1.0f, .top_p = 1.0f, .repeat_penalty = 1.0f,
                        .repeat_last_n = 64};
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return req_fail(e, 400, BAD, NULL, "invalid JSON at line %d, column %d: %s", je.line, je.column, je.text);
    r->doc = root;
    if (!json_is_object(root)) return req_fail(e, 400, BAD, NULL, "the body must be a JSON object, not %s", kind(root));
    json_t *model = json_object_get(root, "model");
    if (model && !json_is_null(model) && !json_is_string(model))
        return req_fail(e, 400, BAD, "model", "'model' must be a string, not %s", kind(model));
    switch (kind_) {
    case REQ_CHAT:
        if (parse_messages(root, r, e)) return -1;
        return parse_params(root, lim, r, e);
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
    for (size_t i = 0; i < r->n_owned; i++) free(r->owned[i]);
    free(r->owned);
    sm_grammar_matcher_free(r->matcher);
    sm_grammar_free(r->grammar);
    if (r->doc) json_decref((json_t *)r->doc);
    memset(r, 0, sizeof *r);
}

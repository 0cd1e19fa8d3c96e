/* tools.c - chat requests with tools (serve --jinja), as llama.cpp's server
 * at c392e509 runs them (common/chat.cpp, read there, not copied): the
 * reply's format picked from the template, the prompt and grammar for it,
 * and the reply read back into tool calls.
 *
 *   Hermes (the template writes "<tool_call>": Hermes 2/3, Qwen 2.5): the
 *   model writes <tool_call>{"name": ..., "arguments": {...}}</tool_call>
 *   after any text; with tool_choice "required" a grammar makes it (llama.cpp
 *   also constrains an "auto" reply once it starts a call, with a lazy
 *   grammar; here an "auto" reply is free text, read the same way).
 *   Generic (every other template, as llama.cpp's fallback): a system text
 *   asks for JSON, {"tool_call": {"name", "arguments"}} or {"response": "..."},
 *   and a grammar from the tools' JSON Schemas holds the reply to it.
 * llama.cpp's own formats for Llama 3.x, Mistral Nemo, Functionary,
 * Firefunction, Command R7B and DeepSeek R1 templates are not made here:
 * those templates get the generic one. The template itself sees the tools
 * and the messages' tool calls through the library (sm_chat_format_jinja_tools,
 * with minja's polyfills for what it cannot write). */
#include "server.h"
#include "json/json_schema.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD "invalid_request_error"

static const char GENERIC_SYSTEM[] = "Respond in JSON format, either with `tool_call` (a request to call tools) or "
                                     "with `response` reply to the user's request";

static int schema_grammar(const json_t *schema, char **text, req_error *e) {
    sm_error err = {0};
    if (sm_json_schema_to_grammar(schema, text, NULL, 0, &err) != SM_OK)
        return req_fail(e, 400, BAD, "tools", "a tool's parameters: %s", err.message);
    return 0;
}

/* {"type": "object", "properties": {"name": {[type string,] const name},
 * "arguments": parameters[, "id"]}, "required": [...]}: one tool's call */
static json_t *call_schema(json_t *fn, int typed_name, int with_id) {
    json_t *params = json_object_get(fn, "parameters"), *desc = json_object_get(fn, "description");
    json_t *name = typed_name ? json_pack("{s:s, s:O}", "type", "string", "const", json_object_get(fn, "name"))
                              : json_pack("{s:O}", "const", json_object_get(fn, "name"));
    json_t *props = json_pack("{s:o, s:o}", "name", name, "arguments", json_is_object(params) ? json_incref(params) : json_object());
    json_t *req = json_pack("[s, s]", "name", "arguments");
    if (with_id) {
        json_object_set_new(props, "id", json_pack("{s:s, s:i}", "type", "string", "minLength", 4));
        json_array_append_new(req, json_string("id"));
    }
    json_t *s = json_pack("{s:s, s:o, s:o}", "type", "object", "properties", props, "required", req);
    if (typed_name && json_is_string(desc)) json_object_set(s, "description", desc);
    return s;
}

/* the calls' schemas, one, or {"anyOf": [...]} */
static json_t *any_call(json_t *tools, int typed_name, int with_id) {
    json_t *all = json_array();
    for (size_t i = 0; i < json_array_size(tools); i++)
        json_array_append_new(all, call_schema(json_object_get(json_array_get(tools, i), "function"), typed_name, with_id));
    if (json_array_size(all) == 1) {
        json_t *one = json_incref(json_array_get(all, 0));
        json_decref(all);
        return one;
    }
    return json_pack("{s:o}", "anyOf", all);
}

/* llama.cpp's generic format: the JSON schema of a reply. */
static json_t *generic_schema(json_t *tools, int parallel, int required) {
    json_t *call = any_call(tools, 1, parallel);
    json_t *tool_call =
        parallel ? json_pack("{s:s, s:{s:{s:s, s:o, s:i}}, s:[s]}", "type", "object", "properties", "tool_calls", "type",
                             "array", "items", call, "minItems", 1, "required", "tool_calls")
                 : json_pack("{s:s, s:{s:o}, s:[s]}", "type", "object", "properties", "tool_call", call, "required",
                             "tool_call");
    if (required) return tool_call;
    return json_pack("{s:[o, {s:s, s:{s:{s:s}}, s:[s]}]}", "anyOf", tool_call, "type", "object", "properties",
                     "response", "type", "string", "required", "response");
}

/* add_system: the text joins a first system message or becomes one. */
static int add_system(request *r, req_error *e) {
    int joins = r->n_msgs && !strcmp(r->msgs[0].role, "system");
    size_t n = r->n_msgs + !joins;
    sm_chat_message *m = calloc(n, sizeof *m);
    const sm_chat_value **x = calloc(n, sizeof *x);
    char *text = NULL;
    if (joins) {
        size_t a = strlen(r->msgs[0].content);
        if ((text = malloc(a + 2 + sizeof GENERIC_SYSTEM))) {
            memcpy(text, r->msgs[0].content, a);
            memcpy(text + a, "\n\n", 2);
            memcpy(text + a + 2, GENERIC_SYSTEM, sizeof GENERIC_SYSTEM);
        }
    }
    char **grown = realloc(r->owned, (r->n_owned + 1) * sizeof *grown);
    if (grown) r->owned = grown;
    if (!m || !x || (joins && !text) || !grown) {
        free(m);
        free(x);
        free(text);
        return req_fail(e, 500, "server_error", NULL, "out of memory");
    }
    if (text) r->owned[r->n_owned++] = text;
    size_t k = 0;
    if (!joins) m[k++] = (sm_chat_message){"system", GENERIC_SYSTEM};
    for (size_t i = 0; i < r->n_msgs; i++, k++) {
        m[k] = r->msgs[i];
        x[k] = r->extras ? r->extras[i] : NULL;
    }
    if (joins) m[0].content = text, x[0] = NULL;   /* the system message is rebuilt as role and content */
    free(r->msgs);
    free(r->extras);
    r->msgs = m, r->extras = x, r->n_msgs = n;
    return 0;
}

int tools_prepare(const server *S, request *r, req_error *e) {
    r->tool_format = REQ_TOOL_FORMAT_NONE;
    if (!r->tools || r->tool_choice == REQ_TOOLS_NONE) return 0;   /* the template still sees the tools */
    if (r->grammar)
        return req_fail(e, 400, BAD, "response_format", "response_format cannot be combined with tools on this server");
    json_t *tools = json_object_get((json_t *)r->doc, "tools");
    int required = r->tool_choice == REQ_TOOLS_REQUIRED, parallel = r->parallel_tool_calls;
    char *text = NULL;
    if (S->jinja && strstr(S->jinja, "<tool_call>")) {   /* (a model without a template runs ChatML) */
        r->tool_format = REQ_TOOL_FORMAT_HERMES;
        if (!required) return 0;
        json_t *schema = any_call(tools, 0, 0);
        int rc = schema_grammar(schema, &text, e);
        json_decref(schema);
        if (rc) return -1;
        /* the schema's root rule (the converter's first) becomes the call; the root wraps it in the tags */
        static const char ROOT[] = "root ::= ";
        size_t n = strlen(text), extra = 256;
        int first = !strncmp(text, ROOT, sizeof ROOT - 1);
        char *g = first ? malloc(n + extra) : NULL;
        if (!g) {
            sm_json_schema_free(text);
            return req_fail(e, 500, "server_error", NULL, first ? "out of memory" : "the tools' grammar has no root rule first");
        }
        snprintf(g, extra, "root ::= %s\nsm-tool-call ::= ",
                 parallel ? "(\"<tool_call>\" space sm-tool-call \"</tool_call>\" space)+"
                          : "\"<tool_call>\" space sm-tool-call \"</tool_call>\" space");
        strcat(g, text + sizeof ROOT - 1);
        sm_json_schema_free(text);
        rc = req_grammar(r, g, "tools", e);
        free(g);
        return rc;
    }
    r->tool_format = REQ_TOOL_FORMAT_GENERIC;
    if (add_system(r, e)) return -1;
    json_t *schema = generic_schema(tools, parallel, required);
    int rc = schema_grammar(schema, &text, e);
    json_decref(schema);
    if (rc) return -1;
    rc = req_grammar(r, text, "tools", e);
    sm_json_schema_free(text);
    return rc;
}

/* ------------------------------------------------------ the reply */

/* A call as the API gives it; one without an id of its own gets the
 * reply's id and its place ("call_<hex>_<n>"). */
static json_t *call_json(const char *reply_id, json_t *name, json_t *args, json_t *id, int n) {
    char *a = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    const char *dash = strrchr(reply_id, '-');
    char made[64];
    snprintf(made, sizeof made, "call_%s_%d", dash ? dash + 1 : reply_id, n);
    json_t *c = json_pack("{s:s, s:{s:O, s:s}, s:s}", "type", "function", "function", "name", name, "arguments",
                          a ? a : "{}", "id", json_is_string(id) && json_string_length(id) ? json_string_value(id) : made);
    free(a);
    return c;
}

static int is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

/* text at p (after spaces) starts with lit: the position after it, else NULL */
static const char *after(const char *p, const char *end, const char *lit) {
    while (p < end && is_space(*p)) p++;
    size_t n = strlen(lit);
    return (size_t)(end - p) >= n && !memcmp(p, lit, n) ? p + n : NULL;
}

static const char *find(const char *s, size_t n, const char *lit) {
    size_t k = strlen(lit);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(s + i, lit, k)) return s + i;
    return NULL;
}

/* Hermes: content, then <tool_call>{json}</tool_call>, each only spaces apart. */
static int read_hermes(const char *reply_id, const char *text, size_t len, json_t *calls, size_t *content_len) {
    const char *end = text + len, *p = find(text, len, "<tool_call>");
    if (!p) return 0;
    const char *q = p;
    while (q > text && is_space(q[-1])) q--;
    *content_len = (size_t)(q - text);
    p += strlen("<tool_call>");
    for (int n = 0;; n++) {
        json_error_t je;
        json_t *call = json_loadb(p, (size_t)(end - p), JSON_DISABLE_EOF_CHECK, &je);
        json_t *name = json_object_get(call, "name"), *args = json_object_get(call, "arguments");
        if (!json_is_string(name) || !args) {
            json_decref(call);
            return -1;
        }
        json_array_append_new(calls, call_json(reply_id, name, args, json_object_get(call, "id"), n));
        json_decref(call);
        p += je.position;
        const char *close = after(p, end, "</tool_call>");
        if (!close) return -1;
        const char *next = after(close, end, "<tool_call>");
        if (next) {
            p = next;
            continue;
        }
        while (close < end && is_space(*close)) close++;
        return close == end ? 1 : -1;
    }
}

char *tools_message(const request *r, const char *reply_id, const char *text, size_t len, const char **finish) {
    json_t *calls = json_array(), *content = NULL;
    if (r->tool_format == REQ_TOOL_FORMAT_GENERIC) {
        json_t *doc = json_loadb(text, len, 0, NULL);
        json_t *many = json_object_get(doc, "tool_calls"), *one = json_object_get(doc, "tool_call"),
               *resp = json_object_get(doc, "response");
        for (size_t i = 0; json_is_array(many) && i < json_array_size(many); i++) {
            json_t *c = json_array_get(many, i);
            if (json_is_string(json_object_get(c, "name")))
                json_array_append_new(calls, call_json(reply_id, json_object_get(c, "name"), json_object_get(c, "arguments"),
                                                       json_object_get(c, "id"), (int)i));
        }
        if (!json_is_array(many) && json_is_object(one) && json_is_string(json_object_get(one, "name")))
            json_array_append_new(calls, call_json(reply_id, json_object_get(one, "name"), json_object_get(one, "arguments"),
                                                   NULL, 0));
        if (!doc) content = json_stringn(text, len);   /* not JSON after all: the text as it is */
        else if (json_is_string(resp)) content = json_incref(resp);
        else if (resp) {
            char *s = json_dumps(resp, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
            content = json_string(s ? s : "");
            free(s);
        }
        json_decref(doc);
    } else {
        size_t clen = len;
        int got = read_hermes(reply_id, text, len, calls, &clen);
        if (got < 0) json_array_clear(calls), clen = len;   /* malformed: the text as it is */
        content = json_stringn(text, clen);
    }
    size_t n = json_array_size(calls);
    if (n) *finish = "tool_calls";
    if (!content || (n && json_string_length(content) == 0)) {
        json_decref(content);
        content = n ? json_null() : json_string("");
    }
    json_t *m = json_pack("{s:s, s:o}", "role", "assistant", "content", content);
    if (n) json_object_set_new(m, "tool_calls", calls);
    else json_decref(calls);
    char *s = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(m);
    return s;
}

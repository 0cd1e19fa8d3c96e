/* tools.c - chat requests with tools (serve --jinja), as llama.cpp's server
 * at c392e509 runs them (common/chat.cpp, read there, not copied): the
 * reply's format picked from the template, the prompt and grammar for it,
 * and the reply read back into tool calls (and a reasoning text).
 *
 * One row of FORMATS per format, picked in llama.cpp's order (pick): the
 * text the template must hold, whether the format also serves requests
 * without tools (its replies are read the same way then), the grammar that
 * holds a reply to a call (and its trigger words), and the reader of
 * replies. With tool_choice "required" the grammar holds the whole reply;
 * with "auto" it is lazy, as llama.cpp's: the reply is free until it
 * writes a trigger word (the start of a call), and held from the word on.
 * The generic format's grammar (a JSON reply) holds in every case.
 *
 *   Generic (templates no other row names): a system text asks for JSON,
 *     {"tool_call": {"name", "arguments"}} or {"response": "..."}.
 *   Hermes 2/3, Qwen 2.5 ("<tool_call>"): <tool_call>{json}</tool_call>.
 *   Llama 3.x ("<|start_header_id|>ipython<|end_header_id|>"): a JSON
 *     object {"name", "parameters"}; with "<|python_tag|>" in the template,
 *     tools named as Llama's built-in ones are called <|python_tag|>name.call(arg=...).
 *   Mistral Nemo ("[TOOL_CALLS]"): [TOOL_CALLS] and a JSON list of calls.
 *   Functionary v3.1 ("<|start_header_id|>" and "<function="):
 *     <function=name>{json}</function>, or <|python_tag|> and code.
 *   Functionary v3.2 (">>>all", also without tools): "all\n" and text, or
 *     name\n{json}, further calls >>>name\n{json}.
 *   Firefunction v2 (" functools[", also without tools): " functools" and a
 *     JSON list; the template gets the tools as the text `functions`.
 *   Command R7B ("<|END_THINKING|><|START_ACTION|>", also without tools):
 *     <|START_THINKING|>reasoning<|END_THINKING|>, then
 *     <|START_ACTION|>[calls]<|END_ACTION|> or a <|START_RESPONSE|> text.
 *   DeepSeek R1 ("<｜tool▁calls▁begin｜>", also without tools): reasoning up
 *     to </think>, calls between <｜tool▁calls▁begin｜> and <｜tool▁calls▁end｜>.
 * Reasoning texts go to the message's reasoning_content (llama-server's
 * default --reasoning-format deepseek). */
#include "server.h"
#include "respond.h"
#include "json/json_schema.h"
#include "json/schema_conv.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD "invalid_request_error"

/* ------------------------------------------------------------- helpers */

static int is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }
static int is_word(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
static const char *spaces(const char *p, const char *end) {
    while (p < end && is_space(*p)) p++;
    return p;
}
/* p starts with lit: the position after it, else NULL */
static const char *lit(const char *p, const char *end, const char *l) {
    size_t n = strlen(l);
    return p && (size_t)(end - p) >= n && !memcmp(p, l, n) ? p + n : NULL;
}
/* the first lit in [s, end), or NULL */
static const char *find(const char *s, const char *end, const char *l) {
    for (; s && s < end; s++)
        if (lit(s, end, l)) return s;
    return NULL;
}

/* ---------------------------------------------------------- the grammars */

/* DeepSeek R1's opening of its calls, and the variants its distilled
 * models write (llama.cpp accepts each, in the grammar and the reader) */
static const char *const R1_THINK_ENDS[] = {"</think>", "<｜tool▁calls▁begin｜>", "<｜tool_calls_begin｜>",
                                            "<｜tool calls begin｜>", "<｜tool\\_calls\\_begin｜>", NULL};
#define R1_BEGIN (R1_THINK_ENDS + 1)   /* (a stream's thinking ends at the first of all five) */
#define N_R1_BEGIN (sizeof R1_THINK_ENDS / sizeof R1_THINK_ENDS[0] - 2)

/* What a format's grammar maker gets: the builder, the request's tools
 * (each {"type": "function", "function": {...}}), its parallel_tool_calls. */
typedef struct gctx {
    sm_json_grammar *g;
    json_t *tools;
    int parallel;
    int required;  /* tool_choice "required" (the generic format's reply must then be a call) */
    int builtin;   /* Llama 3.x: built-in tools may be called */
    req_error *e;
    request *r;    /* the trigger words of a lazy grammar go to it */
} gctx;

/* a trigger word of the format's lazy grammar, printf-made (kept with the request) */
static int trigger(gctx *c, const char *f, ...) __attribute__((format(printf, 2, 3)));
static int trigger(gctx *c, const char *f, ...) {
    request *r = c->r;
    char word[256];
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(word, sizeof word, f, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof word) return 0;   /* a tool name too long to be a trigger: not one */
    char *w = req_own(r, (size_t)n);
    const char **grown = w ? realloc(r->triggers, (r->n_triggers + 1) * sizeof *grown) : NULL;
    if (!grown) return -1;
    memcpy(w, word, (size_t)n + 1);
    r->triggers = grown;
    r->triggers[r->n_triggers++] = w;
    return 0;
}

static json_t *fn_of(json_t *tool) { return json_object_get(tool, "function"); }
static const char *name_of(json_t *tool) { return json_string_value(json_object_get(fn_of(tool), "name")); }
static json_t *params_of(json_t *tool) { return json_object_get(fn_of(tool), "parameters"); }
/* the parameters, a new reference */
static json_t *params_ref(json_t *tool) {
    json_t *p = params_of(tool);
    return p ? json_incref(p) : json_object();
}

/* name ::= b's text; b is freed. The rule's name, or NULL. */
static const char *rule_of(gctx *c, const char *name, sm_sbuf *b) {
    const char *r = b->oom || !b->p ? NULL : sm_json_grammar_rule(c->g, name, b->p);
    sm_sb_free(b);
    return r;
}
/* name ::= the text printf makes */
static const char *rulef(gctx *c, const char *name, const char *f, ...) __attribute__((format(printf, 3, 4)));
static const char *rulef(gctx *c, const char *name, const char *f, ...) {
    sm_sbuf b = {0};
    va_list ap;
    va_start(ap, f);
    sm_sb_vprintf(&b, f, ap);
    va_end(ap);
    return rule_of(c, name, &b);
}
/* the GBNF literal of the text printf makes, appended to b */
static void literalf(sm_sbuf *b, const char *f, ...) __attribute__((format(printf, 2, 3)));
static void literalf(sm_sbuf *b, const char *f, ...) {
    sm_sbuf t = {0};
    va_list ap;
    va_start(ap, f);
    sm_sb_vprintf(&t, f, ap);
    va_end(ap);
    if (t.oom) b->oom = 1;
    else sm_gbnf_literal(b, t.p ? t.p : "", t.n);
    sm_sb_free(&t);
}
/* rule r as one more alternative of l (" | " between); a failed rule marks l */
static void alt(sm_sbuf *l, const char *r) {
    if (!r) {
        l->oom = 1;
        return;
    }
    if (l->n) sm_sb_add(l, " | ");
    sm_sb_add(l, r);
}
static const char *schema_rule(gctx *c, const char *name, json_t *schema) {
    const char *r = sm_json_grammar_schema(c->g, name, schema);
    json_decref(schema);
    return r;
}
/* "<tool's name>-<suffix>", the name of one of its rules (cut as rule names are) */
static const char *named(char *buf, size_t cap, json_t *tool, const char *suffix) {
    snprintf(buf, cap, "%s-%s", name_of(tool), suffix);
    return buf;
}

static json_t *const_name(const char *name, int typed) {
    return typed ? json_pack("{s:s, s:s}", "type", "string", "const", name) : json_pack("{s:s}", "const", name);
}

/* one schema per tool: {"type": "object", "properties": {...}, "required"} */
typedef json_t *(*call_schema_fn)(json_t *tool);
static json_t *calls_list(gctx *c, call_schema_fn one) {
    json_t *all = json_array();
    for (size_t i = 0; i < json_array_size(c->tools); i++) json_array_append_new(all, one(json_array_get(c->tools, i)));
    json_t *items = json_array_size(all) == 1 ? json_incref(json_array_get(all, 0)) : json_pack("{s:O}", "anyOf", all);
    json_decref(all);
    json_t *s = json_pack("{s:s, s:o, s:i}", "type", "array", "items", items, "minItems", 1);
    if (!c->parallel) json_object_set_new(s, "maxItems", json_integer(1));
    return s;
}

static json_t *generic_call(json_t *tool, int with_id) {
    json_t *props = json_pack("{s:o, s:o}", "name", const_name(name_of(tool), 1), "arguments", params_ref(tool));
    json_t *req = json_pack("[s, s]", "name", "arguments");
    if (with_id) {
        json_object_set_new(props, "id", json_pack("{s:s, s:i}", "type", "string", "minLength", 4));
        json_array_append_new(req, json_string("id"));
    }
    json_t *s = json_pack("{s:s, s:o, s:o}", "type", "object", "properties", props, "required", req);
    json_t *desc = json_object_get(fn_of(tool), "description");
    if (json_is_string(desc)) json_object_set(s, "description", desc);
    return s;
}

/* the generic format's reply, a call or (unless required) a response: not lazy */
static int grammar_generic(gctx *c) {
    json_t *all = json_array();
    for (size_t i = 0; i < json_array_size(c->tools); i++)
        json_array_append_new(all, generic_call(json_array_get(c->tools, i), c->parallel));
    json_t *call = json_array_size(all) == 1 ? json_incref(json_array_get(all, 0)) : json_pack("{s:O}", "anyOf", all);
    json_decref(all);
    json_t *tool_call =
        c->parallel ? json_pack("{s:s, s:{s:{s:s, s:o, s:i}}, s:[s]}", "type", "object", "properties", "tool_calls", "type",
                                "array", "items", call, "minItems", 1, "required", "tool_calls")
                    : json_pack("{s:s, s:{s:o}, s:[s]}", "type", "object", "properties", "tool_call", call, "required",
                                "tool_call");
    json_t *schema = c->required ? tool_call
                                 : json_pack("{s:[o, {s:s, s:{s:{s:s}}, s:[s]}]}", "anyOf", tool_call, "type", "object",
                                             "properties", "response", "type", "string", "required", "response");
    return schema_rule(c, "root", schema) ? 0 : -1;
}

static int grammar_hermes(gctx *c) {
    sm_sbuf l = {0};
    for (size_t i = 0; i < json_array_size(c->tools); i++) {
        json_t *t = json_array_get(c->tools, i);
        char n[320];
        json_t *s = json_pack("{s:s, s:{s:o, s:o}, s:[s, s]}", "type", "object", "properties", "name",
                              const_name(name_of(t), 0), "arguments", params_ref(t), "required", "name", "arguments");
        alt(&l, schema_rule(c, named(n, sizeof n, t, "call"), s));
    }
    const char *tc = rule_of(c, "tool_call", &l);
    if (!tc || trigger(c, "<tool_call>")) return -1;
    return rulef(c, "root", c->parallel ? "(\"<tool_call>\" space %s \"</tool_call>\" space)+"
                                        : "\"<tool_call>\" space %s \"</tool_call>\" space", tc)
               ? 0 : -1;
}

/* Llama's built-in tools (llama-stack's): their one argument */
static const char *builtin_arg(const char *name) {
    if (!strcmp(name, "wolfram_alpha") || !strcmp(name, "web_search") || !strcmp(name, "brave_search")) return "query";
    if (!strcmp(name, "python") || !strcmp(name, "code_interpreter")) return "code";
    return NULL;
}
/* a built-in tool must take exactly its argument, required: 0, or -1 with e set */
static int builtin_check(const char *name, json_t *params, const char *arg, req_error *e) {
    json_t *props = json_object_get(params, "properties"), *req = json_object_get(params, "required");
    if (!json_is_object(params) || !json_is_string(json_object_get(params, "type")) ||
        strcmp(json_string_value(json_object_get(params, "type")), "object") || !props || !req)
        return req_fail(e, 400, BAD, "tools", "Parameters of tool %s must be an object w/ required properties", name);
    if (!json_object_get(props, arg))
        return req_fail(e, 400, BAD, "tools", "Parameters of tool %s is missing property: %s", name, arg);
    int found = 0;
    for (size_t i = 0; i < json_array_size(req); i++) found |= json_is_string(json_array_get(req, i)) &&
                                                              !strcmp(json_string_value(json_array_get(req, i)), arg);
    if (!found)
        return req_fail(e, 400, BAD, "tools", "Parameters of tool %s must have property marked as required: %s", name, arg);
    if (json_object_size(props) != 1)
        return req_fail(e, 400, BAD, "tools", "Parameters of tool %s must only have these properties:%s", name, arg);
    return 0;
}

static int grammar_llama3(gctx *c) {
    sm_sbuf l = {0};
    for (size_t i = 0; i < json_array_size(c->tools) && !l.oom; i++) {
        json_t *t = json_array_get(c->tools, i);
        const char *name = name_of(t), *arg = c->builtin ? builtin_arg(name) : NULL;
        char n[320], an[320];
        named(n, sizeof n, t, "call");
        if (arg) {   /* <|python_tag|>NAME.call(ARG=value) */
            char kn[340];
            snprintf(kn, sizeof kn, "%s-args-%s", name, arg);
            const char *kr = schema_rule(c, kn, json_incref(json_object_get(json_object_get(params_of(t), "properties"), arg)));
            sm_sbuf b = {0};
            literalf(&b, "<|python_tag|>%s.call(", name);
            sm_sb_printf(&b, " \"%s=\" %s \")\"", arg, kr ? kr : "");
            alt(&l, kr ? rule_of(c, n, &b) : (sm_sb_free(&b), NULL));
        }
        /* {"name": "NAME", "parameters": ARGS}, "type": "function" allowed first */
        const char *ar = schema_rule(c, named(an, sizeof an, t, "args"), params_ref(t));
        if (trigger(c, "{\"name\": \"%s\"", name)) l.oom = 1;
        sm_sbuf b = {0};
        sm_sb_add(&b, "\"{\" space ( \"\\\"type\\\":\" space \"\\\"function\\\",\" space )? ");
        literalf(&b, "\"name\": \"%s\", \"parameters\": ", name);
        sm_sb_printf(&b, " %s \"}\"", ar ? ar : "");
        alt(&l, ar ? rule_of(c, n, &b) : (sm_sb_free(&b), NULL));
    }
    static const char *const WORDS[] = {"{\"name\":", "{\n  \"name\":", "{\n    \"name\":", "{\"type\": \"function\"",
                                        "{\n  \"type\": \"function\"", "{\n    \"type\": \"function\""};
    for (size_t i = 0; i < sizeof WORDS / sizeof WORDS[0]; i++)
        if (trigger(c, "%s", WORDS[i])) l.oom = 1;
    if (c->builtin && trigger(c, "<|python_tag|>")) l.oom = 1;
    return rule_of(c, "root", &l) ? 0 : -1;
}

static json_t *nemo_call(json_t *tool) {
    return json_pack("{s:s, s:{s:o, s:o, s:{s:s, s:s}}, s:[s, s, s]}", "type", "object", "properties", "name",
                     const_name(name_of(tool), 1), "arguments", params_ref(tool), "id", "type", "string", "pattern",
                     "^[a-zA-Z0-9]{9}$", "required", "name", "arguments", "id");
}
static int grammar_nemo(gctx *c) {
    const char *r = schema_rule(c, "tool_calls", calls_list(c, nemo_call));
    return r && !trigger(c, "[TOOL_CALLS]") && rulef(c, "root", "\"[TOOL_CALLS]\" %s", r) ? 0 : -1;
}

static json_t *firefunction_call(json_t *tool) {
    /* llama.cpp also lists an "id" as required, which its converter passes
     * over (no such property): the same grammar without it */
    return json_pack("{s:s, s:{s:o, s:o}, s:[s, s]}", "type", "object", "properties", "name",
                     const_name(name_of(tool), 1), "arguments", params_ref(tool), "required", "name", "arguments");
}
static int grammar_firefunction(gctx *c) {
    const char *r = schema_rule(c, "tool_calls", calls_list(c, firefunction_call));
    return r && !trigger(c, " functools[") && rulef(c, "root", "\" functools\"? %s", r) ? 0 : -1;
}

static json_t *r7b_call(json_t *tool) {
    return json_pack("{s:s, s:{s:{s:s, s:s}, s:o, s:o}, s:[s, s, s]}", "type", "object", "properties", "tool_call_id",
                     "type", "string", "pattern", "^[0-9]{1,10}$", "tool_name", const_name(name_of(tool), 1),
                     "parameters", params_ref(tool), "required", "tool_call_id", "tool_name", "parameters");
}
static int grammar_r7b(gctx *c) {
    const char *r = schema_rule(c, "tool_calls", calls_list(c, r7b_call));
    return r && !trigger(c, "<|START_ACTION|>") && rulef(c, "root", "\"<|START_ACTION|>\" %s \"<|END_ACTION|>\"", r)
               ? 0 : -1;
}

/* One rule per tool, named <name>-<suffix>, as alternatives into l: the
 * literal text before + name + after, its arguments' rule, then post (GBNF). */
static void per_tool(gctx *c, sm_sbuf *l, const char *suffix, const char *before, const char *after, const char *post) {
    for (size_t i = 0; i < json_array_size(c->tools) && !l->oom; i++) {
        json_t *t = json_array_get(c->tools, i);
        char n[320], an[320];
        const char *ar = schema_rule(c, named(an, sizeof an, t, "args"), params_ref(t));
        sm_sbuf b = {0};
        literalf(&b, "%s%s%s", before, name_of(t), after);
        sm_sb_printf(&b, " %s%s", ar ? ar : "", post);
        alt(l, ar ? rule_of(c, named(n, sizeof n, t, suffix), &b) : (sm_sb_free(&b), NULL));
    }
}

/* Functionary v3.1's python tool: its code argument, or "" for a string */
static int python_check(json_t *params, req_error *e) {
    json_t *type = json_object_get(params, "type");
    if (!type) return req_fail(e, 400, BAD, "tools", "Missing type in python tool");
    if (json_is_string(type) && !strcmp(json_string_value(type), "object")) {
        const char *k, *found = NULL;
        json_t *v;
        json_object_foreach(json_object_get(params, "properties"), k, v) {
            json_t *vt = json_object_get(v, "type");
            if (json_is_string(vt) && !strcmp(json_string_value(vt), "string")) {
                if (found) return req_fail(e, 400, BAD, "tools", "Multiple string arguments found in python tool");
                found = k;
            }
        }
        if (!found) return req_fail(e, 400, BAD, "tools", "No string argument found in python tool");
        return 0;
    }
    if (!json_is_string(type) || strcmp(json_string_value(type), "string"))
        return req_fail(e, 400, BAD, "tools", "Invalid type in python tool");
    return 0;
}

static int grammar_functionary31(gctx *c) {
    int python = 0;
    for (size_t i = 0; i < json_array_size(c->tools); i++) {
        const char *n = name_of(json_array_get(c->tools, i));
        if (!strcmp(n, "python") || !strcmp(n, "ipython")) {
            if (python_check(params_of(json_array_get(c->tools, i)), c->e)) return -2;
            python = 1;
        }
    }
    if ((python && trigger(c, "<|python_tag|>")) || trigger(c, "<function=")) return -1;
    sm_sbuf all = {0};
    per_tool(c, &all, "call", "<function=", ">", " \"</function>\" space");
    if (python) alt(&all, sm_json_grammar_rule(c->g, "python-call", "\"<|python_tag|>\" .*"));
    const char *tc = rule_of(c, "tool_call", &all);
    if (!tc) return -1;
    return rulef(c, "root", c->parallel ? "(%s space)+" : "%s space", tc) ? 0 : -1;
}

static int grammar_functionary32(gctx *c) {
    for (size_t i = 0; i < json_array_size(c->tools); i++)
        if (trigger(c, "%s", name_of(json_array_get(c->tools, i))) ||
            trigger(c, ">>>%s", name_of(json_array_get(c->tools, i))))
            return -1;
    sm_sbuf first = {0};
    per_tool(c, &first, "call", "", "\n", "");
    const char *fr = rule_of(c, "first_tool_call", &first);
    if (!fr) return -1;
    if (!c->parallel) return rulef(c, "root", "%s space", fr) ? 0 : -1;
    sm_sbuf next = {0};
    per_tool(c, &next, "call2", ">>>", "\n", "");
    const char *nr = rule_of(c, "subsequent_tool_call", &next);
    return nr && rulef(c, "root", "%s space (%s space)*", fr, nr) ? 0 : -1;
}

static int grammar_r1(gctx *c) {
    sm_sbuf calls = {0}, root = {0};
    per_tool(c, &calls, "call", "<｜tool▁call▁begin｜>function<｜tool▁sep｜>", "\n```json\n", " \"```<｜tool▁call▁end｜>\"");
    sm_sb_add(&root, "( ");
    for (size_t i = 0; i < N_R1_BEGIN; i++) {
        if (i) sm_sb_add(&root, " | ");
        sm_gbnf_literal(&root, R1_BEGIN[i], strlen(R1_BEGIN[i]));
        if (trigger(c, "%s", R1_BEGIN[i])) root.oom = 1;
    }
    sm_sb_printf(&root, " ) (%s)%s \"<｜tool▁calls▁end｜>\" space", calls.p ? calls.p : "", c->parallel ? "*" : "");
    if (calls.oom || !calls.p) root.oom = 1;
    sm_sb_free(&calls);
    return rule_of(c, "root", &root) ? 0 : -1;
}

/* ------------------------------------------------------------ the replies */

/* A reply read: its text, its calls ({"name", "arguments" (JSON text),
 * "id"?}) and its reasoning; how the request asked for it read. */
typedef struct reply {
    sm_sbuf content, reasoning;
    json_t *calls;
    int oom;
    int keep_reasoning;   /* the thinking is content (its tags too), not reasoning */
    int builtin_tools;    /* Llama 3.x: a built-in tool may have been called */
} reply;

static void say(reply *o, const char *p, const char *end) { sm_sb_addn(&o->content, p, (size_t)(end - p)); }
/* the content back to its first n bytes */
static void unsay(reply *o, size_t n) {
    o->content.n = n;
    if (o->content.p) o->content.p[n] = '\0';
}

/* a call; args a JSON value written compactly, or with raw_string a string
 * taken as the arguments' text itself (as llama.cpp's formats differ) */
static void add_call(reply *o, const char *name, size_t nl, json_t *args, json_t *id, int raw_string) {
    int raw = raw_string && json_is_string(args);
    char *a = raw ? NULL : json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    json_t *c = json_pack("{s:o, s:s}", "name", resp_utf8_string(name, nl), "arguments",
                          raw ? json_string_value(args) : a ? a : "{}");
    if (c && json_is_string(id)) json_object_set(c, "id", id);
    if (!c || json_array_append_new(o->calls, c)) o->oom = 1;
    free(a);
}

/* A JSON value at p (after spaces), as nlohmann reads one with text after
 * it: the value (new reference) and *next after it, or NULL. */
static json_t *json_at(const char *p, const char *end, const char **next) {
    json_error_t je;
    json_t *v = json_loadb(p, (size_t)(end - p), JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &je);
    if (v) *next = p + je.position;
    return v;
}
/* the whole of [p, end) as one JSON value (spaces around allowed) */
static json_t *json_all(const char *p, const char *end) {
    return json_loadb(p, (size_t)(end - p), JSON_DECODE_ANY, NULL);
}

/* Calls as llama.cpp's parse_json_tool_calls reads them: an opening naming
 * the tool (found by open from s: its start *m0 and end, the name), JSON
 * arguments, a closing (close: the position after it); the text around them
 * is content, dropped when there are calls (back to what o had before). -1
 * when malformed. */
typedef const char *(*open_fn)(const char *s, const char *end, const char **m0, const char **name, size_t *nl);
typedef const char *(*close_fn)(const char *s, const char *end);
static int json_calls(reply *o, const char *s, const char *end, open_fn open, close_fn close) {
    size_t before = o->content.n, calls = json_array_size(o->calls);
    while (s < end) {
        const char *m0, *name;
        size_t nl;
        const char *m1 = open(s, end, &m0, &name, &nl);
        if (!m1) {
            say(o, s, end);
            break;
        }
        say(o, s, m0);
        json_t *args = json_at(m1, end, &s);
        const char *after = args ? close(s, end) : NULL;
        if (!after) {
            json_decref(args);
            return -1;
        }
        add_call(o, name, nl, args, NULL, 1);
        json_decref(args);
        s = after;
    }
    if (json_array_size(o->calls) > calls) unsay(o, before);
    return 0;
}

/* A prefix, then a JSON list of {"name", "arguments", "id"?} (llama.cpp's
 * parse_prefixed_json_tool_call_array): the text before it is content. */
static int prefixed_calls(reply *o, const char *text, const char *end, const char *prefix, size_t back) {
    const char *p = find(text, end, prefix);
    if (!p) {
        say(o, text, end);
        return 0;
    }
    say(o, text, p);
    json_t *list = json_all(p + strlen(prefix) - back, end);
    int bad = !json_is_array(list);
    for (size_t i = 0; !bad && i < json_array_size(list); i++) {
        json_t *c = json_array_get(list, i), *name = json_object_get(c, "name"), *args = json_object_get(c, "arguments"),
               *id = json_object_get(c, "id");
        if (!json_is_string(name) || !args || (id && !json_is_string(id))) bad = 1;
        else add_call(o, json_string_value(name), json_string_length(name), args, id, 1);
    }
    json_decref(list);
    return bad ? -1 : 0;
}

static int read_generic(reply *o, const char *text, const char *end) {
    json_t *doc = json_all(text, end);
    json_t *many = json_object_get(doc, "tool_calls"), *one = json_object_get(doc, "tool_call"),
           *resp = json_object_get(doc, "response");
    for (size_t i = 0; json_is_array(many) && i < json_array_size(many); i++) {
        json_t *c = json_array_get(many, i), *name = json_object_get(c, "name");
        if (json_is_string(name))
            add_call(o, json_string_value(name), json_string_length(name), json_object_get(c, "arguments"),
                     json_object_get(c, "id"), 0);
    }
    json_t *name = json_object_get(one, "name");
    if (!json_is_array(many) && json_is_string(name))
        add_call(o, json_string_value(name), json_string_length(name), json_object_get(one, "arguments"), NULL, 0);
    if (!doc) say(o, text, end);   /* not JSON after all: the text as it is */
    else if (json_is_string(resp)) say(o, json_string_value(resp), json_string_value(resp) + json_string_length(resp));
    else if (resp) {
        char *s = json_dumps(resp, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        if (s) say(o, s, s + strlen(s));
        free(s);
    }
    json_decref(doc);
    return 0;
}

/* Hermes: content, then <tool_call>{json}</tool_call>, each only spaces apart. */
static int read_hermes(reply *o, const char *text, const char *end) {
    const char *p = find(text, end, "<tool_call>");
    if (!p) {
        say(o, text, end);
        return 0;
    }
    const char *q = p;
    while (q > text && is_space(q[-1])) q--;
    say(o, text, q);
    p += strlen("<tool_call>");
    for (;;) {
        json_t *call = json_at(p, end, &p);
        json_t *name = json_object_get(call, "name"), *args = json_object_get(call, "arguments");
        if (!json_is_string(name) || !args) {
            json_decref(call);
            return -1;
        }
        add_call(o, json_string_value(name), json_string_length(name), args, NULL, 0);
        json_decref(call);
        const char *close = lit(spaces(p, end), end, "</tool_call>");
        if (!close) return -1;
        const char *next = lit(spaces(close, end), end, "<tool_call>");
        if (next) {
            p = next;
            continue;
        }
        return spaces(close, end) == end ? 0 : -1;
    }
}

/* Llama 3.x: {"name": "...", "parameters": {...}} (optionally "type": "function" first) */
static const char *open_llama3(const char *s, const char *end, const char **m0, const char **name, size_t *nl) {
    for (const char *p = s; p < end; p++) {
        if (*p != '{') continue;
        const char *q = spaces(p + 1, end);
        for (int typed = 1; typed >= 0; typed--) {
            const char *r = q;
            if (typed) {
                r = lit(r, end, "\"type\"");
                r = r ? lit(spaces(r, end), end, ":") : NULL;
                r = r ? lit(spaces(r, end), end, "\"function\"") : NULL;
                r = r ? lit(spaces(r, end), end, ",") : NULL;
                if (!r) continue;
                r = spaces(r, end);
            }
            r = lit(r, end, "\"name\"");
            r = r ? lit(spaces(r, end), end, ":") : NULL;
            r = r ? lit(spaces(r, end), end, "\"") : NULL;
            if (!r) continue;
            const char *n0 = r;
            while (r < end && *r != '"') r++;
            if (r == n0 || r == end) continue;
            const char *n1 = r;
            r = lit(spaces(r + 1, end), end, ",");
            r = r ? lit(spaces(r, end), end, "\"parameters\": ") : NULL;
            if (!r) continue;
            *m0 = p, *name = n0, *nl = (size_t)(n1 - n0);
            return r;
        }
    }
    return NULL;
}
static const char *close_brace(const char *s, const char *end) {
    const char *p = find(s, end, "}");
    return p ? p + 1 : NULL;
}

static int read_llama3(reply *o, const char *text, const char *end) {
    /* <|python_tag|>name.call(arg=value), the whole reply (no line break after "call(") */
    const char *p = lit(text, end, "<|python_tag|>");
    if (o->builtin_tools && p) {
        const char *n0 = p, *q = p;
        while (q < end && *q != '.' && *q != '(') q++;
        const char *args = q > n0 ? lit(q, end, ".call(") : NULL;
        int one_line = 1;
        for (const char *r = args; r && r < end; r++) one_line &= *r != '\n' && *r != '\r';
        if (args && one_line && end > args && end[-1] == ')') {
            const char *eq = memchr(args, '=', (size_t)(end - 1 - args));
            json_t *v = eq ? json_all(eq + 1, end - 1) : NULL;
            if (!v) return -1;
            json_t *obj = json_object();
            sm_sbuf key = {0};
            sm_sb_addn(&key, args, (size_t)(eq - args));
            if (key.p) json_object_set(obj, key.p, v);
            add_call(o, n0, (size_t)(q - n0), obj, NULL, 0);
            sm_sb_free(&key);
            json_decref(obj);
            json_decref(v);
            return 0;
        }
    }
    return json_calls(o, text, end, open_llama3, close_brace);
}

/* a name of word characters (\w+) at n0 followed by ch: the position of ch, else NULL */
static const char *word_then(const char *n0, const char *end, char ch) {
    const char *q = n0;
    while (q < end && is_word(*q)) q++;
    return q > n0 && q < end && *q == ch ? q : NULL;
}

/* Functionary v3.1: <function=name>{json}</function>, or <|python_tag|> and code to the end */
static const char *open_function(const char *s, const char *end, const char **m0, const char **name, size_t *nl) {
    for (const char *p = find(s, end, "<function="); p; p = find(p + 1, end, "<function=")) {
        const char *n0 = p + strlen("<function="), *q = word_then(n0, end, '>');
        if (q) {
            *m0 = p, *name = n0, *nl = (size_t)(q - n0);
            return q + 1;
        }
    }
    return NULL;
}
static const char *close_function(const char *s, const char *end) {
    const char *p = find(s, end, "</function>");
    return p ? p + strlen("</function>") : NULL;
}
static int read_functionary31(reply *o, const char *text, const char *end) {
    const char *p = find(text, end, "<|python_tag|>");
    if (p) {
        say(o, text, p);
        const char *code = p + strlen("<|python_tag|>");
        json_t *args = json_pack("{s:o}", "code", resp_utf8_string(code, (size_t)(end - code)));
        add_call(o, "python", 6, args, NULL, 0);
        json_decref(args);
        return 0;
    }
    return json_calls(o, text, end, open_function, close_function);
}

/* Functionary v3.2: "all\n" and text, or (>>>)name\n{json} ... */
static const char *open_v32(const char *s, const char *end, const char **m0, const char **name, size_t *nl) {
    for (const char *p = s; p < end; p++) {
        const char *n0 = lit(p, end, ">>>");
        if (!n0) n0 = p;
        const char *q = word_then(n0, end, '\n');
        if (q) {
            *m0 = p, *name = n0, *nl = (size_t)(q - n0);
            return q + 1;
        }
    }
    return NULL;
}
static const char *close_v32(const char *s, const char *end) {
    const char *p = find(s, end, ">>>");
    return p ? p : end;
}
static int read_functionary32(reply *o, const char *text, const char *end) {
    const char *p = lit(text, end, "all\n");
    if (p) {
        const char *m0, *name;
        size_t nl;
        if (!open_v32(p, end, &m0, &name, &nl)) {
            say(o, p, end);
            return 0;
        }
        say(o, p, m0);   /* the text before the first call stays */
        text = m0;
    }
    return json_calls(o, text, end, open_v32, close_v32);
}

static int read_firefunction(reply *o, const char *text, const char *end) {
    return prefixed_calls(o, text, end, " functools[", 1);
}
static int read_nemo(reply *o, const char *text, const char *end) { return prefixed_calls(o, text, end, "[TOOL_CALLS]", 0); }

/* Command R7B */
static int read_r7b(reply *o, const char *text, const char *end) {
    const char *p = lit(text, end, "<|START_THINKING|>");
    const char *close = p ? find(p, end, "<|END_THINKING|>") : NULL;
    if (close) {
        const char *after = close + strlen("<|END_THINKING|>");
        if (!o->keep_reasoning) sm_sb_addn(&o->reasoning, p, (size_t)(close - p));
        else if (close > p) say(o, text, after);   /* an empty thinking is left out */
        text = after;
    }
    static const char SA[] = "<|START_ACTION|>", EA[] = "<|END_ACTION|>", SR[] = "<|START_RESPONSE|>",
                      ER[] = "<|END_RESPONSE|>";
    size_t n = (size_t)(end - text);
    if (lit(text, end, SA) && n >= sizeof SA - 1 + sizeof EA - 1 && !memcmp(end - (sizeof EA - 1), EA, sizeof EA - 1)) {
        json_t *list = json_all(text + sizeof SA - 1, end - (sizeof EA - 1));
        int bad = !json_is_array(list);
        for (size_t i = 0; !bad && i < json_array_size(list); i++) {
            json_t *a = json_array_get(list, i), *name = json_object_get(a, "tool_name"),
                   *params = json_object_get(a, "parameters"), *id = json_object_get(a, "tool_call_id");
            if (!json_is_string(name) || !params || !json_is_string(id)) {
                bad = 1;
                break;
            }
            add_call(o, json_string_value(name), json_string_length(name), params, id, 0);
        }
        json_decref(list);
        return bad ? -1 : 0;
    }
    if (n >= sizeof ER - 1 && !memcmp(end - (sizeof ER - 1), ER, sizeof ER - 1)) {
        const char *from = lit(text, end, SR);
        say(o, from ? from : text, end - (sizeof ER - 1));
        return 0;
    }
    say(o, text, end);
    return 0;
}

/* DeepSeek R1 */
static const char *open_r1(const char *s, const char *end, const char **m0, const char **name, size_t *nl) {
    static const char OPEN[] = "<｜tool▁call▁begin｜>function<｜tool▁sep｜>";
    for (const char *p = find(s, end, OPEN); p; p = find(p + 1, end, OPEN)) {
        const char *n0 = p + sizeof OPEN - 1, *q = n0;
        while (q < end && *q != '\n') q++;
        const char *after = q > n0 ? lit(q, end, "\n```json\n") : NULL;
        if (after) {
            *m0 = p, *name = n0, *nl = (size_t)(q - n0);
            return after;
        }
    }
    return NULL;
}
static const char *close_r1(const char *s, const char *end) {
    for (const char *p = find(s, end, "```"); p; p = find(p + 1, end, "```")) {
        const char *q = lit(spaces(p + 3, end), end, "<｜tool▁call▁end｜>");
        if (q) return q;
    }
    return NULL;
}
static int read_r1(reply *o, const char *text, const char *end) {
    const char *close = find(text, end, "</think>");
    if (close) {
        const char *r0 = lit(text, end, "<think>");
        r0 = r0 ? r0 : text;
        const char *a = spaces(r0, close), *b = close;
        while (b > a && is_space(b[-1])) b--;
        if (o->keep_reasoning) say(o, text, close + strlen("</think>"));
        else sm_sb_addn(&o->reasoning, a, (size_t)(b - a));
        text = close + strlen("</think>");
    }
    const char *first = NULL, *after = NULL;
    for (size_t i = 0; i < N_R1_BEGIN; i++) {
        const char *p = find(text, end, R1_BEGIN[i]);
        if (p && (!first || p < first)) first = p, after = p + strlen(R1_BEGIN[i]);
    }
    const char *stop = after ? find(after, end, "<｜tool▁calls▁end｜>") : NULL;
    if (stop) {   /* only the calls: neither the text before them nor between them is kept (llama.cpp) */
        size_t before = o->content.n;
        int rc = json_calls(o, after, stop, open_r1, close_r1);
        unsay(o, before);
        return rc;
    }
    const char *p = text;
    while (p < end && (*p == ' ' || *p == '\r' || *p == '\n')) p++;
    say(o, p, end);
    return 0;
}

/* ------------------------------------------------------------ the table */

/* A format: the text its templates hold, the grammar of a call (rule
 * "root") and its trigger words, the reader of replies, a further stop. */
typedef struct tool_format {
    const char *mark, *mark2;   /* the template holds mark (and mark2) */
    int (*grammar)(gctx *c);
    int (*read)(reply *o, const char *text, const char *end);
    const char *stop;
    /* a streamed reply: the text before the first of these is content as
     * written (NULL: the reply is read only whole) */
    const char *const *opens;
} tool_format;

static const char *const HERMES_OPENS[] = {"<tool_call>", NULL}, *const LLAMA3_OPENS[] = {"{", "<|python_tag|>", NULL},
                         *const NEMO_OPENS[] = {"[TOOL_CALLS]", NULL},
                         *const FUNCTIONARY31_OPENS[] = {"<function=", "<|python_tag|>", NULL},
                         *const FIREFUNCTION_OPENS[] = {" functools[", NULL};

static const tool_format FORMATS[REQ_TOOL_FORMATS] = {
    /* every template no other row names */
    [REQ_TOOL_FORMAT_GENERIC] = {NULL, NULL, grammar_generic, read_generic, NULL, NULL},
    /* Hermes 2/3 Pro, Qwen 2.5 */
    [REQ_TOOL_FORMAT_HERMES] = {"<tool_call>", NULL, grammar_hermes, read_hermes, NULL, HERMES_OPENS},
    [REQ_TOOL_FORMAT_LLAMA_3_X] = {"<|start_header_id|>ipython<|end_header_id|>", NULL, grammar_llama3, read_llama3,
                                   "<|eom_id|>", LLAMA3_OPENS},
    [REQ_TOOL_FORMAT_MISTRAL_NEMO] = {"[TOOL_CALLS]", NULL, grammar_nemo, read_nemo, NULL, NEMO_OPENS},
    [REQ_TOOL_FORMAT_FUNCTIONARY_3_1] = {"<|start_header_id|>", "<function=", grammar_functionary31, read_functionary31,
                                         NULL, FUNCTIONARY31_OPENS},
    [REQ_TOOL_FORMAT_FUNCTIONARY_3_2] = {">>>all", NULL, grammar_functionary32, read_functionary32, NULL, NULL},
    [REQ_TOOL_FORMAT_FIREFUNCTION_2] = {" functools[", NULL, grammar_firefunction, read_firefunction, NULL, FIREFUNCTION_OPENS},
    [REQ_TOOL_FORMAT_COMMAND_R7B] = {"<|END_THINKING|><|START_ACTION|>", NULL, grammar_r7b, read_r7b, NULL, NULL},
    [REQ_TOOL_FORMAT_DEEPSEEK_R1] = {"<｜tool▁calls▁begin｜>", NULL, grammar_r1, read_r1, NULL, R1_BEGIN},
};

/* llama.cpp's order: the formats it uses in every case (also for requests
 * without tools: their replies are read the same way) first, then (with
 * tools) the others, the generic one last */
static const enum req_tool_format ALWAYS[] = {REQ_TOOL_FORMAT_DEEPSEEK_R1, REQ_TOOL_FORMAT_COMMAND_R7B,
                                              REQ_TOOL_FORMAT_FUNCTIONARY_3_2, REQ_TOOL_FORMAT_FIREFUNCTION_2};
static const enum req_tool_format WITH_TOOLS[] = {REQ_TOOL_FORMAT_HERMES, REQ_TOOL_FORMAT_FUNCTIONARY_3_1,
                                                  REQ_TOOL_FORMAT_LLAMA_3_X, REQ_TOOL_FORMAT_MISTRAL_NEMO};

static int holds(const char *tmpl, enum req_tool_format f) {
    return tmpl && strstr(tmpl, FORMATS[f].mark) && (!FORMATS[f].mark2 || strstr(tmpl, FORMATS[f].mark2));
}

static enum req_tool_format pick(const server *S, const request *r) {
    const char *t = S->jinja;   /* (a model without a template runs ChatML: generic) */
    int grammar = r->grammar != NULL;   /* response_format: llama.cpp's R1 and R7B rows give way */
    for (size_t i = 0; i < sizeof ALWAYS / sizeof ALWAYS[0]; i++) {
        enum req_tool_format f = ALWAYS[i];
        if (holds(t, f) && !(grammar && (f == REQ_TOOL_FORMAT_DEEPSEEK_R1 || f == REQ_TOOL_FORMAT_COMMAND_R7B))) return f;
    }
    if (!r->tools || !r->tools->n || r->tool_choice == REQ_TOOLS_NONE) return REQ_TOOL_FORMAT_NONE;
    for (size_t i = 0; i < sizeof WITH_TOOLS / sizeof WITH_TOOLS[0]; i++)
        if (holds(t, WITH_TOOLS[i])) return WITH_TOOLS[i];
    return REQ_TOOL_FORMAT_GENERIC;
}

/* ------------------------------------------------------------ the prompt */

static const char GENERIC_SYSTEM[] = "Respond in JSON format, either with `tool_call` (a request to call tools) or "
                                     "with `response` reply to the user's request";

/* add_system: the text joins a first system message or becomes one. */
static int add_system(request *r, req_error *e) {
    int joins = r->n_msgs && !strcmp(r->msgs[0].role, "system");
    size_t n = r->n_msgs + !joins;
    sm_chat_message *m = calloc(n, sizeof *m);
    const sm_chat_value **x = calloc(n, sizeof *x);
    char *text = joins ? req_own(r, strlen(r->msgs[0].content) + 2 + sizeof GENERIC_SYSTEM) : NULL;
    if (!m || !x || (joins && !text)) {
        free(m);
        free(x);
        return req_fail(e, 500, "server_error", NULL, "out of memory");
    }
    if (text) sprintf(text, "%s\n\n%s", r->msgs[0].content, GENERIC_SYSTEM);
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

/* the further variables of Llama 3.x (tools_in_user_message false, the
 * built-in tools offered or null) and Firefunction v2 (a date, the tools as
 * indented JSON text): a DICT the request owns */
static int set_vars(request *r, json_t *tools, enum req_tool_format f, const char *tmpl, req_error *e) {
    sm_chat_value *v = req_own(r, 2 * sizeof *v);
    const char **keys = req_own(r, 2 * sizeof *keys);
    sm_chat_value *d = req_own(r, sizeof *d);
    if (!v || !keys || !d) return req_fail(e, 500, "server_error", NULL, "out of memory");
    if (f == REQ_TOOL_FORMAT_LLAMA_3_X) {
        size_t n = 0;
        sm_chat_value *names = req_own(r, (json_array_size(tools) + 1) * sizeof *names);
        if (!names) return req_fail(e, 500, "server_error", NULL, "out of memory");
        int allow = strstr(tmpl, "<|python_tag|>") != NULL;
        for (size_t i = 0; allow && i < json_array_size(tools); i++) {
            json_t *t = json_array_get(tools, i);
            const char *name = name_of(t), *arg = builtin_arg(name);
            if (!arg) continue;
            if (builtin_check(name, json_object_get(fn_of(t), "parameters"), arg, e)) return -1;
            names[n++] = (sm_chat_value){.type = SM_CHAT_VALUE_STRING, .s = name, .n = strlen(name)};
        }
        r->builtin_tools = n > 0;
        keys[0] = "tools_in_user_message", keys[1] = "builtin_tools";
        v[0] = (sm_chat_value){.type = SM_CHAT_VALUE_BOOL, .i = 0};
        v[1] = n ? (sm_chat_value){.type = SM_CHAT_VALUE_LIST, .items = names, .n = n}
                 : (sm_chat_value){.type = SM_CHAT_VALUE_NULL};
    } else {   /* Firefunction v2: the tools as llama.cpp rebuilds them, indented */
        json_t *list = json_array();
        for (size_t i = 0; i < json_array_size(tools); i++) {
            json_t *fn = fn_of(json_array_get(tools, i)), *desc = json_object_get(fn, "description");
            json_t *g = json_pack("{s:O}", "name", json_object_get(fn, "name"));
            if (desc) json_object_set(g, "description", desc);
            json_object_set_new(g, "parameters", params_ref(json_array_get(tools, i)));
            json_array_append_new(list, json_pack("{s:s, s:o}", "type", "function", "function", g));
        }
        char *dump = tools ? json_dumps(list, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(list);
        char *text = req_own(r, dump ? strlen(dump) : 0);
        if (text && dump) strcpy(text, dump);
        free(dump);
        if (!text) return req_fail(e, 500, "server_error", NULL, "out of memory");
        keys[0] = "datetime", keys[1] = "functions";
        static const char WHEN[] = "Jan 29 2025 13:00:00 GMT";   /* llama.cpp's fixed date */
        v[0] = (sm_chat_value){.type = SM_CHAT_VALUE_STRING, .s = WHEN, .n = sizeof WHEN - 1};
        v[1] = (sm_chat_value){.type = SM_CHAT_VALUE_STRING, .s = text, .n = strlen(text)};
        r->tools_hidden = 1;
    }
    *d = (sm_chat_value){.type = SM_CHAT_VALUE_DICT, .keys = keys, .items = v, .n = 2};
    r->vars = d;
    return 0;
}

/* Command R7B's template reads a reply's plan before its calls as
 * tool_plan: a message's reasoning_content beside tool_calls is renamed so
 * (the fields are the request's own, made by request.c) */
static void r7b_plans(request *r) {
    for (size_t i = 0; r->extras && i < r->n_msgs; i++) {
        sm_chat_value *x = (sm_chat_value *)r->extras[i];
        int calls = 0;
        for (size_t k = 0; x && k < x->n; k++) calls |= !strcmp(x->keys[k], "tool_calls");
        for (size_t k = 0; x && calls && k < x->n; k++)
            if (!strcmp(x->keys[k], "reasoning_content")) ((const char **)x->keys)[k] = "tool_plan";
    }
}

int tools_prepare(const server *S, request *r, req_error *e) {
    r->tool_format = REQ_TOOL_FORMAT_NONE;
    if (!S->opt.jinja) return 0;
    enum req_tool_format f = pick(S, r);
    r->tool_format = f;
    r->keep_reasoning = S->opt.reasoning_none;
    if (f == REQ_TOOL_FORMAT_NONE) return 0;
    int offered = r->tools && r->tool_choice != REQ_TOOLS_NONE;
    if (offered && r->grammar)
        return req_fail(e, 400, BAD, "response_format", "response_format cannot be combined with tools on this server");
    json_t *tools = r->tools ? json_object_get((json_t *)r->doc, "tools") : NULL;
    if (f == REQ_TOOL_FORMAT_LLAMA_3_X || f == REQ_TOOL_FORMAT_FIREFUNCTION_2)
        if (set_vars(r, json_array_size(tools) ? tools : NULL, f, S->jinja, e)) return -1;
    if (FORMATS[f].stop) r->p.stop[r->p.n_stop++] = FORMATS[f].stop;
    if (f == REQ_TOOL_FORMAT_COMMAND_R7B) r7b_plans(r);
    if (f == REQ_TOOL_FORMAT_GENERIC && add_system(r, e)) return -1;
    /* parallel calls only where the template writes them (llama.cpp) */
    if (r->parallel_tool_calls && !sm_chat_jinja_parallel_calls(S->jinja ? S->jinja : sm_chat_chatml_jinja()))
        r->parallel_tool_calls = 0;
    int required = r->tool_choice == REQ_TOOLS_REQUIRED;
    if (!offered || !json_array_size(tools)) return 0;
    /* the grammar: with "auto" lazy, but for the generic format's JSON reply */
    sm_error err = {0};
    gctx c = {sm_json_grammar_new(&err), tools, r->parallel_tool_calls, required, r->builtin_tools, e, r};
    if (!c.g) return req_fail(e, 500, "server_error", NULL, "out of memory");
    int rc = FORMATS[f].grammar(&c);
    if (rc == -2) {   /* the tools themselves refused (e set) */
        sm_json_grammar_free(c.g);
        return -1;
    }
    char *text = NULL;
    sm_status st = sm_json_grammar_take(c.g, &text);
    if (st != SM_OK || rc) {
        sm_json_schema_free(text);
        return req_fail(e, 400, BAD, "tools", "a tool's parameters: %s", err.message[0] ? err.message : "out of memory");
    }
    rc = req_grammar(r, text, "tools", e);
    sm_json_schema_free(text);
    r->awaiting = !rc && f != REQ_TOOL_FORMAT_GENERIC && !required && r->n_triggers > 0;
    return rc;
}

/* the reply goes on without a grammar */
static void drop_grammar(request *r) {
    r->awaiting = 0;
    sm_grammar_matcher_free(r->matcher);
    r->matcher = NULL;
}

void tools_trigger(request *r, const char *piece, size_t len) {
    sm_sbuf *t = &r->trigger_text;
    size_t old = t->n, longest = 0;
    sm_sb_addn(t, piece, len);
    if (t->oom) {   /* out of memory: free text */
        drop_grammar(r);
        return;
    }
    /* a word not found before can only end in the new piece: look from there back */
    for (size_t i = 0; i < r->n_triggers; i++) longest = strlen(r->triggers[i]) > longest ? strlen(r->triggers[i]) : longest;
    const char *from = t->p + (old + 1 > longest ? old + 1 - longest : 0), *end = t->p + t->n, *at = NULL;
    for (size_t i = 0; i < r->n_triggers && !at; i++) at = find(from, end, r->triggers[i]);
    if (!at) return;
    /* from the trigger on, the grammar holds the reply; text it cannot take drops it (llama.cpp fails the request) */
    r->awaiting = 0;
    sm_grammar_matcher_reset(r->matcher);
    if (sm_grammar_matcher_accept(r->matcher, at, (size_t)(end - at), NULL) != SM_OK) drop_grammar(r);
    sm_sb_free(t);
}

/* DeepSeek R1's own template leaves the chat open after tool results and
 * its call example unclosed; llama.cpp mends both in the prompt, and so
 * does this (text is malloc'd; returns it, or a mended copy) */
char *tools_prompt(const server *S, const request *r, char *text, size_t *len) {
    if (r->tool_format != REQ_TOOL_FORMAT_DEEPSEEK_R1 || !S->jinja ||
        !strstr(S->jinja, "{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}"))
        return text;
    static const char OUT_END[] = "<｜tool▁outputs▁end｜>", EOS[] = "<｜end▁of▁sentence｜>", ASSISTANT[] = "<｜Assistant｜>",
                      CALL_END[] = "<｜tool▁call▁end｜>", CALLS_END[] = "<｜tool▁calls▁end｜>",
                      OUT_BEGIN[] = "<｜tool▁outputs▁begin｜>", USER[] = "<｜User｜>";
    /* each call end grows by the two closings at most: 4n is room enough */
    size_t n = *len, cap = 4 * n + sizeof EOS + sizeof ASSISTANT;
    char *o = malloc(cap);
    if (!o) return text;
    size_t k = 0;
    const char *end = text + n;
    /* a trailing tool result ends the turn, and the reply is asked for (a chat reply always is) */
    int open = n >= sizeof OUT_END - 1 && !memcmp(end - (sizeof OUT_END - 1), OUT_END, sizeof OUT_END - 1);
    for (const char *p = text; p < end;) {
        const char *c = lit(p, end, CALL_END), *q = c ? spaces(c, end) : NULL;
        if (q && (lit(q, end, OUT_BEGIN) || lit(q, end, USER))) {
            k += (size_t)sprintf(o + k, "%s%s%s", CALL_END, CALLS_END, EOS);
            p = q;
            continue;
        }
        o[k++] = *p++;
    }
    if (open) k += (size_t)sprintf(o + k, "%s%s", EOS, ASSISTANT);
    o[k] = '\0';
    free(text);
    *len = k;
    return o;
}

/* ------------------------------------------------------------ the reply */


/* A call as the API gives it; one without an id of its own gets the
 * reply's id and its place ("call_<hex>_<n>"). */
static json_t *api_call(const char *reply_id, json_t *c, int n) {
    const char *dash = strrchr(reply_id, '-');
    char made[64];
    snprintf(made, sizeof made, "call_%s_%d", dash ? dash + 1 : reply_id, n);
    json_t *id = json_object_get(c, "id");
    return json_pack("{s:s, s:{s:O, s:O}, s:s}", "type", "function", "function", "name", json_object_get(c, "name"),
                     "arguments", json_object_get(c, "arguments"), "id",
                     json_is_string(id) && json_string_length(id) ? json_string_value(id) : made);
}

json_t *tools_message(const request *r, const char *reply_id, const char *text, size_t len, const char **finish) {
    reply o = {.calls = json_array(), .keep_reasoning = r->keep_reasoning, .builtin_tools = r->builtin_tools};
    const char *end = text + len;
    if (FORMATS[r->tool_format].read(&o, text, end) < 0) {   /* malformed: the text as it is */
        json_array_clear(o.calls);
        unsay(&o, 0);
        o.reasoning.n = 0;
        say(&o, text, end);
    }
    size_t n = json_array_size(o.calls);
    if (n) *finish = "tool_calls";
    json_t *m = json_pack("{s:s}", "role", "assistant");
    if (o.reasoning.n) json_object_set_new(m, "reasoning_content", resp_utf8_string(o.reasoning.p, o.reasoning.n));
    json_object_set_new(m, "content", n && !o.content.n ? json_null() : resp_utf8_string(o.content.p ? o.content.p : "",
                                                                                        o.content.n));
    if (n) {
        json_t *calls = json_array();
        for (size_t i = 0; i < n; i++) json_array_append_new(calls, api_call(reply_id, json_array_get(o.calls, i), (int)i));
        json_object_set_new(m, "tool_calls", calls);
    }
    json_decref(o.calls);
    if (o.oom || o.content.oom || o.reasoning.oom) {
        json_decref(m);
        m = NULL;
    }
    sm_sb_free(&o.content);
    sm_sb_free(&o.reasoning);
    return m;
}

/* where a streamed text from `from` stops being content as it stands: at the
 * first of opens, or before a start of one at its end, and spaces before */
static size_t ready_before(const char *text, size_t from, size_t len, const char *const *opens) {
    const char *end = text + len;
    size_t ready = len, tail = 0;
    for (size_t i = 0; opens[i]; i++) {
        const char *p = find(text + from, end, opens[i]);
        if (p && (size_t)(p - text) < ready) ready = (size_t)(p - text);
    }
    for (size_t i = 0; ready == len && opens[i]; i++)
        for (size_t k = strlen(opens[i]) - 1; k > tail; k--)
            if (k <= len - from && !memcmp(end - k, opens[i], k)) {
                tail = k;
                break;
            }
    ready -= tail;
    while (ready > from && is_space(text[ready - 1])) ready--;   /* spaces before a call are not kept */
    return ready;
}

/* DeepSeek R1 (read_r1): the thinking, once it is known to be thinking (the
 * reply opens it, or the prompt did), then the text after it */
static void r1_spans(const request *r, const char *text, size_t len, int whole, tools_spans *s) {
    const char *end = text + len, *open = lit(text, end, "<think>"), *close = find(text, end, "</think>");
    int opening = !whole && len < strlen("<think>") && !memcmp(text, "<think>", len);   /* it may yet open */
    if (!close && !open && (!r->think_open || opening)) {
        if (whole) s->content_to = len;
        return;
    }
    const char *a = spaces(open ? open : text, close ? close : end), *b = close ? close : end;
    if (!close && !whole)   /* not the closing tag or calls (nor spaces before them), nor their start */
        b = text + ready_before(text, (size_t)(a - text), len, R1_THINK_ENDS);
    if (close)
        while (b > a && is_space(b[-1])) b--;
    s->reasoning_from = (size_t)(a - text), s->reasoning_to = (size_t)(b - text);
    if (!close) return;
    const char *c = close + strlen("</think>");
    while (c < end && (*c == ' ' || *c == '\r' || *c == '\n')) c++;
    s->content_from = (size_t)(c - text);
    s->content_to = whole ? len : ready_before(text, s->content_from, len, R1_BEGIN);
}

void tools_stream_spans(const request *r, const char *text, size_t len, int whole, tools_spans *s) {
    memset(s, 0, sizeof *s);
    if (r->tool_format == REQ_TOOL_FORMAT_DEEPSEEK_R1 && !r->keep_reasoning) {
        r1_spans(r, text, len, whole, s);
        return;
    }
    /* (R1's thinking kept as content is not the text as it stands) */
    const char *const *opens = r->tool_format == REQ_TOOL_FORMAT_DEEPSEEK_R1 ? NULL : FORMATS[r->tool_format].opens;
    s->content_to = whole ? len : opens ? ready_before(text, 0, len, opens) : 0;
}

void tools_reply_start(request *r, const char *prompt, size_t len) {
    while (len > 0 && is_space(prompt[len - 1])) len--;
    r->think_open = r->tool_format == REQ_TOOL_FORMAT_DEEPSEEK_R1 && len >= strlen("<think>") &&
                    !memcmp(prompt + len - strlen("<think>"), "<think>", strlen("<think>"));
}

/* jinja_apply.c - the public --jinja calls: a conversation through a
 * template run as Jinja (jinja.c), with what llama.cpp c392e509 does
 * around minja's render (common/minja/chat-template.hpp and
 * common/chat.cpp, read there): the system-role probe and fallback, and
 * the removal of a leading BOS and trailing EOS text. */
#include "chat/jinja.h"
#include "chat/template.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

sm_chat_jinja_params sm_chat_jinja_default_params(void) {
    sm_chat_jinja_params p = {.bos_token = NULL, .eos_token = NULL, .add_assistant = 1, .now = -1, .tools = NULL,
                              .extras = NULL, .vars = NULL};
    return p;
}

/* One render: the conversation, its extra fields and tools, with the
 * polyfills poly (and the example call SM_JINJA_POLY_TOOLS shows). */
typedef struct conv {
    const sm_chat_message *msgs;
    const sm_chat_value *const *extras;
    size_t n;
    const sm_chat_value *tools;
} conv;

static sm_status render(const char *tmpl, const conv *c, const sm_chat_jinja_params *p, long long now, int add,
                        unsigned poly, const char *example, char **out, size_t *len, sm_error *err) {
    sm_jinja_ctx ctx = {c->msgs, c->n, add, p->bos_token, p->eos_token, now, c->tools, c->extras, poly, example, NULL};
    return sm_jinja_render(tmpl, strlen(tmpl), &ctx, out, len, err);
}

/* minja's try_raw_render: no polyfills, time 0, errors as no output;
 * whether the output contains needle (or needle2; with both, and needle2). */
static int renders(const char *tmpl, const conv *c, const sm_chat_jinja_params *p, const char *needle,
                   const char *needle2, int both) {
    char *out = NULL;
    size_t len = 0;
    if (render(tmpl, c, p, 0, 0, 0, NULL, &out, &len, NULL) != SM_OK) return 0;
    int one = strstr(out, needle) != NULL, two = needle2 && strstr(out, needle2) != NULL;
    free(out);
    return both ? one && two : one || two;
}

/* ------------------------------------------------ minja's probes' values */

#define V_STR(text) {.type = SM_CHAT_VALUE_STRING, .s = text, .n = sizeof(text) - 1}
#define V_NULL {.type = SM_CHAT_VALUE_NULL}
#define V_DICT(k, v) {.type = SM_CHAT_VALUE_DICT, .keys = k, .items = v, .n = sizeof(v) / sizeof(v[0])}
#define V_LIST(v) {.type = SM_CHAT_VALUE_LIST, .items = v, .n = sizeof(v) / sizeof(v[0])}

/* the tool of minja's supports_tools probe */
static const char *const K_ARG[] = {"type", "description"};
static const sm_chat_value V_ARG[] = {V_STR("string"), V_STR("Some argument.")};
static const char *const K_PROPS[] = {"arg"};
static const sm_chat_value V_PROPS[] = {V_DICT(K_ARG, V_ARG)};
static const sm_chat_value V_REQ[] = {V_STR("arg")};
static const char *const K_PARAMS[] = {"type", "properties", "required"};
static const sm_chat_value V_PARAMS[] = {V_STR("object"), V_DICT(K_PROPS, V_PROPS), V_LIST(V_REQ)};
static const char *const K_FN[] = {"name", "description", "parameters"};
static const sm_chat_value V_FN[] = {V_STR("some_tool"), V_STR("Some tool."), V_DICT(K_PARAMS, V_PARAMS)};
static const char *const K_TOOL[] = {"name", "type", "function"};
static const sm_chat_value V_TOOL[] = {V_STR("some_tool"), V_STR("function"), V_DICT(K_FN, V_FN)};
static const sm_chat_value V_TOOLS_ITEMS[] = {V_DICT(K_TOOL, V_TOOL)};
static const sm_chat_value PROBE_TOOLS = V_LIST(V_TOOLS_ITEMS);

/* arguments {"argument_needle": "print('Hello, World!')"}: an object, or
 * nlohmann's compact text of it (read back as that object) */
static const char *const K_NEEDLE[] = {"argument_needle"};
static const sm_chat_value V_NEEDLE[] = {V_STR("print('Hello, World!')")};
static const sm_chat_value ARGS_OBJ = V_DICT(K_NEEDLE, V_NEEDLE);
static const char ARGS_TEXT[] = "{\"argument_needle\":\"print('Hello, World!')\"}";
/* as initializers (a struct object is no constant expression in C) */
#define ARGS_OBJ_V V_DICT(K_NEEDLE, V_NEEDLE)
#define ARGS_STR_V {.type = SM_CHAT_VALUE_STRING, .s = ARGS_TEXT, .n = sizeof ARGS_TEXT - 1, .json = &ARGS_OBJ}
/* a tool call {"id": "call_1___", "type": "function", "function": {"arguments": a, "name": name}} */
static const char *const K_CALL_FN[] = {"arguments", "name"};
static const char *const K_CALL[] = {"id", "type", "function"};
#define CALL_FN(args, name) {args, V_STR(name)}
static const sm_chat_value FN_STR_IPY[] = CALL_FN(ARGS_STR_V, "ipython"), FN_OBJ_IPY[] = CALL_FN(ARGS_OBJ_V, "ipython");
static const sm_chat_value FN_STR_T1[] = CALL_FN(ARGS_STR_V, "test_tool1"), FN_OBJ_T1[] = CALL_FN(ARGS_OBJ_V, "test_tool1");
static const sm_chat_value FN_STR_T2[] = CALL_FN(ARGS_STR_V, "test_tool2"), FN_OBJ_T2[] = CALL_FN(ARGS_OBJ_V, "test_tool2");
#define CALL(fn) {V_STR("call_1___"), V_STR("function"), V_DICT(K_CALL_FN, fn)}
static const sm_chat_value C_STR_IPY[] = CALL(FN_STR_IPY), C_OBJ_IPY[] = CALL(FN_OBJ_IPY);
static const sm_chat_value C_STR_T1[] = CALL(FN_STR_T1), C_OBJ_T1[] = CALL(FN_OBJ_T1);
static const sm_chat_value C_STR_T2[] = CALL(FN_STR_T2), C_OBJ_T2[] = CALL(FN_OBJ_T2);
static const sm_chat_value L_STR_IPY[] = {V_DICT(K_CALL, C_STR_IPY)}, L_OBJ_IPY[] = {V_DICT(K_CALL, C_OBJ_IPY)};
static const sm_chat_value L_STR_T1[] = {V_DICT(K_CALL, C_STR_T1)}, L_OBJ_T1[] = {V_DICT(K_CALL, C_OBJ_T1)};
static const sm_chat_value L_STR_T12[] = {V_DICT(K_CALL, C_STR_T1), V_DICT(K_CALL, C_STR_T2)};
static const sm_chat_value L_OBJ_T12[] = {V_DICT(K_CALL, C_OBJ_T1), V_DICT(K_CALL, C_OBJ_T2)};
/* an assistant message's extra fields: content null, the calls */
static const char *const K_CALLS_MSG[] = {"content", "tool_calls"};
#define CALLS_MSG(list) {V_NULL, V_LIST(list)}
static const sm_chat_value M_STR_IPY[] = CALLS_MSG(L_STR_IPY), M_OBJ_IPY[] = CALLS_MSG(L_OBJ_IPY);
static const sm_chat_value M_STR_T1[] = CALLS_MSG(L_STR_T1), M_OBJ_T1[] = CALLS_MSG(L_OBJ_T1);
static const sm_chat_value M_STR_T12[] = CALLS_MSG(L_STR_T12), M_OBJ_T12[] = CALLS_MSG(L_OBJ_T12);
static const sm_chat_value X_STR_IPY = V_DICT(K_CALLS_MSG, M_STR_IPY), X_OBJ_IPY = V_DICT(K_CALLS_MSG, M_OBJ_IPY);
static const sm_chat_value X_STR_T1 = V_DICT(K_CALLS_MSG, M_STR_T1), X_OBJ_T1 = V_DICT(K_CALLS_MSG, M_OBJ_T1);
static const sm_chat_value X_STR_T12 = V_DICT(K_CALLS_MSG, M_STR_T12), X_OBJ_T12 = V_DICT(K_CALLS_MSG, M_OBJ_T12);
/* a tool's result {"role": "tool", "name": "test_tool1", "content": "Some response!", "tool_call_id": "call_911_"} */
static const char *const K_RESULT[] = {"name", "tool_call_id"};
static const sm_chat_value V_RESULT[] = {V_STR("test_tool1"), V_STR("call_911_")};
static const sm_chat_value X_RESULT = V_DICT(K_RESULT, V_RESULT);
/* the example call: {"arg1": "some_value"} as an object, or minja's compact text of it */
static const char *const K_EX_ARGS[] = {"arg1"};
static const sm_chat_value V_EX_ARGS[] = {V_STR("some_value")};
static const sm_chat_value EX_OBJ = V_DICT(K_EX_ARGS, V_EX_ARGS);
static const char EX_TEXT[] = "{\"arg1\": \"some_value\"}";
static const char *const K_EX_FN[] = {"name", "arguments"};
static const sm_chat_value EX_FN_OBJ[] = {V_STR("tool_name"), V_DICT(K_EX_ARGS, V_EX_ARGS)},
                           EX_FN_STR[] = {V_STR("tool_name"), {.type = SM_CHAT_VALUE_STRING, .s = EX_TEXT,
                                                                .n = sizeof EX_TEXT - 1, .json = &EX_OBJ}};
static const sm_chat_value EX_C_OBJ[] = {V_STR("call_1___"), V_STR("function"), V_DICT(K_EX_FN, EX_FN_OBJ)};
static const sm_chat_value EX_C_STR[] = {V_STR("call_1___"), V_STR("function"), V_DICT(K_EX_FN, EX_FN_STR)};
static const sm_chat_value EX_L_OBJ[] = {V_DICT(K_CALL, EX_C_OBJ)}, EX_L_STR[] = {V_DICT(K_CALL, EX_C_STR)};
static const sm_chat_value EX_M_OBJ[] = CALLS_MSG(EX_L_OBJ), EX_M_STR[] = CALLS_MSG(EX_L_STR);
static const sm_chat_value X_EX_OBJ = V_DICT(K_CALLS_MSG, EX_M_OBJ), X_EX_STR = V_DICT(K_CALLS_MSG, EX_M_STR);

/* What the template writes itself (minja's chat_template_caps). */
typedef struct caps {
    int system_role, tools, tool_calls, object_args, tool_responses, parallel;
} caps;

static void probe(const char *tmpl, const sm_chat_jinja_params *p, int tool_use, caps *k) {
    memset(k, 0, sizeof *k);
    const sm_chat_message sys[2] = {{"system", "<System Needle>"}, {"user", "<User Needle>"}};
    conv c = {sys, NULL, 2, NULL};
    k->system_role = renders(tmpl, &c, p, "<System Needle>", NULL, 0);
    if (!tool_use) return;
    const sm_chat_message *user = sys + 1;
    c = (conv){user, NULL, 1, &PROBE_TOOLS};
    k->tools = renders(tmpl, &c, p, "some_tool", NULL, 0);
    const sm_chat_message call[3] = {{"user", "<User Needle>"}, {"assistant", ""}, {"tool", "Some response!"}};
    const sm_chat_value *x[3] = {NULL, &X_STR_IPY, NULL};
    c = (conv){call, x, 2, NULL};
    int str_args = renders(tmpl, &c, p, "\"argument_needle\":", "'argument_needle':", 0);
    x[1] = &X_OBJ_IPY;
    int obj_args = renders(tmpl, &c, p, "\"argument_needle\":", "'argument_needle':", 0);
    k->tool_calls = str_args || obj_args;
    k->object_args = !str_args && obj_args;
    if (!k->tool_calls) return;
    x[1] = k->object_args ? &X_OBJ_T12 : &X_STR_T12;
    k->parallel = renders(tmpl, &c, p, "test_tool1", "test_tool2", 1);
    x[1] = k->object_args ? &X_OBJ_T1 : &X_STR_T1;
    x[2] = &X_RESULT;
    c.n = 3;
    k->tool_responses = renders(tmpl, &c, p, "Some response!", NULL, 0);
}

static unsigned polyfills(const caps *k, const conv *c) {
    int has_calls = 0, has_results = 0;
    for (size_t i = 0; i < c->n; i++) {
        const sm_chat_value *x = c->extras ? c->extras[i] : NULL;
        for (size_t f = 0; x && x->type == SM_CHAT_VALUE_DICT && f < x->n; f++)
            has_calls |= x->keys[f] && !strcmp(x->keys[f], "tool_calls") && x->items[f].type != SM_CHAT_VALUE_NULL;
        has_results |= !strcmp(c->msgs[i].role, "tool");
    }
    int has_tools = c->tools && c->tools->type == SM_CHAT_VALUE_LIST && c->tools->n > 0;
    unsigned poly = 0;
    if (!k->system_role) poly |= SM_JINJA_POLY_SYSTEM;
    if (has_tools && !k->tools) poly |= SM_JINJA_POLY_TOOLS;
    if (has_calls && !k->tool_calls) poly |= SM_JINJA_POLY_TOOL_CALLS;
    if (has_results && !k->tool_responses) poly |= SM_JINJA_POLY_TOOL_RESPONSES;
    if (has_calls && k->object_args) poly |= SM_JINJA_POLY_OBJECT_ARGS;
    return poly;
}

/* minja's tool_call_example_, for a template that does not describe tools
 * itself: what the template writes after the prompt for a reply that calls
 * a tool (NULL when it cannot be told). Rendered with the polyfills. */
static char *tool_call_example(const char *tmpl, const sm_chat_jinja_params *p, const caps *k, long long now) {
    const sm_chat_message msgs[2] = {{"user", "Hey"}, {"assistant", ""}};
    const sm_chat_value *x[2] = {NULL, k->object_args ? &X_EX_OBJ : &X_EX_STR};
    conv c1 = {msgs, NULL, 1, NULL}, c2 = {msgs, x, 2, NULL};
    char *prefix = NULL, *full = NULL, *ex = NULL;
    size_t pl = 0, fl = 0;
    if (render(tmpl, &c1, p, now, 1, polyfills(k, &c1), NULL, &prefix, &pl, NULL) == SM_OK &&
        render(tmpl, &c2, p, now, 0, polyfills(k, &c2), NULL, &full, &fl, NULL) == SM_OK) {
        /* a trailing EOS (before a last newline) that ends the call is dropped, as minja does */
        const char *eos = p->eos_token ? p->eos_token : "";
        size_t en = strlen(eos), last = (size_t)-1;
        for (size_t i = 0; i + en <= fl; i++)
            if (!memcmp(full + i, eos, en)) last = i;
        if (last != (size_t)-1 &&
            ((pl >= en && last == pl - en) || (fl && full[fl - 1] == '\n' && fl >= en + 1 && last == fl - en - 1)))
            fl = last;
        size_t common = 0;
        for (size_t i = 0; i < pl && i < fl; i++) {
            if (prefix[i] != full[i]) break;
            if (prefix[i] == '<') continue;   /* minja: a diverging tag's '<' stays in the example */
            common = i + 1;
        }
        size_t n = fl - common;
        if ((ex = malloc(n + 1))) {
            memcpy(ex, full + common, n);
            ex[n] = '\0';
            if (!strstr(ex, "tool_name") && !strstr(ex, "some_value")) {
                free(ex);
                ex = NULL;
            }
        }
    }
    free(prefix);
    free(full);
    return ex;
}

static int starts_with(const char *s, size_t n, const char *p) {
    size_t pn = strlen(p);
    return pn && pn <= n && !memcmp(s, p, pn);
}

/* keep_eos: a trailing EOS text stays (training data, where it ends the
 * last reply and is learnt with it) */
static sm_status apply_jinja(const char *tmpl, const sm_chat_message *msgs, size_t n, const sm_chat_jinja_params *params,
                             int keep_eos, char *buf, size_t cap, size_t *len, sm_error *err) {
    if (len) *len = 0;
    if (!tmpl) return sm_fail(err, SM_ERR_INVALID_ARG, "no chat template given");
    sm_chat_jinja_params p = params ? *params : sm_chat_jinja_default_params();
    sm_status st = sm_chat_check_messages(msgs, n, 0, err);
    if (st != SM_OK) return st;
    conv c = {msgs, p.extras, n, p.tools};
    /* the tool capabilities are probed when anything asks for them: tools, a message's extra fields, or a
     * tool's result (a "tool" message alone: a template that writes them gets it as it is, as minja's) */
    int tool_use = p.tools != NULL;
    for (size_t i = 0; i < n; i++) tool_use |= (p.extras && p.extras[i] != NULL) || !strcmp(msgs[i].role, "tool");
    caps k;
    probe(tmpl, &p, tool_use, &k);
    unsigned poly = polyfills(&k, &c);
    long long now = p.now < 0 ? (long long)time(NULL) : p.now;
    char *example = poly & SM_JINJA_POLY_TOOLS ? tool_call_example(tmpl, &p, &k, now) : NULL;
    char *out = NULL;
    size_t olen = 0;
    /* the further variables only here: minja's probes run without them */
    sm_jinja_ctx ctx = {c.msgs, c.n, p.add_assistant, p.bos_token, p.eos_token, now, c.tools, c.extras, poly, example, p.vars};
    st = sm_jinja_render(tmpl, strlen(tmpl), &ctx, &out, &olen, err);
    free(example);
    if (st != SM_OK) return st;
    size_t a = 0, b = olen;
    if (p.bos_token && starts_with(out, olen, p.bos_token)) a = strlen(p.bos_token);
    if (p.eos_token && !keep_eos) {
        size_t en = strlen(p.eos_token);
        if (en && en <= b - a && !memcmp(out + b - en, p.eos_token, en)) b -= en;
    }
    if (buf && cap > b - a) memcpy(buf, out + a, b - a);
    free(out);
    return sm_chat_finish(buf, cap, b - a, len, err);
}

sm_status sm_chat_apply_jinja(const char *tmpl, const sm_chat_message *msgs, size_t n,
                              const sm_chat_jinja_params *params, char *buf, size_t cap, size_t *len, sm_error *err) {
    return apply_jinja(tmpl, msgs, n, params, 0, buf, cap, len, err);
}

/* A token's text as the template sees it, NUL-terminated (NULL = none). */
static char *token_text(const sm_model *model, sm_token t) {
    const char *s;
    int n = t >= 0 ? sm_token_text(model, t, &s) : -1;
    if (n < 0) return NULL;
    char *c = malloc((size_t)n + 1);
    if (c) {
        memcpy(c, s, (size_t)n);
        c[n] = '\0';
    }
    return c;
}

static sm_status format_model(const sm_model *model, const char *tmpl, const sm_chat_message *msgs, size_t n,
                              const sm_chat_value *const *extras, const sm_chat_value *tools, const sm_chat_value *vars,
                              int add_assistant, int keep_eos, long long now, char *buf, size_t cap, size_t *len,
                              sm_error *err) {
    if (len) *len = 0;
    char *text = NULL;
    if (!tmpl && model) {
        const char *t = NULL;
        size_t tl = 0;
        if (sm_model_meta_str(model, "tokenizer.chat_template", &t, &tl) == 1 && tl > 0) {
            if (!(text = malloc(tl + 1))) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
            memcpy(text, t, tl);
            text[tl] = '\0';
            tmpl = text;
        }
    }
    /* no template: the built-in chatml, or with tools or extra fields (which
     * only a template run as Jinja sees) ChatML's Jinja text */
    if (!tmpl && !tools && !extras && !vars) return sm_chat_apply("chatml", msgs, n, add_assistant, buf, cap, len, err);
    if (!tmpl) tmpl = sm_chat_chatml_jinja();
    sm_chat_jinja_params p = sm_chat_jinja_default_params();
    p.add_assistant = add_assistant;
    p.now = now;
    p.tools = tools;
    p.extras = extras;
    p.vars = vars;
    char *bos = NULL, *eos = NULL;
    if (model) {
        sm_model_info info;
        sm_model_get_info(model, &info);
        bos = token_text(model, info.bos);
        eos = token_text(model, info.eos);
    }
    p.bos_token = bos;
    p.eos_token = eos;
    sm_status st = apply_jinja(tmpl, msgs, n, &p, keep_eos, buf, cap, len, err);
    free(bos);
    free(eos);
    free(text);
    return st;
}

sm_status sm_chat_format_jinja(const sm_model *model, const char *tmpl, const sm_chat_message *msgs, size_t n,
                               int add_assistant, char *buf, size_t cap, size_t *len, sm_error *err) {
    return format_model(model, tmpl, msgs, n, NULL, NULL, NULL, add_assistant, 0, -1, buf, cap, len, err);
}

sm_status sm_chat_format_jinja_ex(const sm_model *model, const char *tmpl, const sm_chat_message *msgs, size_t n,
                                  int add_assistant, int keep_eos, long long now, char *buf, size_t cap, size_t *len,
                                  sm_error *err) {
    return format_model(model, tmpl, msgs, n, NULL, NULL, NULL, add_assistant, keep_eos, now, buf, cap, len, err);
}

sm_status sm_chat_format_jinja_tools(const sm_model *model, const char *tmpl, const sm_chat_message *msgs, size_t n,
                                     const sm_chat_value *const *extras, const sm_chat_value *tools,
                                     const sm_chat_value *vars, int add_assistant, char *buf, size_t cap, size_t *len,
                                     sm_error *err) {
    return format_model(model, tmpl, msgs, n, extras, tools, vars, add_assistant, 0, -1, buf, cap, len, err);
}

int sm_chat_jinja_parallel_calls(const char *tmpl) {
    if (!tmpl) return 0;
    sm_chat_jinja_params p = sm_chat_jinja_default_params();
    caps k;
    probe(tmpl, &p, 1, &k);
    return k.parallel;
}

const char *sm_chat_chatml_jinja(void) {
    return "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
           "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
           "{% endif %}";
}

sm_status sm_chat_jinja_template(const sm_model *model, const char *tmpl, char **text, sm_error *err) {
    *text = NULL;
    size_t n;
    const char *const *names = sm_chat_template_names(&n);
    for (size_t i = 0; tmpl && i < n; i++)
        if (!strcmp(tmpl, names[i])) return SM_OK;
    const char *src = tmpl;
    size_t len = tmpl ? strlen(tmpl) : 0;
    if (!tmpl && (!model || sm_model_meta_str(model, "tokenizer.chat_template", &src, &len) != 1 || len == 0))
        return SM_OK;
    char *t = malloc(len + 1);
    if (!t) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    memcpy(t, src, len);
    t[len] = '\0';
    const sm_chat_message hello = {"user", "Hello"};
    size_t need;
    sm_status st = sm_chat_format_jinja(model, t, &hello, 1, 1, NULL, 0, &need, err);
    if (st != SM_OK) {
        free(t);
        sm_error_prefix(err, "the chat template cannot be run as Jinja");
        return st;
    }
    *text = t;
    return SM_OK;
}

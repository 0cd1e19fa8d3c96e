/* test_server_tools.c - how `serve --jinja` reads a reply in each of
 * llama.cpp's tool-call formats (src/server/tools.c, tools_message): the
 * replies of tests/refs/chat_parse/replies.json (DeepSeek R1's and Command
 * R7B's also as --reasoning-format none reads them) against what llama.cpp
 * c392e509's common_chat_parse makes of them (replies.jsonl, recorded by
 * tests/refs/chat_parse/make_refs.sh), as llama-server turns that into a
 * message: content (null when empty beside calls), reasoning_content when
 * not empty, tool_calls with name and arguments. Ids: ours where llama.cpp
 * has none (it leaves them empty), else the same. A reply llama.cpp cannot
 * read (it throws) is here the reply's text as content, without calls.
 * Compiled empty without the server (Jansson and libmicrohttpd). */
#ifdef SM_HAVE_SERVER
#include "test.h"
#include "server/server.h"

#include <jansson.h>
#include <stdlib.h>

static const struct {
    const char *name;
    enum req_tool_format f;
    int builtin, keep_reasoning;
} FORMATS[] = {
    {"generic", REQ_TOOL_FORMAT_GENERIC, 0, 0},           {"hermes", REQ_TOOL_FORMAT_HERMES, 0, 0},
    {"llama3", REQ_TOOL_FORMAT_LLAMA_3_X, 0, 0},          {"llama3_builtin", REQ_TOOL_FORMAT_LLAMA_3_X, 1, 0},
    {"nemo", REQ_TOOL_FORMAT_MISTRAL_NEMO, 0, 0},         {"functionary31", REQ_TOOL_FORMAT_FUNCTIONARY_3_1, 0, 0},
    {"functionary32", REQ_TOOL_FORMAT_FUNCTIONARY_3_2, 0, 0}, {"firefunction", REQ_TOOL_FORMAT_FIREFUNCTION_2, 0, 0},
    {"r7b", REQ_TOOL_FORMAT_COMMAND_R7B, 0, 0},            {"deepseek_r1", REQ_TOOL_FORMAT_DEEPSEEK_R1, 0, 0},
    /* --reasoning-format none */
    {"r7b_none", REQ_TOOL_FORMAT_COMMAND_R7B, 0, 1},    {"deepseek_r1_none", REQ_TOOL_FORMAT_DEEPSEEK_R1, 0, 1},
};

/* the message llama-server writes for llama.cpp's reading w of text */
static json_t *expected(const json_t *w, const char *text) {
    if (json_object_get(w, "error")) return json_pack("{s:s, s:s}", "role", "assistant", "content", text);
    json_t *calls = json_object_get(w, "tool_calls"), *content = json_object_get(w, "content"),
           *reasoning = json_object_get(w, "reasoning_content");
    json_t *m = json_pack("{s:s}", "role", "assistant");
    if (json_string_length(reasoning)) json_object_set(m, "reasoning_content", reasoning);
    json_object_set_new(m, "content", json_array_size(calls) && !json_string_length(content) ? json_null()
                                                                                          : json_incref(content));
    if (json_array_size(calls)) json_object_set(m, "tool_calls", calls);
    return m;
}

/* ours against it: the same fields; each call's name and arguments, its id
 * where llama.cpp gives one, else one of ours (not empty, unique) */
static int same(json_t *got, json_t *want, char *why, size_t cap) {
    json_t *gc = json_object_get(got, "tool_calls"), *wc = json_object_get(want, "tool_calls");
    if (json_array_size(gc) != json_array_size(wc)) return snprintf(why, cap, "%zu calls, want %zu", json_array_size(gc),
                                                                    json_array_size(wc)), 0;
    for (size_t i = 0; i < json_array_size(wc); i++) {
        json_t *g = json_array_get(gc, i), *w = json_array_get(wc, i), *gf = json_object_get(g, "function");
        const char *wid = json_string_value(json_object_get(w, "id")), *gid = json_string_value(json_object_get(g, "id"));
        if (!json_equal(json_object_get(gf, "name"), json_object_get(w, "name")) ||
            !json_equal(json_object_get(gf, "arguments"), json_object_get(w, "arguments")) || !gid || !*gid ||
            (*wid && strcmp(gid, wid)) || strcmp(json_string_value(json_object_get(g, "type")), "function"))
            return snprintf(why, cap, "call %zu differs", i), 0;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(gid, json_string_value(json_object_get(json_array_get(gc, k), "id"))))
                return snprintf(why, cap, "ids %zu and %zu are the same", k, i), 0;
    }
    const char *keys[] = {"role", "content", "reasoning_content"};
    for (size_t k = 0; k < 3; k++)
        if (!json_equal(json_object_get(got, keys[k]), json_object_get(want, keys[k])) &&
            (json_object_get(got, keys[k]) || json_object_get(want, keys[k])))
            return snprintf(why, cap, "%s differs", keys[k]), 0;
    if (json_object_size(got) != json_object_size(want)) return snprintf(why, cap, "other fields"), 0;
    return 1;
}

TEST(server_reads_tool_calls_as_llama_cpp) {
    json_t *cases = json_load_file("tests/refs/chat_parse/replies.json", 0, NULL);
    size_t n = 0;
    char *lines = read_file("tests/refs/chat_parse/replies.jsonl", &n);
    REQUIRE(cases && lines);
    json_t *list = json_object_get(cases, "cases");
    char *line = lines;
    size_t checked = 0, errors = 0, streamed = 0;
    for (size_t i = 0; i < json_array_size(list); i++) {
        char *nl = strchr(line, '\n');
        REQUIRE(nl);
        *nl = '\0';
        json_t *w = json_loads(line, 0, NULL), *c = json_array_get(list, i);
        line = nl + 1;
        REQUIRE(w);
        const char *fname = json_string_value(json_object_get(c, "format")), *text = json_string_value(json_object_get(c, "text"));
        request r;
        memset(&r, 0, sizeof r);
        for (size_t k = 0; k < sizeof FORMATS / sizeof FORMATS[0]; k++)
            if (!strcmp(FORMATS[k].name, fname))
                r.tool_format = FORMATS[k].f, r.builtin_tools = FORMATS[k].builtin, r.keep_reasoning = FORMATS[k].keep_reasoning;
        REQUIRE(r.tool_format != REQ_TOOL_FORMAT_NONE);
        const char *finish = "stop";
        json_t *got = tools_message(&r, "chatcmpl-0123456789abcdef", text, strlen(text), &finish), *want = expected(w, text);
        char why[200] = "", *m = got ? json_dumps(got, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        CHECKF(got && same(got, want, why, sizeof why), "%s reply %s: %s\n    got  %s\n    want %s", fname, text, why,
               m ? m : "(none)", json_dumps(want, JSON_COMPACT));
        CHECKF(!strcmp(finish, json_array_size(json_object_get(want, "tool_calls")) ? "tool_calls" : "stop"),
               "%s reply %s: finish_reason %s", fname, text, finish);
        /* streamed (http.c): at every length of the reply so far, the text sent
         * as it stands is where llama.cpp's reading of the whole reply begins
         * (Llama 3.x and Functionary v3.1 drop the text beside calls, which a
         * stream has sent: there, only the text before the first call) */
        const char *wc = json_string_value(json_object_get(want, "content")),
                   *wr = json_string_value(json_object_get(want, "reasoning_content"));
        size_t len = strlen(text), before = len;
        int drops = json_array_size(json_object_get(want, "tool_calls")) &&
                    (r.tool_format == REQ_TOOL_FORMAT_LLAMA_3_X || r.tool_format == REQ_TOOL_FORMAT_FUNCTIONARY_3_1 ||
                     r.tool_format == REQ_TOOL_FORMAT_DEEPSEEK_R1);
        if (drops) {   /* (DeepSeek R1's calls: after its thinking) */
            const char *t = strstr(text, "</think>") ? strstr(text, "</think>") + 8 : text, *at = strpbrk(t, "{<");
            before = at ? (size_t)(at - text) : len;
        }
        /* DeepSeek R1: also as after a prompt that opened the thinking (where the reply closes it) */
        int opens = r.tool_format == REQ_TOOL_FORMAT_DEEPSEEK_R1 && strstr(text, "</think>");
        for (int pass = 0; pass <= opens; pass++) {
            r.think_open = pass;
            for (size_t k = 0; k <= len; k++) {
                tools_spans sp;
                tools_stream_spans(&r, text, k, 0, &sp);
                size_t nc = sp.content_to > sp.content_from ? sp.content_to - sp.content_from : 0,
                       nr = sp.reasoning_to > sp.reasoning_from ? sp.reasoning_to - sp.reasoning_from : 0;
                int ok = sp.content_to <= k && sp.reasoning_to <= k &&
                         (drops ? sp.content_to <= before
                                : wc ? nc <= strlen(wc) && !memcmp(wc, text + sp.content_from, nc) : !nc) &&
                         (wr ? nr <= strlen(wr) && !memcmp(wr, text + sp.reasoning_from, nr) : !nr);
                streamed += k == len && nc + nr > 0;
                CHECKF(ok, "%s reply %s: its first %zu bytes stream [%zu, %zu) as reasoning, [%zu, %zu) as content, not "
                       "the start of %s / %s", fname, text, k, sp.reasoning_from, sp.reasoning_to, sp.content_from,
                       sp.content_to, wr ? wr : "(none)", wc ? wc : "(null)");
                if (!ok) break;
            }
        }
        errors += json_object_get(w, "error") != NULL;
        checked++;
        free(m);
        json_decref(got);
        json_decref(want);
        json_decref(w);
    }
    CHECKF(streamed >= 10, "%zu whole replies streamed some text as it stands", streamed);
    CHECKF(checked == 62 && errors == 1, "%zu replies (%zu llama.cpp cannot read), want 62 (1)", checked, errors);
    free(lines);
    json_decref(cases);
}
#endif

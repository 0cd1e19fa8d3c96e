/* fuzz_server_util.c - libFuzzer target: llama-server's utility endpoints
 * of `smallmind serve` (src/server/util.c: POST /tokenize, /detokenize,
 * /apply-template) over the built-in chat model (models/kjv-chat-3m.gguf,
 * loaded once; run from the checkout's top directory, as tests/fuzz/run.sh
 * does).
 * Input: a byte choosing the endpoint, then the body. The server runs the
 * model's template as Jinja (--jinja), so /apply-template takes tools.
 * Checks, besides memory safety: every answer is a JSON document (Jansson
 * parses it back), 200 or 400 (500 only when out of memory), an error
 * naming a message. Bytes 3 and 4 read the rest as a reply with tools
 * (tools.c) in the format its first byte picks (llama.cpp's generic JSON,
 * Hermes, Llama 3.x with or without built-in tools, Mistral Nemo,
 * Functionary, Firefunction, Command R7B, DeepSeek R1): an assistant message
 * with a string or null content, a reasoning text or none, and
 * OpenAI-shaped tool calls. */
#include "server/server.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static server S;

static void check(int cond) {
    if (!cond) __builtin_trap();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    sm_error err = {0};
    if (sm_model_load("models/kjv-chat-3m.gguf", NULL, &S.model, &err) != SM_OK) {
        fprintf(stderr, "fuzz_server_util: run from the checkout's top directory: %s\n", err.message);
        exit(1);
    }
    sm_model_get_info(S.model, &S.info);
    S.opt.n_ctx = 256;
    S.opt.jinja = 1;
    if (sm_chat_jinja_template(S.model, NULL, &S.jinja, &err) != SM_OK) {
        fprintf(stderr, "fuzz_server_util: %s\n", err.message);
        exit(1);
    }
    return 0;
}

/* A reply with tools read back (and streamed): {"role": "assistant", "reasoning_content"?:
 * string, "content": string or null, "tool_calls": [{"type": "function",
 * "function": {"name", "arguments" (a string)}, "id"}]}, the calls there
 * only with a null content or text before them. */
static void reply(unsigned pick, const char *text, size_t len) {
    request r;
    memset(&r, 0, sizeof r);
    r.tool_format = (enum req_tool_format)(1 + pick % (REQ_TOOL_FORMATS - 1));
    r.builtin_tools = (pick / (REQ_TOOL_FORMATS - 1)) & 1;
    r.keep_reasoning = (pick / (2 * (REQ_TOOL_FORMATS - 1))) & 1;   /* --reasoning-format none */
    const char *finish = "stop";
    json_t *msg = tools_message(&r, "chatcmpl-0123456789abcdef", text, len, &finish);
    check(msg != NULL);
    /* it goes out as text: it must dump, and read back */
    char *m = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    check(m != NULL);
    json_t *o = json_loads(m, JSON_ALLOW_NUL, NULL);
    check(json_is_object(o) && json_is_string(json_object_get(o, "role")));
    json_t *content = json_object_get(o, "content"), *calls = json_object_get(o, "tool_calls"),
           *reasoning = json_object_get(o, "reasoning_content");
    check(!reasoning || (json_is_string(reasoning) && json_string_length(reasoning) > 0));
    check(json_is_string(content) || (json_is_null(content) && calls));
    check(!calls || (json_is_array(calls) && json_array_size(calls) > 0 && !strcmp(finish, "tool_calls")));
    for (size_t i = 0; calls && i < json_array_size(calls); i++) {
        json_t *c = json_array_get(calls, i), *fn = json_object_get(c, "function");
        check(json_is_string(json_object_get(c, "id")) && json_is_string(json_object_get(fn, "name")));
        /* arguments: a string (JSON text, or as some formats pass a string on, any text) */
        check(json_is_string(json_object_get(fn, "arguments")));
    }
    /* streamed: the parts that go out before the reply is read lie in its
     * text, the thinking before the content (where they begin as the reply
     * is read: tests/unit/test_server_tools.c; respond.c goes on as it
     * streamed where the reading differs) */
    r.think_open = (pick / (4 * (REQ_TOOL_FORMATS - 1))) & 1;
    tools_spans sp;
    for (int whole = 0; whole < 2; whole++) {
        tools_stream_spans(&r, text, len, whole, &sp);
        check(sp.reasoning_from <= sp.reasoning_to && sp.reasoning_to <= len && sp.content_from <= sp.content_to &&
              sp.content_to <= len);
        check(sp.reasoning_to == sp.reasoning_from || sp.content_to == sp.content_from ||
              sp.reasoning_to <= sp.content_from);
    }
    json_decref(o);
    free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] % 5 >= 3) {
        if (size < 2) return 0;
        reply(data[1], (const char *)data + 2, size - 2);
        return 0;
    }
    enum util_kind kind = (enum util_kind)(data[0] % 5);
    int status = 0;
    char *out = util_answer(&S, kind, (const char *)data + 1, size - 1, &status);
    check(out != NULL);
    check(status == 200 || status == 400 || status == 500);
    json_t *o = json_loads(out, JSON_ALLOW_NUL, NULL);  /* a piece may be the byte 0, "\u0000" */
    check(o != NULL && json_is_object(o));
    if (status != 200) {
        json_t *m = json_object_get(json_object_get(o, "error"), "message");
        check(json_is_string(m) && json_string_length(m) > 0);
    }
    json_decref(o);
    free(out);
    return 0;
}

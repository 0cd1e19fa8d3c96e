/* fuzz_server_util.c - libFuzzer target: llama-server's utility endpoints
 * of `smallmind serve` (src/server/util.c: POST /tokenize, /detokenize,
 * /apply-template) over the built-in chat model (models/kjv-chat-3m.gguf,
 * loaded once; run from the checkout's top directory, as tests/fuzz/run.sh
 * does).
 * Input: a byte choosing the endpoint, then the body.
 * Checks, besides memory safety: every answer is a JSON document (Jansson
 * parses it back), 200 or 400 (500 only when out of memory), an error
 * naming a message. */
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
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    enum util_kind kind = (enum util_kind)(data[0] % 3);
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

/* fuzz_server_responses.c - libFuzzer target: `smallmind serve`'s Responses
 * API (src/server/responses.c): a Responses request body to the chat body
 * it asks for (then parsed as the chat request it is), and chat answers
 * and chunks to a Response and its events.
 * Input: a byte choosing the side (even: a request; odd: an answer), then
 *   a request: the body;
 *   an answer: a whole chat completion up to the first NUL byte, then chat
 *   chunks separated by NUL bytes, each fed to one stream.
 * Checks, besides memory safety: a refused request names a 4xx/5xx status, a
 * type and a message; an accepted one gives a JSON object with a non-empty
 * "messages" array; every Response is a JSON object of object "response";
 * the stream is events "event: T\ndata: JSON\n\n" whose JSON has type T and
 * sequence numbers 0, 1, 2, ... in order. */
#include "server/request.h"
#include "server/responses.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void check(int cond) {
    if (!cond) __builtin_trap();
}

/* the events of a stream so far; *seq is the next sequence number */
static void check_events(const char *s, long *seq) {
    check(s != NULL);
    while (*s) {
        check(!strncmp(s, "event: ", 7));
        const char *type = s + 7, *nl = strchr(type, '\n');
        check(nl && !strncmp(nl, "\ndata: ", 7));
        const char *data = nl + 7, *end = strstr(data, "\n\n");
        check(end != NULL);
        json_t *ev = json_loadb(data, (size_t)(end - data), 0, NULL);
        check(json_is_object(ev));
        const char *t = json_string_value(json_object_get(ev, "type"));
        check(t && strlen(t) == (size_t)(nl - type) && !strncmp(t, type, (size_t)(nl - type)));
        check(json_integer_value(json_object_get(ev, "sequence_number")) == *seq);
        (*seq)++;
        json_decref(ev);
        s = end + 2;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    if (!(data[0] & 1)) {
        char *chat = NULL;
        void *echo = NULL;
        req_error e;
        memset(&e, 0, sizeof e);
        if (responses_request(body, len, &chat, &echo, &e)) {
            check(e.status >= 400 && e.status < 600 && e.type && e.message[0]);
            check(chat == NULL && echo == NULL);
            return 0;
        }
        json_t *c = json_loads(chat, 0, NULL);
        check(json_is_object(c) && json_array_size(json_object_get(c, "messages")) > 0);
        json_decref(c);
        req_limits lim = {256, 1000, data[0] & 2};
        request r;
        memset(&e, 0, sizeof e);
        if (request_parse(REQ_CHAT, chat, strlen(chat), &lim, &r, &e)) check(e.status >= 400 && e.status < 600);
        request_free(&r);
        char *whole = responses_answer("{\"id\":\"chatcmpl-1\",\"choices\":[{\"message\":{\"content\":\"x\"}}]}", echo);
        json_t *w = json_loads(whole, 0, NULL);
        check(json_is_object(w) && !strcmp(json_string_value(json_object_get(w, "object")), "response"));
        json_decref(w);
        free(whole);
        free(chat);
        responses_echo_free(echo);
        return 0;
    }
    /* the answer side: a completion, then chunks */
    char *copy = malloc(len + 1);
    if (!copy) return 0;
    memcpy(copy, body, len);
    copy[len] = '\0';
    char *whole = responses_answer(copy, NULL);
    if (whole) {
        json_t *w = json_loads(whole, 0, NULL);
        check(json_is_object(w) && !strcmp(json_string_value(json_object_get(w, "object")), "response"));
        json_decref(w);
        free(whole);
    }
    resp_stream *st = responses_stream_new(NULL);
    long seq = 0;
    size_t at = strlen(copy) + 1;
    while (st && at < len + 1) {
        char *chunk = copy + at;
        size_t n = strnlen(chunk, len - at);
        chunk[n] = '\0';
        char *ev = responses_stream_chunk(st, chunk);
        check_events(ev, &seq);
        free(ev);
        at += n + 1;
    }
    if (st) {
        char *ev = responses_stream_end(st);
        check_events(ev, &seq);
        free(ev);
        responses_stream_free(st);
    }
    free(copy);
    return 0;
}

/* responses.h - OpenAI's Responses API (POST /v1/responses) on top of the
 * chat path: a Responses request becomes a chat-completions request body,
 * and the chat answer (or its stream of chunks) becomes a Response object
 * (or the Responses stream's named events). Apart from the HTTP layer, so
 * that a fuzz target (tests/fuzz/fuzz_server_request.c) can drive the
 * request side alone. The format follows OpenAI's API reference for
 * Responses (the field and event names of the openai SDK's types). */
#ifndef SM_SERVER_RESPONSES_H
#define SM_SERVER_RESPONSES_H

#include <stddef.h>
#include "request.h"

/* A Responses request body of len bytes as a chat-completions body (a
 * NUL-terminated string, malloc'd, in *chat) and the request fields a
 * Response echoes (*echo, a json_t * to pass to the functions below and
 * release with responses_echo_free). Returns 0, or -1 with e set: 400 for
 * every problem with the body (a stored conversation, a tool or input kind
 * other than functions and text), 500 when out of memory. */
int responses_request(const char *body, size_t len, char **chat, void **echo, req_error *e);
void responses_echo_free(void *echo);

/* A whole chat completion (resp_completion's JSON) as a Response object;
 * NULL when out of memory. */
char *responses_answer(const char *completion, const void *echo);

/* The stream: each chat chunk (resp_chunk's JSON, or an error object)
 * becomes zero or more Server-Sent Events "event: TYPE\ndata: JSON\n\n",
 * returned as one malloc'd string ("" when none; NULL when out of memory);
 * responses_stream_end gives the closing events (the text and the calls
 * done, response.completed with the whole Response). */
typedef struct resp_stream resp_stream;
resp_stream *responses_stream_new(const void *echo);
char *responses_stream_chunk(resp_stream *st, const char *chunk);
char *responses_stream_end(resp_stream *st);
void responses_stream_free(resp_stream *st);

#endif

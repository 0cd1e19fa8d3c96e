/* respond.h - the JSON documents the server answers with, in the shapes of
 * OpenAI's API reference (chat.completion, chat.completion.chunk,
 * text_completion, list of models, list of embeddings, error objects),
 * made with Jansson. Each returns text to free(), or NULL when out of
 * memory. */
#ifndef SM_SERVER_RESPOND_H
#define SM_SERVER_RESPOND_H

#include "server.h"

#include <jansson.h>

/* The document as compact text (it is released); NULL for NULL. */
char *resp_dump(json_t *o);
/* n bytes as a JSON string, every byte that is not part of a whole UTF-8
 * character made U+FFFD (text_utf8_fix); NULL when out of memory. */
json_t *resp_utf8_string(const char *s, size_t n);

/* A token as text, as llama.cpp's token_to_piece with special tokens
 * shown: its bytes, or (a control token, which has none) its vocabulary
 * text; returns the length (0 for an id that is not a token). */
int resp_token_text(const server *S, sm_token tok, const char **piece);

char *resp_error(int status, const char *type, const char *param, const char *message);
char *resp_models(const server *S);
/* GET /v1/models/ID: the model object when ID is the served model's, else
 * OpenAI's 404 (code model_not_found); *status is set. */
char *resp_model(const server *S, const char *id, int *status);
/* A finished job's whole answer (chat.completion or text_completion). */
char *resp_completion(const server *S, const job *j);
/* One streamed chunk: the assistant role (chat's first chunk), a piece of
 * text, the finish reason (text NULL), or with usage set the closing usage
 * chunk (no choices). with_usage: chunks carry "usage": null (the client
 * asked for stream_options.include_usage). With logprobs asked for, the
 * chunk carries the job's entries [lp_from, lp_to) (null when none). */
char *resp_chunk(const server *S, const job *j, const char *text, size_t len, int role, const char *finish,
                 int usage, int with_usage, int lp_from, int lp_to);
/* A streamed reply that is read back (job_reads_back): what went out as it
 * stood, the text [r_from, r_from + n_r) as reasoning_content and [c_from,
 * c_from + n_c) as content. */
typedef struct resp_sent {
    size_t r_from, n_r, c_from, n_c;
} resp_sent;
/* The chunk with the parts of the reply's text that are reasoning or
 * content as they stand (tools_stream_spans) and were not sent yet, or NULL
 * when none are new (or out of memory); sent follows. */
char *resp_stream_chunk(const server *S, const job *j, const tools_spans *sp, resp_sent *sent);
/* Once done: the chunk with what the stream has not sent yet (the read
 * reply's reasoning and content past the text sent of them, the tool calls
 * with their places as "index"), or NULL when there is nothing (or out of
 * memory); *finish the reply's finish reason ("tool_calls" with calls). */
char *resp_read_back_chunk(const server *S, const job *j, resp_sent *sent, const char **finish);
char *resp_embeddings(const server *S, const job *j);
/* llama-server's own API (c392e509's shapes): /completion's answer, whole
 * or (streamed) its closing chunk, with content "" and the probabilities
 * not sent yet; a streamed piece of text (and its tokens' probabilities
 * [lp_from, lp_to) with n_probs); GET /props. now: the time (now_seconds)
 * the timings end at. */
char *resp_native(const server *S, const job *j, int streamed, double now);
char *resp_native_chunk(const server *S, const job *j, const char *text, size_t len, int lp_from, int lp_to);
char *resp_props(const server *S);

#endif

/* request.h - an OpenAI API request body (JSON, read with Jansson) turned
 * into the parameters the server runs: /v1/chat/completions,
 * /v1/completions and /v1/embeddings. Apart from the HTTP layer, so that a
 * fuzz target (tests/fuzz/fuzz_server_request.c) can drive it alone.
 * response_format's JSON Schema becomes a grammar here (src/json's
 * converter, then sm_grammar_parse), so a bad schema is the request's 400. */
#ifndef SM_SERVER_REQUEST_H
#define SM_SERVER_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include "smallmind.h"
#include "json/schema_conv.h"

enum req_kind { REQ_CHAT, REQ_COMPLETION, REQ_EMBEDDING };

#define REQ_MAX_STOP_OPENAI 4   /* OpenAI's limit */
#define REQ_MAX_STOP 16         /* llama-server's /completion (its own API) */
#define REQ_MAX_STOP_BYTES 256  /* each */
#define REQ_MAX_TOP_LOGPROBS 20    /* chat's top_logprobs (OpenAI's limit) */
#define REQ_MAX_LOGPROBS_LEGACY 5  /* completions' logprobs (OpenAI's limit) */

/* What the server allows; the parser checks against it. */
typedef struct req_limits {
    int n_ctx;                  /* max_tokens may not exceed it */
    int n_vocab;                /* token ids in a prompt or input */
    int jinja;                  /* the template runs as Jinja (--jinja): tools are allowed */
} req_limits;

enum req_tool_choice { REQ_TOOLS_AUTO, REQ_TOOLS_NONE, REQ_TOOLS_REQUIRED };
/* how a reply calls tools (tools.c's table, llama.cpp's chat formats) */
enum req_tool_format {
    REQ_TOOL_FORMAT_NONE, REQ_TOOL_FORMAT_GENERIC, REQ_TOOL_FORMAT_HERMES, REQ_TOOL_FORMAT_LLAMA_3_X,
    REQ_TOOL_FORMAT_MISTRAL_NEMO, REQ_TOOL_FORMAT_FUNCTIONARY_3_1, REQ_TOOL_FORMAT_FUNCTIONARY_3_2,
    REQ_TOOL_FORMAT_FIREFUNCTION_2, REQ_TOOL_FORMAT_COMMAND_R7B, REQ_TOOL_FORMAT_DEEPSEEK_R1, REQ_TOOL_FORMATS
};

/* An API error: HTTP status, OpenAI's error type, the parameter at fault
 * (or ""), a one-line message. */
typedef struct req_error {
    int status;
    const char *type;           /* "invalid_request_error", ... (static) */
    char param[48];
    char message[300];
} req_error;

/* A prompt: text, or token ids (completions and embeddings accept both). */
typedef struct req_prompt {
    const char *text;           /* points into the document, or NULL */
    size_t len;
    sm_token *tokens;           /* owned, when given as ids */
    size_t n_tokens;
} req_prompt;

typedef struct req_params {
    int stream, include_usage;
    int max_tokens;             /* -1: until an end token or the context is full */
    float temperature, top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty;
    int top_k, repeat_last_n;
    int ignore_eos;             /* llama.cpp's extension: end-of-generation tokens do not end it */
    int has_seed;
    uint64_t seed;
    int logprobs;               /* report each generated token's log probability */
    int top_logprobs;           /* and this many likeliest alternatives at its place */
    /* point into the document; two more for the server's own (the template's
     * end-of-turn text, a tool format's end-of-message text) */
    const char *stop[REQ_MAX_STOP + 2];
    int n_stop;
} req_params;

typedef struct request {
    enum req_kind kind;
    int native;                 /* llama-server's own /completion (request_parse_native) */
    req_params p;
    /* chat: the conversation (roles and contents point into the document or into owned) */
    sm_chat_message *msgs;
    size_t n_msgs;
    /* completion: one prompt; embeddings: one or more inputs */
    req_prompt *prompts;
    size_t n_prompts;
    int base64;                 /* embeddings: encoding_format "base64" */
    /* response_format json_object / json_schema: the grammar the output
     * follows and this request's matcher over it (NULL: free text) */
    sm_grammar *grammar;
    sm_grammar_matcher *matcher;
    const char *grammar_text;   /* its GBNF text (owned), or NULL */
    void *doc;                  /* the parsed document (json_t *) */
    char **owned;               /* strings and values made here (joined content parts, tools) */
    size_t n_owned;
    /* chat with tools (--jinja only): the tools offered as the template sees
     * them ({"type", "function": {"name", "description", "parameters"}}),
     * and each message's fields beside role and content (name, tool_call_id,
     * tool_calls, a null content), or NULL */
    sm_chat_value *tools;       /* NULL: none offered */
    const sm_chat_value **extras;
    enum req_tool_choice tool_choice;
    int parallel_tool_calls;
    enum req_tool_format tool_format;   /* set by tools_prepare */
    int builtin_tools;          /* Llama 3.x: the reply may call a built-in tool (<|python_tag|>) */
    int keep_reasoning;         /* --reasoning-format none: a reply's thinking stays in its content */
    int think_open;             /* the prompt opened the reply's thinking (tools_reply_start) */
    const sm_chat_value *vars;  /* further template variables of the format (owned), or NULL */
    int tools_hidden;           /* the template is not given the tools (Firefunction: they are in vars) */
    /* a lazy grammar (tool_choice "auto", as llama.cpp's): the matcher holds
     * the reply only once it writes one of these words, from the word on
     * (tools_trigger watches the reply's text meanwhile) */
    const char **triggers;
    size_t n_triggers;
    int awaiting;               /* no trigger word yet */
    sm_sbuf trigger_text;       /* the reply so far, while awaiting */
    void **docs;                /* the tool calls' arguments read as JSON (json_t *) */
    size_t n_docs;
} request;

/* Parses a body of len bytes (need not be NUL-terminated). Returns 0 and
 * fills r, or -1 with e set (status 400 for every problem with the body,
 * 500 when out of memory). r is always safe to pass to request_free. */
int request_parse(enum req_kind kind, const char *body, size_t len, const req_limits *lim, request *r, req_error *e);
/* llama-server's own POST /completion (its "native" API): a completion
 * with llama.cpp's sampling defaults (temperature 0.8, top_k 40, top_p
 * 0.95, min_p 0.05, n_predict -1), "n_predict" (or max_tokens), "n_probs"
 * (the likeliest tokens at each place), "grammar" (GBNF), "json_schema",
 * up to REQ_MAX_STOP stop strings, a seed of -1 for a random one; its other
 * sampling options (mirostat, DRY, XTC, ...) are not read. */
int request_parse_native(const char *body, size_t len, const req_limits *lim, request *r, req_error *e);
/* llama-server's POST /infill: /completion's parameters, "input_prefix"
 * and "input_suffix" (required: text, or an array of text and token ids),
 * "input_extra" (optional: [{"text", "filename"?}]) and an optional text
 * "prompt" (r->prompts[0], "" when absent); infill.c builds the prompt. */
int request_parse_infill(const char *body, size_t len, const req_limits *lim, request *r, req_error *e);
void request_free(request *r);

/* Grammar text to the request's grammar and matcher: 0, or -1 with e set
 * (a 400 naming param when the text is refused). */
int req_grammar(request *r, const char *text, const char *param, req_error *e);

/* The matcher that holds the reply now: NULL without a grammar and while a
 * lazy one awaits its trigger word. */
static inline sm_grammar_matcher *req_matcher(const request *r) { return r->awaiting ? NULL : r->matcher; }

/* len zeroed bytes (and one more) freed with the request; NULL when out of memory. */
void *req_own(request *r, size_t len);

/* Fills an error (printf-style message); returns -1. */
int req_fail(req_error *e, int status, const char *type, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif

/* server.h - `smallmind serve`: an OpenAI-compatible HTTP server (GNU
 * libmicrohttpd for HTTP, Jansson for JSON) over one loaded model with
 * parallel slots and continuous batching.
 *
 *   http.c     the HTTP layer: routes, bodies, API key, streaming (suspend/resume)
 *   sched.c    slots, the queue and the scheduler thread: every step one
 *              batched forward pass (sm_session_eval_batch) over all slots
 *   text.c     a slot's text: whole UTF-8 characters, stop strings held back
 *   respond.c  the JSON documents the API answers with
 *   request.c  request bodies to parameters (fuzzed on its own)
 *   tools.c    tool calling (--jinja): the reply's format, grammar and tool calls
 *   metrics.c  counters and histograms in Prometheus's text format
 *   page.html  the chat page at / (compiled in as a string) */
#ifndef SM_SERVER_SERVER_H
#define SM_SERVER_SERVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "smallmind.h"
#include "request.h"
#include "metrics.h"

typedef struct server_options {
    const char *model_path, *tokenizer_path, *host, *alias, *api_key, *chat_template, *kernels;
    int jinja;                  /* run the chat template as Jinja (--jinja) */
    int reasoning_none;         /* --reasoning-format none: thinking stays in the content */
    int spm_infill;             /* --spm-infill: /infill's prompt puts the suffix before the prefix */
    int port, parallel, n_ctx, max_queue, timeout, threads;
    int type_k, type_v;         /* the slots' KV cache types (sm_kv_type: -ctk, -ctv) */
    int no_mmap;                /* --no-mmap: the model file read into memory, not mapped */
    size_t max_body;
    int load_delay_ms;          /* tests: wait this long before loading (to see 503s) */
    int trace_requests;         /* keep the timing of the last N requests for /debug/trace (0: off) */
    /* LoRA adapters (--lora, --lora-scaled) applied to every request */
    int n_lora;
    const char *lora_path[8];
    float lora_scale[8];
} server_options;

/* Runs until SIGTERM or SIGINT; returns the exit status. */
int server_run(const server_options *o);

/* ------------------------------------------------ inside the server */

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

/* The generated text a streaming job may hold before its slot waits for
 * the client to read (a slow reader never stalls the other slots). */
#define JOB_TEXT_CAP 1024

struct MHD_Connection;

/* A generated token's log probability (logprobs.c), its text starting at
 * offset in the bytes of the generated tokens' pieces. */
typedef struct lp_entry {
    sm_token tok;
    float logprob;
    size_t offset;
} lp_entry;

/* One API request that needs the model. Made by the HTTP side, run by the
 * scheduler; freed when both have let go (refs). Fields below `refs` are
 * guarded by the server's mutex. */
typedef struct job {
    enum req_kind kind;
    request req;
    sm_token *prompt;           /* chat, completion: the prompt's tokens */
    int n_prompt;
    sm_token **inputs;          /* embeddings: each input's tokens */
    int *n_inputs, n_in;
    char id[48];
    long created;
    double t_arrival;

    int refs;
    enum job_state state;
    int cancelled;              /* the client has gone */
    struct MHD_Connection *conn;
    int suspended;              /* conn is suspended until there is news */
    char *text;                 /* generated text not yet taken (streaming) or all of it */
    size_t text_len, text_cap;
    int blocked;                /* its slot waits for the reader to take text */
    const char *finish_reason;  /* "stop" or "length" when done */
    int stop_eos;               /* it ended at an end-of-generation token (or its grammar's end) */
    int has_new_line;           /* its text has held a line break */
    const char *stop_word;      /* the stop string that ended it, or NULL */
    int n_gen, n_cached;
    double t_first;             /* when the first token came (0: not yet) */
    double t_start;             /* when a slot took it (0: not yet) */
    int slot_index;             /* the slot that ran it (-1: none yet) */
    int err_status;             /* failed after it was accepted */
    char err_msg[600];
    /* logprobs: an entry per generated token (n_lp, lp_sent of them sent by a
     * stream), and req.p.top_logprobs alternatives each (ids and values) */
    lp_entry *lp;
    sm_token *lp_top_tok;
    float *lp_top;
    int n_lp, lp_cap, lp_sent;
    size_t gen_bytes;           /* bytes of the generated tokens' pieces so far */
    size_t text_total;          /* bytes ever appended to text */
    float *embd;                /* embeddings: n_in x dim */
    int n_embd_tokens;
    struct job *next;           /* in the queue */
} job;

/* A slot's text: bytes of an incomplete UTF-8 character, and text held
 * back because it could be the start of a stop string. */
typedef struct text_state {
    unsigned char raw[8];
    int raw_len;
    char *hold;
    size_t hold_len, hold_cap;
} text_state;

enum slot_state { SLOT_IDLE, SLOT_PROMPT, SLOT_GEN };

typedef struct slot {
    sm_session *s;
    job *j;
    enum slot_state state;
    int n_done;                 /* prompt tokens in the session */
    sm_token next;              /* SLOT_GEN: the sampled token to evaluate next */
    sm_sampler_params sp;
    text_state txt;
    uint64_t last_used;
} slot;

/* One finished request's timing, for /debug/trace. */
typedef struct req_trace {
    char id[48];
    const char *kind;           /* "chat", "completion" */
    const char *finish;         /* "stop", "length", "cancelled" */
    int slot, n_prompt, n_cached, n_gen;
    double t_arrival, t_start, t_first, t_end;
} req_trace;

typedef struct server {
    server_options opt;
    pthread_mutex_t mu;
    pthread_cond_t wake;        /* the scheduler waits for work */
    pthread_cond_t idle;        /* a job was freed (shutdown waits for none) */
    int loaded, load_failed, stopping, quit;
    char load_error[640];
    sm_model *model;
    sm_model_info info;
    char model_id[256];
    const char *tmpl;           /* the chat template argument (NULL: the model's) */
    char *jinja;                /* --jinja: the template run as Jinja (NULL: a built-in format) */
    sm_token eog[4];            /* tokens that end a reply */
    int n_eog;
    size_t max_piece;           /* the longest token text, to bound prompt sizes */
    sm_grammar_vocab *gvocab;   /* the vocabulary for response_format's grammars (one per model) */
    sm_session *ws;             /* the workspace the batches run on (and embeddings) */
    sm_adapter *lora[8];        /* the options' adapters, loaded against the model */
    slot *slots;
    int n_slots, n_busy;
    job *queue_head, *queue_tail;
    int queue_len, n_jobs;
    uint64_t steps, seed_state, use_clock;
    struct MHD_Daemon *daemon;
    int listen_fd;              /* after MHD_quiesce_daemon: closed once the daemon stops */
    pthread_t sched_thread;
    int sched_started;
    metrics m;
    req_trace *traces;          /* a ring of the last opt.trace_requests requests */
    uint64_t n_traced;          /* requests recorded in all */
    double t_origin;            /* the trace's time zero (the server's start) */
    struct MHD_Connection **resume;   /* the scheduler's list of connections to wake */
    int resume_cap;
} server;

double now_seconds(void);

/* sched.c */
int sched_start(server *S);
void sched_stop(server *S);
/* Queues a job (the caller's reference stays); 0, or the HTTP status of
 * why not (429 queue full, 503 shutting down). With the mutex held. */
int sched_submit(server *S, job *j);
/* Drops a reference; frees the job on the last. With the mutex held. */
void job_release(server *S, job *j);
job *job_new(enum req_kind kind);
/* logprobs.c: records the log probability of tok under logits (the
 * model's distribution: a softmax of the raw logits, before temperature,
 * penalties or truncation) and the job's top_logprobs likeliest tokens
 * there; 0, or -1 when out of memory. */
int lp_record(job *j, const float *logits, int n_vocab, sm_token tok);
/* The entries whose text has been appended to the job's text (all of them
 * once the job is done): what a stream may send now. */
int lp_ready(const job *j);
/* After a stop string: drops the entries whose text was cut with it. */
void lp_trim(job *j);

/* Wakes the scheduler (a slot's reader took text, a client left). */
void sched_poke(server *S);

/* text.c: a generated token's bytes into the job's text. */
void text_reset(text_state *t);
void text_free(text_state *t);
/* Adds bytes; moves what can no longer be part of a stop string to the
 * job. Returns 1 + the index in p->stop of the stop string matched (the
 * text before it has been moved; the rest is dropped), else 0. */
int text_add(text_state *t, const char *piece, size_t len, const req_params *p, job *j);
/* At the end: whatever is held is text (an incomplete character becomes U+FFFD). */
void text_flush(text_state *t, job *j);
/* The length of the UTF-8 character at p (n bytes there): its length when
 * whole and valid, 0 when cut short but could still be valid, -1 when it
 * cannot be valid. */
int text_utf8_char(const unsigned char *p, size_t n);
/* Copies n bytes to out (room for 3n + 1) with every byte that is not part
 * of a whole UTF-8 character replaced by U+FFFD; NUL-terminates; returns
 * the length. */
size_t text_utf8_fix(const char *in, size_t n, char *out);
/* Appends to the job's text; 0, or -1 when out of memory. */
int job_append(job *j, const char *s, size_t n);

/* respond.c: the ring as Chrome trace-event JSON (Perfetto, chrome://tracing). */
char *resp_trace(const server *S);

/* http.c */
int http_start(server *S);
void http_quiesce(server *S);
void http_stop(server *S);

/* A chat request's messages formatted with the chat template, generation
 * prompt included (util.c; a chat job's prompt and /apply-template's
 * answer): 0 and *out (to free), or -1 with e set. */
int chat_text(const server *S, const request *r, char **out, size_t *len, req_error *e);

/* tools.c: a chat request with tools (--jinja): the reply's format, the
 * prompt's extra system text and the grammar (0, or -1 with e set); and,
 * once the reply is done, the reply read back as
 * an assistant message with any tool calls (a Jansson object; NULL when
 * out of memory; calls
 * without an id get one from reply_id; *finish becomes "tool_calls" when
 * it has some). */
int tools_prepare(const server *S, request *r, req_error *e);
/* The formatted prompt as the request's tool format mends it (DeepSeek R1's
 * own template): text (malloc'd) or a mended copy with text freed. */
char *tools_prompt(const server *S, const request *r, char *text, size_t *len);
/* A token's text while a lazy grammar awaits its trigger: once the reply
 * holds a trigger word, the matcher takes the text from the word on and
 * holds the rest of the reply (a text it refuses drops the grammar). */
void tools_trigger(request *r, const char *piece, size_t len);
struct json_t *tools_message(const request *r, const char *reply_id, const char *text, size_t len, const char **finish);
/* A streamed reply so far (len bytes): the bytes that are its reasoning and
 * its content as they stand, whatever follows ([reasoning_from,
 * reasoning_to), then [content_from, content_to); empty for a format whose
 * replies are read only whole); the rest waits for the reply's end. whole:
 * the reply was cut short (as llama-server, the text is not read back): all
 * of it goes on in the part it was in. */
typedef struct tools_spans {
    size_t reasoning_from, reasoning_to, content_from, content_to;
} tools_spans;
void tools_stream_spans(const request *r, const char *text, size_t len, int whole, tools_spans *s);
/* The prompt as formatted: whether it leaves the reply thinking (DeepSeek R1
 * distills' templates end with "<think>"). */
void tools_reply_start(request *r, const char *prompt, size_t len);
/* A chat reply that is read back when done (a tool format is set): a stream
 * sends what tools_stream_ready allows as it comes, the rest once read. */
static inline int job_reads_back(const job *j) { return j->kind == REQ_CHAT && j->req.tool_format != REQ_TOOL_FORMAT_NONE; }

/* util.c: a growing array of token ids (free ids), filled from text (flags
 * as sm_tokenize_ex's), ids, or llama-server's mixed prompts (a string, or
 * an array of strings and ids; SM_TOKENIZE_ADD_BOS applies before the
 * first element only if it is a string). Each returns 0, or -1 with msg
 * (the request's fault, naming param) or -2 (out of memory). */
typedef struct tok_list {
    sm_token *ids;
    size_t n, cap;
} tok_list;
int tok_add_ids(tok_list *t, const sm_token *ids, size_t n, char *msg, size_t msg_size);
int tok_add_text(const server *S, tok_list *t, const char *s, size_t len, int flags, const char *param, char *msg,
                 size_t msg_size);
int tok_add_mixed(const server *S, tok_list *t, struct json_t *v, int flags, const char *param, char *msg, size_t msg_size);

/* infill.c: POST /infill's prompt (request_parse_infill read the body):
 * malloc'd tokens, or -1 with e set (501 when the model has no
 * fill-in-the-middle tokens). */
int infill_prompt(const server *S, const request *r, sm_token **out, int *n, req_error *e);

/* llama-server's utility endpoints (util.c): the answer's JSON for a body
 * of len bytes (*status: 200, or the error's). Run on the HTTP thread. */
enum util_kind { UTIL_TOKENIZE, UTIL_DETOKENIZE, UTIL_APPLY_TEMPLATE };
char *util_answer(const server *S, enum util_kind kind, const char *body, size_t len, int *status);

#endif

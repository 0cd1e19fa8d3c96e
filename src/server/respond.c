/* respond.c - see respond.h. */
#include "respond.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

char *resp_dump(json_t *o) {
    if (!o) return NULL;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* An error code for the statuses clients look at ("code" in OpenAI's
 * error object), or null. */
static json_t *error_code(int status) {
    switch (status) {
    case 401: return json_string("invalid_api_key");
    case 404: return json_string("not_found");
    case 413: return json_string("request_too_large");
    case 429: return json_string("rate_limit_exceeded");
    case 503: return json_string("unavailable");
    }
    return json_null();
}

json_t *resp_utf8_string(const char *s, size_t n) {
    char small[256], *fixed = n * 3 + 1 <= sizeof small ? small : malloc(n * 3 + 1);   /* a token's text fits */
    json_t *o = fixed ? json_stringn(fixed, text_utf8_fix(s, n, fixed)) : NULL;
    if (fixed != small) free(fixed);
    return o;
}

char *resp_error(int status, const char *type, const char *param, const char *message) {
    json_t *msg = resp_utf8_string(message, strlen(message));  /* a parse error may quote a cut character */
    return resp_dump(json_pack("{s:{s:o, s:s, s:o, s:o}}", "error", "message", msg, "type", type, "param",
                               param && *param ? json_string(param) : json_null(), "code", error_code(status)));
}

static json_t *model_object(const server *S) {
    return json_pack("{s:s, s:s, s:I, s:s}", "id", S->model_id, "object", "model", "created", (json_int_t)0,
                     "owned_by", "smallmind");
}

char *resp_models(const server *S) { return resp_dump(json_pack("{s:s, s:[o]}", "object", "list", "data", model_object(S))); }

char *resp_model(const server *S, const char *id, int *status) {
    if (!strcmp(id, S->model_id)) {
        *status = 200;
        return resp_dump(model_object(S));
    }
    /* OpenAI's answer for a model it does not have */
    char msg[512];
    snprintf(msg, sizeof msg, "The model '%.200s' does not exist (this server has '%.60s')", id, S->model_id);
    *status = 404;
    return resp_dump(json_pack("{s:{s:o, s:s, s:s, s:s}}", "error", "message", resp_utf8_string(msg, strlen(msg)),
                               "type", "invalid_request_error", "param", "model", "code", "model_not_found"));
}

static json_t *usage(const job *j) {
    json_t *u = json_pack("{s:i, s:i, s:i, s:{s:i}}", "prompt_tokens", j->n_prompt, "completion_tokens", j->n_gen,
                          "total_tokens", j->n_prompt + j->n_gen, "prompt_tokens_details", "cached_tokens", j->n_cached);
    return u;
}

static json_t *text_or_empty(const char *s, size_t n) { return json_stringn(s ? s : "", s ? n : 0); }

/* ------------------------------------------------------------ logprobs */

/* A token's bytes (none for an id that is not one); its text goes out
 * through resp_utf8_string (a token may hold part of a UTF-8 character;
 * "bytes" gives them exactly). */
static int token_bytes(const server *S, sm_token tok, const char **piece) {
    *piece = "";
    int n = tok >= 0 ? sm_token_piece(S->model, tok, piece) : 0;
    return n > 0 ? n : 0;
}


static json_t *piece_bytes(const char *s, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer((unsigned char)s[i]));
    return a;
}

/* JSON has no infinities: a token the model rules out gets OpenAI's -9999. */
static json_t *logprob_value(float v) { return json_real(isfinite(v) ? v : -9999.0); }

/* chat: {"token", "logprob", "bytes"} */
static json_t *chat_token(const server *S, sm_token tok, float lp) {
    const char *piece;
    int n = token_bytes(S, tok, &piece);
    return json_pack("{s:o, s:o, s:o}", "token", resp_utf8_string(piece, (size_t)n), "logprob", logprob_value(lp), "bytes",
                     piece_bytes(piece, n));
}

/* llama-server's completion_probabilities: {"id", "token", "bytes",
 * "logprob"} (c392e509's shape with post_sampling_probs off) */
static json_t *native_token(const server *S, sm_token tok, float lp) {
    const char *piece;
    int n = token_bytes(S, tok, &piece);
    return json_pack("{s:i, s:o, s:o, s:o}", "id", tok, "token", resp_utf8_string(piece, (size_t)n), "bytes",
                     piece_bytes(piece, n), "logprob", logprob_value(lp));
}

/* The entries [from, to), each as one() writes a token, with its
 * alternatives so written as "top_logprobs". */
typedef json_t *(*token_fn)(const server *S, sm_token tok, float lp);
static json_t *token_entries(const server *S, const job *j, int from, int to, token_fn one) {
    int k = j->req.p.top_logprobs;
    json_t *list = json_array();
    for (int i = from; i < to; i++) {
        const lp_entry *e = &j->lp[i];
        json_t *t = one(S, e->tok, e->logprob), *top = json_array();
        for (int x = 0; x < k && j->lp_top_tok[(size_t)i * k + x] >= 0; x++)
            json_array_append_new(top, one(S, j->lp_top_tok[(size_t)i * k + x], j->lp_top[(size_t)i * k + x]));
        json_object_set_new(t, "top_logprobs", top);
        json_array_append_new(list, t);
    }
    return list;
}

/* The entries [from, to) of a job with logprobs: chat's {"content": [...],
 * "refusal": null}, or the completions API's tokens, token_logprobs,
 * top_logprobs (one object per token, text to log probability) and
 * text_offset (of each token's text in the generated text). */
static json_t *logprobs_json(const server *S, const job *j, int from, int to) {
    int k = j->req.p.top_logprobs;
    if (j->kind == REQ_CHAT) return json_pack("{s:o, s:n}", "content", token_entries(S, j, from, to, chat_token), "refusal");
    json_t *tokens = json_array(), *values = json_array(), *tops = json_array(), *offsets = json_array();
    for (int i = from; i < to; i++) {
        const lp_entry *e = &j->lp[i];
        const char *piece;
        int n = token_bytes(S, e->tok, &piece);
        json_array_append_new(tokens, resp_utf8_string(piece, (size_t)n));
        json_array_append_new(values, logprob_value(e->logprob));
        json_array_append_new(offsets, json_integer((json_int_t)e->offset));
        json_t *top = json_object();
        for (int x = 0; x < k && j->lp_top_tok[(size_t)i * k + x] >= 0; x++) {
            n = token_bytes(S, j->lp_top_tok[(size_t)i * k + x], &piece);
            json_t *key = resp_utf8_string(piece, (size_t)n);
            /* two tokens with one text: the likelier one's value stays */
            if (key && !json_object_get(top, json_string_value(key)))
                json_object_set_new(top, json_string_value(key), logprob_value(j->lp_top[(size_t)i * k + x]));
            json_decref(key);
        }
        json_array_append_new(tops, top);
    }
    return json_pack("{s:o, s:o, s:o, s:o}", "tokens", tokens, "token_logprobs", values, "top_logprobs", tops,
                     "text_offset", offsets);
}

static json_t *logprobs_or_null(const server *S, const job *j, int from, int to) {
    return j->req.p.logprobs && j->lp ? logprobs_json(S, j, from, to) : json_null();
}

/* A chat job's reply as an assistant message; *finish its finish reason.
 * A reply in a tool format that ended by itself is read back for its
 * reasoning and tool calls (as llama-server: one cut short is text). */
static json_t *reply_message(const job *j, const char **finish) {
    *finish = j->finish_reason ? j->finish_reason : "stop";
    if (job_reads_back(j) && !strcmp(*finish, "stop"))
        return tools_message(&j->req, j->id, j->text ? j->text : "", j->text_len, finish);
    return json_pack("{s:s, s:o}", "role", "assistant", "content", text_or_empty(j->text, j->text_len));
}

char *resp_completion(const server *S, const job *j) {
    json_t *choice;
    const char *finish;
    if (j->kind == REQ_CHAT) {
        json_t *message = reply_message(j, &finish);
        choice = json_pack("{s:i, s:o, s:o, s:s}", "index", 0, "message", message ? message : json_object(), "logprobs",
                           logprobs_or_null(S, j, 0, j->n_lp), "finish_reason", finish);
    } else
        choice = json_pack("{s:o, s:i, s:o, s:s}", "text", text_or_empty(j->text, j->text_len), "index", 0,
                           "logprobs", logprobs_or_null(S, j, 0, j->n_lp), "finish_reason",
                           j->finish_reason ? j->finish_reason : "stop");
    return resp_dump(json_pack("{s:s, s:s, s:I, s:s, s:[o], s:o}", "id", j->id, "object",
                               j->kind == REQ_CHAT ? "chat.completion" : "text_completion", "created",
                               (json_int_t)j->created, "model", S->model_id, "choices", choice, "usage", usage(j)));
}

/* a chunk with these choices (and the usage) */
static char *chunk(const server *S, const job *j, json_t *choices, int use, int with_usage) {
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", j->id, "object",
                          j->kind == REQ_CHAT ? "chat.completion.chunk" : "text_completion", "created",
                          (json_int_t)j->created, "model", S->model_id, "choices", choices);
    if (o && (use || with_usage)) json_object_set_new(o, "usage", use ? usage(j) : json_null());
    return resp_dump(o);
}

/* a chunk whose delta is these fields (NULL when there are none) */
static char *delta_chunk(const server *S, const job *j, json_t *delta) {
    if (!delta || !json_object_size(delta)) {
        json_decref(delta);
        return NULL;
    }
    return chunk(S, j, json_pack("[{s:i, s:o, s:n, s:n}]", "index", 0, "delta", delta, "logprobs", "finish_reason"), 0,
                 j->req.p.include_usage);
}

/* the text of [from, to) past what was sent of that part (*from_sent,
 * *n_sent: where the part began when its first bytes went, how many went) */
static void span_rest(json_t *delta, const char *key, const job *j, size_t from, size_t to, size_t *from_sent,
                      size_t *n_sent) {
    if (to <= from) return;
    if (!*n_sent) *from_sent = from;
    size_t at = *from_sent + *n_sent;
    if (to <= at) return;
    json_object_set_new(delta, key, resp_utf8_string(j->text + at, to - at));
    *n_sent = to - *from_sent;
}

char *resp_stream_chunk(const server *S, const job *j, const tools_spans *sp, resp_sent *sent) {
    json_t *delta = json_object();
    if (!delta) return NULL;
    span_rest(delta, "reasoning_content", j, sp->reasoning_from, sp->reasoning_to, &sent->r_from, &sent->n_r);
    span_rest(delta, "content", j, sp->content_from, sp->content_to, &sent->c_from, &sent->n_c);
    return delta_chunk(S, j, delta);
}

/* whether the read value s begins with the n bytes of text sent of it */
static int extends(json_t *s, const char *sent, size_t n) {
    return !n || (json_string_length(s) >= n && !memcmp(json_string_value(s), sent, n));
}
/* the part of the read value s past the n bytes sent of it */
static void read_rest(json_t *delta, const char *key, json_t *s, size_t n) {
    if (json_string_length(s) > n) json_object_set_new(delta, key, json_stringn(json_string_value(s) + n, json_string_length(s) - n));
}

char *resp_read_back_chunk(const server *S, const job *j, resp_sent *sent, const char **finish) {
    *finish = j->finish_reason ? j->finish_reason : "stop";
    json_t *m = strcmp(*finish, "stop") ? NULL : reply_message(j, finish), *delta = json_object();
    const char *text = j->text ? j->text : "";
    json_t *reasoning = json_object_get(m, "reasoning_content"), *content = json_object_get(m, "content"),
           *calls = json_object_get(m, "tool_calls");
    int r_ok = extends(reasoning, text + sent->r_from, sent->n_r), c_ok = extends(content, text + sent->c_from, sent->n_c);
    /* cut short (not read back, as llama-server), or read otherwise than it
     * was streamed (a reply that cannot be read is its text): the rest goes
     * on as it was going */
    if (!m || (!calls && (!r_ok || !c_ok))) {
        json_decref(m);
        json_decref(delta);
        tools_spans sp;
        tools_stream_spans(&j->req, text, j->text_len, 1, &sp);
        return resp_stream_chunk(S, j, &sp, sent);
    }
    if (!delta) {
        json_decref(m);
        return NULL;
    }
    if (r_ok) read_rest(delta, "reasoning_content", reasoning, sent->n_r);
    if (c_ok) read_rest(delta, "content", content, sent->n_c);
    if (calls) {
        json_t *list = json_array();
        for (size_t i = 0; i < json_array_size(calls); i++) {
            json_t *call = json_deep_copy(json_array_get(calls, i));
            json_object_set_new(call, "index", json_integer((json_int_t)i));   /* where the client gathers it */
            json_array_append_new(list, call);
        }
        json_object_set_new(delta, "tool_calls", list);
    }
    json_decref(m);
    return delta_chunk(S, j, delta);
}

char *resp_chunk(const server *S, const job *j, const char *text, size_t len, int role, const char *finish, int use,
                 int with_usage, int lp_from, int lp_to) {
    int chat = j->kind == REQ_CHAT;
    json_t *choices = json_array();
    if (!use) {
        json_t *c;
        json_t *fin = finish ? json_string(finish) : json_null();
        if (chat) {
            json_t *delta = json_object();
            if (role) {
                json_object_set_new(delta, "role", json_string("assistant"));
                json_object_set_new(delta, "content", json_string(""));
            } else if (text) {
                json_object_set_new(delta, "content", json_stringn(text, len));
            }
            c = json_pack("{s:i, s:o, s:o, s:o}", "index", 0, "delta", delta, "logprobs",
                          role || lp_from == lp_to ? json_null() : logprobs_or_null(S, j, lp_from, lp_to),
                          "finish_reason", fin);
        } else {
            c = json_pack("{s:o, s:i, s:o, s:o}", "text", text_or_empty(text, len), "index", 0, "logprobs",
                          lp_from == lp_to ? json_null() : logprobs_or_null(S, j, lp_from, lp_to), "finish_reason", fin);
        }
        json_array_append_new(choices, c);
    }
    return chunk(S, j, choices, use, with_usage);
}

/* RFC 4648 base64 of the floats' bytes (little-endian, as OpenAI sends
 * them with encoding_format "base64"). */
static char *base64(const unsigned char *p, size_t n) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        *o++ = abc[v >> 18 & 63];
        *o++ = abc[v >> 12 & 63];
        *o++ = i + 1 < n ? abc[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? abc[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

char *resp_embeddings(const server *S, const job *j) {
    json_t *data = json_array();
    int dim = S->info.dim;
    for (int i = 0; i < j->n_in; i++) {
        const float *e = j->embd + (size_t)i * dim;
        json_t *v;
        if (j->req.base64) {
            unsigned char *bytes = malloc((size_t)dim * 4);
            if (!bytes) { json_decref(data); return NULL; }
            for (int k = 0; k < dim; k++) {
                uint32_t u;
                memcpy(&u, &e[k], 4);
                for (int b = 0; b < 4; b++) bytes[4 * k + b] = (unsigned char)(u >> (8 * b));
            }
            char *b64 = base64(bytes, (size_t)dim * 4);
            free(bytes);
            v = b64 ? json_string(b64) : NULL;
            free(b64);
        } else {
            v = json_array();
            for (int k = 0; k < dim; k++) json_array_append_new(v, json_real(e[k]));
        }
        json_array_append_new(data, json_pack("{s:s, s:i, s:o}", "object", "embedding", "index", i, "embedding", v));
    }
    return resp_dump(json_pack("{s:s, s:o, s:s, s:{s:i, s:i}}", "object", "list", "data", data, "model", S->model_id,
                               "usage", "prompt_tokens", j->n_embd_tokens, "total_tokens", j->n_embd_tokens));
}

/* Each recorded request as spans of Chrome's trace-event format: "queued"
 * (arrival to a slot) on the queue's track, then "prompt" (the slot's
 * prompt evaluation, to the first token) and "generate" (to the end) on
 * its slot's track; microseconds from the server's start. */
static void span(json_t *ev, const char *name, int tid, double t0, double t1, const server *S, json_t *args) {
    if (t1 < t0) t1 = t0;
    json_array_append_new(ev, json_pack("{s:s, s:s, s:i, s:i, s:f, s:f, s:o}", "name", name, "ph", "X", "pid", 1, "tid",
                                        tid, "ts", (t0 - S->t_origin) * 1e6, "dur", (t1 - t0) * 1e6, "args", args));
}

char *resp_trace(const server *S) {
    json_t *ev = json_array();
    json_array_append_new(ev, json_pack("{s:s, s:s, s:i, s:i, s:{s:s}}", "name", "process_name", "ph", "M", "pid", 1,
                                        "tid", 0, "args", "name", "smallmind serve"));
    json_array_append_new(ev, json_pack("{s:s, s:s, s:i, s:i, s:{s:s}}", "name", "thread_name", "ph", "M", "pid", 1,
                                        "tid", 0, "args", "name", "queue"));
    for (int i = 0; i < S->n_slots; i++) {
        char name[32];
        snprintf(name, sizeof name, "slot %d", i);
        json_array_append_new(ev, json_pack("{s:s, s:s, s:i, s:i, s:{s:s}}", "name", "thread_name", "ph", "M", "pid", 1,
                                            "tid", i + 1, "args", "name", name));
    }
    uint64_t cap = (uint64_t)S->opt.trace_requests, n = S->n_traced < cap ? S->n_traced : cap;
    for (uint64_t k = S->n_traced - n; k < S->n_traced; k++) {   /* oldest first */
        const req_trace *t = &S->traces[k % cap];
        double start = t->t_start > 0 ? t->t_start : t->t_end;
        span(ev, "queued", 0, t->t_arrival, start, S, json_pack("{s:s, s:s}", "id", t->id, "kind", t->kind));
        if (t->slot < 0) continue;
        double first = t->t_first > 0 ? t->t_first : t->t_end;
        span(ev, "prompt", t->slot + 1, start, first, S,
             json_pack("{s:s, s:i, s:i}", "id", t->id, "prompt_tokens", t->n_prompt, "cached_tokens", t->n_cached));
        span(ev, "generate", t->slot + 1, first, t->t_end, S,
             json_pack("{s:s, s:i, s:s}", "id", t->id, "completion_tokens", t->n_gen, "finish_reason", t->finish));
    }
    json_t *doc = json_pack("{s:o, s:s, s:{s:I, s:I}}", "traceEvents", ev, "displayTimeUnit", "ms", "otherData",
                            "requests_recorded", (json_int_t)S->n_traced, "requests_kept", (json_int_t)n);
    return resp_dump(doc);
}

/* ------------------------------------------------- llama-server's own API */

/* llama.cpp's "no seed" (LLAMA_DEFAULT_SEED) */
#define NATIVE_NO_SEED 4294967295u

/* the sampling settings, as llama-server lists them (those this server reads) */
static json_t *native_settings(const req_params *p, const char *grammar) {
    json_t *stop = json_array();
    for (int i = 0; i < p->n_stop; i++) json_array_append_new(stop, json_string(p->stop[i]));
    return json_pack("{s:i, s:I, s:f, s:i, s:f, s:f, s:i, s:f, s:f, s:f, s:o, s:i, s:b, s:b, s:i, s:s}", "n_predict",
                     p->max_tokens, "seed", (json_int_t)(p->has_seed ? p->seed : NATIVE_NO_SEED), "temperature",
                     (double)p->temperature, "top_k", p->top_k, "top_p", (double)p->top_p, "min_p", (double)p->min_p,
                     "repeat_last_n", p->repeat_last_n, "repeat_penalty", (double)p->repeat_penalty, "presence_penalty",
                     (double)p->presence_penalty, "frequency_penalty", (double)p->frequency_penalty, "stop", stop,
                     "max_tokens", p->max_tokens, "ignore_eos", p->ignore_eos, "stream", p->stream, "n_probs",
                     p->logprobs ? p->top_logprobs : 0, "grammar", grammar ? grammar : "");
}

int resp_token_text(const server *S, sm_token tok, const char **piece) {
    int n = token_bytes(S, tok, piece), m;
    if (n == 0 && (m = sm_token_text(S->model, tok, piece)) > 0) n = m;
    return n;
}

/* the prompt's tokens as text */
static json_t *prompt_text(const server *S, const job *j) {
    sm_sbuf b = {0};
    for (int i = 0; i < j->n_prompt; i++) {
        const char *piece;
        int n = resp_token_text(S, j->prompt[i], &piece);
        sm_sb_addn(&b, piece, (size_t)n);
    }
    json_t *o = resp_utf8_string(b.p ? b.p : "", b.n);
    sm_sb_free(&b);
    return o;
}

static json_t *rate(double n, double ms) { return json_real(ms > 0 ? n * 1000.0 / ms : 0.0); }

char *resp_native(const server *S, const job *j, int streamed, double now) {
    const req_params *p = &j->req.p;
    double t_start = j->t_start > 0 ? j->t_start : j->t_arrival,
           t_first = j->t_first > 0 ? j->t_first : now;
    int evaluated = j->n_prompt - j->n_cached;
    double prompt_ms = (t_first - t_start) * 1000.0, gen_ms = (now - t_first) * 1000.0;
    json_t *timings = json_pack("{s:i, s:f, s:f, s:o, s:i, s:f, s:f, s:o}", "prompt_n", evaluated, "prompt_ms", prompt_ms,
                                "prompt_per_token_ms", evaluated ? prompt_ms / evaluated : 0.0, "prompt_per_second",
                                rate(evaluated, prompt_ms), "predicted_n", j->n_gen, "predicted_ms", gen_ms,
                                "predicted_per_token_ms", j->n_gen ? gen_ms / j->n_gen : 0.0, "predicted_per_second",
                                rate(j->n_gen, gen_ms));
    const char *type = j->stop_word ? "word" : j->stop_eos ? "eos"
                       : j->finish_reason && !strcmp(j->finish_reason, "length") ? "limit" : "none";
    /* llama-server counts an end token (and the one a grammar's end allows) among the predicted ones; the
     * cache holds all but the last */
    int predicted = j->n_gen + j->stop_eos, cached = j->n_prompt + predicted - (predicted > 0);
    json_t *o = json_pack("{s:i, s:o, s:[], s:i, s:b, s:s, s:i, s:i, s:o, s:o, s:b, s:b, s:s, s:s, s:i, s:o}", "index", 0,
                          "content", streamed ? json_string("") : resp_utf8_string(j->text ? j->text : "", j->text_len),
                          "tokens", "id_slot", j->slot_index, "stop", 1, "model", S->model_id, "tokens_predicted",
                          predicted, "tokens_evaluated", j->n_prompt, "generation_settings",
                          native_settings(p, j->req.grammar_text), "prompt", prompt_text(S, j), "has_new_line",
                          j->has_new_line, "truncated", 0, "stop_type", type, "stopping_word",
                          j->stop_word ? j->stop_word : "", "tokens_cached", cached, "timings", timings);
    if (o && p->logprobs && j->lp && (!streamed || j->n_lp > j->lp_sent))
        json_object_set_new(o, "completion_probabilities",
                            token_entries(S, j, streamed ? j->lp_sent : 0, j->n_lp, native_token));
    return resp_dump(o);
}

char *resp_native_chunk(const server *S, const job *j, const char *text, size_t len, int lp_from, int lp_to) {
    json_t *o = json_pack("{s:i, s:o, s:[], s:b, s:i, s:i, s:i}", "index", 0, "content", resp_utf8_string(text, len),
                          "tokens", "stop", 0, "id_slot", -1, "tokens_predicted", j->n_gen, "tokens_evaluated",
                          j->n_prompt);
    if (o && j->req.p.logprobs && j->lp && lp_to > lp_from)
        json_object_set_new(o, "completion_probabilities", token_entries(S, j, lp_from, lp_to, native_token));
    return resp_dump(o);
}

char *resp_props(const server *S) {
    request d;   /* the defaults of a /completion request */
    req_error e;
    req_limits lim = {S->opt.n_ctx, S->info.n_vocab, S->opt.jinja};
    json_t *params = request_parse_native("{\"prompt\":\"\"}", 13, &lim, &d, &e) ? json_object()
                                                                                    : native_settings(&d.p, NULL);
    request_free(&d);
    const char *tmpl = NULL, *bos = "", *eos = "";
    size_t tl = 0;
    int nb = 0, ne = 0;
    if (S->jinja) tmpl = S->jinja, tl = strlen(S->jinja);
    else if (S->tmpl) tmpl = S->tmpl, tl = strlen(S->tmpl);
    else if (sm_model_meta_str(S->model, "tokenizer.chat_template", &tmpl, &tl) != 1)   /* what chats use then */
        tmpl = sm_chat_chatml_jinja(), tl = strlen(tmpl);
    if (S->info.bos >= 0) nb = resp_token_text(S, S->info.bos, &bos);
    if (S->info.eos >= 0) ne = resp_token_text(S, S->info.eos, &eos);
    const char *path = S->opt.model_path ? S->opt.model_path : "";   /* (a path need not be UTF-8) */
    json_t *o = json_pack("{s:{s:i, s:i, s:o}, s:i, s:o, s:o, s:o, s:o, s:s}", "default_generation_settings", "id", 0,
                          "n_ctx", S->opt.n_ctx, "params", params, "total_slots", S->n_slots, "model_path",
                          resp_utf8_string(path, strlen(path)), "chat_template", resp_utf8_string(tmpl, tl),
                          "bos_token", resp_utf8_string(bos, (size_t)nb), "eos_token", resp_utf8_string(eos, (size_t)ne), "build_info",
                          "smallmind " SM_VERSION);
    return resp_dump(o);
}


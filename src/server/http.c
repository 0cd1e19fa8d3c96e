/* http.c - the HTTP side of `smallmind serve`, on GNU libmicrohttpd: one
 * internal thread polls every connection (epoll where there is one), so
 * idle and slow clients cost a socket each, not a thread. A request's body
 * is collected up to --max-body (beyond it the rest is read and dropped, up
 * to a hard limit, and the answer is 413); then the route runs: answers
 * that need the model become jobs for the scheduler. A non-streaming job's
 * connection is suspended until the job is done; a streaming job's answer
 * is a chunked Server-Sent Events response whose reader callback suspends
 * the connection whenever there is nothing to send, and the scheduler
 * resumes it when there is. The request-completed callback tells the
 * scheduler when a client is gone. */
#include "server.h"
#include "respond.h"
#include "responses.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

extern const char sm_server_page[];

/* Bodies beyond --max-body are read and dropped up to this (so the client
 * gets its 413), and past it the connection is closed. */
#define DISCARD_LIMIT (256ull << 20)

enum route {
    R_NONE, R_PAGE, R_HEALTH, R_METRICS, R_TRACE, R_MODELS, R_MODEL, R_CHAT, R_RESPONSES, R_COMPLETIONS, R_EMBEDDINGS,
    R_NATIVE, R_INFILL,                         /* llama-server's own /completion and /infill */
    R_TOKENIZE, R_DETOKENIZE, R_APPLY_TEMPLATE, /* llama-server's, answered without a job (util.c) */
    R_PROPS
};

typedef struct conn_ctx {
    server *S;
    struct MHD_Connection *c;
    enum route route;
    enum endpoint ep;
    char *body;
    size_t len, cap;
    uint64_t dropped;            /* body bytes beyond --max-body */
    job *j;
    char *out;                   /* SSE bytes formatted, not yet sent */
    size_t out_len, out_pos, out_cap;
    int sent_role, sent_final;
    resp_sent sent;              /* a reply read back: its text sent as it stood */
    double t0;
    char *model_id;              /* R_MODEL: the ID of /v1/models/ID */
    void *resp_echo;             /* R_RESPONSES: what the Response echoes of the request */
    resp_stream *rs;             /* R_RESPONSES streamed: chat chunks to Responses events */
} conn_ctx;

static const struct { const char *path; enum route r; enum endpoint ep; const char *method; } routes[] = {
    {"/", R_PAGE, EP_PAGE, "GET"},
    {"/health", R_HEALTH, EP_HEALTH, "GET"},
    {"/metrics", R_METRICS, EP_METRICS, "GET"},
    {"/debug/trace", R_TRACE, EP_TRACE, "GET"},
    {"/v1/models", R_MODELS, EP_MODELS, "GET"},
    {"/models", R_MODELS, EP_MODELS, "GET"},
    {"/v1/models/", R_MODEL, EP_MODELS, "GET"},   /* a prefix: /v1/models/ID (OpenAI's models.retrieve) */
    {"/models/", R_MODEL, EP_MODELS, "GET"},
    {"/v1/chat/completions", R_CHAT, EP_CHAT, "POST"},
    {"/chat/completions", R_CHAT, EP_CHAT, "POST"},
    {"/v1/responses", R_RESPONSES, EP_CHAT, "POST"},   /* OpenAI's Responses API over the chat path */
    {"/responses", R_RESPONSES, EP_CHAT, "POST"},
    {"/v1/completions", R_COMPLETIONS, EP_COMPLETIONS, "POST"},
    {"/completions", R_COMPLETIONS, EP_COMPLETIONS, "POST"},
    {"/v1/embeddings", R_EMBEDDINGS, EP_EMBEDDINGS, "POST"},
    {"/embeddings", R_EMBEDDINGS, EP_EMBEDDINGS, "POST"},
    {"/completion", R_NATIVE, EP_COMPLETIONS, "POST"},
    {"/infill", R_INFILL, EP_COMPLETIONS, "POST"},
    {"/props", R_PROPS, EP_OTHER, "GET"},
    {"/tokenize", R_TOKENIZE, EP_OTHER, "POST"},
    {"/detokenize", R_DETOKENIZE, EP_OTHER, "POST"},
    {"/apply-template", R_APPLY_TEMPLATE, EP_OTHER, "POST"},
};
#define N_ROUTES (int)(sizeof routes / sizeof routes[0])

/* ------------------------------------------------------------ answers */

static enum MHD_Result send_body(conn_ctx *x, int status, const char *type, char *body, size_t len, int owned) {
    server *S = x->S;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (owned) free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == 401) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (status == 405) {
        for (int i = 0; i < N_ROUTES; i++)
            if (routes[i].r == x->route) {
                MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, routes[i].method);
                break;
            }
    }
    pthread_mutex_lock(&S->mu);
    int stopping = S->stopping;
    metrics_request(&S->m, x->ep, status);
    pthread_mutex_unlock(&S->mu);
    if (stopping) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(x->c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(conn_ctx *x, int status, char *json) {
    if (!json) {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,"
                                  "\"code\":null}}";
        return send_body(x, 500, "application/json", (char *)oom, sizeof oom - 1, 0);
    }
    return send_body(x, status, "application/json", json, strlen(json), 1);
}

static const char *error_type(int status) {
    switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 500: return "server_error";
    case 503: return "unavailable_error";
    }
    return "invalid_request_error";
}

static enum MHD_Result send_error(conn_ctx *x, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result send_error(conn_ctx *x, int status, const char *param, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return send_json(x, status, resp_error(status, error_type(status), param, msg));
}

/* ------------------------------------------------------------ prompts */

/* text (or token ids) to the prompt's tokens: special-token text parsed,
 * BOS first when the model wants one and the text does not begin with it. */
static int tokenize(server *S, const req_prompt *p, sm_token **out, int *n, req_error *e) {
    if (p->tokens) {
        if (p->n_tokens > (size_t)S->opt.n_ctx)
            return req_fail(e, 400, "invalid_request_error", NULL,
                            "the prompt is %zu tokens; the context holds %d (-c)", p->n_tokens, S->opt.n_ctx);
        *out = malloc(p->n_tokens * sizeof **out);
        if (!*out) return req_fail(e, 500, "server_error", NULL, "out of memory");
        memcpy(*out, p->tokens, p->n_tokens * sizeof **out);
        *n = (int)p->n_tokens;
        return 0;
    }
    /* no token is longer than max_piece bytes: a longer text cannot fit */
    if (p->len / (S->max_piece ? S->max_piece : 1) > (size_t)S->opt.n_ctx)
        return req_fail(e, 400, "invalid_request_error", NULL, "the prompt is %zu bytes; it cannot fit in the context of %d tokens (-c)",
                        p->len, S->opt.n_ctx);
    size_t need = 0, cap = p->len + 2;
    sm_token *t = malloc(cap * sizeof *t);
    if (!t) return req_fail(e, 500, "server_error", NULL, "out of memory");
    int bos = S->info.add_bos && S->info.bos >= 0;
    sm_error err = {0};
    sm_status st = sm_tokenize_ex(S->model, p->text, p->len, SM_TOKENIZE_PARSE_SPECIAL, t + bos, cap - 1, &need, &err);
    if (st != SM_OK) {
        free(t);
        return req_fail(e, 400, "invalid_request_error", NULL, "the prompt cannot be tokenized: %s", err.message);
    }
    if (bos && need > 0 && t[1] == S->info.bos) bos = 0;   /* it has one already */
    if (bos) t[0] = S->info.bos;
    else memmove(t, t + 1, need * sizeof *t);
    need += (size_t)bos;
    if (need == 0) {
        free(t);
        return req_fail(e, 400, "invalid_request_error", NULL, "the prompt is empty");
    }
    if (need > (size_t)S->opt.n_ctx) {
        free(t);
        return req_fail(e, 400, "invalid_request_error", NULL, "the prompt is %zu tokens; the context holds %d (-c)", need,
                        S->opt.n_ctx);
    }
    *out = t;
    *n = (int)need;
    return 0;
}

static int chat_prompt(server *S, request *r, sm_token **out, int *n, req_error *e) {
    char *text;
    size_t len;
    if (chat_text(S, r, &text, &len, e)) return -1;
    tools_reply_start(r, text, len);
    req_prompt p = {text, len, NULL, 0};
    int rc = tokenize(S, &p, out, n, e);
    free(text);
    return rc;
}

/* The chat template's end-of-turn text, where it is not one special token
 * (those end generation by id), stops a chat reply as a stop string. */
static void add_eot_stop(server *S, request *r) {
    sm_chat_template_info ti;
    if (sm_chat_template_resolve(S->model, S->tmpl, &ti, NULL) != SM_OK || !ti.eot) return;
    sm_token t[4];
    size_t n = 0;
    if (sm_tokenize_ex(S->model, ti.eot, strlen(ti.eot), SM_TOKENIZE_PARSE_SPECIAL, t, 4, &n, NULL) == SM_OK && n == 1) {
        if (sm_token_is_eog(S->model, t[0])) return;
        for (int i = 0; i < S->n_eog; i++)
            if (S->eog[i] == t[0]) return;
    }
    r->p.stop[r->p.n_stop++] = ti.eot;   /* there is room for one more than the client's */
}

/* ------------------------------------------------------------ streaming */

static int out_append(conn_ctx *x, const char *s, size_t n) {
    if (x->out_len + n > x->out_cap) {
        size_t cap = x->out_cap ? x->out_cap : 1024;
        while (cap < x->out_len + n) cap *= 2;
        char *g = realloc(x->out, cap);
        if (!g) return -1;
        x->out = g;
        x->out_cap = cap;
    }
    memcpy(x->out + x->out_len, s, n);
    x->out_len += n;
    return 0;
}

/* One Server-Sent Event: "data: JSON\n\n" (a Response stream: its named
 * events made of the chat chunk). */
static void out_event(conn_ctx *x, char *json) {
    if (!json) return;
    if (x->rs) {
        char *ev = responses_stream_chunk(x->rs, json);
        free(json);
        if (ev) out_append(x, ev, strlen(ev));
        free(ev);
        return;
    }
    out_append(x, "data: ", 6);
    out_append(x, json, strlen(json));
    out_append(x, "\n\n", 2);
    free(json);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    conn_ctx *x = cls;
    server *S = x->S;
    job *j = x->j;
    (void)pos;
    pthread_mutex_lock(&S->mu);
    for (;;) {
        if (x->out_pos < x->out_len) {
            size_t n = x->out_len - x->out_pos < max ? x->out_len - x->out_pos : max;
            memcpy(buf, x->out + x->out_pos, n);
            x->out_pos += n;
            pthread_mutex_unlock(&S->mu);
            return (ssize_t)n;
        }
        x->out_len = x->out_pos = 0;
        if (x->sent_final) {
            pthread_mutex_unlock(&S->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        int usage = j->req.p.include_usage;
        if (!x->sent_role) {
            x->sent_role = 1;
            if (j->kind == REQ_CHAT) out_event(x, resp_chunk(S, j, NULL, 0, 1, NULL, 0, usage, 0, 0));
            continue;
        }
        if (job_reads_back(j)) {
            /* the text that is reasoning or content whatever follows goes now, the rest once read back */
            tools_spans sp;
            char *c = NULL;
            if (j->state != JOB_DONE && j->text_len) {
                tools_stream_spans(&j->req, j->text, j->text_len, 0, &sp);
                c = resp_stream_chunk(S, j, &sp, &x->sent);
            }
            if (c) {
                out_event(x, c);
                continue;
            }
        } else if (j->text_len > 0) {
            int lp_to = lp_ready(j);   /* the log probabilities of the tokens this text comes from */
            out_event(x, j->req.native ? resp_native_chunk(S, j, j->text, j->text_len, j->lp_sent, lp_to)
                                       : resp_chunk(S, j, j->text, j->text_len, 0, NULL, 0, usage, j->lp_sent, lp_to));
            j->lp_sent = lp_to;
            j->text_len = 0;
            if (j->blocked) {
                j->blocked = 0;
                sched_poke(S);
            }
            continue;
        }
        if (j->state == JOB_DONE) {
            if (j->err_status) {
                out_event(x, resp_error(j->err_status, "server_error", NULL, j->err_msg));
            } else if (j->req.native) {   /* the closing chunk is the whole answer's fields; no [DONE] */
                out_event(x, resp_native(S, j, 1, now_seconds()));
                x->sent_final = 1;
                continue;
            } else {
                const char *finish = j->finish_reason;
                if (job_reads_back(j)) out_event(x, resp_read_back_chunk(S, j, &x->sent, &finish));
                out_event(x, resp_chunk(S, j, NULL, 0, 0, finish, 0, usage, j->lp_sent, j->n_lp));
                j->lp_sent = j->n_lp;
                if (usage) out_event(x, resp_chunk(S, j, NULL, 0, 0, NULL, 1, 1, 0, 0));
            }
            if (x->rs) {   /* the Responses stream ends with response.completed, not [DONE] */
                char *ev = responses_stream_end(x->rs);
                if (ev) out_append(x, ev, strlen(ev));
                free(ev);
            } else {
                out_append(x, "data: [DONE]\n\n", 14);
            }
            x->sent_final = 1;
            continue;
        }
        /* nothing yet: sleep until the scheduler has news */
        j->suspended = 1;
        MHD_suspend_connection(x->c);
        pthread_mutex_unlock(&S->mu);
        return 0;
    }
}

/* ------------------------------------------------------------ routes */

static int authorized(server *S, struct MHD_Connection *c) {
    const char *key = S->opt.api_key;
    if (!key || !*key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return 0;
    h += 7;
    while (*h == ' ') h++;
    /* compared in time that does not depend on where they differ */
    size_t kl = strlen(key), hl = strlen(h);
    unsigned diff = kl != hl;
    for (size_t i = 0; i < kl; i++) diff |= (unsigned char)key[i] ^ (unsigned char)(i < hl ? h[i] : 0);
    return diff == 0;
}

static enum MHD_Result start_job(conn_ctx *x) {
    server *S = x->S;
    req_limits lim = {S->opt.n_ctx, S->info.n_vocab, S->opt.jinja};
    enum req_kind kind = x->route == R_CHAT || x->route == R_RESPONSES ? REQ_CHAT
                         : x->route == R_COMPLETIONS || x->route == R_NATIVE || x->route == R_INFILL ? REQ_COMPLETION
                                                                                                      : REQ_EMBEDDING;
    job *j = job_new(kind);
    if (!j) return send_error(x, 500, NULL, "out of memory");
    req_error e = {0};
    const char *body = x->body ? x->body : "";
    size_t body_len = x->len;
    char *chat_body = NULL;   /* a Responses request as the chat request it asks for */
    int rc = 0;
    if (x->route == R_RESPONSES && !(rc = responses_request(body, body_len, &chat_body, &x->resp_echo, &e))) {
        body = chat_body;
        body_len = strlen(chat_body);
    }
    if (!rc)
        rc = x->route == R_NATIVE   ? request_parse_native(body, x->len, &lim, &j->req, &e)
             : x->route == R_INFILL ? request_parse_infill(body, x->len, &lim, &j->req, &e)
                                    : request_parse(kind, body, body_len, &lim, &j->req, &e);
    free(chat_body);
    if (!rc && kind == REQ_CHAT) {
        rc = tools_prepare(S, &j->req, &e);
        if (!rc) rc = chat_prompt(S, &j->req, &j->prompt, &j->n_prompt, &e);
        if (!rc) add_eot_stop(S, &j->req);
    } else if (!rc && x->route == R_INFILL) {
        rc = infill_prompt(S, &j->req, &j->prompt, &j->n_prompt, &e);
    } else if (!rc && kind == REQ_COMPLETION) {
        rc = tokenize(S, &j->req.prompts[0], &j->prompt, &j->n_prompt, &e);
    } else if (!rc) {
        j->n_in = (int)j->req.n_prompts;
        j->inputs = calloc((size_t)j->n_in, sizeof *j->inputs);
        j->n_inputs = calloc((size_t)j->n_in, sizeof *j->n_inputs);
        if (!j->inputs || !j->n_inputs) rc = req_fail(&e, 500, "server_error", NULL, "out of memory");
        for (int i = 0; i < j->n_in && !rc; i++) rc = tokenize(S, &j->req.prompts[i], &j->inputs[i], &j->n_inputs[i], &e);
    }
    if (rc) {
        pthread_mutex_lock(&S->mu);
        S->n_jobs++;   /* job_release counts it out */
        job_release(S, j);
        pthread_mutex_unlock(&S->mu);
        return send_json(x, e.status, resp_error(e.status, e.type, e.param, e.message));
    }
    static const char *const prefix[] = {"chatcmpl-", "cmpl-", "embd-"};
    pthread_mutex_lock(&S->mu);
    snprintf(j->id, sizeof j->id, "%s%016llx", prefix[kind],
             (unsigned long long)(S->seed_state ^ (S->steps * 0x9E3779B97F4A7C15ull) ^ (uint64_t)(uintptr_t)j));
    j->created = (long)time(NULL);
    j->t_arrival = x->t0;
    j->conn = x->c;
    int status = sched_submit(S, j);
    if (status) {
        S->n_jobs++;
        job_release(S, j);
        pthread_mutex_unlock(&S->mu);
        if (status == 429)
            return send_error(x, 429, NULL, "the queue is full (%d requests wait for a slot); try again later",
                              S->opt.max_queue);
        return send_error(x, 503, NULL, "the server is shutting down");
    }
    x->j = j;   /* our reference */
    if (x->route == R_RESPONSES && j->req.p.stream && !(x->rs = responses_stream_new(x->resp_echo))) {
        pthread_mutex_unlock(&S->mu);
        return MHD_NO;
    }
    if (kind != REQ_EMBEDDING && j->req.p.stream) {
        pthread_mutex_unlock(&S->mu);
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, x, NULL);
        if (!r) return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        pthread_mutex_lock(&S->mu);
        metrics_request(&S->m, x->ep, 200);
        pthread_mutex_unlock(&S->mu);
        enum MHD_Result ret = MHD_queue_response(x->c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
    }
    /* wait for the whole answer */
    j->suspended = 1;
    MHD_suspend_connection(x->c);
    pthread_mutex_unlock(&S->mu);
    return MHD_YES;
}

/* A suspended non-streaming job's connection came back: its answer. */
static enum MHD_Result finish_job(conn_ctx *x) {
    server *S = x->S;
    job *j = x->j;
    pthread_mutex_lock(&S->mu);
    if (j->state != JOB_DONE) {   /* woken early: wait on */
        j->suspended = 1;
        MHD_suspend_connection(x->c);
        pthread_mutex_unlock(&S->mu);
        return MHD_YES;
    }
    pthread_mutex_unlock(&S->mu);
    if (j->err_status) return send_error(x, j->err_status, NULL, "%s", j->err_msg);
    if (j->kind == REQ_EMBEDDING) return send_json(x, 200, resp_embeddings(S, j));
    if (j->req.native) return send_json(x, 200, resp_native(S, j, 0, now_seconds()));
    if (x->route == R_RESPONSES) {
        char *c = resp_completion(S, j), *r = c ? responses_answer(c, x->resp_echo) : NULL;
        free(c);
        return send_json(x, 200, r);
    }
    return send_json(x, 200, resp_completion(S, j));
}

static enum MHD_Result route(conn_ctx *x, const char *method) {
    server *S = x->S;
    if (x->route == R_NONE) return send_error(x, 404, NULL, "there is nothing at this address");
    for (int i = 0; i < N_ROUTES; i++)
        if (routes[i].r == x->route && strcmp(routes[i].method, method) != 0)
            return send_error(x, 405, NULL, "use %s here", routes[i].method);
    if (x->dropped) return send_error(x, 413, NULL, "the body is larger than %zu bytes (--max-body)", S->opt.max_body);
    if (x->route == R_PAGE) return send_body(x, 200, "text/html; charset=utf-8", (char *)sm_server_page,
                                            strlen(sm_server_page), 0);
    pthread_mutex_lock(&S->mu);
    int loaded = S->loaded, stopping = S->stopping;
    pthread_mutex_unlock(&S->mu);
    if (x->route == R_HEALTH) {
        if (!loaded) return send_json(x, 503, resp_error(503, "unavailable_error", NULL, "Loading model"));
        return send_body(x, 200, "application/json", (char *)"{\"status\":\"ok\"}", 15, 0);
    }
    if (!authorized(S, x->c)) return send_error(x, 401, NULL, "a valid API key is needed (Authorization: Bearer KEY)");
    if (x->route == R_METRICS) {
        size_t len = 0;
        pthread_mutex_lock(&S->mu);
        char *text = metrics_render(&S->m, S->queue_len, S->n_busy, S->opt.parallel, S->loaded, &len);
        pthread_mutex_unlock(&S->mu);
        if (!text) return send_error(x, 500, NULL, "out of memory");
        return send_body(x, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, 1);
    }
    if (x->route == R_TRACE) {
        if (S->opt.trace_requests <= 0)
            return send_error(x, 404, NULL, "the request trace is off: start the server with --trace-requests N");
        pthread_mutex_lock(&S->mu);
        char *json = resp_trace(S);
        pthread_mutex_unlock(&S->mu);
        return send_json(x, 200, json);
    }
    if (!loaded) return send_json(x, 503, resp_error(503, "unavailable_error", NULL, "Loading model"));
    if (x->route == R_MODELS) return send_json(x, 200, resp_models(S));
    if (x->route == R_MODEL) {
        int status = 500;
        char *json = resp_model(S, x->model_id ? x->model_id : "", &status);
        return send_json(x, status, json);
    }
    if (x->route == R_PROPS) return send_json(x, 200, resp_props(S));
    if (x->route == R_TOKENIZE || x->route == R_DETOKENIZE || x->route == R_APPLY_TEMPLATE) {
        int status = 500;
        enum util_kind k = x->route == R_TOKENIZE ? UTIL_TOKENIZE : x->route == R_DETOKENIZE ? UTIL_DETOKENIZE
                                                                                             : UTIL_APPLY_TEMPLATE;
        char *json = util_answer(S, k, x->body ? x->body : "", x->len, &status);
        if (!json) return send_error(x, 500, NULL, "out of memory");
        return send_json(x, status, json);
    }
    if (stopping) return send_error(x, 503, NULL, "the server is shutting down");
    return start_job(x);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **req_cls) {
    server *S = cls;
    conn_ctx *x = *req_cls;
    (void)version;
    if (!x) {
        x = calloc(1, sizeof *x);
        if (!x) return MHD_NO;
        x->S = S;
        x->c = c;
        x->t0 = now_seconds();
        x->ep = EP_OTHER;
        for (int i = 0; i < N_ROUTES; i++) {
            size_t n = strlen(routes[i].path);
            int prefix = routes[i].r == R_MODEL;   /* the rest of the path is the model's ID */
            if (prefix ? !strncmp(url, routes[i].path, n) && url[n] : !strcmp(url, routes[i].path)) {
                x->route = routes[i].r;
                x->ep = routes[i].ep;
                if (prefix && !(x->model_id = strdup(url + n))) x->route = R_NONE;
                break;
            }
        }
        *req_cls = x;
        /* a declared body too large even to read and drop: answer now (the
         * connection is closed after it) */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > DISCARD_LIMIT)
            return send_error(x, 413, NULL, "the body is larger than %zu bytes (--max-body)", S->opt.max_body);
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (x->dropped || x->len + n > S->opt.max_body) {
            x->dropped += n;
            return x->dropped > DISCARD_LIMIT ? MHD_NO : MHD_YES;
        }
        if (x->len + n + 1 > x->cap) {
            size_t cap = x->cap ? x->cap * 2 : 4096;
            while (cap < x->len + n + 1) cap *= 2;
            if (cap > S->opt.max_body + 1) cap = S->opt.max_body + 1;
            char *g = realloc(x->body, cap);
            if (!g) return MHD_NO;
            x->body = g;
            x->cap = cap;
        }
        memcpy(x->body + x->len, upload, n);
        x->len += n;
        return MHD_YES;
    }
    if (x->j) return finish_job(x);
    return route(x, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode toe) {
    server *S = cls;
    conn_ctx *x = *req_cls;
    (void)c;
    (void)toe;
    if (!x) return;
    if (x->j) {
        pthread_mutex_lock(&S->mu);
        job *j = x->j;
        if (j->state != JOB_DONE) j->cancelled = 1;   /* the client has gone */
        else if (j->kind != REQ_EMBEDDING) metrics_observe(&S->m.latency, now_seconds() - x->t0);
        j->conn = NULL;
        j->suspended = 0;
        job_release(S, j);
        sched_poke(S);
        pthread_mutex_unlock(&S->mu);
    }
    free(x->body);
    free(x->out);
    free(x->model_id);
    responses_echo_free(x->resp_echo);
    responses_stream_free(x->rs);
    free(x);
    *req_cls = NULL;
}

/* ------------------------------------------------------------ the daemon */

/* Each connection's kernel send buffer is kept small (answers are small,
 * streams go a token at a time): a client that stops reading then holds
 * little memory, and its slot soon pauses (JOB_TEXT_CAP) instead of
 * generating into buffers nobody reads. */
#define SEND_BUFFER 16384

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode toe) {
    (void)cls;
    (void)socket_ctx;
    if (toe != MHD_CONNECTION_NOTIFY_STARTED) return;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    int size = SEND_BUFFER;
    if (ci) setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

int http_start(server *S) {
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", S->opt.port);
    int rc = getaddrinfo(S->opt.host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "smallmind serve: error: cannot use host '%s': %s\n", S->opt.host, gai_strerror(rc));
        return -1;
    }
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    S->daemon = MHD_start_daemon(flags, (uint16_t)S->opt.port, NULL, NULL, on_request, S,
                                 MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, S,
                                 MHD_OPTION_NOTIFY_CONNECTION, on_connection, S,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)S->opt.timeout,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
                                 MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
                                 MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!S->daemon) {
        fprintf(stderr, "smallmind serve: error: cannot listen on %s:%d (in use, or not an address of this machine?)\n",
                S->opt.host, S->opt.port);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(S->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (di) S->opt.port = di->port;
    return 0;
}

void http_quiesce(server *S) {
    if (!S->daemon) return;
    /* no new connections; the listening socket stays open until the daemon
     * has stopped (its thread may still look at it) */
    S->listen_fd = MHD_quiesce_daemon(S->daemon);
}

void http_stop(server *S) {
    if (!S->daemon) return;
    MHD_stop_daemon(S->daemon);
    S->daemon = NULL;
    if (S->listen_fd >= 0) close(S->listen_fd);
    S->listen_fd = -1;
}

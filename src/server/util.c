/* util.c - llama-server's utility endpoints, answered on the HTTP thread
 * without a job (they read the vocabulary and the chat template, never the
 * model's weights): POST /tokenize (text to token ids, optionally with each
 * token's piece), /detokenize (ids to text) and /apply-template (messages
 * formatted as a chat request formats them, the prompt returned, nothing
 * generated). Request and answer shapes are llama-server's (its README,
 * examples/server/README.md at llama.cpp c392e509): text is tokenized with
 * special-token text parsed, "add_special" adds BOS as the model does, and
 * a piece is a control token's text, a byte token's byte, a word's bytes;
 * a piece that is not whole UTF-8 comes as a list of byte values. Errors
 * are 400s in OpenAI's error shape, naming the member at fault. Also the
 * chat formatting a chat job's prompt and /apply-template share (chat_text). */
#include "server.h"
#include "respond.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char BAD[] = "invalid_request_error";

static char *fail(int *status, int code, const char *param, const char *msg) {
    *status = code;
    return resp_error(code, code == 500 ? "server_error" : BAD, param, msg);
}

/* Whether n bytes are whole UTF-8 characters (text.c's reading of one). */
static int whole_utf8(const unsigned char *s, int n) {
    for (int i = 0, c; i < n; i += c)
        if ((c = text_utf8_char(s + i, (size_t)(n - i))) <= 0) return 0;
    return 1;
}

/* Room for `more` ids after the first n; 0, or -1 when out of memory. */
static int reserve(tok_list *t, size_t more) {
    if (t->n + more <= t->cap) return 0;
    size_t c = t->cap ? t->cap : 64;
    while (c < t->n + more) c *= 2;
    sm_token *g = realloc(t->ids, c * sizeof *g);
    if (!g) return -1;
    t->ids = g;
    t->cap = c;
    return 0;
}

int tok_add_ids(tok_list *t, const sm_token *ids, size_t n, char *msg, size_t msg_size) {
    if (reserve(t, n)) {
        snprintf(msg, msg_size, "out of memory");
        return -2;
    }
    if (n) memcpy(t->ids + t->n, ids, n * sizeof *ids);
    t->n += n;
    return 0;
}

int tok_add_text(const server *S, tok_list *t, const char *s, size_t len, int flags, const char *param, char *msg,
                 size_t msg_size) {
    size_t need = 0;
    sm_error err = {0};
    sm_status st = sm_tokenize_ex(S->model, s, len, flags, NULL, 0, &need, &err);
    if (st != SM_OK && st != SM_ERR_BUFFER_TOO_SMALL) {
        snprintf(msg, msg_size, "'%s' cannot be tokenized: %.200s", param, err.message);
        return -1;
    }
    if (need == 0) return 0;
    if (reserve(t, need)) {
        snprintf(msg, msg_size, "out of memory");
        return -2;
    }
    if (sm_tokenize_ex(S->model, s, len, flags, t->ids + t->n, need, &need, &err) != SM_OK) {
        snprintf(msg, msg_size, "'%s' cannot be tokenized: %.200s", param, err.message);
        return -1;
    }
    t->n += need;
    return 0;
}

int tok_add_mixed(const server *S, tok_list *t, json_t *v, int flags, const char *param, char *msg, size_t msg_size) {
    if (json_is_string(v)) return tok_add_text(S, t, json_string_value(v), json_string_length(v), flags, param, msg, msg_size);
    if (!json_is_array(v)) {
        snprintf(msg, msg_size, "'%s' must be a string or an array of strings and token ids", param);
        return -1;
    }
    /* llama-server's mixed prompt: strings and token ids in turn, BOS (with
     * SM_TOKENIZE_ADD_BOS) before the first element only if a string */
    int rc = 0;
    for (size_t i = 0; i < json_array_size(v) && !rc; i++) {
        json_t *e = json_array_get(v, i);
        if (json_is_string(e)) {
            rc = tok_add_text(S, t, json_string_value(e), json_string_length(e), i ? flags & ~(int)SM_TOKENIZE_ADD_BOS : flags,
                              param, msg, msg_size);
        } else if (json_is_integer(e) && json_integer_value(e) >= 0 && json_integer_value(e) < S->info.n_vocab) {
            sm_token id = (sm_token)json_integer_value(e);
            rc = tok_add_ids(t, &id, 1, msg, msg_size);
        } else {
            snprintf(msg, msg_size, "'%s'[%zu] must be a string or a token id (0 to %d)", param, i, S->info.n_vocab - 1);
            rc = -1;
        }
    }
    return rc;
}

static char *tokenize(const server *S, json_t *o, int *status) {
    json_t *content = json_object_get(o, "content"), *sp = json_object_get(o, "add_special"),
           *wp = json_object_get(o, "with_pieces");
    if (!content) {  /* as llama-server answers it */
        *status = 200;
        return resp_dump(json_pack("{s:[]}", "tokens"));
    }
    if ((sp && !json_is_boolean(sp)) || (wp && !json_is_boolean(wp)))
        return fail(status, 400, sp && !json_is_boolean(sp) ? "add_special" : "with_pieces",
                    "'add_special' and 'with_pieces' must be true or false");
    int add_special = json_is_true(sp), with_pieces = json_is_true(wp);
    tok_list list = {0};
    char msg[300] = "";
    int flags = SM_TOKENIZE_PARSE_SPECIAL | (add_special && S->info.add_bos ? SM_TOKENIZE_ADD_BOS : 0);
    int rc = tok_add_mixed(S, &list, content, flags, "content", msg, sizeof msg);
    if (rc) {
        free(list.ids);
        return fail(status, rc == -2 ? 500 : 400, rc == -2 ? NULL : "content", msg);
    }
    sm_token *ids = list.ids;
    size_t n = list.n;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!with_pieces) {
            json_array_append_new(arr, json_integer(ids[i]));
            continue;
        }
        const char *p;
        int pl = resp_token_text(S, ids[i], &p);
        json_t *piece;
        if (whole_utf8((const unsigned char *)p, pl)) {
            piece = json_stringn(p, (size_t)pl);
        } else {
            piece = json_array();
            for (int k = 0; k < pl; k++) json_array_append_new(piece, json_integer((unsigned char)p[k]));
        }
        json_array_append_new(arr, json_pack("{s:I, s:o}", "id", (json_int_t)ids[i], "piece", piece));
    }
    free(ids);
    *status = 200;
    return resp_dump(json_pack("{s:o}", "tokens", arr));
}

static char *detokenize(const server *S, json_t *o, int *status) {
    json_t *tokens = json_object_get(o, "tokens");
    if (!tokens) tokens = json_array();
    else json_incref(tokens);
    if (!json_is_array(tokens)) {
        json_decref(tokens);
        return fail(status, 400, "tokens", "'tokens' must be an array of token ids");
    }
    size_t len = 0, n = json_array_size(tokens);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(tokens, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) >= S->info.n_vocab) {
            json_decref(tokens);
            char msg[120];
            snprintf(msg, sizeof msg, "'tokens'[%zu] is not a token id (0 to %d)", i, S->info.n_vocab - 1);
            return fail(status, 400, "tokens", msg);
        }
        const char *p;
        len += (size_t)resp_token_text(S, (sm_token)json_integer_value(e), &p);
    }
    char *text = malloc(len + 1);
    if (!text) {
        json_decref(tokens);
        return fail(status, 500, NULL, "out of memory");
    }
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p;
        int pl = resp_token_text(S, (sm_token)json_integer_value(json_array_get(tokens, i)), &p);
        memcpy(text + at, p, (size_t)pl);
        at += (size_t)pl;
    }
    json_decref(tokens);
    /* a JSON string must be UTF-8: bytes that are not whole characters
     * (ids cut inside one) become U+FFFD as the completions' text does */
    json_t *s = resp_utf8_string(text, at);
    free(text);
    if (!s) return fail(status, 500, NULL, "out of memory");
    *status = 200;
    return resp_dump(json_pack("{s:o}", "content", s));
}

/* The request's messages through the template: the built-in format or, with
 * --jinja, the template run as Jinja, with the tools and the messages' tool
 * calls and results when there are any. */
static sm_status format_chat(const server *S, const request *r, char *buf, size_t cap, size_t *len, sm_error *err) {
    if (S->opt.jinja && (r->tools || r->extras || r->vars))
        return sm_chat_format_jinja_tools(S->model, S->jinja, r->msgs, r->n_msgs,
                                          (const sm_chat_value *const *)r->extras, r->tools_hidden ? NULL : r->tools,
                                          r->vars, 1, buf, cap, len, err);
    if (S->jinja) return sm_chat_format_jinja(S->model, S->jinja, r->msgs, r->n_msgs, 1, buf, cap, len, err);
    return sm_chat_format(S->model, S->tmpl, r->msgs, r->n_msgs, 1, buf, cap, len, err);
}

int chat_text(const server *S, const request *r, char **out, size_t *out_len, req_error *e) {
    size_t len = 0;
    sm_error err = {0};
    sm_status st = format_chat(S, r, NULL, 0, &len, &err);
    if (st != SM_OK && st != SM_ERR_BUFFER_TOO_SMALL)
        return req_fail(e, 400, "invalid_request_error", "messages", "the messages cannot be formatted: %s", err.message);
    char *text = malloc(len + 1);
    if (!text) return req_fail(e, 500, "server_error", NULL, "out of memory");
    if (format_chat(S, r, text, len + 1, &len, &err) != SM_OK) {
        free(text);
        return req_fail(e, 400, "invalid_request_error", "messages", "the messages cannot be formatted: %s", err.message);
    }
    *out = tools_prompt(S, r, text, &len);
    *out_len = len;
    return 0;
}

static char *apply_template(const server *S, const char *body, size_t blen, int *status) {
    request r;
    req_error e = {0};
    req_limits lim = {S->opt.n_ctx, S->info.n_vocab, S->opt.jinja};
    char *text = NULL;
    size_t len = 0;
    int rc = request_parse(REQ_CHAT, body, blen, &lim, &r, &e);
    if (!rc) rc = tools_prepare(S, &r, &e);
    if (!rc) rc = chat_text(S, &r, &text, &len, &e);
    request_free(&r);
    if (rc) {
        *status = e.status;
        return resp_error(e.status, e.type, e.param, e.message);
    }
    json_t *s = json_stringn(text, len);
    free(text);
    if (!s) return fail(status, 400, "messages", "the formatted prompt is not UTF-8");
    *status = 200;
    return resp_dump(json_pack("{s:o}", "prompt", s));
}

char *util_answer(const server *S, enum util_kind kind, const char *body, size_t len, int *status) {
    if (kind == UTIL_APPLY_TEMPLATE) return apply_template(S, body, len, status);
    json_error_t je;
    json_t *o = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!o || !json_is_object(o)) {
        char msg[300];
        if (!o) snprintf(msg, sizeof msg, "the body is not JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        else snprintf(msg, sizeof msg, "the body must be a JSON object");
        json_decref(o);
        return fail(status, 400, NULL, msg);
    }
    char *out = kind == UTIL_TOKENIZE ? tokenize(S, o, status) : detokenize(S, o, status);
    json_decref(o);
    if (!out) return fail(status, 500, NULL, "out of memory");
    return out;
}

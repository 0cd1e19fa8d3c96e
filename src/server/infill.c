/* infill.c - llama-server's POST /infill: filling in the middle of a text
 * (code editors' completion plugins ask for it). The prompt is the one
 * llama.cpp's format_infill builds (examples/server/utils.hpp at c392e509,
 * with llama-server's defaults: batch 2048, n_predict -1), from the
 * model's fill-in-the-middle tokens:
 *
 *   [FIM_REP]myproject\n [FIM_SEP]file\n chunk ... [FIM_SEP]filename\n
 *   [BOS] [FIM_PRE]prefix prompt [FIM_SUF]suffix [FIM_MID]
 *
 * (with --spm-infill the suffix part before the prefix part; without the
 * repository and separator tokens, chunks follow a "--- snippet ---" line).
 * The prefix keeps its last 1536 tokens, the suffix its first 510 less the
 * prompt's; the extra chunks (the last of them) only what the context
 * leaves beyond the batch, which with one slot of 2048 or fewer is none. */
#include "server.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define INFILL_BATCH 2048      /* llama-server's default batch (-b), which sizes the parts */
#define INFILL_N_PREDICT (-1)  /* and its default n_predict (the server's, not the request's) */

typedef struct toks {
    sm_token *p;
    size_t n, cap;
    int oom;
} toks;

static void push(toks *t, sm_token x) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        sm_token *g = realloc(t->p, cap * sizeof *g);
        if (!g) {
            t->oom = 1;
            return;
        }
        t->p = g, t->cap = cap;
    }
    t->p[t->n++] = x;
}

/* text's tokens (no BOS; special tokens' text read as such with special) */
static int push_text(const server *S, toks *t, const char *s, size_t n, int special, req_error *e) {
    size_t cap = n + 8, need = 0;
    sm_token *buf = malloc(cap * sizeof *buf);
    if (!buf) return req_fail(e, 500, "server_error", NULL, "out of memory");
    sm_error err = {0};
    sm_status st = sm_tokenize_ex(S->model, s, n, special ? SM_TOKENIZE_PARSE_SPECIAL : 0, buf, cap, &need, &err);
    for (size_t i = 0; st == SM_OK && i < need; i++) push(t, buf[i]);
    free(buf);
    if (st != SM_OK) return req_fail(e, 400, "invalid_request_error", NULL, "the text cannot be tokenized: %s", err.message);
    return t->oom ? req_fail(e, 500, "server_error", NULL, "out of memory") : 0;
}

/* input_prefix / input_suffix: text, or an array of texts and token ids (request.c checked them) */
static int push_mixed(const server *S, toks *t, json_t *v, req_error *e) {
    if (json_is_string(v)) return push_text(S, t, json_string_value(v), json_string_length(v), 0, e);
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *x = json_array_get(v, i);
        if (json_is_integer(x)) push(t, (sm_token)json_integer_value(x));
        else if (push_text(S, t, json_string_value(x), json_string_length(x), 0, e)) return -1;
    }
    return t->oom ? req_fail(e, 500, "server_error", NULL, "out of memory") : 0;
}

static void push_all(toks *t, const sm_token *p, size_t n) {
    for (size_t i = 0; i < n; i++) push(t, p[i]);
}

int infill_prompt(const server *S, const request *r, sm_token **out, int *n_out, req_error *e) {
    const sm_model_info *mi = &S->info;
    if (mi->fim_pre < 0 || mi->fim_suf < 0 || mi->fim_mid < 0)
        return req_fail(e, 501, "not_supported_error", NULL, "Infill is not supported by this model: %s%s%s",
                        mi->fim_pre < 0 ? "prefix token is missing. " : "", mi->fim_suf < 0 ? "suffix token is missing. " : "",
                        mi->fim_mid < 0 ? "middle token is missing. " : "");
    json_t *doc = (json_t *)r->doc, *extra = json_object_get(doc, "input_extra");
    toks pre = {0}, suf = {0}, prompt = {0}, chunks = {0}, all = {0};
    const req_prompt *rp = &r->prompts[0];
    int rc = push_mixed(S, &pre, json_object_get(doc, "input_prefix"), e);
    if (!rc) rc = push_mixed(S, &suf, json_object_get(doc, "input_suffix"), e);
    if (!rc) rc = push_text(S, &prompt, rp->text ? rp->text : "", rp->len, 1, e);
    if (!rc && mi->fim_rep >= 0) {
        push(&chunks, mi->fim_rep);
        rc = push_text(S, &chunks, "myproject\n", 10, 0, e);
    }
    for (size_t i = 0; !rc && i < json_array_size(extra); i++) {
        json_t *c = json_array_get(extra, i), *text = json_object_get(c, "text"), *file = json_object_get(c, "filename");
        if (mi->fim_sep >= 0) {
            char *name = malloc((file ? json_string_length(file) : 3) + 2);
            if (!name) {
                rc = req_fail(e, 500, "server_error", NULL, "out of memory");
                break;
            }
            size_t nl = file ? json_string_length(file) : 3;
            memcpy(name, file ? json_string_value(file) : "tmp", nl);
            name[nl] = '\n';
            push(&chunks, mi->fim_sep);
            rc = push_text(S, &chunks, name, nl + 1, 0, e);
            free(name);
        } else {
            static const char SNIPPET[] = "\n\n--- snippet ---\n\n";
            rc = push_text(S, &chunks, SNIPPET, sizeof SNIPPET - 1, 0, e);
        }
        if (!rc) rc = push_text(S, &chunks, json_string_value(text), json_string_length(text), 0, e);
    }
    if (!rc && mi->fim_sep >= 0) {
        push(&chunks, mi->fim_sep);
        rc = push_text(S, &chunks, "filename\n", 9, 0, e);
    }
    if (!rc) {
        long quarter = INFILL_BATCH / 4, ctx = S->opt.n_ctx;
        size_t take_pre = pre.n < (size_t)(3 * quarter) ? pre.n : (size_t)(3 * quarter);
        long room = quarter - (2 + (long)prompt.n);
        size_t take_suf = room <= 0 ? 0 : suf.n < (size_t)room ? suf.n : (size_t)room;
        long room_extra = ctx - INFILL_BATCH - 2 * INFILL_N_PREDICT;
        size_t take_extra = room_extra <= 0 ? 0 : chunks.n < (size_t)room_extra ? chunks.n : (size_t)room_extra;
        /* the prefix part: [FIM_PRE] prefix prompt; the suffix part: [FIM_SUF] suffix */
        toks p1 = {0}, p2 = {0};
        push(&p1, mi->fim_pre);
        push_all(&p1, pre.p + (pre.n - take_pre), take_pre);
        push_all(&p1, prompt.p, prompt.n);
        push(&p2, mi->fim_suf);
        push_all(&p2, suf.p, take_suf);
        const toks *first = S->opt.spm_infill ? &p2 : &p1, *last = S->opt.spm_infill ? &p1 : &p2;
        push_all(&all, chunks.p + (chunks.n - take_extra), take_extra);
        if (mi->add_bos && mi->bos >= 0) push(&all, mi->bos);
        push_all(&all, first->p, first->n);
        push_all(&all, last->p, last->n);
        push(&all, mi->fim_mid);
        free(p1.p);
        free(p2.p);
        if (all.oom || p1.oom || p2.oom) rc = req_fail(e, 500, "server_error", NULL, "out of memory");
        else if (all.n > (size_t)S->opt.n_ctx)
            rc = req_fail(e, 400, "invalid_request_error", NULL, "the infill prompt is %zu tokens; the context holds %d (-c)",
                          all.n, S->opt.n_ctx);
    }
    free(pre.p);
    free(suf.p);
    free(prompt.p);
    free(chunks.p);
    if (rc) {
        free(all.p);
        return rc;
    }
    *out = all.p;
    *n_out = (int)all.n;
    return 0;
}

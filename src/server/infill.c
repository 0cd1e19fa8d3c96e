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

/* the request's fault (400, naming param) or out of memory (500), as a tok_add_* said */
static int failed(int rc, const char *param, const char *msg, req_error *e) {
    return rc == -2 ? req_fail(e, 500, "server_error", NULL, "out of memory")
                    : req_fail(e, 400, "invalid_request_error", param, "%s", msg);
}

int infill_prompt(const server *S, const request *r, sm_token **out, int *n_out, req_error *e) {
    const sm_model_info *mi = &S->info;
    if (mi->fim_pre < 0 || mi->fim_suf < 0 || mi->fim_mid < 0)
        return req_fail(e, 501, "not_supported_error", NULL, "Infill is not supported by this model: %s%s%s",
                        mi->fim_pre < 0 ? "prefix token is missing. " : "", mi->fim_suf < 0 ? "suffix token is missing. " : "",
                        mi->fim_mid < 0 ? "middle token is missing. " : "");
    json_t *doc = (json_t *)r->doc, *extra = json_object_get(doc, "input_extra");
    tok_list pre = {0}, suf = {0}, prompt = {0}, chunks = {0}, p1 = {0}, p2 = {0}, all = {0};
    const req_prompt *rp = &r->prompts[0];
    char msg[300] = "";
    /* the prefix and suffix without special tokens' text read as such (llama.cpp's tokenize_mixed), the prompt with */
    const char *param = "input_prefix";
    int rc = tok_add_mixed(S, &pre, json_object_get(doc, param), 0, param, msg, sizeof msg);
    if (!rc) {
        param = "input_suffix";
        rc = tok_add_mixed(S, &suf, json_object_get(doc, param), 0, param, msg, sizeof msg);
    }
    if (!rc) {
        param = "prompt";
        rc = tok_add_text(S, &prompt, rp->text ? rp->text : "", rp->len, SM_TOKENIZE_PARSE_SPECIAL, param, msg, sizeof msg);
    }
    if (!rc) param = "input_extra";
    if (!rc && mi->fim_rep >= 0) {
        rc = tok_add_ids(&chunks, &mi->fim_rep, 1, msg, sizeof msg);
        if (!rc) rc = tok_add_text(S, &chunks, "myproject\n", 10, 0, param, msg, sizeof msg);
    }
    for (size_t i = 0; !rc && i < json_array_size(extra); i++) {
        json_t *c = json_array_get(extra, i), *text = json_object_get(c, "text"), *file = json_object_get(c, "filename");
        if (mi->fim_sep >= 0) {
            size_t nl = file ? json_string_length(file) : 3;
            char *name = malloc(nl + 1);
            if (!name) {
                rc = -2;
                break;
            }
            memcpy(name, file ? json_string_value(file) : "tmp", nl);
            name[nl] = '\n';
            rc = tok_add_ids(&chunks, &mi->fim_sep, 1, msg, sizeof msg);
            if (!rc) rc = tok_add_text(S, &chunks, name, nl + 1, 0, param, msg, sizeof msg);
            free(name);
        } else {
            static const char SNIPPET[] = "\n\n--- snippet ---\n\n";
            rc = tok_add_text(S, &chunks, SNIPPET, sizeof SNIPPET - 1, 0, param, msg, sizeof msg);
        }
        if (!rc) rc = tok_add_text(S, &chunks, json_string_value(text), json_string_length(text), 0, param, msg, sizeof msg);
    }
    if (!rc && mi->fim_sep >= 0) {
        rc = tok_add_ids(&chunks, &mi->fim_sep, 1, msg, sizeof msg);
        if (!rc) rc = tok_add_text(S, &chunks, "filename\n", 9, 0, param, msg, sizeof msg);
    }
    if (!rc) {
        long quarter = INFILL_BATCH / 4, ctx = S->opt.n_ctx;
        size_t take_pre = pre.n < (size_t)(3 * quarter) ? pre.n : (size_t)(3 * quarter);
        long room = quarter - (2 + (long)prompt.n);
        size_t take_suf = room <= 0 ? 0 : suf.n < (size_t)room ? suf.n : (size_t)room;
        long room_extra = ctx - INFILL_BATCH - 2 * INFILL_N_PREDICT;
        size_t take_extra = room_extra <= 0 ? 0 : chunks.n < (size_t)room_extra ? chunks.n : (size_t)room_extra;
        /* the prefix part: [FIM_PRE] prefix prompt; the suffix part: [FIM_SUF] suffix */
        rc = tok_add_ids(&p1, &mi->fim_pre, 1, msg, sizeof msg);
        if (!rc) rc = tok_add_ids(&p1, pre.ids + (pre.n - take_pre), take_pre, msg, sizeof msg);
        if (!rc) rc = tok_add_ids(&p1, prompt.ids, prompt.n, msg, sizeof msg);
        if (!rc) rc = tok_add_ids(&p2, &mi->fim_suf, 1, msg, sizeof msg);
        if (!rc) rc = tok_add_ids(&p2, suf.ids, take_suf, msg, sizeof msg);
        const tok_list *first = S->opt.spm_infill ? &p2 : &p1, *last = S->opt.spm_infill ? &p1 : &p2;
        /* the extra context, then BOS, as llama.cpp puts them */
        if (!rc) rc = tok_add_ids(&all, chunks.ids + (chunks.n - take_extra), take_extra, msg, sizeof msg);
        if (!rc && mi->add_bos && mi->bos >= 0) rc = tok_add_ids(&all, &mi->bos, 1, msg, sizeof msg);
        if (!rc) rc = tok_add_ids(&all, first->ids, first->n, msg, sizeof msg);
        if (!rc) rc = tok_add_ids(&all, last->ids, last->n, msg, sizeof msg);
        if (!rc) rc = tok_add_ids(&all, &mi->fim_mid, 1, msg, sizeof msg);
    }
    free(pre.ids);
    free(suf.ids);
    free(prompt.ids);
    free(chunks.ids);
    free(p1.ids);
    free(p2.ids);
    if (!rc && all.n > (size_t)S->opt.n_ctx) {
        free(all.ids);
        return req_fail(e, 400, "invalid_request_error", NULL, "the infill prompt is %zu tokens; the context holds %d (-c)",
                        all.n, S->opt.n_ctx);
    }
    if (rc) {
        free(all.ids);
        return failed(rc, param, msg, e);
    }
    *out = all.ids;
    *n_out = (int)all.n;
    return 0;
}

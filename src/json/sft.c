/* sft.c - chat fine-tuning data from JSONL (see sft.h): each line's
 * messages are read by messages.c and tokenized with their mask by the
 * library's sm_chat_tokenize (or sm_chat_tokenize_jinja). */
#include "json/sft.h"
#include "json/messages.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/mapfile.h"

#include <stdio.h>
#include <string.h>

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

/* Appends one record's tokens, growing the arrays. */
static sm_status add_record(sm_json_sft *o, size_t *cap, size_t *n_cap, const sm_model *m, const char *tmpl, int jinja,
                            const sm_json_messages *msgs, int add_bos, sm_error *err) {
    sm_status (*tokenize)(const sm_model *, const char *, const sm_chat_message *, size_t, int, sm_token *, uint8_t *,
                          size_t, size_t *, sm_error *) = jinja ? sm_chat_tokenize_jinja : sm_chat_tokenize;
    size_t need = 0;
    sm_status st = tokenize(m, tmpl, msgs->msgs, msgs->n, add_bos, NULL, NULL, 0, &need, err);
    if (st) return st;
    size_t have = o->ex.n ? o->offsets[o->ex.n] : 0;
    if (have + need > *cap) {
        size_t c = (have + need) * 2 + 1024;
        sm_token *t = sm_alloc(c * sizeof *t);
        uint8_t *k = sm_alloc(c);
        if (!t || !k) { sm_free(t); sm_free(k); return sm_fail(err, SM_ERR_NOMEM, "out of memory"); }
        if (have) { memcpy(t, o->tokens, have * sizeof *t); memcpy(k, o->mask, have); }
        sm_free(o->tokens);
        sm_free(o->mask);
        o->tokens = t, o->mask = k, *cap = c;
    }
    if (o->ex.n + 2 > *n_cap) {
        size_t c = *n_cap * 2 + 64;
        size_t *f = sm_alloc(c * sizeof *f);
        if (!f) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
        if (o->offsets) memcpy(f, o->offsets, (o->ex.n + 1) * sizeof *f);
        else f[0] = 0;
        sm_free(o->offsets);
        o->offsets = f, *n_cap = c;
    }
    size_t got = 0;
    if ((st = tokenize(m, tmpl, msgs->msgs, msgs->n, add_bos, o->tokens + have, o->mask + have, need, &got, err)))
        return st;
    for (size_t i = 0; i < got; i++) o->n_masked += o->mask[have + i];
    o->offsets[++o->ex.n] = have + got;
    return SM_OK;
}

sm_status sm_json_sft_parse(const char *text, size_t size, const char *name, const sm_model *model, const char *tmpl,
                            int jinja, sm_json_sft *out, sm_error *err) {
    memset(out, 0, sizeof *out);
    sm_model_info info;
    sm_model_get_info(model, &info);
    size_t cap = 0, n_cap = 0, line = 0;
    sm_status st = SM_OK;
    const char *p = text, *end = p + size;
    while (!st && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line++;
        if (!blank(p, len)) {
            char source[1100];
            snprintf(source, sizeof source, "%s:%zu", name, line);
            sm_json_messages msgs;
            if (!(st = sm_json_messages_parse(p, len, source, &msgs, err))) {
                if (msgs.n == 0) st = sm_fail(err, SM_ERR_FORMAT, "%s: no messages", source);
                else if ((st = add_record(out, &cap, &n_cap, model, tmpl, jinja, &msgs, info.add_bos, err)))
                    sm_error_prefix(err, "%s", source);
                sm_json_messages_free(&msgs);
            }
        }
        p += len + 1;
    }
    if (!st && out->ex.n == 0) st = sm_fail(err, SM_ERR_FORMAT, "%s has no records", name);
    if (!st && out->n_masked == 0) st = sm_fail(err, SM_ERR_FORMAT, "%s has no assistant replies to learn", name);
    if (st) {
        sm_json_sft_free(out);
        return st;
    }
    out->ex.tokens = out->tokens;
    out->ex.mask = out->mask;
    out->ex.offsets = out->offsets;
    return SM_OK;
}

sm_status sm_json_sft_load(const char *path, const sm_model *model, const char *tmpl, int jinja, sm_json_sft *out,
                           sm_error *err) {
    memset(out, 0, sizeof *out);
    sm_mapped_file f;
    sm_status st = sm_map_file(path, &f, err);
    if (st) return st;
    st = sm_json_sft_parse((const char *)f.data, f.size, path, model, tmpl, jinja, out, err);
    sm_unmap_file(&f);
    return st;
}

void sm_json_sft_free(sm_json_sft *s) {
    sm_free(s->tokens);
    sm_free(s->mask);
    sm_free(s->offsets);
    memset(s, 0, sizeof *s);
}

/* jinja_apply.c - the public --jinja calls: a conversation through a
 * template run as Jinja (jinja.c), with what llama.cpp c392e509 does
 * around minja's render (common/minja/chat-template.hpp and
 * common/chat.cpp, read there): the system-role probe and fallback, and
 * the removal of a leading BOS and trailing EOS text. */
#include "chat/jinja.h"
#include "chat/template.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

sm_chat_jinja_params sm_chat_jinja_default_params(void) {
    sm_chat_jinja_params p = {NULL, NULL, 1, -1};
    return p;
}

static sm_status render(const char *tmpl, const sm_chat_message *msgs, size_t n, const sm_chat_jinja_params *p,
                        long long now, int add, char **out, size_t *len, sm_error *err) {
    sm_jinja_ctx ctx = {msgs, n, add, p->bos_token, p->eos_token, now};
    return sm_jinja_render(tmpl, strlen(tmpl), &ctx, out, len, err);
}

/* minja's supports_system_role: a system message's text shows in the
 * output (rendered at time 0, errors counting as no). */
static int writes_system(const char *tmpl, const sm_chat_jinja_params *p) {
    static const char needle[] = "<System Needle>";
    const sm_chat_message probe[2] = {{"system", needle}, {"user", "Hey"}};
    char *out = NULL;
    size_t len = 0;
    if (render(tmpl, probe, 2, p, 0, 0, &out, &len, NULL) != SM_OK) return 0;
    int yes = strstr(out, needle) != NULL;
    free(out);
    return yes;
}

/* The pending text as a user message of its own string (kept in own[]
 * for the caller to free); 0, or -1 when out of memory. */
static int emit_user(const char *pending, size_t *plen, sm_chat_message *m, size_t *k, char **own, size_t *o) {
    if (!*plen) return 0;
    char *s = malloc(*plen + 1);
    if (!s) return -1;
    memcpy(s, pending, *plen);
    s[*plen] = '\0';
    own[(*o)++] = s;
    m[(*k)++] = (sm_chat_message){"user", s};
    *plen = 0;
    return 0;
}

/* minja's system-role fallback: system texts (joined by "\n") go before
 * the next user message's content, after a "\n"; before any other role,
 * and at the end, they become a user message of their own. The strings
 * made are listed in *owned for the caller to free. */
static sm_status merge_system(const sm_chat_message *in, size_t n, sm_chat_message **out, size_t *n_out,
                              char ***owned, size_t *n_owned, sm_error *err) {
    sm_chat_message *m = malloc((2 * n + 1) * sizeof *m);
    char **own = malloc((n + 1) * sizeof *own);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += strlen(in[i].content) + 1;
    char *pending = malloc(total + 1);   /* each message's text joins it at most once */
    size_t k = 0, o = 0, plen = 0;
    int bad = !m || !own || !pending;
    for (size_t i = 0; i < n && !bad; i++) {
        size_t cl = strlen(in[i].content);
        int is_user = !strcmp(in[i].role, "user");
        if (!strcmp(in[i].role, "system") || (is_user && plen)) {
            if (plen && (!is_user || cl)) pending[plen++] = '\n';   /* minja: systems always, a user's if any */
            memcpy(pending + plen, in[i].content, cl);
            plen += cl;
            if (is_user) bad = emit_user(pending, &plen, m, &k, own, &o) != 0;
            continue;
        }
        if (!is_user) bad = emit_user(pending, &plen, m, &k, own, &o) != 0;
        m[k++] = in[i];
    }
    if (!bad) bad = emit_user(pending, &plen, m, &k, own, &o) != 0;
    free(pending);
    *out = m;
    *n_out = k;
    *owned = own;
    *n_owned = o;
    return bad ? sm_fail(err, SM_ERR_NOMEM, "out of memory") : SM_OK;
}

static int starts_with(const char *s, size_t n, const char *p) {
    size_t pn = strlen(p);
    return pn && pn <= n && !memcmp(s, p, pn);
}

/* keep_eos: a trailing EOS text stays (training data, where it ends the
 * last reply and is learnt with it) */
static sm_status apply_jinja(const char *tmpl, const sm_chat_message *msgs, size_t n, const sm_chat_jinja_params *params,
                             int keep_eos, char *buf, size_t cap, size_t *len, sm_error *err) {
    if (len) *len = 0;
    if (!tmpl) return sm_fail(err, SM_ERR_INVALID_ARG, "no chat template given");
    sm_chat_jinja_params p = params ? *params : sm_chat_jinja_default_params();
    sm_status st = sm_chat_check_messages(msgs, n, 0, err);
    if (st != SM_OK) return st;

    const sm_chat_message *use = msgs;
    sm_chat_message *merged = NULL;
    char **owned = NULL;
    size_t n_use = n, n_owned = 0;
    if (!writes_system(tmpl, &p)) {
        st = merge_system(msgs, n, &merged, &n_use, &owned, &n_owned, err);
        use = merged;
    }
    char *out = NULL;
    size_t olen = 0;
    if (st == SM_OK)
        st = render(tmpl, use, n_use, &p, p.now < 0 ? (long long)time(NULL) : p.now, p.add_assistant, &out, &olen, err);
    for (size_t i = 0; i < n_owned; i++) free(owned[i]);
    free(owned);
    free(merged);
    if (st != SM_OK) return st;

    size_t a = 0, b = olen;
    if (p.bos_token && starts_with(out, olen, p.bos_token)) a = strlen(p.bos_token);
    if (p.eos_token && !keep_eos) {
        size_t en = strlen(p.eos_token);
        if (en && en <= b - a && !memcmp(out + b - en, p.eos_token, en)) b -= en;
    }
    if (buf && cap > b - a) memcpy(buf, out + a, b - a);
    free(out);
    return sm_chat_finish(buf, cap, b - a, len, err);
}

sm_status sm_chat_apply_jinja(const char *tmpl, const sm_chat_message *msgs, size_t n,
                              const sm_chat_jinja_params *params, char *buf, size_t cap, size_t *len, sm_error *err) {
    return apply_jinja(tmpl, msgs, n, params, 0, buf, cap, len, err);
}

/* A token's text as the template sees it, NUL-terminated (NULL = none). */
static char *token_text(const sm_model *model, sm_token t) {
    const char *s;
    int n = t >= 0 ? sm_token_text(model, t, &s) : -1;
    if (n < 0) return NULL;
    char *c = malloc((size_t)n + 1);
    if (c) {
        memcpy(c, s, (size_t)n);
        c[n] = '\0';
    }
    return c;
}

sm_status sm_chat_format_jinja_ex(const sm_model *model, const char *tmpl, const sm_chat_message *msgs, size_t n,
                                  int add_assistant, int keep_eos, long long now, char *buf, size_t cap, size_t *len,
                                  sm_error *err) {
    if (len) *len = 0;
    char *text = NULL;
    if (!tmpl && model) {
        const char *t = NULL;
        size_t tl = 0;
        if (sm_model_meta_str(model, "tokenizer.chat_template", &t, &tl) == 1 && tl > 0) {
            if (!(text = malloc(tl + 1))) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
            memcpy(text, t, tl);
            text[tl] = '\0';
            tmpl = text;
        }
    }
    if (!tmpl) return sm_chat_apply("chatml", msgs, n, add_assistant, buf, cap, len, err);
    sm_chat_jinja_params p = sm_chat_jinja_default_params();
    p.add_assistant = add_assistant;
    p.now = now;
    char *bos = NULL, *eos = NULL;
    if (model) {
        sm_model_info info;
        sm_model_get_info(model, &info);
        bos = token_text(model, info.bos);
        eos = token_text(model, info.eos);
    }
    p.bos_token = bos;
    p.eos_token = eos;
    sm_status st = apply_jinja(tmpl, msgs, n, &p, keep_eos, buf, cap, len, err);
    free(bos);
    free(eos);
    free(text);
    return st;
}

sm_status sm_chat_format_jinja(const sm_model *model, const char *tmpl, const sm_chat_message *msgs, size_t n,
                               int add_assistant, char *buf, size_t cap, size_t *len, sm_error *err) {
    return sm_chat_format_jinja_ex(model, tmpl, msgs, n, add_assistant, 0, -1, buf, cap, len, err);
}

sm_status sm_chat_jinja_template(const sm_model *model, const char *tmpl, char **text, sm_error *err) {
    *text = NULL;
    size_t n;
    const char *const *names = sm_chat_template_names(&n);
    for (size_t i = 0; tmpl && i < n; i++)
        if (!strcmp(tmpl, names[i])) return SM_OK;
    const char *src = tmpl;
    size_t len = tmpl ? strlen(tmpl) : 0;
    if (!tmpl && (!model || sm_model_meta_str(model, "tokenizer.chat_template", &src, &len) != 1 || len == 0))
        return SM_OK;
    char *t = malloc(len + 1);
    if (!t) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    memcpy(t, src, len);
    t[len] = '\0';
    const sm_chat_message probe = {"user", "Hello"};
    size_t need;
    sm_status st = sm_chat_format_jinja(model, t, &probe, 1, 1, NULL, 0, &need, err);
    if (st != SM_OK) {
        free(t);
        sm_error_prefix(err, "the chat template cannot be run as Jinja");
        return st;
    }
    *text = t;
    return SM_OK;
}

/* chat_state.c - see chat_state.h.
 *
 * Each turn formats the whole conversation with the chat template. When
 * the session's tokens stand for a prefix of that text (`held`: the prompt
 * of the last turn and the part of its reply that was evaluated), only the
 * rest is tokenized and evaluated after them, as llama-cli's conversation
 * mode appends each new turn. Otherwise (the first turn after a load of a
 * file without a conversation, after older turns were dropped, after the
 * system prompt changed) the whole prompt is tokenized and the session
 * keeps the longest prefix of tokens it shares with it (reuse_prefix). */
#include "chat_state.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PACK_MAGIC "smallmind-chat\n"
#define PACK_VERSION 1u

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void forget_held(chat *c) {
    free(c->held);
    c->held = NULL;
    c->held_len = 0;
}

void chat_init(chat *c, sm_model *model, sm_session *session, const char *tmpl, const char *eot) {
    memset(c, 0, sizeof *c);
    c->model = model;
    c->session = session;
    c->tmpl = tmpl;
    c->eot = eot;
    c->keep_arg = -1;
    c->n_predict = 512;
    c->gp = sm_generate_default_params();
    c->held = dup_n("", 0);   /* an empty session stands for the empty text */
}

static void free_msg(chat_msg *m) {
    free(m->role);
    free(m->content);
    m->role = m->content = NULL;
}

static void clear_msgs(chat *c, int from) {
    for (int i = from; i < c->n_msgs; i++) free_msg(&c->msgs[i]);
    c->n_msgs = from;
}

void chat_free(chat *c) {
    clear_msgs(c, 0);
    free(c->msgs);
    free(c->reply_ids);
    forget_held(c);
    memset(c, 0, sizeof *c);
}

static int push_msg(chat *c, const char *role, const char *content, size_t len) {
    if (c->n_msgs == c->cap_msgs) {
        int cap = c->cap_msgs ? 2 * c->cap_msgs : 16;
        chat_msg *m = realloc(c->msgs, (size_t)cap * sizeof *m);
        if (!m) return -1;
        c->msgs = m;
        c->cap_msgs = cap;
    }
    chat_msg *m = &c->msgs[c->n_msgs];
    m->role = dup_n(role, strlen(role));
    m->content = dup_n(content, len);
    if (!m->role || !m->content) {
        free_msg(m);
        return -1;
    }
    c->n_msgs++;
    return 0;
}

static void pop_msg(chat *c) {
    if (c->n_msgs > 0) free_msg(&c->msgs[--c->n_msgs]);
}

int chat_set_system(chat *c, const char *text) {
    if (c->has_system) {
        free_msg(&c->msgs[0]);
        memmove(c->msgs, c->msgs + 1, (size_t)(c->n_msgs - 1) * sizeof *c->msgs);
        c->n_msgs--;
        c->has_system = 0;
    }
    if (text) {
        if (push_msg(c, "system", text, strlen(text)) != 0) return -1;
        chat_msg sys = c->msgs[c->n_msgs - 1];
        memmove(c->msgs + 1, c->msgs, (size_t)(c->n_msgs - 1) * sizeof *c->msgs);
        c->msgs[0] = sys;
        c->has_system = 1;
    }
    /* what the session holds no longer starts the conversation's text */
    if (sm_session_n_past(c->session) > 0) forget_held(c);
    return 0;
}

void chat_reset(chat *c) {
    clear_msgs(c, c->has_system);
    sm_session_reset(c->session);
    forget_held(c);
    c->held = dup_n("", 0);
}

/* The conversation formatted, ending with the assistant's opening when add. */
static char *format(const chat *c, int n, int add, size_t *len, sm_error *err) {
    sm_chat_message *m = malloc((size_t)(n ? n : 1) * sizeof *m);
    if (!m) return NULL;
    for (int i = 0; i < n; i++) m[i] = (sm_chat_message){c->msgs[i].role, c->msgs[i].content};
    char *out = NULL;
    size_t need = 0;
    if (c->jinja) {
        if (sm_chat_format_jinja(c->model, c->jinja, m, (size_t)n, add, NULL, 0, &need, err) == SM_OK &&
            (out = malloc(need + 1)) &&
            sm_chat_format_jinja(c->model, c->jinja, m, (size_t)n, add, out, need + 1, len, err) != SM_OK) {
            free(out);
            out = NULL;
        }
    } else if (sm_chat_apply(c->tmpl, m, (size_t)n, add, NULL, 0, &need, err) == SM_OK && (out = malloc(need + 1)) &&
        sm_chat_apply(c->tmpl, m, (size_t)n, add, out, need + 1, len, err) != SM_OK) {
        free(out);
        out = NULL;
    }
    free(m);
    return out;
}

static sm_token *tokenize(const chat *c, const char *text, size_t len, int bos, int *n, sm_error *err) {
    unsigned flags = SM_TOKENIZE_PARSE_SPECIAL;
    sm_model_info info;
    sm_model_get_info(c->model, &info);
    if (bos && info.add_bos) flags |= SM_TOKENIZE_ADD_BOS;
    size_t need = 0;
    sm_status st = sm_tokenize_ex(c->model, text, len, flags, NULL, 0, &need, err);
    if (st != SM_OK && st != SM_ERR_BUFFER_TOO_SMALL) return NULL;
    sm_token *t = malloc((need ? need : 1) * sizeof *t);
    if (!t || sm_tokenize_ex(c->model, text, len, flags, t, need, &need, err) != SM_OK) {
        free(t);
        return NULL;
    }
    *n = (int)need;
    return t;
}

int chat_n_keep(chat *c) {
    int n_ctx = sm_session_n_ctx(c->session), keep = c->keep_arg;
    if (keep < 0) {
        sm_model_info info;
        sm_model_get_info(c->model, &info);
        keep = info.add_bos;
        size_t len;
        sm_error err;
        char *sys = c->has_system ? format(c, 1, 0, &len, &err) : NULL;
        int n = 0;
        sm_token *t = sys ? tokenize(c, sys, len, 1, &n, &err) : NULL;
        if (t) keep = n;
        free(t);
        free(sys);
    }
    /* a shift must have something to discard */
    return keep > n_ctx / 2 ? n_ctx / 2 : keep;
}

/* Drops the oldest whole turn after the system prompt (a user message and
 * the replies up to the next user message), never the last message. */
static int drop_oldest_turn(chat *c) {
    int first = c->has_system, end = first + 1;
    if (first >= c->n_msgs - 1) return 0;
    while (end < c->n_msgs - 1 && strcmp(c->msgs[end].role, "user") != 0) end++;
    for (int i = first; i < end; i++) free_msg(&c->msgs[i]);
    memmove(c->msgs + first, c->msgs + end, (size_t)(c->n_msgs - end) * sizeof *c->msgs);
    c->n_msgs -= end - first;
    forget_held(c);
    return 1;
}

typedef struct reply {
    chat_out_fn out;
    void *user;
    char *text;
    size_t len, cap;
    sm_token *ids;
    int n_ids, cap_ids, oom;
} reply;

static int on_token(void *user, sm_token tok, const char *text, size_t len) {
    reply *r = user;
    if (r->len + len + 1 > r->cap) {
        size_t cap = (r->len + len + 1) * 2;
        char *t = realloc(r->text, cap);
        if (!t) { r->oom = 1; return 1; }
        r->text = t;
        r->cap = cap;
    }
    memcpy(r->text + r->len, text, len);
    r->len += len;
    r->text[r->len] = '\0';
    if (tok >= 0) {
        if (r->n_ids == r->cap_ids) {
            int cap = r->cap_ids ? 2 * r->cap_ids : 256;
            sm_token *t = realloc(r->ids, (size_t)cap * sizeof *t);
            if (!t) { r->oom = 1; return 1; }
            r->ids = t;
            r->cap_ids = cap;
        }
        r->ids[r->n_ids++] = tok;
    }
    return r->out ? r->out(r->user, text, len) : 0;
}

static int reply_room(const chat *c) {
    int n_ctx = sm_session_n_ctx(c->session);
    if (c->n_predict > 0) return c->n_predict < n_ctx / 2 ? c->n_predict : n_ctx / 2;
    return n_ctx / 4;
}

/* held = the prompt and the text of the reply tokens the session holds. */
static void set_held(chat *c, char *prompt, size_t plen, const reply *r, int kept) {
    size_t n = plen;
    for (int i = 0; i < kept; i++) {
        const char *p;
        int pl = sm_token_piece(c->model, r->ids[i], &p);
        n += pl > 0 ? (size_t)pl : 0;
    }
    forget_held(c);
    char *h = realloc(prompt, n + 1);
    if (!h) {
        free(prompt);
        return;
    }
    size_t w = plen;
    for (int i = 0; i < kept; i++) {
        const char *p;
        int pl = sm_token_piece(c->model, r->ids[i], &p);
        if (pl > 0) memcpy(h + w, p, (size_t)pl);
        w += pl > 0 ? (size_t)pl : 0;
    }
    h[w] = '\0';
    c->held = h;
    c->held_len = w;
}

int chat_turn(chat *c, const char *user_text, chat_out_fn out, void *user, sm_error *err) {
    sm_session *s = c->session;
    int n_ctx = sm_session_n_ctx(s);
    if (push_msg(c, "user", user_text, strlen(user_text)) != 0) {
        snprintf(err->message, sizeof err->message, "out of memory");
        return -1;
    }
    char *prompt = NULL;
    size_t plen = 0;
    sm_token *toks = NULL;
    int n = 0, append = 0;
    err->message[0] = '\0';
    for (;;) {
        free(prompt);
        free(toks);
        toks = NULL;
        if (!(prompt = format(c, c->n_msgs, 1, &plen, err))) break;
        /* only the new text when the session holds the rest (and the new
         * text does not start inside a character the cache holds half of) */
        append = c->held && plen >= c->held_len && memcmp(prompt, c->held, c->held_len) == 0 &&
                 !(plen > c->held_len && ((unsigned char)prompt[c->held_len] & 0xC0) == 0x80);
        int held_tokens = append ? sm_session_n_past(s) : 0;
        toks = append ? tokenize(c, prompt + c->held_len, plen - c->held_len, held_tokens == 0, &n, err)
                      : tokenize(c, prompt, plen, 1, &n, err);
        if (!toks) break;
        int after = held_tokens + n;
        if (c->policy == CHAT_SHIFT || after + reply_room(c) <= n_ctx) break;
        if (c->policy == CHAT_DROP_OLDEST && drop_oldest_turn(c)) {
            c->totals.dropped_turns++;
            continue;
        }
        if (after < n_ctx) break;   /* the prompt fits; the reply may fill the context */
        snprintf(err->message, sizeof err->message,
                 "the conversation is %d tokens with this message and the context holds %d: /reset to start again%s",
                 after, n_ctx, c->policy == CHAT_STOP ? " (or use --context-policy drop-oldest or shift)" : "");
        free(toks);
        toks = NULL;
        break;
    }
    if (!toks) {
        if (!err->message[0]) snprintf(err->message, sizeof err->message, "out of memory");
        free(prompt);
        pop_msg(c);
        return -1;
    }
    sm_generate_params gp = c->gp;
    gp.n_predict = c->n_predict;
    gp.prompt_tokens = n > 0 ? toks : NULL;
    gp.n_prompt_tokens = n;
    gp.reuse_prefix = !append;
    gp.context_shift = c->policy == CHAT_SHIFT;
    gp.n_keep = gp.context_shift ? chat_n_keep(c) : 0;
    if (c->eot) {
        gp.stop = &c->eot;
        gp.n_stop = 1;
    }
    reply r = {out, user, NULL, 0, 0, NULL, 0, 0, 0};
    sm_status st = sm_generate(s, "", &gp, on_token, &r, &c->last, err);
    free(toks);
    if (st == SM_OK && r.oom) st = SM_ERR_NOMEM, snprintf(err->message, sizeof err->message, "out of memory");
    if (st != SM_OK || push_msg(c, "assistant", r.text ? r.text : "", r.len) != 0) {
        if (st == SM_OK) snprintf(err->message, sizeof err->message, "out of memory");
        free(prompt);
        free(r.text);
        free(r.ids);
        pop_msg(c);
        forget_held(c);   /* part of the prompt may have been evaluated */
        return -1;
    }
    set_held(c, prompt, plen, &r, c->last.n_gen_kept);
    free(r.text);
    free(c->reply_ids);
    c->reply_ids = r.ids;
    c->n_reply_ids = r.n_ids;
    chat_totals *t = &c->totals;
    t->turns++;
    t->evaluated += c->last.n_prompt;
    t->reused += c->last.n_reused;
    t->generated += c->last.n_generated;
    t->discarded += c->last.n_discarded;
    return 0;
}

/* ------------------------------------------------ in a session file */

typedef struct packer {
    unsigned char *p;
    size_t n, cap;
    int oom;
} packer;

static void put(packer *k, const void *d, size_t n) {
    if (k->oom) return;
    if (k->n + n > k->cap) {
        size_t cap = (k->n + n) * 2 + 64;
        unsigned char *p = realloc(k->p, cap);
        if (!p) { k->oom = 1; return; }
        k->p = p;
        k->cap = cap;
    }
    memcpy(k->p + k->n, d, n);
    k->n += n;
}

static void put_str(packer *k, const char *s, size_t n) {
    uint64_t len = n;
    put(k, &len, sizeof len);
    put(k, s, n);
}

/* magic, u32 version, u32 flags (1: has a system prompt), u32 message
 * count, each message as (u64 length, bytes) role then content, then the
 * held text the same way (u64 ~0 for none). */
void *chat_pack(const chat *c, size_t *len) {
    packer k = {NULL, 0, 0, 0};
    uint32_t v = PACK_VERSION, flags = (uint32_t)c->has_system, n = (uint32_t)c->n_msgs;
    put(&k, PACK_MAGIC, sizeof PACK_MAGIC - 1);
    put(&k, &v, sizeof v);
    put(&k, &flags, sizeof flags);
    put(&k, &n, sizeof n);
    for (int i = 0; i < c->n_msgs; i++) {
        put_str(&k, c->msgs[i].role, strlen(c->msgs[i].role));
        put_str(&k, c->msgs[i].content, strlen(c->msgs[i].content));
    }
    if (c->held) put_str(&k, c->held, c->held_len);
    else {
        uint64_t none = UINT64_MAX;
        put(&k, &none, sizeof none);
    }
    if (k.oom) {
        free(k.p);
        return NULL;
    }
    *len = k.n;
    return k.p;
}

typedef struct reader {
    const unsigned char *p;
    size_t n, at;
} reader;

static int take(reader *r, void *d, size_t n) {
    if (r->n - r->at < n) return 0;
    memcpy(d, r->p + r->at, n);
    r->at += n;
    return 1;
}

/* A string field: NUL-free, malloc'd; *none set for the ~0 length. */
static char *take_str(reader *r, size_t *len, int *none) {
    uint64_t n;
    if (none) *none = 0;
    if (!take(r, &n, sizeof n)) return NULL;
    if (n == UINT64_MAX && none) {
        *none = 1;
        return NULL;
    }
    if (n > r->n - r->at || memchr(r->p + r->at, '\0', (size_t)n)) return NULL;
    char *s = dup_n((const char *)r->p + r->at, (size_t)n);
    r->at += (size_t)n;
    if (len) *len = (size_t)n;
    return s;
}

int chat_unpack(chat *c, const void *data, size_t len) {
    reader r = {data, len, 0};
    char magic[sizeof PACK_MAGIC - 1];
    uint32_t v, flags, n;
    clear_msgs(c, 0);
    c->has_system = 0;
    forget_held(c);
    if (!data || !take(&r, magic, sizeof magic) || memcmp(magic, PACK_MAGIC, sizeof magic) != 0 || !take(&r, &v, 4) ||
        v != PACK_VERSION || !take(&r, &flags, 4) || flags > 1 || !take(&r, &n, 4) || n > (1u << 24))
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        size_t cl = 0;
        char *role = take_str(&r, NULL, NULL), *content = role ? take_str(&r, &cl, NULL) : NULL;
        int ok = content && push_msg(c, role, content, cl) == 0;
        free(role);
        free(content);
        if (!ok) {
            clear_msgs(c, 0);
            return -1;
        }
    }
    c->has_system = flags && c->n_msgs > 0 && !strcmp(c->msgs[0].role, "system");
    int none = 0;
    size_t hl = 0;
    char *held = take_str(&r, &hl, &none);
    if ((!held && !none) || r.at != r.n) {
        free(held);
        clear_msgs(c, 0);
        c->has_system = 0;
        return -1;
    }
    c->held = held;
    c->held_len = hl;
    return 0;
}

/* fuzz_chat_template.c - libFuzzer target: chat-template detection and
 * formatting of arbitrary template text and messages.
 * Input: a flags byte (bit 0: add_assistant; the rest pick the offset for
 * sm_chat_apply_from), then NUL-separated fields: the template, then role,
 * content, role, content, ... (a role without content is dropped).
 * Checks, besides memory safety: measuring, formatting into an exact and a
 * too-small buffer agree; the suffix call returns the tail of the whole;
 * format_single is the whole less the past, as documented. */
#include "chat/template.h"

#include <stdlib.h>
#include <string.h>

#define MAX_MSGS 64

static void check(int cond) {
    if (!cond) __builtin_trap();
}

/* Formats into a heap block of exactly cap bytes (so ASan sees overruns). */
static char *format(const char *tmpl, const sm_chat_message *m, size_t n, int add, size_t from, size_t *len,
                    sm_status *st) {
    size_t need = 0;
    *st = sm_chat_apply_from(tmpl, m, n, add, from, NULL, 0, &need, NULL);
    if (*st != SM_OK) return NULL;
    if (need > 0) {
        size_t small = need / 2;
        char *s = malloc(small ? small : 1);
        size_t got = 0;
        check(sm_chat_apply_from(tmpl, m, n, add, from, small ? s : NULL, small, &got, NULL) ==
              (small ? SM_ERR_BUFFER_TOO_SMALL : SM_OK));
        check(got == need);
        free(s);
    }
    char *buf = malloc(need + 1);
    *st = sm_chat_apply_from(tmpl, m, n, add, from, buf, need + 1, len, NULL);
    check(*st == SM_OK && *len == need && buf[need] == '\0');
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int add = data[0] & 1;
    unsigned from_pick = data[0] >> 1;
    data++;
    size--;

    /* detection on the raw bytes, not NUL-terminated */
    char *raw = malloc(size ? size : 1);
    memcpy(raw, data, size);
    int fmt = sm_chat_fmt_detect(raw, size);
    check(fmt >= -1 && fmt < SM_CHAT_FMT_COUNT);
    free(raw);

    /* the fields */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    const char *fields[1 + 2 * MAX_MSGS];
    size_t nf = 0;
    for (char *p = text; nf < 1 + 2 * MAX_MSGS;) {
        fields[nf++] = p;
        char *z = memchr(p, '\0', (size_t)(text + size - p) + 1);
        if (z == text + size) break;
        p = z + 1;
    }
    const char *tmpl = fields[0];
    sm_chat_message msgs[MAX_MSGS];
    size_t n = (nf - 1) / 2;
    for (size_t i = 0; i < n; i++) msgs[i] = (sm_chat_message){fields[1 + 2 * i], fields[2 + 2 * i]};

    const char *name = sm_chat_template_detect(tmpl);
    check((name != NULL) == (sm_chat_template_eot(tmpl) != NULL));

    size_t len = 0;
    sm_status st;
    char *whole = format(tmpl, msgs, n, add, 0, &len, &st);
    if (whole) {
        check(name != NULL);
        size_t from = len ? from_pick % (len + 1) : 0;
        size_t tail_len;
        char *tail = format(tmpl, msgs, n, add, from, &tail_len, &st);
        check(tail && tail_len == len - from && memcmp(tail, whole + from, tail_len) == 0);
        free(tail);
        check(sm_chat_apply_from(tmpl, msgs, n, add, len + 1, NULL, 0, &tail_len, NULL) == SM_ERR_INVALID_ARG);

        if (n > 0) {
            /* format_single = the whole less the past (plus the newline rule) */
            size_t past_len = 0, single_len = 0;
            sm_status sp = n > 1 ? sm_chat_apply(tmpl, msgs, n - 1, 0, NULL, 0, &past_len, NULL) : SM_OK;
            check(sp == SM_OK);
            sm_status ss = sm_chat_format_single(tmpl, msgs, n - 1, &msgs[n - 1], add, NULL, 0, &single_len, NULL);
            if (past_len <= len) {
                check(ss == SM_OK);
                char *single = malloc(single_len + 1);
                check(sm_chat_format_single(tmpl, msgs, n - 1, &msgs[n - 1], add, single, single_len + 1, &single_len,
                                            NULL) == SM_OK);
                size_t nl = single_len - (len - past_len);
                check(nl <= 1 && memcmp(single + nl, whole + past_len, len - past_len) == 0);
                if (nl) check(single[0] == '\n' && add);
                free(single);
            } else {
                check(ss == SM_ERR_UNSUPPORTED);
            }
        }
        free(whole);
    } else {
        check(st == SM_ERR_UNSUPPORTED || st == SM_ERR_UTF8);
        check(st != SM_ERR_UNSUPPORTED || name == NULL);
    }
    free(text);
    return 0;
}

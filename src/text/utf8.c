/* utf8.c - see utf8.h. */
#include "utf8.h"

#include <string.h>

size_t sm_utf8_lead_len(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

size_t sm_utf8_seq_len(const unsigned char *s, size_t avail) {
    if (avail == 0) return 0;
    size_t n = sm_utf8_lead_len(s[0]);
    if (n == 0 || n > avail) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    /* The second byte's range excludes overlong forms, surrogates and
     * code points above U+10FFFF. */
    if (n == 3) {
        if (s[0] == 0xE0 && s[1] < 0xA0) return 0;
        if (s[0] == 0xED && s[1] > 0x9F) return 0;
    } else if (n == 4) {
        if (s[0] == 0xF0 && s[1] < 0x90) return 0;
        if (s[0] == 0xF4 && s[1] > 0x8F) return 0;
    }
    return n;
}

size_t sm_utf8_validate(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = sm_utf8_seq_len(p + i, len - i);
        if (n == 0) return i;
        i += n;
    }
    return len;
}

static size_t put_replacement(char *out) {
    out[0] = (char)0xEF;
    out[1] = (char)0xBF;
    out[2] = (char)0xBD;
    return 3;
}

/* Could the pending bytes still grow into a valid character? */
static int could_complete(const unsigned char *p, size_t n) {
    size_t need = sm_utf8_lead_len(p[0]);
    if (need == 0 || n >= need) return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    if (n >= 2) {
        if (p[0] == 0xE0 && p[1] < 0xA0) return 0;
        if (p[0] == 0xED && p[1] > 0x9F) return 0;
        if (p[0] == 0xF0 && p[1] < 0x90) return 0;
        if (p[0] == 0xF4 && p[1] > 0x8F) return 0;
    }
    return 1;
}

size_t sm_utf8_stream_feed(sm_utf8_stream *st, const char *in, size_t len, char *out) {
    size_t w = 0;
    for (size_t k = 0; k < len; k++) {
        st->pending[st->n_pending++] = (unsigned char)in[k];
        /* Resolve the pending bytes as far as they go. */
        while (st->n_pending > 0) {
            size_t n = sm_utf8_seq_len(st->pending, st->n_pending);
            if (n > 0) {
                memcpy(out + w, st->pending, n);
                w += n;
            } else if (could_complete(st->pending, st->n_pending)) {
                break;
            } else {
                n = 1;
                w += put_replacement(out + w);
            }
            memmove(st->pending, st->pending + n, st->n_pending - n);
            st->n_pending -= n;
        }
    }
    return w;
}

size_t sm_utf8_stream_flush(sm_utf8_stream *st, char *out) {
    size_t w = 0;
    for (size_t i = 0; i < st->n_pending; i++) w += put_replacement(out + w);
    st->n_pending = 0;
    return w;
}

/* schema_text.c - the string building the JSON Schema converter needs: a
 * growable buffer, GBNF literals and class characters, UTF-8 decoding. */
#include "schema_conv.h"
#include "core/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int reserve(sm_sbuf *b, size_t extra) {
    if (b->oom) return 0;
    if (b->n + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra + 1) {
        if (cap > ((size_t)1 << 40)) {
            b->oom = 1;
            return 0;
        }
        cap *= 2;
    }
    char *p = sm_alloc(cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    if (b->p) memcpy(p, b->p, b->n);
    p[b->n] = '\0';
    sm_free(b->p);
    b->p = p;
    b->cap = cap;
    return 1;
}

void sm_sb_addn(sm_sbuf *b, const char *s, size_t n) {
    if (!reserve(b, n) || n == 0) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void sm_sb_add(sm_sbuf *b, const char *s) { sm_sb_addn(b, s, strlen(s)); }

void sm_sb_vprintf(sm_sbuf *b, const char *fmt, va_list ap) {
    char small[256];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n >= 0 && (size_t)n < sizeof small) sm_sb_addn(b, small, (size_t)n);
    else if (n >= 0 && reserve(b, (size_t)n)) {
        vsnprintf(b->p + b->n, (size_t)n + 1, fmt, again);
        b->n += (size_t)n;
    }
    va_end(again);
}

void sm_sb_printf(sm_sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sm_sb_vprintf(b, fmt, ap);
    va_end(ap);
}

void sm_sb_free(sm_sbuf *b) {
    sm_free(b->p);
    memset(b, 0, sizeof *b);
}

char *sm_sb_take(sm_sbuf *b) {
    if (!b->p) reserve(b, 0);
    char *p = b->p;
    if (p) p[b->n] = '\0';
    memset(b, 0, sizeof *b);
    return p;
}

void sm_gbnf_literal(sm_sbuf *b, const char *s, size_t n) {
    sm_sb_add(b, "\"");
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char hex[8];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c < 0x20 || c == 0x7F) {
            snprintf(hex, sizeof hex, "\\x%02X", c);
            esc = hex;
        }
        if (esc) {
            sm_sb_addn(b, s + run, i - run);
            sm_sb_add(b, esc);
            run = i + 1;
        }
    }
    sm_sb_addn(b, s + run, n - run);
    sm_sb_add(b, "\"");
}

void sm_gbnf_class_char(sm_sbuf *b, uint32_t c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        (c >= 0x20 && c < 0x7F && !strchr("]\\-^\"[", (int)c))) {
        char ch = (char)c;
        sm_sb_addn(b, &ch, 1);
    } else if (c < 0x100) {
        sm_sb_printf(b, "\\x%02X", c);
    } else if (c < 0x10000) {
        sm_sb_printf(b, "\\u%04X", c);
    } else {
        sm_sb_printf(b, "\\U%08X", c);
    }
}

size_t sm_utf8_next(const char *s, size_t n, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    size_t len = u[0] < 0x80 ? 1 : u[0] < 0xE0 ? 2 : u[0] < 0xF0 ? 3 : 4;
    if (len > n) len = n;
    uint32_t v = len == 1 ? u[0] : len == 2 ? u[0] & 0x1Fu : len == 3 ? u[0] & 0x0Fu : u[0] & 0x07u;
    for (size_t i = 1; i < len; i++) v = (v << 6) | (u[i] & 0x3Fu);
    *cp = v;
    return len;
}

/* error.c - status strings and error messages. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *sm_strerror(sm_status status) {
    switch (status) {
    case SM_OK: return "success";
    case SM_ERR_INVALID_ARG: return "invalid argument";
    case SM_ERR_IO: return "I/O error";
    case SM_ERR_FORMAT: return "malformed file";
    case SM_ERR_UNSUPPORTED: return "unsupported feature";
    case SM_ERR_NOMEM: return "out of memory";
    case SM_ERR_CONTEXT_FULL: return "context is full";
    case SM_ERR_TOKEN_RANGE: return "token id out of range";
    case SM_ERR_UTF8: return "invalid UTF-8";
    case SM_ERR_NO_WEIGHTS: return "model has no weights";
    case SM_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    }
    return "unknown status";
}

sm_status sm_fail(sm_error *err, sm_status status, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = status;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

void sm_error_prefix(sm_error *err, const char *fmt, ...) {
    if (!err) return;
    char head[256], old[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    /* Truncation of an over-long message is acceptable. */
    size_t n = strlen(head);
    if (n > sizeof err->message - 3) n = sizeof err->message - 3;
    memcpy(err->message, head, n);
    memcpy(err->message + n, ": ", 2);
    size_t room = sizeof err->message - n - 3, ol = strlen(old);
    if (ol > room) ol = room;
    memcpy(err->message + n + 2, old, ol);
    err->message[n + 2 + ol] = '\0';
}

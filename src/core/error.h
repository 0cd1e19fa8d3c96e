/* error.h - filling an sm_error with a formatted one-line message. */
#ifndef SM_CORE_ERROR_H
#define SM_CORE_ERROR_H

#include "smallmind.h"

/* Records status and message in err (if not NULL) and returns status, so a
 * failing path can say `return sm_fail(err, SM_ERR_FORMAT, "...", ...);`. */
sm_status sm_fail(sm_error *err, sm_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message, e.g. with the file name it concerns. */
void sm_error_prefix(sm_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif

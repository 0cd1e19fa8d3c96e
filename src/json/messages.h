/* messages.h - reading an OpenAI-style conversation from JSON with Jansson:
 * [{"role": "system", "content": "..."}, {"role": "user", ...}, ...], or an
 * object whose "messages" member is such an array (a chat request body). */
#ifndef SM_JSON_MESSAGES_H
#define SM_JSON_MESSAGES_H

#include <stddef.h>
#include "smallmind.h"

typedef struct sm_json_messages {
    sm_chat_message *msgs;   /* point into doc */
    size_t n;
    void *doc;               /* the parsed document (json_t *) */
} sm_json_messages;

/* Parses len bytes of text. Errors name `source` (a file name) and, for bad
 * JSON, the line and column Jansson reports: SM_ERR_FORMAT for bad JSON or
 * a wrong shape (a missing "role" or "content", a value that is not a
 * string), SM_ERR_NOMEM. Members other than role and content are ignored. */
sm_status sm_json_messages_parse(const char *text, size_t len, const char *source, sm_json_messages *out,
                                 sm_error *err);
void sm_json_messages_free(sm_json_messages *m);

#endif

/* messages.c - an OpenAI-style conversation read from JSON with Jansson
 * (see messages.h). Jansson checks the UTF-8 and refuses "\u0000" in
 * strings, so every string handed on is whole UTF-8 without a NUL. */
#include "json/messages.h"
#include "core/alloc.h"
#include "core/error.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char *kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "something else";
}

sm_status sm_json_messages_parse(const char *text, size_t len, const char *source, sm_json_messages *out,
                                 sm_error *err) {
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return sm_fail(err, SM_ERR_FORMAT, "%s:%d:%d: invalid JSON: %s", source, je.line, je.column, je.text);
    json_t *arr = root;
    if (json_is_object(root)) {
        arr = json_object_get(root, "messages");
        if (!arr) {
            json_decref(root);
            return sm_fail(err, SM_ERR_FORMAT, "%s: expected an array of messages, or an object with a \"messages\" array",
                           source);
        }
    }
    if (!json_is_array(arr)) {
        const char *k = kind(arr);
        json_decref(root);
        return sm_fail(err, SM_ERR_FORMAT, "%s: \"messages\" must be an array of messages, not %s", source, k);
    }
    size_t n = json_array_size(arr);
    sm_chat_message *m = sm_alloc((n ? n : 1) * sizeof *m);
    if (!m) {
        json_decref(root);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory reading %s", source);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        json_t *role = json_object_get(o, "role"), *content = json_object_get(o, "content");
        char why[160];
        why[0] = '\0';
        if (!json_is_object(o))
            snprintf(why, sizeof why, " must be an object with \"role\" and \"content\", not %s", kind(o));
        else if (!role) snprintf(why, sizeof why, " has no \"role\"");
        else if (!json_is_string(role)) snprintf(why, sizeof why, ": \"role\" must be a string, not %s", kind(role));
        else if (!content) snprintf(why, sizeof why, " has no \"content\"");
        else if (!json_is_string(content))
            snprintf(why, sizeof why, ": \"content\" must be a string (only text messages are supported), not %s",
                     kind(content));
        if (why[0]) {
            sm_free(m);
            json_decref(root);
            return sm_fail(err, SM_ERR_FORMAT, "%s: messages[%zu]%s", source, i, why);
        }
        m[i] = (sm_chat_message){json_string_value(role), json_string_value(content)};
    }
    out->msgs = m;
    out->n = n;
    out->doc = root;
    return SM_OK;
}

void sm_json_messages_free(sm_json_messages *m) {
    if (!m) return;
    sm_free(m->msgs);
    json_decref((json_t *)m->doc);
    memset(m, 0, sizeof *m);
}

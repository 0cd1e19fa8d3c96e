/* fuzz_server_request.c - libFuzzer target: `smallmind serve`'s request
 * parsing (src/server/request.c: a JSON body, read with Jansson, to the
 * parameters of a chat, completion or embeddings request) and the text a
 * slot streams (src/server/text.c: whole UTF-8 characters, stop strings
 * held back).
 * Input: a byte choosing the endpoint (a completion: also llama-server's
 * own /completion), the body up to the first NUL byte,
 * then token pieces (bytes fed to the text of a parsed request, cut where a
 * byte is 0xFF).
 * Checks, besides memory safety: a failed parse names a 4xx/5xx status, a
 * type and a message; a parsed one keeps its limits (max_tokens within the
 * context, at most 4 stop strings (16 on /completion), non-empty, token ids in range,
 * ranges of the sampling parameters); the streamed text is valid UTF-8
 * and, when a stop string ended it, holds none of them. */
#include "server/request.h"
#include "server/server.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void check(int cond) {
    if (!cond) __builtin_trap();
}

/* RFC 3629 validity, written separately from text.c's. */
static int valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n) return 0;
        unsigned cp = len == 1 ? c : len == 2 ? c & 31 : len == 3 ? c & 15 : c & 7;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 63);
        }
        static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    enum req_kind kind = (enum req_kind)(data[0] % 3);
    int jinja = (data[0] / 3) & 1;   /* --jinja: tools allowed */
    int native = kind == REQ_COMPLETION && (data[0] / 6) & 1;   /* llama-server's own /completion */
    int infill = native && (data[0] / 12) & 1;                   /* and /infill */
    const char *body = (const char *)data + 1;
    const uint8_t *nul = memchr(data + 1, 0, size - 1);
    size_t body_len = nul ? (size_t)(nul - (data + 1)) : size - 1;
    const uint8_t *rest = nul ? nul + 1 : data + size;
    size_t rest_len = (size_t)(data + size - rest);
    req_limits lim = {256, 1000, jinja};
    request r;
    req_error e;
    memset(&e, 0, sizeof e);
    int rc = infill ? request_parse_infill(body, body_len, &lim, &r, &e)
             : native ? request_parse_native(body, body_len, &lim, &r, &e)
                      : request_parse(kind, body, body_len, &lim, &r, &e);
    if (rc != 0) {
        check(e.status >= 400 && e.status < 600 && e.type && e.message[0]);
        request_free(&r);
        return 0;
    }
    const req_params *p = &r.p;
    check(p->max_tokens == -1 || (p->max_tokens >= !native && p->max_tokens <= lim.n_ctx));   /* /completion: 0 too */
    check(p->n_stop >= 0 && p->n_stop <= (native ? REQ_MAX_STOP : REQ_MAX_STOP_OPENAI) && r.native == native);
    for (int i = 0; i < p->n_stop; i++) check(p->stop[i] && strlen(p->stop[i]) > 0 && strlen(p->stop[i]) <= REQ_MAX_STOP_BYTES);
    check(p->temperature >= 0 && p->temperature <= 2 && p->top_p >= 0 && p->top_p <= 1);
    check(fabsf(p->presence_penalty) <= 2 && fabsf(p->frequency_penalty) <= 2);
    if (kind == REQ_CHAT) {
        check(r.n_msgs >= 1 && r.msgs);
        for (size_t i = 0; i < r.n_msgs; i++) check(r.msgs[i].role && r.msgs[i].content);
        check(!r.tools || (jinja && r.tools->type == SM_CHAT_VALUE_LIST && r.tools->n > 0));
    } else {
        check(r.n_prompts >= 1);
        for (size_t i = 0; i < r.n_prompts; i++) {
            const req_prompt *q = &r.prompts[i];
            check((q->text != NULL) != (q->tokens != NULL));
            for (size_t k = 0; k < q->n_tokens; k++) check(q->tokens[k] >= 0 && q->tokens[k] < lim.n_vocab);
        }
    }
    /* the streamed text of this request's stop strings over the pieces */
    if (kind != REQ_EMBEDDING) {
        job j;
        memset(&j, 0, sizeof j);
        text_state t;
        memset(&t, 0, sizeof t);
        int stopped = 0;
        size_t at = 0;
        while (at < rest_len && !stopped) {
            size_t end = at;
            while (end < rest_len && rest[end] != 0xFF) end++;
            stopped = text_add(&t, (const char *)rest + at, end - at, p, &j);
            at = end + 1;
        }
        if (!stopped) text_flush(&t, &j);
        check(valid_utf8((const unsigned char *)j.text, j.text_len));
        if (stopped)
            for (int i = 0; i < p->n_stop; i++) {
                size_t sl = strlen(p->stop[i]);
                for (size_t k = 0; k + sl <= j.text_len; k++) check(memcmp(j.text + k, p->stop[i], sl) != 0);
            }
        free(j.text);
        text_free(&t);
    }
    request_free(&r);
    return 0;
}

/* chat_state.h - a conversation of `smallmind chat` (chat_state.c): the
 * messages, the session that holds them, how each turn's prompt is made
 * (only the new text when the cache holds the rest, else the whole
 * conversation with the cached prefix reused), what happens when the
 * context is full, and the conversation's form inside a session file. */
#ifndef SM_CLI_CHAT_STATE_H
#define SM_CLI_CHAT_STATE_H

#include <stddef.h>
#include "smallmind.h"

enum chat_policy { CHAT_STOP, CHAT_DROP_OLDEST, CHAT_SHIFT };

typedef struct chat_msg {
    char *role, *content;
} chat_msg;

/* What the last turn did, and the sums over the conversation. */
typedef struct chat_totals {
    int turns, dropped_turns;
    long long evaluated, reused, generated, discarded;
} chat_totals;

typedef struct chat {
    sm_model *model;
    sm_session *session;
    const char *tmpl;            /* the built-in format's name */
    const char *jinja;           /* with --jinja: the template text run as Jinja (else NULL) */
    const char *eot;             /* its end-of-turn text (a stop string) */
    chat_msg *msgs;              /* msgs[0] is the system prompt when has_system */
    int n_msgs, cap_msgs, has_system;
    /* The formatted conversation text the session's tokens stand for (a
     * prefix of the next turn's prompt, so that only the rest is new), or
     * NULL when that is not known (the next turn then formats everything
     * and reuses the longest common prefix of tokens). */
    char *held;
    size_t held_len;
    int policy;                  /* enum chat_policy */
    int keep_arg;                /* --keep, or -1: the system prompt's tokens */
    int n_predict;
    sm_generate_params gp;       /* sampling, stop strings and the like for every reply */
    sm_generate_stats last;
    sm_token *reply_ids;         /* the last reply's tokens, as sampled */
    int n_reply_ids;
    chat_totals totals;
} chat;

/* Called with each piece of a reply; return non-zero to stop it. */
typedef int (*chat_out_fn)(void *user, const char *text, size_t len);

/* Sets up an empty conversation (the session and model stay the caller's). */
void chat_init(chat *c, sm_model *model, sm_session *session, const char *tmpl, const char *eot);
void chat_free(chat *c);

/* The system prompt (NULL removes it); the session is kept, and the next
 * turn re-reads what changed. 0, or -1 when out of memory. */
int chat_set_system(chat *c, const char *text);
/* Forgets the conversation but the system prompt; empties the session. */
void chat_reset(chat *c);

/* One turn: the user's message in, the reply streamed to out. Returns 0,
 * or -1 with a one-line reason in err (the message is then not kept). */
int chat_turn(chat *c, const char *user_text, chat_out_fn out, void *user, sm_error *err);

/* The tokens a context shift keeps: --keep, or the system prompt's. */
int chat_n_keep(chat *c);

/* The conversation as application data of a session file (malloc'd), and
 * back: 0, or -1 when the data is not a conversation of ours (the
 * conversation is then empty, without a system prompt, and held unknown). */
void *chat_pack(const chat *c, size_t *len);
int chat_unpack(chat *c, const void *data, size_t len);

#endif

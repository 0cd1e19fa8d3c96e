/* template.h - the built-in chat formats (those of llama.cpp's
 * llama_chat_apply_template at c392e509): their names, how a template text
 * is recognised, and rendering a conversation into a bounded writer. */
#ifndef SM_CHAT_TEMPLATE_H
#define SM_CHAT_TEMPLATE_H

#include <stddef.h>
#include "smallmind.h"

/* Non-ASCII markers as UTF-8 bytes: U+FF5C FULLWIDTH VERTICAL LINE and
 * U+2581 LOWER ONE EIGHTH BLOCK (DeepSeek), U+7528 U+6237 (MiniCPM's
 * "user"). The literals are split so a hex escape never swallows a letter. */
#define SM_CHAT_FW_BAR "\xef\xbd\x9c"
#define SM_CHAT_DS_EOS "<" SM_CHAT_FW_BAR "end" "\xe2\x96\x81" "of" "\xe2\x96\x81" "sentence" SM_CHAT_FW_BAR ">"
#define SM_CHAT_DS_USER "<" SM_CHAT_FW_BAR "User" SM_CHAT_FW_BAR ">"
#define SM_CHAT_DS_ASSISTANT "<" SM_CHAT_FW_BAR "Assistant" SM_CHAT_FW_BAR ">"
#define SM_CHAT_MINICPM_USER "<\xe7\x94\xa8\xe6\x88\xb7>"

/* In the sorted order of the names (the order sm_chat_template_names lists). */
enum sm_chat_fmt {
    SM_CHAT_CHATGLM3, SM_CHAT_CHATGLM4, SM_CHAT_CHATML, SM_CHAT_COMMAND_R, SM_CHAT_DEEPSEEK,
    SM_CHAT_DEEPSEEK2, SM_CHAT_DEEPSEEK3, SM_CHAT_EXAONE3, SM_CHAT_FALCON3, SM_CHAT_GEMMA,
    SM_CHAT_GIGACHAT, SM_CHAT_GLMEDGE, SM_CHAT_GRANITE, SM_CHAT_LLAMA2, SM_CHAT_LLAMA2_SYS,
    SM_CHAT_LLAMA2_SYS_BOS, SM_CHAT_LLAMA2_SYS_STRIP, SM_CHAT_LLAMA3, SM_CHAT_MEGREZ, SM_CHAT_MINICPM,
    SM_CHAT_MISTRAL_V1, SM_CHAT_MISTRAL_V3, SM_CHAT_MISTRAL_V3_TEKKEN, SM_CHAT_MISTRAL_V7, SM_CHAT_MONARCH,
    SM_CHAT_OPENCHAT, SM_CHAT_ORION, SM_CHAT_PHI3, SM_CHAT_PHI4, SM_CHAT_RWKV_WORLD,
    SM_CHAT_VICUNA, SM_CHAT_VICUNA_ORCA, SM_CHAT_ZEPHYR,
    SM_CHAT_FMT_COUNT
};

/* The format a template resolves to: an exact built-in name, else the
 * first marker rule that matches the text; -1 when none does. The text is
 * len bytes and need not be NUL-terminated. */
int sm_chat_fmt_detect(const char *text, size_t len);

/* Name and end-of-turn text of a format (fmt in range); all the names in
 * enum order, NULL-terminated. */
const char *sm_chat_fmt_name(int fmt);
const char *const *sm_chat_fmt_names(void);
const char *sm_chat_fmt_eot(int fmt);

/* Writes " (built-in templates: chatglm3, chatglm4, ...)" style lists: the
 * names separated by ", " into out (always NUL-terminated, cut if needed). */
void sm_chat_fmt_list(char *out, size_t cap);

/* A writer that never overruns: of the bytes a rendering produces, the
 * first `skip` are dropped and the rest go to buf[base...] as far as cap
 * allows; total counts every byte produced, last is the last one. */
typedef struct sm_chat_out {
    char *buf;
    size_t cap, base, skip;
    size_t total;
    int overflow;            /* total would not fit in size_t */
    unsigned char last;
} sm_chat_out;

/* A conversation in two pieces (a past and a new part), so that one more
 * message can be formatted without copying the past. */
typedef struct sm_chat_list {
    const sm_chat_message *a, *b;
    size_t na, nb;
} sm_chat_list;

static inline const sm_chat_message *sm_chat_at(const sm_chat_list *l, size_t i) {
    return i < l->na ? &l->a[i] : &l->b[i - l->na];
}

/* Renders the messages (role and content non-NULL) in format fmt. */
void sm_chat_render(int fmt, const sm_chat_list *l, int add_assistant, sm_chat_out *o);

/* Checks a message list: roles and contents present and valid UTF-8
 * (messages are numbered from `first` in the error). */
sm_status sm_chat_check_messages(const sm_chat_message *m, size_t n, size_t first, sm_error *err);

/* Ends a formatting into buf: the NUL, or the size error. need excludes
 * the NUL; buf NULL with cap 0 only measures. */
sm_status sm_chat_finish(char *buf, size_t cap, size_t need, size_t *len, sm_error *err);

/* sm_chat_format_jinja; with keep_eos a trailing EOS text is kept (training
 * data: it ends the last reply, which learns it); now: strftime_now's time
 * (seconds since the epoch, -1 = the current time) */
sm_status sm_chat_format_jinja_ex(const sm_model *model, const char *tmpl, const sm_chat_message *msgs, size_t n,
                                  int add_assistant, int keep_eos, long long now, char *buf, size_t cap, size_t *len,
                                  sm_error *err);

#endif

/* format.c - renders a conversation in one of the built-in chat formats.
 *
 * Each format's output, byte for byte, is that of llama.cpp's built-in
 * formatter (src/llama-chat.cpp, llm_chat_apply_template, at c392e509),
 * read there and written anew: which roles each format writes, which it
 * drops, where it trims the content, and what it appends for the
 * assistant's reply. Nothing here allocates; text goes through a bounded
 * writer (template.h) so the same code measures, writes, or writes only a
 * suffix. */
#include "chat/template.h"

#include <stdint.h>
#include <string.h>

static void put(sm_chat_out *o, const char *s, size_t n) {
    if (n == 0 || o->overflow) return;
    if (n > SIZE_MAX - o->total) {
        o->overflow = 1;
        return;
    }
    size_t p = o->total, end = p + n;
    o->total = end;
    o->last = (unsigned char)s[n - 1];
    if (end <= o->skip || !o->buf) return;
    size_t start = p > o->skip ? p : o->skip;      /* first byte that is kept */
    size_t d = o->base + (start - o->skip);        /* where it goes */
    if (d >= o->cap) return;
    size_t cnt = end - start;
    if (cnt > o->cap - d) cnt = o->cap - d;
    memcpy(o->buf + d, s + (start - p), cnt);
}

static void put_s(sm_chat_out *o, const char *s) { put(o, s, strlen(s)); }

/* llama.cpp trims with isspace() in the C locale: ASCII whitespace only,
 * so a multi-byte character is never cut. */
static int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static void put_trim(sm_chat_out *o, const char *s) {
    size_t a = 0, b = strlen(s);
    while (a < b && is_space((unsigned char)s[a])) a++;
    while (b > a && is_space((unsigned char)s[b - 1])) b--;
    put(o, s + a, b - a);
}

static int is(const char *role, const char *name) { return strcmp(role, name) == 0; }

#define AT(i) (*sm_chat_at(L, (i)))

static void chatml(const sm_chat_list *L, size_t n, int add, sm_chat_out *o) {
    for (size_t i = 0; i < n; i++) {
        put_s(o, "<|im_start|>");
        put_s(o, AT(i).role);
        put_s(o, "\n");
        put_s(o, AT(i).content);
        put_s(o, "<|im_end|>\n");
    }
    if (add) put_s(o, "<|im_start|>assistant\n");
}

/* v7 writes no assistant opening: the prompt ends with "[/INST]". */
static void mistral_v7(const sm_chat_list *L, size_t n, sm_chat_out *o) {
    for (size_t i = 0; i < n; i++) {
        if (is(AT(i).role, "system")) {
            put_s(o, "[SYSTEM_PROMPT] ");
            put_s(o, AT(i).content);
            put_s(o, "[/SYSTEM_PROMPT]");
        } else if (is(AT(i).role, "user")) {
            put_s(o, "[INST] ");
            put_s(o, AT(i).content);
            put_s(o, "[/INST]");
        } else {
            put_s(o, " ");
            put_s(o, AT(i).content);
            put_s(o, "</s>");
        }
    }
}

/* v1: " [INST] ", "content [/INST]"; v3: "[INST] ", assistant text
 * trimmed; v3-tekken: "[INST]", no spaces. Any role other than system and
 * user is an assistant reply that closes the turn. */
static void mistral(int fmt, const sm_chat_list *L, size_t n, sm_chat_out *o) {
    const char *lead = fmt == SM_CHAT_MISTRAL_V1 ? " " : "";
    const char *trail = fmt == SM_CHAT_MISTRAL_V3_TEKKEN ? "" : " ";
    int in_turn = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_turn) {
            put_s(o, lead);
            put_s(o, "[INST]");
            put_s(o, trail);
            in_turn = 1;
        }
        if (is(AT(i).role, "system")) {
            put_s(o, AT(i).content);
            put_s(o, "\n\n");
        } else if (is(AT(i).role, "user")) {
            put_s(o, AT(i).content);
            put_s(o, lead);
            put_s(o, "[/INST]");
        } else {
            put_s(o, trail);
            if (fmt == SM_CHAT_MISTRAL_V3) put_trim(o, AT(i).content);
            else put_s(o, AT(i).content);
            put_s(o, "</s>");
            in_turn = 0;
        }
    }
}

/* Always opens with "[INST] ", even for no messages. A system message is
 * wrapped in <<SYS>> by the -sys variants, else written as a line. */
static void llama2(int fmt, const sm_chat_list *L, size_t n, sm_chat_out *o) {
    int strip = fmt == SM_CHAT_LLAMA2_SYS_STRIP;
    int in_turn = 1;
    put_s(o, "[INST] ");
    for (size_t i = 0; i < n; i++) {
        if (!in_turn) {
            in_turn = 1;
            put_s(o, fmt == SM_CHAT_LLAMA2_SYS_BOS ? "<s>[INST] " : "[INST] ");
        }
        if (is(AT(i).role, "system")) {
            if (fmt != SM_CHAT_LLAMA2) {
                put_s(o, "<<SYS>>\n");
                if (strip) put_trim(o, AT(i).content);
                else put_s(o, AT(i).content);
                put_s(o, "\n<</SYS>>\n\n");
            } else {
                put_s(o, AT(i).content);
                put_s(o, "\n");
            }
        } else {
            if (strip) put_trim(o, AT(i).content);
            else put_s(o, AT(i).content);
            if (is(AT(i).role, "user")) {
                put_s(o, " [/INST]");
            } else {
                put_s(o, "</s>");
                in_turn = 0;
            }
        }
    }
}

/* Formats of the shape  open role close content end, for every role. */
static void role_tagged(const sm_chat_list *L, size_t n, int add, const char *open, const char *close,
                        const char *end, const char *assistant, sm_chat_out *o) {
    for (size_t i = 0; i < n; i++) {
        put_s(o, open);
        put_s(o, AT(i).role);
        put_s(o, close);
        put_s(o, AT(i).content);
        put_s(o, end);
    }
    if (add) put_s(o, assistant);
}

/* The first message goes without the "<s>" the others carry. */
static void monarch(const sm_chat_list *L, size_t n, int add, sm_chat_out *o) {
    for (size_t i = 0; i < n; i++) {
        if (i > 0) put_s(o, "<s>");
        put_s(o, AT(i).role);
        put_s(o, "\n");
        put_s(o, AT(i).content);
        put_s(o, "</s>\n");
    }
    if (add) put_s(o, "<s>assistant\n");
}

/* No system turn: the (trimmed) system text is held back and written at the
 * head of the next turn that is not the model's, then forgotten. */
static void gemma(const sm_chat_list *L, size_t n, int add, sm_chat_out *o) {
    const char *sys = NULL;
    size_t sys_len = 0;
    for (size_t i = 0; i < n; i++) {
        if (is(AT(i).role, "system")) {
            const char *s = AT(i).content;
            size_t a = 0, b = strlen(s);
            while (a < b && is_space((unsigned char)s[a])) a++;
            while (b > a && is_space((unsigned char)s[b - 1])) b--;
            sys = s + a;
            sys_len = b - a;
            continue;
        }
        const char *role = is(AT(i).role, "assistant") ? "model" : AT(i).role;
        put_s(o, "<start_of_turn>");
        put_s(o, role);
        put_s(o, "\n");
        if (sys_len > 0 && !is(role, "model")) {
            put(o, sys, sys_len);
            put_s(o, "\n\n");
            sys_len = 0;
        }
        put_trim(o, AT(i).content);
        put_s(o, "<end_of_turn>\n");
    }
    if (add) put_s(o, "<start_of_turn>model\n");
}

/* The system text joins the next user turn; the assistant opening is part
 * of every user turn, so add_assistant changes nothing. */
static void orion(const sm_chat_list *L, size_t n, sm_chat_out *o) {
    const char *sys = "";
    for (size_t i = 0; i < n; i++) {
        if (is(AT(i).role, "system")) {
            sys = AT(i).content;
        } else if (is(AT(i).role, "user")) {
            put_s(o, "Human: ");
            if (*sys) {
                put_s(o, sys);
                put_s(o, "\n\n");
                sys = "";
            }
            put_s(o, AT(i).content);
            put_s(o, "\n\nAssistant: </s>");
        } else {
            put_s(o, AT(i).content);
            put_s(o, "</s>");
        }
    }
}

/* "GPT4 Correct User: ...": the role with its first byte upper-cased
 * (ASCII letters only, as toupper in the C locale). */
static void openchat(const sm_chat_list *L, size_t n, int add, sm_chat_out *o) {
    for (size_t i = 0; i < n; i++) {
        if (is(AT(i).role, "system")) {
            put_s(o, AT(i).content);
        } else {
            const char *r = AT(i).role;
            put_s(o, "GPT4 Correct ");
            if (*r) {
                char c = *r >= 'a' && *r <= 'z' ? (char)(*r - 'a' + 'A') : *r;
                put(o, &c, 1);
                put_s(o, r + 1);
            }
            put_s(o, ": ");
            put_s(o, AT(i).content);
        }
        put_s(o, "<|end_of_turn|>");
    }
    if (add) put_s(o, "GPT4 Correct Assistant:");
}

/* Roles other than system, user and assistant are dropped. */
static void vicuna(int orca, const sm_chat_list *L, size_t n, int add, sm_chat_out *o) {
    for (size_t i = 0; i < n; i++) {
        if (is(AT(i).role, "system")) {
            if (orca) put_s(o, "SYSTEM: ");
            put_s(o, AT(i).content);
            put_s(o, orca ? "\n" : "\n\n");
        } else if (is(AT(i).role, "user")) {
            put_s(o, "USER: ");
            put_s(o, AT(i).content);
            put_s(o, "\n");
        } else if (is(AT(i).role, "assistant")) {
            put_s(o, "ASSISTANT: ");
            put_s(o, AT(i).content);
            put_s(o, "</s>\n");
        }
    }
    if (add) put_s(o, "ASSISTANT:");
}

/* The common shape of the formats that write system, user and assistant
 * messages each between a prefix and a suffix and drop other roles. */
typedef struct three_roles {
    const char *sys_pre, *sys_suf, *user_pre, *user_suf, *asst_pre, *asst_suf, *gen;
    int trim;
} three_roles;

static void by_role(const three_roles *f, const sm_chat_list *L, size_t n, int add, sm_chat_out *o) {
    for (size_t i = 0; i < n; i++) {
        const char *pre, *suf;
        if (is(AT(i).role, "system")) pre = f->sys_pre, suf = f->sys_suf;
        else if (is(AT(i).role, "user")) pre = f->user_pre, suf = f->user_suf;
        else if (is(AT(i).role, "assistant")) pre = f->asst_pre, suf = f->asst_suf;
        else continue;
        put_s(o, pre);
        if (f->trim) put_trim(o, AT(i).content);
        else put_s(o, AT(i).content);
        put_s(o, suf);
    }
    if (add) put_s(o, f->gen);
}

static const three_roles deepseek = {"", "", "### Instruction:\n", "\n", "### Response:\n", "\n<|EOT|>\n",
                                     "### Response:\n", 0};
static const three_roles command_r = {
    "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>", "<|END_OF_TURN_TOKEN|>",
    "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>", "<|END_OF_TURN_TOKEN|>",
    "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>", "<|END_OF_TURN_TOKEN|>",
    "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>", 1};
static const three_roles deepseek2 = {"", "\n\n", "User: ", "\n\n", "Assistant: ", SM_CHAT_DS_EOS, "Assistant:", 0};
static const three_roles deepseek3 = {"", "\n\n", SM_CHAT_DS_USER, "",
                                      SM_CHAT_DS_ASSISTANT, SM_CHAT_DS_EOS,
                                      SM_CHAT_DS_ASSISTANT, 0};
static const three_roles exaone3 = {"[|system|]", "[|endofturn|]\n", "[|user|]", "\n",
                                    "[|assistant|]", "[|endofturn|]\n", "[|assistant|]", 1};

/* chatglm3 puts a space after the newline; every role is written. */
static void glm(const char *head, const char *sep, const sm_chat_list *L, size_t n, int add, sm_chat_out *o) {
    put_s(o, head);
    for (size_t i = 0; i < n; i++) {
        put_s(o, "<|");
        put_s(o, AT(i).role);
        put_s(o, "|>");
        put_s(o, sep);
        put_s(o, AT(i).content);
    }
    if (add) put_s(o, "<|assistant|>");
}

/* No assistant opening: "<AI>" closes each user turn. */
static void minicpm(const sm_chat_list *L, size_t n, sm_chat_out *o) {
    for (size_t i = 0; i < n; i++) {
        if (is(AT(i).role, "user")) {
            put_s(o, SM_CHAT_MINICPM_USER);
            put_trim(o, AT(i).content);
            put_s(o, "<AI>");
        } else {
            put_trim(o, AT(i).content);
        }
    }
}

static void rwkv_world(const sm_chat_list *L, size_t n, sm_chat_out *o) {
    for (size_t i = 0; i < n; i++) {
        if (is(AT(i).role, "user")) {
            put_s(o, "User: ");
            put_s(o, AT(i).content);
            put_s(o, "\n\nAssistant:");
        } else {
            put_s(o, AT(i).content);
            put_s(o, "\n\n");
        }
    }
}

static void granite(const sm_chat_list *L, size_t n, int add, sm_chat_out *o) {
    for (size_t i = 0; i < n; i++) {
        put_s(o, "<|start_of_role|>");
        put_s(o, AT(i).role);
        put_s(o, "<|end_of_role|>");
        if (is(AT(i).role, "assistant_tool_call")) put_s(o, "<|tool_call|>");
        put_s(o, AT(i).content);
        put_s(o, "<|end_of_text|>\n");
    }
    if (add) put_s(o, "<|start_of_role|>assistant<|end_of_role|>\n");
}

/* Only a system message in first place is written (as the preamble);
 * later system messages and other roles are dropped. */
static void gigachat(const sm_chat_list *L, size_t n, int add, sm_chat_out *o) {
    size_t i = 0;
    put_s(o, "<s>");
    if (n > 0 && is(AT(0).role, "system")) {
        put_s(o, AT(0).content);
        put_s(o, "<|message_sep|>");
        i = 1;
    }
    for (; i < n; i++) {
        if (is(AT(i).role, "user")) {
            put_s(o, "user<|role_sep|>");
            put_s(o, AT(i).content);
            put_s(o, "<|message_sep|>available functions<|role_sep|>[]<|message_sep|>");
        } else if (is(AT(i).role, "assistant")) {
            put_s(o, "assistant<|role_sep|>");
            put_s(o, AT(i).content);
            put_s(o, "<|message_sep|>");
        }
    }
    if (add) put_s(o, "assistant<|role_sep|>");
}

void sm_chat_render(int fmt, const sm_chat_list *L, int add, sm_chat_out *o) {
    size_t n = L->na + L->nb;
    switch (fmt) {
    case SM_CHAT_CHATML: chatml(L, n, add, o); break;
    case SM_CHAT_MISTRAL_V7: mistral_v7(L, n, o); break;
    case SM_CHAT_MISTRAL_V1:
    case SM_CHAT_MISTRAL_V3:
    case SM_CHAT_MISTRAL_V3_TEKKEN: mistral(fmt, L, n, o); break;
    case SM_CHAT_LLAMA2:
    case SM_CHAT_LLAMA2_SYS:
    case SM_CHAT_LLAMA2_SYS_BOS:
    case SM_CHAT_LLAMA2_SYS_STRIP: llama2(fmt, L, n, o); break;
    case SM_CHAT_PHI3: role_tagged(L, n, add, "<|", "|>\n", "<|end|>\n", "<|assistant|>\n", o); break;
    case SM_CHAT_PHI4:
        role_tagged(L, n, add, "<|im_start|>", "<|im_sep|>", "<|im_end|>", "<|im_start|>assistant<|im_sep|>", o);
        break;
    case SM_CHAT_FALCON3: role_tagged(L, n, add, "<|", "|>\n", "\n", "<|assistant|>\n", o); break;
    case SM_CHAT_ZEPHYR: role_tagged(L, n, add, "<|", "|>\n", "<|endoftext|>\n", "<|assistant|>\n", o); break;
    case SM_CHAT_MEGREZ:
        role_tagged(L, n, add, "<|role_start|>", "<|role_end|>", "<|turn_end|>", "<|role_start|>assistant<|role_end|>",
                    o);
        break;
    case SM_CHAT_MONARCH: monarch(L, n, add, o); break;
    case SM_CHAT_GEMMA: gemma(L, n, add, o); break;
    case SM_CHAT_ORION: orion(L, n, o); break;
    case SM_CHAT_OPENCHAT: openchat(L, n, add, o); break;
    case SM_CHAT_VICUNA: vicuna(0, L, n, add, o); break;
    case SM_CHAT_VICUNA_ORCA: vicuna(1, L, n, add, o); break;
    case SM_CHAT_DEEPSEEK: by_role(&deepseek, L, n, add, o); break;
    case SM_CHAT_COMMAND_R: by_role(&command_r, L, n, add, o); break;
    case SM_CHAT_LLAMA3:
        for (size_t i = 0; i < n; i++) {
            put_s(o, "<|start_header_id|>");
            put_s(o, AT(i).role);
            put_s(o, "<|end_header_id|>\n\n");
            put_trim(o, AT(i).content);
            put_s(o, "<|eot_id|>");
        }
        if (add) put_s(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case SM_CHAT_CHATGLM3: glm("[gMASK]sop", "\n ", L, n, add, o); break;
    case SM_CHAT_CHATGLM4: glm("[gMASK]<sop>", "\n", L, n, add, o); break;
    case SM_CHAT_GLMEDGE: glm("", "\n", L, n, add, o); break;
    case SM_CHAT_MINICPM: minicpm(L, n, o); break;
    case SM_CHAT_DEEPSEEK2: by_role(&deepseek2, L, n, add, o); break;
    case SM_CHAT_DEEPSEEK3: by_role(&deepseek3, L, n, add, o); break;
    case SM_CHAT_EXAONE3: by_role(&exaone3, L, n, add, o); break;
    case SM_CHAT_RWKV_WORLD: rwkv_world(L, n, o); break;
    case SM_CHAT_GRANITE: granite(L, n, add, o); break;
    case SM_CHAT_GIGACHAT: gigachat(L, n, add, o); break;
    }
}

/* template.c - the built-in chat formats by name, and recognising a model's
 * Jinja chat template by the marker strings it contains.
 *
 * The names and the detection rules are llama.cpp's (src/llama-chat.cpp,
 * llm_chat_detect_template, at c392e509): an exact name wins; otherwise the
 * rules below are tried in llama.cpp's order and the first that matches
 * decides, so a template containing markers of two formats resolves as
 * llama.cpp resolves it. The end-of-turn texts are ours, read off each
 * format's output (see sm_chat_fmt_eot). */
#include "chat/template.h"

#include <string.h>

static const char *const names[SM_CHAT_FMT_COUNT + 1] = {
    [SM_CHAT_CHATGLM3] = "chatglm3",
    [SM_CHAT_CHATGLM4] = "chatglm4",
    [SM_CHAT_CHATML] = "chatml",
    [SM_CHAT_COMMAND_R] = "command-r",
    [SM_CHAT_DEEPSEEK] = "deepseek",
    [SM_CHAT_DEEPSEEK2] = "deepseek2",
    [SM_CHAT_DEEPSEEK3] = "deepseek3",
    [SM_CHAT_EXAONE3] = "exaone3",
    [SM_CHAT_FALCON3] = "falcon3",
    [SM_CHAT_GEMMA] = "gemma",
    [SM_CHAT_GIGACHAT] = "gigachat",
    [SM_CHAT_GLMEDGE] = "glmedge",
    [SM_CHAT_GRANITE] = "granite",
    [SM_CHAT_LLAMA2] = "llama2",
    [SM_CHAT_LLAMA2_SYS] = "llama2-sys",
    [SM_CHAT_LLAMA2_SYS_BOS] = "llama2-sys-bos",
    [SM_CHAT_LLAMA2_SYS_STRIP] = "llama2-sys-strip",
    [SM_CHAT_LLAMA3] = "llama3",
    [SM_CHAT_MEGREZ] = "megrez",
    [SM_CHAT_MINICPM] = "minicpm",
    [SM_CHAT_MISTRAL_V1] = "mistral-v1",
    [SM_CHAT_MISTRAL_V3] = "mistral-v3",
    [SM_CHAT_MISTRAL_V3_TEKKEN] = "mistral-v3-tekken",
    [SM_CHAT_MISTRAL_V7] = "mistral-v7",
    [SM_CHAT_MONARCH] = "monarch",
    [SM_CHAT_OPENCHAT] = "openchat",
    [SM_CHAT_ORION] = "orion",
    [SM_CHAT_PHI3] = "phi3",
    [SM_CHAT_PHI4] = "phi4",
    [SM_CHAT_RWKV_WORLD] = "rwkv-world",
    [SM_CHAT_VICUNA] = "vicuna",
    [SM_CHAT_VICUNA_ORCA] = "vicuna-orca",
    [SM_CHAT_ZEPHYR] = "zephyr",
    [SM_CHAT_FMT_COUNT] = NULL,
};

static const char *const eots[SM_CHAT_FMT_COUNT] = {
    [SM_CHAT_CHATGLM3] = "<|user|>",
    [SM_CHAT_CHATGLM4] = "<|user|>",
    [SM_CHAT_CHATML] = "<|im_end|>",
    [SM_CHAT_COMMAND_R] = "<|END_OF_TURN_TOKEN|>",
    [SM_CHAT_DEEPSEEK] = "<|EOT|>",
    [SM_CHAT_DEEPSEEK2] = SM_CHAT_DS_EOS,
    [SM_CHAT_DEEPSEEK3] = SM_CHAT_DS_EOS,
    [SM_CHAT_EXAONE3] = "[|endofturn|]",
    [SM_CHAT_FALCON3] = "<|user|>",
    [SM_CHAT_GEMMA] = "<end_of_turn>",
    [SM_CHAT_GIGACHAT] = "<|message_sep|>",
    [SM_CHAT_GLMEDGE] = "<|user|>",
    [SM_CHAT_GRANITE] = "<|end_of_text|>",
    [SM_CHAT_LLAMA2] = "</s>",
    [SM_CHAT_LLAMA2_SYS] = "</s>",
    [SM_CHAT_LLAMA2_SYS_BOS] = "</s>",
    [SM_CHAT_LLAMA2_SYS_STRIP] = "</s>",
    [SM_CHAT_LLAMA3] = "<|eot_id|>",
    [SM_CHAT_MEGREZ] = "<|turn_end|>",
    [SM_CHAT_MINICPM] = SM_CHAT_MINICPM_USER,
    [SM_CHAT_MISTRAL_V1] = "</s>",
    [SM_CHAT_MISTRAL_V3] = "</s>",
    [SM_CHAT_MISTRAL_V3_TEKKEN] = "</s>",
    [SM_CHAT_MISTRAL_V7] = "</s>",
    [SM_CHAT_MONARCH] = "</s>",
    [SM_CHAT_OPENCHAT] = "<|end_of_turn|>",
    [SM_CHAT_ORION] = "</s>",
    [SM_CHAT_PHI3] = "<|end|>",
    [SM_CHAT_PHI4] = "<|im_end|>",
    [SM_CHAT_RWKV_WORLD] = "\n\n",
    [SM_CHAT_VICUNA] = "</s>",
    [SM_CHAT_VICUNA_ORCA] = "</s>",
    [SM_CHAT_ZEPHYR] = "<|endoftext|>",
};

const char *sm_chat_fmt_name(int fmt) { return names[fmt]; }

const char *const *sm_chat_fmt_names(void) { return names; }

/* After an assistant message each format writes a closing marker, which is
 * the end-of-turn text. Five write none and go straight on to the next
 * turn; for them it is the next user turn's opener, which such a model
 * emits to end its reply: chatglm3, chatglm4 and glmedge (ChatGLM's
 * generation configs list <|user|> among the end tokens), falcon3 (the
 * formatter writes only "\n" after a reply) and minicpm. rwkv-world's "\n\n" is llama.cpp's own note: that
 * format needs the model to end turns with "\n\n". */
const char *sm_chat_fmt_eot(int fmt) { return eots[fmt]; }

void sm_chat_fmt_list(char *out, size_t cap) {
    size_t w = 0;
    if (!cap) return;
    out[0] = '\0';
    for (int i = 0; i < SM_CHAT_FMT_COUNT; i++) {
        const char *sep = i ? ", " : "";
        size_t need = strlen(sep) + strlen(names[i]);
        if (w + need + 1 > cap) break;
        memcpy(out + w, sep, strlen(sep));
        memcpy(out + w + strlen(sep), names[i], strlen(names[i]));
        w += need;
        out[w] = '\0';
    }
}

/* Does text[0..len) contain the NUL-terminated needle? */
static int has(const char *text, size_t len, const char *needle) {
    size_t n = strlen(needle);
    if (n == 0) return 1;
    if (n > len) return 0;
    const char *end = text + len - n;
    for (const char *p = text; p <= end; p++) {
        p = memchr(p, needle[0], (size_t)(end - p) + 1);
        if (!p) return 0;
        if (memcmp(p, needle, n) == 0) return 1;
    }
    return 0;
}

int sm_chat_fmt_detect(const char *t, size_t len) {
    if (!t) return -1;
    for (int i = 0; i < SM_CHAT_FMT_COUNT; i++)
        if (strlen(names[i]) == len && memcmp(names[i], t, len) == 0) return i;

    if (has(t, len, "<|im_start|>")) return has(t, len, "<|im_sep|>") ? SM_CHAT_PHI4 : SM_CHAT_CHATML;
    if ((len >= 7 && memcmp(t, "mistral", 7) == 0) || has(t, len, "[INST]")) {
        if (has(t, len, "[SYSTEM_PROMPT]")) return SM_CHAT_MISTRAL_V7;
        /* mistral's official v1 (system message glued in front), v3 and
         * v3-tekken (tool blocks) templates */
        if (has(t, len, "' [INST] ' + system_message") || has(t, len, "[AVAILABLE_TOOLS]")) {
            if (has(t, len, " [INST]")) return SM_CHAT_MISTRAL_V1;
            if (has(t, len, "\"[INST]\"")) return SM_CHAT_MISTRAL_V3_TEKKEN;
            return SM_CHAT_MISTRAL_V3;
        }
        /* llama 2 and its variants */
        if (has(t, len, "content.strip()")) return SM_CHAT_LLAMA2_SYS_STRIP;
        if (has(t, len, "bos_token + '[INST]")) return SM_CHAT_LLAMA2_SYS_BOS;
        if (has(t, len, "<<SYS>>")) return SM_CHAT_LLAMA2_SYS;
        return SM_CHAT_LLAMA2;
    }
    if (has(t, len, "<|assistant|>") && has(t, len, "<|end|>")) return SM_CHAT_PHI3;
    if (has(t, len, "<|assistant|>") && has(t, len, "<|user|>"))
        return has(t, len, "</s>") ? SM_CHAT_FALCON3 : SM_CHAT_GLMEDGE;
    if (has(t, len, "<|user|>") && has(t, len, "<|endoftext|>")) return SM_CHAT_ZEPHYR;
    if (has(t, len, "bos_token + message['role']")) return SM_CHAT_MONARCH;
    if (has(t, len, "<start_of_turn>")) return SM_CHAT_GEMMA;
    if (has(t, len, "'\\n\\nAssistant: ' + eos_token")) return SM_CHAT_ORION;
    if (has(t, len, "GPT4 Correct ")) return SM_CHAT_OPENCHAT;
    if (has(t, len, "USER: ") && has(t, len, "ASSISTANT: "))
        return has(t, len, "SYSTEM: ") ? SM_CHAT_VICUNA_ORCA : SM_CHAT_VICUNA;
    if (has(t, len, "### Instruction:") && has(t, len, "<|EOT|>")) return SM_CHAT_DEEPSEEK;
    if (has(t, len, "<|START_OF_TURN_TOKEN|>") && has(t, len, "<|USER_TOKEN|>")) return SM_CHAT_COMMAND_R;
    if (has(t, len, "<|start_header_id|>") && has(t, len, "<|end_header_id|>")) return SM_CHAT_LLAMA3;
    if (has(t, len, "[gMASK]sop")) return SM_CHAT_CHATGLM3;
    if (has(t, len, "[gMASK]<sop>")) return SM_CHAT_CHATGLM4;
    if (has(t, len, SM_CHAT_MINICPM_USER)) return SM_CHAT_MINICPM;
    if (has(t, len, "'Assistant: ' + message['content'] + eos_token")) return SM_CHAT_DEEPSEEK2;
    if (has(t, len, SM_CHAT_DS_ASSISTANT) && has(t, len, SM_CHAT_DS_USER)
        && has(t, len, SM_CHAT_DS_EOS))
        return SM_CHAT_DEEPSEEK3;
    if (has(t, len, "[|system|]") && has(t, len, "[|assistant|]") && has(t, len, "[|endofturn|]"))
        return SM_CHAT_EXAONE3;
    if (has(t, len, "rwkv-world")) return SM_CHAT_RWKV_WORLD;
    if (has(t, len, "<|start_of_role|>")) return SM_CHAT_GRANITE;
    if (has(t, len, "message['role'] + additional_special_tokens[0] + message['content'] + "
                    "additional_special_tokens[1]"))
        return SM_CHAT_GIGACHAT;
    if (has(t, len, "<|role_start|>")) return SM_CHAT_MEGREZ;
    return -1;
}

// chat_refs.cpp - records llama.cpp's own chat-template formatting as test
// vectors for tests/unit/test_chat_template.c: llama_chat_apply_template on
// every built-in name and on short template texts written here to trip each
// detection rule, over conversations with edge cases (no messages, empty and
// whitespace content, unusual roles, non-ASCII text), and
// common_chat_format_single (the llama-cli route) over growing conversations.
// Built and run against a llama.cpp build by tests/refs/make_chat_refs.sh;
// nothing of llama.cpp is committed, only the output.
//
// Output format (read by the unit test): records of fields, each field
//   KEY SP LENGTH LF BYTES LF
// A case is: "kind" (apply | single), "tmpl", then for apply the messages as
// "role"/"content" pairs, for single the past as "role"/"content" pairs and
// the new message as "nrole"/"ncontent", then "add" ("0"/"1"), then either
// "expect" (the output) or "error" (empty: llama.cpp refused), then "end".
#include "llama.h"
#include "chat.h"

#include <cstdio>
#include <string>
#include <vector>

struct msg { std::string role, content; };

static void field(const char *key, const std::string &v) {
    printf("%s %zu\n", key, v.size());
    fwrite(v.data(), 1, v.size(), stdout);
    printf("\n");
}

static void apply_case(const std::string &tmpl, const std::vector<msg> &conv, bool add) {
    std::vector<llama_chat_message> chat;
    for (const auto &m : conv) chat.push_back({m.role.c_str(), m.content.c_str()});
    std::vector<char> buf(1 << 16);
    int32_t r = llama_chat_apply_template(tmpl.c_str(), chat.data(), chat.size(), add, buf.data(), (int32_t)buf.size());
    field("kind", "apply");
    field("tmpl", tmpl);
    for (const auto &m : conv) { field("role", m.role); field("content", m.content); }
    field("add", add ? "1" : "0");
    if (r < 0) field("error", "");
    else field("expect", std::string(buf.data(), (size_t)r));
    field("end", "");
}

static void single_case(const std::string &tmpl, const std::vector<msg> &past, const msg &m, bool add) {
    auto tmpls = common_chat_templates_init(nullptr, tmpl);
    std::vector<common_chat_msg> p;
    for (const auto &x : past) { common_chat_msg c; c.role = x.role; c.content = x.content; p.push_back(c); }
    common_chat_msg n;
    n.role = m.role;
    n.content = m.content;
    field("kind", "single");
    field("tmpl", tmpl);
    for (const auto &x : past) { field("role", x.role); field("content", x.content); }
    field("nrole", m.role);
    field("ncontent", m.content);
    field("add", add ? "1" : "0");
    try {
        field("expect", common_chat_format_single(tmpls.get(), p, n, add, false));
    } catch (const std::exception &) {
        field("error", "");
    }
    field("end", "");
}

int main() {
    std::vector<std::string> names;
    {
        int32_t n = llama_chat_builtin_templates(nullptr, 0);
        std::vector<const char *> v((size_t)n);
        llama_chat_builtin_templates(v.data(), v.size());
        for (auto s : v) names.push_back(s);
    }
    names.push_back("mistral");   // a prefix rule, not a name

    // Short texts written for these tests, one per detection rule and for the
    // order of the rules (each is a plain string, not a real model template).
    const std::vector<std::string> texts = {
        "{{ '<|im_start|>' + role }}", "<|im_start|> <|im_sep|>", "mistral-anything", "a mistral b",
        "[INST] [SYSTEM_PROMPT]", "{{ ' [INST] ' + system_message }}", "[AVAILABLE_TOOLS] {{ \"[INST]\" }}",
        "[AVAILABLE_TOOLS][INST]", "[INST] content.strip() <<SYS>>", "[INST] bos_token + '[INST] <<SYS>>",
        "[INST] <<SYS>>", "x[INST]x", "<|assistant|> <|end|>", "<|assistant|><|user|></s>", "<|assistant|><|user|>",
        "<|user|> <|endoftext|>", "{{ bos_token + message['role'] }}", "<start_of_turn>",
        "{{ '\\n\\nAssistant: ' + eos_token }}", "GPT4 Correct ", "USER: ASSISTANT: ", "SYSTEM: USER: ASSISTANT: ",
        "### Instruction: <|EOT|>", "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>", "<|start_header_id|><|end_header_id|>",
        "[gMASK]sop", "[gMASK]<sop>", "<\xe7\x94\xa8\xe6\x88\xb7>",
        "{{ 'Assistant: ' + message['content'] + eos_token }}",
        "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><\xef\xbd\x9c" "User\xef\xbd\x9c><\xef\xbd\x9c" "end\xe2\x96\x81"
        "of\xe2\x96\x81sentence\xef\xbd\x9c>",
        "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><\xef\xbd\x9c" "User\xef\xbd\x9c>",
        "[|system|][|assistant|][|endofturn|]", "[|system|][|assistant|]", "rwkv-world v5", "<|start_of_role|>",
        "message['role'] + additional_special_tokens[0] + message['content'] + additional_special_tokens[1]",
        "<|role_start|>", "<|im_start|>[INST]", "[INST]<|im_start|>", "<start_of_turn><|start_header_id|><|end_header_id|>",
        "<|user|><|endoftext|><|assistant|>", "USER: ASSISTANT: GPT4 Correct ", "<|assistant|>", "chatml ", "CHATML",
        "Llama3", "", "{% for m in messages %}{{ m.content }}{% endfor %}",
    };

    const std::vector<std::vector<msg>> convs = {
        {{"system", "You are a helpful assistant"}, {"user", "Hello"}, {"assistant", "Hi there"},
         {"user", "Who are you"}, {"assistant", "   I am an assistant   "}, {"user", "Another question"}},
        {{"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Bye"}},
        {},
        {{"system", "only a system prompt"}},
        {{"system", "  \t sys with spaces \n"}, {"system", "second system"}, {"user", " \xc3\xbcn\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \n"},
         {"assistant", ""}, {"user", ""}, {"tool", "tool output"}, {"model", "model-role text"},
         {"assistant_tool_call", "call()"}, {"\xc3\xa9mile", "accented role"}, {"", "empty role"},
         {"user", "emoji \xf0\x9f\x98\x80 end\r\n"}},
        {{"assistant", "A first"}, {"user", "U"}},
        {{"system", "   "}, {"user", "u"}, {"assistant", "\v\f"}},
    };

    for (const auto &t : names)
        for (const auto &c : convs)
            for (int add = 0; add < 2; add++) apply_case(t, c, add);
    for (const auto &t : texts) apply_case(t, convs[0], true);

    // common_chat_format_single: each message of three of the conversations
    // in turn, as llama-cli adds them (the assistant opening after a user
    // message).
    for (const auto &t : names) {
        for (int ci : {0, 1, 6}) {
            const auto &c = convs[(size_t)ci];
            for (size_t k = 0; k < c.size(); k++) {
                std::vector<msg> past(c.begin(), c.begin() + (long)k);
                bool add = c[k].role == "user";
                single_case(t, past, c[k], add);
            }
        }
    }
    return 0;
}

// grammar_oracle.cpp - llama.cpp's grammar engine as an oracle for
// tests/grammar_diff.py: reads cases from stdin and prints llama.cpp's
// verdicts, in the format tests/tools/grammar_check.c prints ours.
//
// Input, repeated: "G <n>\n" + n bytes of GBNF, then any number of
// "S <n>\n" + n bytes of a string, then "E\n". Output: "P 1" or "P 0"
// (the grammar builds or not), then per string "1" (accepted fully), "0"
// (rejected) or "-" (no grammar). Matching is by code point, as llama.cpp's
// tests/test-grammar-integration.cpp does it (llama_grammar_accept on each
// code point, then "complete" when a stack is empty).
//
// Built against a llama.cpp checkout and its libllama (see
// tests/grammar_diff.py); not part of the normal build.
#include "llama-grammar.h"

#include <cstdio>
#include <string>
#include <vector>

static bool read_block(char *tag, std::string &out) {
    char head[64];
    if (!fgets(head, sizeof head, stdin)) return false;
    *tag = head[0];
    if (*tag == 'E') return true;
    size_t n = strtoul(head + 2, nullptr, 10);
    out.resize(n);
    return fread(&out[0], 1, n, stdin) == n;
}

static std::vector<uint32_t> code_points(const std::string &s) {
    std::vector<uint32_t> cps;
    for (size_t i = 0; i < s.size();) {
        unsigned char c = (unsigned char)s[i];
        int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
        for (int k = 1; k < len && i + k < s.size(); k++) v = (v << 6) | ((unsigned char)s[i + k] & 0x3F);
        cps.push_back(v);
        i += len;
    }
    return cps;
}

int main() {
    llama_grammar *g = nullptr;
    char tag;
    std::string text;
    while (read_block(&tag, text)) {
        if (tag == 'G') {
            if (g) llama_grammar_free_impl(g);
            g = llama_grammar_init_impl(nullptr, text.c_str(), "root", false, nullptr, 0, nullptr, 0);
            printf("P %d\n", g != nullptr);
        } else if (tag == 'S') {
            if (!g) {
                printf("-\n");
                continue;
            }
            llama_grammar *m = llama_grammar_clone_impl(*g);
            bool ok = true;
            for (uint32_t cp : code_points(text)) {
                llama_grammar_accept(m, cp);
                if (llama_grammar_get_stacks(m).empty()) {
                    ok = false;
                    break;
                }
            }
            bool complete = false;
            if (ok)
                for (const auto &st : llama_grammar_get_stacks(m))
                    if (st.empty()) complete = true;
            printf("%d\n", ok && complete);
            llama_grammar_free_impl(m);
        } else if (tag == 'E') {
            printf("E\n");
        }
        fflush(stdout);
    }
    if (g) llama_grammar_free_impl(g);
    return 0;
}

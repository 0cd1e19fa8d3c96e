/* test_regex.c - the regex engine on splits worked out by hand from the
 * patterns' definitions (leftmost-first, greedy, with backtracking). */
#include "test.h"
#include "text/regex.h"
#include "text/unicode.h"

#include <stdlib.h>

/* Splits text with one pattern the way the pre-tokenizer does (matches and
 * the gaps between them) and joins the pieces with '|'. */
static void split(const char *pattern, const char *text, char *out, size_t cap) {
    char err[128];
    sm_regex *re = sm_regex_compile(pattern, err, sizeof err);
    out[0] = '\0';
    if (!re) { snprintf(out, cap, "compile error: %s", err); return; }
    uint32_t cps[256];
    size_t n = sm_utf8_to_cps(text, strlen(text), cps), pos = 0, ms, me, w = 0;
    while (pos < n) {
        size_t a = pos, b = n;
        if (sm_regex_search(re, cps, n, pos, &ms, &me)) {
            if (ms > pos) b = ms;
            else b = me;
        }
        if (w) out[w++] = '|';
        for (size_t i = a; i < b; i++) w += sm_cp_to_utf8(cps[i], out + w);
        pos = b;
    }
    out[w] = '\0';
    sm_regex_free(re);
}

#define GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"

TEST(regex_gpt2_split) {
    char out[1024];
    split(GPT2, "Hello world  123!! it's", out, sizeof out);
    CHECKF(strcmp(out, "Hello| world| | 123|!!| it|'s") == 0, "%s", out);
    split(GPT2, "caf\xc3\xa9 \xce\xbb\xce\xbb  ", out, sizeof out);  /* letters beyond ASCII; trailing spaces */
    CHECKF(strcmp(out, "caf\xc3\xa9| \xce\xbb\xce\xbb|  ") == 0, "%s", out);
}

#define LLAMA3 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

TEST(regex_llama3_split) {
    char out[1024];
    split(LLAMA3, "Hello 123456 world\n\nI'M ok", out, sizeof out);
    CHECKF(strcmp(out, "Hello| |123|456| world|\n\n|I|'M| ok") == 0, "%s", out);
}

TEST(regex_features) {
    char out[1024];
    split("\\p{N}{1,3}", "12345", out, sizeof out);
    CHECKF(strcmp(out, "123|45") == 0, "%s", out);
    split("\\s+$", "a  b  ", out, sizeof out);
    CHECKF(strcmp(out, "a  b|  ") == 0, "%s", out);
    split("[^a-c]+", "aaxyzbq", out, sizeof out);
    CHECKF(strcmp(out, "aa|xyz|b|q") == 0, "%s", out);
    split("(?:ab)+|a", "abababa", out, sizeof out);
    CHECKF(strcmp(out, "ababab|a") == 0, "%s", out);
    split("x(?=y)", "xxyx", out, sizeof out);
    CHECKF(strcmp(out, "x|x|yx") == 0, "%s", out);
    split("[\\p{Lu}]+", "abCDe", out, sizeof out);
    CHECKF(strcmp(out, "ab|CD|e") == 0, "%s", out);
    char err[128];
    CHECK(sm_regex_compile("(ab", err, sizeof err) == NULL && strstr(err, ")"));
    CHECK(sm_regex_compile("a**", err, sizeof err) == NULL);
    CHECK(sm_regex_compile("\\p{Xy}", err, sizeof err) == NULL);
}

/* Code points written as escapes: \x{H...}, \xHH, \uHHHH, alone and in
 * class ranges. */
TEST(regex_code_point_escapes) {
    char out[1024];
    split("[\\x{3B1}-\\x{3C9}]+", "a\xce\xb1\xce\xb2" "b", out, sizeof out);  /* Greek small letters */
    CHECKF(strcmp(out, "a|\xce\xb1\xce\xb2" "|b") == 0, "%s", out);
    split("\\u00e9+", "\xc3\xa9\xc3\xa9x", out, sizeof out);
    CHECKF(strcmp(out, "\xc3\xa9\xc3\xa9|x") == 0, "%s", out);
    split("\\x41", "BAB", out, sizeof out);
    CHECKF(strcmp(out, "B|A|B") == 0, "%s", out);
    split("[\\x{1F5F}-\\x{1F7D}]", "\xe1\xbd\xbd\xcf\x8e", out, sizeof out);  /* U+1F7D, not U+03CE */
    CHECKF(strcmp(out, "\xe1\xbd\xbd|\xcf\x8e") == 0, "%s", out);
    char err[128];
    CHECK(sm_regex_compile("\\x{110000}", err, sizeof err) == NULL);
    CHECK(sm_regex_compile("\\x{}", err, sizeof err) == NULL);
    CHECK(sm_regex_compile("\\x{41", err, sizeof err) == NULL);
    CHECK(sm_regex_compile("\\u12", err, sizeof err) == NULL);
    CHECK(sm_regex_compile("\\xG1", err, sizeof err) == NULL);
    CHECK(sm_regex_compile("[\\x{1F5F}-\\x{3CE}]", err, sizeof err) == NULL && strstr(err, "out of order"));
}

TEST(unicode_categories_from_the_database) {
    CHECK(sm_unicode_category('A') == SM_UC_LU && sm_unicode_category('z') == SM_UC_LL);
    CHECK(sm_unicode_category('7') == SM_UC_ND && sm_unicode_category(0x4E00) == SM_UC_LO);
    CHECK(sm_unicode_category(0x0301) == SM_UC_MN && sm_unicode_category('!') == SM_UC_PO);
    CHECK(sm_unicode_category(0x10FFFF) == SM_UC_CN);
    CHECK(sm_unicode_is_space(' ') && sm_unicode_is_space(0x3000) && sm_unicode_is_space('\n'));
    CHECK(!sm_unicode_is_space('x') && !sm_unicode_is_space(0x200B));
}

/* test_tokenizer.c - the SentencePiece-style tokenizer against vectors made
 * by the Hugging Face tokenizers (../shared/vocab) and by llama2.c's tests
 * (../shared/refs), plus the UTF-8 stream decoder. */
#include "test.h"
#include "text/utf8.h"

#include <stdlib.h>

#define SEP "\n__ggml_vocab_test__\n"

/* Runs every vector of a vocab file; returns the number of mismatches. */
static void check_vocab_vectors(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", name);
    const char *gguf = shared_path(rel);
    if (!gguf) SKIP("../shared/vocab is absent");
    char inp_path[1100], out_path[1100];
    snprintf(inp_path, sizeof inp_path, "%s.inp", gguf);
    snprintf(out_path, sizeof out_path, "%s.out", gguf);
    size_t il, ol;
    char *inp = read_file(inp_path, &il), *out = read_file(out_path, &ol);
    REQUIRE(inp && out);
    sm_model *m = NULL;
    sm_error err = {0};
    REQUIRE(sm_model_load(gguf, NULL, &m, &err) == SM_OK);
    char *s = inp, *line = out;
    int n_cases = 0, id_fail = 0, rt_fail = 0;
    for (;;) {
        char *sep = strstr(s, SEP);
        if (!sep) break;
        *sep = '\0';
        char *eol = strchr(line, '\n');
        REQUIRE(eol);
        *eol = '\0';
        int expect[512], ne = 0;
        for (char *q = line; *q;) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q) break;
            expect[ne++] = (int)v;
            q = end;
        }
        sm_token got[512];
        size_t ng = 0;
        sm_status st = sm_tokenize(m, s, strlen(s), 0, got, 512, &ng, &err);
        int same = st == SM_OK && (int)ng == ne;
        for (int k = 0; same && k < ne; k++) same = got[k] == expect[k];
        if (!same) {
            id_fail++;
            CHECKF(0, "%s case %d ('%.40s'): got %zu tokens, expected %d", name, n_cases, s, ng, ne);
        }
        char back[4096];
        size_t bl;
        if (sm_detokenize(m, got, ng, back, sizeof back, &bl, NULL) != SM_OK || strcmp(back, s) != 0) {
            rt_fail++;
            CHECKF(0, "%s case %d: decode(encode(s)) = '%.40s', s = '%.40s'", name, n_cases, back, s);
        }
        n_cases++;
        s = sep + strlen(SEP);
        line = eol + 1;
    }
    CHECKF(n_cases == 46, "%d cases read", n_cases);
    CHECK(id_fail == 0 && rt_fail == 0);
    sm_model_free(m);
    free(inp);
    free(out);
}

TEST(tokenizer_vectors_llama_spm) { check_vocab_vectors("llama-spm"); }
TEST(tokenizer_vectors_phi3) { check_vocab_vectors("phi-3"); }

/* Just enough JSON for llama2c_tokenizer_tests.json: strings with escapes
 * and arrays of integers. */
static const char *json_string(const char *p, char *out, size_t cap) {
    size_t w = 0;
    p++;  /* opening quote */
    while (*p && *p != '"' && w + 5 < cap) {
        if (*p != '\\') { out[w++] = *p++; continue; }
        p++;
        char c = *p++;
        if (c == 'n') out[w++] = '\n';
        else if (c == 't') out[w++] = '\t';
        else if (c == 'r') out[w++] = '\r';
        else if (c == 'u') {
            unsigned cp = (unsigned)strtoul((char[5]){p[0], p[1], p[2], p[3], 0}, NULL, 16);
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p[0] == '\\' && p[1] == 'u') {
                unsigned lo = (unsigned)strtoul((char[5]){p[2], p[3], p[4], p[5], 0}, NULL, 16);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            if (cp < 0x80) out[w++] = (char)cp;
            else if (cp < 0x800) { out[w++] = (char)(0xC0 | cp >> 6); out[w++] = (char)(0x80 | (cp & 63)); }
            else if (cp < 0x10000) {
                out[w++] = (char)(0xE0 | cp >> 12); out[w++] = (char)(0x80 | ((cp >> 6) & 63));
                out[w++] = (char)(0x80 | (cp & 63));
            } else {
                out[w++] = (char)(0xF0 | cp >> 18); out[w++] = (char)(0x80 | ((cp >> 12) & 63));
                out[w++] = (char)(0x80 | ((cp >> 6) & 63)); out[w++] = (char)(0x80 | (cp & 63));
            }
        } else out[w++] = c;
    }
    out[w] = '\0';
    return *p == '"' ? p + 1 : p;
}

TEST(tokenizer_llama2c_vectors_with_tokenizer_bin) {
    NEED_SHARED(jpath, "refs/llama2c_tokenizer_tests.json");
    NEED_SHARED(tok, "models/tokenizer.bin");
    char *json = read_file(jpath, NULL);
    REQUIRE(json);
    /* tokenizer.bin belongs to a 32000-token model that is not in
     * ../shared, so its vocabulary is loaded on its own. */
    size_t tsize;
    char *tdata = read_file(tok, &tsize);
    REQUIRE(tdata);
    extern sm_status sm_test_vocab_from_llama2c(const void *, size_t, int, sm_model **, sm_error *);
    sm_model *m = NULL;
    sm_error err = {0};
    REQUIRE(sm_test_vocab_from_llama2c(tdata, tsize, 32000, &m, &err) == SM_OK);
    int cases = 0;
    const char *p = strstr(json, "\"tests\"");
    REQUIRE(p);
    while ((p = strstr(p, "\"text\""))) {
        p = strchr(p + 6, '"');
        char text[4096];
        p = json_string(p, text, sizeof text);
        p = strchr(strstr(p, "\"ids\""), '[') + 1;
        int expect[512], ne = 0;
        while (*p && *p != ']') {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p) { p++; continue; }
            expect[ne++] = (int)v;
            p = end;
        }
        sm_token got[512];
        size_t ng;
        REQUIRE(sm_tokenize(m, text, strlen(text), 1, got, 512, &ng, &err) == SM_OK);
        int same = (int)ng == ne;
        for (int k = 0; same && k < ne; k++) same = got[k] == expect[k];
        CHECKF(same, "case %d ('%.30s'): %zu tokens, expected %d", cases, text, ng, ne);
        cases++;
    }
    CHECK(cases == 5);
    sm_model_free(m);
    free(tdata);
    free(json);
}

TEST(tokenizer_rejects_bad_utf8_and_reports_needed_size) {
    NEED_SHARED(path, "models/stories260K.gguf");
    sm_model *m = NULL;
    REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
    sm_error err = {0};
    sm_token t[4];
    size_t n;
    CHECK(sm_tokenize(m, "ab\xff", 3, 1, t, 4, &n, &err) == SM_ERR_UTF8 && strstr(err.message, "offset 2"));
    CHECK(sm_tokenize(m, "\xc3", 1, 1, t, 4, &n, &err) == SM_ERR_UTF8);
    CHECK(sm_tokenize(m, "\xed\xa0\x80", 3, 1, t, 4, &n, &err) == SM_ERR_UTF8);  /* surrogate */
    const char *long_text = "Once upon a time there was a dog";
    CHECK(sm_tokenize(m, long_text, strlen(long_text), 1, t, 4, &n, &err) == SM_ERR_BUFFER_TOO_SMALL && n > 4);
    sm_token big[64];
    size_t n2;
    CHECK(sm_tokenize(m, long_text, strlen(long_text), 1, big, 64, &n2, &err) == SM_OK && n2 == n);
    CHECK(big[0] == 1);
    /* byte-fallback tokens decode to the character they spell */
    size_t ne;
    sm_token e[16];
    CHECK(sm_tokenize(m, "\xc3\xa9", 2, 0, e, 16, &ne, &err) == SM_OK);
    char back[64];
    size_t bl;
    CHECK(sm_detokenize(m, e, ne, back, sizeof back, &bl, &err) == SM_OK && strcmp(back, "\xc3\xa9") == 0);
    sm_token bad = 512;
    CHECK(sm_detokenize(m, &bad, 1, back, sizeof back, &bl, &err) == SM_ERR_TOKEN_RANGE);
    sm_model_free(m);
}

TEST(utf8_validation) {
    CHECK(sm_utf8_validate("a\xc3\xa9\xe2\x82\xac\xf0\x9f\xa6\x99", 10) == 10);
    CHECK(sm_utf8_validate("\xc0\x80", 2) == 0);          /* overlong */
    CHECK(sm_utf8_validate("\xe0\x80\xaf", 3) == 0);      /* overlong */
    CHECK(sm_utf8_validate("x\xed\xa0\x80", 4) == 1);     /* surrogate */
    CHECK(sm_utf8_validate("\xf4\x90\x80\x80", 4) == 0);  /* > U+10FFFF */
    CHECK(sm_utf8_validate("\xf0\x9f\xa6", 3) == 0);      /* truncated */
    CHECK(sm_utf8_validate("\x80", 1) == 0);
}

TEST(utf8_stream_never_splits_a_character) {
    sm_utf8_stream st = {0};
    char out[64];
    /* U+1F999 (4 bytes) fed one byte at a time: nothing until the last */
    const char *llama = "\xf0\x9f\xa6\x99";
    CHECK(sm_utf8_stream_feed(&st, llama, 1, out) == 0);
    CHECK(sm_utf8_stream_feed(&st, llama + 1, 1, out) == 0);
    CHECK(sm_utf8_stream_feed(&st, llama + 2, 1, out) == 0);
    CHECK(sm_utf8_stream_feed(&st, llama + 3, 1, out) == 4 && memcmp(out, llama, 4) == 0);
    /* a lead byte followed by ASCII: U+FFFD then the ASCII */
    size_t n = sm_utf8_stream_feed(&st, "\xc3", 1, out);
    CHECK(n == 0);
    n = sm_utf8_stream_feed(&st, "a", 1, out);
    CHECK(n == 4 && memcmp(out, "\xef\xbf\xbd" "a", 4) == 0);
    /* a stray continuation byte */
    n = sm_utf8_stream_feed(&st, "\xa9x", 2, out);
    CHECK(n == 4 && memcmp(out, "\xef\xbf\xbdx", 4) == 0);
    /* an impossible prefix is rejected at once, not held */
    n = sm_utf8_stream_feed(&st, "\xed\xa0", 2, out);
    CHECK(n == 6);
    /* pending bytes at the end become U+FFFD */
    CHECK(sm_utf8_stream_feed(&st, "\xe2\x82", 2, out) == 0);
    CHECK(sm_utf8_stream_flush(&st, out) == 6);
    CHECK(st.n_pending == 0);
}

TEST(tokenizer_vectors_gpt2) { check_vocab_vectors("gpt-2"); }
TEST(tokenizer_vectors_mpt) { check_vocab_vectors("mpt"); }
TEST(tokenizer_vectors_starcoder) { check_vocab_vectors("starcoder"); }
TEST(tokenizer_vectors_deepseek_coder) { check_vocab_vectors("deepseek-coder"); }

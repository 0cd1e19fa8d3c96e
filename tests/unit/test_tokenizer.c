/* test_tokenizer.c - the tokenizers against vectors made by the Hugging
 * Face tokenizers (../shared/vocab), by llama2.c's tests (../shared/refs)
 * and by llama.cpp (special tokens: tests/refs/llamacpp/special_tokens.tsv),
 * the pre-tokenizer table, plus the UTF-8 stream decoder. */
#include "test.h"
#include "text/pretok.h"
#include "text/unicode.h"
#include "text/utf8.h"
#include "text/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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
TEST(tokenizer_vectors_deepseek_llm) { check_vocab_vectors("deepseek-llm"); }

/* Every pre-tokenizer the table lists compiles and is found by each of its
 * names (a pattern the regex engine rejects fails the load of every model
 * that names it, as deepseek-llm's did). */
TEST(pretokenizer_every_listed_name_compiles) {
    int n_names = 0;
    for (size_t i = 0; sm_pretok_names(i); i++) {
        const char *p = sm_pretok_names(i);
        while (*p) {
            size_t len = strcspn(p, "|");
            sm_pretok *pt = NULL;
            int fallback = -1;
            sm_error err = {0};
            sm_status st = sm_pretok_new(p, len, &pt, &fallback, &err);
            CHECKF(st == SM_OK && fallback == 0, "pre-tokenizer '%.*s': %s", (int)len, p, err.message);
            sm_pretok_free(pt);
            n_names++;
            p += len + (p[len] == '|');
        }
    }
    CHECKF(n_names >= 55, "%d names", n_names);
    sm_pretok *pt = NULL;
    int fallback = 0;
    CHECK(sm_pretok_new("no-such-pre", 11, &pt, &fallback, NULL) == SM_OK && fallback == 1);
    sm_pretok_free(pt);
}

/* ------------------------------------------------ pre-tokenizer variants
 * The gpt-2 vocabulary under each split of the table: copies of its file
 * whose tokenizer.ggml.pre names another pre-tokenizer (or, "none", that
 * has no such key: vocab_with_pre), on llama.cpp's 46 strings and tests/refs/pretok/
 * extra.inp. Expected ids: llama.cpp c392e509's llama-tokenize on the same
 * copies (tests/refs/make_pretok_refs.sh, tests/refs/gguf_set_pre.py). */
#define PRETOK_REFS "tests/refs/pretok/"

/* The cases, in place in one buffer: the shared strings, then ours. */
static int pretok_cases(char **buf, char **cases, int max) {
    const char *inp = shared_path("vocab/ggml-vocab-gpt-2.gguf.inp");
    if (!inp) return -1;
    size_t a, b;
    char *x = read_file(inp, &a), *y = read_file(PRETOK_REFS "extra.inp", &b);
    if (!x || !y) { free(x); free(y); return 0; }
    char *t = malloc(a + b + sizeof SEP);
    memcpy(t, x, a);
    memcpy(t + a, y, b);
    memcpy(t + a + b, SEP, sizeof SEP);  /* the shared file ends with SEP; ours does not */
    free(x);
    free(y);
    int n = 0;
    for (char *s = t, *sep; n < max && (sep = strstr(s, SEP)); s = sep + strlen(SEP)) {
        *sep = '\0';
        cases[n++] = s;
    }
    *buf = t;
    return n;
}

TEST(tokenizer_pretok_variants_match_llamacpp) {
    NEED_SHARED(gguf, "vocab/ggml-vocab-gpt-2.gguf");
    static const char *names[] = {"none", "default", "llama-bpe", "dbrx", "qwen2", "megrez", "starcoder",
                                  "falcon", "deepseek-coder", "deepseek-llm", "deepseek-v3", "bloom",
                                  "viking", "tekken", "chameleon"};
    char *buf = NULL, *cases[64];
    int n_cases = pretok_cases(&buf, cases, 64);
    REQUIRE(n_cases == 58);
    for (size_t v = 0; v < sizeof names / sizeof names[0]; v++) {
        char *tmp = vocab_with_pre(gguf, strcmp(names[v], "none") == 0 ? NULL : names[v]);
        REQUIRE(tmp);
        sm_model *m = NULL;
        sm_error err = {0};
        sm_status loaded = sm_model_load(tmp, NULL, &m, &err);
        unlink(tmp);
        free(tmp);
        REQUIRE(loaded == SM_OK);
        char path[256];
        snprintf(path, sizeof path, PRETOK_REFS "%s.out", names[v]);
        char *want = read_file(path, NULL);
        REQUIRE(want);
        char *line = want;
        int bad = 0, i;
        for (i = 0; i < n_cases && *line; i++) {
            char *eol = strchr(line, '\n');
            REQUIRE(eol);
            *eol = '\0';
            sm_token got[512];
            size_t ng = 0;
            sm_status st = sm_tokenize(m, cases[i], strlen(cases[i]), 0, got, 512, &ng, &err);
            size_t k = 0;
            char *q = line, *end;
            for (long id; st == SM_OK && (id = strtol(q, &end, 10), end != q); q = end, k++)
                if (k >= ng || got[k] != id) st = SM_ERR_INVALID_ARG;
            if (st != SM_OK || k != ng) {
                bad++;
                CHECKF(0, "pre-tokenizer %s, case %d ('%.30s'): ids differ from llama.cpp's", names[v], i + 1,
                       cases[i]);
            }
            line = eol + 1;
        }
        CHECKF(i == n_cases && bad == 0, "%s: %d of %d cases differ", names[v], bad, i);
        free(want);
        sm_model_free(m);
    }
    free(buf);
}

/* Patterns llama.cpp c392e509 cannot run (gpt-4o/llama4, bailingmoe,
 * seed-coder), piece by piece against V8's regular expressions
 * (tests/refs/make_pretok_splits.mjs): "start:length" in code points. */
TEST(pretokenizer_splits_match_v8) {
    static const char *names[] = {"gpt-4o", "bailingmoe", "seed-coder"};
    char *buf = NULL, *cases[64];
    int n_cases = pretok_cases(&buf, cases, 64);
    if (n_cases < 0) SKIP("../shared/vocab is absent");
    REQUIRE(n_cases == 58);
    uint32_t cps[2048], st[2048], ln[2048], t1[2048], t2[2048];
    for (size_t v = 0; v < sizeof names / sizeof names[0]; v++) {
        sm_pretok *pt = NULL;
        int fallback = -1;
        REQUIRE(sm_pretok_new(names[v], strlen(names[v]), &pt, &fallback, NULL) == SM_OK && fallback == 0);
        char path[256];
        snprintf(path, sizeof path, PRETOK_REFS "%s.split", names[v]);
        char *want = read_file(path, NULL);
        REQUIRE(want);
        char *line = want;
        int bad = 0;
        for (int i = 0; i < n_cases; i++) {
            char *eol = strchr(line, '\n');
            REQUIRE(eol);
            *eol = '\0';
            size_t len = strlen(cases[i]);
            REQUIRE(len < 2048);
            size_t ncp = sm_utf8_to_cps(cases[i], len, cps);
            size_t np = sm_pretok_split(pt, cps, ncp, st, ln, t1, t2);
            size_t k = 0;
            int same = 1;
            for (char *q = line; *q && same; k++) {
                char *end;
                unsigned long a = strtoul(q, &end, 10), b;
                same = *end == ':';
                b = strtoul(end + 1, &q, 10);
                same = same && k < np && st[k] == a && ln[k] == b;
                while (*q == ' ') q++;
            }
            if (!same || k != np) {
                bad++;
                CHECKF(0, "pre-tokenizer %s, case %d ('%.30s'): %zu pieces, V8 splits it otherwise", names[v], i + 1,
                       cases[i], np);
            }
            line = eol + 1;
        }
        CHECKF(bad == 0, "%s: %d of %d cases differ", names[v], bad, n_cases);
        free(want);
        sm_pretok_free(pt);
    }
    free(buf);
}

/* deepseek-llm's split, piece by piece as its published pattern list says
 * (llama.cpp's src/llama-vocab.cpp): letters with an optional leading space
 * (a class of ranges: U+00B5, U+00C0-U+00D6, U+00D8-U+00F6, ... U+1E900-
 * U+1E943), ASCII and fullwidth punctuation with U+2018-U+201F, white space
 * at the end, CJK (which takes U+0800-U+4E00 whole), digits. */
TEST(pretokenizer_deepseek_llm_split) {
    sm_pretok *pt = NULL;
    int fallback = 0;
    REQUIRE(sm_pretok_new("deepseek-llm", 12, &pt, &fallback, NULL) == SM_OK && !fallback);
    /* U+00E9 X U+00E9 is one piece when X is in the letter class, three when
     * not (ASCII letters would not do: the punctuation class's range :-~
     * takes them out of any piece) */
    const uint32_t in[] = {0xB5, 0xC0, 0xD6, 0xD8, 0x3A3, 0x531, 0x10400, 0x1E943};
    const uint32_t out[] = {0xD7, 0xF7, 0x1BB, 0x3A2, 0x1E944};
    for (size_t i = 0; i < sizeof in / sizeof in[0] + sizeof out / sizeof out[0]; i++) {
        int letter = i < sizeof in / sizeof in[0];
        uint32_t x = letter ? in[i] : out[i - sizeof in / sizeof in[0]];
        uint32_t cps[3] = {0xE9, x, 0xE9}, st[3], ln[3], t1[3], t2[3];
        size_t n = sm_pretok_split(pt, cps, 3, st, ln, t1, t2);
        CHECKF(n == (letter ? 1u : 3u), "U+%04X: %zu pieces", x, n);
    }
    /* "ab" U+201C " cd" U+4E00 U+4E01 "12 \n": letters, a quote, letters
     * with their space, CJK, digits, the space before the line break, it */
    uint32_t cps[] = {'a', 'b', 0x201C, ' ', 'c', 'd', 0x4E00, 0x4E01, '1', '2', ' ', '\n'};
    uint32_t st[12], ln[12], t1[12], t2[12];
    const uint32_t want[] = {2, 1, 3, 2, 2, 1, 1};
    size_t n = sm_pretok_split(pt, cps, 12, st, ln, t1, t2);
    int same = n == 7;
    for (size_t i = 0; same && i < n; i++) same = ln[i] == want[i];
    CHECKF(same, "%zu pieces", n);
    sm_pretok_free(pt);
}

/* Reads "\n", "\t" and "\\" escapes in place. */
static void unescape(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '\\' && r[1]) {
            r++;
            *w++ = *r == 'n' ? '\n' : *r == 't' ? '\t' : *r;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* Texts around special tokens (strip attributes, parse_special) with the ids
 * llama.cpp's llama-tokenize gave (tests/refs/make_special_token_refs.sh). */
static void check_special_cases(const char *vocab) {
    char rel[256];
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", vocab);
    const char *gguf = shared_path(rel);
    if (!gguf) SKIP("../shared/vocab is absent");
    char *tsv = read_file("tests/refs/llamacpp/special_tokens.tsv", NULL);
    REQUIRE(tsv);
    sm_model *m = NULL;
    REQUIRE(sm_model_load(gguf, NULL, &m, NULL) == SM_OK);
    int cases = 0;
    for (char *line = tsv, *next; *line; line = next) {
        char *eol = strchr(line, '\n');
        next = eol ? eol + 1 : line + strlen(line);
        if (eol) *eol = '\0';
        char *f[4] = {line, NULL, NULL, NULL};
        for (int k = 1; k < 4 && f[k - 1]; k++) {
            char *tab = strchr(f[k - 1], '\t');
            if (tab) { *tab = '\0'; f[k] = tab + 1; }
        }
        if (!f[3] || strcmp(f[0], vocab) != 0) continue;
        unescape(f[2]);
        int expect[256], ne = 0;
        for (char *q = f[3]; *q;) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q) break;
            expect[ne++] = (int)v;
            q = end;
        }
        unsigned flags = strcmp(f[1], "special") == 0 ? SM_TOKENIZE_PARSE_SPECIAL : 0;
        sm_token got[256];
        size_t ng = 0;
        sm_error err = {0};
        sm_status st = sm_tokenize_ex(m, f[2], strlen(f[2]), flags, got, 256, &ng, &err);
        int same = st == SM_OK && (int)ng == ne;
        for (int k = 0; same && k < ne; k++) same = got[k] == expect[k];
        char shown[256] = "";
        for (size_t k = 0, w = 0; k < ng && k < 16 && w + 12 < sizeof shown; k++)
            w += (size_t)snprintf(shown + w, sizeof shown - w, " %d", got[k]);
        CHECKF(same, "%s %s '%s': got%s, expected %s", vocab, f[1], f[2], shown, f[3]);
        cases++;
    }
    CHECKF(cases >= 2, "%d cases for %s", cases, vocab);
    sm_model_free(m);
    free(tsv);
}

TEST(tokenizer_special_tokens_phi3) { check_special_cases("phi-3"); }
TEST(tokenizer_special_tokens_llama_spm) { check_special_cases("llama-spm"); }
TEST(tokenizer_special_tokens_gpt2) { check_special_cases("gpt-2"); }
TEST(tokenizer_special_tokens_deepseek_llm) { check_special_cases("deepseek-llm"); }

TEST(tokenizer_flags) {
    NEED_SHARED(path, "vocab/ggml-vocab-llama-spm.gguf");
    sm_model *m = NULL;
    REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
    sm_error err = {0};
    sm_token a[16], b[16];
    size_t na = 0, nb = 0;
    CHECK(sm_tokenize_ex(m, "<s>x", 4, 4, a, 16, &na, &err) == SM_ERR_INVALID_ARG && strstr(err.message, "flags"));
    /* sm_tokenize's add_bos is the ADD_BOS flag, whatever non-zero value it has */
    CHECK(sm_tokenize(m, "<s>x", 4, 7, a, 16, &na, &err) == SM_OK);
    CHECK(sm_tokenize_ex(m, "<s>x", 4, SM_TOKENIZE_ADD_BOS, b, 16, &nb, &err) == SM_OK);
    CHECK(na == nb && na > 2 && memcmp(a, b, na * sizeof *a) == 0 && a[0] == 1);
    /* with parse_special the text "<s>" is the BOS token: two of them */
    CHECK(sm_tokenize_ex(m, "<s>x", 4, SM_TOKENIZE_ADD_BOS | SM_TOKENIZE_PARSE_SPECIAL, b, 16, &nb, &err) == SM_OK);
    CHECK(nb >= 3 && b[0] == 1 && b[1] == 1);
    sm_model_free(m);
}

/* The left-strip attribute (llama.cpp gives it to "<mask>" of the jina-v2
 * vocabularies, which ../shared does not have): on a hand-made SentencePiece
 * vocabulary, the white space before the token goes with it; the space after
 * it stays and the dummy prefix is added after the token, as llama.cpp's
 * tokenizer_st_partition and SPM path do. Expected ids worked out by hand. */
TEST(tokenizer_lstrip_attribute) {
    const char *texts[] = {"<unk>", "<s>", "</s>", "a", " ", "b", " b", " a", "<mask>"};
    int types[] = {SM_TOK_UNKNOWN, SM_TOK_CONTROL, SM_TOK_CONTROL, 1, 1, 1, 1, 1, SM_TOK_USER_DEFINED};
    sm_vocab_entry e[9];
    for (int i = 0; i < 9; i++) e[i] = (sm_vocab_entry){texts[i], (uint32_t)strlen(texts[i]), (float)i, types[i]};
    sm_vocab v;
    REQUIRE(sm_vocab_build(&v, e, 9, SM_VOCAB_SPM_PLAIN, NULL) == SM_OK);
    const char *text = "a  <mask> b";
    sm_token t[16];
    size_t n = 0;
    REQUIRE(sm_vocab_encode(&v, text, strlen(text), 0, t, 16, &n, NULL) == SM_OK);
    const sm_token plain[] = {7, 4, 4, 8, 4, 6};  /* " a", " ", " ", <mask>, " ", " b" */
    CHECKF(n == 6 && memcmp(t, plain, sizeof plain) == 0, "%zu tokens", n);
    sm_vocab_set_strip_rules(&v, "Some Model", 10, "jina-v2-es", 10);
    REQUIRE(sm_vocab_encode(&v, text, strlen(text), 0, t, 16, &n, NULL) == SM_OK);
    const sm_token stripped[] = {7, 8, 4, 6};  /* " a", <mask>, " ", " b" */
    CHECKF(n == 4 && memcmp(t, stripped, sizeof stripped) == 0, "%zu tokens", n);
    sm_vocab_free(&v);
}

/* test_grammar.c - the GBNF parser and matcher (src/grammar) on cases
 * worked out by hand from llama.cpp's grammar guide (../shared/grammars/
 * README.md): what a grammar accepts, error positions, UTF-8 split across
 * pieces, repetition bounds, hostile grammars, allocation, and the
 * vocabulary mask against per-token checks. llama.cpp's own verdicts are in
 * test_grammar_json.c. */
#include "test.h"

#include <dirent.h>
#include <stdlib.h>

static sm_grammar *parse(const char *text) {
    sm_grammar *g = NULL;
    sm_error err = {0};
    if (sm_grammar_parse(text, strlen(text), NULL, &g, &err) != SM_OK)
        test_fail(__FILE__, __LINE__, "grammar does not parse: %s", err.message);
    return g;
}

/* 1 when the matcher takes all of s and is complete, 0 when it rejects a
 * byte or cannot end there. */
static int full_match(sm_grammar_matcher *m, const char *s, size_t n) {
    sm_grammar_matcher_reset(m);
    return sm_grammar_matcher_accept(m, s, n, NULL) == SM_OK && sm_grammar_matcher_is_complete(m);
}

/* Checks each string of a NULL-terminated list is accepted (want 1) or
 * rejected (want 0) by the grammar. */
static void verdicts(const char *grammar, int want, const char *const *strings) {
    sm_grammar *g = parse(grammar);
    if (!g) return;
    sm_grammar_matcher *m;
    if (sm_grammar_matcher_new(g, &m, NULL) != SM_OK) {
        test_fail(__FILE__, __LINE__, "no matcher");
        sm_grammar_free(g);
        return;
    }
    for (; *strings; strings++)
        CHECKF(full_match(m, *strings, strlen(*strings)) == want, "%s \"%s\" with %s", want ? "must accept" : "must reject",
               *strings, grammar);
    sm_grammar_matcher_free(m);
    sm_grammar_free(g);
}

#define ACCEPTS(g, ...) verdicts(g, 1, (const char *const[]){__VA_ARGS__, NULL})
#define REJECTS(g, ...) verdicts(g, 0, (const char *const[]){__VA_ARGS__, NULL})

/* The message of a grammar that must fail, or "" if it parses. */
static const char *parse_error(const char *text, size_t len) {
    static sm_error err;
    sm_grammar *g = NULL;
    memset(&err, 0, sizeof err);
    if (sm_grammar_parse(text, len, NULL, &g, &err) == SM_OK) {
        sm_grammar_free(g);
        return "";
    }
    return err.message;
}

#define ERROR_HAS(text, want)                                                                         \
    do {                                                                                              \
        const char *msg_ = parse_error(text, strlen(text));                                           \
        CHECKF(strstr(msg_, want) != NULL, "grammar %s: expected an error with \"%s\", got \"%s\"", #text, want, msg_); \
    } while (0)

TEST(grammar_shared_files_parse) {
    NEED_SHARED(dir_path, "grammars");
    DIR *d = opendir(dir_path);
    REQUIRE(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".gbnf") != 0) continue;
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir_path, e->d_name);
        size_t size;
        char *text = read_file(path, &size);
        REQUIRE(text);
        sm_grammar *g = NULL;
        sm_error err = {0};
        CHECKF(sm_grammar_parse(text, size, NULL, &g, &err) == SM_OK, "%s: %s", e->d_name, err.message);
        sm_grammar_free(g);
        free(text);
        n++;
    }
    closedir(d);
    CHECKF(n == 8, "%d grammar files, the folder has 8", n);
}

TEST(grammar_shared_files_accept) {
    NEED_SHARED(dir_path, "grammars/chess.gbnf");
    static const struct { const char *file, *good, *bad; } cases[] = {
        {"chess.gbnf", "1. e4 e5\n2. Nf3 Nc6\n", "1. e4 e5\n"},           /* at least one more move line */
        {"chess.gbnf", "1. O-O-O Qxd8+\n10. exd5 a8=Q#\n", "1. e9 e5\n2. a3 a4\n"},
        {"arithmetic.gbnf", "x=1\n", "1+2*(3-4)\n"},                      /* needs "expr = term" lines */
        {"arithmetic.gbnf", "(a +b)*c=d\ny2=3\n", "(a + b)=c\n"},   /* no space before a term */
        {"list.gbnf", "- one\n- two\n", "- one"},
        {"json.gbnf", "{\"a\": [1, 2.5, \"x\\u00e9\"], \"b\": null}", "{\"a\": }"},
        {"japanese.gbnf", "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf", "hello"},
        {"english.gbnf", "Hello, world!", "caf\xc3\xa9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "grammars/%s", cases[i].file);
        const char *path = shared_path(rel);
        REQUIRE(path);
        size_t size;
        char *text = read_file(path, &size);
        REQUIRE(text);
        sm_grammar *g = NULL;
        sm_grammar_matcher *m = NULL;
        REQUIRE(sm_grammar_parse(text, size, NULL, &g, NULL) == SM_OK);
        REQUIRE(sm_grammar_matcher_new(g, &m, NULL) == SM_OK);
        CHECKF(full_match(m, cases[i].good, strlen(cases[i].good)), "%s must accept \"%s\"", cases[i].file, cases[i].good);
        CHECKF(!full_match(m, cases[i].bad, strlen(cases[i].bad)), "%s must reject \"%s\"", cases[i].file, cases[i].bad);
        sm_grammar_matcher_free(m);
        sm_grammar_free(g);
        free(text);
    }
}

TEST(grammar_syntax) {
    /* Comments, "|" continuing on the next line, nested groups over lines. */
    const char *g1 = "# a greeting\n"
                     "root ::= greeting \" \" name   # trailing comment\n"
                     "greeting ::= \"hi\" | \"hello\" |\n"
                     "    \"hey\"\n"
                     "name ::= (\n"
                     "    [A-Z] [a-z]*   # a word\n"
                     "  | \"\\x41\\u00e9\\U0001F535\"\n"
                     ") \"!\"?\n";
    ACCEPTS(g1, "hi Bob", "hey Bob!", "hello A", "hi A\xc3\xa9\xf0\x9f\x94\xb5", "hi A\xc3\xa9\xf0\x9f\x94\xb5!");
    REJECTS(g1, "hi bob", "hey", "hi Bob!!", "hi A\xc3\xa9", "howdy Bob", "");
    /* Escapes. */
    ACCEPTS("root ::= \"\\t\\n\\r\\\\\\\"\\[\\]\"", "\t\n\r\\\"[]");
    /* Classes: ranges, escapes, '-' last is a literal, negation. */
    ACCEPTS("root ::= [^a-c\\]x-]+", "d", "z\xc3\xa9", "ABC");
    REJECTS("root ::= [^a-c\\]x-]+", "a", "]", "x", "-", "db", "");
    ACCEPTS("root ::= [a-c\\]x-]+", "abc]x-", "-");
    /* "." is one code point, whatever its length in bytes. */
    ACCEPTS("root ::= . .", "ab", "\xc3\xa9\xf0\x9f\x94\xb5");
    REJECTS("root ::= . .", "abc", "a");
    /* An empty alternative; rules used before they are defined; CRLF. */
    ACCEPTS("root ::= \"a\" ( \"b\" | ) \"c\"", "ac", "abc");
    ACCEPTS("root ::= a\r\na ::= \"x\" b\r\nb ::= \"y\"\r\n", "xy");
    /* A literal repeated is the whole literal. */
    ACCEPTS("root ::= \"ab\"+", "ab", "abab");
    REJECTS("root ::= \"ab\"+", "a", "aba", "abb");
    /* Another start rule. */
    sm_grammar *g = NULL;
    const char *two = "root ::= \"r\"\nexpr ::= \"e\"";
    CHECK(sm_grammar_parse(two, strlen(two), "expr", &g, NULL) == SM_OK);
    sm_grammar_matcher *m = NULL;
    if (g && sm_grammar_matcher_new(g, &m, NULL) == SM_OK) {
        CHECK(full_match(m, "e", 1));
        CHECK(!full_match(m, "r", 1));
    }
    sm_grammar_matcher_free(m);
    sm_grammar_free(g);
}

TEST(grammar_repetition_bounds) {
    ACCEPTS("root ::= \"ab\"{2,4}", "abab", "ababab", "abababab");
    REJECTS("root ::= \"ab\"{2,4}", "", "ab", "ababababab", "aba");
    ACCEPTS("root ::= [0-9]{3}", "007", "123");
    REJECTS("root ::= [0-9]{3}", "12", "1234");
    ACCEPTS("root ::= \"a\"{2,}", "aa", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    REJECTS("root ::= \"a\"{2,}", "a", "");
    ACCEPTS("root ::= \"a\"{0,2} \"b\"", "b", "ab", "aab");
    REJECTS("root ::= \"a\"{0,2} \"b\"", "aaab");
    ACCEPTS("root ::= \"x\" \"a\"{0} \"y\"", "xy");
    REJECTS("root ::= \"x\" \"a\"{0} \"y\"", "xay");
    ACCEPTS("root ::= (\"x\"{2}){3}", "xxxxxx");
    REJECTS("root ::= (\"x\"{2}){3}", "xxxxx", "xxxxxxx");
    ACCEPTS("root ::= (\"a\" \"b\"?){2}", "aa", "aba", "abab", "aab");
    REJECTS("root ::= (\"a\" \"b\"?){2}", "a", "aaa", "abb");
    ACCEPTS("root ::= [ab]{ 1 , 2 }", "a", "ba");   /* spaces inside braces */
    ACCEPTS("root ::= \"a\"*?", "", "aaa");       /* ? applies to the starred symbol */
}

TEST(grammar_errors_give_line_and_column) {
    ERROR_HAS("root ::= \"abc", "line 1, column 10: string literal not closed");
    ERROR_HAS("root ::= \"a\"\n  bad", "line 2, column 6: expecting '::='");
    ERROR_HAS("root ::= x\nx ::= \"a\" )", "line 2, column 11: ')' without a matching '('");
    ERROR_HAS("root ::= \"\xc3\xa9\" \\q", "line 1, column 14: unexpected '\\'");
    ERROR_HAS("root ::= \"\\q\"", "line 1, column 11: unknown escape '\\q'");
    ERROR_HAS("root ::= a b\na ::= \"x\"", "line 1, column 12: undefined rule 'b'");
    ERROR_HAS("root ::= [z-a]", "line 1, column 11: range");
    ERROR_HAS("root ::= *", "line 1, column 10: '*' without anything before it");
    ERROR_HAS("root ::= \"a\"{2", "line 1, column 15: expecting ',' or '}'");
    ERROR_HAS("root ::= a\na ::= \"x\"\na ::= \"y\"", "line 3, column 1: rule 'a' is defined twice (first on line 2)");
    ERROR_HAS("root ::= (\"a\"\n\n", "line 3, column 1: expecting ')' to close the group opened on line 1, column 10");
    ERROR_HAS("root ::= []", "line 1, column 10: empty character class");
    ERROR_HAS("my_rule ::= \"a\"", "line 1, column 3: rule names may use letters, digits and '-' only");
    ERROR_HAS("root ::= \"\\x4\"", "line 1, column 11: escape \\x needs 2 hex digits");
    ERROR_HAS("root ::= \"\\U00110000\"", "beyond U+10FFFF");
    ERROR_HAS("root ::= \"a\"\n| \"c\"", "line 2, column 1: expecting a rule name, found '|'");
    ACCEPTS("root ::= \"a\" |\n | \"c\"", "a", "", "c");   /* after '|' the rule goes on */
    ERROR_HAS("rot ::= \"a\"", "no rule named 'root'");
    ERROR_HAS("", "empty");
    ERROR_HAS("root ::= \"a\" | root \"b\"", "left recursion: rule 'root' (line 1)");
    ERROR_HAS("root ::= x\nx ::= y? x \"a\" | \"b\"\ny ::= \"c\"", "left recursion: rule 'x' (line 2)");
    CHECK(strstr(parse_error("root ::= \"a\xff\"", 14), "invalid UTF-8"));
    CHECK(strstr(parse_error("root ::= \"a\0\"", 13), "NUL"));
}

TEST(grammar_complete_and_continue) {
    sm_grammar *g = parse("root ::= \"a\" \"b\"?");
    REQUIRE(g);
    sm_grammar_matcher *m;
    REQUIRE(sm_grammar_matcher_new(g, &m, NULL) == SM_OK);
    CHECK(!sm_grammar_matcher_is_complete(m) && sm_grammar_matcher_can_continue(m));
    CHECK(sm_grammar_matcher_accept(m, "a", 1, NULL) == SM_OK);
    CHECK(sm_grammar_matcher_is_complete(m) && sm_grammar_matcher_can_continue(m));
    CHECK(sm_grammar_matcher_accept(m, "b", 1, NULL) == SM_OK);
    CHECK(sm_grammar_matcher_is_complete(m) && !sm_grammar_matcher_can_continue(m));
    sm_error err = {0};
    CHECK(sm_grammar_matcher_accept(m, "b", 1, &err) == SM_ERR_INVALID_ARG);
    CHECKF(strstr(err.message, "byte 0x62 at offset 0"), "%s", err.message);
    CHECK(sm_grammar_matcher_is_complete(m));   /* a rejected piece changes nothing */
    /* A rejected byte in the middle of a piece leaves the state unchanged too. */
    sm_grammar_matcher_reset(m);
    CHECK(sm_grammar_matcher_accept(m, "ax", 2, NULL) != SM_OK);
    CHECK(!sm_grammar_matcher_is_complete(m) && sm_grammar_matcher_accept(m, "ab", 2, NULL) == SM_OK);
    sm_grammar_matcher_free(m);
    sm_grammar_free(g);
    /* A grammar of the empty string only. */
    g = parse("root ::= \"\"");
    REQUIRE(g);
    REQUIRE(sm_grammar_matcher_new(g, &m, NULL) == SM_OK);
    CHECK(sm_grammar_matcher_is_complete(m) && !sm_grammar_matcher_can_continue(m));
    CHECK(!sm_grammar_matcher_try(m, "a", 1));
    sm_grammar_matcher_free(m);
    sm_grammar_free(g);
}

TEST(grammar_utf8_split_across_pieces) {
    /* é = C3 A9, ü = C3 BC, à = C3 A0, 🔵 = F0 9F 94 B5 */
    sm_grammar *g = parse("root ::= (\"\xc3\xa9\" | \"\xc3\xbc\") \"\xf0\x9f\x94\xb5\"");
    REQUIRE(g);
    sm_grammar_matcher *m;
    REQUIRE(sm_grammar_matcher_new(g, &m, NULL) == SM_OK);
    const char *s = "\xc3\xa9\xf0\x9f\x94\xb5";
    /* Every way of cutting the 6 bytes into two pieces. */
    for (size_t cut = 0; cut <= 6; cut++) {
        sm_grammar_matcher_reset(m);
        CHECKF(sm_grammar_matcher_accept(m, s, cut, NULL) == SM_OK, "cut %zu", cut);
        CHECKF(cut == 6 || !sm_grammar_matcher_is_complete(m), "cut %zu: complete too early", cut);
        CHECKF(sm_grammar_matcher_accept(m, s + cut, 6 - cut, NULL) == SM_OK, "cut %zu", cut);
        CHECKF(sm_grammar_matcher_is_complete(m), "cut %zu", cut);
    }
    sm_grammar_matcher_reset(m);
    CHECK(sm_grammar_matcher_try(m, "\xc3", 1));       /* could become é or ü */
    CHECK(!sm_grammar_matcher_try(m, "\xc4", 1));      /* U+0100..U+013F: none allowed */
    CHECK(!sm_grammar_matcher_try(m, "a", 1));
    CHECK(sm_grammar_matcher_accept(m, "\xc3", 1, NULL) == SM_OK);
    CHECK(!sm_grammar_matcher_is_complete(m) && sm_grammar_matcher_can_continue(m));
    CHECK(sm_grammar_matcher_try(m, "\xbc", 1));
    CHECK(!sm_grammar_matcher_try(m, "\xa0", 1));      /* à */
    CHECK(!sm_grammar_matcher_try(m, "\xc3\xa9", 2));  /* a new lead byte mid-character */
    CHECK(sm_grammar_matcher_accept(m, "\xa9\xf0\x9f", 3, NULL) == SM_OK);
    CHECK(!sm_grammar_matcher_try(m, "\x94\xb6", 2));  /* 🔶, not 🔵 */
    CHECK(sm_grammar_matcher_try(m, "\x94\xb5", 2));
    sm_grammar_matcher_free(m);
    sm_grammar_free(g);

    /* A negated class: after C3, any continuation but the one making é. */
    g = parse("root ::= [^\xc3\xa9]");
    REQUIRE(g);
    REQUIRE(sm_grammar_matcher_new(g, &m, NULL) == SM_OK);
    CHECK(sm_grammar_matcher_accept(m, "\xc3", 1, NULL) == SM_OK);
    CHECK(!sm_grammar_matcher_try(m, "\xa9", 1));
    CHECK(sm_grammar_matcher_try(m, "\xa0", 1));
    /* Invalid UTF-8 is never accepted: overlong, surrogate, beyond U+10FFFF, stray continuation. */
    sm_grammar_matcher_reset(m);
    CHECK(!sm_grammar_matcher_try(m, "\xc0\x80", 2));
    CHECK(!sm_grammar_matcher_try(m, "\xe0\x80\x80", 3));
    CHECK(!sm_grammar_matcher_try(m, "\xed\xa0\x80", 3));
    CHECK(!sm_grammar_matcher_try(m, "\xf4\x90\x80\x80", 4));
    CHECK(!sm_grammar_matcher_try(m, "\xf5", 1));
    CHECK(!sm_grammar_matcher_try(m, "\x80", 1));
    CHECK(sm_grammar_matcher_try(m, "\xf4\x8f\xbf\xbf", 4));   /* U+10FFFF itself */
    sm_grammar_matcher_free(m);
    sm_grammar_free(g);
}

TEST(grammar_hostile_inputs) {
    /* Parentheses nested beyond the limit. */
    char deep[700];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof deep, "root ::= ");
    for (int i = 0; i < 300; i++) deep[n++] = '(';
    deep[n++] = '"', deep[n++] = 'a', deep[n++] = '"';
    for (int i = 0; i < 300; i++) deep[n++] = ')';
    deep[n] = '\0';
    CHECK(strstr(parse_error(deep, n), "nested deeper than 256"));
    /* Repetitions that would expand without bound. */
    ERROR_HAS("root ::= \"a\"{100000}{100000}", "expands to more than");
    ERROR_HAS("root ::= \"a\"{1000001}", "repetition count is larger than");
    ERROR_HAS("root ::= \"ab\"{1000}{1000}{1000}", "expands to more than");
    /* Text over the size limit is refused before it is read. */
    sm_error err = {0};
    sm_grammar *g = NULL;
    CHECK(sm_grammar_parse("root ::= \"a\"", (size_t)1 << 40, NULL, &g, &err) == SM_ERR_INVALID_ARG);
    /* Rules that double the stacks 30 times: the matcher stops at its limit
     * with a message instead of exhausting memory and time. */
    char amb[4096];
    n = (size_t)snprintf(amb, sizeof amb, "root ::= r1\n");
    for (int i = 1; i <= 30; i++)
        n += (size_t)snprintf(amb + n, sizeof amb - n, "r%d ::= r%d \"a\" | r%d \"b\"\n", i, i + 1, i + 1);
    n += (size_t)snprintf(amb + n, sizeof amb - n, "r31 ::= \"c\"\n");
    g = parse(amb);
    REQUIRE(g);
    sm_grammar_matcher *m = NULL;
    CHECK(sm_grammar_matcher_new(g, &m, &err) == SM_ERR_NOMEM);
    CHECKF(strstr(err.message, "stacks"), "%s", err.message);
    sm_grammar_matcher_free(m);
    sm_grammar_free(g);
    /* Stacks that multiply with every byte: the matcher stops at its limit
     * of parallel stacks (time per byte stays bounded) with a message. */
    g = parse("root ::= (\"a\"{0,1000}){0,1000}");
    REQUIRE(g);
    REQUIRE(sm_grammar_matcher_new(g, &m, NULL) == SM_OK);
    sm_status st = SM_OK;
    for (int i = 0; i < 200 && st == SM_OK; i++) st = sm_grammar_matcher_accept(m, "a", 1, &err);
    CHECKF(st == SM_ERR_NOMEM && strstr(err.message, "stacks"), "%d %s", st, err.message);
    CHECK(!sm_grammar_matcher_try(m, "a", 1) && !sm_grammar_matcher_is_complete(m));
    sm_grammar_matcher_reset(m);   /* a reset clears the failure */
    CHECK(sm_grammar_matcher_accept(m, "aa", 2, NULL) == SM_OK);
    sm_grammar_matcher_free(m);
    sm_grammar_free(g);
    /* Exponentially many expansions of the same stacks are done once. */
    n = (size_t)snprintf(amb, sizeof amb, "root ::= r1\n");
    for (int i = 1; i <= 40; i++)
        n += (size_t)snprintf(amb + n, sizeof amb - n, "r%d ::= r%d | r%d\n", i, i + 1, i + 1);
    n += (size_t)snprintf(amb + n, sizeof amb - n, "r41 ::= \"c\"\n");
    g = parse(amb);
    REQUIRE(g);
    REQUIRE(sm_grammar_matcher_new(g, &m, NULL) == SM_OK);
    CHECK(full_match(m, "c", 1));
    sm_grammar_matcher_free(m);
    sm_grammar_free(g);
}

TEST(grammar_deep_stacks) {
    /* 50000 nested parentheses: the stacks grow (and are compacted) far
     * beyond the initial pool. */
    sm_grammar *g = parse("root ::= \"(\" root \")\" | \"x\"");
    REQUIRE(g);
    sm_grammar_matcher *m;
    REQUIRE(sm_grammar_matcher_new(g, &m, NULL) == SM_OK);
    enum { N = 50000 };
    char *s = malloc(2 * N + 1);
    REQUIRE(s);
    memset(s, '(', N);
    s[N] = 'x';
    memset(s + N + 1, ')', N);
    for (size_t i = 0; i < 2 * N + 1; i++)
        if (sm_grammar_matcher_accept(m, s + i, 1, NULL) != SM_OK) {
            test_fail(__FILE__, __LINE__, "rejected byte %zu", i);
            break;
        }
    CHECK(sm_grammar_matcher_is_complete(m) && !sm_grammar_matcher_can_continue(m));
    CHECK(!full_match(m, s, 2 * N));   /* one ')' short */
    free(s);
    /* Nesting beyond the node limit: refused with a message, no crash. */
    enum { CHUNK = 1 << 16 };
    char *open = malloc(CHUNK);
    REQUIRE(open);
    memset(open, '(', CHUNK);
    sm_grammar_matcher_reset(m);
    sm_error err = {0};
    sm_status st = SM_OK;
    for (int i = 0; i < 80 && st == SM_OK; i++) st = sm_grammar_matcher_accept(m, open, CHUNK, &err);
    CHECKF(st == SM_ERR_NOMEM && strstr(err.message, "nodes"), "%d %s", st, err.message);
    free(open);
    sm_grammar_matcher_free(m);
    sm_grammar_free(g);
}

TEST(grammar_clone_and_filter) {
    sm_grammar *g = parse("root ::= \"ab\" | \"ac\" | \"b\" \"c\"*");
    REQUIRE(g);
    sm_grammar_matcher *m, *c = NULL;
    REQUIRE(sm_grammar_matcher_new(g, &m, NULL) == SM_OK);
    CHECK(sm_grammar_matcher_accept(m, "a", 1, NULL) == SM_OK);
    REQUIRE(sm_grammar_matcher_clone(m, &c, NULL) == SM_OK);
    CHECK(sm_grammar_matcher_accept(m, "b", 1, NULL) == SM_OK);
    CHECK(sm_grammar_matcher_accept(c, "c", 1, NULL) == SM_OK);   /* the clone goes its own way */
    CHECK(sm_grammar_matcher_is_complete(m) && sm_grammar_matcher_is_complete(c));
    sm_grammar_matcher_reset(m);
    const char *pieces[] = {"a", "ab", "abc", "b", "c", "ac", "", "bcc"};
    size_t lens[8];
    for (int i = 0; i < 8; i++) lens[i] = strlen(pieces[i]);
    uint8_t allowed[8];
    const uint8_t want[8] = {1, 1, 0, 1, 0, 1, 0, 1};
    CHECK(sm_grammar_matcher_filter(m, pieces, lens, 8, allowed, NULL) == SM_OK);
    for (int i = 0; i < 8; i++) CHECKF(allowed[i] == want[i], "piece \"%s\": %d", pieces[i], allowed[i]);
    sm_grammar_matcher_free(m);
    sm_grammar_matcher_free(c);
    sm_grammar_free(g);
}

TEST(grammar_vocab_mask_by_hand) {
    sm_grammar *g = parse("root ::= \"ab\" | \"ac\" | \"b\" \"c\"* | (\"\xc3\xa9\" | \"\xc3\xbc\") \"!\"");
    REQUIRE(g);
    const char *pieces[] = {"a", "ab", "abc", "b", "c", "ac", "", "bcc", "\xc3\xa9", "\xc3", "\xa9", "\xa0", "!", "ab"};
    enum { NT = 14 };
    size_t lens[NT];
    for (int i = 0; i < NT; i++) lens[i] = strlen(pieces[i]);
    sm_grammar_vocab *v;
    REQUIRE(sm_grammar_vocab_new(pieces, lens, NT, &v, NULL) == SM_OK);
    CHECK(sm_grammar_vocab_size(v) == NT);
    sm_grammar_matcher *m;
    REQUIRE(sm_grammar_matcher_new(g, &m, NULL) == SM_OK);
    uint8_t allowed[NT];
    size_t count;
    static const uint8_t start[NT] = {1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 0, 1};
    static const uint8_t after_a[NT] = {0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t after_b[NT] = {0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t after_c3[NT] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    static const uint8_t after_e[NT] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    static const struct { const char *prefix; const uint8_t *want; size_t n; } steps[] = {
        {"", start, 8}, {"a", after_a, 2}, {"b", after_b, 1}, {"\xc3", after_c3, 1}, {"\xc3\xa9", after_e, 1}};
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        sm_grammar_matcher_reset(m);
        REQUIRE(sm_grammar_matcher_accept(m, steps[s].prefix, strlen(steps[s].prefix), NULL) == SM_OK);
        REQUIRE(sm_grammar_matcher_mask(m, v, allowed, &count, NULL) == SM_OK);
        CHECKF(count == steps[s].n, "after \"%s\": %zu allowed", steps[s].prefix, count);
        for (int i = 0; i < NT; i++)
            CHECKF(allowed[i] == steps[s].want[i], "after \"%s\": token %d \"%s\" is %d", steps[s].prefix, i, pieces[i],
                   allowed[i]);
    }
    /* Tokens by id. */
    sm_grammar_matcher_reset(m);
    CHECK(sm_grammar_matcher_try_token(m, v, 1) && !sm_grammar_matcher_try_token(m, v, 2));
    CHECK(!sm_grammar_matcher_try_token(m, v, 6) && !sm_grammar_matcher_try_token(m, v, NT) &&
          !sm_grammar_matcher_try_token(m, v, -1));
    CHECK(sm_grammar_matcher_accept_token(m, v, 9, NULL) == SM_OK);
    CHECK(sm_grammar_matcher_accept_token(m, v, 10, NULL) == SM_OK);
    CHECK(sm_grammar_matcher_accept_token(m, v, NT, NULL) == SM_ERR_TOKEN_RANGE);
    sm_grammar_matcher_free(m);
    sm_grammar_vocab_free(v);
    sm_grammar_free(g);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* The vocabulary walk (trie, cached transitions) against trying every
 * token on its own, along a JSON document and at random allowed steps. */
TEST(grammar_vocab_mask_matches_try) {
    sm_grammar *g = parse(sm_grammar_json_value());
    REQUIRE(g);
    static const char corpus[] = "{\"name\": \"caf\xc3\xa9 \xf0\x9f\x94\xb5\", \"n\": [1, -2.5e3, 0, true, false, null],"
                                 " \"o\": {\"k\": \"\\\"q\\\\\\u00e9\"}, \"deep\": [[[{}]]]}";
    enum { NT = 1500 };
    char *pieces[NT];
    size_t lens[NT];
    for (int i = 0; i < 256; i++) {   /* every single byte */
        pieces[i] = malloc(2);
        pieces[i][0] = (char)i;
        lens[i] = 1;
    }
    for (int i = 256; i < 1000; i++) {  /* random slices of the corpus, cut anywhere (also inside characters) */
        size_t a = rnd(sizeof corpus - 1), len = 1 + rnd(8);
        if (a + len > sizeof corpus - 1) len = sizeof corpus - 1 - a;
        pieces[i] = malloc(len + 1);
        memcpy(pieces[i], corpus + a, len);
        lens[i] = i % 97 == 0 ? 0 : len;   /* and a few empty pieces */
    }
    for (int i = 1000; i < NT; i++) {   /* words: big subtrees of letters, which strings allow whole */
        size_t len = 1 + rnd(6);
        pieces[i] = malloc(len + 1);
        for (size_t k = 0; k < len; k++) pieces[i][k] = (char)(k == 0 && i % 3 == 0 ? ' ' : 'a' + rnd(6));
        lens[i] = len;
    }
    sm_grammar_vocab *v;
    REQUIRE(sm_grammar_vocab_new((const char *const *)pieces, lens, NT, &v, NULL) == SM_OK);
    sm_grammar_matcher *m;
    REQUIRE(sm_grammar_matcher_new(g, &m, NULL) == SM_OK);
    uint8_t allowed[NT];
    int mismatches = 0, steps = 0;
    for (size_t pos = 0; pos < sizeof corpus - 1 && mismatches < 5; steps++) {
        size_t count;
        REQUIRE(sm_grammar_matcher_mask(m, v, allowed, &count, NULL) == SM_OK);
        size_t n_try = 0;
        for (int t = 0; t < NT; t++) {
            int want = lens[t] > 0 && sm_grammar_matcher_try(m, pieces[t], lens[t]);
            n_try += (size_t)want;
            if (allowed[t] != want && mismatches++ < 5)
                test_fail(__FILE__, __LINE__, "at offset %zu, token %d: mask %d, try %d", pos, t, allowed[t], want);
        }
        CHECK(count == n_try);
        /* Move on by one to four bytes of the corpus. */
        size_t k = 1 + rnd(4);
        if (pos + k > sizeof corpus - 1) k = sizeof corpus - 1 - pos;
        REQUIRE(sm_grammar_matcher_accept(m, corpus + pos, k, NULL) == SM_OK);
        pos += k;
    }
    CHECK(sm_grammar_matcher_is_complete(m));
    /* Random walks: take a random allowed token each time. */
    for (int walk = 0; walk < 20; walk++) {
        sm_grammar_matcher_reset(m);
        for (int step = 0; step < 40; step++) {
            size_t count;
            REQUIRE(sm_grammar_matcher_mask(m, v, allowed, &count, NULL) == SM_OK);
            if (!count) break;
            uint32_t pick = rnd((uint32_t)count);
            int chosen = -1;
            for (int t = 0; t < NT; t++) {
                int want = lens[t] > 0 && sm_grammar_matcher_try(m, pieces[t], lens[t]);
                if (allowed[t] != want && mismatches++ < 5)
                    test_fail(__FILE__, __LINE__, "walk %d step %d token %d: mask %d, try %d", walk, step, t,
                              allowed[t], want);
                if (allowed[t] && pick-- == 0) chosen = t;
            }
            CHECK(chosen >= 0 && sm_grammar_matcher_accept_token(m, v, chosen, NULL) == SM_OK);
        }
    }
    sm_grammar_matcher_free(m);
    sm_grammar_vocab_free(v);
    sm_grammar_free(g);
    for (int i = 0; i < NT; i++) free(pieces[i]);
}

TEST(grammar_no_allocation_per_byte) {
    sm_grammar *g = parse(sm_grammar_json_value());
    REQUIRE(g);
    const char *pieces[] = {"[", "1", ", ", "\"a\"", "{\"k\": ", "null", "}", "]", "\xc3", "\xa9"};
    size_t lens[10];
    for (int i = 0; i < 10; i++) lens[i] = strlen(pieces[i]);
    sm_grammar_vocab *v;
    REQUIRE(sm_grammar_vocab_new(pieces, lens, 10, &v, NULL) == SM_OK);
    sm_grammar_matcher *m;
    REQUIRE(sm_grammar_matcher_new(g, &m, NULL) == SM_OK);
    uint8_t allowed[10];
    /* One round to warm up (the buffers reach their working size), then
     * the same again must not allocate. */
    unsigned long before = 0;
    for (int round = 0; round < 2; round++) {
        if (round == 1) before = alloc_calls();
        sm_grammar_matcher_reset(m);
        int ok = sm_grammar_matcher_accept(m, "[", 1, NULL) == SM_OK;
        for (int i = 0; i < 3000 && ok; i++) {
            const char *item = i % 3 == 0 ? "1, " : i % 3 == 1 ? "{\"k\": null}, " : "\"\xc3\xa9\", ";
            for (const char *p = item; *p && ok; p++) ok = sm_grammar_matcher_accept(m, p, 1, NULL) == SM_OK;
            ok = ok && sm_grammar_matcher_try(m, "\"a\"", 3) && !sm_grammar_matcher_try(m, "]", 1);
            if (i % 100 == 0) ok = ok && sm_grammar_matcher_mask(m, v, allowed, NULL, NULL) == SM_OK;
        }
        CHECK(ok && sm_grammar_matcher_accept(m, "1]", 2, NULL) == SM_OK && sm_grammar_matcher_is_complete(m));
    }
    unsigned long after = alloc_calls();
    CHECKF(after == before, "%lu allocations while matching 3000 items after warm-up", after - before);
    sm_grammar_matcher_free(m);
    sm_grammar_vocab_free(v);
    sm_grammar_free(g);
}

TEST(grammar_fixed_json) {
    const char *value = sm_grammar_json_value(), *object = sm_grammar_json_object();
    ACCEPTS(value, "{}", "[]", "\"x\"", "-0.5e+10", "true", "null", "{\"a\": [1, {\"b\": \"\\u00e9\\n\"}]}",
            "[1,\n  2]", "\"caf\xc3\xa9\"", "\"\\/\"");
    REJECTS(value, "", "{", "[1,]", "01", "\"\\x\"", "\"a\nb\"", "{\"a\" 1}", "tru", "1.", "{}{}",
            "[1,                         2]");   /* more than 20 spaces */
    ACCEPTS(object, "{}", "{\"a\": 1}");
    REJECTS(object, "[]", "1", "\"a\"");
}

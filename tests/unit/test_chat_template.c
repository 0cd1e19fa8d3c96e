/* test_chat_template.c - chat templates (src/chat) against llama.cpp:
 * - tests/refs/llamacpp/chat_builtin.txt: llama.cpp's own output of
 *   llama_chat_apply_template for every built-in name and for short texts
 *   that trip each detection rule, over edge-case conversations, and of
 *   common_chat_format_single (made by tests/refs/make_chat_refs.sh);
 * - ../shared/refs/llamacpp/chat-templates.json: the cases of llama.cpp's
 *   tests/test-chat-template.cpp (real model templates), read with Jansson
 *   when the unit tests are built with it;
 * and the API around them: sizes, suffixes, errors, the model's template. */
#include "test.h"

#include <stdlib.h>
#include <string.h>
#ifdef SM_HAVE_JANSSON
#include <jansson.h>
#endif

#define REFS "tests/refs/llamacpp/chat_builtin.txt"
#define MAX_MSGS 32

/* ---- the recorded llama.cpp cases (format: see tests/refs/chat_refs.cpp) ---- */

typedef struct field {
    char key[16];
    const char *v;      /* NUL-terminated in place */
    size_t len;
} field;

typedef struct ref_case {
    int single;                           /* common_chat_format_single */
    const char *tmpl;
    sm_chat_message msgs[MAX_MSGS];
    size_t n;
    sm_chat_message new_msg;
    int add;
    const char *expect;                   /* NULL: llama.cpp refused */
    size_t expect_len;
} ref_case;

/* Reads one field at *p, NUL-terminating its value in place (the byte after
 * a value is its closing newline). 0 at the end or on a malformed file. */
static int next_field(char **p, char *end, field *f) {
    char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl) return 0;
    char *sp = memchr(*p, ' ', (size_t)(nl - *p));
    if (!sp || sp - *p >= (long)sizeof f->key) return 0;
    memcpy(f->key, *p, (size_t)(sp - *p));
    f->key[sp - *p] = '\0';
    char *e;
    unsigned long long n = strtoull(sp + 1, &e, 10);
    if (e != nl || n > (unsigned long long)(end - nl - 1) - 1) return 0;
    f->v = nl + 1;
    f->len = (size_t)n;
    if (nl[1 + n] != '\n') return 0;
    nl[1 + n] = '\0';
    *p = nl + 2 + n;
    return 1;
}

/* The next case; 0 at the end of the file or when it is malformed (*bad). */
static int next_case(char **p, char *end, ref_case *c, int *bad) {
    memset(c, 0, sizeof *c);
    field f;
    const char *role = NULL;
    while (next_field(p, end, &f)) {
        if (!strcmp(f.key, "kind")) c->single = !strcmp(f.v, "single");
        else if (!strcmp(f.key, "tmpl")) c->tmpl = f.v;
        else if (!strcmp(f.key, "role")) role = f.v;
        else if (!strcmp(f.key, "content")) {
            if (!role || c->n >= MAX_MSGS) break;
            c->msgs[c->n++] = (sm_chat_message){role, f.v};
            role = NULL;
        } else if (!strcmp(f.key, "nrole")) c->new_msg.role = f.v;
        else if (!strcmp(f.key, "ncontent")) c->new_msg.content = f.v;
        else if (!strcmp(f.key, "add")) c->add = f.v[0] == '1';
        else if (!strcmp(f.key, "expect")) { c->expect = f.v; c->expect_len = f.len; }
        else if (!strcmp(f.key, "error")) c->expect = NULL;
        else if (!strcmp(f.key, "end")) return c->tmpl != NULL || (*bad = 1, 0);
    }
    if (*p < end) *bad = 1;
    return 0;
}

static char *load_refs(size_t *len) {
    char *d = read_file(REFS, len);
    if (!d) printf("    cannot read %s (run the tests from the checkout's top directory)\n", REFS);
    return d;
}

/* Formats a case with our code: the status, the output in out. */
static sm_status run_case(const ref_case *c, char *out, size_t cap, size_t *len, sm_error *err) {
    if (c->single) return sm_chat_format_single(c->tmpl, c->msgs, c->n, &c->new_msg, c->add, out, cap, len, err);
    return sm_chat_apply(c->tmpl, c->msgs, c->n, c->add, out, cap, len, err);
}

TEST(chat_template_llamacpp_builtin) {
    size_t size;
    char *d = load_refs(&size);
    REQUIRE(d);
    char *p = d, *end = d + size;
    ref_case c;
    int bad = 0, n = 0, n_single = 0, n_error = 0;
    static char out[1 << 16];
    while (next_case(&p, end, &c, &bad)) {
        size_t len = 0;
        sm_error err = {0};
        sm_status st = run_case(&c, out, sizeof out, &len, &err);
        if (c.expect)
            CHECKF(st == SM_OK && len == c.expect_len && memcmp(out, c.expect, len) == 0,
                   "%s '%.40s' (%zu messages, add %d): status %d (%s), got '%.*s', want '%s'", c.single ? "single" : "apply",
                   c.tmpl, c.n, c.add, st, err.message, (int)(len > 300 ? 300 : len), out, c.expect);
        else
            CHECKF(st == SM_ERR_UNSUPPORTED && strstr(err.message, "chatml, command-r"),
                   "'%.40s' was accepted (status %d)", c.tmpl, st);
        n++;
        n_single += c.single;
        n_error += !c.expect;
    }
    CHECKF(!bad, "%s is malformed after %d cases", REFS, n);
    CHECKF(n == 932 && n_single == 408 && n_error == 9, "%d cases, %d single, %d errors", n, n_single, n_error);
    free(d);
}

/* The names, in order, are llama_chat_builtin_templates' list: the
 * templates of the recorded cases up to "mistral" (which is no name). */
TEST(chat_template_names) {
    size_t size, n_names = 0;
    char *d = load_refs(&size);
    REQUIRE(d);
    const char *const *names = sm_chat_template_names(&n_names);
    char *p = d, *end = d + size;
    ref_case c;
    int bad = 0;
    size_t k = 0;
    const char *prev = "";
    while (next_case(&p, end, &c, &bad) && strcmp(c.tmpl, "mistral") != 0) {
        if (!strcmp(c.tmpl, prev)) continue;
        CHECKF(k < n_names && !strcmp(names[k], c.tmpl), "name %zu: '%s', llama.cpp: '%s'", k, k < n_names ? names[k] : "-",
               c.tmpl);
        prev = c.tmpl;
        k++;
    }
    CHECK(k == 33 && n_names == 33 && names[33] == NULL);
    free(d);
    for (size_t i = 0; i < n_names; i++) {
        CHECK(!strcmp(sm_chat_template_detect(names[i]), names[i]));
        CHECK(sm_chat_template_eot(names[i]) != NULL);
    }
    CHECK(sm_chat_template_detect(NULL) == NULL && sm_chat_template_eot(NULL) == NULL);
    CHECK(sm_chat_template_detect("INVALID TEMPLATE") == NULL && sm_chat_template_eot("chatml ") == NULL);
    CHECK(!strcmp(sm_chat_template_detect("{{ '<|im_start|>' }}"), "chatml"));
    CHECK(!strcmp(sm_chat_template_detect("mistral"), "llama2"));
}

/* The end-of-turn text follows an assistant reply, past whitespace, in
 * llama.cpp's formatting of user / assistant "Hello!" / user (add 0) for
 * every name. */
TEST(chat_template_eot_follows_reply) {
    size_t size;
    char *d = load_refs(&size);
    REQUIRE(d);
    char *p = d, *end = d + size;
    ref_case c;
    int bad = 0, seen = 0;
    while (next_case(&p, end, &c, &bad)) {
        if (c.single || c.add || c.n != 3 || strcmp(c.msgs[1].content, "Hello!") != 0 || !c.expect) continue;
        if (!strcmp(c.tmpl, "mistral")) continue;
        const char *eot = sm_chat_template_eot(c.tmpl);
        REQUIRE(eot);
        const char *r = strstr(c.expect, "Hello!");
        REQUIRE(r);
        r += 6;
        while (*r == '\n' && strncmp(r, eot, strlen(eot)) != 0) r++;
        CHECKF(!strncmp(r, eot, strlen(eot)), "%s: '%s' does not end the reply in '%s'", c.tmpl, eot, c.expect);
        seen++;
    }
    CHECK(seen == 33);
    free(d);
}

TEST(chat_template_buffer_and_suffix) {
    const sm_chat_message m[] = {{"system", "S"}, {"user", "Hello"}, {"assistant", "Hi"}, {"user", "More \xe6\x97\xa5"}};
    const char *want = "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
                       "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
                       "<|start_header_id|>assistant<|end_header_id|>\n\nHi<|eot_id|>"
                       "<|start_header_id|>user<|end_header_id|>\n\nMore \xe6\x97\xa5<|eot_id|>"
                       "<|start_header_id|>assistant<|end_header_id|>\n\n";
    size_t wl = strlen(want), len = 0;
    char buf[1024];
    sm_error err = {0};
    unsigned long a0 = alloc_calls();
    CHECK(sm_chat_apply("llama3", m, 4, 1, NULL, 0, &len, &err) == SM_OK && len == wl);
    memset(buf, 'x', sizeof buf);
    CHECK(sm_chat_apply("llama3", m, 4, 1, buf, wl, &len, &err) == SM_ERR_BUFFER_TOO_SMALL && len == wl);
    CHECK(buf[wl] == 'x');                       /* nothing written past cap */
    CHECK(sm_chat_apply("llama3", m, 4, 1, buf, wl + 1, &len, &err) == SM_OK && len == wl && !strcmp(buf, want));
    CHECK(alloc_calls() == a0);                  /* formatting allocates nothing */

    /* the new part since a shorter formatting, as a chat loop takes it */
    size_t prev = 0;
    CHECK(sm_chat_apply("llama3", m, 3, 0, NULL, 0, &prev, &err) == SM_OK && prev < wl);
    CHECK(sm_chat_apply_from("llama3", m, 4, 1, prev, buf, sizeof buf, &len, &err) == SM_OK);
    CHECK(len == wl - prev && !strcmp(buf, want + prev));
    CHECK(sm_chat_apply_from("llama3", m, 4, 1, wl, buf, sizeof buf, &len, &err) == SM_OK && len == 0 && !buf[0]);
    CHECK(sm_chat_apply_from("llama3", m, 4, 1, wl + 1, buf, sizeof buf, &len, &err) == SM_ERR_INVALID_ARG);
    /* a small buffer for the suffix: the size it needs */
    CHECK(sm_chat_apply_from("llama3", m, 4, 1, prev, buf, 4, &len, &err) == SM_ERR_BUFFER_TOO_SMALL &&
          len == wl - prev && !memcmp(buf, want + prev, 4));

    /* format_single: the same part, plus the newline rule (chatml) */
    CHECK(sm_chat_format_single("llama3", m, 3, &m[3], 1, buf, sizeof buf, &len, &err) == SM_OK && !strcmp(buf, want + prev));
    CHECK(sm_chat_format_single("chatml", m, 3, &m[3], 1, NULL, 0, &len, &err) == SM_OK);
    size_t need = len;
    CHECK(sm_chat_format_single("chatml", m, 3, &m[3], 1, buf, need, &len, &err) == SM_ERR_BUFFER_TOO_SMALL);
    CHECK(sm_chat_format_single("chatml", m, 3, &m[3], 1, buf, need + 1, &len, &err) == SM_OK &&
          !strcmp(buf, "\n<|im_start|>user\nMore \xe6\x97\xa5<|im_end|>\n<|im_start|>assistant\n"));
    /* no template = chatml, as llama_chat_apply_template(NULL, ...) */
    CHECK(sm_chat_apply(NULL, m, 1, 0, buf, sizeof buf, &len, &err) == SM_OK && !strcmp(buf, "<|im_start|>system\nS<|im_end|>\n"));
    CHECK(sm_chat_apply("gemma", NULL, 0, 1, buf, sizeof buf, &len, &err) == SM_OK && !strcmp(buf, "<start_of_turn>model\n"));
}

TEST(chat_template_errors) {
    sm_chat_message m[] = {{"user", "ok"}, {"assistant", "fine"}};
    char buf[256];
    size_t len = 123;
    sm_error err = {0};
    CHECK(sm_chat_apply("no-such-template", m, 2, 1, buf, sizeof buf, &len, &err) == SM_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "unknown chat template 'no-such-template'") && strstr(err.message, "llama3") &&
          strstr(err.message, "zephyr") && !strchr(err.message, '\n'));
    CHECK(sm_chat_apply("{% for m in messages %}{{ m.content }}{% endfor %}", m, 2, 1, buf, sizeof buf, &len, &err) ==
              SM_ERR_UNSUPPORTED &&
          strstr(err.message, "not one of the built-in formats") && !strstr(err.message, "{%"));
    m[1].content = "bad \xc3\x28 byte";
    CHECK(sm_chat_apply("chatml", m, 2, 1, buf, sizeof buf, &len, &err) == SM_ERR_UTF8 && strstr(err.message, "messages[1]") &&
          strstr(err.message, "content") && strstr(err.message, "byte 4"));
    m[1].content = "fine";
    m[0].role = "\xff";
    CHECK(sm_chat_apply("chatml", m, 2, 1, buf, sizeof buf, &len, &err) == SM_ERR_UTF8 && strstr(err.message, "role"));
    m[0].role = NULL;
    CHECK(sm_chat_apply("chatml", m, 2, 1, buf, sizeof buf, &len, &err) == SM_ERR_INVALID_ARG && strstr(err.message, "role"));
    m[0].role = "user";
    m[1].content = NULL;
    CHECK(sm_chat_format_single("chatml", m, 1, &m[1], 1, buf, sizeof buf, &len, &err) == SM_ERR_INVALID_ARG &&
          strstr(err.message, "messages[1] has no content"));
    CHECK(sm_chat_apply("chatml", NULL, 2, 1, buf, sizeof buf, &len, &err) == SM_ERR_INVALID_ARG);
    CHECK(sm_chat_apply("chatml", m, 1, 1, NULL, 10, &len, &err) == SM_ERR_INVALID_ARG);
    CHECK(sm_chat_format_single("chatml", m, 1, NULL, 1, buf, sizeof buf, &len, NULL) == SM_ERR_INVALID_ARG);
}

/* llama2's formatting of the recorded 6-message conversation with add set:
 * what a model whose template resolves to it must give. */
static const char *recorded(const char *tmpl, size_t n_msgs, char **data) {
    size_t size;
    *data = load_refs(&size);
    if (!*data) return NULL;
    char *p = *data;
    ref_case c;
    int bad = 0;
    while (next_case(&p, *data + size, &c, &bad))
        if (!c.single && c.add && c.n == n_msgs && !strcmp(c.tmpl, tmpl) && c.expect) return c.expect;
    return NULL;
}

TEST(chat_template_model) {
    NEED_SHARED(phi3_path, "vocab/ggml-vocab-phi-3.gguf");
    NEED_SHARED(plain_path, "models/stories260K.gguf");
    sm_model_params mp = sm_model_default_params();
    mp.skip_repack = 1;
    sm_model *phi3 = NULL, *plain = NULL;
    sm_error err = {0};
    REQUIRE(sm_model_load(phi3_path, &mp, &phi3, &err) == SM_OK);
    REQUIRE(sm_model_load(plain_path, &mp, &plain, &err) == SM_OK);

    const char *s = NULL;
    size_t sl = 0;
    CHECK(sm_model_meta_str(phi3, "tokenizer.chat_template", &s, &sl) == 1 && sl > 100 && !memcmp(s, "{{ bos_token }}", 15));
    CHECK(sm_model_meta_str(plain, "tokenizer.chat_template", &s, &sl) == 0);
    CHECK(sm_model_meta_str(plain, "general.architecture", &s, &sl) == 1 && sl == 5 && !memcmp(s, "llama", 5));
    CHECK(sm_model_meta_str(plain, "llama.block_count", &s, &sl) == -1);

    sm_chat_template_info info;
    CHECK(sm_chat_template_resolve(phi3, NULL, &info, &err) == SM_OK && !strcmp(info.name, "phi3") &&
          !strcmp(info.origin, "model") && !info.warning && !strcmp(info.eot, "<|end|>"));
    CHECK(sm_chat_template_resolve(plain, NULL, &info, &err) == SM_OK && !strcmp(info.name, "chatml") &&
          !strcmp(info.origin, "default") && info.warning && strstr(info.warning, "no chat template") &&
          !strcmp(info.eot, "<|im_end|>"));
    CHECK(sm_chat_template_resolve(phi3, "gemma", &info, &err) == SM_OK && !strcmp(info.name, "gemma") &&
          !strcmp(info.origin, "argument") && !info.warning);
    CHECK(sm_chat_template_resolve(NULL, NULL, &info, &err) == SM_OK && !strcmp(info.name, "chatml") && !info.warning);
    CHECK(sm_chat_template_resolve(phi3, "gemma3", &info, &err) == SM_ERR_UNSUPPORTED && strstr(err.message, "'gemma3'"));

    const sm_chat_message conv[] = {{"system", "You are a helpful assistant"}, {"user", "Hello"}, {"assistant", "Hi there"},
                                    {"user", "Who are you"}, {"assistant", "   I am an assistant   "},
                                    {"user", "Another question"}};
    static char buf[4096];
    size_t len;
    char *data;
    const char *want = recorded("phi3", 6, &data);
    CHECK(want && sm_chat_format(phi3, NULL, conv, 6, 1, buf, sizeof buf, &len, &err) == SM_OK && !strcmp(buf, want));
    free(data);
    want = recorded("chatml", 6, &data);
    CHECK(want && sm_chat_format(plain, NULL, conv, 6, 1, buf, sizeof buf, &len, &err) == SM_OK && !strcmp(buf, want));
    free(data);
    CHECK(sm_chat_format(plain, "bogus", conv, 6, 1, buf, sizeof buf, &len, &err) == SM_ERR_UNSUPPORTED);
    sm_model_free(phi3);
    sm_model_free(plain);
}

/* ---- ../shared's copy of llama.cpp's test-chat-template.cpp cases ---- */

#ifdef SM_HAVE_JANSSON
static size_t json_msgs(json_t *arr, sm_chat_message *m, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(arr) && n < cap; i++) {
        json_t *o = json_array_get(arr, i);
        m[n].role = json_string_value(json_object_get(o, "role"));
        m[n].content = json_string_value(json_object_get(o, "content"));
        if (m[n].role && m[n].content) n++;
    }
    return n;
}

/* The fixture and its conversation (up to 16 messages; pointers into the
 * returned tree). */
static json_t *load_fixture(const char *path, sm_chat_message *conv, size_t *n_conv) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    *n_conv = root ? json_msgs(json_object_get(root, "conversation"), conv, 16) : 0;
    return root;
}
#endif

TEST(chat_template_llamacpp_tests) {
#ifndef SM_HAVE_JANSSON
    SKIP("the unit tests were built without Jansson (libjansson-dev), which reads the fixture");
#else
    NEED_SHARED(path, "refs/llamacpp/chat-templates.json");
    sm_chat_message conv[16], past[16], nm;
    size_t n_conv;
    json_t *root = load_fixture(path, conv, &n_conv);
    REQUIRE(root && n_conv == 6);
    static char buf[1 << 14];
    size_t len, i;
    json_t *c;
    int n_ok = 0, n_cases = 0;
    json_array_foreach(json_object_get(root, "cases"), i, c) {
        const char *tmpl = json_string_value(json_object_get(c, "template"));
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *want = json_string_value(json_object_get(c, "expected_output"));
        int add = json_is_true(json_object_get(c, "add_assistant"));
        sm_error err = {0};
        sm_status st = sm_chat_apply(tmpl, conv, n_conv, add, buf, sizeof buf, &len, &err);
        n_cases++;
        if (json_is_true(json_object_get(c, "expect_error"))) {
            CHECKF(st == SM_ERR_UNSUPPORTED, "%s: accepted", name);
            n_ok += st == SM_ERR_UNSUPPORTED;
        } else {
            CHECKF(want && st == SM_OK && len == strlen(want) && !strcmp(buf, want), "%s: status %d (%s)\n got  '%s'\n want '%s'",
                   name, st, err.message, buf, want ? want : "?");
            n_ok += want && st == SM_OK && !strcmp(buf, want);
        }
    }
    json_array_foreach(json_object_get(root, "format_single"), i, c) {
        const char *tmpl = json_string_value(json_object_get(c, "template_name"));
        const char *want = json_string_value(json_object_get(c, "expected_output"));
        size_t n_past = json_msgs(json_object_get(c, "past_messages"), past, 16);
        json_t *jn = json_object_get(c, "new_message");
        nm.role = json_string_value(json_object_get(jn, "role"));
        nm.content = json_string_value(json_object_get(jn, "content"));
        int add = json_is_true(json_object_get(c, "add_assistant"));
        sm_error err = {0};
        sm_status st = sm_chat_format_single(tmpl, past, n_past, &nm, add, buf, sizeof buf, &len, &err);
        n_cases++;
        CHECKF(want && st == SM_OK && !strcmp(buf, want), "format_single %s (%zu past): status %d (%s)\n got  '%s'\n want '%s'",
               tmpl, n_past, st, err.message, buf, want ? want : "?");
        n_ok += want && st == SM_OK && !strcmp(buf, want);
    }
    CHECKF(n_cases == 52 && n_ok == 52, "%d of %d cases match", n_ok, n_cases);
    json_decref(root);
#endif
}

/* ---- --jinja: the template run as a program ---- */

TEST(chat_template_llamacpp_jinja) {
#ifndef SM_HAVE_JANSSON
    SKIP("the unit tests were built without Jansson (libjansson-dev), which reads the fixture");
#else
    /* every case llama.cpp's test renders with minja, with the case's BOS
     * and EOS texts: the expected_output_jinja it recorded */
    NEED_SHARED(path, "refs/llamacpp/chat-templates.json");
    sm_chat_message conv[16];
    size_t n_conv;
    json_t *root = load_fixture(path, conv, &n_conv);
    REQUIRE(root && n_conv == 6);
    static char buf[1 << 14];
    size_t len, i;
    json_t *c;
    int n_ok = 0, n_cases = 0;
    json_array_foreach(json_object_get(root, "cases"), i, c) {
        if (!json_is_true(json_object_get(c, "supported_with_jinja"))) continue;
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *want = json_string_value(json_object_get(c, "expected_output_jinja"));
        sm_chat_jinja_params p = sm_chat_jinja_default_params();
        p.bos_token = json_string_value(json_object_get(c, "bos_token"));
        p.eos_token = json_string_value(json_object_get(c, "eos_token"));
        p.add_assistant = json_is_true(json_object_get(c, "add_assistant"));
        sm_error err = {0};
        sm_status st = sm_chat_apply_jinja(json_string_value(json_object_get(c, "template")), conv, n_conv, &p, buf,
                                           sizeof buf, &len, &err);
        n_cases++;
        int good = want && st == SM_OK && len == strlen(want) && !strcmp(buf, want);
        CHECKF(good, "%s: status %d (%s)\n got  '%s'\n want '%s'", name, st, err.message, buf, want ? want : "?");
        n_ok += good;
    }
    CHECKF(n_cases == 29 && n_ok == 29, "%d of %d cases match", n_ok, n_cases);
    json_decref(root);
#endif
}

/* Renders tmpl on one user message "Hi" (no fallback probe matters: the
 * templates below write every role). */
static sm_status jinja1(const char *tmpl, char *buf, size_t cap, size_t *len, sm_error *err) {
    static const sm_chat_message m[2] = {{"system", "S"}, {"user", "Hi"}};
    sm_chat_jinja_params p = sm_chat_jinja_default_params();
    p.bos_token = "<s>";
    p.eos_token = "</s>";
    p.now = 86400 * 365;
    return sm_chat_apply_jinja(tmpl, m, 2, &p, buf, cap, len, err);
}

TEST(chat_template_jinja_buffer_and_bos) {
    char buf[64];
    size_t len = 0;
    sm_error err = {0};
    /* measure, then too small, then fits; BOS at the start and EOS at the
     * end are removed, inner ones stay */
    const char *t = "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }}{{ eos_token }}{% endfor %}";
    CHECK(jinja1(t, NULL, 0, &len, &err) == SM_OK && len == strlen("system:S</s>user:Hi"));
    CHECK(jinja1(t, buf, 5, &len, &err) == SM_ERR_BUFFER_TOO_SMALL && len == strlen("system:S</s>user:Hi"));
    CHECK(jinja1(t, buf, sizeof buf, &len, &err) == SM_OK && !strcmp(buf, "system:S</s>user:Hi"));
    /* a template that drops system messages gets them merged into the
     * next user message (minja's fallback) */
    const char *nosys = "{% for m in messages %}{% if m.role != 'system' %}[{{ m.content }}]{% endif %}{% endfor %}";
    CHECK(jinja1(nosys, buf, sizeof buf, &len, &err) == SM_OK && !strcmp(buf, "[S\nHi]"));
    /* strftime_now at the given time (UTC here: TZ is unset in tests) */
    CHECK(jinja1("{{ strftime_now('%Y') }}{% if add_generation_prompt %}>{% endif %}", buf, sizeof buf, &len, &err) == SM_OK);
    CHECK(len == 5 && !strcmp(buf, "1971>"));
    /* invalid UTF-8 in a message is refused before the template runs */
    const sm_chat_message bad = {"user", "\xff"};
    CHECK(sm_chat_apply_jinja("x", &bad, 1, NULL, buf, sizeof buf, &len, &err) == SM_ERR_UTF8);
}

TEST(chat_template_jinja_errors) {
    char buf[256];
    size_t len;
    static const struct { const char *tmpl, *msg; } cases[] = {
        /* raise_exception's message and line */
        {"{% for m in messages %}{{ m.content }}{% endfor %}\n{% if messages[-1].content == 'Hi' %}"
         "{{ raise_exception('No Hi!') }}{% endif %}",
         "line 2: the template raised an error: No Hi!"},
        {"{% if x %}never closed", "line 1: {% if %} without {% endif %}"},
        {"ok\n\n{{ 1 + }}", "line 3: an expression is missing"},
        {"ok\n\n{{ 1 +", "line 3: a tag is not closed"},
        {"{{ 'unclosed }}", "a tag is not closed"},
        {"{% endfor %}", "unknown or misplaced statement 'endfor'"},
        {"{{ messages|frobnicate }}", "unknown filter 'frobnicate'"},
        {"{{ 1 / 0 }}", "division by zero"},
        {"{{ 'a' - 1 }}", "cannot apply '-' to a string and a integer"},
        {"{{ messages.pop }}{{ none.strip() }}", "a none has no method 'strip'"},
        /* runaway templates end with an error, not a hang or a crash */
        {"{% set r = range(100000) %}{% for i in r %}{% for k in r %}{% endfor %}{% endfor %}", "runs too long"},
        {"{% for i in range(10000000) %}{% endfor %}", "range is too long"},
        {"{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "too deeply"},
        {"{% set s = 'x' * 1000000 %}{% for i in range(100) %}{{ s }}{% endfor %}", "writes more than"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sm_error err = {0};
        sm_status st = jinja1(cases[i].tmpl, buf, sizeof buf, &len, &err);
        CHECKF(st == SM_ERR_FORMAT && strstr(err.message, cases[i].msg), "case %zu: status %d, '%s' (want '%s')", i, st,
               err.message, cases[i].msg);
    }
    /* nesting deeper than the parser allows: an error, the stack intact */
    static char deep[20000];
    size_t n = 0;
    n += (size_t)sprintf(deep + n, "{{ ");
    for (int k = 0; k < 5000; k++) deep[n++] = '[';
    for (int k = 0; k < 5000; k++) deep[n++] = ']';
    sprintf(deep + n, " }}");
    sm_error err = {0};
    CHECK(jinja1(deep, buf, sizeof buf, &len, &err) == SM_ERR_FORMAT && strstr(err.message, "nested too deeply"));
}

/* minja's parallel-calls probe: a template that writes every call of a reply
 * against one that writes only the first (and one without calls at all):
 * the answers follow from the templates' text. And the further variables a
 * caller gives (minja's extra_context) are seen, set after the others. */
TEST(chat_template_jinja_parallel_calls_and_vars) {
    static const char every[] =
        "{% for m in messages %}{% if m.tool_calls %}{% for c in m.tool_calls %}{{ c.function.name }}("
        "{{ c.function.arguments }}){% endfor %}{% else %}{{ m.content }}{% endif %}{% endfor %}";
    static const char first[] =
        "{% for m in messages %}{% if m.tool_calls %}{{ m.tool_calls[0].function.name }}("
        "{{ m.tool_calls[0].function.arguments }}){% else %}{{ m.content }}{% endif %}{% endfor %}";
    CHECK(sm_chat_jinja_parallel_calls(every) == 1);
    CHECK(sm_chat_jinja_parallel_calls(first) == 0);
    CHECK(sm_chat_jinja_parallel_calls(sm_chat_chatml_jinja()) == 0);
    CHECK(sm_chat_jinja_parallel_calls(NULL) == 0);

    static const char *const keys[] = {"tools_in_user_message", "note", "messages"};
    const sm_chat_value items[] = {{.type = SM_CHAT_VALUE_BOOL, .i = 0}, {.type = SM_CHAT_VALUE_STRING, .s = "hi", .n = 2},
                                   {.type = SM_CHAT_VALUE_NULL}};
    const sm_chat_value vars = {.type = SM_CHAT_VALUE_DICT, .keys = keys, .items = items, .n = 3};
    const sm_chat_message msg = {"user", "Hello"};
    sm_chat_jinja_params p = sm_chat_jinja_default_params();
    p.vars = &vars;
    char buf[128];
    size_t len = 0;
    sm_status st = sm_chat_apply_jinja("{{ tools_in_user_message }} {{ note }} {{ messages is none }} {{ builtin is defined }}",
                                       &msg, 1, &p, buf, sizeof buf, &len, NULL);
    CHECKF(st == SM_OK && !strcmp(buf, "False hi True False"), "status %d, '%s'", st, st == SM_OK ? buf : "");
}

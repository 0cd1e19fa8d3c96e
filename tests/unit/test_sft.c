/* test_sft.c - chat fine-tuning's loss mask. sm_chat_tokenize's mask is
 * checked against one the test derives on its own: the byte span of each
 * reply is found in the formatted text by searching for the template's
 * assistant opening, the content and the end marker, and every token is
 * placed by the bytes of the pieces before it. Then the loss sm_train
 * reports for a batch of that example (before any update: a LoRA with B = 0
 * is the base model) must equal the mean negative log-likelihood over the
 * reply tokens only, computed from the inference pass's logits. */
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KJV "models/kjv-3m.gguf"

static const sm_chat_message conv[] = {
    {"system", "You answer from the King James Bible."},
    {"user", "What does Genesis 1:1 say?"},
    {"assistant", "In the beginning God created the heaven and the earth."},
    {"user", "Continue: And God said"},
    {"assistant", "Let there be light: and there was light."},
};
#define N_MSG (sizeof conv / sizeof conv[0])

/* expected[i] = 1 when token i's bytes start inside one of the byte spans
 * of text (the pieces of the tokens must spell the text exactly) */
static int mask_from_spans(const sm_model *m, const sm_token *toks, size_t n, const char *text, size_t len,
                           size_t spans[][2], size_t n_spans, uint8_t *expected) {
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        const char *piece;
        int k = sm_token_piece(m, toks[i], &piece);
        if (k == 0) k = sm_token_text(m, toks[i], &piece);   /* a control token (EOS): its text */
        if (k < 0 || pos + (size_t)k > len || memcmp(text + pos, piece, (size_t)k)) return 0;   /* pieces spell the text */
        expected[i] = 0;
        for (size_t s = 0; s < n_spans; s++)
            if (k > 0 && pos >= spans[s][0] && pos < spans[s][1]) expected[i] = 1;
        pos += (size_t)k;
    }
    return pos == len;
}

/* The same for the chatml text: the reply spans are each content +
 * "<|im_end|>\n" after "<|im_start|>assistant\n". */
static int independent_mask(const sm_model *m, const sm_token *toks, size_t n, uint8_t *expected) {
    static char text[8192];
    size_t len = 0;
    if (sm_chat_apply("chatml", conv, N_MSG, 0, text, sizeof text, &len, NULL)) return 0;
    size_t spans[8][2], n_spans = 0, from = 0;
    for (size_t i = 0; i < N_MSG; i++) {
        if (strcmp(conv[i].role, "assistant")) continue;
        char want[1024];
        snprintf(want, sizeof want, "<|im_start|>assistant\n%s<|im_end|>\n", conv[i].content);
        const char *at = strstr(text + from, want);
        if (!at) return 0;
        size_t open = strlen("<|im_start|>assistant\n");
        spans[n_spans][0] = (size_t)(at - text) + open;
        spans[n_spans][1] = (size_t)(at - text) + strlen(want);
        from = spans[n_spans++][1];
    }
    return mask_from_spans(m, toks, n, text, len, spans, n_spans, expected);
}

/* mask against expected (token 0, the BOS, never a reply's): the count of
 * reply tokens, which must be some but not all */
static size_t same_mask(const uint8_t *mask, uint8_t *expected, size_t n) {
    expected[0] = 0;
    size_t n_reply = 0;
    for (size_t i = 0; i < n; i++) {
        CHECKF(mask[i] == expected[i], "token %zu: mask %d, expected %d", i, mask[i], expected[i]);
        n_reply += expected[i];
    }
    CHECK(n_reply > 10 && n_reply < n - 10);
    return n_reply;
}

static float reported_loss;
static void on_progress(void *user, const sm_train_progress *p) {
    (void)user;
    if (p->step == 1) reported_loss = p->loss;
}

TEST(sft_mask_and_masked_loss) {
    if (access(KJV, R_OK)) SKIP(KJV " is absent");
    /* the GGUF layout: its prompt takes float products, as the trainer
     * does (the interleaved copy's integer products round the input to
     * 8 bits, which moves the loss by about 1e-3) */
    sm_model_params mp = sm_model_default_params();
    mp.skip_repack = 1;
    sm_model *m = NULL;
    REQUIRE(sm_model_load(KJV, &mp, &m, NULL) == SM_OK);
    sm_model_info info;
    sm_model_get_info(m, &info);
    sm_token toks[1024];
    uint8_t mask[1024], expected[1024];
    size_t n = 0;
    sm_error err;
    REQUIRE(sm_chat_tokenize(m, "chatml", conv, N_MSG, 1, toks, mask, 1024, &n, &err) == SM_OK);
    REQUIRE(n > 10 && toks[0] == info.bos && mask[0] == 0);
    REQUIRE(independent_mask(m, toks + 1, n - 1, expected + 1));
    size_t n_reply = same_mask(mask, expected, n);
    /* a buffer too small says how many are needed */
    size_t need = 0;
    CHECK(sm_chat_tokenize(m, "chatml", conv, N_MSG, 1, toks, mask, 5, &need, NULL) == SM_ERR_BUFFER_TOO_SMALL &&
          need == n);

    /* the loss of one batch of this example: one row of exactly n tokens */
    size_t offsets[2] = {0, n};
    sm_train_examples ex = {toks, mask, offsets, 1};
    char dir[] = "/tmp/sm-sft-XXXXXX", out[64];
    REQUIRE(mkdtemp(dir) != NULL);
    snprintf(out, sizeof out, "%s/a.gguf", dir);
    sm_train_params p = sm_train_default_params();
    p.init = KJV;
    p.out = out;
    p.examples = &ex;
    p.val_split = 0;
    p.lora_rank = 2;
    p.batch = 1;
    p.seq = (int)n - 1;
    p.steps = 1;
    p.eval_every = 0;
    p.threads = 1;
    reported_loss = -1;
    REQUIRE(sm_train(&p, on_progress, NULL, &err) == SM_OK);

    /* independently: the inference pass's logits, the reply tokens' mean NLL */
    sm_session *s = NULL;
    REQUIRE(sm_session_create(m, NULL, &s, NULL) == SM_OK);
    float *logits = malloc(sizeof(float) * n * info.n_vocab);
    REQUIRE(sm_session_eval_all(s, toks, n - 1, logits, NULL) == SM_OK);
    double masked = 0, all = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        const float *l = logits + i * info.n_vocab;
        double mx = l[0], z = 0;
        for (int v = 1; v < info.n_vocab; v++) mx = fmax(mx, l[v]);
        for (int v = 0; v < info.n_vocab; v++) z += exp(l[v] - mx);
        double nll = -(l[toks[i + 1]] - mx - log(z));
        all += nll;
        if (expected[i + 1]) masked += nll;
    }
    masked /= (double)n_reply;
    all /= (double)(n - 1);
    CHECKF(fabs(reported_loss - masked) <= 1e-4 * masked, "trainer %.6f, reply tokens %.6f (all tokens %.6f)",
           reported_loss, masked, all);
    CHECKF(fabs(all - masked) > 0.01 * masked, "the mask makes no difference here (%.4f, %.4f)", all, masked);
    free(logits);
    sm_session_free(s);
    sm_model_free(m);
    unlink(out);
    snprintf(out, sizeof out, "%s/a.loss.svg", dir);
    unlink(out);
    rmdir(dir);
}

/* A template no built-in format knows, run as Jinja: the text is the one
 * written out below by hand, each reply's span its content and the EOS text
 * the template puts after it; the last reply keeps its EOS (llama.cpp's
 * --jinja drops a trailing one from prompts, where it would end the turn
 * the model is to write). */
TEST(sft_mask_with_a_jinja_template) {
    if (access(KJV, R_OK)) SKIP(KJV " is absent");
    static const char tmpl[] =
        "{% for m in messages %}{% if m['role'] == 'user' %}{{ '### Question: ' + m['content'] + '\\n' }}"
        "{% elif m['role'] == 'assistant' %}{{ '### Reply: ' + m['content'] + eos_token }}"
        "{% else %}{{ m['content'] + '\\n' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '### Reply: ' }}{% endif %}";
    sm_model *m = NULL;
    REQUIRE(sm_model_load(KJV, NULL, &m, NULL) == SM_OK);
    sm_model_info info;
    sm_model_get_info(m, &info);
    const char *eos_text;
    int eos_len = sm_token_text(m, info.eos, &eos_text);
    REQUIRE(eos_len > 0);
    char eos[64];
    snprintf(eos, sizeof eos, "%.*s", eos_len, eos_text);
    char text[2048];
    size_t spans[2][2];
    int len = snprintf(text, sizeof text, "%s\n### Question: %s\n### Reply: ", conv[0].content, conv[1].content);
    spans[0][0] = (size_t)len;
    len += snprintf(text + len, sizeof text - (size_t)len, "%s%s", conv[2].content, eos);
    spans[0][1] = (size_t)len;
    len += snprintf(text + len, sizeof text - (size_t)len, "### Question: %s\n### Reply: ", conv[3].content);
    spans[1][0] = (size_t)len;
    len += snprintf(text + len, sizeof text - (size_t)len, "%s%s", conv[4].content, eos);
    spans[1][1] = (size_t)len;

    sm_token toks[1024];
    uint8_t mask[1024], expected[1024];
    size_t n = 0;
    sm_error err;
    CHECKF(sm_chat_tokenize_jinja(m, tmpl, conv, N_MSG, 1, toks, mask, 1024, &n, &err) == SM_OK, "%s", err.message);
    REQUIRE(n > 10 && toks[0] == info.bos && mask[0] == 0);
    CHECK(toks[n - 1] == info.eos && mask[n - 1] == 1);
    REQUIRE(mask_from_spans(m, toks + 1, n - 1, text, (size_t)len, spans, 2, expected + 1));
    same_mask(mask, expected, n);
    size_t need = 0;
    CHECK(sm_chat_tokenize_jinja(m, tmpl, conv, N_MSG, 1, toks, mask, 5, &need, NULL) == SM_ERR_BUFFER_TOO_SMALL &&
          need == n);

    /* a template whose earlier turns change when a later one is added (this
     * one numbers the replies from the end) cannot be cut into replies */
    static const char shifting[] =
        "{% for m in messages %}{{ m['role'] + ' ' + (messages|length - loop.index)|string + ': ' + m['content'] + '\\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}";
    CHECK(sm_chat_tokenize_jinja(m, shifting, conv, N_MSG, 1, toks, mask, 1024, &n, &err) == SM_ERR_UNSUPPORTED &&
          strstr(err.message, "message by message"));
    /* one that fails names its line */
    CHECK(sm_chat_tokenize_jinja(m, "{{ raise_exception('no') }}", conv, N_MSG, 1, toks, mask, 1024, &n, &err) ==
              SM_ERR_FORMAT && strstr(err.message, "line 1"));
    sm_model_free(m);
}

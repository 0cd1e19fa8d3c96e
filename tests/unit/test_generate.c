/* test_generate.c - end-to-end generation through the public API: the
 * reference greedy output, zero allocations per token, independent
 * sessions, stop conditions and bad input. */
#include "test.h"
#include "kernels/dispatch.h"
#include "kernels/types.h"

#include <pthread.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct collected {
    sm_token ids[4096];
    int n;
    char text[65536];
    size_t len;
    unsigned long allocs_at_first;
    unsigned long allocs_at_last;
    int stop_after;
} collected;

static int collect(void *user, sm_token tok, const char *text, size_t len) {
    collected *c = user;
    if (tok >= 0) {
        if (c->n == 0) c->allocs_at_first = alloc_calls();
        c->allocs_at_last = alloc_calls();
        c->ids[c->n++] = tok;
    }
    memcpy(c->text + c->len, text, len);
    c->len += len;
    c->text[c->len] = '\0';
    return c->stop_after && c->n >= c->stop_after;
}

static int read_ref_ids(int *ids, int cap) {
    const char *p = shared_path("refs/stories260K.greedy.ids.txt");
    if (!p) return -1;
    char *t = read_file(p, NULL);
    int n = 0;
    for (char *q = strchr(t, '['); q && *q && *q != ']' && n < cap;) {
        char *end;
        long v = strtol(q + 1, &end, 10);
        if (end == q + 1) break;
        ids[n++] = (int)v;
        q = end;
    }
    free(t);
    return n;
}

static void check_greedy_reference(const char *model, const char *tok, int no_mmap) {
    sm_model_params mp = sm_model_default_params();
    mp.tokenizer_path = tok;
    mp.no_mmap = no_mmap;
    sm_model *m = NULL;
    sm_error err = {0};
    REQUIRE(sm_model_load(model, &mp, &m, &err) == SM_OK);
    sm_session *s = NULL;
    REQUIRE(sm_session_create(m, NULL, &s, &err) == SM_OK);
    sm_memory_info mem;
    sm_session_memory(s, &mem);
    CHECK(mem.weights_read == no_mmap);
    sm_generate_params gp = sm_generate_default_params();
    gp.n_predict = 256;
    gp.sampler.temperature = 0;
    collected *c = calloc(1, sizeof *c);
    sm_generate_stats st;
    REQUIRE(sm_generate(s, NULL, &gp, collect, c, &st, &err) == SM_OK);
    int ref[512];
    int nref = read_ref_ids(ref, 512);
    CHECK(nref == 256 && c->n == 256 && st.n_generated == 256 && st.n_prompt == 1);
    int same = 1;
    for (int i = 0; i < nref && i < c->n; i++) same &= ref[i] == c->ids[i];
    CHECK(same);
    char *want = read_file(shared_path("refs/stories260K.greedy.txt"), NULL);
    REQUIRE(want);
    c->text[c->len] = '\n';
    c->text[c->len + 1] = '\0';
    CHECKF(strcmp(c->text, want) == 0, "text differs from the reference");
    free(want);
    free(c);
    sm_session_free(s);
    sm_model_free(m);
}

TEST(greedy_matches_reference_gguf) {
    NEED_SHARED(p, "models/stories260K.gguf");
    NEED_SHARED(r, "refs/stories260K.greedy.ids.txt");
    check_greedy_reference(p, NULL, 0);
}

/* sm_model_params.no_mmap (--no-mmap): the file read into memory of the
 * model's own gives the same tokens */
TEST(greedy_matches_reference_gguf_read_not_mapped) {
    NEED_SHARED(p, "models/stories260K.gguf");
    NEED_SHARED(r, "refs/stories260K.greedy.ids.txt");
    check_greedy_reference(p, NULL, 1);
}

TEST(greedy_matches_reference_llama2c) {
    NEED_SHARED(p, "models/stories260K.bin");
    NEED_SHARED(t, "models/tok512.bin");
    NEED_SHARED(r, "refs/stories260K.greedy.ids.txt");
    check_greedy_reference(p, t, 0);
    check_greedy_reference(p, t, 1);
}

/* Resident memory of this process, in bytes (/proc/self/statm); 0 when it
 * cannot be read. */
static size_t resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long size = 0, res = 0;
    int n = fscanf(f, "%lu %lu", &size, &res);
    fclose(f);
    return n == 2 ? (size_t)res * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* A session's context costs memory as it fills, not when it is made: a
 * long context's KV cache (8 layers x 4096 positions x 256 x 2 floats,
 * 64 MiB) holding one token adds a few MiB of resident memory. (With the
 * arena in 2 MiB pages each layer's first keys and values made 2 MiB
 * resident: 32 MiB here, and their zeroing in the first token's time.) */
TEST(session_context_costs_memory_as_it_fills) {
    REQUIRE(resident_bytes() > 0);
    char dir[] = "/tmp/sm-rss-XXXXXX";
    REQUIRE(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    sm_init_params ip = sm_init_default_params();
    ip.arch = "llama";
    ip.dim = 256;
    ip.n_layers = 8;
    ip.n_heads = 8;
    ip.ffn_dim = 256;
    ip.n_ctx = 4096;
    ip.n_vocab = 300;
    REQUIRE(sm_model_init_file(&ip, path, NULL) == SM_OK);
    sm_model *m = NULL;
    REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
    unlink(path);
    rmdir(dir);
    sm_session_params sp = sm_session_default_params();
    sp.n_ctx = 64;
    sp.n_threads = 1;
    sm_session *small = NULL, *s = NULL;
    sm_token t = 5;
    /* a short session first reads the weights (mapped: resident once read) */
    REQUIRE(sm_session_create(m, &sp, &small, NULL) == SM_OK && sm_session_eval(small, &t, 1, NULL) == SM_OK);
    size_t before = resident_bytes();
    sp.n_ctx = 4096;
    REQUIRE(sm_session_create(m, &sp, &s, NULL) == SM_OK);
    REQUIRE(sm_session_eval(s, &t, 1, NULL) == SM_OK);
    size_t after = resident_bytes(), grew = after > before ? after - before : 0;
    CHECKF(grew < ((size_t)12 << 20), "one token in a 4096-token context made %.1f MiB resident", grew / 1048576.0);
    sm_session_free(small);
    sm_session_free(s);
    sm_model_free(m);
}

/* After the first generated token, generating allocates nothing: not in
 * the forward pass, the sampler, the detokenizer or the stop-string
 * machinery. Counted at the allocator itself (link-time wrapping). */
TEST(no_allocations_while_generating) {
    NEED_SHARED(path, "models/stories260K.gguf");
    sm_model *m = NULL;
    REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
    const char *stops[] = {"zzz-never"};
    /* 0: greedy; 1: sampling with penalty and a stop string; 2: profiled */
    for (int variant = 0; variant < 3; variant++) {
        sm_session *s = NULL;
        sm_session_params sp = sm_session_default_params();
        sp.seed = 7;
        sp.profile = variant == 2;
        REQUIRE(sm_session_create(m, &sp, &s, NULL) == SM_OK);
        sm_generate_params gp = sm_generate_default_params();
        gp.n_predict = 101;
        gp.ignore_eos = 1;
        if (variant == 0) gp.sampler.temperature = 0;
        else { gp.sampler.repeat_penalty = 1.1f; gp.stop = stops; gp.n_stop = 1; }
        collected *c = calloc(1, sizeof *c);
        REQUIRE(sm_generate(s, "Once upon a time", &gp, collect, c, NULL, NULL) == SM_OK);
        CHECK(c->n == 101);
        CHECKF(c->allocs_at_last == c->allocs_at_first, "variant %d: %lu allocation calls in 100 tokens", variant,
               c->allocs_at_last - c->allocs_at_first);
        free(c);
        sm_session_free(s);
    }
    sm_model_free(m);
}

/* Greedy ids of a prompt, one session, start to end. */
static int greedy_ids(const sm_model *m, const char *prompt, int n, sm_token *out) {
    sm_session *s = NULL;
    if (sm_session_create(m, NULL, &s, NULL) != SM_OK) return -1;
    sm_generate_params gp = sm_generate_default_params();
    gp.n_predict = n;
    gp.sampler.temperature = 0;
    gp.ignore_eos = 1;
    collected *c = calloc(1, sizeof *c);
    sm_generate(s, prompt, &gp, collect, c, NULL, NULL);
    memcpy(out, c->ids, sizeof(sm_token) * (size_t)c->n);
    int got = c->n;
    free(c);
    sm_session_free(s);
    return got;
}

typedef struct job {
    const sm_model *m;
    const char *prompt;
    sm_token ids[64];
    int n;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    j->n = greedy_ids(j->m, j->prompt, 40, j->ids);
    return NULL;
}

TEST(two_sessions_on_one_model_are_independent) {
    NEED_SHARED(path, "models/stories260K.gguf");
    sm_model *m = NULL;
    REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
    sm_token a[64], b[64];
    REQUIRE(greedy_ids(m, "Once upon a time", 40, a) == 40);
    REQUIRE(greedy_ids(m, "The dog ran", 40, b) == 40);
    /* interleaved step by step through the low-level calls */
    sm_session *s1 = NULL, *s2 = NULL;
    REQUIRE(sm_session_create(m, NULL, &s1, NULL) == SM_OK);
    REQUIRE(sm_session_create(m, NULL, &s2, NULL) == SM_OK);
    sm_token p1[32], p2[32];
    size_t n1, n2;
    REQUIRE(sm_tokenize(m, "Once upon a time", 16, 1, p1, 32, &n1, NULL) == SM_OK);
    REQUIRE(sm_tokenize(m, "The dog ran", 11, 1, p2, 32, &n2, NULL) == SM_OK);
    REQUIRE(sm_session_eval(s1, p1, n1, NULL) == SM_OK);
    REQUIRE(sm_session_eval(s2, p2, n2, NULL) == SM_OK);
    sm_sampler_params greedy = sm_sampler_default_params();
    greedy.temperature = 0;
    int same = 1;
    for (int i = 0; i < 40; i++) {
        sm_token t1, t2;
        REQUIRE(sm_session_sample(s1, &greedy, &t1, NULL) == SM_OK);
        REQUIRE(sm_session_sample(s2, &greedy, &t2, NULL) == SM_OK);
        same &= t1 == a[i] && t2 == b[i];
        REQUIRE(sm_session_eval(s1, &t1, 1, NULL) == SM_OK);
        REQUIRE(sm_session_eval(s2, &t2, 1, NULL) == SM_OK);
    }
    CHECK(same);
    CHECK(memcmp(a, b, sizeof a) != 0);
    sm_session_free(s1);
    sm_session_free(s2);
    /* and on two threads at once */
    job j1 = {m, "Once upon a time", {0}, 0}, j2 = {m, "The dog ran", {0}, 0};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, run_job, &j1);
    pthread_create(&t2, NULL, run_job, &j2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK(j1.n == 40 && memcmp(j1.ids, a, sizeof(sm_token) * 40) == 0);
    CHECK(j2.n == 40 && memcmp(j2.ids, b, sizeof(sm_token) * 40) == 0);
    sm_model_free(m);
}

TEST(same_seed_same_text_different_seed_different_text) {
    NEED_SHARED(path, "models/stories260K.gguf");
    sm_model *m = NULL;
    REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
    char texts[3][65536];
    uint64_t seeds[3] = {1234, 1234, 999};
    for (int k = 0; k < 3; k++) {
        sm_session_params sp = sm_session_default_params();
        sp.seed = seeds[k];
        sm_session *s = NULL;
        REQUIRE(sm_session_create(m, &sp, &s, NULL) == SM_OK);
        sm_generate_params gp = sm_generate_default_params();
        gp.n_predict = 64;
        gp.sampler.temperature = 1.0f;
        gp.sampler.top_k = 0;
        gp.sampler.top_p = 1.0f;
        gp.sampler.min_p = 0.0f;
        collected *c = calloc(1, sizeof *c);
        REQUIRE(sm_generate(s, "Once", &gp, collect, c, NULL, NULL) == SM_OK);
        memcpy(texts[k], c->text, c->len + 1);
        free(c);
        sm_session_free(s);
    }
    CHECK(strcmp(texts[0], texts[1]) == 0);
    CHECK(strcmp(texts[0], texts[2]) != 0);
    sm_model_free(m);
}

TEST(stop_string_cuts_the_reference_text) {
    NEED_SHARED(path, "models/stories260K.gguf");
    NEED_SHARED(refp, "refs/stories260K.greedy.txt");
    char *ref = read_file(refp, NULL);
    sm_model *m = NULL;
    REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
    const char *cases[] = {"park", "Lily's mom", "\n", "red ball. She"};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        sm_session *s = NULL;
        REQUIRE(sm_session_create(m, NULL, &s, NULL) == SM_OK);
        sm_generate_params gp = sm_generate_default_params();
        gp.n_predict = 256;
        gp.sampler.temperature = 0;
        gp.stop = &cases[k];
        gp.n_stop = 1;
        collected *c = calloc(1, sizeof *c);
        sm_generate_stats st;
        REQUIRE(sm_generate(s, NULL, &gp, collect, c, &st, NULL) == SM_OK);
        size_t want = (size_t)(strstr(ref, cases[k]) - ref);
        CHECKF(st.stopped_by == 2 && c->len == want && memcmp(c->text, ref, want) == 0, "stop '%s': got %zu bytes, want %zu",
               cases[k], c->len, want);
        free(c);
        sm_session_free(s);
    }
    free(ref);
    sm_model_free(m);
}

TEST(callback_stop_context_limits_and_bad_tokens) {
    NEED_SHARED(path, "models/stories260K.gguf");
    sm_model *m = NULL;
    REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
    sm_session_params sp = sm_session_default_params();
    sp.n_ctx = 16;
    sm_session *s = NULL;
    sm_error err = {0};
    REQUIRE(sm_session_create(m, &sp, &s, &err) == SM_OK);
    CHECK(sm_session_n_ctx(s) == 16);
    sm_generate_params gp = sm_generate_default_params();
    gp.sampler.temperature = 0;
    gp.n_predict = 100;
    collected *c = calloc(1, sizeof *c);
    c->stop_after = 5;
    sm_generate_stats st;
    REQUIRE(sm_generate(s, NULL, &gp, collect, c, &st, &err) == SM_OK);
    CHECK(st.stopped_by == 3 && c->n == 5);
    /* the context fills: BOS + 15 evaluated tokens, then one last sample */
    sm_session_reset(s);
    memset(c, 0, sizeof *c);
    gp.n_predict = -1;
    gp.ignore_eos = 1;
    REQUIRE(sm_generate(s, NULL, &gp, collect, c, &st, &err) == SM_OK);
    CHECKF(st.stopped_by == 4 && st.n_generated == 16 && sm_session_n_past(s) == 16, "stopped %d after %d",
           st.stopped_by, st.n_generated);
    /* a prompt longer than the context */
    sm_session_reset(s);
    const char *longp = "Once upon a time there was a little girl named Lily who loved to play in the park";
    CHECK(sm_generate(s, longp, &gp, collect, c, &st, &err) == SM_ERR_CONTEXT_FULL && strstr(err.message, "-c"));
    /* tokens outside the vocabulary */
    sm_token bad[2] = {1, 512};
    CHECK(sm_session_eval(s, bad, 2, &err) == SM_ERR_TOKEN_RANGE && sm_session_n_past(s) == 0);
    bad[1] = -3;
    CHECK(sm_session_eval(s, bad, 2, &err) == SM_ERR_TOKEN_RANGE);
    /* invalid UTF-8 prompt, empty prompt without BOS */
    CHECK(sm_generate(s, "caf\xc3", &gp, collect, c, &st, &err) == SM_ERR_UTF8);
    gp.add_bos = 0;
    CHECK(sm_generate(s, "", &gp, collect, c, &st, &err) == SM_ERR_INVALID_ARG);
    /* bad stop strings */
    gp.add_bos = -1;
    const char *empty_stop[] = {""};
    gp.stop = empty_stop;
    gp.n_stop = 1;
    CHECK(sm_generate(s, NULL, &gp, collect, c, &st, &err) == SM_ERR_INVALID_ARG);
    free(c);
    sm_session_free(s);
    /* absurd session parameters */
    sp.n_ctx = -5;
    CHECK(sm_session_create(m, &sp, &s, &err) == SM_ERR_INVALID_ARG && s == NULL);
    sp.n_ctx = 1 << 24;
    sp.n_threads = 0;
    sm_status big = sm_session_create(m, &sp, &s, &err);
    CHECK(big == SM_OK || big == SM_ERR_NOMEM);
    sm_session_free(s);
    sm_model_free(m);
}

TEST(vocab_only_file_tokenizes_but_cannot_generate) {
    NEED_SHARED(path, "vocab/ggml-vocab-llama-spm.gguf");
    sm_model *m = NULL;
    sm_error err = {0};
    REQUIRE(sm_model_load(path, NULL, &m, &err) == SM_OK);
    sm_model_info info;
    sm_model_get_info(m, &info);
    CHECK(!info.has_weights && info.n_vocab == 32000);
    sm_session *s = NULL;
    CHECK(sm_session_create(m, NULL, &s, &err) == SM_ERR_NO_WEIGHTS && s == NULL);
    sm_model_free(m);
}

/* Q4_0 and Q8_0 models run through the interleaved weight copy (when this
 * CPU's kernels use one) and through the GGUF layout (skip_repack). One
 * token at a time both take integer dots against the input quantized to
 * Q8_0 and give the same logits. A prompt on the interleaved copy takes the
 * integer batch products, so it gives the logits of the same tokens fed one
 * at a time; on the GGUF layout a prompt takes float products (the weights
 * dequantized), which differ from those by the input's rounding to 8 bits.
 * Without a copy (levels below AVX-512, but for Q4_0 and Q8_0 on AVX2) both
 * prompts take float products and agree. The copy is reported, and absent when skipped. */
/* Grows *worst to the largest |a - b| and *top to the largest |b|. (Plain
 * ifs: gcc 12's AArch64 vectoriser crashes on this loop written with fmax.) */
static void widen_diff(const float *a, const float *b, int n, double *worst, double *top) {
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]), m = fabs((double)b[i]);
        if (d > *worst) *worst = d;
        if (m > *top) *top = m;
    }
}

static void check_repack_equivalence(const char *src, const char *type) {
    enum { NT = 40, NV = 512 };
    char path[] = "/tmp/sm_repack_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    REQUIRE(sm_model_quantize_file(src, path, type, NULL, NULL, NULL) == SM_OK);
    sm_model_params mp[2] = {sm_model_default_params(), sm_model_default_params()};
    mp[1].skip_repack = 1;
    sm_model *m[2] = {NULL, NULL};
    sm_session *s[2] = {NULL, NULL};
    sm_token toks[NT];
    for (int i = 0; i < NT; i++) toks[i] = (sm_token)((i * 37 + 11) % NV);
    float *prompt[2] = {malloc(sizeof(float) * NT * NV), malloc(sizeof(float) * NT * NV)};
    float *one[2] = {malloc(sizeof(float) * NT * NV), malloc(sizeof(float) * NT * NV)};
    for (int v = 0; v < 2; v++) {
        REQUIRE(sm_model_load(path, &mp[v], &m[v], NULL) == SM_OK);
        REQUIRE(sm_session_create(m[v], NULL, &s[v], NULL) == SM_OK);
        REQUIRE(sm_session_eval_all(s[v], toks, NT, prompt[v], NULL) == SM_OK);
        /* the same tokens one at a time */
        sm_session_reset(s[v]);
        for (int i = 0; i < NT; i++) {
            REQUIRE(sm_session_eval(s[v], &toks[i], 1, NULL) == SM_OK);
            memcpy(one[v] + (size_t)i * NV, sm_session_logits(s[v]), sizeof(float) * NV);
        }
    }
    sm_memory_info mi[2];
    sm_session_memory(s[0], &mi[0]);
    sm_session_memory(s[1], &mi[1]);
    CHECKF(mi[1].weights_interleaved == 0, "%s: a copy was made although skipped", type);
    const char *level = sm_session_kernels(s[0]);
    /* the copies each level makes: AVX-512 every quantized type, AVX2 F16,
     * Q4_0, Q8_0, the legacy 4/5-bit types (and Q4_K) */
    int f16 = !strcmp(type, "F16");
    int expect = (!strcmp(level, "avx512") && !f16) || (!strcmp(level, "avx2") && strcmp(type, "Q6_K") != 0);
    if (!strcmp(level, "avx512") && f16)
        CHECKF(mi[0].weights_interleaved == 0, "F16: an interleaved copy on the avx512 level, which has no kernel for it");
    if (expect) CHECKF(mi[0].weights_interleaved > 0, "%s: no interleaved copy on the %s level", type, level);
    int interleaved = mi[0].weights_interleaved > 0;
    /* prompts take integer products on the copy where the level has them
     * for the type (AVX2's Q8_0 takes the float product: faster there) */
    int id = sm_type_by_name(type);
    REQUIRE(id >= 0);
    sm_type_kernels tk;
    sm_kernels_for_type(sm_kernels_get(level), (uint32_t)id, &tk);
    int integer_prefill = interleaved && tk.batch_x16;
    /* The legacy types' interleaved kernels add their scale, minimum and
     * offset terms in another order than the one-row kernels (each within
     * float rounding of the reference: test_types_legacy.c), and a one-ulp
     * difference that flips one code of a later layer's re-quantized input
     * shows in every token after it (stories260K Q4_1: up to 1.8 % of the top
     * logit); they get the prompts' bound. Q4_0, Q8_0 and F16 held 1e-4. */
    int legacy = strcmp(type, "Q4_0") && strcmp(type, "Q8_0") && !f16;
    double worst = 0, top = 0;
    widen_diff(one[0], one[1], NT * NV, &worst, &top);
    CHECKF(worst <= (legacy ? 0.05 : 1e-4) * top, "%s: one token at a time, interleaved and GGUF layouts differ by %g "
           "(max %g)", type, worst, top);
    worst = top = 0;
    widen_diff(prompt[1], prompt[0], NT * NV, &worst, &top);
    if (integer_prefill) {
        CHECKF(worst <= 0.05 * top, "%s: prompts on the two layouts differ by %g (max %g)", type, worst, top);
        worst = top = 0;
        widen_diff(prompt[0], one[0], NT * NV, &worst, &top);
        /* the same bound as above for the legacy types: stories260K's
         * feed-forward down projection (172 columns) stays F16, and its
         * prompt product (the float gemm) sums in another order than its
         * one-token kernel. The next layer's quantized input mostly absorbs
         * that, but on the AVX-512 level (checked under emulation, `make
         * emu-test`) one activation code flipped for Q4_1 and Q5_0: the
         * logits bit for bit the same up to token 15 (Q4_1) and 18 (Q5_0),
         * then 1.1-1.3 % of the top logit apart */
        CHECKF(worst <= (legacy ? 0.05 : 1e-4) * top, "%s: the prompt on the interleaved layout differs from one token "
               "at a time by %g (max %g)", type, worst, top);
    } else {   /* both prompts take the float products (from the copy or the map) */
        CHECKF(worst <= 1e-4 * top, "%s: prompts on the two layouts differ by %g (max %g)", type, worst, top);
    }
    for (int v = 0; v < 2; v++) {
        sm_session_free(s[v]);
        sm_model_free(m[v]);
        free(prompt[v]);
        free(one[v]);
    }
    unlink(path);
}

TEST(interleaved_weights_give_the_same_logits) {
    NEED_SHARED(p, "models/stories260K.gguf");
    check_repack_equivalence(p, "Q4_0");
    check_repack_equivalence(p, "Q8_0");
    check_repack_equivalence(p, "F16");
    check_repack_equivalence(p, "Q4_1");
    check_repack_equivalence(p, "Q5_0");
    check_repack_equivalence(p, "Q5_1");
    check_repack_equivalence(p, "IQ4_NL");
}

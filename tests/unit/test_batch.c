/* test_batch.c - forward passes over several sessions at once
 * (sm_session_eval_batch): every session's logits must be exactly those of
 * the same tokens evaluated alone with sm_session_eval, whatever the other
 * sessions in the batch do (prefill or decode, other positions), for every
 * architecture feature, weight type, kernel level and thread count; no
 * allocation per batch; bad batches refused. And the mean-pooled embedding
 * (sm_session_embed) against the logits it must project to. */
#include "test.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#define NS 3

/* A step: how many tokens each session gets (0 = not in this batch). */
static const int schedule[][NS] = {
    {5, 9, 1},   /* prompts of different lengths beside a one-token prompt */
    {1, 1, 7},   /* two decode while the third prefills */
    {1, 1, 1},   /* all decode, each at its own position */
    {0, 1, 1},   /* one sits out */
    {3, 0, 1},
    {1, 2, 1},
    {1, 1, 1},
};
#define N_STEPS (int)(sizeof schedule / sizeof schedule[0])

static sm_token next_token(uint64_t *st, int n_vocab) {
    *st = *st * 6364136223846793005ull + 1442695040888963407ull;
    return (sm_token)((*st >> 33) % (uint64_t)n_vocab);
}

/* A session of n_ctx tokens at a kernel level, with its KV cache in kv. */
static sm_session *new_session_kv(const sm_model *m, const char *kernels, int threads, int n_ctx, sm_kv_type kv) {
    sm_session_params p = sm_session_default_params();
    p.n_ctx = n_ctx;
    p.n_threads = threads;
    p.kernels = kernels;
    p.type_k = p.type_v = kv;
    sm_session *s = NULL;
    sm_error err = {0};
    if (sm_session_create(m, &p, &s, &err) != SM_OK) {
        printf("    session: %s\n", err.message);
        return NULL;
    }
    return s;
}

static sm_session *new_session_ctx(const sm_model *m, const char *kernels, int threads, int n_ctx) {
    return new_session_kv(m, kernels, threads, n_ctx, SM_KV_F32);
}

static sm_session *new_session(const sm_model *m, const char *kernels, int threads) {
    return new_session_ctx(m, kernels, threads, 96);
}

/* Runs the schedule through batches (on a separate workspace, or on the
 * first session as its own workspace) and through lone sessions; returns
 * the number of logits that differ. */
static long batch_vs_alone(const char *path, const char *kernels, int ws_threads, int ws_is_item, const char *what) {
    sm_model *m = NULL;
    sm_error err = {0};
    if (sm_model_load(path, NULL, &m, &err) != SM_OK) {
        test_fail(__FILE__, __LINE__, "%s: %s", what, err.message);
        return -1;
    }
    sm_model_info info;
    sm_model_get_info(m, &info);
    sm_session *S[NS], *R[NS], *W = NULL;
    for (int i = 0; i < NS; i++) {
        S[i] = new_session(m, kernels, 1);
        R[i] = new_session(m, kernels, 1);
    }
    W = ws_is_item ? S[0] : new_session(m, kernels, ws_threads);
    long differ = 0;
    uint64_t rng = 12345;
    for (int step = 0; step < N_STEPS && S[0] && W; step++) {
        sm_token toks[NS][16];
        sm_batch_item items[NS];
        int n_items = 0;
        /* items in a shuffled order: the library sorts the rows itself */
        for (int k = 0; k < NS; k++) {
            int i = (k + step) % NS;
            int n = schedule[step][i];
            if (!n) continue;
            for (int j = 0; j < n; j++) toks[i][j] = next_token(&rng, info.n_vocab);
            items[n_items++] = (sm_batch_item){S[i], toks[i], n};
        }
        unsigned long a0 = alloc_calls();
        sm_status st = sm_session_eval_batch(W, items, n_items, &err);
        unsigned long a1 = alloc_calls();
        if (st != SM_OK) {
            test_fail(__FILE__, __LINE__, "%s step %d: %s", what, step, err.message);
            differ = -1;
            break;
        }
        CHECKF(a1 == a0, "%s step %d: %lu allocation calls in a batch", what, step, a1 - a0);
        for (int k = 0; k < n_items; k++) {
            int i = (int)(items[k].session == S[0] ? 0 : items[k].session == S[1] ? 1 : 2);
            if (sm_session_eval(R[i], toks[i], (size_t)items[k].n_tokens, &err) != SM_OK) {
                test_fail(__FILE__, __LINE__, "%s step %d: %s", what, step, err.message);
                return -1;
            }
            const float *a = sm_session_logits(S[i]), *b = sm_session_logits(R[i]);
            float worst = 0.0f;
            int bad = 0;
            for (int v = 0; v < info.n_vocab; v++)
                if (a[v] != b[v]) {
                    bad++;
                    if (fabsf(a[v] - b[v]) > worst) worst = fabsf(a[v] - b[v]);
                }
            CHECKF(bad == 0, "%s step %d session %d: %d of %d logits differ from the session alone (worst by %g)",
                   what, step, i, bad, info.n_vocab, worst);
            CHECK(sm_session_n_past(S[i]) == sm_session_n_past(R[i]));
            differ += bad;
        }
    }
    for (int i = 0; i < NS; i++) {
        sm_session_free(S[i]);
        sm_session_free(R[i]);
    }
    if (!ws_is_item) sm_session_free(W);
    sm_model_free(m);
    return differ;
}

/* Small random models of the architectures whose forward features differ
 * (learned positions and fused QKV with biases; grouped-query RoPE;
 * query/key norms; post-norms, soft-capping and sliding-window layers; a
 * fused gate/up; parallel residuals and an output bias), F32 and quantized types, in a
 * temporary directory. */
static char tmpdir[64];

static const char *make_model_experts(const char *arch, const char *type, int dim, int experts) {
    static char path[8][128];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, 128, "%s/%s-%d-e%d.gguf", tmpdir, arch, dim, experts);
    sm_init_params ip = sm_init_default_params();
    ip.arch = arch;
    ip.dim = dim;
    ip.n_layers = 2;
    ip.n_heads = 4;
    ip.n_kv_heads = 2;
    ip.ffn_dim = dim == 64 ? 96 : dim;
    ip.n_ctx = 128;
    ip.n_vocab = 320;
    ip.seed = 7;
    ip.init_std = 0.5f;   /* peaked outputs: differences would show */
    ip.random_norms = 1;
    ip.n_expert = experts;   /* a mixture of experts: rows of a batch take different experts */
    sm_error err = {0};
    if (access(p, R_OK) != 0 && sm_model_init_file(&ip, p, &err) != SM_OK) {
        printf("    init %s: %s\n", arch, err.message);
        return NULL;
    }
    if (!type) return p;
    char *q = path[next++ % 8];
    snprintf(q, 128, "%s/%s-%d-e%d-%s.gguf", tmpdir, arch, dim, experts, type);
    if (sm_model_quantize_file(p, q, type, NULL, NULL, &err) != SM_OK) {
        printf("    quantize %s %s: %s\n", arch, type, err.message);
        return NULL;
    }
    return q;
}

static const char *make_model(const char *arch, const char *type, int dim) {
    return make_model_experts(arch, type, dim, 0);
}

static void remove_tmpdir(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return;
    char p[400];
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(tmpdir);
}

static int make_tmpdir(void) {
    if (tmpdir[0]) return 1;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sm_batch_XXXXXX");
    if (!mkdtemp(tmpdir)) return 0;
    atexit(remove_tmpdir);
    return 1;
}

TEST(batch_logits_equal_each_session_alone) {
    REQUIRE(make_tmpdir());
    struct { const char *arch, *type; int dim, experts; } models[] = {
        {"llama", NULL, 64, 0}, {"llama", "Q8_0", 64, 0}, {"llama", "Q4_0", 64, 0}, {"gpt2", NULL, 64, 0}, {"qwen3", "Q8_0", 64, 0},
        {"gemma2", NULL, 64, 0}, {"gemma3", "Q4_K", 256, 0}, {"phi3", "Q6_K", 256, 0}, {"qwen2", "F16", 64, 0},
        {"llama", "Q4_1", 64, 0}, {"llama", "Q5_0", 64, 0}, {"llama", "Q5_1", 64, 0}, {"llama", "IQ4_NL", 64, 0},
        {"llama", "BF16", 64, 0}, {"llama", "Q2_K", 256, 0}, {"llama", "Q3_K_M", 256, 0}, {"llama", "Q5_K_M", 256, 0},
        {"llama", "IQ4_XS", 256, 0}, {"phi2", "Q8_0", 64, 0}, {"gptneox", NULL, 64, 0}, {"llama", "Q8_0", 64, 4},
        {"qwen2moe", "Q4_K", 256, 8}, {"granitemoe", NULL, 64, 3}};
    char levels[128];
    snprintf(levels, sizeof levels, "%s", sm_kernels_list());
    for (char *lv = strtok(levels, " "); lv; lv = strtok(NULL, " ")) {
        for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
            const char *path = make_model_experts(models[i].arch, models[i].type, models[i].dim, models[i].experts);
            REQUIRE(path);
            char what[96];
            snprintf(what, sizeof what, "%s%s %s (%s)", models[i].arch, models[i].experts ? " (experts)" : "",
                     models[i].type ? models[i].type : "F32", lv);
            batch_vs_alone(path, lv, 2, 0, what);
        }
    }
}

TEST(batch_logits_equal_alone_on_a_real_model) {
    NEED_SHARED(path, "models/stories260K.gguf");
    /* the workspace on 2 threads and 1; a workspace that is one of the items */
    CHECK(batch_vs_alone(path, NULL, 2, 0, "stories260K, workspace 2 threads") == 0);
    CHECK(batch_vs_alone(path, NULL, 1, 0, "stories260K, workspace 1 thread") == 0);
    CHECK(batch_vs_alone(path, NULL, 1, 1, "stories260K, workspace is an item") == 0);
}

TEST(batch_refuses_bad_batches) {
    NEED_SHARED(path, "models/stories260K.gguf");
    REQUIRE(make_tmpdir());
    sm_model *m = NULL, *other = NULL;
    REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
    const char *op = make_model("llama", NULL, 64);
    REQUIRE(op && sm_model_load(op, NULL, &other, NULL) == SM_OK);
    sm_session *a = new_session(m, NULL, 1), *b = new_session(m, NULL, 1), *c = new_session(other, NULL, 1);
    REQUIRE(a && b && c);
    sm_token toks[200] = {0};
    for (int i = 0; i < 200; i++) toks[i] = 1 + i % 100;
    sm_error err = {0};
    sm_batch_item same[2] = {{a, toks, 1}, {a, toks, 2}};
    CHECK(sm_session_eval_batch(a, same, 2, &err) == SM_ERR_INVALID_ARG && strstr(err.message, "same session"));
    sm_batch_item mixed[2] = {{a, toks, 1}, {c, toks, 1}};
    CHECK(sm_session_eval_batch(a, mixed, 2, &err) == SM_ERR_INVALID_ARG && strstr(err.message, "another model"));
    int cap = sm_session_batch_cap(a);
    CHECK(cap == 96);
    sm_batch_item big[2] = {{a, toks, cap - 1}, {b, toks, 2}};
    CHECK(sm_session_eval_batch(a, big, 2, &err) == SM_ERR_INVALID_ARG && strstr(err.message, "at most"));
    sm_token bad_tok = 512;
    sm_batch_item range[2] = {{a, toks, 1}, {b, &bad_tok, 1}};
    CHECK(sm_session_eval_batch(a, range, 2, &err) == SM_ERR_TOKEN_RANGE && strstr(err.message, "item 1"));
    sm_batch_item empty[1] = {{a, toks, 0}};
    CHECK(sm_session_eval_batch(a, empty, 1, &err) == SM_ERR_INVALID_ARG);
    CHECK(sm_session_eval_batch(a, NULL, 0, &err) == SM_ERR_INVALID_ARG);
    /* a full context */
    REQUIRE(sm_session_eval(b, toks, 95, &err) == SM_OK);
    sm_batch_item full[2] = {{a, toks, 1}, {b, toks, 2}};
    CHECK(sm_session_eval_batch(a, full, 2, &err) == SM_ERR_CONTEXT_FULL);
    /* nothing was evaluated by the refused batches */
    CHECK(sm_session_n_past(a) == 0 && sm_session_n_past(b) == 95);
    sm_session_free(a);
    sm_session_free(b);
    sm_session_free(c);
    sm_model_free(m);
    sm_model_free(other);
}

/* The embedding is the final normed hidden state h_i averaged and scaled
 * to unit length; the logits are W h_i. So W e must point the same way as
 * the average of the logits of every position (from sm_session_eval_all,
 * a separate path), up to the positive scale. */
TEST(embedding_projects_to_the_mean_logits) {
    NEED_SHARED(path, "models/stories260K.gguf");
    sm_model *m = NULL;
    REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
    sm_model_info info;
    sm_model_get_info(m, &info);
    sm_session *s = new_session(m, NULL, 1);
    REQUIRE(s);
    const char *text = "Once upon a time, there was a little dog";
    sm_token toks[64];
    size_t n;
    REQUIRE(sm_tokenize(m, text, strlen(text), 1, toks, 64, &n, NULL) == SM_OK);
    float *e = calloc((size_t)info.dim, sizeof *e);
    float *all = calloc(n * (size_t)info.n_vocab, sizeof *all);
    double *mean = calloc((size_t)info.n_vocab, sizeof *mean);
    REQUIRE(sm_session_embed(s, toks, n, e, NULL) == SM_OK);
    CHECK(sm_session_n_past(s) == (int)n);
    double len = 0;
    for (int i = 0; i < info.dim; i++) len += (double)e[i] * e[i];
    CHECKF(fabs(len - 1.0) < 1e-5, "|e|^2 = %g", len);
    sm_session_reset(s);
    REQUIRE(sm_session_eval_all(s, toks, n, all, NULL) == SM_OK);
    for (size_t t = 0; t < n; t++)
        for (int v = 0; v < info.n_vocab; v++) mean[v] += all[t * info.n_vocab + v] / (double)n;
    /* W e, with W the output matrix read from the file's tensor table */
    sm_tensor_info ti;
    int found = 0;
    for (int i = 0; i < sm_model_tensor_count(m) && !found; i++)
        if (sm_model_tensor(m, i, &ti) && !strcmp(ti.name, "output.weight")) found = 1;
    REQUIRE(found && !strcmp(ti.type, "F32"));
    size_t fsize;
    char *file = read_file(path, &fsize);
    REQUIRE(file && ti.offset + ti.n_bytes <= fsize);
    const float *W = (const float *)(file + ti.offset);
    double dot = 0, nw = 0, nm = 0;
    for (int v = 0; v < info.n_vocab; v++) {
        double we = 0;
        for (int i = 0; i < info.dim; i++) we += (double)W[(size_t)v * info.dim + i] * e[i];
        dot += we * mean[v];
        nw += we * we;
        nm += mean[v] * mean[v];
    }
    double cosine = dot / sqrt(nw * nm);
    CHECKF(cosine > 1.0 - 1e-6, "cosine(W e, mean logits) = %.9f", cosine);
    /* a different text gives a different embedding; the same text the same */
    float *e2 = calloc((size_t)info.dim, sizeof *e2);
    REQUIRE(sm_session_embed(s, toks, n, e2, NULL) == SM_OK);
    CHECK(memcmp(e, e2, (size_t)info.dim * sizeof *e) == 0);
    REQUIRE(sm_session_embed(s, toks, n - 2, e2, NULL) == SM_OK);
    CHECK(memcmp(e, e2, (size_t)info.dim * sizeof *e) != 0);
    sm_error err = {0};
    CHECK(sm_session_embed(s, toks, 0, e2, &err) == SM_ERR_INVALID_ARG);
    free(file);
    free(e);
    free(e2);
    free(all);
    free(mean);
    sm_session_free(s);
    sm_model_free(m);
}

/* sm_session_eval_rows (speculative decoding's check of a draft): each
 * row's logits bit for bit those of the tokens evaluated one at a time,
 * after a prompt, for every architecture feature, weight type and kernel
 * level, on 1 and 2 threads; the session holds the tokens afterwards. */
static long rows_vs_one_at_a_time(const char *path, const char *kernels, int threads, const char *what) {
    sm_model *m = NULL;
    sm_error err = {0};
    if (sm_model_load(path, NULL, &m, &err) != SM_OK) {
        test_fail(__FILE__, __LINE__, "%s: %s", what, err.message);
        return -1;
    }
    sm_model_info info;
    sm_model_get_info(m, &info);
    sm_session *a = new_session(m, kernels, threads), *b = new_session(m, kernels, threads);
    long differ = 0;
    enum { NP = 6, NR = 9 };
    sm_token toks[NP + NR];
    uint64_t rng = 99;
    for (int i = 0; i < NP + NR; i++) toks[i] = next_token(&rng, info.n_vocab);
    float *rows = malloc((size_t)NR * info.n_vocab * sizeof(float));
    if (a && b && rows && sm_session_eval(a, toks, NP, &err) == SM_OK && sm_session_eval(b, toks, NP, &err) == SM_OK &&
        sm_session_eval_rows(a, toks + NP, NR, rows, &err) == SM_OK) {
        for (int i = 0; i < NR; i++) {
            if (sm_session_eval(b, &toks[NP + i], 1, &err) != SM_OK) { differ++; break; }
            if (memcmp(sm_session_logits(b), rows + (size_t)i * info.n_vocab, (size_t)info.n_vocab * sizeof(float)))
                differ++;
        }
        if (sm_session_n_past(a) != NP + NR ||
            memcmp(sm_session_logits(a), sm_session_logits(b), (size_t)info.n_vocab * sizeof(float)))
            differ++;
    } else {
        differ++;
    }
    CHECKF(differ == 0, "%s, %d threads: %ld rows differ from one-token passes", what, threads, differ);
    free(rows);
    sm_session_free(a);
    sm_session_free(b);
    sm_model_free(m);
    return differ;
}

TEST(eval_rows_equal_one_token_passes) {
    REQUIRE(make_tmpdir());
    struct { const char *arch, *type; int dim, experts; } models[] = {
        {"llama", NULL, 64, 0}, {"llama", "Q8_0", 64, 0}, {"llama", "Q4_0", 64, 0}, {"gpt2", NULL, 64, 0},
        {"qwen3", "Q8_0", 64, 0}, {"gemma2", NULL, 64, 0}, {"gemma3", "Q4_K", 256, 0}, {"phi3", "Q6_K", 256, 0},
        {"qwen2", "F16", 64, 0}, {"llama", "IQ4_XS", 256, 0}, {"llama", "Q4_0", 64, 4}, {"qwen2moe", NULL, 64, 3}};
    char levels[128];
    snprintf(levels, sizeof levels, "%s", sm_kernels_list());
    for (char *lv = strtok(levels, " "); lv; lv = strtok(NULL, " ")) {
        for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
            const char *path = make_model_experts(models[i].arch, models[i].type, models[i].dim, models[i].experts);
            REQUIRE(path);
            char what[96];
            snprintf(what, sizeof what, "%s%s %s (%s)", models[i].arch, models[i].experts ? " (experts)" : "",
                     models[i].type ? models[i].type : "F32", lv);
            rows_vs_one_at_a_time(path, lv, 1, what);
            rows_vs_one_at_a_time(path, lv, 2, what);
        }
    }
}

/* A prompt on the types with integer batch products (the interleaved
 * copy's batch_x16 kernels, AVX-512) gives the logits of the same tokens
 * fed one at a time: both quantize each row's input once, to Q8_0, Q8_1 or
 * Q8_K, and take the same integer dots (batch_x16_integer_products_match
 * and types_k_batch_x16_match_one_token check those kernels bit for bit
 * against the one-token ones). The prompt's attention and norms sum
 * in another order, within 3e-7 of the largest logit; but where a value
 * lies that close to a rounding boundary of its 8-bit activation, the two
 * round it apart, and a step of one input value moves that token's
 * logits by up to 3.4 % of the largest here (seen at 1 to 3 of 24 tokens
 * for one type in ten, with the norms' or the model's rounding changed).
 * So: at most NT/6 tokens off by more than 1e-4 of the largest logit, none
 * by more than 10 %. A fault in the prompt's products (a wrong scale, row
 * sum or stride, a stale quantized input) moves every token, or one by far
 * more. At 1 and 2 threads. */
TEST(prompt_equals_one_token_passes_on_integer_types) {
    REQUIRE(make_tmpdir());
    struct { const char *type; int dim; } models[] = {{"Q8_0", 64}, {"Q4_0", 64}, {"Q4_1", 64}, {"Q5_0", 64},
                                                      {"Q5_1", 64}, {"IQ4_NL", 64}, {"Q4_K", 256}, {"Q5_K", 256},
                                                      {"Q6_K", 256}, {"IQ4_XS", 256}};
    enum { NT = 24 };
    int checked = 0;
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        const char *path = make_model("llama", models[i].type, models[i].dim);
        REQUIRE(path);
        sm_model *m = NULL;
        REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
        sm_model_info info;
        sm_model_get_info(m, &info);
        sm_token toks[NT];
        uint64_t rng = 5 + i;
        for (int t = 0; t < NT; t++) toks[t] = next_token(&rng, info.n_vocab);
        float *prompt = malloc(sizeof(float) * NT * info.n_vocab), *one = malloc(sizeof(float) * NT * info.n_vocab);
        for (int threads = 1; threads <= 2; threads++) {
            sm_session *s = new_session(m, NULL, threads);
            REQUIRE(s);
            if (strcmp(sm_session_kernels(s), "avx512") != 0) {   /* no interleaved copy: float prompt products */
                sm_session_free(s);
                continue;
            }
            REQUIRE(sm_session_eval_all(s, toks, NT, prompt, NULL) == SM_OK);
            sm_session_reset(s);
            for (int t = 0; t < NT; t++) {
                REQUIRE(sm_session_eval(s, &toks[t], 1, NULL) == SM_OK);
                memcpy(one + (size_t)t * info.n_vocab, sm_session_logits(s), sizeof(float) * info.n_vocab);
            }
            double top = 0;
            for (size_t j = 0; j < (size_t)NT * info.n_vocab; j++)
                if (fabs(one[j]) > top) top = fabs(one[j]);
            int flipped = 0;   /* tokens off by more than rounding */
            double worst = 0;
            for (int t = 0; t < NT; t++) {
                double d = 0;
                for (int j = 0; j < info.n_vocab; j++) {
                    size_t at = (size_t)t * info.n_vocab + j;
                    if (fabs((double)prompt[at] - one[at]) > d) d = fabs((double)prompt[at] - one[at]);
                }
                if (d > 1e-4 * top) flipped++;
                if (d > worst) worst = d;
            }
            CHECKF(flipped <= NT / 6 && worst <= 0.1 * top,
                   "%s, %d threads: the prompt's logits differ from one token at a time at %d of %d tokens by more "
                   "than rounding, by up to %g (largest %g)", models[i].type, threads, flipped, NT, worst, top);
            checked++;
            sm_session_free(s);
        }
        free(prompt);
        free(one);
        sm_model_free(m);
    }
    if (!checked) printf("     (no AVX-512 level here: prompts take float products; nothing to compare)\n");
}

/* A token's attention over a long span of a wide cache (model/attention.c:
 * past ATT_SPLIT_BYTES its values are summed in runs of positions, split
 * across the threads) gives the prompt's logits within rounding, and the
 * same bits on 1 and 2 threads, at every kernel level. The prompt's
 * attention is the other code (blocks of queries, an online softmax). With
 * an F16, BF16 or Q8_0 cache (its rows widened a block or a row at a time):
 * the same bits on 1 and 2 threads and in a batch. */
static void long_span_check(int n_kv_heads, sm_kv_type kv) {
    const char *what = kv == SM_KV_F16 ? "F16 cache" : kv == SM_KV_BF16 ? "BF16 cache" : kv == SM_KV_Q8_0 ? "Q8_0 cache"
                     : "F32 cache";
    REQUIRE(make_tmpdir());
    char path[128];
    snprintf(path, sizeof path, "%s/wide-kv-%d.gguf", tmpdir, (int)kv);
    sm_init_params ip = sm_init_default_params();
    ip.arch = "llama";
    ip.dim = kv == SM_KV_Q8_0 ? 512 : 256;   /* Q8_0: heads of 32, rows of 544 bytes */
    ip.n_layers = 2;
    ip.n_heads = kv == SM_KV_Q8_0 ? 16 : 8;
    ip.n_kv_heads = n_kv_heads;
    ip.ffn_dim = 256;
    ip.n_ctx = 256;
    ip.n_vocab = 320;
    ip.seed = 11;
    ip.init_std = 0.5f;
    ip.random_norms = 1;
    REQUIRE(sm_model_init_file(&ip, path, NULL) == SM_OK);
    sm_model *m = NULL;
    REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
    sm_model_info info;
    sm_model_get_info(m, &info);
    enum { NT = 250 };
    sm_token toks[NT];
    uint64_t rng = 3;
    for (int t = 0; t < NT; t++) toks[t] = next_token(&rng, info.n_vocab);
    size_t nv = (size_t)info.n_vocab;
    float *prompt = malloc(sizeof(float) * NT * nv), *one[2] = {malloc(sizeof(float) * NT * nv),
                                                               malloc(sizeof(float) * NT * nv)};
    REQUIRE(prompt && one[0] && one[1]);
    char levels[128];
    snprintf(levels, sizeof levels, "%s", sm_kernels_list());
    for (char *lv = strtok(levels, " "); lv; lv = strtok(NULL, " ")) {
        for (int th = 1; th <= 2; th++) {
            sm_session *s = new_session_kv(m, lv, th, NT, kv);
            REQUIRE(s);
            if (th == 1) REQUIRE(sm_session_eval_all(s, toks, NT, prompt, NULL) == SM_OK);
            sm_session_reset(s);
            for (int t = 0; t < NT; t++) {
                REQUIRE(sm_session_eval(s, &toks[t], 1, NULL) == SM_OK);
                memcpy(one[th - 1] + (size_t)t * nv, sm_session_logits(s), sizeof(float) * nv);
            }
            sm_session_free(s);
        }
        double worst = 0, top = 0;
        for (size_t j = 0; j < (size_t)NT * nv; j++) {
            double d = fabs((double)prompt[j] - one[0][j]);
            if (d > worst) worst = d;
            if (fabs(prompt[j]) > top) top = fabs(prompt[j]);
        }
        if (kv == SM_KV_F32)   /* (F16, BF16: the two passes' keys and values differ in their float32 sums, and
                                * rounding them parts some by an ulp: parity_test.sh checks each pass against
                                * float64 with the keys and values rounded) */
            CHECKF(worst <= 1e-4 * top, "%s, %s: one token at a time differs from the prompt by %g (largest %g)", what,
                   lv, worst, top);
        size_t differ = 0;
        for (size_t j = 0; j < (size_t)NT * nv; j++) differ += memcmp(&one[0][j], &one[1][j], sizeof(float)) != 0;
        CHECKF(differ == 0, "%s, %s: %zu of %zu one-token logits differ between 1 and 2 threads", what, lv, differ,
               (size_t)NT * nv);
        /* two sessions decoding in one batch (the server's way: each run's attention a task of its own)
         * give what one alone gave, on 2 threads; the second one token behind, so their spans differ */
        sm_session *ws = new_session_kv(m, lv, 2, NT, kv), *other = new_session_kv(m, lv, 2, NT, kv);
        REQUIRE(ws && other);
        REQUIRE(sm_session_eval(other, toks, 1, NULL) == SM_OK);
        differ = 0;
        for (int t = 0; t + 1 < NT; t++) {
            sm_batch_item items[2] = {{ws, &toks[t], 1}, {other, &toks[t + 1], 1}};
            REQUIRE(sm_session_eval_batch(ws, items, 2, NULL) == SM_OK);
            differ += memcmp(sm_session_logits(ws), one[1] + (size_t)t * nv, sizeof(float) * nv) != 0;
            differ += memcmp(sm_session_logits(other), one[1] + (size_t)(t + 1) * nv, sizeof(float) * nv) != 0;
        }
        CHECKF(differ == 0, "%s, %s: %zu of %d batched steps differ from one session alone", what, lv, differ,
               2 * (NT - 1));
        sm_session_free(ws);
        sm_session_free(other);
    }
    free(prompt);
    free(one[0]);
    free(one[1]);
    sm_model_free(m);
}

TEST(long_span_decode_equals_prompt_and_same_bits_on_two_threads) {
    long_span_check(4, SM_KV_F32);   /* K and V rows of 128 floats: 192 positions make 96 KiB */
    long_span_check(8, SM_KV_F16);   /* rows of 256 halves: 192 positions make 96 KiB */
    long_span_check(8, SM_KV_BF16);
    long_span_check(16, SM_KV_Q8_0);   /* 192 positions of 544 bytes: 102 KiB */
}

/* A prompt long and wide enough that every row-wise step (norms, RoPE,
 * post-norms, the activation) and every product splits its rows across
 * the threads gives the same logits, bit for bit, on 1 and 2 threads: each
 * row and each product's element is computed as alone, whichever thread
 * takes it. */
TEST(prompt_logits_same_bits_on_one_and_two_threads) {
    REQUIRE(make_tmpdir());
    struct { const char *arch, *type; } models[] = {{"llama", NULL}, {"gpt2", NULL}, {"gemma2", NULL}, {"llama", "Q8_0"}};
    enum { NP = 128 };   /* 128 rows x 256 = 32768 values: the row-wise steps go to the pool */
    char levels[128];
    snprintf(levels, sizeof levels, "%s", sm_kernels_list());
    for (char *lv = strtok(levels, " "); lv; lv = strtok(NULL, " ")) {
        for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
            const char *path = make_model(models[i].arch, models[i].type, 256);
            REQUIRE(path);
            sm_model *m = NULL;
            REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
            sm_model_info info;
            sm_model_get_info(m, &info);
            sm_token toks[NP];
            uint64_t st = 99;
            for (int t = 0; t < NP; t++) toks[t] = next_token(&st, info.n_vocab);
            float *out[2];
            for (int th = 1; th <= 2; th++) {
                out[th - 1] = malloc(sizeof(float) * (size_t)NP * info.n_vocab);
                sm_session *s = new_session_ctx(m, lv, th, NP);
                REQUIRE(out[th - 1] && s);
                CHECK(sm_session_eval_all(s, toks, NP, out[th - 1], NULL) == SM_OK);
                sm_session_free(s);
            }
            size_t differ = 0;
            for (size_t k = 0; k < (size_t)NP * info.n_vocab; k++) differ += memcmp(&out[0][k], &out[1][k], sizeof(float)) != 0;
            CHECKF(differ == 0, "%s %s (%s): %zu of %zu prompt logits differ between 1 and 2 threads", models[i].arch,
                   models[i].type ? models[i].type : "F32", lv, differ, (size_t)NP * info.n_vocab);
            free(out[0]);
            free(out[1]);
            sm_model_free(m);
        }
    }
}

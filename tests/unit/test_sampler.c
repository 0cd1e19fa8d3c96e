/* test_sampler.c - each sampler on hand-made logits whose answers are
 * known from the definitions (softmax, top-k/top-p/min-p cuts). */
#include "test.h"
#include "generate/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fill(sm_candidate *c, const double *probs, int n) {
    for (int i = 0; i < n; i++) c[i] = (sm_candidate){(float)log(probs[i]), i};
}

static sm_sampler_params params(float temp, int k, float p, float min_p) {
    sm_sampler_params sp = {temp, k, p, min_p, 1.0f, 0, 0.0f, 0.0f, 0};
    return sp;
}

/* Draws many times and returns the observed frequencies. */
static void frequencies(const double *probs, int n, sm_sampler_params sp, int draws, uint64_t seed, double *freq) {
    sm_candidate c[16];
    uint64_t rng = seed;
    long count[16] = {0};
    for (int d = 0; d < draws; d++) {
        fill(c, probs, n);
        sm_token t;
        sm_sample_candidates(c, n, &sp, &rng, &t);
        if (t >= 0 && t < n) count[t]++;
    }
    /* exact for the 0 and 1 cases the tests compare with == */
    for (int i = 0; i < n; i++) freq[i] = (double)count[i] / draws;
}

TEST(sampler_greedy_picks_argmax_and_lowest_id_on_ties) {
    sm_candidate c[4] = {{0.1f, 0}, {3.0f, 1}, {2.9f, 2}, {-1.0f, 3}};
    uint64_t rng = 1;
    sm_token t;
    sm_sampler_params sp = params(0, 0, 1, 0);
    sm_sample_candidates(c, 4, &sp, &rng, &t);
    CHECK(t == 1);
    sm_candidate tie[3] = {{2.0f, 0}, {5.0f, 1}, {5.0f, 2}};
    sm_sample_candidates(tie, 3, &sp, &rng, &t);
    CHECK(t == 1);
}

TEST(sampler_top_k_one_is_greedy_at_any_temperature) {
    double probs[5] = {0.1, 0.2, 0.4, 0.2, 0.1}, f[5];
    frequencies(probs, 5, params(5.0f, 1, 1, 0), 500, 7, f);
    CHECK(f[2] == 1.0);
}

TEST(sampler_temperature_follows_softmax) {
    /* at T = 0.5 the probabilities become p^2 / sum p^2 */
    double probs[3] = {0.6, 0.3, 0.1}, f[3];
    double z = 0.36 + 0.09 + 0.01, want[3] = {0.36 / z, 0.09 / z, 0.01 / z};
    frequencies(probs, 3, params(0.5f, 0, 1, 0), 40000, 99, f);
    for (int i = 0; i < 3; i++) CHECKF(fabs(f[i] - want[i]) < 0.01, "token %d: %f vs %f", i, f[i], want[i]);
    /* at T = 1 they are unchanged */
    frequencies(probs, 3, params(1.0f, 0, 1, 0), 40000, 5, f);
    for (int i = 0; i < 3; i++) CHECKF(fabs(f[i] - probs[i]) < 0.01, "token %d: %f vs %f", i, f[i], probs[i]);
}

TEST(sampler_top_p_keeps_the_smallest_sufficient_set) {
    /* cumulative 0.5, 0.8: top-p 0.7 keeps two tokens, renormalised */
    double probs[4] = {0.5, 0.3, 0.15, 0.05}, f[4];
    frequencies(probs, 4, params(1.0f, 0, 0.7f, 0), 40000, 3, f);
    CHECK(f[2] == 0 && f[3] == 0);
    CHECKF(fabs(f[0] - 0.625) < 0.01, "%f", f[0]);
    /* top-p 0.5 keeps only the first (cumulative reaches 0.5 exactly) */
    frequencies(probs, 4, params(1.0f, 0, 0.5f, 0), 2000, 3, f);
    CHECK(f[0] == 1.0);
}

TEST(sampler_min_p_drops_tokens_below_the_fraction_of_the_best) {
    /* min-p 0.25 of 0.5 = 0.125: 0.15 stays, 0.05 goes */
    double probs[4] = {0.5, 0.3, 0.15, 0.05}, f[4];
    frequencies(probs, 4, params(1.0f, 0, 1, 0.25f), 40000, 11, f);
    CHECK(f[3] == 0);
    CHECKF(fabs(f[2] - 0.15 / 0.95) < 0.01, "%f", f[2]);
}

TEST(sampler_top_k_keeps_k_best) {
    double probs[5] = {0.05, 0.4, 0.1, 0.3, 0.15}, f[5];
    frequencies(probs, 5, params(1.0f, 2, 1, 0), 40000, 17, f);
    CHECK(f[0] == 0 && f[2] == 0 && f[4] == 0);
    CHECKF(fabs(f[1] - 0.4 / 0.7) < 0.01, "%f", f[1]);
}

TEST(sampler_same_seed_same_draws) {
    double probs[6] = {0.2, 0.2, 0.2, 0.2, 0.1, 0.1};
    sm_sampler_params sp = params(1.0f, 0, 1, 0);
    int same = 1, differs = 0;
    uint64_t a = 42, b = 42, c = 43;
    for (int i = 0; i < 64; i++) {
        sm_candidate x[6], y[6], z[6];
        fill(x, probs, 6); fill(y, probs, 6); fill(z, probs, 6);
        sm_token tx, ty, tz;
        sm_sample_candidates(x, 6, &sp, &a, &tx);
        sm_sample_candidates(y, 6, &sp, &b, &ty);
        sm_sample_candidates(z, 6, &sp, &c, &tz);
        same &= tx == ty;
        differs |= tx != tz;
    }
    CHECK(same);
    CHECK(differs);
}

/* The repetition penalty, checked against its definition (llama.cpp's):
 * a recent token's logit is divided by the penalty when positive and
 * multiplied when negative, once per distinct token. */
TEST(sampler_repetition_penalty_matches_definition) {
    NEED_SHARED(path, "models/stories260K.gguf");
    sm_model *m = NULL;
    REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
    sm_session *s = NULL;
    REQUIRE(sm_session_create(m, NULL, &s, NULL) == SM_OK);
    size_t n;
    sm_token toks[64];
    const char *text = "Once upon a time, there was a little girl named Lily. Lily";
    REQUIRE(sm_tokenize(m, text, strlen(text), 1, toks, 64, &n, NULL) == SM_OK);
    REQUIRE(sm_session_eval(s, toks, n, NULL) == SM_OK);
    const float *logits = sm_session_logits(s);
    int nv = 512;
    for (int last_n = 1; last_n <= (int)n; last_n += 3) {
        float adj[512];
        memcpy(adj, logits, sizeof adj);
        unsigned char seen[512] = {0};
        for (size_t i = n - (size_t)last_n; i < n; i++) {
            if (seen[toks[i]]) continue;
            seen[toks[i]] = 1;
            adj[toks[i]] = adj[toks[i]] > 0 ? adj[toks[i]] / 3.0f : adj[toks[i]] * 3.0f;
        }
        int best = 0;
        for (int i = 1; i < nv; i++)
            if (adj[i] > adj[best]) best = i;
        sm_sampler_params sp = {0.0f, 0, 1.0f, 0.0f, 3.0f, last_n, 0.0f, 0.0f, 0};
        sm_token t;
        REQUIRE(sm_session_sample(s, &sp, &t, NULL) == SM_OK);
        CHECKF(t == best, "last_n %d: sampled %d, expected %d", last_n, t, best);
    }
    sm_sampler_params bad = {-1.0f, 0, 1.0f, 0.0f, 1.0f, 0, 0.0f, 0.0f, 0};
    sm_token t;
    sm_error err = {0};
    CHECK(sm_session_sample(s, &bad, &t, &err) == SM_ERR_INVALID_ARG);
    sm_session_free(s);
    sm_model_free(m);
}

/* OpenAI's frequency and presence penalties, checked against their
 * definition: a token seen c > 0 times in the window loses
 * c * frequency + presence from its logit (after the repetition penalty,
 * as llama.cpp's penalties sampler orders them). The text repeats tokens,
 * so the count matters; greedy sampling shows which logit is highest. */
TEST(sampler_frequency_and_presence_penalties_match_definition) {
    NEED_SHARED(path, "models/stories260K.gguf");
    sm_model *m = NULL;
    REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
    sm_session *s = NULL;
    REQUIRE(sm_session_create(m, NULL, &s, NULL) == SM_OK);
    size_t n;
    sm_token toks[64];
    const char *text = "Lily saw a cat. The cat saw Lily. Lily and the cat and the dog";
    REQUIRE(sm_tokenize(m, text, strlen(text), 1, toks, 64, &n, NULL) == SM_OK);
    REQUIRE(sm_session_eval(s, toks, n, NULL) == SM_OK);
    const float *logits = sm_session_logits(s);
    /* {repetition, frequency, presence}; negative penalties favour the
     * window's tokens, the most frequent most under a frequency penalty */
    const float cases[][3] = {{1.0f, 0.0f, 2.0f}, {1.0f, 2.0f, 0.0f}, {1.0f, 1.5f, 1.0f}, {1.3f, 0.7f, 0.4f},
                              {1.0f, -0.3f, 0.0f}, {1.0f, -1.0f, 0.0f}, {1.0f, -3.0f, 0.5f}, {1.0f, 0.0f, -1.5f},
                              {1.1f, -0.6f, -0.2f}};
    int changed = 0, count_mattered = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int last_n = 2; last_n <= (int)n; last_n += 5) {
            float rp = cases[c][0], freq = cases[c][1], pres = cases[c][2];
            float adj[512], once[512];   /* once: as if every seen token had been seen one time */
            memcpy(adj, logits, sizeof adj);
            int count[512] = {0};
            for (size_t i = n - (size_t)last_n; i < n; i++) count[toks[i]]++;
            for (int t = 0; t < 512; t++) {
                once[t] = adj[t];
                if (!count[t]) continue;
                if (rp != 1.0f) adj[t] = adj[t] > 0 ? adj[t] / rp : adj[t] * rp;
                once[t] = adj[t] - (freq + pres);
                adj[t] -= (float)count[t] * freq + pres;
            }
            int best = 0, plain = 0, best_once = 0;
            for (int i = 1; i < 512; i++) {
                if (adj[i] > adj[best]) best = i;
                if (once[i] > once[best_once]) best_once = i;
                if (logits[i] > logits[plain]) plain = i;
            }
            changed += best != plain;
            count_mattered += best != best_once;
            sm_sampler_params sp = {0.0f, 0, 1.0f, 0.0f, rp, last_n, pres, freq, 0};
            sm_token t;
            REQUIRE(sm_session_sample(s, &sp, &t, NULL) == SM_OK);
            CHECKF(t == best, "case %zu last_n %d: sampled %d, expected %d", c, last_n, t, best);
        }
    CHECK(count_mattered > 0);   /* some case tells a count from mere presence */
    CHECK(changed > 0);   /* the penalties did move the choice somewhere */
    sm_sampler_params bad = {0.0f, 0, 1.0f, 0.0f, 1.0f, 8, NAN, 0.0f, 0};
    sm_token t;
    CHECK(sm_session_sample(s, &bad, &t, NULL) == SM_ERR_INVALID_ARG);
    bad.presence_penalty = 0.0f;
    bad.frequency_penalty = INFINITY;
    CHECK(sm_session_sample(s, &bad, &t, NULL) == SM_ERR_INVALID_ARG);
    sm_session_free(s);
    sm_model_free(m);
}

/* A random model with a small vocabulary, peaked: after some one-token
 * prompts an end token wins. In a new directory made from dir's template;
 * the caller removes path and dir. */
static sm_model *peaked_model(char *dir, char *path) {
    if (!mkdtemp(dir)) return NULL;
    snprintf(path, 64, "%s/m.gguf", dir);
    sm_init_params ip = sm_init_default_params();
    ip.arch = "llama";
    ip.dim = 32;
    ip.n_layers = 1;
    ip.n_heads = 2;
    ip.n_kv_heads = 2;
    ip.ffn_dim = 32;
    ip.n_ctx = 64;
    ip.n_vocab = 301;   /* past the last eight: a tail the argmax's chains leave to one loop */
    ip.seed = 5;
    ip.init_std = 1.0f;
    sm_model *m = NULL;
    if (sm_model_init_file(&ip, path, NULL) != SM_OK || sm_model_load(path, NULL, &m, NULL) != SM_OK) return NULL;
    return m;
}

/* Greedy sampling on a session's logits (its fast path reads them in
 * place) against the first place of the largest logit found here, and with
 * ignore_eos against the best token that is not an end token; returns
 * whether an end token was the best (the case ignore_eos must step past). */
static int greedy_check(sm_session *s, const sm_model *m, int n_vocab, int step) {
    const float *l = sm_session_logits(s);
    int best = 0, best_open = -1;
    for (int i = 1; i < n_vocab; i++)
        if (l[i] > l[best]) best = i;
    for (int i = 0; i < n_vocab; i++)
        if (!sm_token_is_eog(m, i) && (best_open < 0 || l[i] > l[best_open])) best_open = i;
    sm_sampler_params greedy = {0.0f, 0, 1.0f, 0.0f, 1.0f, 0, 0.0f, 0.0f, 0};
    sm_token t = -1, u = -1;
    CHECK(sm_session_sample(s, &greedy, &t, NULL) == SM_OK);
    CHECKF(t == best, "step %d: greedy took %d, the largest logit is %d's", step, t, best);
    greedy.ignore_eos = 1;
    CHECK(sm_session_sample(s, &greedy, &u, NULL) == SM_OK);
    CHECKF(u == best_open, "step %d: greedy with ignore_eos took %d, not %d", step, u, best_open);
    return sm_token_is_eog(m, best);
}

TEST(sampler_greedy_on_session_logits_matches_argmax_and_ignore_eos) {
    char dir[] = "/tmp/sm_sampler_XXXXXX", path[64];
    sm_model *m = peaked_model(dir, path);
    REQUIRE(m);
    sm_model_info info;
    sm_model_get_info(m, &info);
    int eog = 0;
    for (int i = 0; i < info.n_vocab; i++) eog += sm_token_is_eog(m, i);
    REQUIRE(eog > 0);
    sm_session *s = NULL;
    REQUIRE(sm_session_create(m, NULL, &s, NULL) == SM_OK);
    int ended = 0;
    for (sm_token p = 0; p < info.n_vocab; p++) {
        sm_session_reset(s);
        REQUIRE(sm_session_eval(s, &p, 1, NULL) == SM_OK);
        ended += greedy_check(s, m, info.n_vocab, p);
    }
    CHECKF(ended > 0, "no one-token prompt made an end token the best: the ignore_eos case went unchecked");
    sm_session_free(s);
    sm_model_free(m);
    unlink(path);
    rmdir(dir);
    NEED_SHARED(shared, "models/stories260K.gguf");
    REQUIRE(sm_model_load(shared, NULL, &m, NULL) == SM_OK);
    REQUIRE(sm_session_create(m, NULL, &s, NULL) == SM_OK);
    sm_token tok = 1;   /* BOS, then the greedy story */
    for (int step = 0; step < 200; step++) {
        REQUIRE(sm_session_eval(s, &tok, 1, NULL) == SM_OK);
        greedy_check(s, m, 512, step);
        REQUIRE(sm_session_sample(s, NULL, &tok, NULL) == SM_OK);
    }
    sm_session_free(s);
    sm_model_free(m);
}

/* Top-k on a session's logits (its fast path selects from them in place)
 * draws what the whole chain draws on every candidate (a mask that allows
 * everything takes that path), the RNG started from the same seed, for
 * several chains; with ignore_eos, what the chain draws with the end
 * tokens masked out. Returns the draws that differ. */
static int fast_vs_whole(sm_session *s, const sm_model *m, int n_vocab, int step, int *draws) {
    static const sm_sampler_params chains[] = {{0.8f, 40, 0.95f, 0.05f, 1.0f, 0, 0.0f, 0.0f, 0},
                                               {1.5f, 5, 1.0f, 0.0f, 1.0f, 0, 0.0f, 0.0f, 0},
                                               {1.0f, 300, 0.9f, 0.0f, 1.0f, 0, 0.0f, 0.0f, 0},
                                               {2.0f, 299, 1.0f, 0.0f, 1.0f, 0, 0.0f, 0.0f, 1},
                                               {1.0f, 1, 1.0f, 0.0f, 1.0f, 0, 0.0f, 0.0f, 0},
                                               {3.0f, 1, 1.0f, 0.0f, 1.0f, 0, 0.0f, 0.0f, 1},
                                               {3.0f, 2, 1.0f, 0.0f, 1.0f, 0, 0.0f, 0.0f, 1}};
    uint8_t all[512], open[512];
    for (int i = 0; i < n_vocab; i++) {
        all[i] = 1;
        open[i] = !sm_token_is_eog(m, i);
    }
    int differ = 0;
    for (size_t c = 0; c < sizeof chains / sizeof chains[0]; c++)
        for (uint64_t seed = 1; seed <= 4; seed++) {
            sm_token fast = -1, whole = -1;
            sm_session_set_seed(s, seed * 7919 + (uint64_t)step);
            CHECK(sm_session_sample(s, &chains[c], &fast, NULL) == SM_OK);
            sm_session_set_seed(s, seed * 7919 + (uint64_t)step);
            CHECK(sm_session_sample_masked(s, &chains[c], chains[c].ignore_eos ? open : all, &whole, NULL) == SM_OK);
            differ += fast != whole;
            (*draws)++;
        }
    return differ;
}

TEST(sampler_top_k_on_session_logits_draws_as_the_whole_chain) {
    int differ = 0, draws = 0;
    char dir[] = "/tmp/sm_sampler_XXXXXX", path[64];
    sm_model *m = peaked_model(dir, path);   /* where end tokens win (past the first k too) */
    REQUIRE(m);
    sm_model_info info;
    sm_model_get_info(m, &info);
    sm_session *s = NULL;
    REQUIRE(sm_session_create(m, NULL, &s, NULL) == SM_OK);
    for (sm_token p = 0; p < info.n_vocab; p++) {
        sm_session_reset(s);
        REQUIRE(sm_session_eval(s, &p, 1, NULL) == SM_OK);
        differ += fast_vs_whole(s, m, info.n_vocab, p, &draws);
    }
    sm_session_free(s);
    sm_model_free(m);
    unlink(path);
    rmdir(dir);
    CHECKF(differ == 0, "random model: %d of %d draws differ between the fast path and the whole chain", differ, draws);
    NEED_SHARED(shared, "models/stories260K.gguf");
    REQUIRE(sm_model_load(shared, NULL, &m, NULL) == SM_OK);
    REQUIRE(sm_session_create(m, NULL, &s, NULL) == SM_OK);
    sm_token tok = 1;
    differ = draws = 0;
    for (int step = 0; step < 120; step++) {
        REQUIRE(sm_session_eval(s, &tok, 1, NULL) == SM_OK);
        differ += fast_vs_whole(s, m, 512, step, &draws);
        REQUIRE(sm_session_sample(s, NULL, &tok, NULL) == SM_OK);
    }
    CHECKF(differ == 0, "stories260K: %d of %d draws differ between the fast path and the whole chain", differ, draws);
    sm_session_free(s);
    sm_model_free(m);
}

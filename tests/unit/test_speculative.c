/* test_speculative.c - speculative decoding's arithmetic against its
 * definitions: the acceptance rule's output is distributed as the target's
 * distribution p whatever the draft's q (the theorem of speculative
 * sampling), and the sampler chain written out as probabilities matches
 * top-k / top-p / min-p / temperature computed here from scratch. */
#include "test.h"
#include "generate/sampler.h"
#include "generate/speculative.h"
#include "text/eog.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Pearson's chi-square of counts against probabilities. */
static double chi2(const long *count, const double *p, int n, long draws) {
    double x = 0;
    for (int i = 0; i < n; i++)
        if (p[i] > 0) x += (count[i] - draws * p[i]) * (count[i] - draws * p[i]) / (draws * p[i]);
    return x;
}

TEST(speculative_acceptance_keeps_target_distribution) {
    enum { N = 6 };
    /* q far from p, q with zeros where p has mass, q equal to p */
    const float ps[3][N] = {{0.05f, 0.4f, 0.1f, 0.25f, 0.2f, 0.0f},
                            {0.3f, 0.3f, 0.2f, 0.1f, 0.1f, 0.0f},
                            {0.1f, 0.2f, 0.3f, 0.2f, 0.1f, 0.1f}};
    const float qs[3][N] = {{0.5f, 0.05f, 0.3f, 0.05f, 0.05f, 0.05f},
                            {0.0f, 0.0f, 0.5f, 0.5f, 0.0f, 0.0f},
                            {0.1f, 0.2f, 0.3f, 0.2f, 0.1f, 0.1f}};
    for (int c = 0; c < 3; c++) {
        uint64_t rng = 0x9E3779B97F4A7C15ull + (uint64_t)c, qrng = 12345u + (uint64_t)c;
        long count[N] = {0}, kept = 0, draws = 200000;
        float resid[N];
        for (long d = 0; d < draws; d++) {
            sm_token x = sm_sample_probs(qs[c], N, &qrng), y;
            kept += sm_spec_accept(ps[c], qs[c], N, x, &rng, resid, &y);
            REQUIRE(y >= 0 && y < N);
            count[y]++;
        }
        double p[N];
        for (int i = 0; i < N; i++) p[i] = ps[c][i];
        double x2 = chi2(count, p, N, draws);
        /* 5 degrees of freedom: P(chi2 > 25) < 2e-4 */
        CHECKF(x2 < 25.0, "case %d: chi-square %.1f against p", c, x2);
        CHECKF(count[N - 1] == 0 || p[N - 1] > 0, "case %d: a token p excludes was chosen", c);
        /* the acceptance rate is sum_x min(p(x), q(x)) */
        double want = 0;
        for (int i = 0; i < N; i++) want += fmin(ps[c][i], qs[c][i]);
        CHECKF(fabs((double)kept / draws - want) < 0.01, "case %d: accepted %.3f, expected %.3f", c,
               (double)kept / draws, want);
    }
}

static int by_logit_desc(const void *a, const void *b) {
    const double *x = a, *y = b;
    return x[0] < y[0] ? 1 : x[0] > y[0] ? -1 : (x[1] > y[1]) - (x[1] < y[1]);
}

TEST(speculative_sampler_probs_match_chain_definition) {
    enum { N = 50 };
    float logits[N];
    sm_candidate cand[N];
    float probs[N];
    uint64_t r = 7;
    for (int i = 0; i < N; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        logits[i] = (float)((double)(r >> 11) / 9007199254740992.0 * 6.0 - 3.0);
    }
    const sm_sampler_params cases[] = {{0.8f, 40, 0.95f, 0.05f, 1, 0, 0, 0, 0}, {1.0f, 0, 1.0f, 0.0f, 1, 0, 0, 0, 0},
                                       {1.5f, 10, 1.0f, 0.0f, 1, 0, 0, 0, 0},   {0.5f, 0, 0.5f, 0.0f, 1, 0, 0, 0, 0},
                                       {1.0f, 0, 1.0f, 0.3f, 1, 0, 0, 0, 0},    {0.0f, 40, 0.9f, 0.0f, 1, 0, 0, 0, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const sm_sampler_params *sp = &cases[c];
        sm_sampler_probs(logits, N, sp, NULL, cand, probs);
        /* from scratch: sort, cut by k, then p (at temperature 1), then min-p, then the tempered softmax */
        double s[N][2];
        for (int i = 0; i < N; i++) { s[i][0] = logits[i]; s[i][1] = i; }
        qsort(s, N, sizeof s[0], by_logit_desc);
        double want[N] = {0};
        if (sp->temperature <= 0) {
            want[(int)s[0][1]] = 1;
        } else {
            int n = sp->top_k > 0 && sp->top_k < N ? sp->top_k : N;
            double z = 0;
            for (int i = 0; i < n; i++) z += exp(s[i][0] - s[0][0]);
            if (sp->top_p < 1) {
                double cum = 0;
                for (int i = 0; i < n; i++) {
                    cum += exp(s[i][0] - s[0][0]) / z;
                    if (cum >= sp->top_p) { n = i + 1; break; }
                }
            }
            if (sp->min_p > 0) {
                int keep = 1;
                while (keep < n && exp(s[keep][0] - s[0][0]) >= sp->min_p) keep++;
                n = keep;
            }
            double t = 0;
            for (int i = 0; i < n; i++) t += exp((s[i][0] - s[0][0]) / sp->temperature);
            for (int i = 0; i < n; i++) want[(int)s[i][1]] = exp((s[i][0] - s[0][0]) / sp->temperature) / t;
        }
        double worst = 0;
        for (int i = 0; i < N; i++) worst = fmax(worst, fabs(probs[i] - want[i]));
        CHECKF(worst < 1e-5, "case %zu: probabilities differ by %.2e", c, worst);
    }
}

/* With ignore_eos the chain's probabilities are those of the same logits
 * with the end tokens at -inf: on the top-k path (the k best selected from
 * the logits in place, the end tokens among the best here), without top-k,
 * and greedy. */
TEST(speculative_sampler_probs_ignore_eos_as_minus_infinity) {
    enum { N = 50 };
    float logits[N], banned[N], probs[N], want[N];
    sm_candidate cand[N];
    uint8_t attr[N] = {0};
    uint64_t r = 11;
    for (int i = 0; i < N; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        logits[i] = (float)((double)(r >> 11) / 9007199254740992.0 * 4.0 - 2.0);
    }
    logits[3] = 5.0f;    /* end tokens, the two best */
    logits[37] = 4.5f;
    attr[3] = attr[37] = SM_TOKEN_EOG;
    sm_vocab v;
    memset(&v, 0, sizeof v);
    v.n = N;
    v.attr = attr;
    for (int i = 0; i < N; i++) banned[i] = attr[i] ? -INFINITY : logits[i];
    const sm_sampler_params cases[] = {{0.8f, 10, 0.95f, 0.0f, 1, 0, 0, 0, 1}, {1.2f, 2, 1.0f, 0.0f, 1, 0, 0, 0, 1},
                                       {1.0f, 0, 1.0f, 0.0f, 1, 0, 0, 0, 1}, {0.0f, 40, 1.0f, 0.0f, 1, 0, 0, 0, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sm_sampler_params plain = cases[c];
        plain.ignore_eos = 0;
        sm_sampler_probs(logits, N, &cases[c], &v, cand, probs);
        sm_sampler_probs(banned, N, &plain, NULL, cand, want);
        CHECKF(!memcmp(probs, want, sizeof probs) && probs[3] == 0 && probs[37] == 0,
               "case %zu: ignore_eos's probabilities differ from the end tokens' at -inf", c);
    }
}

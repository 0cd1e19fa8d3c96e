/* logprobs.c - the log probabilities a request with "logprobs" gets: each
 * generated token's under the model's distribution (a softmax of the raw
 * logits, as llama.cpp's server reports by default, so sampling settings do
 * not change them) and the likeliest alternatives at its place, kept per
 * job beside the offset of the token's text, so that a stream sends each
 * entry with the chunk that carries its text. */
#include "server.h"

#include <math.h>
#include <stdlib.h>

/* Grows the job's arrays to hold one more entry. */
static int lp_reserve(job *j) {
    if (j->n_lp < j->lp_cap) return 0;
    int cap = j->lp_cap ? 2 * j->lp_cap : 64, k = j->req.p.top_logprobs;
    lp_entry *e = realloc(j->lp, (size_t)cap * sizeof *e);
    if (!e) return -1;
    j->lp = e;
    if (k > 0) {
        sm_token *t = realloc(j->lp_top_tok, (size_t)cap * k * sizeof *t);
        if (!t) return -1;
        j->lp_top_tok = t;
        float *v = realloc(j->lp_top, (size_t)cap * k * sizeof *v);
        if (!v) return -1;
        j->lp_top = v;
    }
    j->lp_cap = cap;
    return 0;
}

int lp_record(job *j, const float *logits, int n_vocab, sm_token tok) {
    if (lp_reserve(j)) return -1;
    int k = j->req.p.top_logprobs < n_vocab ? j->req.p.top_logprobs : n_vocab;
    sm_token *top = j->lp_top_tok + (size_t)j->n_lp * j->req.p.top_logprobs;
    float *topv = j->lp_top + (size_t)j->n_lp * j->req.p.top_logprobs;
    /* log-sum-exp in double; the k largest logits by insertion (ties: the lower id first) */
    float max = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > max) max = logits[i];
    double sum = 0;
    int n = 0;
    for (int i = 0; i < n_vocab; i++) {
        float l = logits[i];
        sum += exp((double)l - max);
        if (k == 0 || (n == k && !(l > logits[top[k - 1]]))) continue;
        int at = n < k ? n++ : k - 1;
        while (at > 0 && l > logits[top[at - 1]]) {
            top[at] = top[at - 1];
            at--;
        }
        top[at] = i;
    }
    double lse = max + log(sum);
    for (int i = 0; i < k; i++) topv[i] = (float)(logits[top[i]] - lse);
    for (int i = k; i < j->req.p.top_logprobs; i++) top[i] = -1;   /* a vocabulary smaller than asked */
    j->lp[j->n_lp++] = (lp_entry){tok, (float)(logits[tok] - lse), j->gen_bytes};
    return 0;
}

int lp_ready(const job *j) {
    if (j->state == JOB_DONE) return j->n_lp;
    int n = j->lp_sent;
    while (n < j->n_lp && j->lp[n].offset < j->text_total) n++;
    return n;
}

void lp_trim(job *j) {
    while (j->n_lp > j->lp_sent && j->lp[j->n_lp - 1].offset >= j->text_total) j->n_lp--;
}

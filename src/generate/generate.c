/* generate.c - the generation loop: prompt in, tokens sampled and streamed
 * out as whole UTF-8 characters, with stop strings held back until they can
 * no longer match, until an end-of-generation token. The prompt is
 * evaluated after what the session holds, or (reuse_prefix) only where it
 * differs from it; with context_shift a full context is shifted instead of
 * ending the generation. After the prompt is evaluated nothing here
 * allocates. */
#include "model/session.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/error.h"
#include "text/eog.h"
#include "speculative.h"
#include "text/utf8.h"

#include <string.h>

#define MAX_STOP_BYTES 1024
/* tokens a draft proposes per round unless told: a small draft agrees with
 * the model on about 50-70 % of its proposals, and past the fourth the
 * check pays for rows it then throws away (the 110M/15M KJV pair of
 * bench/speculative_pair.sh, F32 draft, two prompts on each of three
 * hosts: 1.45-1.79x at 4, 1.14-1.70x at 8, 4 ahead or level every time;
 * docs/BENCHMARKS.md) */
#define SM_DRAFT_N_DEFAULT 4

sm_generate_params sm_generate_default_params(void) {
    sm_generate_params p;
    memset(&p, 0, sizeof p);
    p.n_predict = 128;
    p.add_bos = -1;
    p.sampler = sm_sampler_default_params();
    return p;
}

typedef struct streamer {
    sm_session *s;
    const sm_generate_params *gp;
    sm_utf8_stream utf8;
    size_t held;           /* bytes in s->gen.hold_buf not yet emitted */
    int strip_space;       /* drop the dummy-prefix space of the first text */
    int stop_matched;
} streamer;

/* Length of the longest suffix of buf that is a proper prefix of a stop
 * string: those bytes must wait for the next token. */
static size_t partial_stop(const streamer *st, const char *buf, size_t n) {
    size_t best = 0;
    for (int i = 0; i < st->gp->n_stop; i++) {
        const char *stop = st->gp->stop[i];
        size_t sl = strlen(stop);
        for (size_t k = sl - 1 < n ? sl - 1 : n; k > best; k--)
            if (memcmp(buf + n - k, stop, k) == 0) { best = k; break; }
    }
    return best;
}

/* Adds a token's piece; returns how many bytes at the front of hold_buf may
 * be emitted now. */
static size_t stream_piece(streamer *st, const char *piece, size_t len) {
    sm_session *s = st->s;
    size_t w = sm_utf8_stream_feed(&st->utf8, piece, len, s->gen.text_buf);
    const char *text = s->gen.text_buf;
    if (st->strip_space && w > 0) {
        if (text[0] == ' ') { text++; w--; }
        st->strip_space = 0;
    }
    memcpy(s->gen.hold_buf + st->held, text, w);
    st->held += w;
    if (st->gp->n_stop == 0) return st->held;
    for (int i = 0; i < st->gp->n_stop; i++) {
        const char *stop = st->gp->stop[i];
        size_t sl = strlen(stop);
        for (size_t at = 0; at + sl <= st->held; at++)
            if (memcmp(s->gen.hold_buf + at, stop, sl) == 0) {
                st->stop_matched = 1;
                st->held = at;
                return at;
            }
    }
    return st->held - partial_stop(st, s->gen.hold_buf, st->held);
}

/* A special token prints nothing, so a stop string it spells (a chat
 * template's "<|im_end|>" as one token) is matched on its vocabulary text. */
static int special_stop(const sm_session *s, const sm_generate_params *gp, sm_token tok) {
    const sm_vocab *v = &s->model->vocab;
    if (gp->n_stop == 0 || v->piece_len[tok] != 0 || !sm_vocab_is_special(v, tok)) return 0;
    for (int i = 0; i < gp->n_stop; i++)
        if (strlen(gp->stop[i]) == v->text_len[tok] && memcmp(gp->stop[i], v->block + v->text_off[tok],
                                                                v->text_len[tok]) == 0)
            return 1;
    return 0;
}

/* The context shift of context_shift: discards half of the tokens after
 * the first n_keep (llama.cpp's rule). */
static sm_status shift_half(sm_session *s, const sm_generate_params *gp, sm_generate_stats *stats, sm_error *err) {
    int keep = gp->n_keep < s->n_past ? gp->n_keep : s->n_past;
    int discard = (s->n_past - keep) / 2;
    if (discard < 1)
        return sm_fail(err, SM_ERR_CONTEXT_FULL, "the context (%d tokens) is full and the %d kept at its start "
                       "leave nothing to shift out", s->n_ctx, keep);
    sm_status st = sm_session_shift(s, keep, discard, err);
    if (st == SM_OK) stats->n_discarded += discard;
    return st;
}

static int deliver(streamer *st, sm_token tok, size_t n_out, sm_token_callback cb, void *user) {
    sm_session *s = st->s;
    int stop = cb ? cb(user, tok, s->gen.hold_buf, n_out) : 0;
    memmove(s->gen.hold_buf, s->gen.hold_buf + n_out, st->held - n_out);
    st->held -= n_out;
    return stop;
}

/* Streams one chosen token: returns non-zero when generation ends with it
 * (the reason in stats->stopped_by; an end-of-generation token is not
 * streamed). */
static int emit(sm_session *s, streamer *str, const sm_generate_params *gp, sm_token_callback cb, void *user,
                int *n_gen, uint64_t t0, sm_generate_stats *stats, sm_token tok) {
    const sm_model *m = s->model;
    sm_prof *P = s->prof;
    if ((!gp->ignore_eos || gp->grammar) && sm_vocab_is_eog(&m->vocab, tok)) { stats->stopped_by = 1; return 1; }
    (*n_gen)++;
    SM_PROF_BEGIN(P, SM_SC_DECODE, -1);
    const char *piece;
    int pl = sm_vocab_piece(&m->vocab, tok, &piece);
    size_t n_out = stream_piece(str, piece, (size_t)pl);
    if (!str->stop_matched && special_stop(s, gp, tok)) {
        str->stop_matched = 1;
        n_out = str->held;   /* what was held for a stop string is text after all */
    }
    if (*n_gen == 1) stats->ttft_seconds = (double)(sm_now_ns() - t0) * 1e-9;
    int cb_stop = deliver(str, tok, n_out, cb, user);
    SM_PROF_END(P, 0, 0);
    if (cb_stop) { stats->stopped_by = 3; return 1; }
    if (str->stop_matched) { stats->stopped_by = 2; return 1; }
    if (gp->n_predict >= 0 && *n_gen >= gp->n_predict) { stats->stopped_by = 0; return 1; }
    return 0;
}

/* Evaluates a streamed token into the session, shifting a full context
 * when context_shift allows; non-zero when generation ends there. */
static int eval_generated(sm_session *s, const sm_generate_params *gp, sm_generate_stats *stats, sm_token tok,
                          sm_status *st, sm_error *err) {
    if (s->n_past >= s->n_ctx) {
        if (!gp->context_shift) { stats->stopped_by = 4; return 1; }
        if ((*st = shift_half(s, gp, stats, err))) return 1;
    }
    *st = sm_session_eval(s, &tok, 1, err);
    if (*st == SM_OK) stats->n_gen_kept++;
    return *st != SM_OK;
}

/* Samples, streams and (unless it is the last) evaluates one token; returns
 * non-zero when generation ends, with the reason in stats->stopped_by. */
static int step(sm_session *s, streamer *str, const sm_generate_params *gp, sm_token_callback cb, void *user,
                int *n_gen, uint64_t t0, sm_generate_stats *stats, sm_status *st, sm_error *err) {
    const sm_model *m = s->model;
    sm_prof *P = s->prof;
    sm_token tok;
    if (gp->grammar && sm_grammar_matcher_is_complete(gp->grammar) && !sm_grammar_matcher_can_continue(gp->grammar)) {
        stats->stopped_by = 5;   /* the output is complete: nothing may follow */
        return 1;
    }
    SM_PROF_BEGIN(P, SM_SC_SAMPLE, -1);
    if (gp->grammar) *st = sm_session_sample_grammar(s, &gp->sampler, gp->grammar, gp->grammar_vocab, &tok, err);
    else *st = sm_session_sample(s, &gp->sampler, &tok, err);
    SM_PROF_END(P, 4ull * m->hp.n_vocab, (uint64_t)m->hp.n_vocab * sizeof(float));
    if (*st) return 1;
    if (emit(s, str, gp, cb, user, n_gen, t0, stats, tok)) return 1;
    return eval_generated(s, gp, stats, tok, st, err);
}

/* One round of speculative decoding (gp->draft): the next token *c (chosen
 * by the target's sampler or the last round) and the draft's proposals the
 * target keeps are streamed; *c becomes the token after them. When the
 * context has no room for a round, it falls back to step's tail (and the
 * caller to plain steps). As in step, every streamed token but one that
 * ends the generation is evaluated by the target. */
static int spec_step(sm_session *s, sm_spec *sp, streamer *str, const sm_generate_params *gp, sm_token_callback cb,
                     void *user, int *n_gen, uint64_t t0, sm_generate_stats *stats, sm_token *c, int *spec_on,
                     sm_status *st, sm_error *err) {
    int n = sp->n_draft, room = s->n_ctx - s->n_past - 1;
    if (gp->n_predict >= 0 && gp->n_predict - *n_gen - 1 < n) n = gp->n_predict - *n_gen - 1;
    if (n > room) n = room;
    if (n < 1) {
        /* c alone, as a plain step would, then plain steps */
        *spec_on = 0;
        if (emit(s, str, gp, cb, user, n_gen, t0, stats, *c)) return 1;
        return eval_generated(s, gp, stats, *c, st, err);
    }
    int base = s->n_past, kept = 0, drafted = 0;
    sm_token next;
    sm_prof *P = s->prof;
    SM_PROF_BEGIN(P, SM_SC_SAMPLE, -1);
    *st = sm_spec_round(sp, s, &gp->sampler, *c, n, gp->draft_p_min, &drafted, &kept, &next, err);
    SM_PROF_END(P, 0, 0);
    if (*st) return 1;
    stats->n_drafted += drafted;
    stats->n_draft_accepted += kept;
    /* the target now holds c and the kept proposals: stream them */
    for (int i = 0; i <= kept; i++) {
        if (emit(s, str, gp, cb, user, n_gen, t0, stats, s->history[base + i])) {
            /* ended at this token: the target keeps only the ones before it */
            *st = sm_session_truncate(s, base + i, err);
            stats->n_gen_kept += i;
            return 1;
        }
    }
    stats->n_gen_kept += kept + 1;
    *c = next;
    return 0;
}

static sm_status generate(sm_session *s, const char *text, size_t tlen, int add_bos, const sm_generate_params *gpp,
                          sm_token_callback cb, void *user, sm_generate_stats *stats, sm_error *err);

sm_status sm_generate(sm_session *s, const char *prompt, const sm_generate_params *gp_in, sm_token_callback cb,
                      void *user, sm_generate_stats *stats, sm_error *err) {
    sm_generate_stats dummy;
    if (!stats) stats = &dummy;
    memset(stats, 0, sizeof *stats);
    if (!s) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_generate: session is NULL");
    sm_generate_params gp = gp_in ? *gp_in : sm_generate_default_params();
    if (gp.n_stop < 0 || gp.n_stop > 16 || (gp.n_stop > 0 && !gp.stop))
        return sm_fail(err, SM_ERR_INVALID_ARG, "between 0 and 16 stop strings are allowed");
    size_t stop_total = 0;
    for (int i = 0; i < gp.n_stop; i++) {
        size_t sl = gp.stop[i] ? strlen(gp.stop[i]) : 0;
        if (sl == 0) return sm_fail(err, SM_ERR_INVALID_ARG, "stop string %d is empty", i + 1);
        if (sm_utf8_validate(gp.stop[i], sl) != sl)
            return sm_fail(err, SM_ERR_UTF8, "stop string %d is not valid UTF-8", i + 1);
        stop_total += sl;
    }
    if (stop_total > MAX_STOP_BYTES)
        return sm_fail(err, SM_ERR_INVALID_ARG, "stop strings are %zu bytes in all; at most %d are allowed",
                       stop_total, MAX_STOP_BYTES);
    if (gp.draft && (gp.grammar || (gp.sampler.repeat_penalty != 1.0f && gp.sampler.repeat_last_n != 0) ||
                     gp.sampler.presence_penalty != 0.0f || gp.sampler.frequency_penalty != 0.0f))
        return sm_fail(err, SM_ERR_UNSUPPORTED, "speculative decoding (a draft model) does not combine with %s yet",
                       gp.grammar ? "a grammar" : "a repetition, presence or frequency penalty");
    if (gp.draft && (gp.n_draft < 0 || gp.n_draft > 64))
        return sm_fail(err, SM_ERR_INVALID_ARG, "n_draft %d is out of range (1 to 64, or 0 for %d)", gp.n_draft,
                       SM_DRAFT_N_DEFAULT);
    if (gp.draft && !(gp.draft_p_min >= 0.0f && gp.draft_p_min <= 1.0f))
        return sm_fail(err, SM_ERR_INVALID_ARG, "draft_p_min %g is out of range (0 to 1)", (double)gp.draft_p_min);
    if (gp.n_keep < 0 || gp.n_keep >= s->n_ctx)
        return sm_fail(err, SM_ERR_INVALID_ARG, "n_keep %d is out of range (0 to %d, below the context size)",
                       gp.n_keep, s->n_ctx - 1);
    const sm_model *m = s->model;
    const char *text = prompt ? prompt : "";
    size_t tlen = strlen(text);
    /* a prompt from position 0 starts as the model's prompts start */
    int add_bos = gp.add_bos < 0 ? ((s->n_past == 0 || gp.reuse_prefix) && m->vocab.add_bos) : gp.add_bos;
    /* no prompt at the start of a session: begin from the start token, also
     * for vocabularies (GPT-2's) that do not put one before a prompt */
    if (tlen == 0 && !gp.prompt_tokens && (s->n_past == 0 || gp.reuse_prefix) && gp.add_bos < 0 && m->vocab.bos >= 0)
        add_bos = 1;

    sm_prof *P = s->prof;
    SM_PROF_BEGIN(P, SM_SC_GENERATE, -1);
    sm_status st = generate(s, text, tlen, add_bos, &gp, cb, user, stats, err);
    SM_PROF_END(P, 0, 0);
    return st;
}

/* The prompt as tokens in a new buffer (*toks, NULL when empty). */
static sm_status prompt_tokens(sm_session *s, const sm_generate_params *gp, const char *text, size_t tlen, int add_bos,
                               sm_token **toks, size_t *n, sm_error *err) {
    *toks = NULL;
    *n = 0;
    if (gp->prompt_tokens) {
        /* the caller tokenized already: copy, so the checks below apply */
        if (gp->n_prompt_tokens <= 0) return sm_fail(err, SM_ERR_INVALID_ARG, "the prompt has no tokens");
        if (!(*toks = sm_alloc((size_t)gp->n_prompt_tokens * sizeof **toks)))
            return sm_fail(err, SM_ERR_NOMEM, "out of memory");
        memcpy(*toks, gp->prompt_tokens, (size_t)gp->n_prompt_tokens * sizeof **toks);
        *n = (size_t)gp->n_prompt_tokens;
        return SM_OK;
    }
    unsigned flags = (add_bos ? SM_TOKENIZE_ADD_BOS : 0) | (gp->parse_special ? SM_TOKENIZE_PARSE_SPECIAL : 0);
    size_t need = 0;
    sm_status st = sm_tokenize_ex(s->model, text, tlen, flags, NULL, 0, &need, err);
    if (st != SM_OK && st != SM_ERR_BUFFER_TOO_SMALL) return st;
    if (need == 0 && tlen > 0)
        return sm_fail(err, SM_ERR_INVALID_ARG, "the prompt encodes to no tokens with this model's vocabulary");
    if (need == 0) return SM_OK;
    /* a prompt that cannot fit is refused before it is tokenized */
    if (need > (size_t)s->n_ctx && !gp->context_shift)
        return sm_fail(err, SM_ERR_CONTEXT_FULL, "the prompt is %zu tokens but the context has room for %d; raise -c",
                       need, s->n_ctx - (gp->reuse_prefix ? 0 : s->n_past));
    if (!(*toks = sm_alloc(need * sizeof **toks))) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    st = sm_tokenize_ex(s->model, text, tlen, flags, *toks, need, n, err);
    return st;
}

/* An empty prompt where one must start the session: says why no start token stands in for it. */
static sm_status empty_prompt(const sm_session *s, sm_error *err) {
    if (s->model->vocab.bos < 0)
        return sm_fail(err, SM_ERR_INVALID_ARG, "the prompt is empty and this model's vocabulary has no start (BOS) "
                       "token to begin from: give a prompt");
    return sm_fail(err, SM_ERR_INVALID_ARG, "the prompt is empty and no start token is added");
}

/* Brings the session to the prompt: keeps what it can (everything, or with
 * reuse_prefix the common prefix), evaluates the rest, shifting the context
 * when it is full and context_shift allows; at least one token is evaluated
 * unless the logits are already those after the last token. */
static sm_status feed_prompt(sm_session *s, const sm_generate_params *gp, const sm_token *toks, size_t n,
                             sm_generate_stats *stats, sm_error *err) {
    size_t keep = (size_t)s->n_past;
    if (gp->reuse_prefix) {
        if (n == 0) return empty_prompt(s, err);
        keep = sm_session_reuse_plan(s, toks, n);
        toks += keep;
        n -= keep;
    } else if (n == 0 && s->n_past == 0) {
        return empty_prompt(s, err);
    }
    sm_token last;
    if (n == 0 && !s->logits_valid) {
        /* continuing a session whose logits are stale: evaluate its last token again */
        keep = (size_t)s->n_past - 1;
        last = s->history[keep];
        toks = &last;
        n = 1;
    }
    if (!gp->context_shift && n > (size_t)s->n_ctx - keep)
        return sm_fail(err, SM_ERR_CONTEXT_FULL,
                       "the prompt is %zu tokens but the context has room for %zu; raise -c", n,
                       (size_t)s->n_ctx - keep);
    int n_vocab = s->model->hp.n_vocab;
    for (size_t i = 0; i < n; i++)   /* checked before the session is changed */
        if (toks[i] < 0 || toks[i] >= n_vocab)
            return sm_fail(err, SM_ERR_TOKEN_RANGE, "token id %d at index %zu is outside the vocabulary (0 to %d)",
                           toks[i], i, n_vocab - 1);
    sm_status st = sm_session_truncate(s, (int)keep, err);
    stats->n_reused = (int)keep;
    while (st == SM_OK && n > 0) {
        size_t room = (size_t)(s->n_ctx - s->n_past);
        if (room == 0) {
            if ((st = shift_half(s, gp, stats, err))) break;
            continue;
        }
        size_t b = n < room ? n : room;
        st = sm_session_eval(s, toks, b, err);
        if (st == SM_OK) stats->n_prompt += (int)b;
        toks += b;
        n -= b;
    }
    return st;
}

static sm_status generate(sm_session *s, const char *text, size_t tlen, int add_bos, const sm_generate_params *gpp,
                          sm_token_callback cb, void *user, sm_generate_stats *stats, sm_error *err) {
    const sm_model *m = s->model;
    sm_generate_params gp = *gpp;
    gp.sampler.ignore_eos |= gp.ignore_eos;
    sm_prof *P = s->prof;
    uint64_t t0 = sm_now_ns();
    int was_empty = s->n_past == 0;
    sm_token *toks = NULL;
    size_t n_toks = 0;
    SM_PROF_BEGIN(P, SM_SC_ENCODE, -1);
    sm_status st = prompt_tokens(s, &gp, text, tlen, add_bos, &toks, &n_toks, err);
    SM_PROF_END(P, 0, 0);
    if (!st) {
        SM_PROF_BEGIN(P, SM_SC_PREFILL, -1);
        st = feed_prompt(s, &gp, toks, n_toks, stats, err);
        SM_PROF_END(P, 0, 0);
    }
    sm_free(toks);
    if (st) return st;
    uint64_t t1 = sm_now_ns();
    stats->prompt_seconds = (double)(t1 - t0) * 1e-9;

    streamer str = {0};
    str.s = s;
    str.gp = &gp;
    /* generating from the start token alone: the first piece's dummy-prefix space is not text */
    str.strip_space = was_empty && tlen == 0 && !gp.prompt_tokens && m->vocab.add_space_prefix;
    int n_gen = 0, stopped = 0;
    st = SM_OK;
    sm_spec spec = {0};   /* freed below whether it was used or not */
    int spec_on = 0;
    sm_token c = -1;
    if (gp.draft && gp.n_predict != 0) {
        /* speculative decoding: the first token from the target's logits, then rounds */
        if ((st = sm_spec_init(&spec, s, gp.draft, gp.n_draft > 0 ? gp.n_draft : SM_DRAFT_N_DEFAULT, err)) ||
            (st = sm_session_sample(s, &gp.sampler, &c, err))) {
            sm_spec_free(&spec);
            return st;
        }
        spec_on = 1;
    }
    while (!stopped && !(gp.n_predict >= 0 && n_gen >= gp.n_predict)) {
        /* one generated token: sample it, stream its text, run it */
        SM_PROF_BEGIN(P, SM_SC_TOKEN, -1);
        if (spec_on) stopped = spec_step(s, &spec, &str, &gp, cb, user, &n_gen, t0, stats, &c, &spec_on, &st, err);
        else stopped = step(s, &str, &gp, cb, user, &n_gen, t0, stats, &st, err);
        SM_PROF_END(P, 0, 0);
    }
    sm_spec_free(&spec);
    if (st) return st;
    if (!stopped) stats->stopped_by = 0;  /* -n 0 */
    /* Whatever was held back for a stop string that never came is text. */
    if (!str.stop_matched && stats->stopped_by != 3) {
        size_t w = sm_utf8_stream_flush(&str.utf8, s->gen.hold_buf + str.held);
        str.held += w;
        if (str.held > 0) deliver(&str, -1, str.held, cb, user);
    }
    stats->n_generated = n_gen;
    stats->gen_seconds = (double)(sm_now_ns() - t1) * 1e-9;
    return SM_OK;
}

/* train.c - the training loop: data and tokenizer, learning-rate schedule,
 * gradient accumulation and clipping, evaluation, checkpoints that resume
 * exactly, and the trained model written as GGUF. It also trains LoRA
 * adapters on a frozen base (written in llama.cpp's adapter format), on
 * examples with a loss mask (chat fine-tuning), and shares every batch among
 * data-parallel processes through an all-reduce callback.
 *
 * A checkpoint is itself a GGUF model (so `smallmind run` can load it)
 * with the AdamW moments as extra tensors (opt.m.*, opt.v.*) and the
 * training state in smallmind.train.* metadata. Like every file SmallMind
 * writes, it is written to a temporary file, synced and renamed, so a
 * process killed at any moment leaves the previous checkpoint whole. */
#include "trainer.h"
#include "checkpoint.h"
#include "train_profile.h"
#include "model/steps.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/mapfile.h"
#include "core/outfile.h"
#include "core/rng.h"
#include "io/gguf_write.h"
#include "model/model.h"
#include "text/bpe.h"
#include "text/unicode.h"
#include "text/utf8.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sm_train_params sm_train_default_params(void) {
    sm_train_params p;
    memset(&p, 0, sizeof p);
    p.val_split = 0.1f;
    p.arch = "gpt2";
    p.dim = 128;
    p.layers = 4;
    p.heads = 4;
    p.ffn = 0;          /* 4 x dim */
    p.ctx = 256;
    p.tokenizer = "char";
    p.batch = 8;
    p.seq = 128;
    p.steps = 1000;
    p.accum = 1;
    p.lr = 1e-3f;
    p.min_lr = 1e-4f;
    p.weight_decay = 0.1f;
    p.grad_clip = 1.0f;
    p.warmup = 50;
    p.seed = 1337;
    p.eval_every = 100;
    p.checkpoint_every = 0;
    return p;
}

/* Everything one run holds; freed by run_free. */
typedef struct run {
    sm_train_params p;
    sm_trainer *t;
    sm_model *tok_model;         /* the tokenizer's source: a checkpoint, --init or FROM.gguf */
    sm_vocab char_vocab;         /* or a vocabulary built from the data: its characters, */
    int has_char_vocab;          /* or (is_bpe) byte-level BPE learned from it */
    int is_bpe;
    char **char_tokens;          /* its token texts, as written to GGUF */
    int n_char_tokens;
    char **merges;               /* BPE merges, "left right" */
    int n_merges;
    int32_t *train, *val;        /* token streams */
    size_t n_train, n_val;
    sm_train_examples ex, val_ex; /* or examples (chat fine-tuning): views of the caller's */
    int use_examples;
    double comm_seconds;         /* in allreduce since the last step's report */
    uint64_t data_pos, rng;
    uint64_t data_hash;          /* of the training stream, stored in checkpoints */
    char *ckpt_path, *svg_path;  /* where checkpoints and the loss curve go */
    void (*notice)(void *, const char *);
    void *user;
    float *curve;                /* loss per step, for the SVG */
    float *val_curve;
} run;

static void run_free(run *r) {
    sm_trainer_free(r->t);
    sm_model_free(r->tok_model);
    if (r->has_char_vocab) sm_vocab_free(&r->char_vocab);
    sm_bpe_strings_free(r->char_tokens, r->n_char_tokens);
    sm_bpe_strings_free(r->merges, r->n_merges);
    sm_free(r->train);
    sm_free(r->val);
    sm_free(r->curve);
    sm_free(r->val_curve);
    sm_free(r->ckpt_path);
    sm_free(r->svg_path);
}

/* Tells the caller something that is not an error (through params.notice). */
static void notify(const run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void notify(const run *r, const char *fmt, ...) {
    if (!r->notice) return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->notice(r->user, msg);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* A vocabulary of <unk>, <s>, </s>, the 256 byte-fallback tokens <0x00>..
 * <0xFF> (for characters the text lacks; llama.cpp expects them) and every
 * character of the text in code point order; spaces are written as U+2581,
 * as SentencePiece does. */
static int char_token_type(int i) {
    return i == 0 ? SM_TOK_UNKNOWN : i < 3 ? SM_TOK_CONTROL : i < 259 ? SM_TOK_BYTE : SM_TOK_NORMAL;
}

static sm_status build_char_vocab(run *r, const char *text, size_t len, sm_error *err) {
    uint32_t *cps = sm_alloc((len + 1) * sizeof *cps);
    if (!cps) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    size_t n = sm_utf8_to_cps(text, len, cps), u = 0;
    qsort(cps, n, sizeof *cps, cmp_u32);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || cps[i] != cps[i - 1]) cps[u++] = cps[i];
    if (u > 65536) { sm_free(cps); return sm_fail(err, SM_ERR_INVALID_ARG, "the text has %zu distinct characters; too many for a character vocabulary", u); }
    r->n_char_tokens = (int)u + 3 + 256;
    r->char_tokens = sm_calloc((size_t)r->n_char_tokens, sizeof *r->char_tokens);
    sm_vocab_entry *e = sm_calloc((size_t)r->n_char_tokens, sizeof *e);
    if (!r->char_tokens || !e) { sm_free(cps); sm_free(e); return sm_fail(err, SM_ERR_NOMEM, "out of memory"); }
    const char *fixed[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < r->n_char_tokens; i++) {
        char buf[8];
        uint32_t cp = i >= 259 ? cps[i - 259] : 0;
        if (i < 3) snprintf(buf, sizeof buf, "%s", fixed[i]);
        else if (i < 259) snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
        else if (cp == ' ') snprintf(buf, sizeof buf, "\xe2\x96\x81");
        else buf[sm_cp_to_utf8(cp, buf)] = '\0';
        r->char_tokens[i] = sm_alloc(strlen(buf) + 1);
        if (!r->char_tokens[i]) { sm_free(cps); sm_free(e); return sm_fail(err, SM_ERR_NOMEM, "out of memory"); }
        strcpy(r->char_tokens[i], buf);
        e[i] = (sm_vocab_entry){r->char_tokens[i], (uint32_t)strlen(buf), 0.0f, char_token_type(i)};
    }
    sm_free(cps);
    sm_status st = sm_vocab_build(&r->char_vocab, e, r->n_char_tokens, SM_VOCAB_SPM_MARKED, err);
    sm_free(e);
    if (st) return st;
    r->has_char_vocab = 1;
    r->char_vocab.unk = 0;
    r->char_vocab.bos = 1;
    r->char_vocab.eos = 2;
    r->char_vocab.add_space_prefix = 0;
    return SM_OK;
}

/* A byte-level BPE vocabulary of n tokens learned from the text. */
static sm_status build_bpe_vocab(run *r, const char *text, size_t len, int n, sm_error *err) {
    sm_status st = sm_bpe_learn(text, len, n, &r->char_tokens, &r->n_char_tokens, &r->merges, &r->n_merges, err);
    if (st) return st;
    int nt = r->n_char_tokens;
    sm_vocab_entry *e = sm_calloc((size_t)nt, sizeof *e);
    sm_text_span *spans = sm_calloc((size_t)(r->n_merges ? r->n_merges : 1), sizeof *spans);
    if (!e || !spans) { sm_free(e); sm_free(spans); return sm_fail(err, SM_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < nt; i++)
        e[i] = (sm_vocab_entry){r->char_tokens[i], (uint32_t)strlen(r->char_tokens[i]), 0.0f,
                                i == nt - 1 ? SM_TOK_CONTROL : SM_TOK_NORMAL};
    for (int i = 0; i < r->n_merges; i++) spans[i] = (sm_text_span){r->merges[i], strlen(r->merges[i])};
    st = sm_vocab_build(&r->char_vocab, e, nt, SM_VOCAB_BPE, err);
    if (!st) {
        r->has_char_vocab = 1;
        r->is_bpe = 1;
        int fallback;
        st = sm_bpe_attach(&r->char_vocab, "gpt-2", 5, spans, (size_t)r->n_merges, &fallback, err);
        r->char_vocab.bos = r->char_vocab.eos = nt - 1;
        r->char_vocab.add_bos = 1;
    }
    sm_free(e);
    sm_free(spans);
    return st;
}

static const sm_vocab *vocab_of(const run *r) { return r->has_char_vocab ? &r->char_vocab : &r->tok_model->vocab; }

static sm_status read_tokens(const run *r, const char *path, int32_t **out, size_t *n, sm_error *err) {
    sm_mapped_file f;
    sm_status st = sm_map_file(path, &f, err);
    if (st) return st;
    size_t need = 0;
    st = sm_vocab_encode(vocab_of(r), (const char *)f.data, f.size, 0, NULL, 0, &need, err);
    if (st == SM_ERR_BUFFER_TOO_SMALL || st == SM_OK) {
        *out = sm_alloc((need ? need : 1) * sizeof **out);
        st = *out ? sm_vocab_encode(vocab_of(r), (const char *)f.data, f.size, 0, *out, need, n, err)
                  : sm_fail(err, SM_ERR_NOMEM, "out of memory");
    }
    if (st) sm_error_prefix(err, "%s", path);
    sm_unmap_file(&f);
    return st;
}

/* Sequence b of a batch: the start token, then T - 1 tokens of the stream;
 * the targets are the same tokens shifted by one. */
static void make_batch(const run *r, const int32_t *stream, size_t n, uint64_t *pos, int32_t *x, int32_t *y) {
    int B = r->p.batch, T = r->p.seq;   /* the global batch; each process takes its share */
    for (int b = 0; b < B; b++) {
        /* written so that no position, however large, can overflow */
        if (*pos > n || n - *pos < (uint64_t)T) *pos = 0;
        const int32_t *s = stream + *pos;
        x[(size_t)b * T] = vocab_of(r)->bos >= 0 ? vocab_of(r)->bos : s[0];
        for (int i = 1; i < T; i++) x[(size_t)b * T + i] = s[i - 1];
        for (int i = 0; i < T; i++) y[(size_t)b * T + i] = s[i];
        *pos += (uint64_t)T;
    }
}

/* A batch of examples (see sm_train_examples): each row is filled with
 * whole examples from *pos on (an example longer than the row is cut), the
 * rest padded; inputs are a row's tokens, targets the same shifted by one,
 * weighted by the targets' mask. Returns how many targets count. */
static float make_batch_examples(const run *r, const sm_train_examples *e, uint64_t *pos, int B, int T, int32_t *x,
                                 int32_t *y, float *wt) {
    int32_t pad = vocab_of(r)->eos >= 0 ? vocab_of(r)->eos : 0;
    float count = 0;
    for (int b = 0; b < B; b++) {
        int32_t *xr = x + (size_t)b * T, *yr = y + (size_t)b * T;
        float *wr = wt + (size_t)b * T;
        int fill = 0;   /* tokens of the row placed: positions 0..T (the last one only as a target) */
        for (int tries = 0; fill < T && tries < (int)(e->n < 1000000 ? e->n : 1000000); tries++) {
            size_t i = (size_t)(*pos % e->n), len = e->offsets[i + 1] - e->offsets[i];
            if (fill > 0 && fill + len > (size_t)T + 1) break;
            (*pos)++;
            size_t take = len < (size_t)(T + 1 - fill) ? len : (size_t)(T + 1 - fill);
            for (size_t k = 0; k < take; k++, fill++) {
                const sm_token tok = e->tokens[e->offsets[i] + k];
                float m = e->mask[e->offsets[i] + k] ? 1.0f : 0.0f;
                if (fill < T) xr[fill] = tok;
                if (fill > 0) { yr[fill - 1] = tok; wr[fill - 1] = m; }
            }
        }
        for (; fill <= T; fill++) {
            if (fill < T) xr[fill] = pad;
            if (fill > 0) { yr[fill - 1] = pad; wr[fill - 1] = 0.0f; }
        }
        for (int k = 0; k < T; k++) count += wr[k];
    }
    return count;
}

/* The next global batch: text or examples; weights (wt) and the loss's
 * denominator for examples, NULL and B * T for text. */
static void next_batch(run *r, const int32_t *stream, size_t n, const sm_train_examples *e, uint64_t *pos, int32_t *x,
                       int32_t *y, float *wt, const float **weights, float *denom) {
    int B = r->p.batch, T = r->p.seq;
    if (e) {
        float count = make_batch_examples(r, e, pos, B, T, x, y, wt);
        *weights = wt;
        *denom = count > 0 ? count : 1.0f;
    } else {
        make_batch(r, stream, n, pos, x, y);
        *weights = NULL;
        *denom = (float)B * T;
    }
}

/* This process's share of a global batch: forward, loss (its part of the
 * batch's mean) and, if asked, backward. */
static double run_share(run *r, const int32_t *x, const int32_t *y, const float *weights, float denom, int backward) {
    size_t off = (size_t)r->p.rank * r->t->B * r->t->T;
    sm_trainer_forward(r->t, x + off);
    float loss = sm_trainer_loss_weighted(r->t, y + off, weights ? weights + off : NULL, denom);
    if (backward) sm_trainer_backward(r->t, x + off);
    return loss;
}

/* Sums across the processes (nothing alone), timing it. */
static sm_status allreduce(run *r, float *data, size_t n, sm_error *err) {
    if (r->p.n_ranks <= 1) return SM_OK;
    uint64_t t0 = sm_now_ns();
    int rc = r->p.allreduce(r->p.comm_user, data, n);
    r->comm_seconds += (double)(sm_now_ns() - t0) * 1e-9;
    return rc ? sm_fail(err, SM_ERR_IO, "the all-reduce across %d processes failed (%d)", r->p.n_ranks, rc) : SM_OK;
}

static float lr_at(const sm_train_params *p, int step) {
    if (step < p->warmup) return p->lr * (float)(step + 1) / (float)p->warmup;
    if (p->steps <= p->warmup) return p->lr;
    float progress = (float)(step - p->warmup) / (float)(p->steps - p->warmup);
    if (progress > 1) progress = 1;
    return p->min_lr + 0.5f * (p->lr - p->min_lr) * (1.0f + cosf(3.14159265f * progress));
}

/* --------------------------------------------------------- GGUF files */

static void write_model_meta(sm_gguf_writer *w, const run *r) {
    const sm_hparams *hp = &r->t->cfg.hp;
    sm_gguf_put_str(w, "general.architecture", sm_arch_get(hp->arch)->name);
    sm_gguf_put_str(w, "general.name", "smallmind-trained");
    sm_gguf_put_u32(w, "general.alignment", 32);
    sm_gguf_put_u32(w, "general.file_type", 0);
    sm_arch_write_hparams(w, hp);
    if (r->is_bpe) {
        int n = r->n_char_tokens;
        int32_t *types = sm_alloc((size_t)n * sizeof *types);
        for (int i = 0; i < n; i++) types[i] = i == n - 1 ? SM_TOK_CONTROL : SM_TOK_NORMAL;
        sm_gguf_put_str(w, "tokenizer.ggml.model", "gpt2");
        sm_gguf_put_str(w, "tokenizer.ggml.pre", "gpt-2");
        sm_gguf_put_str_array(w, "tokenizer.ggml.tokens", (const char *const *)r->char_tokens, (size_t)n);
        sm_gguf_put_i32_array(w, "tokenizer.ggml.token_type", types, (size_t)n);
        sm_gguf_put_str_array(w, "tokenizer.ggml.merges", (const char *const *)r->merges, (size_t)r->n_merges);
        sm_gguf_put_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)(n - 1));
        sm_gguf_put_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)(n - 1));
        sm_gguf_put_bool(w, "tokenizer.ggml.add_bos_token", 1);
        sm_free(types);
    } else if (r->has_char_vocab) {
        int n = r->n_char_tokens;
        float *scores = sm_calloc((size_t)n, sizeof *scores);
        int32_t *types = sm_alloc((size_t)n * sizeof *types);
        for (int i = 0; i < n; i++) types[i] = char_token_type(i);
        sm_gguf_put_str(w, "tokenizer.ggml.model", "llama");
        sm_gguf_put_str_array(w, "tokenizer.ggml.tokens", (const char *const *)r->char_tokens, (size_t)n);
        sm_gguf_put_f32_array(w, "tokenizer.ggml.scores", scores, (size_t)n);
        sm_gguf_put_i32_array(w, "tokenizer.ggml.token_type", types, (size_t)n);
        sm_gguf_put_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        sm_gguf_put_u32(w, "tokenizer.ggml.bos_token_id", 1);
        sm_gguf_put_u32(w, "tokenizer.ggml.eos_token_id", 2);
        sm_gguf_put_bool(w, "tokenizer.ggml.add_bos_token", 1);
        sm_gguf_put_bool(w, "tokenizer.ggml.add_space_prefix", 0);
        sm_free(scores);
        sm_free(types);
    } else {
        const sm_gguf *g = &r->tok_model->gguf;
        for (uint64_t i = 0; i < g->n_kv; i++)
            if (g->kv[i].key.len > 10 && memcmp(g->kv[i].key.ptr, "tokenizer.", 10) == 0 &&
                !(r->p.chat_template && sm_gguf_str_eq(g->kv[i].key, "tokenizer.chat_template")))
                sm_gguf_put_copy(w, &g->kv[i]);
    }
    if (r->p.chat_template) sm_gguf_put_str(w, "tokenizer.chat_template", r->p.chat_template);
}

/* A LoRA adapter's metadata, as llama.cpp's convert_lora_to_gguf.py writes
 * it (general.type, adapter.type, adapter.lora.alpha, the base's
 * architecture), and the chat template it was trained with, if any. */
static void write_adapter_meta(sm_gguf_writer *w, const run *r) {
    const sm_train_config *c = &r->t->cfg;
    sm_gguf_put_str(w, "general.architecture", sm_arch_get(c->hp.arch)->name);
    sm_gguf_put_str(w, "general.type", "adapter");
    sm_gguf_put_str(w, "general.name", "smallmind-lora");
    sm_gguf_put_u32(w, "general.alignment", 32);
    sm_gguf_put_str(w, "adapter.type", "lora");
    sm_gguf_put_f32(w, "adapter.lora.alpha", c->lora_alpha);
    if (r->p.chat_template) sm_gguf_put_str(w, "tokenizer.chat_template", r->p.chat_template);
}

static void add_tensors(sm_gguf_writer *w, const sm_trainer *t, const float *base, const char *prefix) {
    for (int i = 0; i < t->n_params; i++) {
        const sm_param *pp = &t->params[i];
        char name[96];
        snprintf(name, sizeof name, "%s%s", prefix, pp->name);
        uint64_t ne[2] = {(uint64_t)pp->cols, (uint64_t)pp->rows};
        sm_gguf_add_tensor(w, name, SM_GGML_F32, pp->n_dims, ne, base + pp->offset, (size_t)pp->rows * pp->cols * 4);
    }
}

static sm_status write_gguf(const run *r, const char *path, int checkpoint, sm_error *err) {
    sm_gguf_writer *w = sm_gguf_writer_new();
    if (!w) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    const sm_train_config *c = &r->t->cfg;
    if (c->base) write_adapter_meta(w, r);
    else write_model_meta(w, r);
    if (checkpoint) {
        sm_gguf_put_u64(w, "smallmind.train.step", r->t->step);
        sm_gguf_put_u64(w, "smallmind.train.data_pos", r->data_pos);
        sm_gguf_put_u64(w, "smallmind.train.rng", r->rng);
        sm_gguf_put_u32(w, "smallmind.train.batch", (uint32_t)r->p.batch);
        sm_gguf_put_u32(w, "smallmind.train.seq", (uint32_t)r->t->T);
        sm_gguf_put_u64(w, "smallmind.train.data_tokens", r->n_train);
        sm_gguf_put_u64(w, "smallmind.train.data_hash", r->data_hash);
        if (c->base) sm_gguf_put_u32(w, "smallmind.train.lora_rank", (uint32_t)c->lora_rank);
    }
    add_tensors(w, r->t, r->t->w, "");
    if (!checkpoint && !c->base && c->tied && sm_arch_get(c->hp.arch)->write_tied_output) {
        /* llama.cpp's loader of this architecture requires an output matrix:
         * a copy of the embedding (a checkpoint keeps the tying, which
         * resuming needs) */
        uint64_t ne[2] = {(uint64_t)c->hp.dim, (uint64_t)c->hp.n_vocab};
        sm_gguf_add_tensor(w, "output.weight", SM_GGML_F32, 2, ne, r->t->W.tok_embd,
                           (size_t)c->hp.dim * c->hp.n_vocab * 4);
    }
    if (checkpoint) {
        add_tensors(w, r->t, r->t->m, "opt.m.");
        add_tensors(w, r->t, r->t->v, "opt.v.");
    }
    sm_status st = sm_gguf_writer_save(w, path, err);
    sm_gguf_writer_free(w);
    return st;
}

uint64_t sm_ckpt_data_hash(const int32_t *tokens, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) h = (h ^ (((uint32_t)tokens[i] >> (8 * k)) & 0xFF)) * 1099511628211ull;
    return h;
}

static sm_status read_uint(const sm_gguf *g, const char *key, uint32_t type, uint64_t *out, sm_error *err) {
    const sm_gguf_kv *kv = sm_gguf_find(g, key);
    if (!kv || kv->type != type)
        return sm_fail(err, SM_ERR_FORMAT, "not a checkpoint of this version: no %s '%s'",
                       type == SM_GGUF_UINT64 ? "u64" : "u32", key);
    *out = kv->v.u;
    return SM_OK;
}

/* The first element of a block that is not finite (or negative, when the
 * values must not be), or -1. */
static int64_t first_bad(const float *x, size_t n, int nonnegative) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || (nonnegative && x[i] < 0)) return (int64_t)i;
    return -1;
}

/* The checkpoint in g; the weights from the model m (a full training) or,
 * for LoRA, the adapters from g's tensors. */
static sm_status ckpt_read(sm_trainer *t, const sm_gguf *g, const sm_model *m, const sm_ckpt_run *want,
                           sm_ckpt_state *state, sm_error *err) {
    uint64_t batch = 0, seq = 0, n_tokens = 0, hash = 0;
    sm_status st;
    if ((st = read_uint(g, "smallmind.train.step", SM_GGUF_UINT64, &state->step, err)) ||
        (st = read_uint(g, "smallmind.train.data_pos", SM_GGUF_UINT64, &state->data_pos, err)) ||
        (st = read_uint(g, "smallmind.train.rng", SM_GGUF_UINT64, &state->rng, err)) ||
        (st = read_uint(g, "smallmind.train.batch", SM_GGUF_UINT32, &batch, err)) ||
        (st = read_uint(g, "smallmind.train.seq", SM_GGUF_UINT32, &seq, err)))
        return st;
    /* the run must be the one the checkpoint continues */
    if (batch != (uint64_t)want->batch || seq != (uint64_t)want->seq)
        return sm_fail(err, SM_ERR_INVALID_ARG,
                       "the checkpoint was made with --batch %llu --seq %llu, this run has --batch %d --seq %d: "
                       "resume with the same values", (unsigned long long)batch, (unsigned long long)seq, want->batch,
                       want->seq);
    if (state->step > INT_MAX)
        return sm_fail(err, SM_ERR_FORMAT, "the checkpoint's step %llu is out of range (the file is corrupt)",
                       (unsigned long long)state->step);
    if (state->step >= (uint64_t)want->steps)
        return sm_fail(err, SM_ERR_INVALID_ARG, "the checkpoint is at step %llu already; ask for more --steps",
                       (unsigned long long)state->step);
    /* checkpoints before these keys existed are checked by position only */
    int have_n = sm_gguf_find(g, "smallmind.train.data_tokens") != NULL;
    int have_h = sm_gguf_find(g, "smallmind.train.data_hash") != NULL;
    if ((have_n && (st = read_uint(g, "smallmind.train.data_tokens", SM_GGUF_UINT64, &n_tokens, err))) ||
        (have_h && (st = read_uint(g, "smallmind.train.data_hash", SM_GGUF_UINT64, &hash, err))))
        return st;
    if (want->check_data && have_n && have_h && (n_tokens != want->n_train || hash != want->data_hash))
        return sm_fail(err, SM_ERR_INVALID_ARG,
                       "the checkpoint was made on other training data (%llu tokens, hash %016llx; this run has %llu "
                       "tokens, hash %016llx): resume with the same --data, --val and --val-split",
                       (unsigned long long)n_tokens, (unsigned long long)hash, (unsigned long long)want->n_train,
                       (unsigned long long)want->data_hash);
    if (state->data_pos > want->n_train)
        return sm_fail(err, SM_ERR_INVALID_ARG,
                       "the checkpoint's data position %llu is beyond the %llu-token training text: it was made on "
                       "other data, or it is corrupt", (unsigned long long)state->data_pos,
                       (unsigned long long)want->n_train);
    if (t->cfg.base) {
        uint64_t rank = 0;
        if (sm_gguf_find(g, "smallmind.train.lora_rank") &&
            (st = read_uint(g, "smallmind.train.lora_rank", SM_GGUF_UINT32, &rank, err)))
            return st;
        if (rank != (uint64_t)t->cfg.lora_rank)
            return sm_fail(err, SM_ERR_INVALID_ARG, "not a checkpoint of a LoRA training of rank %d", t->cfg.lora_rank);
        for (int i = 0; i < t->n_params; i++) {
            const sm_param *pp = &t->params[i];
            const sm_gguf_tensor *gt = sm_gguf_find_tensor(g, pp->name);
            if (!gt || gt->type != SM_GGML_F32 || gt->n_elements != (uint64_t)pp->rows * pp->cols ||
                gt->ne[0] != (uint64_t)pp->cols)
                return sm_fail(err, SM_ERR_FORMAT, "not a checkpoint of this training (tensor '%s' missing)", pp->name);
            memcpy(t->w + pp->offset, gt->data, (size_t)pp->rows * pp->cols * sizeof(float));
        }
    } else if ((st = sm_trainer_load_weights(t, m, err))) {
        return st;
    }
    for (int i = 0; i < t->n_params; i++) {
        const sm_param *pp = &t->params[i];
        size_t n = (size_t)pp->rows * pp->cols;
        int64_t bad = first_bad(t->w + pp->offset, n, 0);
        if (bad >= 0)
            return sm_fail(err, SM_ERR_FORMAT, "tensor '%s' holds a value that is not finite (element %lld): the "
                           "checkpoint is corrupt", pp->name, (long long)bad);
        for (int k = 0; k < 2; k++) {
            char name[96];
            snprintf(name, sizeof name, "opt.%c.%s", k ? 'v' : 'm', pp->name);
            const sm_gguf_tensor *gt = sm_gguf_find_tensor(g, name);
            if (!gt || gt->type != SM_GGML_F32 || gt->n_elements != (uint64_t)n)
                return sm_fail(err, SM_ERR_FORMAT, "not a checkpoint (tensor '%s' missing or of another shape)", name);
            float *dst = (k ? t->v : t->m) + pp->offset;
            memcpy(dst, gt->data, n * sizeof(float));
            /* second moments are means of squares: never negative */
            if ((bad = first_bad(dst, n, k)) >= 0)
                return sm_fail(err, SM_ERR_FORMAT, "tensor '%s' holds %s (element %lld): the checkpoint is corrupt",
                               name, isfinite(dst[bad]) ? "a negative second moment" : "a value that is not finite",
                               (long long)bad);
        }
    }
    return SM_OK;
}

sm_status sm_ckpt_read(sm_trainer *t, const sm_model *m, const sm_ckpt_run *want, sm_ckpt_state *state, sm_error *err) {
    return ckpt_read(t, &m->gguf, m, want, state, err);
}

sm_status sm_ckpt_read_lora(sm_trainer *t, const char *path, const sm_ckpt_run *want, sm_ckpt_state *state,
                            sm_error *err) {
    sm_mapped_file f;
    sm_gguf g;
    sm_status st = sm_map_file(path, &f, err);
    if (st) return st;
    if (!(st = sm_gguf_parse(f.data, f.size, &g, err))) {
        st = ckpt_read(t, &g, NULL, want, state, err);
        sm_gguf_free(&g);
    }
    sm_unmap_file(&f);
    return st;
}

/* ----------------------------------------------------------- the loop */

/* The mean loss of the first 4 batches of the validation data (each
 * process its share, summed), or -1 without enough of it. */
static sm_status evaluate(run *r, int32_t *x, int32_t *y, float *wt, float *out, sm_error *err) {
    *out = -1.0f;
    if (r->use_examples ? r->val_ex.n == 0 : r->n_val < (size_t)r->t->T) return SM_OK;
    uint64_t pos = 0;
    float sum = 0;
    int batches = 0;
    for (; batches < 4; batches++) {
        const float *weights;
        float denom;
        next_batch(r, r->val, r->n_val, r->use_examples ? &r->val_ex : NULL, &pos, x, y, wt, &weights, &denom);
        sum += (float)run_share(r, x, y, weights, denom, 0);
    }
    sm_status st = allreduce(r, &sum, 1, err);
    *out = sum / (float)batches;
    return st;
}

/* The loss curve, written atomically to r->svg_path like every output; a
 * failure is the caller's to report (the model is what matters). */
static sm_status write_svg(const run *r, int steps, sm_error *err) {
    if (steps < 1) return SM_OK;
    float max = 0, min = 1e30f;
    for (int i = 0; i < steps; i++) {
        if (r->curve[i] > max) max = r->curve[i];
        if (r->curve[i] < min) min = r->curve[i];
    }
    if (max <= min) max = min + 1;
    sm_output *f;
    sm_status st = sm_output_open(r->svg_path, &f, err);
    if (st) return st;
    int W = 640, H = 360, L = 50, B = 30;
    st = sm_output_printf(f, err, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
                          "width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" "
                          "height=\"100%%\" fill=\"white\"/>\n", W, H);
    if (!st) st = sm_output_printf(f, err, "<text x=\"%d\" y=\"18\" font-size=\"14\">training loss (blue) and validation "
                                   "loss (red), %d steps</text>\n", L, steps);
    if (!st) st = sm_output_printf(f, err, "<text x=\"4\" y=\"%d\">%.2f</text><text x=\"4\" y=\"%d\">%.2f</text>\n", 34, max,
                                   H - B, min);
    for (int pass = 0; pass < 2 && !st; pass++) {
        st = sm_output_printf(f, err, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
                              pass ? "#d9534f" : "#5b8def");
        for (int i = 0; i < steps && !st; i++) {
            float v = pass ? r->val_curve[i] : r->curve[i];
            if (v < 0) continue;
            st = sm_output_printf(f, err, "%.1f,%.1f ", L + (W - L - 10) * (double)i / (steps > 1 ? steps - 1 : 1),
                                  30 + (H - B - 30) * (double)(max - v) / (max - min));
        }
        if (!st) st = sm_output_printf(f, err, "\"/>\n");
    }
    if (!st) st = sm_output_printf(f, err, "</svg>\n");
    if (st) {
        sm_output_discard(f);
        return st;
    }
    return sm_output_commit(f, err);
}

/* A temporary file of an interrupted write, removed (sm_output_remove_stale). */
static void on_stale(void *user, const char *file, uint64_t bytes) {
    notify(user, "removed '%s' (%llu bytes), the temporary file of a write that was interrupted", file,
           (unsigned long long)bytes);
}

/* The checks of every output before the first step: a path that cannot be
 * written fails now, not after hours of training. */
static sm_status check_outputs(run *r, sm_error *err) {
    const sm_train_params *p = &r->p;
    size_t n = strlen(p->out);
    /* the checkpoint (OUT.ckpt unless --checkpoint) and the curve (OUT
     * without .gguf, then .loss.svg): sized to fit, never cut short */
    const char *ck = p->checkpoint ? p->checkpoint : p->out;
    r->ckpt_path = sm_alloc(strlen(ck) + 6);
    r->svg_path = sm_alloc(n + 10);
    if (!r->ckpt_path || !r->svg_path) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    snprintf(r->ckpt_path, strlen(ck) + 6, "%s%s", ck, p->checkpoint ? "" : ".ckpt");
    size_t stem = n >= 5 && !strcmp(p->out + n - 5, ".gguf") ? n - 5 : n;
    snprintf(r->svg_path, n + 10, "%.*s.loss.svg", (int)stem, p->out);
    if (p->rank != 0) return SM_OK;   /* under MPI, rank 0 writes the files */
    const char *what[4] = {"--out", "the loss curve", "--checkpoint", "--log"};
    const char *paths[4] = {p->out, r->svg_path, p->checkpoint_every > 0 ? r->ckpt_path : NULL, p->log_csv};
    for (int i = 0; i < 4; i++) {
        if (!paths[i]) continue;
        sm_status st = sm_output_check(paths[i], err);
        if (st) {
            sm_error_prefix(err, "%s", what[i]);
            return st;
        }
    }
    for (int i = 0; i < 3; i++)
        if (paths[i]) sm_output_remove_stale(paths[i], on_stale, r);
    return SM_OK;
}

static sm_status check_examples(const sm_train_examples *e, int n_vocab, int T, const char *what, sm_error *err) {
    if (!e->tokens || !e->mask || !e->offsets || e->n < 1 || e->offsets[0] != 0)
        return sm_fail(err, SM_ERR_INVALID_ARG, "%s are empty or incomplete", what);
    for (size_t i = 0; i < e->n; i++)
        if (e->offsets[i + 1] < e->offsets[i] + 2)
            return sm_fail(err, SM_ERR_INVALID_ARG, "%s: example %zu has fewer than 2 tokens", what, i);
    for (size_t j = 0; j < e->offsets[e->n]; j++)
        if (e->tokens[j] < 0 || e->tokens[j] >= n_vocab || e->mask[j] > 1)
            return sm_fail(err, SM_ERR_TOKEN_RANGE, "%s: token %zu (%d, mask %d) is not a token of the model with a 0/1 mask",
                           what, j, e->tokens[j], e->mask[j]);
    /* a row holds T + 1 tokens of an example: the loss needs a masked one among them, after the first */
    for (size_t i = 0; i < e->n; i++)
        for (size_t j = e->offsets[i] + 1; j < e->offsets[i + 1] && j <= e->offsets[i] + (size_t)T; j++)
            if (e->mask[j]) return SM_OK;
    return sm_fail(err, SM_ERR_INVALID_ARG, "%s: no example has a token to learn within its first %d (raise --seq)", what,
                   T + 1);
}

/* sm_train, and with tp the profiled training of train_profile.c. */
static sm_status train_run(const sm_train_params *params, sm_train_profile *tp,
                           void (*progress)(void *, const sm_train_progress *), void *user, sm_error *err);

sm_status sm_train(const sm_train_params *params, void (*progress)(void *, const sm_train_progress *), void *user,
                   sm_error *err) {
    return train_run(params, NULL, progress, user, err);
}

sm_status sm_train_profiled(const sm_train_params *params, const sm_train_profile_params *pp,
                            void (*progress)(void *, const sm_train_progress *), void *user, sm_train_profile **out,
                            sm_error *err) {
    if (!out) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_train_profiled: out is NULL");
    *out = NULL;
    sm_train_profile *tp = sm_train_profile_new(pp, err);
    if (!tp) return err ? err->status : SM_ERR_NOMEM;
    sm_status st = train_run(params, tp, progress, user, err);
    if (st != SM_OK) sm_train_profile_free(tp);
    else *out = tp;
    return st;
}

static sm_status train_run(const sm_train_params *params, sm_train_profile *tp,
                           void (*progress)(void *, const sm_train_progress *), void *user, sm_error *err) {
    run r;
    memset(&r, 0, sizeof r);
    r.p = params ? *params : sm_train_default_params();
    sm_train_params *p = &r.p;
    sm_status st = SM_OK;
    int32_t *x = NULL, *y = NULL;
    sm_output *csv = NULL;
    sm_error csv_err = {0};
    float *wt = NULL;
    r.notice = p->notice;
    r.user = user;
    r.use_examples = p->examples != NULL;
    if (!p->out || (!p->data && !r.use_examples)) return sm_fail(err, SM_ERR_INVALID_ARG, "training needs --data and --out");
    if (p->steps < 1 || p->batch < 1 || p->seq < 2 || p->accum < 1 || !(p->lr > 0) || p->min_lr < 0 || p->warmup < 0)
        return sm_fail(err, SM_ERR_INVALID_ARG, "steps, batch, accum must be positive, seq at least 2, lr positive");
    if (p->n_ranks < 1) p->n_ranks = 1;
    if (p->rank < 0 || p->rank >= p->n_ranks || (p->n_ranks > 1 && !p->allreduce))
        return sm_fail(err, SM_ERR_INVALID_ARG, "rank %d of %d processes (with an all-reduce) is not valid", p->rank,
                       p->n_ranks);
    if (p->batch % p->n_ranks)
        return sm_fail(err, SM_ERR_INVALID_ARG, "--batch %d does not divide among %d processes", p->batch, p->n_ranks);
    if (p->lora_rank < 0 || p->lora_rank > 4096 || (p->lora_rank && !p->init))
        return sm_fail(err, SM_ERR_INVALID_ARG, "LoRA needs a rank from 1 to 4096 and the base model (--init)");
    if (r.use_examples && !p->init && !p->resume)
        return sm_fail(err, SM_ERR_INVALID_ARG, "training on examples needs a model (--init or --resume) for its tokenizer");
    if ((st = check_outputs(&r, err))) goto done;

    /* the model's shape and tokenizer: from a checkpoint, a model, or the flags and data
     * (LoRA: always the base, which the checkpoint does not hold) */
    const char *from = p->resume && !p->lora_rank ? p->resume : p->init;
    sm_model_params vocab_only = sm_model_default_params();
    vocab_only.skip_repack = 1;   /* its weights are only read into the trainer */
    sm_train_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (from) {
        if ((st = sm_model_load(from, &vocab_only, &r.tok_model, err))) goto done;
        if ((st = sm_train_config_of(r.tok_model, &cfg, err))) {
            sm_error_prefix(err, "%s", from);
            goto done;
        }
        if (!p->lora_rank && (r.tok_model->rope_freqs || r.tok_model->rope_long || r.tok_model->rope_short)) {
            /* the trained model would be written without them */
            st = sm_fail(err, SM_ERR_UNSUPPORTED, "%s has RoPE frequency factors (Llama 3.1's rope_freqs or Phi-3.5's long and short ones): "
                         "a full fine-tune of it is not supported yet; LoRA (--lora-rank) is", from);
            goto done;
        }
        if (p->lora_rank) {
            cfg.base = r.tok_model;
            cfg.lora_rank = p->lora_rank;
            cfg.lora_alpha = p->lora_alpha != 0.0f ? p->lora_alpha : (float)p->lora_rank;
            if (!(cfg.lora_roles = sm_lora_roles_parse(p->lora_targets, err))) {
                st = err ? err->status : SM_ERR_INVALID_ARG;
                goto done;
            }
        }
    } else {
        const char *name = p->arch ? p->arch : "gpt2";
        int arch = sm_arch_by_name(name, strlen(name));
        if (arch < 0) {
            char names[400];   /* every architecture's name (sm_arch_names) */
            sm_arch_names(names, sizeof names);
            st = sm_fail(err, SM_ERR_INVALID_ARG, "unknown architecture '%s' (known: %s)", name, names);
            goto done;
        }
        const sm_arch_info *ai = sm_arch_get(arch);
        int gated = ai->ffn != SM_FFN_GELU && ai->ffn != SM_FFN_RELU2;
        sm_hparams *hp = &cfg.hp;
        hp->arch = arch;
        hp->dim = p->dim;
        hp->n_layers = p->layers;
        hp->n_heads = p->heads > 0 ? p->heads : 1;
        hp->n_kv_heads = p->kv_heads && !sm_arch_has(ai, SM_T_ATTN_QKV, NULL) ? p->kv_heads : hp->n_heads;
        hp->ffn_dim = p->ffn ? p->ffn : (gated ? (8 * p->dim / 3 + 31) / 32 * 32 : 4 * p->dim);
        hp->n_ctx_train = p->ctx;
        hp->norm_eps = 1e-5f;
        hp->rope_base = 10000.0f;
        if ((st = sm_arch_finish_hparams(hp, SM_ERR_INVALID_ARG, err))) goto done;
        /* the head tied to the embeddings, unless the architecture's files must have their own (phi3) */
        int out_flags = SM_TF_OPTIONAL;
        cfg.tied = !sm_arch_has(ai, SM_T_OUTPUT, &out_flags) || (out_flags & SM_TF_OPTIONAL);
        int is_bpe = p->tokenizer && !strncmp(p->tokenizer, "bpe:", 4);
        if (p->tokenizer && strcmp(p->tokenizer, "char") && !is_bpe) {
            if ((st = sm_model_load(p->tokenizer, &vocab_only, &r.tok_model, err))) goto done;
        } else {
            long n_bpe = 0;
            if (is_bpe) {
                char *end;
                n_bpe = strtol(p->tokenizer + 4, &end, 10);
                if (*end || n_bpe < 258 || n_bpe > 1 << 20) {
                    st = sm_fail(err, SM_ERR_INVALID_ARG, "--tokenizer bpe:N needs N from 258 to %d", 1 << 20);
                    goto done;
                }
            }
            sm_mapped_file f;
            if ((st = sm_map_file(p->data, &f, err))) goto done;
            size_t bad = sm_utf8_validate((const char *)f.data, f.size);
            if (bad != f.size) st = sm_fail(err, SM_ERR_UTF8, "%s is not valid UTF-8 (byte %zu)", p->data, bad);
            else if (is_bpe) st = build_bpe_vocab(&r, (const char *)f.data, f.size, (int)n_bpe, err);
            else st = build_char_vocab(&r, (const char *)f.data, f.size, err);
            sm_unmap_file(&f);
            if (st) goto done;
        }
        cfg.hp.n_vocab = vocab_of(&r)->n;
    }
    if (p->seq > cfg.hp.n_ctx_train) {
        st = sm_fail(err, SM_ERR_INVALID_ARG, "--seq %d is longer than the model's context %d", p->seq, cfg.hp.n_ctx_train);
        goto done;
    }
    cfg.bf16_products = p->bf16;
    if ((st = sm_trainer_new(&cfg, p->batch / p->n_ranks, p->seq, p->threads, p->grad_checkpointing, &r.t, err)))
        goto done;

    /* data: examples, or text */
    if (r.use_examples) {
        if ((st = check_examples(p->examples, cfg.hp.n_vocab, p->seq, "the training examples", err)) ||
            (p->val_examples &&
             (st = check_examples(p->val_examples, cfg.hp.n_vocab, p->seq, "the validation examples", err))))
            goto done;
        r.ex = *p->examples;
        if (p->val_examples) {
            r.val_ex = *p->val_examples;
        } else if (p->val_split > 0 && p->val_split < 1 && r.ex.n > 1) {
            /* the last examples: a view of the same arrays */
            size_t n_val = (size_t)((double)r.ex.n * p->val_split);
            r.val_ex = r.ex;
            r.val_ex.offsets = r.ex.offsets + (r.ex.n - n_val);
            r.val_ex.n = n_val;
            r.ex.n -= n_val;
        }
    } else if ((st = read_tokens(&r, p->data, &r.train, &r.n_train, err))) {
        goto done;
    } else if (p->val) {
        if ((st = read_tokens(&r, p->val, &r.val, &r.n_val, err))) goto done;
    } else if (p->val_split > 0 && p->val_split < 1) {
        size_t n_val = (size_t)((double)r.n_train * p->val_split);
        r.val = sm_alloc((n_val ? n_val : 1) * sizeof *r.val);
        if (!r.val) { st = sm_fail(err, SM_ERR_NOMEM, "out of memory"); goto done; }
        memcpy(r.val, r.train + (r.n_train - n_val), n_val * sizeof *r.val);
        r.n_val = n_val;
        r.n_train -= n_val;
    }
    if (!r.use_examples && r.n_train < (size_t)p->seq) {
        st = sm_fail(err, SM_ERR_INVALID_ARG, "the training text is %zu tokens; --seq %d needs more", r.n_train, p->seq);
        goto done;
    }
    r.data_hash = sm_ckpt_data_hash(r.train, r.n_train);

    /* weights: resumed, copied, or drawn */
    r.rng = p->seed;
    if (p->resume) {
        /* examples are taken by position modulo their count: any position is valid */
        sm_ckpt_run want = {p->batch, p->seq, p->steps, r.use_examples ? UINT64_MAX : r.n_train, !r.use_examples,
                            r.data_hash};
        sm_ckpt_state cs;
        if ((st = cfg.base ? sm_ckpt_read_lora(r.t, p->resume, &want, &cs, err)
                           : sm_ckpt_read(r.t, r.tok_model, &want, &cs, err))) {
            sm_error_prefix(err, "%s", p->resume);
            goto done;
        }
        r.t->step = cs.step;
        r.data_pos = cs.data_pos;
        r.rng = cs.rng;
    } else if (cfg.base) {
        /* LoRA: A uniform in +-1/sqrt(its width) (PEFT's Kaiming-uniform bound), B zero, so training starts
         * at the base model */
        for (int i = 0; i < r.t->n_params; i++) {
            const sm_param *pp = &r.t->params[i];
            float *w = r.t->w + pp->offset, bound = 1.0f / sqrtf((float)pp->cols);
            for (size_t k = 0; k < (size_t)pp->rows * pp->cols; k++)
                w[k] = pp->lora == SM_LORA_A ? bound * (2.0f * (float)(sm_rng_next(&r.rng) >> 40) / 16777216.0f - 1.0f)
                                             : 0.0f;
        }
    } else if (p->init) {
        if ((st = sm_trainer_load_weights(r.t, r.tok_model, err))) goto done;
    } else {
        for (int i = 0; i < r.t->n_params; i++) {
            const sm_param *pp = &r.t->params[i];
            float *w = r.t->w + pp->offset;
            size_t n = (size_t)pp->rows * pp->cols;
            int norm_weight = pp->n_dims == 1 && strstr(pp->name, "norm.weight");
            for (size_t k = 0; k < n; k++)
                w[k] = pp->n_dims == 2 ? 0.02f * sm_rng_normal(&r.rng) : norm_weight ? 1.0f : 0.0f;
        }
    }
    size_t N = (size_t)p->batch * p->seq;   /* the global batch */
    x = sm_alloc(N * sizeof *x);
    y = sm_alloc(N * sizeof *y);
    wt = sm_alloc(N * sizeof *wt);
    r.curve = sm_alloc((size_t)p->steps * sizeof *r.curve);
    r.val_curve = sm_alloc((size_t)p->steps * sizeof *r.val_curve);
    if (!x || !y || !wt || !r.curve || !r.val_curve) { st = sm_fail(err, SM_ERR_NOMEM, "out of memory"); goto done; }
    for (int i = 0; i < p->steps; i++) r.curve[i] = r.val_curve[i] = -1;
    int lead = p->rank == 0;   /* the process that writes files and reports */
    /* the log grows row by row (a resumed run continues it), each row
     * flushed; a write that fails loses the rest of the log, not the run */
    if (p->log_csv && lead) {
        if ((st = sm_output_open_append(p->log_csv, r.t->step == 0, &csv, err))) goto done;
        if (!r.t->step && (sm_output_printf(csv, &csv_err, "step,loss,val_loss,lr,grad_norm,tokens_per_second%s\n",
                                            p->n_ranks > 1 ? ",allreduce_ms" : "") ||
                           sm_output_flush(csv, &csv_err))) {
            notify(&r, "warning: the log is lost: %s", csv_err.message);
            sm_output_discard(csv);
            csv = NULL;
        }
    }
    uint64_t t_start = sm_now_ns();
    float val_loss = -1;
    int first = (int)r.t->step;
    if (tp && (st = sm_train_profile_begin(tp, r.t, err))) goto done;
    for (int step = first; step < p->steps; step++) {
        sm_prof *P = tp ? sm_train_profile_step_start(tp, r.t, step - first, p->steps - first) : NULL;
        uint64_t t0 = sm_now_ns();
        SM_PROF_BEGIN(P, SM_SC_TRAIN_STEP, -1);
        r.comm_seconds = 0;
        double loss = 0;
        for (int a = 0; a < p->accum; a++) {
            const float *weights;
            float denom;
            SM_PROF_BEGIN(P, SM_SC_BATCH, -1);
            next_batch(&r, r.train, r.n_train, r.use_examples ? &r.ex : NULL, &r.data_pos, x, y, wt, &weights, &denom);
            SM_PROF_END(P, 0, 8 * N);
            loss += run_share(&r, x, y, weights, denom, 1);
        }
        /* every process's share of the batch's gradient and loss, summed */
        float loss_sum = (float)loss;
        if (p->n_ranks > 1) {   /* the profile's "all-reduce": the communication, with the wait for the slowest rank */
            SM_PROF_BEGIN(P, SM_SC_ALL_REDUCE, -1);
            if (!(st = allreduce(&r, r.t->g, r.t->n_floats, err))) st = allreduce(&r, &loss_sum, 1, err);
            SM_PROF_END(P, 0, 0);   /* communication: no roofline to judge it by */
            if (st) goto done;
        }
        loss = p->n_ranks > 1 ? loss_sum / p->accum : loss / p->accum;
        SM_PROF_BEGIN(P, SM_SC_OPTIMIZER, -1);
        if (p->accum > 1)
            for (size_t i = 0; i < r.t->n_floats; i++) r.t->g[i] /= (float)p->accum;
        float lr = lr_at(p, step);
        float norm = sm_trainer_adamw(r.t, lr, 0.9f, 0.95f, 1e-8f, p->weight_decay, p->grad_clip);
        SM_PROF_END(P, (p->accum > 1 ? 17 : 16) * (uint64_t)r.t->n_floats, (p->accum > 1 ? 44 : 36) * (uint64_t)r.t->n_floats);
        int last = step + 1 == p->steps;
        if (p->eval_every > 0 && ((step + 1) % p->eval_every == 0 || last)) {
            SM_PROF_BEGIN(P, SM_SC_EVAL, -1);
            st = evaluate(&r, x, y, wt, &val_loss, err);
            SM_PROF_END(P, 0, 0);
            if (st) goto done;
        }
        int ckpt = p->checkpoint_every > 0 && ((step + 1) % p->checkpoint_every == 0 || last);
        if (ckpt && lead) {
            SM_PROF_BEGIN(P, SM_SC_CHECKPOINT, -1);
            st = write_gguf(&r, r.ckpt_path, 1, err);
            SM_PROF_END(P, 0, 0);
            if (st) goto done;
        }
        r.curve[step] = (float)loss;
        r.val_curve[step] = val_loss;
        SM_PROF_END(P, 0, 0);
        double dt = (double)(sm_now_ns() - t0) * 1e-9;
        if (tp) sm_train_profile_step_end(tp, r.t, step - first, dt * 1e3, (double)N * p->accum);
        if (csv && (sm_output_printf(csv, &csv_err, "%d,%.6f,%.6f,%.6g,%.6f,%.1f", step + 1, loss, val_loss, lr, norm,
                                     (double)N * p->accum / dt) ||
                    (p->n_ranks > 1 && sm_output_printf(csv, &csv_err, ",%.3f", r.comm_seconds * 1e3)) ||
                    sm_output_printf(csv, &csv_err, "\n") || sm_output_flush(csv, &csv_err))) {
            notify(&r, "warning: the log is incomplete: the rows from step %d of %d on are lost (%s)", step + 1, p->steps,
                   csv_err.message);
            sm_output_discard(csv);
            csv = NULL;
        }
        if (progress && lead) {
            sm_train_progress pr = {step + 1, p->steps, (float)loss, val_loss, lr, norm, (double)N * p->accum / dt,
                                    (double)(sm_now_ns() - t_start) * 1e-9, ckpt, r.t->n_floats, r.t->cfg.hp.n_vocab,
                                    r.t->act_floats * sizeof(float), r.t->act_floats_full * sizeof(float),
                                    p->n_ranks, r.comm_seconds};
            progress(user, &pr);
        }
    }
    if (tp && (st = sm_train_profile_end(tp, r.t, err))) goto done;
    if (p->param_hash) {
        /* FNV-1a over the parameters' bytes: equal on every process when the replicas agree */
        uint64_t h = 0xcbf29ce484222325ull;
        const unsigned char *b = (const unsigned char *)r.t->w;
        for (size_t i = 0; i < r.t->n_floats * sizeof(float); i++) h = (h ^ b[i]) * 0x100000001b3ull;
        *p->param_hash = h;
    }
    if (lead) {
        /* the model first; without it the curve is not worth writing */
        if ((st = write_gguf(&r, p->out, 0, err))) goto done;
        sm_error svg_err = {0};
        if (write_svg(&r, p->steps, &svg_err)) notify(&r, "warning: the loss curve was not written: %s", svg_err.message);
    }
done:
    if (csv && sm_output_commit(csv, &csv_err))
        notify(&r, "warning: the log may be incomplete: %s", csv_err.message);
    sm_free(x);
    sm_free(y);
    sm_free(wt);
    run_free(&r);
    return st;
}

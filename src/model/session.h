/* session.h - one conversation with a model: the arena that holds every
 * activation buffer, the KV cache and the token history, and the scratch
 * the generation loop uses. Created once; nothing is allocated while it
 * runs. */
#ifndef SM_MODEL_SESSION_H
#define SM_MODEL_SESSION_H

#include <stdint.h>
#include "model.h"
#include "steps.h"
#include "core/arena.h"
#include "prof/prof.h"
#include "core/threadpool.h"
#include "kernels/dispatch.h"

#define SM_MAX_ADAPTERS 8         /* LoRA adapters one session applies at once */

/* weight rows a thread dequantizes at a time for a batch's product: two
 * interleaved groups of 16, one block of the strided product (32 rows) */
#define SM_MATMUL_DEQ_ROWS 32

typedef struct sm_candidate {
    float logit;
    int32_t id;
} sm_candidate;

/* Scratch of the sampler and the generation loop (src/generate), laid out
 * in the session's arena so that generating allocates nothing. */
typedef struct sm_gen_scratch {
    sm_candidate *cand;          /* n_vocab */
    int32_t *counts;             /* n_vocab: a token's count in the penalty window; all zero between calls */
    uint8_t *allowed;            /* n_vocab: the tokens a grammar allows next */
    char *text_buf;              /* a token's text after UTF-8 completion */
    size_t text_cap;
    char *hold_buf;              /* text held back for stop strings */
    size_t hold_cap;
} sm_gen_scratch;

struct sm_session {
    const sm_model *model;
    int n_ctx, n_threads, n_past;
    sm_prof *prof;               /* NULL unless profiling is on */
    int check;                   /* check mode: every layer's output is checked for NaN/Inf */
    int bad_layer;               /* the first layer of this evaluation that made one, or -1 */
    sm_prof *prof_store;         /* the profiler, kept while paused */
    const sm_kernel_table *kt;   /* the kernel level in use */
    sm_type_kernels tk[SM_GGML_TYPE_COUNT];   /* each element type's kernels at that level */
    sm_threadpool *pool;
    void *block;                 /* the arena's memory */
    size_t block_bytes;

    /* activations of a batch of up to batch_cap tokens; one token is row 0 */
    int batch_cap;
    float *x;                    /* [batch][dim] the residual stream */
    float *xb;                   /* [batch][max(dim, q_dim)] a block's normed input, then attention's output */
    float *q;                    /* [batch][q_dim] queries */
    float *qkv;                  /* [batch][q_dim + 2 kv_dim] a fused projection, before the split */
    float *hb, *hb2;             /* [batch][ffn] feed-forward intermediates (hb2: 2 x ffn for a fused gate/up) */
    float *xb2;                  /* [batch][dim] a block's output before its post-norm */
    float *tmp;                  /* [batch][dim] a product before its residual add */
    /* a mixture of experts (moe.c): the router's logits, each row's experts and weights, the (row, slot)
     * entries sorted by expert, an expert's gathered input rows and their output */
    float *moe_logits;           /* [batch][n_expert] */
    int *moe_pick;               /* [batch][n_expert_used] */
    float *moe_w;                /* [batch][n_expert_used] */
    int *moe_order, *moe_count;  /* [batch x n_expert_used], [n_expert + 1] */
    float *moe_in, *moe_out;     /* [batch][dim] */
    float *logits;               /* [n_vocab] of the last token */
    /* kernel scratch */
    float *att;                  /* [heads][n_ctx] one token's attention scores */
    float *att_scratch;          /* [threads][sm_attention_scratch] blocked attention */
    float *pack;                 /* [batch rounded to 16 or 12][max_cols] the batch in panels */
    float *deq;                  /* [threads][SM_MATMUL_DEQ_ROWS][max_cols] weight rows as floats */
    void *xq;                    /* [batch][xq_stride bytes] inputs in an integer-dot format (Q8_0, Q8_K) */
    int32_t *xsum;               /* [batch][xsum_stride] xq's block sums, for the interleaved kernels */
    size_t xq_stride, xsum_stride;
    int max_cols;
    /* products that read one input (forward.c's Q, K and V, gate and up),
     * between sm_matmul_share_input(s, a) and sm_matmul_share_input(s,
     * NULL): what xq and pack hold, so that input is quantized or packed
     * once for all of them */
    const float *shared_in;
    struct { const float *a; int n, sums; uint32_t act; } xq_holds;
    struct { const float *a; int n, k; } pack_holds;
    /* a batch of several sessions (sm_session_eval_batch) when this session is its workspace */
    float *k_rows, *v_rows;      /* [batch][kv_dim] keys and values, before they go to each session's cache */
    sm_token *batch_tokens;      /* [batch] the tokens in row order */
    struct sm_fwd_seq *batch_seq;/* [batch] whose rows they are */
    /* [layer][position][kv_dim] in type_k / type_v (F32 or F16): read and
     * written through kv_cache.c's calls, or as floats where F32 */
    void *k_cache, *v_cache;
    sm_kv_type type_k, type_v;
    /* [position][rope_dim / 2]; the sliding-window layers' own where they have one */
    float *rope_cos, *rope_sin, *rope_cos_local, *rope_sin_local;
    sm_token *history;           /* the token at each position, n_ctx */
    uint64_t rng;                /* the sampler's */
    sm_gen_scratch gen;
    /* LoRA adapters applied after the products they target (lora.c) */
    int n_adapters;
    const struct sm_adapter *adapters[SM_MAX_ADAPTERS];
    float adapter_scales[SM_MAX_ADAPTERS];
    int lora_rank_cap;           /* the largest rank lora_ax has room for */
    float *lora_ax;              /* [batch][lora_rank_cap] A x of one adapter */
    /* logits holds the logits after history[n_past - 1] (an evaluation set
     * it; truncating, resetting or shifting the session clears it) */
    int logits_valid;
    sm_sampler_params sampler;   /* the settings of the last sm_session_sample ... */
    int has_sampler;             /* ... if there was one (saved with the session) */
    void *app;                   /* the application data of the last session file loaded */
    size_t app_len;
};

/* The most rows one forward pass takes (a session's batch_cap is at most this). */
#define SM_BATCH_MAX 128

/* One session's rows in a forward pass: rows [row0, row0 + n) of the batch
 * are its tokens at positions pos0 .. pos0 + n - 1. Its KV cache, RoPE
 * tables and score buffer are used for them, and with want_logits the
 * logits after its last row go to s->logits. */
typedef struct sm_fwd_seq {
    sm_session *s;
    int row0, n, pos0;
    int want_logits;
} sm_fwd_seq;

/* A forward pass's rows. With one seq (the common case: one session, its
 * rows at consecutive positions) keys and values land straight in its
 * cache. With several, the runs of one row come first (rows [0, n_vec)),
 * and their products take the matrix x vector numerics, as a single
 * session's one-token pass does; the longer runs take the matrix x matrix
 * kernels, as a single session's prompt does, so every row comes out
 * exactly as its session alone would compute it. */
typedef struct sm_fwd_batch {
    const sm_token *tokens;  /* [n], in row order */
    int n, n_vec;
    const sm_fwd_seq *seq;
    int n_seq;
    float *all_logits;       /* one seq only: every row's logits (n x n_vocab), the last also into s->logits */
    float *embd_sum;         /* one seq only: instead of logits, the rows' final-normed hidden states are added here */
} sm_fwd_batch;

/* Runs a batch (b->n <= s->batch_cap rows) through the model (forward.c)
 * on s's activation buffers, kernels and threads; s may be one of the
 * batch's sessions or only its workspace. */
void sm_forward(sm_session *s, const sm_fwd_batch *b);

/* kv_cache.c: the KV cache's rows in their type. kind 0 is the keys, 1 the
 * values; a row is kv_dim elements, rows of one layer follow each other. */
size_t sm_kv_row_bytes(sm_kv_type t, size_t n);   /* bytes of n elements of a row: 4n, 2n or 34n/32 */
uint32_t sm_kv_ggml_type(sm_kv_type t);   /* its element type (SM_GGML_F32, _F16, _BF16, _Q8_0) */
void *sm_kv_row(const sm_session *s, int kind, int layer, int pos);
/* bytes of one position's key and value rows in one layer */
size_t sm_kv_position_bytes(const sm_session *s);
/* n rows of floats stored at positions pos.. (rounded to F16 where the cache is F16) */
void sm_kv_store(sm_session *s, int kind, int layer, int pos, const float *rows, int n);
/* n rows at positions pos.. read back as floats */
void sm_kv_read(const sm_session *s, int kind, int layer, int pos, float *rows, int n);
/* The level's dot and axpy on a part of one row of a cache that is not F32:
 * the sums kt->dot and kt->axpy give on the part widened to floats. */
typedef float (*sm_kv_dot_fn)(const float *a, const void *row, int n);
typedef void (*sm_kv_axpy_fn)(float *y, float a, const void *row, int n);
sm_kv_dot_fn sm_kv_dot(const sm_kernel_table *kt, sm_kv_type t);
sm_kv_axpy_fn sm_kv_axpy(const sm_kernel_table *kt, sm_kv_type t);

/* check.c: in check mode the forward pass reports each layer's output
 * (x, n floats); sm_check_result turns what was found, and the logits when
 * asked, into an error naming the layer or weight. */
void sm_check_layer(sm_session *s, int layer, const float *x, size_t n);
sm_status sm_check_result(sm_session *s, const sm_token *tokens, size_t n, int check_logits, sm_error *err);

/* How many of tokens[0..n) the session already holds at the same positions
 * (the longest common prefix with its history). */
size_t sm_session_common_prefix(const sm_session *s, const sm_token *tokens, size_t n);

/* How one kind of layer rotates (ggml's rope_ext): pair i of a rot-wide head
 * at position p turns by p * sm_rope_freq(r, i), and its cos and sin are
 * multiplied by mscale. */
typedef struct sm_rope_spec {
    int rot;                 /* rotated dimensions (pairs: rot / 2) */
    double base, scale;      /* frequency base; linear scaling (1 / rope.scaling.factor) */
    const float *ff;         /* frequency factors (rope_freqs, long/short), or NULL */
    double mscale;           /* the attention factor, times YaRN's 1 + 0.1 ln(1 / scale) */
    /* YaRN (Peng et al. 2023, "YaRN: Efficient Context Window Extension of
     * Large Language Models"; as ggml's rope with ext_factor 1, beta_fast 32,
     * beta_slow 1): pairs below yarn_lo keep the unscaled frequency, pairs
     * above yarn_hi take the scaled one, a linear ramp between; yarn 0: none */
    int yarn;
    double yarn_lo, yarn_hi;
} sm_rope_spec;

/* The rope of a model's global (local 0) or sliding-window (local 1)
 * layers: gemma3's local layers use their own base unscaled; ff as chosen
 * by the caller (sm_session_rope picks long or short factors). */
void sm_rope_init(sm_rope_spec *r, const sm_hparams *hp, int local, const float *ff);
/* Pair i's frequency (angle per position). */
double sm_rope_freq(const sm_rope_spec *r, int i);
/* One table of RoPE angles for positions 0..n_ctx-1: row p holds the
 * rot/2 values cos(p * freq_i) * mscale (sin the same). Sessions and the
 * trainer use it. */
void sm_rope_table(float *cos_t, float *sin_t, int n_ctx, const sm_rope_spec *r);

/* A session's rope of the global (local 0) or sliding-window (local 1)
 * layers: frequency factors from rope_freqs (Llama 3), else the long or
 * short factors by the session's context (llama.cpp's rule). */
void sm_session_rope(const sm_session *s, int local, sm_rope_spec *r);

/* How many of tokens[0..n) a session asked to hold them keeps (the rest is
 * evaluated): their common prefix with its history, less one when all n
 * are held but the logits are not those after the last (n when they are). */
size_t sm_session_reuse_plan(const sm_session *s, const sm_token *tokens, size_t n);

/* Loads a saved session from memory (session_file.c; the fuzz target's
 * entry): the whole buffer is checked before the session changes. */
sm_status sm_session_load_buffer(sm_session *s, const void *data, size_t size, sm_error *err);

/* Whether sampler parameters are in range (the sampler's rule, here so that
 * a saved session's settings are checked by the same rule when loaded). */
int sm_sampler_params_ok(const sm_sampler_params *sp);

#endif

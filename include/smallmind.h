/* smallmind.h - the public C API of SmallMind.
 *
 * Handles are opaque. Every call that can fail returns an sm_status and takes
 * an optional sm_error* (may be NULL) that receives a one-line explanation.
 * The library keeps no global mutable state: one loaded sm_model may be
 * shared read-only by any number of sm_sessions, each on its own thread. */
#ifndef SMALLMIND_H
#define SMALLMIND_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SM_VERSION "0.1.0"

typedef enum sm_status {
    SM_OK = 0,
    SM_ERR_INVALID_ARG,    /* a parameter is out of range or NULL */
    SM_ERR_IO,             /* file missing, unreadable, a directory, ... */
    SM_ERR_FORMAT,         /* the file is malformed or truncated */
    SM_ERR_UNSUPPORTED,    /* valid file, but a feature we do not handle yet */
    SM_ERR_NOMEM,          /* an allocation failed */
    SM_ERR_CONTEXT_FULL,   /* the tokens do not fit in the session's context */
    SM_ERR_TOKEN_RANGE,    /* a token id outside the vocabulary */
    SM_ERR_UTF8,           /* text is not valid UTF-8 */
    SM_ERR_NO_WEIGHTS,     /* a vocabulary-only file cannot run a forward pass */
    SM_ERR_BUFFER_TOO_SMALL
} sm_status;

/* Static description of a status code; never NULL. */
const char *sm_strerror(sm_status status);

typedef struct sm_error {
    sm_status status;
    char message[512];
} sm_error;

typedef int32_t sm_token;

typedef struct sm_model sm_model;
typedef struct sm_session sm_session;

/* ------------------------------------------------------------------ model */

typedef struct sm_model_params {
    /* llama2.c .bin models keep their vocabulary in a separate tokenizer.bin;
     * GGUF files carry their own and ignore this. */
    const char *tokenizer_path;
    /* 1: skip the run-time copy of the weights that some kernels read
     * (Q4_0/Q8_0/Q4_1/Q5_x/IQ4_NL re-laid out for AVX-512 VNNI), for a model that will only
     * be inspected, converted or used for its vocabulary. 0 (default):
     * make it when this CPU's kernels use it. */
    int skip_repack;
    /* 1: load a GGUF file SmallMind cannot run (an unknown architecture or
     * tokenizer, a weight type without kernels) for its metadata and tensor
     * listing only; sm_model_info.unsupported says why it cannot run. */
    int inspect;
    /* 1 (llama.cpp's --no-mmap): read the file into memory of the model's
     * own, in huge pages where the kernel gives them, instead of mapping
     * it. Decode streams the weights from there up to a quarter faster on
     * the hosts measured (docs/BENCHMARKS.md, "huge pages"); it costs the
     * read at load and a second copy while the page cache keeps the file.
     * 0 (default): the file is mapped. */
    int no_mmap;
} sm_model_params;

sm_model_params sm_model_default_params(void);

/* Loads a GGUF (v2/v3) or llama2.c .bin model. Weights are memory-mapped
 * (or read, with no_mmap). */
sm_status sm_model_load(const char *path, const sm_model_params *params,
                        sm_model **out, sm_error *err);
void sm_model_free(sm_model *model);

typedef struct sm_model_info {
    const char *format;      /* "GGUF v3", "llama2.c" */
    const char *arch;        /* "llama" */
    const char *name;        /* general.name or the file name */
    int n_vocab, n_ctx_train, dim, n_layers, n_heads, n_kv_heads, ffn_dim;
    int has_weights;         /* 0 for vocabulary-only files */
    sm_token bos, eos;       /* -1 when the vocabulary has none */
    int add_bos;             /* whether prompts start with BOS by default */
    uint64_t n_params;
    uint64_t weights_bytes;
    const char *warning;     /* something the user should hear about, or NULL */
    const char *unsupported; /* loaded with params.inspect and cannot run: why; else NULL */
    /* fill-in-the-middle tokens (tokenizer.ggml.fim_*_token_id, or found by
     * their text as llama.cpp finds them): prefix, suffix, middle, repository,
     * file separator; -1 when the vocabulary has none */
    sm_token fim_pre, fim_suf, fim_mid, fim_rep, fim_sep;
    /* a mixture of experts: experts per layer and per token (0 for a dense model) */
    int n_expert, n_expert_used;
} sm_model_info;

void sm_model_get_info(const sm_model *model, sm_model_info *info);

/* Creating models. sm_model_init_file writes a randomly initialised model
 * of the given shape as a GGUF file that SmallMind and llama.cpp load. */
typedef struct sm_init_params {
    const char *arch;        /* "llama" or "gpt2" */
    int dim, n_layers, n_heads, n_kv_heads, ffn_dim, n_ctx;
    int n_vocab;             /* a built-in byte-level vocabulary of this size */
    const char *vocab_from;  /* or: copy the tokenizer of this GGUF file */
    int tied;                /* the output head shares the token embedding */
    uint64_t seed;
    float init_std;          /* standard deviation of the weights (0.02) */
    int random_norms;        /* random norm weights and biases (for tests) */
    int f16;                 /* store matrices as F16 */
    const char *name;        /* general.name */
    /* a mixture of experts in place of each dense FFN (llama as Mixtral, granitemoe, olmoe, qwen2moe,
     * qwen3moe): n_expert experts of ffn_dim rows, n_expert_used of them per token; 0 for a dense model */
    int n_expert, n_expert_used;
} sm_init_params;

sm_init_params sm_init_default_params(void);
sm_status sm_model_init_file(const sm_init_params *params, const char *path, sm_error *err);

/* Writes a copy of a GGUF model with its weight matrices converted to
 * `type`: "F16", "Q8_0", "Q4_0", "Q3_K", "Q4_K", "Q5_K" (K types: the output
 * matrix in Q6_K), "Q4_0_MIXED" (Q4_0 with the output matrix in Q6_K, as
 * llama.cpp's Q4_0 files have), "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "BF16"
 * (every matrix in that type), or one of llama-quantize's mixes, whose
 * per-tensor types follow llama.cpp's rules: "Q2_K", "Q3_K_S", "Q3_K_M",
 * "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_XS".
 * Matrices whose rows do not divide into the type's blocks fall back to Q8_0,
 * then F16 (mixes: llama.cpp's fallback types where this build has them);
 * norms and biases stay F32. Reports progress through cb (may be NULL). */
sm_status sm_model_quantize_file(const char *in_path, const char *out_path, const char *type,
                                 void (*progress)(void *user, int done, int total, const char *tensor),
                                 void *user, sm_error *err);

/* Introspection, as `smallmind inspect` prints it. For llama2.c files the
 * header fields appear as metadata and the weight arrays as tensors. */
int sm_model_meta_count(const sm_model *model);
/* Fills the key, the value's type name and a printable, possibly shortened
 * rendering of the value (arrays: count and first elements). Returns 0 when
 * i is out of range. */
int sm_model_meta(const sm_model *model, int i, char *key, size_t key_cap, char *type, size_t type_cap,
                  char *value, size_t value_cap);

typedef struct sm_tensor_info {
    char name[128];
    const char *type;        /* "F32", "Q4_0", ... */
    int n_dims;
    uint64_t ne[4];          /* ne[0] varies fastest */
    uint64_t offset;         /* from the start of the file */
    uint64_t n_bytes;
} sm_tensor_info;

int sm_model_tensor_count(const sm_model *model);
int sm_model_tensor(const sm_model *model, int i, sm_tensor_info *info);

/* ------------------------------------------------------------- tokenizer */

/* Encodes UTF-8 text. Special-token text such as "<s>" is treated as plain
 * text. On SM_ERR_BUFFER_TOO_SMALL *n_tokens holds the count needed. */
sm_status sm_tokenize(const sm_model *model, const char *text, size_t len,
                      int add_bos, sm_token *tokens, size_t capacity,
                      size_t *n_tokens, sm_error *err);

/* Decodes a token sequence to text, as a detokenizer would print it
 * (control tokens give no text; the dummy-prefix space of the first token is
 * dropped). Writes a NUL; on SM_ERR_BUFFER_TOO_SMALL *len holds the bytes
 * needed without the NUL. */
sm_status sm_detokenize(const sm_model *model, const sm_token *tokens,
                        size_t n, char *buf, size_t capacity, size_t *len,
                        sm_error *err);

/* The raw bytes one token stands for (byte tokens give their byte, control
 * tokens give nothing). Returns the number of bytes, or -1 for a bad id. */
int sm_token_piece(const sm_model *model, sm_token token, const char **piece);

/* The token's vocabulary entry as stored (control tokens included, the
 * SentencePiece space mark shown as ' '). Returns its length, or -1. */
int sm_token_text(const sm_model *model, sm_token token, const char **text);

/* --------------------------------------------------------------- session */

/* The element type of the KV cache's keys or values. F16 and BF16 halve the
 * cache's memory and the bytes attention reads (F16 is llama.cpp's default;
 * its -ctk / -ctv f16 or bf16); the values are rounded to that type (nearest
 * even) as they are stored. BF16 keeps F32's range with 8 significant bits,
 * F16 11 bits up to 65504. Q8_0 (llama.cpp's -ctk / -ctv q8_0) takes 34 bytes
 * for each 32 values of a head (a little over a quarter of F32's memory):
 * an F16 scale, the largest magnitude / 127, and 8-bit values; it needs a
 * head size that is a multiple of 32. */
typedef enum sm_kv_type { SM_KV_F32 = 0, SM_KV_F16 = 1, SM_KV_BF16 = 2, SM_KV_Q8_0 = 3 } sm_kv_type;

typedef struct sm_session_params {
    int n_ctx;          /* 0 = min(model context, 4096) */
    int n_threads;      /* 0 = number of physical cores */
    uint64_t seed;      /* RNG seed of the sampler */
    int profile;        /* time every step (see the profiling calls below) */
    const char *kernels;/* NULL/"auto" = best for this CPU (or $SM_KERNELS);
                           "scalar", "avx2", "avx512" force one */
    int check;          /* check every layer's output of every token for NaN
                           and Inf, and fail naming the layer (profiling does
                           too); without it only a prompt's logits are checked */
    int lora_rank_max;  /* LoRA adapters of up to this rank can be set (0 = 64) */
    sm_kv_type type_k;  /* the cached keys' type (default SM_KV_F32) */
    sm_kv_type type_v;  /* the cached values' type (default SM_KV_F32) */
} sm_session_params;

sm_session_params sm_session_default_params(void);

/* Plans and allocates every buffer the forward pass and the sampler need,
 * and the KV cache, in one arena. Nothing is allocated after this. */
sm_status sm_session_create(const sm_model *model,
                            const sm_session_params *params,
                            sm_session **out, sm_error *err);
void sm_session_free(sm_session *session);

/* Forgets all evaluated tokens (the KV cache is reused). */
void sm_session_reset(sm_session *session);
int sm_session_n_past(const sm_session *session);
/* Forgets every token after the first n (n <= n_past), keeping the KV cache
 * of those n, so a prompt that shares them evaluates only the rest. */
sm_status sm_session_truncate(sm_session *session, int n, sm_error *err);
/* The tokens the session holds, in order (n_past of them); valid until the
 * next call that changes the session. */
const sm_token *sm_session_tokens(const sm_session *session);
int sm_session_n_ctx(const sm_session *session);
size_t sm_session_arena_bytes(const sm_session *session);

/* Runs the tokens through the model at the next positions. Afterwards
 * sm_session_logits() holds the logits for the token after the last one.
 * Fails (SM_ERR_FORMAT, naming the layer or weight) when the logits of a
 * session's first evaluation, or in check mode any layer's output, hold a
 * NaN or an Inf. */
sm_status sm_session_eval(sm_session *session, const sm_token *tokens,
                          size_t n, sm_error *err);
const float *sm_session_logits(const sm_session *session);

/* Like sm_session_eval, and also copies the logits of every position into
 * logits (n x n_vocab floats), for tools that score text. */
sm_status sm_session_eval_all(sm_session *session, const sm_token *tokens, size_t n, float *logits,
                              sm_error *err);
/* sm_session_eval_all with each row computed as a one-token pass computes it
 * (matrix x vector products, 16 weight rows at a time against every row so
 * the weights are still read once; one-token attention per row): row i's
 * logits are bit for bit those of sm_session_eval of the tokens one at a
 * time. For checking a draft model's proposals (speculative decoding). */
sm_status sm_session_eval_rows(sm_session *session, const sm_token *tokens, size_t n, float *logits, sm_error *err);

/* ------------------------------------------------------------- sampling */

typedef struct sm_sampler_params {
    float temperature;     /* 0 = greedy (argmax) */
    int top_k;             /* 0 = off */
    float top_p;           /* 1 = off */
    float min_p;           /* 0 = off */
    float repeat_penalty;  /* 1 = off */
    int repeat_last_n;     /* how many recent tokens the penalties look at (-1: all) */
    /* OpenAI's penalties over the same recent tokens: a token's logit is
     * lowered by its count times frequency_penalty plus presence_penalty
     * (0 = off; after the repetition penalty, as llama.cpp applies them) */
    float presence_penalty;
    float frequency_penalty;
    /* end-of-generation tokens (sm_token_is_eog) are never drawn: their
     * logits are -inf, as llama.cpp's ignore_eos (0 = off). A grammar's own
     * end still comes where only it is allowed. */
    int ignore_eos;
} sm_sampler_params;

sm_sampler_params sm_sampler_default_params(void);

/* Samples the next token from the session's current logits, with the
 * session's RNG and its recent tokens (for the repetition penalty). */
sm_status sm_session_sample(sm_session *session, const sm_sampler_params *sp,
                            sm_token *token, sm_error *err);

/* -------------------------------------------------------------- generate */

/* Called once per generated token with the text it completes (whole UTF-8
 * characters only, possibly empty). Return non-zero to stop generating. */
typedef int (*sm_token_callback)(void *user, sm_token token,
                                 const char *text, size_t len);

typedef struct sm_generate_params {
    int n_predict;                /* tokens to generate; <0 = until context full */
    int add_bos;                  /* -1 = the model's default */
    sm_sampler_params sampler;
    const char *const *stop;      /* stop strings (not printed), may be NULL */
    int n_stop;
    int ignore_eos;               /* never end at an end-of-generation token: the sampler's ignore_eos */
    const sm_token *prompt_tokens;  /* if set, the prompt as token ids (the */
    int n_prompt_tokens;            /* text prompt is then ignored)         */
    /* KV reuse, special tokens and full contexts: see "chat sessions" below */
    int reuse_prefix;             /* the prompt is the whole sequence from position 0 */
    int parse_special;            /* special-token text in the prompt becomes those tokens */
    int context_shift;            /* when the context fills, discard old tokens and go on */
    int n_keep;                   /* tokens at the start a context shift keeps */
    /* constrained generation (see "constrained generation" below): the
     * output follows the matcher's grammar and ends when it is complete */
    struct sm_grammar_matcher *grammar;
    const struct sm_grammar_vocab *grammar_vocab;   /* sm_grammar_vocab_for_model */
    /* speculative decoding: a session of a smaller model with the same
     * vocabulary proposes n_draft tokens (0 = 4) that the session checks in
     * one batch; greedy output is the same as without it, sampled output
     * follows the same distribution. Not with a grammar or a repetition
     * penalty. The draft session's context must be as long as this one's.
     * draft_p_min: a round's proposals stop where the draft's most likely
     * next token has less than this probability (its softmax; 0, the
     * default: always n_draft). Worth it for a draft that knows when it is
     * unsure; a small draft that agrees with the target's argmax while
     * spreading its probability (as the KJV pair of bench/ does) drafts
     * next to nothing with it. */
    sm_session *draft;
    int n_draft;
    float draft_p_min;
} sm_generate_params;

sm_generate_params sm_generate_default_params(void);

typedef struct sm_generate_stats {
    int n_prompt;            /* prompt tokens evaluated */
    int n_generated;         /* tokens sampled */
    double prompt_seconds;   /* evaluating the prompt */
    double gen_seconds;      /* from the first sampled token to the end */
    double ttft_seconds;     /* from the call to the first token's text */
    int stopped_by;          /* 0 = n_predict, 1 = an end-of-generation token (EOS,
                                end of turn: sm_token_is_eog), 2 = stop string,
                                3 = callback, 4 = context full, 5 = the grammar
                                is complete and allows nothing more */
    int n_reused;            /* tokens the session held that the prompt continues
                                (kept in the KV cache, not evaluated again) */
    int n_discarded;         /* tokens context shifts discarded */
    int n_gen_kept;          /* of the generated tokens, how many (the first ones) were
                                evaluated into the session; the last one sampled is not */
    int n_drafted;           /* speculative decoding: tokens the draft proposed */
    int n_draft_accepted;    /* ... and that the session kept */
} sm_generate_stats;

/* Tokenizes the prompt, evaluates it after whatever the session already
 * holds (or, with reuse_prefix, only the part that differs from it), then
 * samples and streams tokens to the callback. An empty prompt continues a
 * session that holds tokens. */
sm_status sm_generate(sm_session *session, const char *prompt,
                      const sm_generate_params *gp, sm_token_callback cb,
                      void *user, sm_generate_stats *stats, sm_error *err);

/* ------------------------------------------------------------- training */

typedef struct sm_train_params {
    const char *data, *val;       /* training text; validation text (or NULL) */
    float val_split;              /* without val: the last fraction of data (0.1) */
    const char *out;              /* the trained model (GGUF) */
    const char *arch;             /* "gpt2" or "llama" */
    int dim, layers, heads, kv_heads, ffn, ctx;
    const char *tokenizer;        /* "char" or a GGUF whose vocabulary to use */
    int batch, seq, steps, accum; /* sequences per micro-batch, their length, optimizer steps, micro-batches per step */
    float lr, min_lr, weight_decay, grad_clip;
    int warmup;
    uint64_t seed;
    int threads;
    int eval_every, checkpoint_every;
    const char *checkpoint;       /* where checkpoints go (default OUT.ckpt) */
    const char *resume;           /* continue from this checkpoint */
    const char *init;             /* or start from this model's weights */
    const char *log_csv;          /* a CSV of step, loss, val loss, lr, tok/s */
    int grad_checkpointing;       /* recompute each layer's activations in backward */
    int bf16;                     /* mixed precision: the weight matrices' products round both operands
                                     to BF16 and sum in F32 (F32 parameters, gradients and the rest);
                                     needs a CPU with AVX512_BF16; with LoRA the products through the
                                     frozen base, the adapters' own stay F32 */
    /* what the caller should hear about beyond the progress: stale temporary
     * files removed, a log or loss curve that could not be written (may be
     * NULL; called with sm_train's user pointer) */
    void (*notice)(void *user, const char *message);
    /* LoRA: train an adapter of this rank on the frozen `init` model (F32,
     * F16 or quantized: its weights are read where they are); `out` is then
     * the adapter, in llama.cpp's GGUF adapter format (sm_adapter_load).
     * Resuming a LoRA checkpoint needs the same `init`. */
    int lora_rank;                /* 0 = train every weight */
    float lora_alpha;             /* the adapter's scale is alpha / rank (0 = rank) */
    const char *lora_targets;     /* "q,k,v,o,gate,up,down" (NULL = all of these) */
    /* Chat fine-tuning: examples (sm_train_examples, below) instead of the
     * text of `data`, with the tokenizer of `init` or `resume`. */
    const struct sm_train_examples *examples, *val_examples;
    const char *chat_template;    /* written as the output's tokenizer.chat_template */
    /* Data parallelism (the command does it with MPI): this process is
     * `rank` of `n_ranks` (0 and 1 alone) and takes its equal share of every
     * batch (batch must divide by n_ranks); allreduce sums n floats in place
     * across the processes, the same result on each, and returns 0 (else
     * training stops). Only rank 0 writes files and calls progress. */
    int rank, n_ranks;
    int (*allreduce)(void *user, float *data, size_t n);
    void *comm_user;
    uint64_t *param_hash;         /* if set, receives an FNV-1a hash of the trained
                                     parameters' bytes (on every process) */
} sm_train_params;

/* Training examples: example i is tokens[offsets[i] .. offsets[i + 1]),
 * begin-of-text included if wanted; mask[j] = 1 when token j is predicted
 * with a loss (a chat model's replies), 0 when it is only context. Rows of
 * a batch are filled with whole examples (one too long is cut), padded with
 * masked tokens; the loss is the mean over the masked-in tokens. */
typedef struct sm_train_examples {
    const sm_token *tokens;
    const uint8_t *mask;
    const size_t *offsets;        /* n + 1 of them, from 0 */
    size_t n;
} sm_train_examples;

sm_train_params sm_train_default_params(void);

typedef struct sm_train_progress {
    int step, steps;
    float loss, val_loss;         /* val_loss < 0 until the first evaluation */
    float lr, grad_norm;
    double tokens_per_second, elapsed_seconds;
    int checkpointed;             /* a checkpoint was written after this step */
    uint64_t n_params;
    int vocab;
    uint64_t activation_bytes;    /* activations held for one step ... */
    uint64_t activation_bytes_full; /* ... and what they would be without checkpointing */
    int n_ranks;                  /* processes training together (tokens_per_second counts all) */
    double comm_seconds;          /* this step's time in allreduce */
} sm_train_progress;

/* Trains; calls progress after every optimizer step (may be NULL). The
 * loss curve is written as an SVG beside the output (OUT.loss.svg). Every
 * output (model, checkpoint, curve, log) is checked before the first step;
 * all are written as sm_output_open describes, except the log, which grows
 * row by row (a regular file, every write checked). */
sm_status sm_train(const sm_train_params *params, void (*progress)(void *user, const sm_train_progress *p),
                   void *user, sm_error *err);

/* ------------------------------------------------------------ profiling */

/* One node of a profiled session's scope tree: a step (by name) at one
 * place in the tree, in one layer (-1 outside the layers). Self time is
 * the inclusive time less the time of the children. */
typedef struct sm_profile_row {
    const char *name;
    int depth;               /* 0 for the top scopes */
    int parent;              /* row index, -1 for the top scopes */
    int layer;
    uint64_t calls;
    double incl_ms, self_ms, min_ms, max_ms;
    uint64_t flops;          /* arithmetic done, and bytes of weights */
    uint64_t bytes;          /* and activations read, over all calls */
    uint64_t alloc_count;    /* allocations made in this scope itself */
    uint64_t alloc_bytes;
} sm_profile_row;

/* Copies the tree in depth-first order; returns the number of rows (which
 * may exceed cap), or 0 when profiling is off. */
int sm_session_profile(const sm_session *session, sm_profile_row *rows, int cap);
/* Pauses (0) or resumes (1) the timing of a session created with profile
 * set; used to measure the profiler's own cost on identical memory. */
void sm_session_profile_enable(sm_session *session, int on);
/* Starts the accounts afresh (the tree keeps no history). */
void sm_session_profile_reset(sm_session *session);
/* Measurements of this machine and of the kernels, for reports. */
const char *sm_cpu_simd_features(void);   /* e.g. "avx512f avx2 fma" */
const char *sm_kernel_level(void);        /* the best kernel variant here */
const char *sm_kernels_list(void);        /* every variant this CPU runs, e.g. "scalar avx2 avx512" */
const char *sm_session_kernels(const sm_session *session);  /* the variant a session runs */
int sm_session_threads(const sm_session *session);
double sm_measure_peak_gflops(void);      /* FP32 FMA throughput of one core */
double sm_measure_read_gbps(size_t bytes);/* read bandwidth over a buffer of that size */

typedef struct sm_kernel_result {
    char name[48];
    char level[16];
    double value;
    const char *unit;    /* "GFLOP/s" or "GB/s" */
} sm_kernel_result;

/* Micro-benchmarks of the kernels (matmul 128/256/512, matvec, softmax,
 * GELU, SiLU, LayerNorm, RMSNorm); returns how many results were written. */
int sm_kernel_benchmarks(sm_kernel_result *out, int cap);

typedef struct sm_memory_info {
    uint64_t weights_mapped;     /* bytes of the model file mapped (or read, see weights_read) */
    uint64_t weights_resident;   /* of which in RAM now */
    uint64_t kv_cache;           /* bytes of the session's KV cache */
    uint64_t arena;              /* bytes of the session's arena (KV cache included) */
    uint64_t peak_rss;           /* the process's peak resident set */
    uint64_t weights_interleaved;/* heap copy of 32-element quantized matrices re-laid out for
                                    the AVX-512 VNNI kernels (0 without them) */
    int weights_read;            /* 1: the file was read into memory of the model's own
                                    (sm_model_params.no_mmap), not mapped */
} sm_memory_info;

void sm_session_memory(const sm_session *session, sm_memory_info *info);

/* --------------------------------------------------------- chat templates */

/* Formatting a conversation into the prompt text a chat model expects, the
 * way llama.cpp's built-in formatter (llama_chat_apply_template, at
 * c392e509) does: a template is either the name of a built-in format
 * ("chatml", "llama3", ...) or a model's Jinja template text, which is
 * recognised by the marker strings it contains (sm_chat_apply_jinja below
 * runs it as a Jinja program instead). No call allocates. Messages are NUL-terminated UTF-8. */
typedef struct sm_chat_message {
    const char *role;        /* "system", "user", "assistant", ... */
    const char *content;
} sm_chat_message;

/* The built-in template names, sorted, NULL-terminated; *n (if n is not
 * NULL) receives their count. */
const char *const *sm_chat_template_names(size_t *n);

/* The built-in format a template name or template text resolves to, e.g.
 * "chatml" for any text containing "<|im_start|>"; NULL if none. */
const char *sm_chat_template_detect(const char *tmpl);

/* The text that ends an assistant reply in that format, for a chat loop to
 * stop at ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "</s>", ...): the
 * marker the format writes after an assistant message or, for formats that
 * write none, the opener of the next user turn ("<|user|>" for chatglm).
 * NULL if tmpl resolves to no built-in format. */
const char *sm_chat_template_eot(const char *tmpl);

/* Formats msgs[0..n) with tmpl (a name or template text; NULL = "chatml").
 * add_assistant: end with the opening of an assistant reply (llama.cpp's
 * add_ass). Writes the prompt and a NUL into buf; *len receives its length
 * without the NUL. buf may be NULL (cap 0) to learn the length. When cap is
 * too small: SM_ERR_BUFFER_TOO_SMALL, *len holds the length needed.
 * An unrecognised template: SM_ERR_UNSUPPORTED with the list of names;
 * a role or content that is not valid UTF-8: SM_ERR_UTF8. */
sm_status sm_chat_apply(const char *tmpl, const sm_chat_message *msgs, size_t n, int add_assistant,
                        char *buf, size_t cap, size_t *len, sm_error *err);

/* Like sm_chat_apply, but writes only the bytes from offset `from` on: the
 * part of the prompt that is new since an earlier formatting of a prefix
 * of the conversation was `from` bytes long (llama.cpp's simple-chat loop).
 * *len is the length of that part. SM_ERR_INVALID_ARG if the prompt is
 * shorter than from. */
sm_status sm_chat_apply_from(const char *tmpl, const sm_chat_message *msgs, size_t n, int add_assistant,
                             size_t from, char *buf, size_t cap, size_t *len, sm_error *err);

/* The text one new message adds to a conversation, as llama.cpp's
 * common_chat_format_single does for llama-cli: formats past (without the
 * assistant opening) and past + msg (with add_assistant), returns what the
 * second adds beyond the length of the first, preceded by "\n" when
 * add_assistant is set and the first is non-empty and ends with a newline. */
sm_status sm_chat_format_single(const char *tmpl, const sm_chat_message *past, size_t n_past,
                                const sm_chat_message *msg, int add_assistant, char *buf, size_t cap,
                                size_t *len, sm_error *err);

typedef struct sm_chat_template_info {
    const char *name;        /* the built-in format used: "chatml", "llama3", ... */
    const char *eot;         /* as sm_chat_template_eot */
    const char *origin;      /* "argument", "model" (tokenizer.chat_template) or "default" */
    const char *warning;     /* one line for the user, or NULL: the model has no template,
                                or one that is not recognised, so chatml is used */
} sm_chat_template_info;

/* Which format sm_chat_format(model, tmpl, ...) uses. tmpl (a name or
 * template text) wins over the model's tokenizer.chat_template; an
 * unrecognised tmpl is an error (SM_ERR_UNSUPPORTED, listing the names).
 * With tmpl NULL, a model without a template or with one that is not
 * recognised falls back to chatml with a warning, as llama.cpp does. model
 * may be NULL (then tmpl or chatml). The strings are static. */
sm_status sm_chat_template_resolve(const sm_model *model, const char *tmpl, sm_chat_template_info *info,
                                   sm_error *err);

/* sm_chat_apply with the format sm_chat_template_resolve picks. */
sm_status sm_chat_format(const sm_model *model, const char *tmpl, const sm_chat_message *msgs, size_t n,
                         int add_assistant, char *buf, size_t cap, size_t *len, sm_error *err);

/* Running the template itself (llama.cpp's --jinja): tmpl is a model's
 * Jinja chat template, run as a Jinja program (the subset of Jinja2 chat
 * templates use; chat/jinja.c lists it) with the variables llama.cpp c392e509
 * gives it (minja): messages, add_generation_prompt, bos_token, eos_token,
 * raise_exception, strftime_now. As there, a template that does not write
 * a system message it is given (tried once with one) gets the system
 * messages merged into the next user message ("system\nuser"), and a
 * bos_token the result starts with and an eos_token it ends with are
 * removed (tokenizing adds them). Unlike the calls above these allocate
 * while they run (and free before returning). */
/* A JSON value a template run as Jinja sees beside the messages' roles and
 * contents: the tools a request offers, a message's tool calls. Built and
 * owned by the caller (nothing here parses JSON); calls only read it. */
typedef enum sm_chat_value_type {
    SM_CHAT_VALUE_NULL, SM_CHAT_VALUE_BOOL, SM_CHAT_VALUE_INT, SM_CHAT_VALUE_FLOAT, SM_CHAT_VALUE_STRING,
    SM_CHAT_VALUE_LIST, SM_CHAT_VALUE_DICT
} sm_chat_value_type;
typedef struct sm_chat_value {
    sm_chat_value_type type;
    long long i;                        /* BOOL (0 or 1), INT */
    double f;                           /* FLOAT */
    const char *s;                      /* STRING: s[0..n), UTF-8 */
    const struct sm_chat_value *items;  /* LIST: items[0..n); DICT: the values of keys[0..n) */
    const char *const *keys;            /* DICT: NUL-terminated keys, in order */
    size_t n;
    /* STRING: the same text read as JSON, when the caller has it (a tool
     * call's arguments: templates that take them as objects get this) */
    const struct sm_chat_value *json;
} sm_chat_value;

/* With tools, as llama.cpp's minja does, what the template cannot write
 * itself is written for it (probed once per call): the tools as a system
 * text with an example call, tool calls and tool results as JSON contents,
 * arguments as objects where the template wants them so. */
typedef struct sm_chat_jinja_params {
    const char *bos_token;   /* the template's bos_token and eos_token (NULL = "") */
    const char *eos_token;
    int add_assistant;       /* add_generation_prompt */
    long long now;           /* strftime_now's time, seconds since the epoch; -1 = the current time */
    const sm_chat_value *tools;                /* a LIST: the template's `tools` (NULL = none) */
    /* NULL, or one per message (each NULL or a DICT): fields the template
     * sees in that message beside role and content (tool_calls,
     * tool_call_id, name; a "content" here replaces the message's, e.g. by
     * null for a reply that only calls tools) */
    const sm_chat_value *const *extras;
    /* NULL, or a DICT of further variables the template sees (set after
     * the others, as minja's extra_context: llama.cpp gives Llama 3.x
     * templates tools_in_user_message and builtin_tools so) */
    const sm_chat_value *vars;
} sm_chat_jinja_params;

sm_chat_jinja_params sm_chat_jinja_default_params(void);

/* buf, cap and len as for sm_chat_apply. SM_ERR_FORMAT when the template
 * does not parse or fails on this conversation (raise_exception, a type
 * error, a runaway loop), with a message naming the template's line. */
sm_status sm_chat_apply_jinja(const char *tmpl, const sm_chat_message *msgs, size_t n,
                              const sm_chat_jinja_params *params, char *buf, size_t cap, size_t *len, sm_error *err);

/* sm_chat_apply_jinja with tmpl (template text) or else the model's
 * tokenizer.chat_template, and the model's BOS and EOS token texts; with
 * neither, the built-in chatml format. */
sm_status sm_chat_format_jinja(const sm_model *model, const char *tmpl, const sm_chat_message *msgs, size_t n,
                               int add_assistant, char *buf, size_t cap, size_t *len, sm_error *err);
/* The same with the messages' extra fields, the tools and further
 * variables (as in sm_chat_jinja_params; each may be NULL): what
 * llama.cpp's server gives the template for a request with tools. */
sm_status sm_chat_format_jinja_tools(const sm_model *model, const char *tmpl, const sm_chat_message *msgs, size_t n,
                                     const sm_chat_value *const *extras, const sm_chat_value *tools,
                                     const sm_chat_value *vars, int add_assistant, char *buf, size_t cap, size_t *len,
                                     sm_error *err);

/* 1 when the template writes both calls of a reply that calls two tools
 * (minja's parallel-calls probe; llama.cpp's server grants a request's
 * parallel_tool_calls only then), else 0. */
int sm_chat_jinja_parallel_calls(const char *tmpl);

/* ChatML as Jinja text (what sm_chat_template_detect and llama.cpp
 * recognise as chatml): written into models trained in chatml, and run
 * where tools need a template and the model has none. */
const char *sm_chat_chatml_jinja(void);

/* The template --jinja runs: tmpl when it is template text rather than a
 * built-in name, else the model's tokenizer.chat_template (model may be
 * NULL), tried on a one-message conversation so one that cannot run fails
 * here. *text receives a malloc'd copy (free it), or NULL when there is
 * none to run (tmpl a built-in name, or no template): the built-in formats
 * serve then. */
sm_status sm_chat_jinja_template(const sm_model *model, const char *tmpl, char **text, sm_error *err);

/* A string-valued metadata entry of a GGUF model (e.g.
 * "tokenizer.chat_template"): 1 and a pointer into the mapped file (not
 * NUL-terminated, valid while the model lives) and its length; 0 when
 * absent (and for llama2.c files); -1 when present but not a string. */
int sm_model_meta_str(const sm_model *model, const char *key, const char **str, size_t *len);

/* ------------------------------------------------- tokenizer options */

/* Flags for sm_tokenize_ex. */
#define SM_TOKENIZE_ADD_BOS       1u  /* begin with the beginning-of-text token, if the vocabulary has one */
/* Text that spells a special token (control, user-defined or unknown:
 * "<s>", "</s>", "<|user|>", ...) becomes that token, as llama.cpp's
 * llama_tokenize(..., parse_special = true) does; chat templates need it.
 * Without it only user-defined tokens are matched and the rest is plain text. */
#define SM_TOKENIZE_PARSE_SPECIAL 2u

/* sm_tokenize with flags; sm_tokenize(m, t, n, add_bos, ...) is
 * sm_tokenize_ex(m, t, n, add_bos ? SM_TOKENIZE_ADD_BOS : 0, ...). Unknown
 * flags give SM_ERR_INVALID_ARG. */
sm_status sm_tokenize_ex(const sm_model *model, const char *text, size_t len,
                         unsigned flags, sm_token *tokens, size_t capacity,
                         size_t *n_tokens, sm_error *err);


/* ------------------------------------------------- constrained generation
 *
 * GBNF grammars as llama.cpp defines them (its grammars/README.md): rules,
 * alternation, grouping, * + ? {m} {m,} {m,n}, character classes with
 * ranges and negation, ".", escapes, comments. A parsed grammar is
 * immutable and may be shared by any number of matchers (one per
 * generation, each used by one thread at a time). A matcher follows the
 * UTF-8 bytes of the text generated so far; token pieces may end in the
 * middle of a character. Nothing is allocated per byte; a matcher's memory
 * grows only while its stacks get deeper than ever before, and is bounded. */
typedef struct sm_grammar sm_grammar;
typedef struct sm_grammar_matcher sm_grammar_matcher;
typedef struct sm_grammar_vocab sm_grammar_vocab;

/* Parses GBNF text (len bytes, UTF-8). root names the start rule (NULL:
 * "root"). Errors give the line and column. Refused like llama.cpp does:
 * undefined rules, a missing start rule, left recursion; and beyond the
 * limits: 16 MiB of text, 4M elements once repetitions are expanded,
 * parentheses 256 deep, repetition counts above 100000. */
sm_status sm_grammar_parse(const char *text, size_t len, const char *root, sm_grammar **out, sm_error *err);
void sm_grammar_free(sm_grammar *grammar);

/* Fixed GBNF texts: any JSON value (for --json), and a JSON object
 * (OpenAI's response_format json_object). Whitespace between tokens is
 * limited, so a model cannot pad forever. */
const char *sm_grammar_json_value(void);
const char *sm_grammar_json_object(void);

sm_status sm_grammar_matcher_new(const sm_grammar *grammar, sm_grammar_matcher **out, sm_error *err);
sm_status sm_grammar_matcher_clone(const sm_grammar_matcher *m, sm_grammar_matcher **out, sm_error *err);
void sm_grammar_matcher_free(sm_grammar_matcher *m);
/* Back to the start of the grammar (also clears a failure). */
void sm_grammar_matcher_reset(sm_grammar_matcher *m);

/* Advances over bytes when the grammar allows all of them. When it does
 * not, returns SM_ERR_INVALID_ARG (saying which byte) and leaves the
 * matcher unchanged. SM_ERR_NOMEM: the matcher hit a limit (more than 8192
 * stacks at once - a hugely ambiguous grammar - or 1M stack nodes -
 * nesting far too deep); it stays failed until reset.
 * Sampling: try the token the sampler picked (sm_grammar_matcher_try_token,
 * or is_complete for EOS); only when it is rejected, mask the vocabulary
 * (sm_grammar_matcher_mask) and sample again among the allowed tokens. */
sm_status sm_grammar_matcher_accept(sm_grammar_matcher *m, const void *bytes, size_t len, sm_error *err);
/* 1 if accept would succeed, 0 if not (or the matcher has failed); never
 * changes what the matcher has accepted. */
int sm_grammar_matcher_try(sm_grammar_matcher *m, const void *bytes, size_t len);
/* The text so far is a complete sentence of the grammar (end of generation
 * allowed). */
int sm_grammar_matcher_is_complete(const sm_grammar_matcher *m);
/* Some byte can still follow (0 with is_complete: the output must end). */
int sm_grammar_matcher_can_continue(const sm_grammar_matcher *m);
/* For n candidate byte strings, allowed[i] = sm_grammar_matcher_try(...).
 * Empty strings are not allowed (they would let a model stall). */
sm_status sm_grammar_matcher_filter(sm_grammar_matcher *m, const char *const *pieces, const size_t *lens, size_t n,
                                    uint8_t *allowed, sm_error *err);

/* A vocabulary prepared once per model: the bytes each token adds to the
 * output (pieces[i], lens[i] bytes; an empty piece for control tokens such
 * as BOS/EOS, which the caller handles: EOS is allowed when the matcher is
 * complete). Shared read-only by any number of matchers. */
sm_status sm_grammar_vocab_new(const char *const *pieces, const size_t *lens, size_t n_tokens,
                               sm_grammar_vocab **out, sm_error *err);
void sm_grammar_vocab_free(sm_grammar_vocab *v);
size_t sm_grammar_vocab_size(const sm_grammar_vocab *v);
/* sm_grammar_matcher_try / _accept on token ids of a prepared vocabulary.
 * try_token is 0 for an id out of range or an empty piece. */
int sm_grammar_matcher_try_token(sm_grammar_matcher *m, const sm_grammar_vocab *v, int32_t token);
sm_status sm_grammar_matcher_accept_token(sm_grammar_matcher *m, const sm_grammar_vocab *v, int32_t token,
                                          sm_error *err);
/* allowed[t] (sm_grammar_vocab_size entries) = whether token t may come
 * next; *n_allowed (may be NULL) counts them. Walks a trie of the
 * vocabulary, so shared prefixes are matched once and rejected prefixes cut
 * whole subtrees. Use it when the sampler's best candidates are rejected. */
sm_status sm_grammar_matcher_mask(sm_grammar_matcher *m, const sm_grammar_vocab *v, uint8_t *allowed,
                                  size_t *n_allowed, sm_error *err);

/* A model's vocabulary prepared for grammars: each token's bytes as the
 * detokenizer prints them (control and end-of-generation tokens: none).
 * Once per model; shared by any number of sessions. */
sm_status sm_grammar_vocab_for_model(const sm_model *model, sm_grammar_vocab **out, sm_error *err);
/* sm_session_sample under a grammar, and the token accepted by the matcher
 * (an end-of-generation token only when the text so far is complete, and
 * then not accepted: generation ends there). llama.cpp's order: the
 * sampler's pick is tried first; only when the grammar rejects it is the
 * vocabulary masked (sm_grammar_matcher_mask) and a token sampled among the
 * allowed ones. sm_generate does this when sm_generate_params.grammar is set. */
sm_status sm_session_sample_grammar(sm_session *session, const sm_sampler_params *sp, sm_grammar_matcher *grammar,
                                    const sm_grammar_vocab *vocab, sm_token *token, sm_error *err);

/* ------------------------------------ profiling: timelines, rooflines, training profiles */

/* What a profiled step's bytes are, which decides the cache level a
 * roofline judges them against. */
enum sm_step_kind {
    SM_STEP_GROUP = 0,        /* it groups other steps: a layer, a token, a pass */
    SM_STEP_ACTIVATIONS = 1,  /* activations the step before it wrote: served by the level their size fits */
    SM_STEP_WEIGHTS = 2,      /* weights, read again only in the next pass */
    SM_STEP_KV_CACHE = 3      /* the KV cache, read again only in the next pass */
};

/* A row of the scope tree (sm_session_profile's) with what a roofline
 * needs besides. */
typedef struct sm_profile_step {
    sm_profile_row row;
    int kind;                 /* enum sm_step_kind */
    int fma;                  /* 1: its FLOPs are multiply-adds (products, attention), which the FMA peak bounds */
    int pass;                 /* 1: a pass (prefill, token, forward, backward): weights are read once in each */
    uint64_t tasks;           /* hand-offs to the thread pool: it ran on all of the session's threads */
    int int8;                 /* 1: most of its multiply-adds were 8-bit integer dots (quantized weights
                                 against the input quantized to 8 bits), which the int8 peak bounds */
    int bf16;                 /* 1: most were BF16 dots (training's mixed precision), which the BF16 peak bounds */
} sm_profile_step;

/* sm_session_profile with those fields; the same rows in the same order. */
int sm_session_profile_steps(const sm_session *session, sm_profile_step *rows, int cap);

/* Timelines: while recording, every scope a profiled session closes and
 * every thread's share of every thread-pool task (the workers included)
 * goes into a ring of events per thread (32 bytes each; the newest are
 * kept, so memory is bounded; no thread touches another's ring). Off, the
 * profiler pays one branch per scope and the pool one per task. */
sm_status sm_session_trace_start(sm_session *session, size_t events_per_thread, sm_error *err);
void sm_session_trace_stop(sm_session *session);   /* and frees the rings */
/* Whether a timeline records the pool's task shares (on by default). Off,
 * only the session's own steps go into it, and a task costs no clock read
 * on any thread: what a caller that needs only the steps' times (the
 * profile command without --trace) should choose. */
void sm_session_trace_tasks(sm_session *session, int on);

typedef struct sm_trace_write_params {
    int pid;                  /* the process id in the file (one per session when several share a file) */
    const char *process_name; /* "smallmind" when NULL */
    uint64_t origin_ns;       /* the CLOCK_MONOTONIC time that is ts 0; 0 = when recording began */
    uint64_t since_ns;        /* only events ending at or after this CLOCK_MONOTONIC time (0: all) */
    int events_only;          /* 1: only the events, each but the first after a comma, for a caller that
                                 writes several sessions into one {"traceEvents": [...]} */
} sm_trace_write_params;

sm_trace_write_params sm_trace_write_default_params(void);

/* Writes the recording as Chrome trace-event JSON (Perfetto and
 * chrome://tracing open it): a complete event ("X", ts and dur in
 * microseconds) per scope and per task share, thread names, counters
 * ("C") of tokens/s and of the bytes the session has allocated, and in
 * otherData the ring's size and the events it dropped. */
sm_status sm_session_trace_write(const sm_session *session, FILE *f, const sm_trace_write_params *wp, sm_error *err);

/* The recorded spans one thread closed, oldest first (the order in which
 * they ended): thread 0 is the session's own (its steps and its shares of
 * pool tasks), 1.. the pool's workers (their task shares). Returns how many
 * the ring holds (which may exceed cap: the first cap are written); 0 when
 * no trace is recorded. Valid until the recording changes. */
typedef struct sm_trace_span {
    const char *name;         /* the step; for a task share, the step that handed the task out */
    int layer;                /* -1 outside the layers */
    int task;                 /* 1: a share of a pool task, 0: a step */
    uint64_t start_ns, dur_ns;/* CLOCK_MONOTONIC */
} sm_trace_span;

size_t sm_session_trace_spans(const sm_session *session, int thread, sm_trace_span *out, size_t cap);

/* The machine's ceilings for a roofline, measured: the FP32 FMA peak and
 * the read bandwidth from each cache level and from memory, on one core
 * and on `threads` threads at once (each reading its own buffer). Buffers
 * are sized from the cache sizes (sysfs, else sysconf, else fixed
 * guesses); each figure is the best of a few trials. Takes about a second;
 * measure once per process. */
enum sm_mem_level { SM_MEM_L1, SM_MEM_L2, SM_MEM_L3, SM_MEM_DRAM, SM_MEM_LEVELS };

typedef struct sm_machine {
    size_t cache_bytes[3];    /* L1d, L2, L3 of cpu0 (L3 may be shared between cores) */
    const char *cache_source; /* "sysfs", "sysconf" or "default" */
    int threads;              /* the threads of the all-cores figures */
    double peak_gflops[2];    /* FP32 FMA: one core [0], all threads [1] */
    double read_gbps[2][SM_MEM_LEVELS];     /* one core [0], all threads [1] */
    size_t probe_bytes[2][SM_MEM_LEVELS];   /* the buffer each thread read */
    double seconds;           /* the time the measurement took */
    double peak_int8_gops[2]; /* 8-bit integer dots (AVX-512 VNNI), a multiply-add counted as two
                                 operations; one core [0], all threads [1]; 0 where the CPU has none */
    double peak_bf16_gflops[2]; /* BF16 dots into FP32 (AVX512_BF16's vdpbf16ps), the same way; 0 where none */
} sm_machine;

sm_status sm_measure_machine(int threads, sm_machine *out, sm_error *err);

/* Training with the profiler on: sm_train, with forward, backward and
 * optimizer timed per layer and operation. Every other optimizer step runs
 * with the profiler paused (the first is a warm-up and counts for
 * neither), so the profiler's cost is measured on the same run. */
typedef struct sm_train_profile sm_train_profile;

typedef struct sm_train_profile_params {
    const char *trace_path;   /* a Chrome trace of the profiled steps (NULL: none) */
    size_t trace_events;      /* events per thread of its rings (0: 262144) */
} sm_train_profile_params;

sm_status sm_train_profiled(const sm_train_params *params, const sm_train_profile_params *pp,
                            void (*progress)(void *user, const sm_train_progress *p), void *user,
                            sm_train_profile **out, sm_error *err);

typedef struct sm_train_profile_info {
    int threads, layers, dim, heads, ffn, vocab;   /* the model trained */
    int steps_profiled, steps_paused;       /* optimizer steps timed with and without the profiler */
    uint64_t tokens_per_step;
    double step_ms_profiled;                /* the fastest step of each kind (interference only adds) */
    double step_ms_paused;
    double wall_ms_profiled;                /* all profiled steps, by the loop's own clock */
    uint64_t parameter_bytes, gradient_bytes, moment_bytes;   /* the trainer's blocks */
    uint64_t activation_bytes, activation_bytes_full;         /* with and without gradient checkpointing */
    uint64_t scratch_bytes;                 /* backward temporaries and the products' buffers */
    uint64_t layer_parameter_bytes;         /* one transformer layer's parameters */
    /* the profiler's cost from its own measured cost per scope (and per
     * task hand-off) times the scopes (and hand-offs) of a timed step: a
     * steadier figure than the difference of step times on a busy machine */
    double scope_ns, scopes_per_step, overhead_estimate_pct;
    uint64_t frozen_bytes;                  /* LoRA: the frozen base's F32 copies (0: none, or not LoRA) */
} sm_train_profile_info;

void sm_train_profile_get_info(const sm_train_profile *tp, sm_train_profile_info *info);
/* The profiled steps' scope tree, as sm_session_profile_steps. */
int sm_train_profile_steps(const sm_train_profile *tp, sm_profile_step *rows, int cap);
void sm_train_profile_free(sm_train_profile *tp);
/* ------------------------------------------------------------ output files */
/* Every file SmallMind writes (models, checkpoints, the loss curve, profile
 * reports) goes through these calls, and a program may use them for its own:
 *   - only regular files are written: a destination that exists and is a
 *     directory, a device, a FIFO or a socket is refused, with a clear error,
 *     before anything is written; a symbolic link is followed and its target
 *     replaced (the link stays); a link to nothing is refused;
 *   - a file appears atomically: it is written to DEST.tmp-smallmind-XXXXXX
 *     beside the destination (the link's target), synced to disk, renamed
 *     over it, and the directory synced, so a reader or a crash sees the old
 *     file or the new one, never part of one;
 *   - every write is checked; a failed write (a full disk, a file size limit)
 *     fails the commit and leaves the destination as it was.
 * The process writing a temporary file holds an flock on it until the
 * rename; one left behind by a killed process is unlocked, and
 * sm_output_remove_stale deletes it. */
typedef struct sm_output sm_output;

/* Whether path can be written under these rules; nothing is created. */
sm_status sm_output_check(const char *path, sm_error *err);
/* Removes the temporary files of ours beside path that no live process is
 * writing (left by a killed or crashed writer), calling removed (may be
 * NULL) with each one's name and size. Returns how many were removed. */
int sm_output_remove_stale(const char *path, void (*removed)(void *user, const char *file, uint64_t bytes),
                           void *user);
/* Starts writing path: checks it, then creates its temporary file. */
sm_status sm_output_open(const char *path, sm_output **out, sm_error *err);
sm_status sm_output_write(sm_output *o, const void *data, size_t n, sm_error *err);
/* A stdio stream onto the temporary file, for writers that print (NULL when
 * it cannot be made; the commit then fails). Use it or sm_output_write, not
 * both after each other; its errors (a full disk) fail the commit too. */
FILE *sm_output_stream(sm_output *o);
/* Syncs the temporary file and renames it over the destination; on any
 * error (this one or an earlier write's) removes it and returns the error.
 * Frees o either way. */
sm_status sm_output_commit(sm_output *o, sm_error *err);
/* Abandons the file: removes the temporary file and frees o. */
void sm_output_discard(sm_output *o);

/* ------------------------------------------------------- chat sessions */

/* What a chat program (and a server) needs beyond one-shot generation:
 * knowing which tokens end a reply, keeping the KV cache of a conversation
 * across turns, carrying on when the context is full, and saving a session
 * to disk and resuming it.
 *
 * End of generation. A vocabulary's end-of-generation tokens, found when the
 * model is loaded by llama.cpp's rule (src/llama-vocab.cpp at c392e509): the
 * end-of-text token, the ids in tokenizer.ggml.eot_token_id, eom_token_id,
 * fim_pad/fim_rep/fim_sep_token_id (or, without those, the tokens found by
 * their text), and every token spelled <|eot_id|>, <|im_end|>, <|end|>,
 * <end_of_turn>, <|endoftext|>, <|eom_id|> or <EOT>. sm_generate stops at
 * any of them (stopped_by 1) unless ignore_eos is set. */
int sm_token_is_eog(const sm_model *model, sm_token token);
/* Copies up to cap of them, in ascending order, into out (may be NULL with
 * cap 0); returns how many there are. */
int sm_model_eog_tokens(const sm_model *model, sm_token *out, int cap);

/* The identity of a model file, computed once at load: a 64-bit hash of its
 * metadata and tensor table (for llama2.c files the header and tokenizer),
 * its size and a sample of its weight bytes. Saved sessions carry it. */
uint64_t sm_model_id(const sm_model *model);

/* KV reuse. Makes the session hold exactly tokens[0..n): the longest common
 * prefix of what it holds is kept, the rest of it forgotten, and only the
 * remaining tokens are evaluated (when all n are held already, nothing is
 * evaluated if the logits are those after tokens[n - 1], else the last token
 * is evaluated again). Afterwards sm_session_logits() is for the token after
 * tokens[n - 1]. *n_reused (may be NULL) receives the tokens kept. n >= 1.
 * sm_generate does the same with sm_generate_params.reuse_prefix set: the
 * prompt (text, tokenized from the start with the model's BOS rule, or
 * prompt_tokens) is the whole sequence, and stats.n_reused / stats.n_prompt
 * say how many of its tokens were kept and evaluated. Without reuse_prefix
 * the prompt is evaluated after everything the session holds (n_reused is
 * then what it held). */
sm_status sm_session_prefill(sm_session *session, const sm_token *tokens, size_t n, int *n_reused,
                             sm_error *err);

/* Context shift (llama.cpp's): forgets the n_discard tokens after the first
 * n_keep and moves the later ones down by n_discard positions, turning their
 * cached keys back by n_discard positions of RoPE (in the architecture's
 * layout, with its frequency factors and scaling, and the sliding-window
 * layers' own base) so that they are as if evaluated at their new
 * positions. n_keep + n_discard <= n_past. Models with learned positions
 * (gpt2) cannot shift: SM_ERR_UNSUPPORTED (n_discard 0 asks whether a model
 * can). The logits are stale afterwards: evaluate a token before sampling.
 * sm_generate shifts by itself when context_shift is set: whenever a token
 * does not fit it discards half of the tokens after the first n_keep (the
 * prompt too, if it does not fit). */
sm_status sm_session_shift(sm_session *session, int n_keep, int n_discard, sm_error *err);

/* Saved sessions. The file holds the tokens, the used part of the KV cache,
 * the last logits, the sampler's RNG state and its last settings, and
 * optional application data (a chat program's messages), after a versioned
 * header naming the model (sm_model_id) and before a 64-bit checksum. It is
 * written as sm_output_open describes: regular files only (a path that
 * exists and is a directory, device, FIFO or socket is refused; a symbolic
 * link's target is written), atomically, every write checked. */
sm_status sm_session_save(const sm_session *session, const char *path, sm_error *err);
sm_status sm_session_save_ex(const sm_session *session, const char *path, const void *app_data, size_t app_len,
                             sm_error *err);
/* Loads a saved session into a new one (params: threads, kernels, the KV
 * cache's types, and the context, which 0 leaves as it was saved; the seed is
 * replaced by the saved RNG state). The file's keys and values are F32
 * whatever cache saved them; an F16 cache rounds them as they load. A file of another model, a damaged or truncated one, or one
 * that holds more tokens than the context: SM_ERR_FORMAT or
 * SM_ERR_CONTEXT_FULL with a one-line message. */
sm_status sm_session_load(const sm_model *model, const char *path, const sm_session_params *params,
                          sm_session **out, sm_error *err);
/* Loads a saved session into an existing one (of the same model), replacing
 * what it holds; on any error the session is unchanged. */
sm_status sm_session_load_into(sm_session *session, const char *path, sm_error *err);
/* The application data of the session file last loaded into this session
 * (NULL, *len 0 if none); valid until the next load or the session's end. */
const void *sm_session_app_data(const sm_session *session, size_t *len);
/* The sampler settings of the session's last sm_session_sample (or of the
 * session it was loaded from): 1 and *out filled, or 0 if it has none. */
int sm_session_sampler(const sm_session *session, sm_sampler_params *out);

/* ------------------------------------- serving: batches of several sessions */

/* One session's part of a batch: its next tokens. */
typedef struct sm_batch_item {
    sm_session *session;
    const sm_token *tokens;
    int n_tokens;            /* at least 1 */
} sm_batch_item;

/* Runs the next tokens of several sessions of one model through the model
 * in one forward pass (continuous batching): every projection reads its
 * weights once for the rows of all of them; position encoding, attention
 * and the KV cache are each session's own. Afterwards each session holds
 * its tokens and sm_session_logits gives the logits after its last one,
 * exactly as sm_session_eval of the same tokens alone would (so what a
 * session generates does not depend on what it was batched with). The pass
 * runs on the activation buffers and threads of `workspace`, a session of
 * the same model that may or may not be one of the items (its own tokens
 * are untouched unless it is). The items' sessions must be distinct, and
 * all their tokens together at most sm_session_batch_cap(workspace). */
sm_status sm_session_eval_batch(sm_session *workspace, const sm_batch_item *items, int n_items, sm_error *err);
/* The most tokens one forward pass of this session takes (min(n_ctx, 128)). */
int sm_session_batch_cap(const sm_session *session);

/* Restarts the session's sampling RNG from a seed (as sm_session_params.seed). */
void sm_session_set_seed(sm_session *session, uint64_t seed);

/* The embedding of a text: the session is reset and the tokens evaluated;
 * out (model dim floats, sm_model_info.dim) receives the final hidden state
 * (after the final norm) averaged over the tokens and scaled to unit length,
 * as llama.cpp's mean pooling with L2 normalisation. The session then holds
 * the tokens; its logits are not computed. */
sm_status sm_session_embed(sm_session *session, const sm_token *tokens, size_t n, float *out, sm_error *err);

/* ------------------------------------------------------ LoRA adapters */

/* A LoRA adapter in llama.cpp's GGUF adapter format (general.type =
 * "adapter", adapter.type = "lora", adapter.lora.alpha, tensors
 * NAME.lora_a [cols, rank] and NAME.lora_b [rank, rows] for base tensors
 * NAME), loaded against the base model it adapts; `smallmind train
 * --lora-rank` writes them. A session with an adapter set computes
 * W x + scale * alpha / rank * B (A x) for every matrix W the adapter
 * targets (scale alone when alpha is 0, as llama.cpp does). The adapter
 * must outlive the sessions that use it and the model must outlive it. */
typedef struct sm_adapter sm_adapter;

sm_status sm_adapter_load(const sm_model *model, const char *path, sm_adapter **out, sm_error *err);
void sm_adapter_free(sm_adapter *adapter);

typedef struct sm_adapter_info {
    float alpha;
    int n_matrices;              /* base matrices it adapts */
    int max_rank;
    const char *chat_template;   /* the chat template it was trained with, or NULL */
} sm_adapter_info;

void sm_adapter_get_info(const sm_adapter *adapter, sm_adapter_info *info);

/* Applies the adapter with this scale from the next evaluation on (several
 * adapters add up, at most 8); setting it again changes its scale; scale 0
 * removes it. The session must be of the adapter's model and planned for
 * its rank (sm_session_params.lora_rank_max). Tokens already evaluated keep
 * the KV cache they had. */
sm_status sm_session_set_adapter(sm_session *session, const sm_adapter *adapter, float scale, sm_error *err);
void sm_session_clear_adapters(sm_session *session);

/* A conversation as training tokens (for sm_train_params.examples):
 * formatted with the template (as sm_chat_format picks it: tmpl, else the
 * model's, else chatml), tokenized with special tokens parsed, begun with
 * the begin-of-text token when add_bos is set and the model has one; mask[i]
 * is 1 for the tokens of the assistant's replies (content and end-of-turn
 * marker), 0 for the rest. Each reply is tokenized apart from the text
 * before it, as a chat loop generates it after the prompt. tokens and mask
 * may be NULL (cap 0) to learn the count; SM_ERR_BUFFER_TOO_SMALL when cap
 * is short (*n_tokens = the count needed); SM_ERR_UNSUPPORTED for a
 * template that does not write a conversation message by message. */
sm_status sm_chat_tokenize(const sm_model *model, const char *tmpl, const sm_chat_message *msgs, size_t n_msgs,
                           int add_bos, sm_token *tokens, uint8_t *mask, size_t cap, size_t *n_tokens, sm_error *err);
/* The same with the template run as Jinja (sm_chat_format_jinja: tmpl is
 * template text, NULL = the model's tokenizer.chat_template; with neither,
 * the built-in chatml), the model's BOS and EOS texts as bos_token and
 * eos_token. A leading BOS text is dropped (add_bos adds the token); a
 * trailing EOS text is kept, as the end of the last reply. strftime_now
 * gives one time for the whole call. */
sm_status sm_chat_tokenize_jinja(const sm_model *model, const char *tmpl, const sm_chat_message *msgs, size_t n_msgs,
                                 int add_bos, sm_token *tokens, uint8_t *mask, size_t cap, size_t *n_tokens,
                                 sm_error *err);

/* Writes BASE with adapters baked into its weights: W + scale * alpha / rank
 * * B A for each (scales[i] for adapter_paths[i]; NULL = all 1), each
 * changed matrix dequantized, summed in F32 and quantized back to its own
 * type, or every matrix converted to `type` (a single type as
 * sm_model_quantize_file names it: "F32", "F16", "Q8_0", "Q4_0", "Q4_K",
 * ...; NULL = keep the base's). A chat template an adapter
 * carries is written when the base has none. Written atomically. */
sm_status sm_model_merge_lora_file(const char *base_path, const char *const *adapter_paths, const float *scales,
                                   int n_adapters, const char *out_path, const char *type, sm_error *err);

#ifdef __cplusplus
}
#endif
#endif

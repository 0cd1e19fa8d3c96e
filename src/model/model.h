/* model.h - a loaded model: hyperparameters, views of the weights inside the
 * mapped file, and the vocabulary. Read-only once loaded, so any number of
 * sessions may share it. */
#ifndef SM_MODEL_MODEL_H
#define SM_MODEL_MODEL_H

#include <stdint.h>
#include "smallmind.h"
#include "core/mapfile.h"
#include "io/gguf.h"
#include "text/vocab.h"
#include "arch.h"

enum sm_model_format { SM_FORMAT_GGUF = 1, SM_FORMAT_LLAMA2C = 2 };

/* A weight matrix of `rows` outputs by `cols` inputs, row-major, in one of
 * the ggml element types. x16, when not NULL, holds the first rows / 16 * 16
 * rows again in the interleaved layout of kernels/interleave.h (Q4_0 and
 * Q8_0, when the CPU has kernels for it); data stays the GGUF layout. */
typedef struct sm_matrix {
    const void *data;
    uint32_t type;
    int rows, cols;
    const void *x16;
} sm_matrix;

/* One transformer block: every tensor a layer of any architecture may
 * have (arch.h's roles); what an architecture lacks is NULL (matrices:
 * data NULL). LLaMA has wq/wk/wv, w_gate/w_up/w_down and no biases; GPT-2
 * the fused wqkv, w_up/w_down, LayerNorm biases and a bias on every
 * projection. */
typedef struct sm_layer {
    const float *attn_norm, *attn_norm_b, *ffn_norm, *ffn_norm_b;
    sm_matrix wq, wk, wv, wqkv, wo, w_gate, w_up, w_down;
    const float *b_q, *b_k, *b_v, *b_qkv, *b_o, *b_gate, *b_up, *b_down;
    const float *q_norm, *k_norm;                /* per head or over the whole projection */
    const float *attn_post_norm, *ffn_post_norm; /* on a block's output, before the residual add */
    /* a mixture of experts: the router (n_expert rows), each stack of n_expert matrices as one matrix of
     * n_expert x ffn_exp rows (down: n_expert x dim), a shared expert and its gate vector */
    sm_matrix ffn_gate_inp, gate_exps, up_exps, down_exps, gate_shexp, up_shexp, down_shexp;
    const float *gate_inp_shexp;
} sm_layer;

struct sm_model {
    int kind;            /* enum sm_model_format */
    sm_mapped_file file, tok_file;   /* unmapped when loaded from buffers */
    sm_gguf gguf;
    int has_weights;
    sm_hparams hp;
    sm_matrix tok_embd, pos_embd, output;
    const float *output_norm, *output_norm_b;
    const float *tok_norm, *tok_norm_b;   /* the embeddings' LayerNorm (bloom), or NULL */
    const float *output_b;   /* the head's bias (phi2), or NULL */
    const float *rope_freqs, *rope_long, *rope_short;   /* RoPE frequency factors, or NULL */
    sm_layer *layers;
    sm_vocab vocab;
    char arch[32];
    char format[16];
    int l2c_header[7];   /* llama2.c files: the raw header, for inspect */
    char name[128];
    char warning[160];   /* a load warning for the caller to show, or "" */
    char unsupported[512];   /* loaded for inspection only: why it cannot run, or "" */
    uint64_t n_params, weights_bytes;
    uint64_t load_ns;    /* how long sm_model_load took */
    uint64_t id;         /* the file's identity (identity.c), for saved sessions */
    void *x16_mem;       /* every matrix's interleaved copy, one block */
    void *aligned_mem;   /* the tensors of a file whose alignment leaves them unaligned, copied */
    uint64_t x16_bytes;
    float *plain_norm;   /* dim ones then dim zeros: olmo's norms, a LayerNorm's missing bias */
    float *alibi_slopes; /* ALiBi: each head's slope (sm_alibi_slope_of), or NULL */
};

/* Where a role's tensor lives in a loaded model (layer ignored for the
 * model-wide roles): its matrix, or NULL for a vector role ... */
sm_matrix *sm_model_matrix(sm_model *m, int role, int layer);
/* ... or its vector, or NULL for a matrix role. */
const float **sm_model_vector(sm_model *m, int role, int layer);

/* Loads from memory (the buffers must outlive the model). tok may be NULL
 * for GGUF. Used by sm_model_load and by the fuzz targets. */
sm_status sm_model_load_buffers(const void *data, size_t size, const void *tok, size_t tok_size,
                                sm_model **out, sm_error *err);

/* The parts of loading: a GGUF file's vocabulary (vocab_gguf.c) and a
 * llama2.c model with its tokenizer (load_llama2c.c). */
sm_status sm_model_load_gguf_vocab(sm_model *m, sm_error *err);
sm_status sm_model_load_llama2c(sm_model *m, const void *data, size_t size, const void *tok, size_t tok_size,
                                sm_error *err);

/* Sets m->id from the file's bytes (and the llama2.c tokenizer's). */
void sm_model_compute_id(sm_model *m, const void *data, size_t size, const void *tok, size_t tok_size);

/* Adds the interleaved copies (sm_matrix.x16) when this CPU's best kernel
 * level reads them; without memory for them the model works as it is. */
void sm_model_interleave(sm_model *m);

#endif

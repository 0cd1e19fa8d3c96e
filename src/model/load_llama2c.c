/* load_llama2c.c - turns a llama2.c checkpoint (.bin) and its tokenizer
 * into an sm_model of the llama architecture: the header gives the
 * hyperparameters, the weight arrays become matrix views. */
#include "model.h"
#include "text/eog.h"
#include "core/alloc.h"
#include "core/error.h"
#include "io/llama2c.h"

#include <string.h>

static sm_matrix stacked(const float *base, int layer, int rows, int cols) {
    sm_matrix m = {base + (size_t)layer * rows * cols, SM_GGML_F32, rows, cols, NULL};
    return m;
}

sm_status sm_model_load_llama2c(sm_model *m, const void *data, size_t size, const void *tok, size_t tok_size,
                                sm_error *err) {
    sm_llama2c_model c;
    sm_status st = sm_llama2c_parse(data, size, &c, err);
    if (st) return st;
    if (!tok) return sm_fail(err, SM_ERR_INVALID_ARG, "a llama2.c model needs its tokenizer: pass -z TOKENIZER.bin");
    sm_llama2c_token *toks;
    if ((st = sm_llama2c_parse_tokenizer(tok, tok_size, c.vocab_size, &toks, err))) return st;
    sm_vocab_entry *e = sm_alloc((size_t)c.vocab_size * sizeof *e);
    if (!e) {
        sm_free(toks);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < c.vocab_size; i++) e[i] = (sm_vocab_entry){toks[i].text, toks[i].len, toks[i].score, 0};
    st = sm_vocab_build(&m->vocab, e, c.vocab_size, SM_VOCAB_SPM_PLAIN, err);
    sm_free(e);
    sm_free(toks);
    if (st) return st;
    /* llama2.c's convention: 0 = <unk>, 1 = BOS, 2 = EOS. */
    m->vocab.bos = c.vocab_size > 1 ? 1 : -1;
    m->vocab.eos = c.vocab_size > 2 ? 2 : -1;
    sm_vocab_mark_eog(&m->vocab, NULL);
    strcpy(m->arch, "llama");
    strcpy(m->format, "llama2.c");
    m->hp.arch = SM_ARCH_LLAMA;
    memcpy(m->l2c_header, data, sizeof m->l2c_header);
    sm_hparams *hp = &m->hp;
    hp->n_vocab = c.vocab_size;
    hp->n_ctx_train = c.seq_len;
    hp->dim = c.dim;
    hp->n_layers = c.n_layers;
    hp->n_heads = c.n_heads;
    hp->n_kv_heads = c.n_kv_heads;
    hp->head_dim = c.dim / c.n_heads;
    hp->ffn_dim = c.hidden_dim;
    hp->rope_dim = hp->head_dim;
    hp->rope_base = 10000.0f;
    hp->norm_eps = 1e-5f;
    if ((st = sm_arch_finish_hparams(hp, SM_ERR_FORMAT, err))) return st;
    int kv_dim = hp->n_kv_heads * hp->head_dim;
    m->tok_embd = (sm_matrix){c.token_embedding, SM_GGML_F32, c.vocab_size, c.dim, NULL};
    m->output = (sm_matrix){c.wcls, SM_GGML_F32, c.vocab_size, c.dim, NULL};
    m->output_norm = c.rms_final;
    m->layers = sm_calloc((size_t)hp->n_layers, sizeof *m->layers);
    if (!m->layers) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    for (int l = 0; l < hp->n_layers; l++) {
        sm_layer *L = &m->layers[l];
        L->attn_norm = c.rms_att + (size_t)l * c.dim;
        L->ffn_norm = c.rms_ffn + (size_t)l * c.dim;
        L->wq = stacked(c.wq, l, c.dim, c.dim);
        L->wk = stacked(c.wk, l, kv_dim, c.dim);
        L->wv = stacked(c.wv, l, kv_dim, c.dim);
        L->wo = stacked(c.wo, l, c.dim, c.dim);
        L->w_gate = stacked(c.w1, l, c.hidden_dim, c.dim);
        L->w_down = stacked(c.w2, l, c.dim, c.hidden_dim);
        L->w_up = stacked(c.w3, l, c.hidden_dim, c.dim);
    }
    m->weights_bytes = size - 28;
    m->n_params = m->weights_bytes / 4 - (uint64_t)c.seq_len * hp->head_dim;  /* freq_cis is not a parameter */
    m->has_weights = 1;
    return SM_OK;
}


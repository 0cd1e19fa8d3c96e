/* vocab_gguf.c - builds a loaded GGUF file's vocabulary from its
 * tokenizer.* metadata: the tokens, scores and types, byte-level BPE merges
 * and pre-tokenizer, and the special token ids. */
#include "model.h"
#include "core/alloc.h"
#include "core/error.h"
#include "text/bpe.h"
#include "text/eog.h"

#include <stdio.h>
#include <string.h>

static sm_status attach_bpe(sm_model *m, sm_error *err) {
    const sm_gguf *g = &m->gguf;
    const sm_gguf_kv *mk = sm_gguf_find(g, "tokenizer.ggml.merges");
    if (!mk || mk->type != SM_GGUF_ARRAY || mk->arr_type != SM_GGUF_STRING)
        return sm_fail(err, SM_ERR_FORMAT, "a gpt2 tokenizer needs 'tokenizer.ggml.merges' (a string array)");
    sm_text_span *merges = sm_alloc((size_t)(mk->arr_n ? mk->arr_n : 1) * sizeof *merges);
    if (!merges) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    const unsigned char *cur = mk->arr_data;
    for (uint64_t i = 0; i < mk->arr_n; i++) {
        sm_gguf_str s = sm_gguf_arr_next_str(&cur);
        merges[i] = (sm_text_span){s.ptr, (size_t)s.len};
    }
    sm_gguf_str pre = {NULL, 0};
    if (sm_gguf_get_str(g, "tokenizer.ggml.pre", &pre) < 0) pre.ptr = NULL;
    int fallback = 0;
    sm_status st = sm_bpe_attach(&m->vocab, pre.ptr, (size_t)pre.len, merges, (size_t)mk->arr_n, &fallback, err);
    sm_free(merges);
    if (st) return st;
    if (fallback == 1)
        snprintf(m->warning, sizeof m->warning, "unknown pre-tokenizer '%.*s': using llama.cpp's default split",
                 (int)(pre.len > 64 ? 64 : pre.len), pre.ptr);
    else if (fallback == 2)
        snprintf(m->warning, sizeof m->warning,
                 "no tokenizer.ggml.pre in the file: using llama.cpp's default split (text may split unlike "
                 "in the model's training)");
    return SM_OK;
}

sm_status sm_model_load_gguf_vocab(sm_model *m, sm_error *err) {
    const sm_gguf *g = &m->gguf;
    sm_gguf_str model;
    int r = sm_gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (r <= 0) return sm_fail(err, SM_ERR_FORMAT, "metadata key 'tokenizer.ggml.model' is missing or not a string");
    int kind;
    if (sm_gguf_str_eq(model, "llama")) kind = SM_VOCAB_SPM_MARKED;
    else if (sm_gguf_str_eq(model, "gpt2")) kind = SM_VOCAB_BPE;
    else
        return sm_fail(err, SM_ERR_UNSUPPORTED, "tokenizer model '%.*s' is not supported (supported: llama, gpt2)",
                       (int)(model.len > 64 ? 64 : model.len), model.ptr);
    const sm_gguf_kv *toks = sm_gguf_find(g, "tokenizer.ggml.tokens");
    if (!toks || toks->type != SM_GGUF_ARRAY || toks->arr_type != SM_GGUF_STRING)
        return sm_fail(err, SM_ERR_FORMAT, "metadata 'tokenizer.ggml.tokens' is missing or not a string array");
    if (toks->arr_n == 0 || toks->arr_n > (1u << 24))
        return sm_fail(err, SM_ERR_FORMAT, "vocabulary has %llu tokens", (unsigned long long)toks->arr_n);
    int n = (int)toks->arr_n;
    const sm_gguf_kv *scores = sm_gguf_find(g, "tokenizer.ggml.scores");
    const sm_gguf_kv *types = sm_gguf_find(g, "tokenizer.ggml.token_type");
    if (scores && (scores->type != SM_GGUF_ARRAY || scores->arr_n != (uint64_t)n ||
                   (scores->arr_type != SM_GGUF_FLOAT32 && scores->arr_type != SM_GGUF_FLOAT64)))
        return sm_fail(err, SM_ERR_FORMAT, "metadata 'tokenizer.ggml.scores' must be %d floats", n);
    if (types && (types->type != SM_GGUF_ARRAY || types->arr_n != (uint64_t)n || types->arr_type == SM_GGUF_STRING ||
                  types->arr_type == SM_GGUF_ARRAY))
        return sm_fail(err, SM_ERR_FORMAT, "metadata 'tokenizer.ggml.token_type' must be %d integers", n);
    sm_vocab_entry *e = sm_alloc((size_t)n * sizeof *e);
    if (!e) return sm_fail(err, SM_ERR_NOMEM, "out of memory reading the vocabulary");
    const unsigned char *cur = toks->arr_data;
    for (int i = 0; i < n; i++) {
        sm_gguf_str s = sm_gguf_arr_next_str(&cur);
        if (s.len > 4096) {
            sm_free(e);
            return sm_fail(err, SM_ERR_FORMAT, "token %d is %llu bytes long", i, (unsigned long long)s.len);
        }
        e[i].text = s.ptr;
        e[i].len = (uint32_t)s.len;
        e[i].score = scores ? (float)sm_gguf_arr_float(scores, (uint64_t)i) : 0.0f;
        int64_t t = types ? sm_gguf_arr_int(types, (uint64_t)i) : 0;
        e[i].type = (t >= 0 && t <= SM_TOK_BYTE) ? (int)t : SM_TOK_UNDEFINED;
    }
    sm_status st = sm_vocab_build(&m->vocab, e, n, kind, err);
    sm_free(e);
    if (st) return st;
    if (kind == SM_VOCAB_BPE && (st = attach_bpe(m, err))) return st;
    const char *id_keys[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                             "tokenizer.ggml.unknown_token_id"};
    int32_t *id_dst[] = {&m->vocab.bos, &m->vocab.eos, &m->vocab.unk};
    for (int k = 0; k < 3; k++) {
        int64_t v;
        int rr = sm_gguf_get_int(g, id_keys[k], &v);
        if (rr < 0 || (rr > 0 && (v < 0 || v >= n)))
            return sm_fail(err, SM_ERR_FORMAT, "metadata '%s' is not a token id below %d", id_keys[k], n);
        if (rr > 0) *id_dst[k] = (int32_t)v;
    }
    if (sm_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &m->vocab.add_bos) < 0)
        return sm_fail(err, SM_ERR_FORMAT, "metadata 'tokenizer.ggml.add_bos_token' is not a bool");
    if (sm_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &m->vocab.add_space_prefix) < 0)
        return sm_fail(err, SM_ERR_FORMAT, "metadata 'tokenizer.ggml.add_space_prefix' is not a bool");
    if (m->vocab.bos < 0) m->vocab.add_bos = 0;
    /* end-of-generation tokens: ids the file names (one out of range is
     * ignored, as llama.cpp does), the rest found by their text */
    const char *eog_keys[] = {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id",
                              "tokenizer.ggml.fim_pad_token_id", "tokenizer.ggml.fim_rep_token_id",
                              "tokenizer.ggml.fim_sep_token_id", "tokenizer.ggml.fim_pre_token_id",
                              "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.fim_mid_token_id",
                              /* their older names */
                              "tokenizer.ggml.prefix_token_id", "tokenizer.ggml.suffix_token_id",
                              "tokenizer.ggml.middle_token_id"};
    sm_eog_ids ids = {-1, -1, -1, -1, -1, -1, -1, -1};
    int32_t *eog_dst[] = {&ids.eot,     &ids.eom,     &ids.fim_pad, &ids.fim_rep, &ids.fim_sep, &ids.fim_pre,
                          &ids.fim_suf, &ids.fim_mid, &ids.fim_pre, &ids.fim_suf, &ids.fim_mid};
    for (int k = 0; k < (int)(sizeof eog_keys / sizeof eog_keys[0]); k++) {
        int64_t v;
        if (sm_gguf_get_int(g, eog_keys[k], &v) > 0 && v >= 0 && v < n) *eog_dst[k] = (int32_t)v;
    }
    sm_vocab_mark_eog(&m->vocab, &ids);
    sm_vocab_find_fim(&m->vocab, &ids);
    sm_gguf_str name = {NULL, 0}, pre = {NULL, 0};
    sm_gguf_get_str(g, "general.name", &name);
    sm_gguf_get_str(g, "tokenizer.ggml.pre", &pre);
    sm_vocab_set_strip_rules(&m->vocab, name.ptr, (size_t)name.len, pre.ptr, (size_t)pre.len);
    return SM_OK;
}


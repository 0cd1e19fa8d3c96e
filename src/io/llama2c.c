/* llama2c.c - see llama2c.h. */
#include "llama2c.h"
#include "core/alloc.h"
#include "core/error.h"

#include <math.h>
#include <string.h>

/* Generous bounds: far above any llama2.c model, far below overflow. */
#define MAX_DIM 65536
#define MAX_LAYERS 1024
#define MAX_VOCAB (1 << 22)
#define MAX_SEQ (1 << 22)

sm_status sm_llama2c_parse(const void *data, size_t size, sm_llama2c_model *m, sm_error *err) {
    memset(m, 0, sizeof *m);
    int32_t h[7];
    if (size < sizeof h)
        return sm_fail(err, SM_ERR_FORMAT, "file is %zu bytes, too short for a llama2.c header (28 bytes)", size);
    memcpy(h, data, sizeof h);
    m->dim = h[0]; m->hidden_dim = h[1]; m->n_layers = h[2]; m->n_heads = h[3];
    m->n_kv_heads = h[4]; m->seq_len = h[6];
    m->shared_classifier = h[5] > 0;
    if (h[5] == INT32_MIN)
        return sm_fail(err, SM_ERR_FORMAT, "llama2.c header: vocab_size is invalid");
    m->vocab_size = h[5] < 0 ? -h[5] : h[5];
    if (m->dim <= 0 || m->dim > MAX_DIM || m->hidden_dim <= 0 || m->hidden_dim > 16 * MAX_DIM ||
        m->n_layers <= 0 || m->n_layers > MAX_LAYERS || m->n_heads <= 0 || m->n_heads > m->dim ||
        m->n_kv_heads <= 0 || m->n_kv_heads > m->n_heads || m->vocab_size <= 0 ||
        m->vocab_size > MAX_VOCAB || m->seq_len <= 0 || m->seq_len > MAX_SEQ)
        return sm_fail(err, SM_ERR_FORMAT,
                       "llama2.c header out of range (dim %d, hidden %d, layers %d, heads %d, kv heads %d, "
                       "vocab %d, seq_len %d): not a llama2.c model?",
                       h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
    if (m->dim % m->n_heads != 0 || m->n_heads % m->n_kv_heads != 0 || (m->dim / m->n_heads) % 2 != 0)
        return sm_fail(err, SM_ERR_FORMAT,
                       "llama2.c header: dim %d, heads %d, kv heads %d do not divide into even head sizes",
                       m->dim, m->n_heads, m->n_kv_heads);
    /* Every product below is bounded by the limits above to < 2^62. */
    uint64_t dim = (uint64_t)m->dim, hid = (uint64_t)m->hidden_dim, L = (uint64_t)m->n_layers;
    uint64_t vocab = (uint64_t)m->vocab_size, head = dim / (uint64_t)m->n_heads;
    uint64_t kv_dim = head * (uint64_t)m->n_kv_heads;
    uint64_t counts[] = {
        vocab * dim,      /* token_embedding */
        L * dim,          /* rms_att */
        L * dim * dim,    /* wq */
        L * dim * kv_dim, /* wk */
        L * dim * kv_dim, /* wv */
        L * dim * dim,    /* wo */
        L * dim,          /* rms_ffn */
        L * hid * dim,    /* w1 */
        L * dim * hid,    /* w2 */
        L * hid * dim,    /* w3 */
        dim,              /* rms_final */
        (uint64_t)m->seq_len * head / 2, /* freq_cis_real */
        (uint64_t)m->seq_len * head / 2, /* freq_cis_imag */
        m->shared_classifier ? 0 : vocab * dim, /* wcls */
    };
    uint64_t total = 0;
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) total += counts[i];
    uint64_t expected = 28 + total * 4;
    if ((uint64_t)size != expected)
        return sm_fail(err, SM_ERR_FORMAT,
                       "llama2.c file should be %llu bytes for its header (dim %d, layers %d, vocab %d) but is "
                       "%zu bytes: truncated or not a llama2.c model",
                       (unsigned long long)expected, m->dim, m->n_layers, m->vocab_size, size);
    const float *p = (const float *)((const char *)data + 28);
    const float **dst[] = {&m->token_embedding, &m->rms_att, &m->wq, &m->wk, &m->wv, &m->wo,
                           &m->rms_ffn, &m->w1, &m->w2, &m->w3, &m->rms_final, NULL, NULL, &m->wcls};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        if (dst[i]) *dst[i] = p;
        p += counts[i];
    }
    if (m->shared_classifier) m->wcls = m->token_embedding;
    return SM_OK;
}

sm_status sm_llama2c_parse_tokenizer(const void *data, size_t size, int n_vocab,
                                     sm_llama2c_token **out, sm_error *err) {
    *out = NULL;
    const unsigned char *p = data, *end = p + size;
    if (n_vocab <= 0 || n_vocab > MAX_VOCAB)
        return sm_fail(err, SM_ERR_INVALID_ARG, "tokenizer: vocabulary size %d out of range", n_vocab);
    int32_t max_len;
    if (size < 4) return sm_fail(err, SM_ERR_FORMAT, "tokenizer file is too short (%zu bytes)", size);
    memcpy(&max_len, p, 4);
    p += 4;
    if (max_len <= 0 || max_len > (1 << 16))
        return sm_fail(err, SM_ERR_FORMAT, "tokenizer: max_token_length %d is not plausible", max_len);
    sm_llama2c_token *toks = sm_calloc((size_t)n_vocab, sizeof *toks);
    if (!toks) return sm_fail(err, SM_ERR_NOMEM, "out of memory reading the tokenizer");
    for (int i = 0; i < n_vocab; i++) {
        int32_t len;
        if ((size_t)(end - p) < 8) {
            sm_free(toks);
            return sm_fail(err, SM_ERR_FORMAT,
                           "tokenizer file ends at token %d of %d: truncated, or made for another model", i, n_vocab);
        }
        memcpy(&toks[i].score, p, 4);
        memcpy(&len, p + 4, 4);
        p += 8;
        if (len < 0 || len > max_len || (size_t)(end - p) < (size_t)len) {
            sm_free(toks);
            return sm_fail(err, SM_ERR_FORMAT, "tokenizer: token %d has length %d (max %d, %zu bytes left)", i,
                           len, max_len, (size_t)(end - p));
        }
        if (!isfinite(toks[i].score)) {
            sm_free(toks);
            return sm_fail(err, SM_ERR_FORMAT, "tokenizer: token %d has a score that is not a finite number", i);
        }
        toks[i].text = (const char *)p;
        toks[i].len = (uint32_t)len;
        p += len;
    }
    if (p != end) {
        sm_free(toks);
        return sm_fail(err, SM_ERR_FORMAT,
                       "tokenizer has %zu bytes left after the model's %d tokens: it belongs to another model",
                       (size_t)(end - p), n_vocab);
    }
    *out = toks;
    return SM_OK;
}

/* session_file.c - saving a session to a file and loading it back
 * (sm_session_save / sm_session_load): its tokens, the used part of its KV
 * cache, its last logits, the sampler's RNG state and settings, and the
 * caller's application data, behind a header that names the model.
 *
 * Layout (integers and floats as this machine stores them; the byte-order
 * mark makes a file from a machine of the other order a clear error):
 *
 *    0  char[8]  magic "SMSESS\n\x1a"
 *    8  u32      version (1)
 *   12  u32      byte-order mark 0x01020304
 *   16  u64      the model's identity (sm_model_id)
 *   24  u32      layers, 28 u32 KV width (KV heads x head size), 32 u32 vocabulary size
 *   36  u32      context of the saving session, 40 u32 tokens held (n_past)
 *   44  u32      flags: 1 = logits follow, 2 = sampler settings are set
 *   48  u64      the sampler's RNG state
 *   56  f32 temperature, i32 top_k, f32 top_p, f32 min_p, f32 repeat_penalty, i32 repeat_last_n
 *   80  u64      application data bytes
 *   88  u64      payload bytes (everything from offset 96 to the checksum)
 *   96  payload: the tokens (i32 x n_past); the logits (f32 x vocabulary), if
 *                flagged; every layer's keys, then every layer's values, of
 *                positions 0..n_past-1 (f32 x KV width each); the application data
 *  end  u64      checksum of every byte before it (core/hash.h's streaming hash)
 *
 * Loading checks the whole file (size, header, checksum, model, token ids,
 * sampler settings) before anything in the session changes. Saving goes
 * through core/outfile.c like every file SmallMind writes: regular files
 * only (a symbolic link's target is written), atomically, every write
 * checked (docs/ARCHITECTURE.md, "Writing files"). */
#include "session.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/mapfile.h"

#include <string.h>
#include <sys/stat.h>

#define MAGIC "SMSESS\n\x1a"
#define VERSION 1u
#define BOM 0x01020304u
#define HEADER_BYTES 96
#define FLAG_LOGITS 1u
#define FLAG_SAMPLER 2u
#define FLAG_IGNORE_EOS 4u   /* the sampler's ignore_eos */

typedef struct header {
    char magic[8];
    uint32_t version, bom;
    uint64_t model_id;
    uint32_t n_layers, kv_dim, n_vocab, n_ctx, n_past, flags;
    uint64_t rng;
    float temperature;
    int32_t top_k;
    float top_p, min_p, repeat_penalty;
    int32_t repeat_last_n;
    uint64_t app_len, payload;
} header;
_Static_assert(sizeof(header) == HEADER_BYTES, "the session file header is 96 bytes");

/* ------------------------------------------------------------- writing */

/* The file being written and the checksum of what went into it; the first
 * failed write's status sticks (sm_output_commit reports it too). */
typedef struct out_file {
    sm_output *o;
    sm_status st;
    sm_hasher hash;
    sm_error *err;
} out_file;

static void out_write(out_file *f, const void *data, size_t n) {
    sm_hasher_add(&f->hash, data, n);
    if (!f->st) f->st = sm_output_write(f->o, data, n, f->err);
}

sm_status sm_session_save_ex(const sm_session *s, const char *path, const void *app, size_t app_len, sm_error *err) {
    if (!s || !path || (!app && app_len))
        return sm_fail(err, SM_ERR_INVALID_ARG, "sm_session_save: a session and a path are required");
    const sm_hparams *hp = &s->model->hp;
    uint32_t kv_dim = (uint32_t)(hp->n_kv_heads * hp->head_dim);
    size_t row = (size_t)kv_dim * sizeof(float);
    header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, 8);
    h.version = VERSION;
    h.bom = BOM;
    h.model_id = s->model->id;
    h.n_layers = (uint32_t)hp->n_layers;
    h.kv_dim = kv_dim;
    h.n_vocab = (uint32_t)hp->n_vocab;
    h.n_ctx = (uint32_t)s->n_ctx;
    h.n_past = (uint32_t)s->n_past;
    int logits = s->logits_valid && s->n_past > 0;
    h.flags = (logits ? FLAG_LOGITS : 0) | (s->has_sampler ? FLAG_SAMPLER : 0) |
              (s->has_sampler && s->sampler.ignore_eos ? FLAG_IGNORE_EOS : 0);
    h.rng = s->rng;
    if (s->has_sampler) {
        h.temperature = s->sampler.temperature;
        h.top_k = s->sampler.top_k;
        h.top_p = s->sampler.top_p;
        h.min_p = s->sampler.min_p;
        h.repeat_penalty = s->sampler.repeat_penalty;
        h.repeat_last_n = s->sampler.repeat_last_n;
    }
    h.app_len = app_len;
    h.payload = (uint64_t)s->n_past * sizeof(sm_token) + (logits ? (uint64_t)hp->n_vocab * sizeof(float) : 0) +
                2ull * hp->n_layers * s->n_past * row + app_len;
    out_file o;
    memset(&o, 0, sizeof o);
    o.err = err;
    sm_hasher_init(&o.hash);
    sm_status st = sm_output_open(path, &o.o, err);
    if (st) return st;
    out_write(&o, &h, sizeof h);
    out_write(&o, s->history, (size_t)s->n_past * sizeof(sm_token));
    if (logits) out_write(&o, s->logits, (size_t)hp->n_vocab * sizeof(float));
    /* the rows as F32 whatever the cache's type, batch_cap at a time through
     * the batch's key buffer (scratch between evaluations) */
    for (int kind = 0; kind < 2; kind++)
        for (int l = 0; l < hp->n_layers; l++)
            for (int p = 0; p < s->n_past; p += s->batch_cap) {
                int n = s->n_past - p < s->batch_cap ? s->n_past - p : s->batch_cap;
                sm_kv_read(s, kind, l, p, s->k_rows, n);
                out_write(&o, s->k_rows, (size_t)n * row);
            }
    if (app_len) out_write(&o, app, app_len);
    uint64_t sum = sm_hasher_end(&o.hash);
    out_write(&o, &sum, sizeof sum);
    if (o.st) {
        sm_output_discard(o.o);
        return o.st;
    }
    return sm_output_commit(o.o, err);
}

sm_status sm_session_save(const sm_session *s, const char *path, sm_error *err) {
    return sm_session_save_ex(s, path, NULL, 0, err);
}

/* ------------------------------------------------------------- reading */

/* A checked file: where each part is. */
typedef struct parsed {
    header h;
    const unsigned char *tokens, *logits, *keys, *values, *app;
} parsed;

static sm_status parse(const sm_model *m, const unsigned char *d, size_t size, parsed *p, sm_error *err) {
    memset(p, 0, sizeof *p);
    if (size < 8 || memcmp(d, MAGIC, 8) != 0)
        return sm_fail(err, SM_ERR_FORMAT, "not a SmallMind session file (no SMSESS header)");
    if (size < HEADER_BYTES + 8)
        return sm_fail(err, SM_ERR_FORMAT, "the session file is truncated (%zu bytes; its header alone is %d)", size,
                       HEADER_BYTES + 8);
    header *h = &p->h;
    memcpy(h, d, sizeof *h);
    if (h->bom != BOM)
        return sm_fail(err, SM_ERR_FORMAT, "the session file was written on a machine of the other byte order");
    if (h->version != VERSION)
        return sm_fail(err, SM_ERR_UNSUPPORTED, "session file version %u is not supported (this build reads version %u)",
                       h->version, VERSION);
    /* the sizes, checked for overflow: each count is below 2^32 and each
     * product below 2^64 as long as the factors are bounded like this */
    if (h->n_layers > (1u << 16) || h->kv_dim > (1u << 24) || h->n_vocab > (1u << 24) || h->n_past > (1u << 24) ||
        h->n_past > h->n_ctx || h->app_len > ((uint64_t)1 << 48))
        return sm_fail(err, SM_ERR_FORMAT, "the session file's header is damaged (impossible sizes)");
    uint64_t row = (uint64_t)h->kv_dim * sizeof(float);
    uint64_t kv_bytes = (uint64_t)h->n_layers * h->n_past * row;
    uint64_t need = (uint64_t)h->n_past * sizeof(sm_token) +
                    ((h->flags & FLAG_LOGITS) ? (uint64_t)h->n_vocab * sizeof(float) : 0) + 2 * kv_bytes + h->app_len;
    if (need != h->payload) return sm_fail(err, SM_ERR_FORMAT, "the session file's header is damaged (sizes disagree)");
    uint64_t total = HEADER_BYTES + need + 8;
    if ((uint64_t)size < total)
        return sm_fail(err, SM_ERR_FORMAT, "the session file is truncated (%zu of %llu bytes)", size,
                       (unsigned long long)total);
    if ((uint64_t)size > total)
        return sm_fail(err, SM_ERR_FORMAT, "the session file has %llu bytes after its end",
                       (unsigned long long)((uint64_t)size - total));
    sm_hasher hs;
    sm_hasher_init(&hs);
    sm_hasher_add(&hs, d, size - 8);
    uint64_t sum;
    memcpy(&sum, d + size - 8, 8);
    if (sm_hasher_end(&hs) != sum) return sm_fail(err, SM_ERR_FORMAT, "the session file is damaged (checksum mismatch)");
    const sm_hparams *hp = &m->hp;
    if (h->model_id != m->id || h->n_layers != (uint32_t)hp->n_layers ||
        h->kv_dim != (uint32_t)(hp->n_kv_heads * hp->head_dim) || h->n_vocab != (uint32_t)hp->n_vocab)
        return sm_fail(err, SM_ERR_INVALID_ARG, "the session was saved from another model (model id %016llx; this "
                       "model is %016llx)", (unsigned long long)h->model_id, (unsigned long long)m->id);
    if (h->flags & ~(FLAG_LOGITS | FLAG_SAMPLER | FLAG_IGNORE_EOS))
        return sm_fail(err, SM_ERR_FORMAT, "the session file has unknown flags 0x%x", h->flags);
    if ((h->flags & FLAG_LOGITS) && h->n_past == 0)
        return sm_fail(err, SM_ERR_FORMAT, "the session file has logits but no tokens");
    if (h->flags & FLAG_SAMPLER) {
        sm_sampler_params sp = {h->temperature, h->top_k, h->top_p, h->min_p,
                                h->repeat_penalty, h->repeat_last_n, 0.0f, 0.0f, 0};
        if (!sm_sampler_params_ok(&sp))
            return sm_fail(err, SM_ERR_FORMAT, "the session file's sampler settings are out of range");
    }
    const unsigned char *at = d + HEADER_BYTES;
    p->tokens = at;
    at += (size_t)h->n_past * sizeof(sm_token);
    if (h->flags & FLAG_LOGITS) {
        p->logits = at;
        at += (size_t)h->n_vocab * sizeof(float);
    }
    p->keys = at;
    p->values = at + kv_bytes;
    p->app = at + 2 * kv_bytes;
    for (uint32_t i = 0; i < h->n_past; i++) {
        int32_t t;
        memcpy(&t, p->tokens + (size_t)i * sizeof t, sizeof t);
        if (t < 0 || t >= hp->n_vocab)
            return sm_fail(err, SM_ERR_FORMAT, "the session file holds token id %d, outside the vocabulary", t);
    }
    return SM_OK;
}

/* Replaces what the session holds with the parsed file (which fits). */
static sm_status apply(sm_session *s, const parsed *p, sm_error *err) {
    const header *h = &p->h;
    void *app = NULL;
    if (h->app_len) {
        if (!(app = sm_alloc((size_t)h->app_len)))
            return sm_fail(err, SM_ERR_NOMEM, "out of memory for the session's %llu bytes of application data",
                           (unsigned long long)h->app_len);
        memcpy(app, p->app, (size_t)h->app_len);
    }
    sm_free(s->app);
    s->app = app;
    s->app_len = (size_t)h->app_len;
    size_t row = (size_t)h->kv_dim * sizeof(float);
    memcpy(s->history, p->tokens, (size_t)h->n_past * sizeof(sm_token));
    /* the file's F32 rows, batch_cap at a time through the batch's key
     * buffer (aligned), stored in the cache's type */
    for (int kind = 0; kind < 2; kind++)
        for (uint32_t l = 0; l < h->n_layers; l++)
            for (int q = 0; q < (int)h->n_past; q += s->batch_cap) {
                int n = (int)h->n_past - q < s->batch_cap ? (int)h->n_past - q : s->batch_cap;
                memcpy(s->k_rows, (kind ? p->values : p->keys) + ((size_t)l * h->n_past + (size_t)q) * row, (size_t)n * row);
                sm_kv_store(s, kind, (int)l, q, s->k_rows, n);
            }
    s->n_past = (int)h->n_past;
    s->logits_valid = p->logits != NULL;
    if (p->logits) memcpy(s->logits, p->logits, (size_t)h->n_vocab * sizeof(float));
    s->rng = h->rng;
    s->has_sampler = (h->flags & FLAG_SAMPLER) != 0;
    if (s->has_sampler)
        s->sampler = (sm_sampler_params){h->temperature, h->top_k, h->top_p, h->min_p, h->repeat_penalty,
                                         h->repeat_last_n, 0.0f, 0.0f, (h->flags & FLAG_IGNORE_EOS) != 0};
    /* (the OpenAI penalties are not saved) */
    return SM_OK;
}

sm_status sm_session_load_buffer(sm_session *s, const void *data, size_t size, sm_error *err) {
    parsed p;
    sm_status st = parse(s->model, data, size, &p, err);
    if (st) return st;
    if (p.h.n_past > (uint32_t)s->n_ctx)
        return sm_fail(err, SM_ERR_CONTEXT_FULL, "the saved session holds %u tokens but this context has %d (use -c %u "
                       "or more)", p.h.n_past, s->n_ctx, p.h.n_past);
    return apply(s, &p, err);
}

/* Maps a session file (whose errors name it). */
static sm_status map_session(const char *path, sm_mapped_file *f, sm_error *err) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return sm_fail(err, SM_ERR_IO, "'%s' is a directory, not a session file", path);
    return sm_map_file(path, f, err);
}

sm_status sm_session_load_into(sm_session *s, const char *path, sm_error *err) {
    if (!s || !path) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_session_load_into: a session and a path are required");
    sm_mapped_file f;
    sm_status st = map_session(path, &f, err);
    if (st) return st;
    st = sm_session_load_buffer(s, f.data, f.size, err);
    sm_unmap_file(&f);
    if (st) sm_error_prefix(err, "%s", path);
    return st;
}

sm_status sm_session_load(const sm_model *m, const char *path, const sm_session_params *params, sm_session **out,
                          sm_error *err) {
    if (out) *out = NULL;
    if (!m || !path || !out) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_session_load: model, path and out are required");
    sm_mapped_file f;
    sm_status st = map_session(path, &f, err);
    if (st) return st;
    parsed p;
    st = parse(m, f.data, f.size, &p, err);
    if (st == SM_OK) {
        sm_session_params sp = params ? *params : sm_session_default_params();
        if (sp.n_ctx == 0) sp.n_ctx = (int)p.h.n_ctx;
        if (sp.n_ctx < (int)p.h.n_past)
            st = sm_fail(err, SM_ERR_CONTEXT_FULL, "the saved session holds %u tokens but the context asked for is %d "
                         "(use -c %u or more)", p.h.n_past, sp.n_ctx, p.h.n_past);
        else if ((st = sm_session_create(m, &sp, out, err)) == SM_OK && (st = apply(*out, &p, err)) != SM_OK) {
            sm_session_free(*out);
            *out = NULL;
        }
    }
    sm_unmap_file(&f);
    if (st) sm_error_prefix(err, "%s", path);
    return st;
}

const void *sm_session_app_data(const sm_session *s, size_t *len) {
    if (len) *len = s ? s->app_len : 0;
    return s && s->app_len ? s->app : NULL;
}

int sm_session_sampler(const sm_session *s, sm_sampler_params *out) {
    if (!s || !s->has_sampler) return 0;
    if (out) *out = s->sampler;
    return 1;
}

/* test_chat_session.c - what chat needs from sessions: the end-of-generation
 * tokens (against llama.cpp's llama_vocab_is_eog, tests/refs/llamacpp/eog.txt
 * from tests/refs/make_eog_refs.sh), generation stopping at any of them, KV
 * reuse across turns, the context shift (against fresh sessions that
 * evaluate the kept tokens at their new positions, and against the forward
 * pass's own RoPE for every layer's table), saved sessions, and no
 * allocation per generated token through all of it. */
#include "test.h"
#include "eog_vocabs.h"
#include "model/model.h"
#include "model/ops.h"
#include "model/session.h"

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define EOG_REFS "tests/refs/llamacpp/eog.txt"

/* ------------------------------------------------------------ helpers */

typedef struct tokens_seen {
    sm_token ids[8192];
    int n;
    char text[65536];
    size_t len;
    unsigned long allocs_first, allocs_last;
    int stop_after;
} tokens_seen;

static int see(void *user, sm_token tok, const char *text, size_t len) {
    tokens_seen *c = user;
    if (tok >= 0 && c->n < 8192) {
        if (c->n == 0) c->allocs_first = alloc_calls();
        c->allocs_last = alloc_calls();
        c->ids[c->n++] = tok;
    }
    if (c->len + len < sizeof c->text) {
        memcpy(c->text + c->len, text, len);
        c->len += len;
        c->text[c->len] = '\0';
    }
    return c->stop_after && c->n >= c->stop_after;
}

/* A random model from sm_model_init_file in a temporary directory. */
static sm_model *init_model_heads(const char *dir, const char *arch, int layers, int vocab, const char *vocab_from,
                                  uint64_t seed, int heads, int kv_heads) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s-%d-%llu.gguf", dir, arch, layers, (unsigned long long)seed);
    sm_init_params ip = sm_init_default_params();
    ip.arch = arch;
    ip.dim = 64;
    ip.n_layers = layers;
    ip.n_heads = heads;
    ip.n_kv_heads = kv_heads;
    ip.ffn_dim = 96;
    ip.n_ctx = 512;
    ip.n_vocab = vocab;
    ip.vocab_from = vocab_from;
    ip.seed = seed;
    ip.random_norms = 1;
    ip.init_std = 0.2f;
    sm_error err = {0};
    if (sm_model_init_file(&ip, path, &err) != SM_OK) {
        printf("    init %s: %s\n", arch, err.message);
        return NULL;
    }
    sm_model *m = NULL;
    if (sm_model_load(path, NULL, &m, &err) != SM_OK) printf("    load %s: %s\n", arch, err.message);
    unlink(path);
    return m;
}

/* dim 64, 4 heads of 16, 2 KV heads */
static sm_model *init_model(const char *dir, const char *arch, int layers, int vocab, const char *vocab_from,
                            uint64_t seed) {
    return init_model_heads(dir, arch, layers, vocab, vocab_from, seed, 4, 2);
}

static double max_abs(const float *a, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

static double max_diff(const float *a, const float *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fabs((double)a[i] - b[i]) > m ? fabs((double)a[i] - b[i]) : m;
    return m;
}

/* ------------------------------------------------ end of generation */

/* The EOG ids of a file as llama.cpp recorded them; -1 if not listed. */
static int ref_eog(const char *file, int *ids, int cap) {
    char *t = read_file(EOG_REFS, NULL);
    if (!t) return -1;
    int n = -1;
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        char *sp = strchr(line, ' ');
        if (!sp || (size_t)(sp - line) != strlen(file) || strncmp(line, file, (size_t)(sp - line)) != 0) continue;
        n = 0;
        for (char *q = sp; *q && n < cap;) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q) break;
            ids[n++] = (int)v;
            q = end;
        }
        break;
    }
    free(t);
    return n;
}

static void check_eog_file(const char *path, const char *name) {
    int want[64], got[64];
    int nw = ref_eog(name, want, 64);
    CHECKF(nw > 0, "%s is not in " EOG_REFS, name);
    sm_model_params mp = sm_model_default_params();
    mp.skip_repack = 1;
    sm_model *m = NULL;
    sm_error err = {0};
    if (sm_model_load(path, &mp, &m, &err) != SM_OK) {
        CHECKF(0, "%s: %s", name, err.message);
        return;
    }
    int ng = sm_model_eog_tokens(m, got, 64);
    int same = ng == nw;
    for (int i = 0; same && i < ng; i++) same = got[i] == want[i];
    char gs[256] = "", ws[256] = "";
    for (int i = 0; i < ng && i < 16; i++) snprintf(gs + strlen(gs), sizeof gs - strlen(gs), " %d", got[i]);
    for (int i = 0; i < nw && i < 16; i++) snprintf(ws + strlen(ws), sizeof ws - strlen(ws), " %d", want[i]);
    CHECKF(same, "%s: EOG tokens%s, llama.cpp's%s", name, gs, ws);
    for (int i = 0; i < ng; i++) CHECK(sm_token_is_eog(m, got[i]));
    CHECK(!sm_token_is_eog(m, -1) && !sm_token_is_eog(m, 1 << 30));
    sm_model_free(m);
}

TEST(eog_tokens_match_llamacpp) {
    const char *vocabs[] = {"ggml-vocab-deepseek-coder.gguf", "ggml-vocab-deepseek-llm.gguf", "ggml-vocab-gpt-2.gguf",
                            "ggml-vocab-llama-spm.gguf", "ggml-vocab-mpt.gguf", "ggml-vocab-phi-3.gguf",
                            "ggml-vocab-starcoder.gguf"};
    check_eog_file("models/kjv-3m.gguf", "kjv-3m.gguf");
    /* the rule's parts, on small vocabularies of our own making */
    char dir[] = "/tmp/sm-eog-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    for (int c = 0; c < EOG_VOCAB_CASES; c++) {
        char path[256], name[64];
        snprintf(name, sizeof name, "%s.gguf", eog_vocab_cases[c].name);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        REQUIRE(eog_vocab_write(c, path) == 0);
        check_eog_file(path, name);
        unlink(path);
    }
    rmdir(dir);
    NEED_SHARED(sp, "models/stories260K.gguf");
    check_eog_file(sp, "stories260K.gguf");
    for (size_t i = 0; i < sizeof vocabs / sizeof vocabs[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "vocab/%s", vocabs[i]);
        const char *p = shared_path(rel);
        if (p) check_eog_file(p, vocabs[i]);
    }
    /* llama2.c files: the end-of-text token */
    NEED_SHARED(bin, "models/stories260K.bin");
    NEED_SHARED(tok, "models/tok512.bin");
    sm_model_params mp = sm_model_default_params();
    mp.tokenizer_path = tok;
    sm_model *m = NULL;
    REQUIRE(sm_model_load(bin, &mp, &m, NULL) == SM_OK);
    sm_token ids[8];
    CHECK(sm_model_eog_tokens(m, ids, 8) == 1 && ids[0] == 2);
    sm_model_free(m);
}

/* A tied random model repeats the token it was given last (its embedding
 * dominates the residual stream), so a prompt that ends with an
 * end-of-turn token that is not the end-of-text token makes the model
 * produce it again: generation must stop there, and only there. */
TEST(generation_stops_at_every_eog_token) {
    NEED_SHARED(p3, "vocab/ggml-vocab-phi-3.gguf");
    char dir[] = "/tmp/sm-eogg-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/p3.gguf", dir);
    sm_init_params ip = sm_init_default_params();
    ip.dim = 64;
    ip.n_layers = 1;
    ip.n_heads = 4;
    ip.ffn_dim = 96;
    ip.vocab_from = p3;
    ip.tied = 1;
    REQUIRE(sm_model_init_file(&ip, path, NULL) == SM_OK);
    sm_model *m = NULL;
    REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
    unlink(path);
    rmdir(dir);
    sm_model_info info;
    sm_model_get_info(m, &info);
    sm_token end = -1;
    size_t n = 0;
    REQUIRE(sm_tokenize_ex(m, "<|end|>", 7, SM_TOKENIZE_PARSE_SPECIAL, &end, 1, &n, NULL) == SM_OK && n == 1);
    CHECK(end != info.eos && sm_token_is_eog(m, end));
    const char *prompts[] = {"hello<|end|>", "hello"};
    for (int k = 0; k < 2; k++) {
        for (int ignore = 0; ignore < 2; ignore++) {
            sm_session *s = NULL;
            REQUIRE(sm_session_create(m, NULL, &s, NULL) == SM_OK);
            sm_generate_params gp = sm_generate_default_params();
            gp.sampler.temperature = 0;
            gp.parse_special = 1;
            gp.n_predict = 4;
            gp.ignore_eos = ignore;
            tokens_seen *c = calloc(1, sizeof *c);
            sm_generate_stats st;
            REQUIRE(sm_generate(s, prompts[k], &gp, see, c, &st, NULL) == SM_OK);
            if (k == 0 && !ignore) CHECKF(st.stopped_by == 1 && c->n == 0, "'%s': stopped by %d after %d tokens",
                                          prompts[k], st.stopped_by, c->n);
            else if (k == 0) {   /* the end token is not drawn (llama.cpp's ignore_eos: its logit is -inf) */
                int eog = 0;
                for (int i = 0; i < c->n; i++) eog |= sm_token_is_eog(m, c->ids[i]);
                CHECKF(st.stopped_by == 0 && c->n == 4 && !eog, "ignore_eos: %d tokens, an end token among them: %d",
                       c->n, eog);
            }
            else CHECKF(st.stopped_by == 0 && c->n == 4 && !sm_token_is_eog(m, c->ids[0]), "'%s': stopped by %d",
                        prompts[k], st.stopped_by);
            free(c);
            sm_session_free(s);
        }
    }
    /* a stop string that a special token spells (it prints nothing) stops
     * there too: "<|user|>", which the model repeats, is no EOG token */
    sm_token user = -1;
    REQUIRE(sm_tokenize_ex(m, "<|user|>", 8, SM_TOKENIZE_PARSE_SPECIAL, &user, 1, &n, NULL) == SM_OK && n == 1);
    CHECK(!sm_token_is_eog(m, user));
    const char *stops[] = {"never", "<|user|>"};
    for (int with = 0; with < 2; with++) {
        sm_session *s = NULL;
        REQUIRE(sm_session_create(m, NULL, &s, NULL) == SM_OK);
        sm_generate_params gp = sm_generate_default_params();
        gp.sampler.temperature = 0;
        gp.parse_special = 1;
        gp.n_predict = 4;
        gp.stop = stops;
        gp.n_stop = 1 + with;
        tokens_seen *c = calloc(1, sizeof *c);
        sm_generate_stats st;
        REQUIRE(sm_generate(s, "hello<|user|>", &gp, see, c, &st, NULL) == SM_OK);
        CHECKF(c->n >= 1 && c->ids[0] == user, "the model does not repeat <|user|>");
        if (with) CHECKF(st.stopped_by == 2 && c->n == 1, "stop '<|user|>': stopped by %d after %d", st.stopped_by, c->n);
        else CHECK(st.stopped_by == 0 && c->n == 4);
        free(c);
        sm_session_free(s);
    }
    sm_model_free(m);
}

/* ------------------------------------------------------ context shift */

/* RoPE variants beyond the architecture's own, set on a loaded model before
 * its sessions are made (their tables are built from these): linear
 * scaling, an attention factor and frequency factors. */
static float test_freq_factors[64];
static void poke_rope(sm_model *m) {
    m->hp.rope_freq_scale = 0.25f;
    m->hp.rope_attn_factor = 1.3f;
    for (int i = 0; i < 64; i++) test_freq_factors[i] = 1.0f + 0.37f * (float)(i % 5);
    m->rope_freqs = test_freq_factors;
}

/* A session that evaluated T, then dropped T[keep, keep + d) with a shift,
 * against a fresh session that evaluated T without them: both then take the
 * same next token. In a one-layer model the cached keys and values depend
 * only on each token and its position, so the shifted cache must equal the
 * fresh one and so must the logits (up to float rounding). */
static void check_shift_one_layer(const sm_model *m, const char *what) {
    enum { N = 40, KEEP = 5, D = 11 };
    const sm_hparams *hp = &m->hp;
    sm_token t[N], fresh[N];
    for (int i = 0; i < N; i++) t[i] = (sm_token)(3 + (i * 7919 + 13) % (hp->n_vocab - 3));
    int nf = 0;
    for (int i = 0; i < N; i++)
        if (i < KEEP || i >= KEEP + D) fresh[nf++] = t[i];
    fresh[nf++] = t[3];   /* the next token */
    sm_session_params sp = sm_session_default_params();
    sp.n_ctx = 64;
    sp.n_threads = 1;
    sm_session *a = NULL, *b = NULL;
    REQUIRE(sm_session_create(m, &sp, &a, NULL) == SM_OK && sm_session_create(m, &sp, &b, NULL) == SM_OK);
    sm_error err = {0};
    REQUIRE(sm_session_eval(a, t, N, NULL) == SM_OK);
    CHECKF(sm_session_shift(a, KEEP, D, &err) == SM_OK, "%s: %s", what, err.message);
    CHECK(sm_session_n_past(a) == N - D && memcmp(sm_session_tokens(a), fresh, sizeof(sm_token) * (N - D)) == 0);
    sm_token tok;
    CHECK(sm_session_sample(a, NULL, &tok, NULL) == SM_ERR_INVALID_ARG);   /* stale logits */
    REQUIRE(sm_session_eval(a, &t[3], 1, NULL) == SM_OK);
    REQUIRE(sm_session_eval(b, fresh, (size_t)nf, NULL) == SM_OK);
    int kv = hp->n_kv_heads * hp->head_dim, V = hp->n_vocab;
    double dk = max_diff(a->k_cache, b->k_cache, nf * kv), dv = max_diff(a->v_cache, b->v_cache, nf * kv);
    double dl = max_diff(a->logits, b->logits, V), top = max_abs(b->logits, V);
    /* (the batches differ in size, so products may round differently) */
    CHECKF(dk <= 1e-4 * max_abs(b->k_cache, nf * kv) && dv <= 1e-5 * max_abs(b->v_cache, nf * kv),
           "%s: keys differ by %g, values by %g", what, dk, dv);
    CHECKF(dl <= 1e-4 * top + 1e-6, "%s: logits differ by %g (largest %g)", what, dl, top);
    sm_session_free(a);
    sm_session_free(b);
}

/* An F16, BF16 or Q8_0 cache (sm_session_params.type_k / type_v): its keys
 * turned by a shift are the fresh evaluation's within two roundings; a
 * saved session (F32 rows in the file) loads back into a cache of its type
 * bit for bit and into an F32 one as the same values, and both go on as the
 * original; a type that is not one is refused, and Q8_0 for heads that are
 * not blocks of 32. */
TEST(f16_cache_shifts_saves_and_loads) {
    char dir[] = "/tmp/sm-kvf16-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    enum { N = 40, KEEP = 5, D = 11 };
    const char *archs[] = {"llama", "qwen2"};   /* adjacent pairs, NeoX halves */
    for (int run = 0; run < 6; run++) {
        int k = run % 2;
        sm_kv_type type = run < 2 ? SM_KV_F16 : run < 4 ? SM_KV_BF16 : SM_KV_Q8_0;
        /* the type's relative rounding step (Q8_0: of its block's largest) */
        double ulp = type == SM_KV_F16 ? 1.0 / 2048 : type == SM_KV_BF16 ? 1.0 / 256 : 1.0 / 127;
        /* Q8_0: two heads of 32 */
        sm_model *m = type == SM_KV_Q8_0 ? init_model_heads(dir, archs[k], 1, 300, NULL, 17 + (uint64_t)k, 2, 1)
                                         : init_model(dir, archs[k], 1, 300, NULL, 17 + (uint64_t)k);
        REQUIRE(m);
        const sm_hparams *hp = &m->hp;
        int kv = hp->n_kv_heads * hp->head_dim, V = hp->n_vocab;
        sm_token t[N], fresh[N];
        for (int i = 0; i < N; i++) t[i] = (sm_token)(3 + (i * 7919 + 13) % (V - 3));
        int nf = 0;
        for (int i = 0; i < N; i++)
            if (i < KEEP || i >= KEEP + D) fresh[nf++] = t[i];
        sm_session_params sp = sm_session_default_params();
        sp.n_ctx = 64;
        sp.n_threads = 1;
        sp.type_k = sp.type_v = type;
        sm_session *a = NULL, *b = NULL;
        REQUIRE(sm_session_create(m, &sp, &a, NULL) == SM_OK && sm_session_create(m, &sp, &b, NULL) == SM_OK);
        REQUIRE(sm_session_eval(a, t, N, NULL) == SM_OK && sm_session_shift(a, KEEP, D, NULL) == SM_OK);
        REQUIRE(sm_session_eval(b, fresh, (size_t)nf, NULL) == SM_OK);
        float *ka = malloc(sizeof(float) * nf * kv), *kb = malloc(sizeof(float) * nf * kv);
        REQUIRE(ka && kb);
        sm_kv_read(a, 0, 0, 0, ka, nf);
        sm_kv_read(b, 0, 0, 0, kb, nf);
        double dk = max_diff(ka, kb, (size_t)nf * kv), top = max_abs(kb, (size_t)nf * kv);
        CHECKF(dk <= 5 * ulp * top, "%s, type %d: shifted keys differ from fresh ones by %g (largest %g)", archs[k],
               (int)type, dk, top);
        /* save (F32 rows), load into an F16 and an F32 cache */
        char path[600];
        snprintf(path, sizeof path, "%s/s-%d.smsession", dir, run);
        REQUIRE(sm_session_save(b, path, NULL) == SM_OK);
        sm_session *c = NULL, *d = NULL;
        sm_session_params dp = sp;
        dp.type_k = dp.type_v = SM_KV_F32;
        REQUIRE(sm_session_load(m, path, &sp, &c, NULL) == SM_OK && sm_session_load(m, path, &dp, &d, NULL) == SM_OK);
        int same_bits = 1, same32 = 1;
        for (int kind = 0; kind < 2; kind++) {
            size_t bytes = (size_t)nf * sm_kv_row_bytes(type, (size_t)kv);
            same_bits &= memcmp(sm_kv_row(b, kind, 0, 0), sm_kv_row(c, kind, 0, 0), bytes) == 0;
            sm_kv_read(b, kind, 0, 0, ka, nf);
            same32 &= memcmp(ka, sm_kv_row(d, kind, 0, 0), sizeof(float) * nf * kv) == 0;
        }
        CHECKF(same_bits, "%s, type %d: a cache saved and loaded into its type is not the same bits", archs[k], (int)type);
        CHECKF(same32, "%s, type %d: a cache loaded into F32 is not its values", archs[k], (int)type);
        REQUIRE(sm_session_eval(b, &t[3], 1, NULL) == SM_OK && sm_session_eval(c, &t[3], 1, NULL) == SM_OK &&
                sm_session_eval(d, &t[3], 1, NULL) == SM_OK);
        CHECKF(memcmp(sm_session_logits(b), sm_session_logits(c), sizeof(float) * V) == 0,
               "%s, type %d: the loaded session goes on differently", archs[k], (int)type);
        double dl = max_diff(sm_session_logits(b), sm_session_logits(d), V);
        CHECKF(dl <= 20 * ulp * max_abs(sm_session_logits(b), V), "%s, type %d: loaded into F32, the next logits differ by %g",
               archs[k], (int)type, dl);
        free(ka);
        free(kb);
        sm_session_free(a);
        sm_session_free(b);
        sm_session_free(c);
        sm_session_free(d);
        sm_model_free(m);
    }
    sm_model *m = init_model(dir, "llama", 1, 300, NULL, 17);
    REQUIRE(m);
    sm_session_params bad = sm_session_default_params();
    bad.type_v = (sm_kv_type)7;
    sm_session *s = NULL;
    sm_error err = {0};
    CHECK(sm_session_create(m, &bad, &s, &err) == SM_ERR_INVALID_ARG && !s && strstr(err.message, "SM_KV_BF16"));
    bad = sm_session_default_params();
    bad.type_k = SM_KV_Q8_0;   /* heads of 16 */
    CHECK(sm_session_create(m, &bad, &s, &err) == SM_ERR_UNSUPPORTED && !s && strstr(err.message, "blocks of 32") &&
          strstr(err.message, "have 16"));
    sm_model_free(m);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

TEST(shift_equals_fresh_evaluation_at_new_positions) {
    char dir[] = "/tmp/sm-shift-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    /* adjacent pairs (llama), NeoX halves (qwen2, phi3), the sliding-window
     * layers' own table (gemma3's layer 0), scaled RoPE with factors, and
     * YaRN (its ramp inside the head: original context 4096) */
    const char *archs[] = {"llama", "qwen2", "phi3", "gemma3", "llama", "qwen2", "phi3", "qwen2"};
    static float long_f[64], short_f[64];
    for (int k = 0; k < 8; k++) {
        sm_model *m = init_model(dir, archs[k], 1, 300, NULL, 7 + (uint64_t)k);
        if (!m) { CHECKF(0, "%s: no model", archs[k]); continue; }
        char what[64];
        snprintf(what, sizeof what, "%s%s", archs[k], k >= 4 ? " (scaled, factors)" : "");
        if (k >= 4) poke_rope(m);
        if (k == 6) {
            /* phi-3's long factors, chosen when the context passes the original one */
            for (int i = 0; i < 64; i++) long_f[i] = 1.0f + 0.5f * (float)(i % 7), short_f[i] = 1.0f;
            m->rope_freqs = NULL;
            m->rope_long = long_f;
            m->rope_short = short_f;
            m->hp.n_ctx_orig = 32;
            snprintf(what, sizeof what, "phi3 (long factors, attention factor)");
        }
        if (k == 7) {
            m->rope_freqs = NULL;
            m->hp.rope_yarn = 1;
            m->hp.n_ctx_orig = 4096;
            sm_rope_spec r;
            sm_rope_init(&r, &m->hp, 0, NULL);
            CHECKF(r.yarn_lo > 0 && r.yarn_hi < m->hp.rope_dim / 2, "yarn's ramp %g..%g is not inside the %d pairs",
                   r.yarn_lo, r.yarn_hi, m->hp.rope_dim / 2);
            snprintf(what, sizeof what, "qwen2 (YaRN)");
        }
        if (k == 3) {
            REQUIRE(sm_layer_is_swa(&m->hp, 0) && sm_arch_get(m->hp.arch)->local_rope);
            m->hp.rope_base_local = 50.0f;   /* unlike the global base */
        }
        check_shift_one_layer(m, what);
        sm_model_free(m);
    }
    /* learned positions cannot move */
    sm_model *g = init_model(dir, "gpt2", 1, 300, NULL, 3);
    REQUIRE(g);
    sm_session *s = NULL;
    REQUIRE(sm_session_create(g, NULL, &s, NULL) == SM_OK);
    sm_error err = {0};
    CHECK(sm_session_shift(s, 0, 0, &err) == SM_ERR_UNSUPPORTED && strstr(err.message, "learned positions"));
    sm_session_free(s);
    sm_model_free(g);
    /* nor keys normalized after RoPE (hunyuan-dense): a turned key is not the key at the new position */
    sm_model *h = init_model(dir, "hunyuan-dense", 1, 300, NULL, 3);
    REQUIRE(h);
    REQUIRE(sm_session_create(h, NULL, &s, NULL) == SM_OK);
    CHECK(sm_session_shift(s, 0, 0, &err) == SM_ERR_UNSUPPORTED && strstr(err.message, "after RoPE"));
    sm_session_free(s);
    sm_model_free(h);
    /* ALiBi (bloom) has no positions in its keys: the rows move, nothing turns, and decoding goes on */
    sm_model *b = init_model(dir, "bloom", 2, 300, NULL, 3);
    REQUIRE(b);
    REQUIRE(sm_session_create(b, NULL, &s, NULL) == SM_OK);
    sm_token toks[12];
    for (int i = 0; i < 12; i++) toks[i] = (sm_token)(40 + 7 * i);
    REQUIRE(sm_session_eval(s, toks, 12, NULL) == SM_OK);
    CHECKF(sm_session_shift(s, 2, 5, &err) == SM_OK, "bloom's shift: %s", err.message);
    CHECK(sm_session_n_past(s) == 7);
    REQUIRE(sm_session_eval(s, toks, 1, NULL) == SM_OK);
    const float *lg = sm_session_logits(s);
    int finite = 1;
    for (int i = 0; i < 300; i++) finite &= isfinite(lg[i]);
    CHECK(finite);
    sm_session_free(s);
    sm_model_free(b);
    rmdir(dir);
}

/* Every layer turns its keys with its own table: rows written as the
 * forward pass's RoPE (op_rope, with the table the forward pass picks for
 * the layer) at position p must, after a shift by d, equal that RoPE at
 * p - d. gemma3's pattern has sliding-window layers with their own base and
 * a global one every sixth, here with linear scaling, an attention factor
 * and frequency factors too. */
TEST(shift_turns_every_layer_with_its_own_rope) {
    char dir[] = "/tmp/sm-shiftl-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    const char *archs[] = {"gemma3", "llama"};
    for (int k = 0; k < 2; k++) {
        sm_model *m = init_model(dir, archs[k], 6, 300, NULL, 11);
        REQUIRE(m);
        poke_rope(m);
        m->hp.rope_base = 1e6f;
        m->hp.rope_base_local = 1e4f;
        m->hp.n_swa = 8;
        const sm_hparams *hp = &m->hp;
        sm_session_params sp = sm_session_default_params();
        sp.n_ctx = 64;
        sp.n_threads = 1;
        sm_session *s = NULL;
        REQUIRE(sm_session_create(m, &sp, &s, NULL) == SM_OK);
        enum { N = 40, KEEP = 6, D = 9 };
        int kv = hp->n_kv_heads * hp->head_dim;
        size_t stride = (size_t)s->n_ctx * kv;
        float *raw = malloc(sizeof(float) * hp->n_layers * N * kv), *q = malloc(sizeof(float) * 4096), *k1 = malloc(
            sizeof(float) * kv);
        uint64_t r = 99;
        for (int i = 0; i < hp->n_layers * N * kv; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            raw[i] = (float)((double)(r >> 11) / 9007199254740992.0 - 0.5);
        }
        for (int l = 0; l < hp->n_layers; l++)
            for (int p = 0; p < N; p++) {
                memcpy(k1, raw + ((size_t)l * N + p) * kv, sizeof(float) * kv);
                sm_fwd_seq sq = {s, 0, 1, p, 0};
                sm_fwd_batch b = {NULL, 1, 1, &sq, 1, NULL, NULL};
                op_rope(s, &b, q, k1, sm_layer_is_swa(hp, l));
                memcpy((float *)s->k_cache + l * stride + (size_t)p * kv, k1, sizeof(float) * kv);
            }
        s->n_past = N;
        REQUIRE(sm_session_shift(s, KEEP, D, NULL) == SM_OK);
        double worst = 0;
        int local = 0;
        for (int l = 0; l < hp->n_layers; l++) {
            local += sm_layer_is_swa(hp, l);
            for (int p = 0; p < N; p++) {
                if (p >= KEEP && p < KEEP + D) continue;
                int np = p < KEEP ? p : p - D;
                memcpy(k1, raw + ((size_t)l * N + p) * kv, sizeof(float) * kv);
                sm_fwd_seq sq = {s, 0, 1, np, 0};
                sm_fwd_batch b = {NULL, 1, 1, &sq, 1, NULL, NULL};
                op_rope(s, &b, q, k1, sm_layer_is_swa(hp, l));
                double d = max_diff(k1, (float *)s->k_cache + l * stride + (size_t)np * kv, kv);
                worst = d > worst ? d : worst;
            }
        }
        CHECKF(worst < 2e-6, "%s: a shifted key is off by %g", archs[k], worst);
        if (k == 0) CHECK(local == 5);
        free(raw);
        free(q);
        free(k1);
        sm_session_free(s);
        sm_model_free(m);
    }
    rmdir(dir);
}

/* ------------------------------------------------------------ KV reuse */

static sm_model *load_shared(const char *rel) {
    const char *p = shared_path(rel);
    sm_model *m = NULL;
    if (p && sm_model_load(p, NULL, &m, NULL) != SM_OK) m = NULL;
    return m;
}

static int tokenize(const sm_model *m, const char *text, int bos, sm_token *out, int cap) {
    size_t n = 0;
    if (sm_tokenize(m, text, strlen(text), bos, out, (size_t)cap, &n, NULL) != SM_OK) return -1;
    return (int)n;
}

/* Greedy ids for a token prompt in a fresh session. */
static int fresh_greedy(const sm_model *m, const sm_token *p, int n, int n_predict, sm_token *out) {
    sm_session *s = NULL;
    if (sm_session_create(m, NULL, &s, NULL) != SM_OK) return -1;
    sm_generate_params gp = sm_generate_default_params();
    gp.sampler.temperature = 0;
    gp.n_predict = n_predict;
    gp.ignore_eos = 1;
    gp.prompt_tokens = p;
    gp.n_prompt_tokens = n;
    tokens_seen *c = calloc(1, sizeof *c);
    int got = sm_generate(s, NULL, &gp, see, c, NULL, NULL) == SM_OK ? c->n : -1;
    if (got > 0) memcpy(out, c->ids, sizeof(sm_token) * (size_t)got);
    free(c);
    sm_session_free(s);
    return got;
}

/* A conversation's second prompt extends the first and its reply: only the
 * new tokens are evaluated, and the reply equals a fresh session's. */
TEST(reuse_prefix_evaluates_only_new_tokens) {
    sm_model *m = load_shared("models/stories260K.gguf");
    if (!m) SKIP("../shared/models/stories260K.gguf is absent");
    sm_session *s = NULL;
    REQUIRE(sm_session_create(m, NULL, &s, NULL) == SM_OK);
    sm_token a[64], b[256], want[64];
    int na = tokenize(m, "Once upon a time", 1, a, 64);
    REQUIRE(na > 2);
    sm_generate_params gp = sm_generate_default_params();
    gp.sampler.temperature = 0;
    gp.ignore_eos = 1;
    gp.n_predict = 16;
    gp.reuse_prefix = 1;
    gp.prompt_tokens = a;
    gp.n_prompt_tokens = na;
    tokens_seen *c = calloc(1, sizeof *c);
    sm_generate_stats st;
    REQUIRE(sm_generate(s, NULL, &gp, see, c, &st, NULL) == SM_OK);
    CHECK(st.n_reused == 0 && st.n_prompt == na && st.n_generated == 16 && st.n_gen_kept == 15);
    CHECK(sm_session_n_past(s) == na + 15);
    /* turn 2: the first prompt, the reply, and more */
    int nb = 0;
    memcpy(b, a, sizeof(sm_token) * (size_t)na);
    nb = na;
    memcpy(b + nb, c->ids, sizeof(sm_token) * 16);
    nb += 16;
    nb += tokenize(m, " Then the dog said hello.", 0, b + nb, 256 - nb);
    gp.prompt_tokens = b;
    gp.n_prompt_tokens = nb;
    memset(c, 0, sizeof *c);
    REQUIRE(sm_generate(s, NULL, &gp, see, c, &st, NULL) == SM_OK);
    CHECKF(st.n_reused == na + 15 && st.n_prompt == nb - (na + 15), "reused %d, evaluated %d of %d", st.n_reused,
           st.n_prompt, nb);
    CHECK(fresh_greedy(m, b, nb, 16, want) == 16 && memcmp(want, c->ids, sizeof(sm_token) * 16) == 0);
    /* a prompt that leaves the history after 3 tokens keeps those 3 */
    sm_token d[64];
    memcpy(d, a, sizeof(sm_token) * 3);
    int nd = 3 + tokenize(m, " the cat sat", 0, d + 3, 61);
    gp.prompt_tokens = d;
    gp.n_prompt_tokens = nd;
    memset(c, 0, sizeof *c);
    REQUIRE(sm_generate(s, NULL, &gp, see, c, &st, NULL) == SM_OK);
    CHECK(st.n_reused == 3 && st.n_prompt == nd - 3);
    CHECK(fresh_greedy(m, d, nd, 16, want) == 16 && memcmp(want, c->ids, sizeof(sm_token) * 16) == 0);
    /* the same prompt again: all of it is held, the last token is evaluated again for its logits */
    memset(c, 0, sizeof *c);
    REQUIRE(sm_generate(s, NULL, &gp, see, c, &st, NULL) == SM_OK);
    CHECK(st.n_reused == nd - 1 && st.n_prompt == 1 && memcmp(want, c->ids, sizeof(sm_token) * 16) == 0);
    /* held with its logits (nothing generated since): nothing is evaluated */
    gp.n_predict = 0;
    REQUIRE(sm_generate(s, NULL, &gp, see, c, &st, NULL) == SM_OK);
    gp.n_predict = 16;
    memset(c, 0, sizeof *c);
    REQUIRE(sm_generate(s, NULL, &gp, see, c, &st, NULL) == SM_OK);
    CHECK(st.n_reused == nd && st.n_prompt == 0 && memcmp(want, c->ids, sizeof(sm_token) * 16) == 0);
    /* text prompts: tokenized from the start (with BOS) and compared */
    gp.prompt_tokens = NULL;
    gp.n_prompt_tokens = 0;
    REQUIRE(sm_generate(s, "Once upon a time", &gp, see, c, &st, NULL) == SM_OK);
    REQUIRE(sm_generate(s, "Once upon a time there was", &gp, see, c, &st, NULL) == SM_OK);
    CHECKF(st.n_reused == na && st.n_prompt == tokenize(m, "Once upon a time there was", 1, want, 64) - na,
           "text: reused %d, evaluated %d", st.n_reused, st.n_prompt);
    /* without reuse_prefix a prompt is evaluated after what is held, and an
     * empty prompt continues the session */
    gp.reuse_prefix = 0;
    int held = sm_session_n_past(s);
    REQUIRE(sm_generate(s, " and", &gp, see, c, &st, NULL) == SM_OK);
    CHECK(st.n_reused == held && st.n_prompt == tokenize(m, " and", 0, want, 64));
    held = sm_session_n_past(s);
    REQUIRE(sm_generate(s, "", &gp, see, c, &st, NULL) == SM_OK);
    /* (its logits are still those after its last token: nothing to evaluate) */
    CHECK(st.n_reused == held && st.n_prompt == 0 && c->n > 0);
    sm_session_truncate(s, held - 1, NULL);   /* stale logits: the last token is evaluated again */
    REQUIRE(sm_generate(s, "", &gp, see, c, &st, NULL) == SM_OK);
    CHECK(st.n_reused == held - 2 && st.n_prompt == 1);
    free(c);
    sm_session_free(s);
    sm_model_free(m);
}

TEST(prefill_keeps_the_common_prefix) {
    sm_model *m = load_shared("models/stories260K.gguf");
    if (!m) SKIP("../shared/models/stories260K.gguf is absent");
    sm_token t[64];
    int n = tokenize(m, "Once upon a time there was a little girl named Lily", 1, t, 64);
    sm_session *s = NULL, *f = NULL;
    REQUIRE(sm_session_create(m, NULL, &s, NULL) == SM_OK && sm_session_create(m, NULL, &f, NULL) == SM_OK);
    int reused = -1;
    REQUIRE(sm_session_prefill(s, t, 5, &reused, NULL) == SM_OK && reused == 0);
    REQUIRE(sm_session_prefill(s, t, (size_t)n, &reused, NULL) == SM_OK);
    CHECK(reused == 5 && sm_session_n_past(s) == n);
    REQUIRE(sm_session_eval(f, t, (size_t)n, NULL) == SM_OK);
    double d = max_diff(sm_session_logits(s), sm_session_logits(f), 512);
    CHECKF(d <= 1e-4 * max_abs(sm_session_logits(f), 512), "logits differ by %g", d);
    REQUIRE(sm_session_prefill(s, t, 8, &reused, NULL) == SM_OK);
    CHECK(reused == 7 && sm_session_n_past(s) == 8);
    sm_error err = {0};
    sm_token bad[2] = {t[0], 9999};
    CHECK(sm_session_prefill(s, bad, 2, &reused, &err) == SM_ERR_TOKEN_RANGE && sm_session_n_past(s) == 8);
    CHECK(sm_session_prefill(s, t, 0, &reused, &err) == SM_ERR_INVALID_ARG);
    sm_session_free(s);
    sm_session_free(f);
    sm_model_free(m);
}

/* ------------------------------------------------------ saved sessions */

/* Three turns appended to a session (the second continues from the
 * session's logits); ids of turns [from, to) go to out. */
static void turns(sm_session *s, int from, int to, float temp, tokens_seen *out) {
    const char *msgs[] = {"Once upon a time", "", " Then Lily said"};
    for (int k = from; k < to; k++) {
        sm_generate_params gp = sm_generate_default_params();
        gp.sampler.temperature = temp;
        gp.sampler.repeat_penalty = 1.1f;
        gp.ignore_eos = 1;
        gp.n_predict = 12;
        REQUIRE(sm_generate(s, msgs[k], &gp, see, out, NULL, NULL) == SM_OK);
    }
}

static int file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (int)st.st_size : -1;
}

static void write_bytes(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

TEST(saved_session_continues_like_an_unbroken_one) {
    sm_model *m = load_shared("models/stories260K.gguf");
    if (!m) SKIP("../shared/models/stories260K.gguf is absent");
    char dir[] = "/tmp/sm-sess-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/s.smsession", dir);
    sm_session_params sp = sm_session_default_params();
    sp.seed = 42;
    for (int sampled = 0; sampled < 2; sampled++) {
        float temp = sampled ? 1.0f : 0.0f;
        sm_session *u = NULL, *a = NULL, *b = NULL, *c = NULL;
        REQUIRE(sm_session_create(m, &sp, &u, NULL) == SM_OK && sm_session_create(m, &sp, &a, NULL) == SM_OK);
        tokens_seen *whole = calloc(1, sizeof *whole), *first = calloc(1, sizeof *first),
                    *rest = calloc(1, sizeof *rest), *rest2 = calloc(1, sizeof *rest2);
        turns(u, 0, 3, temp, whole);
        turns(a, 0, 1, temp, first);
        sm_error err = {0};
        CHECKF(sm_session_save_ex(a, path, "app data", 8, &err) == SM_OK, "%s", err.message);
        /* a new session from the file, and the file into another one */
        CHECKF(sm_session_load(m, path, NULL, &b, &err) == SM_OK, "%s", err.message);
        REQUIRE(b);
        size_t len = 0;
        const char *app = sm_session_app_data(b, &len);
        CHECK(len == 8 && app && memcmp(app, "app data", 8) == 0);
        sm_sampler_params s1, s2;
        CHECK(sm_session_sampler(a, &s1) && sm_session_sampler(b, &s2) && memcmp(&s1, &s2, sizeof s1) == 0);
        CHECK(sm_session_n_past(b) == sm_session_n_past(a) && sm_session_n_ctx(b) == sm_session_n_ctx(a));
        turns(b, 1, 3, temp, rest);
        sm_session_params other = sp;
        other.seed = 7;
        other.n_ctx = 300;
        REQUIRE(sm_session_create(m, &other, &c, NULL) == SM_OK);
        CHECKF(sm_session_load_into(c, path, &err) == SM_OK, "%s", err.message);
        turns(c, 1, 3, temp, rest2);
        CHECK(first->n == 12 && rest->n == 24 && whole->n == 36);
        CHECKF(memcmp(whole->ids + 12, rest->ids, sizeof(sm_token) * 24) == 0, "%s: turns 2-3 differ after a load",
               sampled ? "sampled" : "greedy");
        CHECKF(memcmp(whole->ids + 12, rest2->ids, sizeof(sm_token) * 24) == 0, "%s: turns 2-3 differ after load_into",
               sampled ? "sampled" : "greedy");
        free(whole); free(first); free(rest); free(rest2);
        sm_session_free(u); sm_session_free(a); sm_session_free(b); sm_session_free(c);
    }
    sm_session_free(NULL);
    sm_model_free(m);
    unlink(path);
    rmdir(dir);
}

static void expect_load_error(const sm_model *m, const char *path, sm_status want, const char *phrase) {
    sm_session *s = NULL;
    sm_error err = {0};
    sm_status st = sm_session_load(m, path, NULL, &s, &err);
    CHECKF(st == want && s == NULL && strstr(err.message, phrase) && !strchr(err.message, '\n'),
           "load %s: status %d, '%s' (want '%s')", path, st, err.message, phrase);
}

TEST(bad_session_files_are_clear_errors) {
    sm_model *m = load_shared("models/stories260K.gguf");
    if (!m) SKIP("../shared/models/stories260K.gguf is absent");
    char dir[] = "/tmp/sm-sessbad-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char path[256], cut[256], other_path[256];
    snprintf(path, sizeof path, "%s/s.smsession", dir);
    snprintf(cut, sizeof cut, "%s/cut.smsession", dir);
    sm_session *s = NULL;
    REQUIRE(sm_session_create(m, NULL, &s, NULL) == SM_OK);
    tokens_seen *c = calloc(1, sizeof *c);
    turns(s, 0, 1, 0.0f, c);
    REQUIRE(sm_session_save(s, path, NULL) == SM_OK);
    size_t n = 0;
    char *data = read_file(path, &n);
    REQUIRE(data && (int)n == file_size(path));
    /* truncated anywhere: in the header, in the payload, the checksum */
    size_t cuts[] = {3, 60, 100, n / 2, n - 1};
    for (int i = 0; i < 5; i++) {
        write_bytes(cut, data, cuts[i]);
        expect_load_error(m, cut, SM_ERR_FORMAT, i == 0 ? "not a SmallMind session file" : "truncated");
    }
    write_bytes(cut, data, 0);
    expect_load_error(m, cut, SM_ERR_FORMAT, "empty");
    /* a byte changed in the keys, or in the header */
    data[n / 2] ^= 0x10;
    write_bytes(cut, data, n);
    expect_load_error(m, cut, SM_ERR_FORMAT, "checksum");
    data[n / 2] ^= 0x10;
    data[40] ^= 1;   /* n_past */
    write_bytes(cut, data, n);
    expect_load_error(m, cut, SM_ERR_FORMAT, "damaged");
    data[40] ^= 1;
    data[8] = 9;   /* the version */
    write_bytes(cut, data, n);
    expect_load_error(m, cut, SM_ERR_UNSUPPORTED, "version 9");
    data[8] = 1;
    /* another model: a different file, and a model of the same shape and metadata but other weights */
    sm_model *other = load_shared("models/stories260K.bin");
    sm_model_params mp = sm_model_default_params();
    mp.tokenizer_path = shared_path("models/tok512.bin");
    sm_model_free(other);
    other = NULL;
    if (mp.tokenizer_path && sm_model_load(shared_path("models/stories260K.bin"), &mp, &other, NULL) == SM_OK) {
        expect_load_error(other, path, SM_ERR_INVALID_ARG, "another model");
        sm_model_free(other);
    }
    sm_model *k = NULL;
    REQUIRE(sm_model_load("models/kjv-3m.gguf", NULL, &k, NULL) == SM_OK);
    expect_load_error(k, path, SM_ERR_INVALID_ARG, "another model");
    sm_model_free(k);
    sm_model *i1 = init_model(dir, "llama", 2, 300, NULL, 1), *i2 = init_model(dir, "llama", 2, 300, NULL, 2);
    REQUIRE(i1 && i2);
    CHECK(sm_model_id(i1) != sm_model_id(i2));
    sm_session *si = NULL;
    REQUIRE(sm_session_create(i1, NULL, &si, NULL) == SM_OK);
    sm_token t[3] = {1, 2, 3};
    REQUIRE(sm_session_eval(si, t, 3, NULL) == SM_OK);
    snprintf(other_path, sizeof other_path, "%s/i1.smsession", dir);
    REQUIRE(sm_session_save(si, other_path, NULL) == SM_OK);
    expect_load_error(i2, other_path, SM_ERR_INVALID_ARG, "another model");
    sm_session_free(si);
    sm_model_free(i1);
    sm_model_free(i2);
    unlink(other_path);
    /* a context too small for it; load_into leaves the session as it was */
    sm_session_params sp = sm_session_default_params();
    sp.n_ctx = 4;
    sm_session *small = NULL;
    sm_error err = {0};
    CHECK(sm_session_load(m, path, &sp, &small, &err) == SM_ERR_CONTEXT_FULL && strstr(err.message, "-c"));
    REQUIRE(sm_session_create(m, &sp, &small, NULL) == SM_OK);
    REQUIRE(sm_session_eval(small, t, 2, NULL) == SM_OK);
    CHECK(sm_session_load_into(small, path, &err) == SM_ERR_CONTEXT_FULL && sm_session_n_past(small) == 2);
    write_bytes(cut, data, n - 1);
    CHECK(sm_session_load_into(small, cut, &err) == SM_ERR_FORMAT && sm_session_n_past(small) == 2 &&
          strstr(err.message, cut));
    sm_session_free(small);
    /* not a regular file: neither read nor written (core/outfile.c's rules) */
    expect_load_error(m, dir, SM_ERR_IO, "directory");
    CHECK(sm_session_save(s, dir, &err) == SM_ERR_IO && strstr(err.message, "is a directory"));
    char fifo[256], link[256];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(link, sizeof link, "%s/link", dir);
    REQUIRE(mkfifo(fifo, 0600) == 0 && symlink(path, link) == 0);
    CHECK(sm_session_save(s, fifo, &err) == SM_ERR_IO && strstr(err.message, "not a regular file"));
    /* a symbolic link: its target is written, the link stays a link */
    struct stat lst;
    unlink(path);
    CHECK(sm_session_save(s, link, &err) == SM_ERR_IO && strstr(err.message, "does not exist"));
    write_bytes(path, "x", 1);
    CHECK(sm_session_save(s, link, &err) == SM_OK);
    CHECK(lstat(link, &lst) == 0 && S_ISLNK(lst.st_mode));
    size_t n2 = 0;
    char *data2 = read_file(path, &n2);
    CHECK(data2 && n2 == n && memcmp(data2, data, n) == 0);
    free(data2);
    char nodir[300];
    snprintf(nodir, sizeof nodir, "%s/none/s.smsession", dir);
    CHECK(sm_session_save(s, nodir, &err) == SM_ERR_IO && strstr(err.message, "/none"));
    /* an existing session file is replaced, and no temporary file is left */
    REQUIRE(sm_session_save(s, path, NULL) == SM_OK);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp-smallmind > /dev/null", dir);
    CHECK(system(cmd) != 0);
    unlink(fifo);
    unlink(link);
    unlink(cut);
    unlink(path);
    rmdir(dir);
    free(data);
    free(c);
    sm_session_free(s);
    sm_model_free(m);
}

/* ------------------------------------------------ allocations in chat */

/* Chat turns (special tokens parsed, stop strings, KV reuse, the context
 * shifting in the middle of replies) allocate nothing per generated token. */
TEST(no_allocations_per_token_in_chat_turns) {
    const char *models[] = {"models/kjv-3m.gguf", NULL};
    const char *sp260 = shared_path("models/stories260K.gguf");
    models[1] = sp260;
    for (int k = 0; k < 2 && models[k]; k++) {
        sm_model *m = NULL;
        REQUIRE(sm_model_load(models[k], NULL, &m, NULL) == SM_OK);
        for (int reuse = 0; reuse < 2; reuse++) {
            sm_session_params sp = sm_session_default_params();
            sp.n_ctx = 96;
            sp.seed = 5;
            sm_session *s = NULL;
            REQUIRE(sm_session_create(m, &sp, &s, NULL) == SM_OK);
            const char *stops[] = {"<|im_end|>"};
            int shifted = 0;
            for (int turn = 0; turn < 6; turn++) {
                char text[256];
                snprintf(text, sizeof text, "<|im_start|>user\nTell me about turn %d<|im_end|>\n<|im_start|>assistant\n",
                         turn);
                sm_token toks[256];
                int held = sm_session_n_past(s);
                size_t n = 0;
                /* reuse: the whole sequence (what is held, then the new text) */
                if (reuse) memcpy(toks, sm_session_tokens(s), sizeof(sm_token) * (size_t)held);
                REQUIRE(sm_tokenize_ex(m, text, strlen(text), SM_TOKENIZE_PARSE_SPECIAL | (held ? 0 : SM_TOKENIZE_ADD_BOS),
                                       toks + (reuse ? held : 0), 256 - (size_t)held, &n, NULL) == SM_OK);
                sm_generate_params gp = sm_generate_default_params();
                gp.parse_special = 1;
                gp.reuse_prefix = reuse;
                gp.prompt_tokens = toks;
                gp.n_prompt_tokens = (int)n + (reuse ? held : 0);
                gp.stop = stops;
                gp.n_stop = 1;
                gp.context_shift = 1;
                gp.n_keep = 4;
                gp.ignore_eos = 1;
                gp.n_predict = 40;
                gp.sampler.repeat_penalty = 1.1f;
                if (reuse && held + (int)n > 96) {
                    /* the whole sequence no longer fits: start again from the new text */
                    sm_session_reset(s);
                    continue;
                }
                tokens_seen *c = calloc(1, sizeof *c);
                sm_generate_stats st;
                sm_error err = {0};
                CHECKF(sm_generate(s, NULL, &gp, see, c, &st, &err) == SM_OK, "%s", err.message);
                if (reuse) CHECK(st.n_reused == held);
                shifted += st.n_discarded > 0;
                CHECKF(c->allocs_last == c->allocs_first, "%s, turn %d: %lu allocation calls in %d tokens", models[k],
                       turn, c->allocs_last - c->allocs_first, c->n);
                free(c);
            }
            if (!reuse) CHECKF(shifted > 0, "%s: the context never shifted", models[k]);
            sm_session_free(s);
        }
        sm_model_free(m);
    }
}

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
static sm_model *init_model(const char *dir, const char *arch, int layers, int vocab, const char *vocab_from,
                            uint64_t seed) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s-%d-%llu.gguf", dir, arch, layers, (unsigned long long)seed);
    sm_init_params ip = sm_init_default_params();
    ip.arch = arch;
    ip.dim = 64;
    ip.n_layers = layers;
    ip.n_heads = 4;
    ip.n_kv_heads = 2;
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
            else if (k == 0) CHECKF(st.stopped_by == 0 && c->n == 4 && c->ids[0] == end, "ignore_eos: %d tokens", c->n);
            else CHECKF(st.stopped_by == 0 && c->n == 4 && !sm_token_is_eog(m, c->ids[0]), "'%s': stopped by %d",
                        prompts[k], st.stopped_by);
            free(c);
            sm_session_free(s);
        }
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

TEST(shift_equals_fresh_evaluation_at_new_positions) {
    char dir[] = "/tmp/sm-shift-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    /* adjacent pairs (llama), NeoX halves (qwen2, phi3), the sliding-window
     * layers' own table (gemma3's layer 0), and scaled RoPE with factors */
    const char *archs[] = {"llama", "qwen2", "phi3", "gemma3", "llama", "qwen2"};
    for (int k = 0; k < 6; k++) {
        sm_model *m = init_model(dir, archs[k], 1, 300, NULL, 7 + (uint64_t)k);
        if (!m) { CHECKF(0, "%s: no model", archs[k]); continue; }
        char what[64];
        snprintf(what, sizeof what, "%s%s", archs[k], k >= 4 ? " (scaled, factors)" : "");
        if (k >= 4) poke_rope(m);
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
                s->n_past = p;
                op_rope(s, q, k1, 1, sm_layer_is_swa(hp, l));
                memcpy(s->k_cache + l * stride + (size_t)p * kv, k1, sizeof(float) * kv);
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
                s->n_past = np;
                op_rope(s, q, k1, 1, sm_layer_is_swa(hp, l));
                double d = max_diff(k1, s->k_cache + l * stride + (size_t)np * kv, kv);
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

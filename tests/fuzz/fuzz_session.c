/* fuzz_session.c - libFuzzer target: the saved-session reader
 * (sm_session_load_buffer) on arbitrary bytes, for a small random model
 * made once at start-up. Each input is read twice: as it is, and with the
 * model identity and the checksum fixed up, so that mutations reach the
 * checks behind them, into a session with an F32 KV cache and one with F16
 * keys and Q8_0 values (whose rows the reader rounds or quantizes as it
 * stores them; the model's one head is a Q8_0 block's 32 values wide).
 * Besides memory safety: a rejected file leaves the
 * session as it was, and an accepted one can be sampled from and extended.
 * With FUZZ_SESSION_SEED=PATH set, start-up also writes a valid session of
 * the model there (tests/fuzz/run.sh seeds the corpus with it). */
#include "core/hash.h"
#include "model/model.h"
#include "model/session.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sm_model *model;
static sm_session *session, *session16;

static void check(int cond) {
    if (!cond) __builtin_trap();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    char path[] = "/tmp/fuzz_session_model_XXXXXX";
    int fd = mkstemp(path);
    check(fd >= 0);
    close(fd);
    sm_init_params ip = sm_init_default_params();
    ip.dim = 32;
    ip.n_layers = 2;
    ip.n_heads = 1;
    ip.ffn_dim = 48;
    ip.n_ctx = 64;
    ip.n_vocab = 300;
    check(sm_model_init_file(&ip, path, NULL) == SM_OK);
    check(sm_model_load(path, NULL, &model, NULL) == SM_OK);
    unlink(path);
    sm_session_params sp = sm_session_default_params();
    sp.n_ctx = 32;
    sp.n_threads = 1;
    check(sm_session_create(model, &sp, &session, NULL) == SM_OK);
    sp.type_k = SM_KV_F16;
    sp.type_v = SM_KV_Q8_0;
    check(sm_session_create(model, &sp, &session16, NULL) == SM_OK);
    const char *seed = getenv("FUZZ_SESSION_SEED");
    if (seed) {
        sm_token t[5] = {256, 40, 41, 42, 43};
        check(sm_session_eval(session, t, 5, NULL) == SM_OK);
        sm_token next;
        check(sm_session_sample(session, NULL, &next, NULL) == SM_OK);
        check(sm_session_save_ex(session, seed, "app", 3, NULL) == SM_OK);
        sm_session_reset(session);
    }
    return 0;
}

static void load_into(sm_session *s, const uint8_t *data, size_t size) {
    int before = s->n_past;
    sm_error err;
    if (sm_session_load_buffer(s, data, size, &err) != SM_OK) {
        check(s->n_past == before && err.message[0] != '\0');
        return;
    }
    check(s->n_past <= s->n_ctx);
    sm_token t = 7;
    if (s->logits_valid) {
        sm_sampler_params sp = sm_sampler_default_params();
        check(sm_session_sample(s, &sp, &t, NULL) == SM_OK && t >= 0 && t < model->hp.n_vocab);
    }
    if (s->n_past < s->n_ctx) check(sm_session_eval(s, &t, 1, NULL) == SM_OK);
}

static void load(const uint8_t *data, size_t size) {
    load_into(session, data, size);
    load_into(session16, data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sm_session_reset(session);
    sm_session_reset(session16);
    load(data, size);
    if (size >= 104) {
        uint8_t *copy = malloc(size);
        memcpy(copy, data, size);
        memcpy(copy + 16, &model->id, 8);
        sm_hasher h;
        sm_hasher_init(&h);
        sm_hasher_add(&h, copy, size - 8);
        uint64_t sum = sm_hasher_end(&h);
        memcpy(copy + size - 8, &sum, 8);
        load(copy, size);
        free(copy);
    }
    return 0;
}

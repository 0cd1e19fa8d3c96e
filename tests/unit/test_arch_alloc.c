/* test_arch_alloc.c - every architecture of the table, as a small random
 * model written by sm_model_init_file (a mixture of experts where the
 * architecture is one, and llama as Mixtral too), generates without a
 * single allocator call per token (prompt through the batch path, then
 * decode), on one and on two threads. */
#include "test.h"
#include "model/arch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct counted {
    int n;
    unsigned long first, last;
} counted;

static int count_allocs(void *user, sm_token tok, const char *text, size_t len) {
    (void)text; (void)len;
    counted *c = user;
    if (tok >= 0) {
        if (c->n == 0) c->first = alloc_calls();
        c->last = alloc_calls();
        c->n++;
    }
    return 0;
}

TEST(no_allocations_per_token_every_architecture) {
    char dir[] = "/tmp/sm-arch-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    for (int v = 0; v <= SM_ARCH_COUNT; v++) {
        const sm_arch_info *ai = sm_arch_get(v < SM_ARCH_COUNT ? v : SM_ARCH_LLAMA);
        int kind = sm_arch_experts(ai);
        int experts = kind == SM_EXPERTS_ALWAYS || (kind && v == SM_ARCH_COUNT);
        const char *name = ai->name;
        char path[256];
        snprintf(path, sizeof path, "%s/%s%s.gguf", dir, name, experts ? "-moe" : "");
        sm_init_params ip = sm_init_default_params();
        ip.arch = name;
        ip.n_expert = experts ? 4 : 0;
        ip.dim = 64;
        ip.n_layers = 2;
        ip.n_heads = 4;
        ip.ffn_dim = 96;
        ip.n_ctx = 256;
        ip.n_vocab = 300;
        sm_error err;
        CHECKF(sm_model_init_file(&ip, path, &err) == SM_OK, "%s: %s", name, err.message);
        sm_model *m = NULL;
        if (sm_model_load(path, NULL, &m, &err) != SM_OK) {
            CHECKF(0, "%s: %s", name, err.message);
            continue;
        }
        for (int threads = 1; threads <= 2; threads++) {
            sm_session_params sp = sm_session_default_params();
            sp.n_threads = threads;
            sm_session *s = NULL;
            REQUIRE(sm_session_create(m, &sp, &s, NULL) == SM_OK);
            sm_generate_params gp = sm_generate_default_params();
            gp.n_predict = 41;
            gp.ignore_eos = 1;
            gp.sampler.temperature = 0;
            counted c = {0};
            CHECK(sm_generate(s, "a prompt of a few tokens", &gp, count_allocs, &c, NULL, NULL) == SM_OK);
            CHECKF(c.n == 41 && c.last == c.first, "%s, %d threads: %d tokens, %lu allocation calls in 40", name,
                   threads, c.n, c.last - c.first);
            sm_session_free(s);
        }
        sm_model_free(m);
        unlink(path);
    }
    rmdir(dir);
}

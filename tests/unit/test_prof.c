/* test_prof.c - the profiler on a synthetic scope tree with known sleeps
 * and allocations, and on a real session. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "core/alloc.h"
#include "prof/prof.h"
#include "model/steps.h"
#include "cli/profile_report.h"

#include <stdlib.h>
#include <time.h>

static void sleep_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {}
}

static const sm_prof_node *find(const sm_prof *p, int id, int layer) {
    for (int i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].id == id && p->nodes[i].layer == layer) return &p->nodes[i];
    return NULL;
}

#define MS 1000000ull

TEST(profiler_synthetic_tree_known_sleeps_and_allocations) {
    sm_prof *p = sm_prof_new(64, sm_step_names, SM_SC_COUNT);
    REQUIRE(p);
    /* prefill { 2 ms; token { 5 ms, 2 allocations of 100 and 300 bytes };
     *           token { 1 ms } }, then layer 3 { softmax { 1 ms } } */
    sm_prof_begin(p, SM_SC_PREFILL, -1);
    sleep_ms(2);
    sm_prof_begin(p, SM_SC_TOKEN, -1);
    void *x = sm_alloc(100), *y = sm_alloc(300);
    sleep_ms(5);
    sm_free(x);
    sm_free(y);
    sm_prof_end(p, 1000, 4000);
    sm_prof_begin(p, SM_SC_TOKEN, -1);
    sleep_ms(1);
    sm_prof_end(p, 10, 40);
    sm_prof_end(p, 0, 0);
    sm_prof_begin(p, SM_SC_LAYER, 3);
    sm_prof_begin(p, SM_SC_SOFTMAX, -1);
    sleep_ms(1);
    sm_prof_end(p, 0, 0);
    sm_prof_end(p, 0, 0);

    /* the nodes count in ticks: convert a copy to nanoseconds */
    for (int i = 0; i < p->n_nodes; i++) {
        sm_prof_node *nd = &p->nodes[i];
        nd->incl_ns = sm_prof_ns(p, nd->incl_ns);
        nd->child_ns = sm_prof_ns(p, nd->child_ns);
        nd->min_ns = sm_prof_ns(p, nd->min_ns);
        nd->max_ns = sm_prof_ns(p, nd->max_ns);
    }
    const sm_prof_node *pre = find(p, SM_SC_PREFILL, -1), *tok = find(p, SM_SC_TOKEN, -1);
    const sm_prof_node *lay = find(p, SM_SC_LAYER, 3), *smx = find(p, SM_SC_SOFTMAX, 3);
    REQUIRE(pre && tok && lay && smx);
    CHECK(pre->calls == 1 && tok->calls == 2 && lay->calls == 1 && smx->calls == 1);
    /* sleeps last at least as long as asked; allow generous slack above */
    CHECKF(pre->incl_ns >= 8 * MS && pre->incl_ns < 60 * MS, "prefill %llu ns", (unsigned long long)pre->incl_ns);
    CHECKF(tok->incl_ns >= 6 * MS && tok->incl_ns < 50 * MS, "token %llu ns", (unsigned long long)tok->incl_ns);
    CHECK(tok->min_ns >= 1 * MS && tok->max_ns >= 5 * MS && tok->min_ns < tok->max_ns);
    CHECK(pre->child_ns >= tok->incl_ns - 2 && pre->child_ns <= tok->incl_ns + 2);  /* rounding */
    uint64_t self = pre->incl_ns - pre->child_ns;
    CHECKF(self >= 2 * MS && self < 30 * MS, "prefill self %llu ns", (unsigned long long)self);
    CHECK(tok->flops == 1010 && tok->bytes == 4040);
    CHECKF(tok->alloc_count == 2 && tok->alloc_bytes == 400, "%llu allocations, %llu bytes",
           (unsigned long long)tok->alloc_count, (unsigned long long)tok->alloc_bytes);
    CHECK(pre->alloc_count == 0 && smx->alloc_count == 0);
    CHECK(smx->parent == lay - p->nodes && smx->incl_ns >= 1 * MS && lay->incl_ns >= smx->incl_ns);
    CHECK(!p->overflow);
    /* running out of nodes degrades to the parent, never past the array */
    sm_prof *small = sm_prof_new(3, sm_step_names, SM_SC_COUNT);
    for (int i = 0; i < 10; i++) {
        sm_prof_begin(small, SM_SC_TOKEN, i);
        sm_prof_end(small, 0, 0);
    }
    CHECK(small->overflow && small->n_nodes == 3);
    sm_prof_free(small);
    sm_prof_free(p);
}

TEST(profiled_session_accounts_for_all_generation_time) {
    NEED_SHARED(path, "models/stories260K.gguf");
    sm_model *m = NULL;
    REQUIRE(sm_model_load(path, NULL, &m, NULL) == SM_OK);
    sm_session_params sp = sm_session_default_params();
    sp.profile = 1;
    sm_session *s = NULL;
    REQUIRE(sm_session_create(m, &sp, &s, NULL) == SM_OK);
    sm_generate_params gp = sm_generate_default_params();
    gp.n_predict = 40;
    gp.sampler.temperature = 0;
    sm_generate_stats st;
    REQUIRE(sm_generate(s, "Once upon a time", &gp, NULL, NULL, &st, NULL) == SM_OK);
    int n = sm_session_profile(s, NULL, 0);
    REQUIRE(n > 10);
    sm_profile_row *rows = calloc((size_t)n, sizeof *rows);
    CHECK(sm_session_profile(s, rows, n) == n);
    double self = 0, gen_incl = 0;
    int tokens = 0, layers_seen = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(rows[i].name, "load")) self += rows[i].self_ms;
        if (!strcmp(rows[i].name, "generate")) gen_incl = rows[i].incl_ms;
        if (!strcmp(rows[i].name, "token")) tokens += (int)rows[i].calls;
        if (!strcmp(rows[i].name, "layer") && rows[i].layer >= 0) layers_seen |= 1 << rows[i].layer;
        if (rows[i].parent >= 0) CHECK(rows[rows[i].parent].depth == rows[i].depth - 1);
    }
    CHECK(tokens == 40 && layers_seen == 0x1F);
    CHECKF(self > 0.999 * gen_incl && self < 1.001 * gen_incl, "self %.3f vs generate %.3f", self, gen_incl);
    FILE *f = tmpfile();
    CHECK(profile_write_sections(s, 5, f, PROFILE_ALL) == 0);
    long len = ftell(f);
    CHECK(len > 500);
    fclose(f);
    free(rows);
    sm_session_free(s);
    sm_model_free(m);
}

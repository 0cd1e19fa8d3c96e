/* test_trace.c - the profiler's timeline (issue 18): the per-thread rings
 * keep the newest events and count the rest, the pool's workers record
 * their task shares, recording allocates nothing while tokens are
 * generated, the Chrome JSON parses, the cache sizes are sane, and a run's
 * robust step times (the command's profile_runs.c) are calls x median. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "core/cpu.h"
#include "prof/prof.h"
#include "model/steps.h"
#include "model/session.h"
#include "cli/profile_report.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>
#include <time.h>
#ifdef SM_HAVE_JANSSON
#include <jansson.h>
#endif

TEST(trace_ring_keeps_the_newest_events) {
    sm_prof *p = sm_prof_new(64, sm_step_names, SM_SC_COUNT);
    REQUIRE(p);
    REQUIRE(sm_prof_trace_start(p, 1, 16) == 0);
    for (int i = 0; i < 40; i++) {
        sm_prof_begin(p, SM_SC_TOKEN, -1);
        sm_prof_begin(p, SM_SC_LAYER, i % 3);
        sm_prof_end(p, 0, 0);
        sm_prof_end(p, 0, 0);
    }
    uint64_t held, dropped;
    sm_trace_counts(p->trace, &held, &dropped);
    CHECKF(held == 16 && dropped == 64, "held %llu, dropped %llu", (unsigned long long)held, (unsigned long long)dropped);
    sm_trace_span spans[32];
    size_t n = sm_trace_spans(p->trace, 0, p->ns_per_tick, p->names, p->n_names, spans, 32);
    REQUIRE(n == 16);
    /* the newest 8 tokens, each a layer then its token, in the order they closed */
    for (size_t i = 0; i < n; i++) {
        CHECK(!strcmp(spans[i].name, i % 2 ? "token" : "layer"));
        if (i % 2 == 0) CHECK(spans[i].layer == (int)((32 + i / 2) % 3));
        if (i > 0) CHECK(spans[i].start_ns + spans[i].dur_ns >= spans[i - 1].start_ns + spans[i - 1].dur_ns);
        if (i % 2) CHECK(spans[i].start_ns <= spans[i - 1].start_ns);   /* the token holds its layer */
    }
    sm_prof_trace_stop(p);
    CHECK(p->trace == NULL);
    sm_prof_free(p);
}

#ifdef SM_HAVE_JANSSON
TEST(trace_json_parses_with_every_event) {
    sm_prof *p = sm_prof_new(64, sm_step_names, SM_SC_COUNT);
    REQUIRE(p && sm_prof_trace_start(p, 2, 64) == 0);
    sm_prof_begin(p, SM_SC_GENERATE, -1);
    for (int i = 0; i < 5; i++) {
        sm_prof_begin(p, SM_SC_TOKEN, -1);
        sm_prof_task_hook(p, 0, 0);      /* as the pool calls it around a task */
        sm_prof_task_hook(p, 1, 0);
        sm_prof_task_hook(p, 1, 1);
        sm_prof_task_hook(p, 0, 1);
        sm_prof_end(p, 0, 0);
    }
    sm_prof_end(p, 0, 0);
    sm_prof_counter(p, SM_TRACE_TOKENS_PER_S, 123.0);
    CHECK(p->nodes[2].id == SM_SC_TOKEN && p->nodes[2].tasks == 5 && p->nodes[1].tasks == 0);
    FILE *f = tmpfile();
    REQUIRE(f);
    sm_trace_format fmt = {7, "test \"quoted\"", "main", 0, 0, 0, SM_SC_TOKEN, p->ns_per_tick, p->names, p->n_names};
    CHECK(sm_trace_write(p->trace, f, &fmt) == 0);
    long len = ftell(f);
    rewind(f);
    char *text = malloc((size_t)len + 1);
    REQUIRE(text && fread(text, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    json_error_t je;
    json_t *root = json_loadb(text, (size_t)len, 0, &je);
    CHECKF(root != NULL, "line %d: %s", je.line, je.text);
    if (root) {
        json_t *ev = json_object_get(root, "traceEvents");
        size_t x = 0, tasks = 0, meta = 0, counters = 0, i;
        json_t *e;
        json_array_foreach(ev, i, e) {
            const char *ph = json_string_value(json_object_get(e, "ph"));
            CHECK(json_integer_value(json_object_get(e, "pid")) == 7);
            if (!strcmp(ph, "X")) {
                x++;
                if (!strcmp(json_string_value(json_object_get(e, "cat")), "task")) tasks++;
            } else if (!strcmp(ph, "M")) meta++;
            else if (!strcmp(ph, "C")) counters++;
        }
        /* generate + 5 tokens; 5 task shares on each of 2 threads */
        CHECKF(x == 16 && tasks == 10, "%zu complete events, %zu tasks", x, tasks);
        CHECK(meta == 2 + 2 * 2);
        CHECK(counters >= 1 + 10);   /* the pushed one, 5 tokens' rates and zeros, the allocations */
        json_t *other = json_object_get(root, "otherData");
        CHECK(json_integer_value(json_object_get(other, "ring_events_per_thread")) == 64);
        CHECK(json_integer_value(json_object_get(other, "events_dropped")) == 0);
        json_decref(root);
    }
    free(text);
    sm_prof_free(p);
}
#endif

/* A model whose products go to the pool (rows x cols >= 32768). */
static sm_model *pooled_model(char *path, size_t cap) {
    snprintf(path, cap, "/tmp/smallmind-trace-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    close(fd);
    sm_init_params ip = sm_init_default_params();
    ip.arch = "gpt2";
    ip.dim = 128;
    ip.n_layers = 2;
    ip.n_heads = 4;
    ip.ffn_dim = 512;
    ip.n_ctx = 64;
    ip.n_vocab = 256;
    sm_model *m = NULL;
    if (sm_model_init_file(&ip, path, NULL) != SM_OK || sm_model_load(path, NULL, &m, NULL) != SM_OK) m = NULL;
    unlink(path);
    return m;
}

/* Whether the worker's ring holds a share of the named step. */
static int worker_ran(const sm_session *s, const char *step) {
    size_t n = sm_session_trace_spans(s, 1, NULL, 0);
    sm_trace_span *w = calloc(n + 1, sizeof *w);
    int found = 0;
    if (w) {
        n = sm_session_trace_spans(s, 1, w, n);
        for (size_t i = 0; i < n && !found; i++) found = !strcmp(w[i].name, step);
    }
    free(w);
    return found;
}

/* A profiled session of 2 threads on m, and greedy parameters for prompt
 * (4 tokens) that ignore end-of-text. */
static sm_session *profiled_pair(sm_model *m) {
    sm_session_params sp = sm_session_default_params();
    sp.profile = 1;
    sp.n_threads = 2;
    sp.n_ctx = 64;
    sm_session *s = NULL;
    return sm_session_create(m, &sp, &s, NULL) == SM_OK ? s : NULL;
}

static sm_generate_params greedy_params(const sm_token *prompt) {
    sm_generate_params gp = sm_generate_default_params();
    gp.sampler.temperature = 0;
    gp.ignore_eos = 1;
    gp.prompt_tokens = prompt;
    gp.n_prompt_tokens = 4;
    return gp;
}

TEST(trace_records_pool_workers_and_allocates_nothing_per_token) {
    char path[64];
    sm_model *m = pooled_model(path, sizeof path);
    REQUIRE(m);
    sm_session *s = profiled_pair(m);
    REQUIRE(s);
    /* the worker's spans are this test's subject: the pool is not to go
     * solo because other processes keep the CPUs busy (the thread pool's
     * own tests check that) */
    sm_threadpool_set_looks(s->pool, 0);
    CHECK(sm_session_trace_spans(s, 0, NULL, 0) == 0);   /* not recording yet */
    REQUIRE(sm_session_trace_start(s, 4096, NULL) == SM_OK);
    sm_token prompt[4] = {1, 2, 3, 4};
    sm_generate_params gp = greedy_params(prompt);
    /* allocator calls of a generation of 5 and of 25 tokens: the same */
    unsigned long counts[2];
    for (int k = 0; k < 2; k++) {
        sm_session_reset(s);
        gp.n_predict = k ? 25 : 5;
        unsigned long before = alloc_calls();
        REQUIRE(sm_generate(s, NULL, &gp, NULL, NULL, NULL, NULL) == SM_OK);
        counts[k] = alloc_calls() - before;
    }
    CHECKF(counts[0] == counts[1], "%lu allocator calls for 5 tokens, %lu for 25", counts[0], counts[1]);
    /* On a loaded machine the pool may have run solo (a worker descheduled
     * inside its share sends it solo for a spell of up to 0.256 s): wait
     * the spell out and generate again until the worker has run shares. */
    for (int k = 0; k < 40 && (sm_session_trace_spans(s, 1, NULL, 0) <= 10 || !worker_ran(s, "FFN up projection")); k++) {
        struct timespec ts = {0, 300000000};
        nanosleep(&ts, NULL);
        sm_session_reset(s);
        REQUIRE(sm_generate(s, NULL, &gp, NULL, NULL, NULL, NULL) == SM_OK);
    }
    size_t n0 = sm_session_trace_spans(s, 0, NULL, 0), n1 = sm_session_trace_spans(s, 1, NULL, 0);
    CHECKF(n0 > 100 && n1 > 10, "%zu spans on the main thread, %zu on the worker", n0, n1);
    sm_trace_span *w = calloc(n1 + 1, sizeof *w);
    REQUIRE(w);
    sm_session_trace_spans(s, 1, w, n1);
    int all_tasks = 1, named = 0;
    for (size_t i = 0; i < n1; i++) {
        all_tasks &= w[i].task;
        named += !strcmp(w[i].name, "FFN up projection");
    }
    CHECK(all_tasks && named > 0);
    free(w);
    /* the steps that handed work out say so */
    int n = sm_session_profile_steps(s, NULL, 0);
    sm_profile_step *rows = calloc((size_t)n, sizeof *rows);
    REQUIRE(rows);
    sm_session_profile_steps(s, rows, n);
    int pooled = 0, groups = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(rows[i].row.name, "FFN up projection") && rows[i].tasks >= rows[i].row.calls) pooled++;
        if (!strcmp(rows[i].row.name, "layer") && rows[i].kind == SM_STEP_GROUP) groups++;
        if (!strcmp(rows[i].row.name, "QKV projection")) CHECK(rows[i].kind == SM_STEP_WEIGHTS && rows[i].fma);
        if (!strcmp(rows[i].row.name, "token")) CHECK(rows[i].pass);
    }
    CHECK(pooled > 0 && groups > 0);
    free(rows);
    /* paused, nothing is recorded and the pool's hook is off */
    sm_session_profile_enable(s, 0);
    size_t before = sm_session_trace_spans(s, 1, NULL, 0);
    sm_session_reset(s);
    gp.n_predict = 3;
    REQUIRE(sm_generate(s, NULL, &gp, NULL, NULL, NULL, NULL) == SM_OK);
    CHECK(sm_session_trace_spans(s, 1, NULL, 0) == before);
    sm_session_trace_stop(s);
    CHECK(sm_session_trace_spans(s, 0, NULL, 0) == 0);
    sm_session_free(s);
    sm_model_free(m);
}

/* How many task shares the session's own ring holds (-1: out of memory). */
static int main_thread_tasks(const sm_session *s) {
    size_t n = sm_session_trace_spans(s, 0, NULL, 0);
    sm_trace_span *w = calloc(n + 1, sizeof *w);
    if (!w) return -1;
    sm_session_trace_spans(s, 0, w, n);
    int tasks = 0;
    for (size_t i = 0; i < n; i++) tasks += w[i].task;
    free(w);
    return tasks;
}

/* With the task shares left out, the workers' rings stay empty and the
 * session's own ring holds steps only; the steps still count their tasks. */
TEST(trace_without_tasks_records_only_steps) {
    char path[64];
    sm_model *m = pooled_model(path, sizeof path);
    REQUIRE(m);
    sm_session *s = profiled_pair(m);
    REQUIRE(s);
    sm_session_trace_tasks(s, 0);
    REQUIRE(sm_session_trace_start(s, 4096, NULL) == SM_OK);
    sm_token prompt[4] = {1, 2, 3, 4};
    sm_generate_params gp = greedy_params(prompt);
    gp.n_predict = 8;
    REQUIRE(sm_generate(s, NULL, &gp, NULL, NULL, NULL, NULL) == SM_OK);
    size_t n0 = sm_session_trace_spans(s, 0, NULL, 0), n1 = sm_session_trace_spans(s, 1, NULL, 0);
    CHECKF(n0 > 50 && n1 == 0, "%zu spans on the main thread, %zu on the worker", n0, n1);
    int tasks = main_thread_tasks(s);
    CHECKF(tasks == 0, "%d task shares on the main thread", tasks);
    int n = sm_session_profile_steps(s, NULL, 0);
    sm_profile_step *rows = calloc((size_t)n + 1, sizeof *rows);
    REQUIRE(rows);
    sm_session_profile_steps(s, rows, n);
    uint64_t handed = 0;
    for (int i = 0; i < n; i++) handed += rows[i].tasks;
    CHECK(handed > 0);
    free(rows);
    /* on again: the shares come back */
    sm_session_trace_tasks(s, 1);
    sm_session_reset(s);
    REQUIRE(sm_generate(s, NULL, &gp, NULL, NULL, NULL, NULL) == SM_OK);
    CHECKF(main_thread_tasks(s) > 0, "no task shares on the main thread with tasks on");
    sm_session_trace_stop(s);
    sm_session_free(s);
    sm_model_free(m);
}

TEST(trace_start_refuses_an_unprofiled_session) {
    char path[64];
    sm_model *m = pooled_model(path, sizeof path);
    REQUIRE(m);
    sm_session *s = NULL;
    REQUIRE(sm_session_create(m, NULL, &s, NULL) == SM_OK);
    sm_error err = {0};
    CHECK(sm_session_trace_start(s, 0, &err) == SM_ERR_INVALID_ARG && strstr(err.message, "profiling"));
    CHECK(sm_session_trace_write(s, stderr, NULL, &err) == SM_ERR_INVALID_ARG);
    sm_session_free(s);
    sm_model_free(m);
}

TEST(cache_sizes_are_sane) {
    size_t c[3];
    const char *src = sm_cpu_cache_sizes(c);
    CHECK(!strcmp(src, "sysfs") || !strcmp(src, "sysconf") || !strcmp(src, "default"));
    CHECKF(c[0] >= 4096 && (c[1] == 0 || c[1] > c[0]) && (c[2] == 0 || c[2] > c[1]), "%s: %zu %zu %zu", src, c[0],
           c[1], c[2]);
}

TEST(robust_run_times_are_calls_times_median) {
    /* a run: token [0, 1000) holding three softmax calls of 10, 12 and 500 ns
     * (the last one preempted), then token [1000, 1100) with one of 11 ns */
    sm_trace_span sp[6] = {
        {"softmax", -1, 0, 100, 10},  {"softmax", -1, 0, 200, 12},  {"softmax", -1, 0, 300, 500},
        {"token", -1, 0, 0, 1000},    {"softmax", -1, 0, 1010, 11}, {"token", -1, 0, 1000, 100},
    };
    const char *names[PROFILE_MAX_STEPS];
    int n = 0;
    double ms[PROFILE_MAX_STEPS], fast[PROFILE_MAX_STEPS];
    REQUIRE(profile_run_robust(sp, 6, 0, names, &n, ms, fast) == 0);
    REQUIRE(n == 2);
    int sm = !strcmp(names[0], "softmax") ? 0 : 1, tk = 1 - sm;
    /* softmax: 4 calls x median(10, 11, 12, 500) = 4 x 11.5 ns */
    CHECKF(fabs(ms[sm] - 4 * 11.5e-6) < 1e-12, "softmax %.9f ms", ms[sm]);
    /* token self times: 1000 - 522 = 478 and 100 - 11 = 89: 2 x 283.5 */
    CHECKF(fabs(ms[tk] - 2 * 283.5e-6) < 1e-12, "token %.9f ms", ms[tk]);
    /* and calls x the fastest: 4 x 10 ns, 2 x 89 ns */
    CHECK(fabs(fast[sm] - 4 * 10e-6) < 1e-12 && fabs(fast[tk] - 2 * 89e-6) < 1e-12);
}

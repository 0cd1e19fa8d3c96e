/* test_threadpool.c - the thread pool's promise: every share of every task
 * runs exactly once, before run() returns, whoever runs it (a worker, or the
 * caller taking the share of a worker that is late), with workers that
 * sleep between bursts, are slowed, or get benched and woken again. */
#include "test.h"
#include "core/threadpool.h"

#include <stdatomic.h>
#include <time.h>

typedef struct {
    atomic_int count[8];
    int task;          /* the task's number, for the slow shares */
    atomic_int wrong;  /* a share seen with the wrong thread count */
} counts;

static void task_fn(void *ctx, int ith, int nth) {
    counts *c = ctx;
    if (nth < 2 || nth > 8 || ith < 0 || ith >= nth) { atomic_fetch_add(&c->wrong, 1); return; }
    /* every 7th task, share 1 is slow (a worker late or descheduled looks so to the caller) */
    if (ith == 1 && c->task % 7 == 0) {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
    atomic_fetch_add(&c->count[ith], 1);
}

TEST(threadpool_runs_every_share_exactly_once) {
    for (int n = 2; n <= 4; n += 2) {
        sm_threadpool *p = sm_threadpool_new(n);
        REQUIRE(p);
        static counts c;
        for (int i = 0; i < 8; i++) atomic_store(&c.count[i], 0);
        atomic_store(&c.wrong, 0);
        int tasks = 0, bad = 0;
        for (int burst = 0; burst < 40; burst++) {
            for (int k = 0; k < 200; k++, tasks++) {
                c.task = tasks;
                sm_threadpool_run(p, task_fn, &c);
                /* run() returned: this task's shares are all done */
                for (int i = 0; i < n; i++) bad += atomic_load(&c.count[i]) != tasks + 1;
            }
            if (burst % 8 == 7) {   /* a pause long enough for the workers to fall asleep */
                struct timespec ts = {0, 3000000};
                nanosleep(&ts, NULL);
            }
        }
        CHECKF(bad == 0 && atomic_load(&c.wrong) == 0, "%d threads: %d shares missing or repeated after run(), %d wrong",
               n, bad, atomic_load(&c.wrong));
        sm_threadpool_free(p);
    }
}

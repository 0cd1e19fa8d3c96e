/* test_threadpool.c - the thread pool's promise: every share of every task
 * runs exactly once, before run() returns, whoever runs it (a worker, or the
 * caller taking the share of a worker that is late), with workers that
 * sleep between bursts, are slowed, or get benched and woken again. */
#include "test.h"
#include "core/threadpool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

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

/* sm_share, against its definition checked item by item: the shares of n
 * items cover each item exactly once, in order; each starts on a multiple
 * of unit; none is longer than ceil(n / nth) rounded up to unit; and only
 * trailing shares fall short of that. */
TEST(share_covers_every_item_once_in_whole_units) {
    int bad = 0;
    for (int n = 0; n <= 300 && bad < 5; n++)
        for (int unit = 1; unit <= 33; unit += (unit < 4 ? 1 : 7))
            for (int nth = 1; nth <= 5; nth++) {
                int next = 0, most = ((n + nth - 1) / nth + unit - 1) / unit * unit, short_seen = 0;
                for (int ith = 0; ith < nth; ith++) {
                    int i0, i1;
                    size_t z0, z1;
                    sm_share(n, unit, ith, nth, &i0, &i1);
                    sm_share_size((size_t)n, (size_t)unit, ith, nth, &z0, &z1);
                    int len = i1 - i0, ok = i0 == next && len >= 0 && len <= most && (i0 % unit == 0 || len == 0) &&
                                            (size_t)i0 == z0 && (size_t)i1 == z1 && !(short_seen && len > 0);
                    if (len < most) short_seen = 1;
                    if (!ok && bad++ < 5)
                        CHECKF(0, "n %d unit %d share %d of %d: [%d, %d) after %d (longest %d)", n, unit, ith, nth, i0,
                               i1, next, most);
                    next = i1;
                }
                if (next != n && bad++ < 5) CHECKF(0, "n %d unit %d nth %d: the shares end at %d", n, unit, nth, next);
            }
    CHECK(bad == 0);
}

/* A worker held up inside its share (as when the OS deschedules it) makes
 * the caller's wait long: the pool then runs the next tasks solo, every
 * share on the caller's thread and still exactly once, and after the spell
 * (2 ms at first) hands shares to its worker again. So that the worker, not
 * a caller that finds it late, runs share 1 where it should, share 0 waits
 * (up to a second) until share 1 has started, except in the tasks expected
 * to run solo. */
typedef struct {
    atomic_int count[2];
    atomic_int started;     /* the last task whose share 1 began */
    int task, stall, handshake;
    pthread_t on[2];        /* the thread that ran each share of the last task */
} solo_ctx;

/* Busy threads, one per CPU: the pool goes solo only when the machine has
 * more runnable threads than CPUs (a lone stall is a hypervisor's hiccup). */
static atomic_int spin_stop;
static void *spinner(void *arg) {
    (void)arg;
    while (!atomic_load(&spin_stop)) {
    }
    return NULL;
}

static void solo_fn(void *ctx, int ith, int nth) {
    solo_ctx *c = ctx;
    (void)nth;
    if (ith == 1) {
        atomic_store(&c->started, c->task);
        if (c->task == c->stall) {   /* descheduled for 20 ms while the machine is busy */
            struct timespec ts = {0, 20000000};
            nanosleep(&ts, NULL);
        }
    } else if (c->handshake) {
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        do clock_gettime(CLOCK_MONOTONIC, &t);
        while (atomic_load(&c->started) != c->task && t.tv_sec - t0.tv_sec < 2);
    }
    c->on[ith] = pthread_self();
    atomic_fetch_add(&c->count[ith], 1);
}

static uint64_t mono_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* One attempt; 1 when the first task after the stall started too late to
 * tell (this process descheduled past the spell by a loaded machine). */
static int solo_attempt(int *bad, int *worker_before, int *caller_fail, int *worker_later) {
    sm_threadpool *p = sm_threadpool_new(2);
    *bad = *worker_before = *caller_fail = *worker_later = 0;
    if (!p) {
        *bad = 1;
        return 0;
    }
    sm_threadpool_set_looks(p, 0);   /* the long wait alone, not the load it would see coming */
    static solo_ctx c;
    atomic_store(&c.count[0], 0);
    atomic_store(&c.count[1], 0);
    atomic_store(&c.started, -1);
    c.stall = 50;
    pthread_t me = pthread_self();
    int late = 0;
    uint64_t stall_end = 0;
    for (c.task = 0; c.task < 111; c.task++) {
        c.handshake = c.task <= 50 || c.task > 60;
        if (c.task == 61) {   /* past the spell */
            struct timespec ts = {0, 50000000};
            nanosleep(&ts, NULL);
        }
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        int nspin = c.task == c.stall ? (int)(ncpu > 0 ? (ncpu < 64 ? ncpu : 64) : 1) : 0;
        pthread_t spinners[64];
        atomic_store(&spin_stop, 0);
        int made = 0;
        while (made < nspin && pthread_create(&spinners[made], NULL, spinner, NULL) == 0) made++;
        *bad += made != nspin;
        uint64_t start = mono_ns();
        sm_threadpool_run(p, solo_fn, &c);
        if (c.task == c.stall) stall_end = mono_ns();
        atomic_store(&spin_stop, 1);
        for (int i = 0; i < made; i++) pthread_join(spinners[i], NULL);
        *bad += atomic_load(&c.count[0]) != c.task + 1 || atomic_load(&c.count[1]) != c.task + 1;
        int on_worker = !pthread_equal(c.on[1], me);
        /* the spell lasts 2 ms at first: tasks begun within 1.5 ms of the
         * stall's end must run solo; later ones may not (a loaded machine
         * can hold this thread back that long) */
        int in_spell = c.task > 50 && c.task <= 60 && start - stall_end < 1500000;
        if (c.task == 51 && !in_spell) late = 1;
        if (c.task < 50) *worker_before += on_worker;
        else if (in_spell) *caller_fail += on_worker;
        else if (c.task > 60) *worker_later += on_worker;
    }
    sm_threadpool_free(p);
    return late;
}

TEST(threadpool_goes_solo_after_a_long_wait_and_comes_back) {
    int bad = 0, worker_before = 0, caller_fail = 0, worker_later = 0, attempt = 0;
    while (solo_attempt(&bad, &worker_before, &caller_fail, &worker_later) && ++attempt < 5) {
    }
    CHECKF(attempt < 5, "in 5 attempts the first task after the stall never began within 1.5 ms of it");
    CHECKF(bad == 0, "%d tasks with a share missing or repeated", bad);
    CHECKF(worker_before == 50, "before the stall the worker ran share 1 of %d of 50 tasks", worker_before);
    CHECKF(caller_fail == 0, "within the solo spell the worker ran share 1 of %d tasks", caller_fail);
    CHECKF(worker_later == 50, "after the solo spell the worker ran share 1 of %d of 50 tasks", worker_later);
}

/* The caller's look at the machine's load: while other threads keep every
 * CPU busy (spinners, one per CPU), the pool runs solo from its first look
 * on (one a millisecond), with no long wait to learn it from; once they
 * stop, its worker runs shares again within a few looks. Share 1 records
 * which thread ran it; share 0 takes 20 us, time enough for a worker that
 * is awake to claim share 1 before the caller would. */
typedef struct {
    pthread_t on1;   /* the thread that ran share 1 */
} look_ctx;

static void look_fn(void *ctx, int ith, int nth) {
    look_ctx *c = ctx;
    (void)nth;
    if (ith == 1) {
        c->on1 = pthread_self();
    } else {
        uint64_t t0 = mono_ns();
        while (mono_ns() - t0 < 20000) {
        }
    }
}

/* One attempt: the tasks run during the spinners' last 7 of 10 ms whose
 * share 1 a worker ran, and, after them, how many of the tasks begun within
 * 10 ms the caller ran alone (the first few may: a look or two). */
static void look_attempt(int *bad, int *not_solo, int *after_solo, int *after_tasks) {
    sm_threadpool *p = sm_threadpool_new(2);
    *bad = *not_solo = *after_solo = *after_tasks = 0;
    if (!p) {
        *bad = 1;
        return;
    }
    static look_ctx c;
    pthread_t me = pthread_self(), spinners[64];
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nspin = (int)(ncpu > 0 ? (ncpu < 64 ? ncpu : 64) : 1), made = 0;
    atomic_store(&spin_stop, 0);
    while (made < nspin && pthread_create(&spinners[made], NULL, spinner, NULL) == 0) made++;
    *bad += made != nspin;
    uint64_t t0 = mono_ns();
    while (mono_ns() - t0 < 10000000ull) {
        uint64_t start = mono_ns();
        sm_threadpool_run(p, look_fn, &c);
        if (start - t0 > 3000000ull) *not_solo += !pthread_equal(c.on1, me);
    }
    atomic_store(&spin_stop, 1);
    for (int i = 0; i < made; i++) pthread_join(spinners[i], NULL);
    t0 = mono_ns();
    for (; mono_ns() - t0 < 10000000ull; ++*after_tasks) {
        sm_threadpool_run(p, look_fn, &c);
        *after_solo += pthread_equal(c.on1, me);
    }
    sm_threadpool_free(p);
}

/* Whether other processes keep this machine's CPUs busy on their own, as
 * /proc/loadavg counts runnable threads (this one, with no pool running,
 * aside): leaving one CPU at most in 6 of 8 samples a millisecond apart.
 * 0 when it cannot be read. */
static int crowded_elsewhere(void) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int crowded = 0;
    for (int i = 0; i < 8; i++) {
        FILE *f = fopen("/proc/loadavg", "r");
        double l1, l5, l15;
        int running = 0, total = 0;
        if (!f) return 0;
        int got = fscanf(f, "%lf %lf %lf %d/%d", &l1, &l5, &l15, &running, &total);
        fclose(f);
        if (got != 5) return 0;
        crowded += running - 1 >= ncpu - 1 && running > 1;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return crowded >= 6;
}

TEST(threadpool_runs_solo_while_other_threads_crowd_the_cpus) {
    int bad = 0, not_solo = 0, after_solo = 0, after_tasks = 0, attempt = 0;
    /* another attempt when, after the spinners, the caller still ran most
     * tasks alone: this machine may have had other busy processes then */
    do look_attempt(&bad, &not_solo, &after_solo, &after_tasks);
    while (after_solo > after_tasks / 2 && ++attempt < 5);
    CHECKF(bad == 0, "could not start the spinners");
    CHECKF(not_solo == 0, "with every CPU busy elsewhere a worker ran share 1 of %d tasks", not_solo);
    if (after_tasks > 0 && after_solo > after_tasks / 2 && crowded_elsewhere()) {
        /* still crowded without the spinners: running solo is right, and
         * whether the worker comes back cannot be seen here */
        fprintf(stderr, "    note: other processes keep the CPUs busy; the worker's return was not checked\n");
        return;
    }
    CHECKF(after_tasks > 0 && after_solo <= after_tasks / 2,
           "after the spinners the caller ran share 1 of %d of %d tasks (in %d attempts)", after_solo, after_tasks,
           attempt + 1);
}

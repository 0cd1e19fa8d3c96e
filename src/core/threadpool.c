/* threadpool.c - see threadpool.h.
 *
 * A task is n_threads shares, share i being fn(ctx, i, n). Worker i runs
 * share i; but when the caller has finished its own share and a worker has
 * not started its one after a short grace (it is asleep, or the OS has
 * descheduled it for another process), the caller runs that share itself
 * instead of spinning. Each share is claimed exactly once, by a
 * compare-and-swap of the task's number into its claim word. Which thread
 * runs a share changes nothing in what it computes.
 *
 * A worker descheduled in the middle of its share cannot be helped that
 * way: the caller has to wait for the OS to run it again, milliseconds when
 * another process holds the core. When a long wait is that (the worker's
 * CPU time grew by less than half the wall time) and the machine has more
 * runnable threads than CPUs, the pool goes solo:
 * the caller runs every share of the next tasks itself, the workers fall
 * asleep, and the machine's other process no longer decides the pace. The
 * spell doubles while that recurs within a second of the last spell.
 *
 * That is learnt the hard way, a scheduler slice lost each time. So the
 * caller also looks ahead: once a millisecond it reads how many threads
 * the machine has runnable, and while those not its own leave the pool one
 * CPU at most, it runs solo without waiting to be descheduled (a second
 * thread cannot help then: the OS time-shares it with the other process,
 * and every share it takes stalls a task). Only while that lasts, though:
 * crowded in 7 of the last 8 looks, the first look standing for the 8
 * before it. A process that wakes now and then (a client reading the
 * tokens) costs a worker a moment of its CPU; running solo would cost the
 * second thread for whole spells. */
#include "threadpool.h"
#include "alloc.h"

#include "clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPIN_ROUNDS 20000

typedef struct worker {
    struct sm_threadpool *pool;
    int index;
    pthread_t thread;
    clockid_t cpu_clock;       /* its CPU time, to tell a descheduled worker from a slow one */
    int has_clock;
} worker;

struct sm_threadpool {
    int n_threads;
    worker *workers;
    sm_task_fn fn;
    void *ctx;
    sm_task_hook hook;         /* read by the workers after they see the generation change */
    void *hook_user;
    atomic_ullong generation;  /* the task's number, bumped for every task (64 bits: never wraps) */
    atomic_ullong *claim;      /* [n_threads] the number of the last task whose share i was claimed */
    atomic_int pending;        /* shares 1.. not finished yet */
    atomic_int sleepers;       /* workers asleep ... */
    atomic_int benched;        /* ... of which these are not to be woken for each task */
    unsigned probe;            /* the caller's: tasks since it last woke benched workers */
    uint64_t solo_until;       /* the caller's: runs every share itself until then (ns) */
    uint64_t solo_ns;          /* the length of the next solo spell */
    int n_cpus;                /* online CPUs, for machine_busy and crowded */
    int loadavg;               /* /proc/loadavg, kept open (-1: unreadable) */
    int looks;                 /* the caller looks at the machine's load (1, unless a test says) */
    uint64_t next_look;        /* the caller's: when it looks next (ns) */
    unsigned crowded_looks;    /* the caller's: the last 8 looks, 1 where they found the CPUs crowded */
    atomic_int quit;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* Claims share i of task g unless someone has, and runs it (with the hook
 * around it when hooked: claimed, the task cannot end before the share
 * does, so fn, ctx and what the hook reads are task g's). 1 if it ran. */
static int run_share(sm_threadpool *p, int i, unsigned long long g, int self, sm_task_hook hook) {
    unsigned long long c = atomic_load_explicit(&p->claim[i], memory_order_relaxed);
    if (c >= g || !atomic_compare_exchange_strong(&p->claim[i], &c, g)) return 0;
    if (hook) hook(p->hook_user, self, 0);
    p->fn(p->ctx, i, p->n_threads);
    if (hook) hook(p->hook_user, self, 1);
    atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    return 1;
}

/* A worker whose share the caller has taken this many tasks in a row is
 * not getting the CPU in time (another process has it): it sleeps at once
 * and is "benched" - the caller stops waking it for each task and runs its
 * shares itself, and wakes it again every BENCH_PROBE tasks to see whether
 * the contention is over. */
#define BENCH_AFTER 8
#define BENCH_PROBE 1024

static void *worker_main(void *arg) {
    worker *w = arg;
    sm_threadpool *p = w->pool;
    unsigned long long seen = 0;
    int streak = 0;   /* tasks in a row whose share the caller took */
    for (;;) {
        unsigned long long g;
        int spins = 0, bench = streak >= BENCH_AFTER;
        while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->quit, memory_order_acquire)) {
            if (!bench && ++spins < SPIN_ROUNDS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mutex);
            if (bench) atomic_fetch_add(&p->benched, 1);   /* before sleepers: never seen as a plain sleeper */
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->quit))
                pthread_cond_wait(&p->wake, &p->mutex);
            atomic_fetch_sub(&p->sleepers, 1);
            if (bench) atomic_fetch_sub(&p->benched, 1);
            pthread_mutex_unlock(&p->mutex);
            spins = 0;
            bench = streak = 0;
        }
        if (atomic_load_explicit(&p->quit, memory_order_acquire)) return NULL;
        seen = g;
        if (run_share(p, w->index, g, w->index, p->hook)) streak = 0;   /* unless the caller took it */
        else streak++;
    }
}

sm_threadpool *sm_threadpool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    sm_threadpool *p = sm_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    p->n_cpus = cpus > 0 ? (int)cpus : 1;
    p->loadavg = n_threads > 1 ? open("/proc/loadavg", O_RDONLY | O_CLOEXEC) : -1;
    p->looks = 1;
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->benched, 0);
    atomic_init(&p->quit, 0);
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (n_threads > 1) {
        p->workers = sm_calloc((size_t)n_threads, sizeof *p->workers);
        p->claim = sm_calloc((size_t)n_threads, sizeof *p->claim);
        if (!p->workers || !p->claim) { sm_threadpool_free(p); return NULL; }
        for (int i = 0; i < n_threads; i++) atomic_init(&p->claim[i], 0);
        /* at least 2 MiB of stack per worker, whatever the C library's default (musl's is
         * 128 KiB): a kernel may keep a block of weights on its stack (sm_gemm_avx512: 128 KiB, and
         * gemm_bf16's dot variant another 256 KiB of the batch rounded to BF16) */
        pthread_attr_t attr;
        int have_attr = pthread_attr_init(&attr) == 0;
        size_t stack = 0;
        if (have_attr && pthread_attr_getstacksize(&attr, &stack) == 0 && stack < ((size_t)2 << 20))
            pthread_attr_setstacksize(&attr, (size_t)2 << 20);
        for (int i = 1; i < n_threads; i++) {
            p->workers[i].pool = p;
            p->workers[i].index = i;
            if (pthread_create(&p->workers[i].thread, have_attr ? &attr : NULL, worker_main, &p->workers[i]) != 0) {
                p->n_threads = i;  /* free() joins the ones that started */
                if (have_attr) pthread_attr_destroy(&attr);
                sm_threadpool_free(p);
                return NULL;
            }
            p->workers[i].has_clock = pthread_getcpuclockid(p->workers[i].thread, &p->workers[i].cpu_clock) == 0;
        }
        if (have_attr) pthread_attr_destroy(&attr);
    }
    return p;
}

void sm_threadpool_free(sm_threadpool *p) {
    if (!p) return;
    if (p->workers) {
        pthread_mutex_lock(&p->mutex);
        atomic_store(&p->quit, 1);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
        for (int i = 1; i < p->n_threads; i++) pthread_join(p->workers[i].thread, NULL);
        sm_free(p->workers);
    }
    sm_free(p->claim);
    if (p->loadavg >= 0) close(p->loadavg);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->wake);
    sm_free(p);
}

int sm_threadpool_size(const sm_threadpool *p) { return p->n_threads; }

void sm_threadpool_set_looks(sm_threadpool *p, int on) { p->looks = on; }

void sm_threadpool_set_hook(sm_threadpool *p, sm_task_hook hook, void *user) {
    p->hook = hook;
    p->hook_user = user;
}

/* How long the caller, done with its share, leaves a worker to start its
 * own before running it itself, in pause instructions: about a microsecond.
 * A worker that is spinning claims its share within nanoseconds of the
 * task's start, long before the caller is through its own; one that has not
 * claimed it by then is asleep or descheduled, and waiting for it would
 * cost more than the share. A worker known to be asleep when the task
 * starts gets no grace at all (waking takes tens of microseconds). */
#define STEAL_GRACE 64

/* A wait still going on after WATCH_AFTER pauses is watched: if over the
 * next LONG_WAIT_NS or more a worker ran for less than half the time, it
 * was descheduled inside its share. */
#define WATCH_AFTER 1024
#define LONG_WAIT_NS 200000ull
#define SOLO_MIN_NS 2000000ull      /* 2 ms */
#define SOLO_MAX_NS 256000000ull    /* 0.256 s */
#define CALM_NS 1000000000ull       /* a second without one: solo spells start short again */

/* The least CPU time (ns) any worker has used, UINT64_MAX when unknown:
 * one system call per worker, made only during long waits. */
static uint64_t workers_cpu_min(const sm_threadpool *p) {
    uint64_t least = UINT64_MAX;
    for (int i = 1; i < p->n_threads; i++) {
        struct timespec ts;
        if (!p->workers[i].has_clock || clock_gettime(p->workers[i].cpu_clock, &ts) != 0) return UINT64_MAX;
        uint64_t ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        if (ns < least) least = ns;
    }
    return least;
}

/* The threads runnable on the machine now, this one included (the fourth
 * field of /proc/loadavg, "running/total"); -1 where that cannot be read. */
static int runnable_threads(const sm_threadpool *p) {
    char buf[128];
    if (p->loadavg < 0) return -1;
    ssize_t n = pread(p->loadavg, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = 0;
    const char *q = buf;
    for (int field = 0; field < 3 && q; field++) {
        q = strchr(q, ' ');
        if (q) q++;
    }
    if (!q || *q < '0' || *q > '9') return -1;
    return atoi(q);
}

/* Whether more threads are runnable on the machine than it has CPUs, other
 * processes' and the pool's together; where that cannot be read, a
 * descheduled worker is taken to say so. */
static int machine_busy(const sm_threadpool *p) {
    int running = runnable_threads(p);
    return running < 0 || running > p->n_cpus;
}

/* Whether the threads runnable besides the pool's own (the caller and the
 * workers not asleep) leave the pool one CPU at most, so that one thread is
 * all it can have; not when that cannot be read (the long waits still
 * tell). Where they leave it more CPUs than one but fewer than its team,
 * the long waits decide as before. */
static int crowded(const sm_threadpool *p) {
    int running = runnable_threads(p);
    if (running < 0) return 0;
    int others = running - (p->n_threads - atomic_load(&p->sleepers));
    return others > 0 && others >= p->n_cpus - 1;
}

#define LOOK_NS 1000000ull          /* the caller looks at the machine's load once a millisecond */

void sm_threadpool_run(sm_threadpool *p, sm_task_fn fn, void *ctx) {
    if (p->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    uint64_t now = sm_now_ns();
    if (p->looks && now >= p->next_look) {   /* crowded now and in 6 of the 7 looks before: solo until the next look */
        unsigned c = (unsigned)crowded(p);
        /* the first look (next_look still 0) stands for the 8 before it */
        p->crowded_looks = p->next_look ? ((p->crowded_looks << 1) | c) & 0xff : c * 0xff;
        p->next_look = now + LOOK_NS;
        if (c && __builtin_popcount(p->crowded_looks) >= 7 && p->solo_until < now + 2 * LOOK_NS)
            p->solo_until = now + 2 * LOOK_NS;
    }
    if (p->solo_until && now < p->solo_until) {   /* every share here, in order; the workers are not told */
        if (p->hook) p->hook(p->hook_user, 0, 0);
        for (int i = 0; i < p->n_threads; i++) fn(ctx, i, p->n_threads);
        if (p->hook) p->hook(p->hook_user, 0, 1);
        return;
    }
    /* the caller's call comes first: what it writes for the workers'
     * calls is published with the task */
    if (p->hook) p->hook(p->hook_user, 0, 0);
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, p->n_threads - 1, memory_order_relaxed);
    /* seq_cst: must not pass the read of sleepers below (see worker_main) */
    unsigned long long g = atomic_fetch_add(&p->generation, 1) + 1;
    int sleeping = atomic_load(&p->sleepers), benched = atomic_load(&p->benched), asleep = sleeping > 0;
    if (sleeping > benched || (benched && ++p->probe >= BENCH_PROBE)) {
        p->probe = 0;
        pthread_mutex_lock(&p->mutex);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }
    fn(ctx, 0, p->n_threads);
    int spins = 0, watched = 0;
    uint64_t w0 = 0, c0 = 0;
    for (; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++) {
        if (spins == (asleep ? 0 : STEAL_GRACE))   /* shares nobody has started: the caller's */
            for (int i = 1; i < p->n_threads; i++) run_share(p, i, g, 0, NULL);   /* inside the caller's span */
        if (spins == WATCH_AFTER) {   /* a long wait: note the time and the workers' CPU time */
            w0 = sm_now_ns();
            c0 = workers_cpu_min(p);
            watched = c0 != UINT64_MAX;
        }
        if (spins < 4096) cpu_relax();
        else sched_yield();   /* a worker is inside its share: let the OS run it */
    }
    if (p->hook) p->hook(p->hook_user, 0, 1);
    if (watched) {
        /* descheduled: a worker got less than half of the wait's wall time
         * on a CPU (a slow share, say one that reads memory the caller's
         * found in cache, keeps its worker busy all along) */
        uint64_t t2 = sm_now_ns(), c1 = workers_cpu_min(p);
        if (t2 - w0 > LONG_WAIT_NS && c1 != UINT64_MAX && 2 * (c1 - c0) < t2 - w0) {
            /* another process wants these CPUs (a hypervisor's hiccup, where
             * going solo would only lose the second thread, does not count);
             * the spell doubles while that recurs within a second */
            if (machine_busy(p)) {
                if (p->solo_ns && t2 - p->solo_until < CALM_NS) {
                    if (p->solo_ns < SOLO_MAX_NS) p->solo_ns *= 2;
                } else {
                    p->solo_ns = SOLO_MIN_NS;
                }
                p->solo_until = t2 + p->solo_ns;
            }
        }
    }
}

/* threadpool.c - see threadpool.h. */
#include "threadpool.h"
#include "alloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>

#define SPIN_ROUNDS 20000

typedef struct worker {
    struct sm_threadpool *pool;
    int index;
    pthread_t thread;
} worker;

struct sm_threadpool {
    int n_threads;
    worker *workers;
    sm_task_fn fn;
    void *ctx;
    sm_task_hook hook;         /* read by the workers after they see the generation change */
    void *hook_user;
    atomic_uint generation;    /* bumped for every task */
    atomic_int pending;        /* workers still running the task */
    atomic_int sleepers;
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

static void *worker_main(void *arg) {
    worker *w = arg;
    sm_threadpool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->quit, memory_order_acquire)) {
            if (++spins < SPIN_ROUNDS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mutex);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->quit))
                pthread_cond_wait(&p->wake, &p->mutex);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mutex);
            spins = 0;
        }
        if (atomic_load_explicit(&p->quit, memory_order_acquire)) return NULL;
        seen = g;
        sm_task_hook hook = p->hook;
        if (hook) hook(p->hook_user, w->index, 0);
        p->fn(p->ctx, w->index, p->n_threads);
        if (hook) hook(p->hook_user, w->index, 1);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

sm_threadpool *sm_threadpool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    sm_threadpool *p = sm_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->quit, 0);
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (n_threads > 1) {
        p->workers = sm_calloc((size_t)n_threads, sizeof *p->workers);
        if (!p->workers) { sm_threadpool_free(p); return NULL; }
        for (int i = 1; i < n_threads; i++) {
            p->workers[i].pool = p;
            p->workers[i].index = i;
            if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
                p->n_threads = i;  /* free() joins the ones that started */
                sm_threadpool_free(p);
                return NULL;
            }
        }
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
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->wake);
    sm_free(p);
}

int sm_threadpool_size(const sm_threadpool *p) { return p->n_threads; }

void sm_threadpool_set_hook(sm_threadpool *p, sm_task_hook hook, void *user) {
    p->hook = hook;
    p->hook_user = user;
}

void sm_threadpool_run(sm_threadpool *p, sm_task_fn fn, void *ctx) {
    if (p->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, p->n_threads - 1, memory_order_relaxed);
    /* seq_cst: must not pass the read of sleepers below (see worker_main) */
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mutex);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }
    if (p->hook) p->hook(p->hook_user, 0, 0);
    fn(ctx, 0, p->n_threads);
    if (p->hook) p->hook(p->hook_user, 0, 1);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) cpu_relax();
}

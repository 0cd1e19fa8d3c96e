/* threadpool.h - persistent worker threads for one session. run() splits
 * a task into one share per thread, fn(ctx, i, n), and returns when all are
 * done. Worker i runs share i; a share whose worker is late (asleep, or
 * descheduled by another process) is run by the caller instead, so a busy
 * machine slows the pool down to one thread at worst, not below it; while
 * other processes' threads leave it one CPU at most, the caller runs every
 * share itself (solo) rather than be time-shared with them. Waiting
 * threads spin briefly, because the next task usually follows within
 * microseconds, then sleep. The hook (below) sees the thread that runs. */
#ifndef SM_CORE_THREADPOOL_H
#define SM_CORE_THREADPOOL_H

#include <stddef.h>

typedef void (*sm_task_fn)(void *ctx, int ith, int nth);
typedef struct sm_threadpool sm_threadpool;

/* n_threads in all, the caller counting as one; NULL on failure. */
sm_threadpool *sm_threadpool_new(int n_threads);
void sm_threadpool_free(sm_threadpool *p);
int sm_threadpool_size(const sm_threadpool *p);
void sm_threadpool_run(sm_threadpool *p, sm_task_fn fn, void *ctx);

/* An observer of the tasks (the profiler's): called on every thread of a
 * pool of more than one, the caller included, right before (end 0) and
 * after (end 1) it runs its share of a task, with its index. The caller's
 * call before (index 0) happens before the task is handed out, so what it
 * writes is seen by the workers' calls. Set it only between tasks; NULL
 * (the default) costs one branch per task. */
typedef void (*sm_task_hook)(void *user, int ith, int end);
void sm_threadpool_set_hook(sm_threadpool *p, sm_task_hook hook, void *user);

/* Whether the caller looks at the machine's load once a millisecond and
 * runs solo while other processes crowd the CPUs (1, the default); a test
 * of what a descheduled worker alone does turns it off. */
void sm_threadpool_set_looks(sm_threadpool *p, int on);

/* Share ith of nth of n items, [*i0, *i1): as even as whole multiples of
 * unit allow (a product's register tiles, a quantized block), the first
 * shares full and the last ones short or empty (*i0 == *i1). */
static inline void sm_share_size(size_t n, size_t unit, int ith, int nth, size_t *i0, size_t *i1) {
    size_t per = ((n + (size_t)nth - 1) / (size_t)nth + unit - 1) / unit * unit, a = (size_t)ith * per, b = a + per;
    *i0 = a < n ? a : n;
    *i1 = b < n ? b : n;
}

static inline void sm_share(int n, int unit, int ith, int nth, int *i0, int *i1) {
    size_t a, b;
    sm_share_size((size_t)n, (size_t)unit, ith, nth, &a, &b);
    *i0 = (int)a;
    *i1 = (int)b;
}

#endif

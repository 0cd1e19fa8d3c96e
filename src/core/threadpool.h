/* threadpool.h - persistent worker threads for one session. run() splits
 * a task into one share per thread, fn(ctx, i, n), and returns when all are
 * done. Worker i runs share i; a share whose worker is late (asleep, or
 * descheduled by another process) is run by the caller instead, so a busy
 * machine slows the pool down to one thread at worst, not below it. Waiting
 * threads spin briefly, because the next task usually follows within
 * microseconds, then sleep. The hook (below) sees the thread that runs. */
#ifndef SM_CORE_THREADPOOL_H
#define SM_CORE_THREADPOOL_H

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

#endif

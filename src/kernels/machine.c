/* machine.c - the ceilings of a roofline, measured (sm_measure_machine):
 * the FP32 FMA peak and the read bandwidth from L1, L2, L3 and memory, on
 * one core and on several threads at once. Each level is read through a
 * buffer that fits it and not the level below: half the level's size;
 * for L3 half of it but at most 16 MiB, shared between the threads on
 * several; for memory twice L3, at least 256 MiB and at most 1 GiB (the
 * samples go round it in slices, so each slice was last read a whole
 * buffer ago, beyond any cache half its size; STREAM's four times the
 * caches, applied to the 260 MiB of L3 a VM guest may report for its
 * host's socket, had the probe touch 4 GiB: seconds of page faults). The
 * reads use the widest loads this CPU has and eight independent sums, in
 * four sequential streams a quarter of the sample apart (one stream read
 * memory at 23 GB/s on a Zen 3 core where four give 26-31, as the F32
 * decode kernel's four rows a quarter apart do), so the probe is at least
 * as fast as a kernel reading the same level. Each figure is the 98th percentile of a few hundred short samples
 * (tens of microseconds): on a shared machine interference only ever
 * lowers a sample, and a short one mostly escapes it. */
#include "smallmind.h"
#include "probe.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/threadpool.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__x86_64__)
/* Eight named sums (an array indexed in a loop may live in memory at -O2,
 * and its loads and stores would be what the probe measures). */
__attribute__((target("avx512f"))) static float read_avx512(const float *p, size_t n) {
    size_t q = n / 4;   /* n is a multiple of 128 floats, so q of 32 */
    const float *p1 = p + q, *p2 = p1 + q, *p3 = p2 + q;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t i = 0; i + 32 <= q; i += 32) {
        a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
        a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_load_ps(p1 + i));
        a3 = _mm512_add_ps(a3, _mm512_load_ps(p1 + i + 16));
        a4 = _mm512_add_ps(a4, _mm512_load_ps(p2 + i));
        a5 = _mm512_add_ps(a5, _mm512_load_ps(p2 + i + 16));
        a6 = _mm512_add_ps(a6, _mm512_load_ps(p3 + i));
        a7 = _mm512_add_ps(a7, _mm512_load_ps(p3 + i + 16));
    }
    a0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                       _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    return _mm512_reduce_add_ps(a0);
}

__attribute__((target("avx2"))) static float read_avx2(const float *p, size_t n) {
    size_t q = n / 4;
    const float *p1 = p + q, *p2 = p1 + q, *p3 = p2 + q;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t i = 0; i + 16 <= q; i += 16) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_load_ps(p1 + i));
        a3 = _mm256_add_ps(a3, _mm256_load_ps(p1 + i + 8));
        a4 = _mm256_add_ps(a4, _mm256_load_ps(p2 + i));
        a5 = _mm256_add_ps(a5, _mm256_load_ps(p2 + i + 8));
        a6 = _mm256_add_ps(a6, _mm256_load_ps(p3 + i));
        a7 = _mm256_add_ps(a7, _mm256_load_ps(p3 + i + 8));
    }
    a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                       _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    float out[8];
    _mm256_storeu_ps(out, a0);
    return out[0] + out[7];
}
#endif

static float read_scalar(const float *p, size_t n) {
    size_t q = n / 4;
    float a[8] = {0};
    for (size_t i = 0; i + 2 <= q; i += 2)
        for (int j = 0; j < 4; j++) {
            a[2 * j] += p[j * q + i];
            a[2 * j + 1] += p[j * q + i + 1];
        }
    return a[0] + a[7];
}

typedef float (*read_fn)(const float *, size_t);

static read_fn best_read(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return read_avx512;
    if (__builtin_cpu_supports("avx2")) return read_avx2;
#endif
    return read_scalar;
}

/* What every thread of the pool does in one run: allocate its buffer,
 * read one sample's worth of it, run the FMA loop. */
enum { JOB_ALLOC, JOB_READ, JOB_FMA, JOB_INT8, JOB_BF16 };

typedef struct job {
    int what;
    float **buf;                 /* each thread's buffer */
    size_t alloc_bytes;          /* its size */
    size_t bytes, offset;        /* the part a sample reads (passes times), from offset */
    size_t passes;
    long iters;
    read_fn read;
    double *rate;                /* each thread's own rate in the sample (GB/s or GFLOP/s) */
    uint64_t *t0, *t1;           /* when each thread read its part of the sample */
    volatile float *sink;        /* one per thread, so the reads are not optimised away */
    int failed;                  /* an allocation failed (written by any thread: only ever set to 1) */
} job;

static void job_fn(void *ctx, int ith, int nth) {
    job *j = ctx;
    (void)nth;
    switch (j->what) {
    case JOB_ALLOC:
        if (j->buf[ith]) break;   /* thread 0's one-core buffer, the larger */
        j->buf[ith] = sm_alloc_huge(j->alloc_bytes);
        if (!j->buf[ith]) { j->failed = 1; break; }
        /* first touch by the thread that reads it */
        for (size_t i = 0; i < j->alloc_bytes / sizeof(float); i++) j->buf[ith][i] = (float)(i & 7);
        break;
    case JOB_READ: {
        float s = 0;
        const float *p = j->buf[ith] + j->offset / sizeof(float);
        uint64_t t0 = sm_now_ns();
        for (size_t r = 0; r < j->passes; r++) s += j->read(p, j->bytes / sizeof(float));
        uint64_t t1 = sm_now_ns();
        j->sink[ith] = s;
        j->rate[ith] = t1 > t0 ? (double)j->bytes * (double)j->passes / (double)(t1 - t0) : 0;
        j->t0[ith] = t0;
        j->t1[ith] = t1;
        break;
    }
    case JOB_FMA: j->rate[ith] = sm_probe_fma_gflops(j->iters); break;
    case JOB_INT8: j->rate[ith] = sm_probe_int8_gops(j->iters); break;
    case JOB_BF16: j->rate[ith] = sm_probe_bf16_gflops(j->iters); break;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define SAMPLES 240
#define QUANTILE 0.98

/* The 98th percentile of the samples: on a shared machine a sample is
 * slowed by others (and one that straddles a preemption is very slow);
 * the best ones measure the machine. */
static double quantile(double *x, int n) {
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n ? x[(int)(QUANTILE * (n - 1))] : 0;
}

/* GB/s of reading `bytes` of each thread's buffer, in samples of about
 * 2 MiB per thread: a buffer that small is read whole several times per
 * sample; a larger one a slice at a time, the slices going round it, so
 * every slice was last read a whole buffer ago. The walk starts past the
 * `skip` bytes that the level below just read from the same buffer: those
 * still sit in that level (the L3 probe's 16 MiB, read right before the
 * memory probe, made 8 of its 240 samples L3 reads, and the 98th
 * percentile took them: 51 GB/s from DRAM on a core that streams 20). On
 * several threads a
 * sample is one run of the pool. For the private levels (L1, L2) each
 * thread's own rate adds up. The shared ones (L3, memory) are shared only
 * while the threads overlap, so only samples in which every thread read at
 * the same time count (all the bytes over the span of the run); when too
 * few did (a machine busy with other work), all threads can still do what
 * one does: the one-core figure, one_core, stands in. */
static double read_rate(sm_threadpool *pool, job *j, int threads, size_t bytes, size_t skip, int shared,
                        double one_core) {
    size_t sample_bytes = (size_t)2 << 20;
    double x[SAMPLES];
    int n = 0;
    j->what = JOB_READ;
    j->bytes = bytes < sample_bytes ? bytes : sample_bytes;
    j->passes = bytes < sample_bytes ? sample_bytes / bytes : 1;
    j->offset = bytes > sample_bytes && skip < bytes - j->bytes ? (skip + 63) / 64 * 64 : 0;
    for (int k = 0; k < SAMPLES; k++) {
        if (threads == 1) job_fn(j, 0, 1);
        else sm_threadpool_run(pool, job_fn, j);
        if (bytes > sample_bytes) j->offset = (j->offset + j->bytes) % (bytes - j->bytes + 1) / 64 * 64;
        double sum = 0;
        uint64_t first = UINT64_MAX, last = 0, latest_start = 0, earliest_end = UINT64_MAX;
        for (int i = 0; i < threads; i++) {
            sum += j->rate[i];
            if (j->t0[i] < first) first = j->t0[i];
            if (j->t1[i] > last) last = j->t1[i];
            if (j->t0[i] > latest_start) latest_start = j->t0[i];
            if (j->t1[i] < earliest_end) earliest_end = j->t1[i];
        }
        if (threads == 1 || !shared) x[n++] = sum;
        else if (earliest_end > latest_start && (double)(earliest_end - latest_start) >= 0.8 * (double)(last - first))
            x[n++] = (double)j->bytes * (double)j->passes * threads / (double)(last - first);
    }
    if (n < SAMPLES / 16) return one_core;
    double q = quantile(x, n);
    return q > one_core || threads == 1 ? q : one_core;
}

/* GFLOP/s (JOB_FMA, JOB_BF16) or int8 GOP/s (JOB_INT8) of every thread at once: the
 * sum of each thread's own rate (cores do not share their vector units). */
static double fma_rate(sm_threadpool *pool, job *j, int threads, int what) {
    double x[SAMPLES / 2];
    j->what = what;
    j->iters = 20000;
    for (int k = 0; k < SAMPLES / 2; k++) {
        if (threads == 1) job_fn(j, 0, 1);
        else sm_threadpool_run(pool, job_fn, j);
        double sum = 0;
        for (int i = 0; i < threads; i++) sum += j->rate[i];
        x[k] = sum;
    }
    return quantile(x, SAMPLES / 2);
}

#define L3_PROBE_MAX ((size_t)16 << 20)

/* Buffer sizes per thread for each level, one thread [0] and all [1]. */
static void probe_sizes(const size_t c[3], int threads, size_t out[2][SM_MEM_LEVELS]) {
    size_t l1 = c[0] ? c[0] : 32u << 10, l2 = c[1] ? c[1] : 4 * l1, l3 = c[2] ? c[2] : 4 * l2;
    for (int k = 0; k < 2; k++) {
        int t = k ? threads : 1;
        out[k][SM_MEM_L1] = l1 / 2;
        out[k][SM_MEM_L2] = l2 / 2 > 2 * l1 ? l2 / 2 : (l1 + l2) / 2;
        /* a guest's share of a large L3 is smaller than the L3 it reports
         * (a VM on a many-core host sees the whole socket's: 260 MiB here,
         * where 136 MiB read at memory speed and 16 MiB at twice that) */
        size_t s3 = (l3 / 2 < L3_PROBE_MAX ? l3 / 2 : L3_PROBE_MAX) / (size_t)t;
        if (s3 < 2 * l2) s3 = l3 / (size_t)t > 2 * l2 ? 2 * l2 : (l2 + l3 / (size_t)t) / 2;
        out[k][SM_MEM_L3] = s3;
        size_t dram = 2 * l3;
        if (dram < ((size_t)256 << 20)) dram = (size_t)256 << 20;
        if (dram > ((size_t)1 << 30)) dram = (size_t)1 << 30;
        out[k][SM_MEM_DRAM] = dram / (size_t)t;
        for (int l = 0; l < SM_MEM_LEVELS; l++) out[k][l] &= ~(size_t)511;   /* whole rounds of the read loops */
    }
}

sm_status sm_measure_machine(int threads, sm_machine *m, sm_error *err) {
    if (!m) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_measure_machine: out is NULL");
    memset(m, 0, sizeof *m);
    if (threads <= 0) threads = sm_cpu_physical_cores();
    if (threads > 1024) return sm_fail(err, SM_ERR_INVALID_ARG, "thread count %d is out of range (1 to 1024)", threads);
    uint64_t t_start = sm_now_ns();
    m->threads = threads;
    m->cache_source = sm_cpu_cache_sizes(m->cache_bytes);
    probe_sizes(m->cache_bytes, threads, m->probe_bytes);
    /* One core first, before the pool's threads exist: a waiting worker
     * (spinning, or on a hyper-thread sibling) slows the core measured. */
    float **buf = sm_calloc((size_t)threads, sizeof *buf);
    double *rate = sm_calloc((size_t)threads, sizeof *rate);
    uint64_t *times = sm_calloc(2 * (size_t)threads, sizeof *times);
    volatile float *sink = sm_calloc((size_t)threads, sizeof(float));
    job j = {JOB_ALLOC, buf, m->probe_bytes[0][SM_MEM_DRAM], 0, 0, 0, 0, best_read(), rate, times,
             times ? times + threads : NULL, sink, 0};
    sm_threadpool *pool = NULL;
    sm_status st = SM_OK;
    if (!buf || !rate || !times || !sink) goto nomem;
    job_fn(&j, 0, 1);
    if (j.failed) goto nomem;
    for (int l = 0; l < SM_MEM_LEVELS; l++)
        m->read_gbps[0][l] = read_rate(NULL, &j, 1, m->probe_bytes[0][l], l ? m->probe_bytes[0][l - 1] : 0, 0, 0);
    m->peak_gflops[0] = fma_rate(NULL, &j, 1, JOB_FMA);
    m->peak_int8_gops[0] = sm_probe_int8_gops(1000) > 0 ? fma_rate(NULL, &j, 1, JOB_INT8) : 0;
    m->peak_bf16_gflops[0] = sm_probe_bf16_gflops(1000) > 0 ? fma_rate(NULL, &j, 1, JOB_BF16) : 0;
    if (threads > 1) {
        /* thread 0 keeps its buffer (the one-thread sizes are the larger) */
        j.what = JOB_ALLOC;
        j.alloc_bytes = m->probe_bytes[1][SM_MEM_DRAM];
        if (!(pool = sm_threadpool_new(threads))) goto nomem;
        sm_threadpool_run(pool, job_fn, &j);
        if (j.failed) goto nomem;
        for (int l = 0; l < SM_MEM_LEVELS; l++)
            m->read_gbps[1][l] = read_rate(pool, &j, threads, m->probe_bytes[1][l], l ? m->probe_bytes[1][l - 1] : 0,
                                           l >= SM_MEM_L3, m->read_gbps[0][l]);
        m->peak_gflops[1] = fma_rate(pool, &j, threads, JOB_FMA);
        m->peak_int8_gops[1] = m->peak_int8_gops[0] > 0 ? fma_rate(pool, &j, threads, JOB_INT8) : 0;
        m->peak_bf16_gflops[1] = m->peak_bf16_gflops[0] > 0 ? fma_rate(pool, &j, threads, JOB_BF16) : 0;
    } else {
        for (int l = 0; l < SM_MEM_LEVELS; l++) m->read_gbps[1][l] = m->read_gbps[0][l];
        m->peak_gflops[1] = m->peak_gflops[0];
        m->peak_int8_gops[1] = m->peak_int8_gops[0];
        m->peak_bf16_gflops[1] = m->peak_bf16_gflops[0];
    }
    goto done;
nomem:
    st = sm_fail(err, SM_ERR_NOMEM, "out of memory for the machine's measurement (%zu MiB of buffers)",
                 (m->probe_bytes[0][SM_MEM_DRAM] + m->probe_bytes[1][SM_MEM_DRAM] * (size_t)(threads - 1)) >> 20);
done:
    if (buf)
        for (int i = 0; i < threads; i++) sm_free(buf[i]);
    sm_threadpool_free(pool);
    sm_free(buf);
    sm_free(rate);
    sm_free(times);
    sm_free((void *)sink);
    if (st != SM_OK) return st;
    m->seconds = (double)(sm_now_ns() - t_start) * 1e-9;
    return SM_OK;
}

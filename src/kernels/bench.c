/* bench.c - measurements of the machine and of the kernels, for the
 * profiler's report: peak FMA throughput, read bandwidth from cache and
 * from memory, and GFLOP/s or GB/s of each kernel at typical sizes. */
#include "kernels.h"
#include "smallmind.h"
#include "dispatch.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "probe.h"

#include <stdio.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static volatile float sink;

const char *sm_cpu_simd_features(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return __builtin_cpu_supports("avx512vnni") ? "avx512f avx512vnni avx2 fma" : "avx512f avx2 fma";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2 fma";
    if (__builtin_cpu_supports("avx")) return "avx";
    return "sse2";
#elif defined(__aarch64__)
    return "neon";
#else
    return "none";
#endif
}

const char *sm_kernel_level(void) { return sm_kernels_get(NULL)->name; }

const char *sm_kernels_list(void) {
    const sm_kernel_table *all[8];
    int n = sm_kernels_available(all, 8);
    /* the variants come in a fixed order, so the lists are constants */
#if defined(__aarch64__)
    return n > 1 ? "scalar neon" : "scalar";
#else
    switch (n) {
    case 1: return "scalar";
    case 2: return "scalar avx2";
    default: return "scalar avx2 avx512";
    }
#endif
}

#if defined(__x86_64__)
/* Twelve independent chains cover the FMA latency on two ports. */
__attribute__((target("avx512f"))) static double fma_avx512(long iters) {
    __m512 a[12], b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(0.001f);
    for (int j = 0; j < 12; j++) a[j] = _mm512_set1_ps((float)j);
    uint64_t t0 = sm_now_ns();
    for (long i = 0; i < iters; i++) {
#define F(j) a[j] = _mm512_fmadd_ps(a[j], b, c);
        F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11)
#undef F
    }
    double s = (double)(sm_now_ns() - t0) * 1e-9;
    __m512 acc = a[0];
    for (int j = 1; j < 12; j++) acc = _mm512_add_ps(acc, a[j]);
    sink = _mm512_reduce_add_ps(acc);
    return (double)iters * 12 * 16 * 2 / s * 1e-9;
}

/* Twelve independent chains of VNNI dot products: each instruction does
 * 64 multiply-adds of unsigned by signed bytes into int32 (128 ops). */
__attribute__((target("avx512f,avx512vnni"))) static double vnni_avx512(long iters) {
    __m512i a[12], b = _mm512_set1_epi8(3), c = _mm512_set1_epi8(-5);
    for (int j = 0; j < 12; j++) a[j] = _mm512_set1_epi32(j);
    uint64_t t0 = sm_now_ns();
    for (long i = 0; i < iters; i++) {
#define F(j) a[j] = _mm512_dpbusd_epi32(a[j], b, c);
        F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11)
#undef F
        __asm__ volatile("" : "+v"(b), "+v"(c));   /* operands unknown: the loop is not folded */
    }
    double s = (double)(sm_now_ns() - t0) * 1e-9;
    __m512i acc = a[0];
    for (int j = 1; j < 12; j++) acc = _mm512_add_epi32(acc, a[j]);
    sink = (float)_mm512_reduce_add_epi32(acc);
    return (double)iters * 12 * 64 * 2 / s * 1e-9;
}

/* Twelve independent chains of BF16 dot products: each instruction does
 * 32 multiply-adds of BF16 pairs into FP32 (64 FLOPs). */
__attribute__((target("avx512f,avx512bf16"))) static double bf16_avx512(long iters) {
    __m512 a[12];
    __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80), c = (__m512bh)_mm512_set1_epi16(0x3a83);   /* 1, 0.001 */
    for (int j = 0; j < 12; j++) a[j] = _mm512_set1_ps((float)j);
    uint64_t t0 = sm_now_ns();
    for (long i = 0; i < iters; i++) {
#define F(j) a[j] = _mm512_dpbf16_ps(a[j], b, c);
        F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11)
#undef F
        __asm__ volatile("" : "+v"(b), "+v"(c));   /* operands unknown: the loop is not folded */
    }
    double s = (double)(sm_now_ns() - t0) * 1e-9;
    __m512 acc = a[0];
    for (int j = 1; j < 12; j++) acc = _mm512_add_ps(acc, a[j]);
    sink = _mm512_reduce_add_ps(acc);
    return (double)iters * 12 * 32 * 2 / s * 1e-9;
}

__attribute__((target("avx2,fma"))) static double fma_avx2(long iters) {
    __m256 a[12], b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(0.001f);
    for (int j = 0; j < 12; j++) a[j] = _mm256_set1_ps((float)j);
    uint64_t t0 = sm_now_ns();
    for (long i = 0; i < iters; i++) {
#define F(j) a[j] = _mm256_fmadd_ps(a[j], b, c);
        F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11)
#undef F
    }
    double s = (double)(sm_now_ns() - t0) * 1e-9;
    float out[8];
    __m256 acc = a[0];
    for (int j = 1; j < 12; j++) acc = _mm256_add_ps(acc, a[j]);
    _mm256_storeu_ps(out, acc);
    sink = out[0];
    return (double)iters * 12 * 8 * 2 / s * 1e-9;
}

__attribute__((target("avx2"))) static float read_avx2(const float *p, size_t n) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (size_t i = 0; i + 32 <= n; i += 32)
        for (int j = 0; j < 4; j++) acc[j] = _mm256_add_ps(acc[j], _mm256_loadu_ps(p + i + 8 * j));
    float out[8];
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    return out[0];
}
#endif

static double fma_scalar(long iters) {
    float a[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    uint64_t t0 = sm_now_ns();
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 8; j++) a[j] = a[j] * 0.999f + 0.001f;
    double s = (double)(sm_now_ns() - t0) * 1e-9;
    sink = a[0] + a[7];
    return (double)iters * 8 * 2 / s * 1e-9;
}

static float read_scalar(const float *p, size_t n) {
    float acc[8] = {0};
    for (size_t i = 0; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += p[i + j];
    return acc[0];
}

double sm_probe_fma_gflops(long iters) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return fma_avx512(iters);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return fma_avx2(iters);
#endif
    return fma_scalar(iters / 4);
}

double sm_probe_int8_gops(long iters) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni")) return vnni_avx512(iters);
#endif
    (void)iters;
    return 0.0;
}

double sm_probe_bf16_gflops(long iters) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16")) return bf16_avx512(iters);
#endif
    (void)iters;
    return 0.0;
}

double sm_measure_peak_gflops(void) { return sm_probe_fma_gflops(20000000); }

double sm_measure_read_gbps(size_t bytes) {
    size_t n = bytes / sizeof(float);
    float *p = sm_alloc_huge(n * sizeof(float));
    if (!p) return 0.0;
    for (size_t i = 0; i < n; i++) p[i] = (float)(i & 7);
    size_t reps = (512u << 20) / bytes + 1;
    double best = 0.0;
    for (int trial = 0; trial < 3; trial++) {
        uint64_t t0 = sm_now_ns();
        float s = 0;
        for (size_t r = 0; r < reps; r++) {
#if defined(__x86_64__)
            if (__builtin_cpu_supports("avx2")) s += read_avx2(p, n);
            else s += read_scalar(p, n);
#else
            s += read_scalar(p, n);
#endif
        }
        sink = s;
        double gbps = (double)reps * (double)bytes / ((double)(sm_now_ns() - t0) * 1e-9) * 1e-9;
        if (gbps > best) best = gbps;
    }
    sm_free(p);
    return best;
}

/* Best of a few timed repetitions, in seconds per call. */
#define TIME_BEST(seconds, reps, stmt)                                              \
    do {                                                                            \
        seconds = 1e30;                                                             \
        for (int trial_ = 0; trial_ < 5; trial_++) {                                \
            uint64_t t0_ = sm_now_ns();                                             \
            for (int r_ = 0; r_ < (reps); r_++) { stmt; }                           \
            double s_ = (double)(sm_now_ns() - t0_) * 1e-9 / (reps);                \
            if (s_ < seconds) seconds = s_;                                         \
        }                                                                           \
    } while (0)

/* The kernels the model runs at this CPU's level (SM_KERNELS or the best):
 * the batch product a prompt takes (the packed gemm where the level has
 * it), the F32 matvec of the type table, and the table's softmax, GELU,
 * SwiGLU and norms. */
int sm_kernel_benchmarks(sm_kernel_result *out, int cap) {
    const sm_kernel_table *kt = sm_kernels_get(NULL);
    if (!kt) return 0;
    sm_type_kernels f32;
    sm_kernels_for_type(kt, SM_GGML_F32, &f32);
    int n = 0;
    size_t big = 512 * 512, packed = big + 16 * 512;   /* 512 tokens in panels of at most 16, 512 columns */
    float *a = sm_alloc_aligned(big * 4), *b = sm_alloc_aligned(big * 4), *c = sm_alloc_aligned(big * 4);
    float *w = sm_alloc_aligned(4096 * 4), *pk = sm_alloc_aligned(packed * 4);
    if (!a || !b || !c || !w || !pk) {
        sm_free(a); sm_free(b); sm_free(c); sm_free(w); sm_free(pk);
        return 0;
    }
    for (size_t i = 0; i < big; i++) { a[i] = (float)(i % 13) * 0.01f; b[i] = (float)(i % 7) * 0.02f; }
    for (int i = 0; i < 4096; i++) w[i] = 1.0f + (float)(i % 5) * 0.01f;
    const int sizes[3] = {128, 256, 512};
    for (int k = 0; k < 3 && n < cap; k++) {
        int d = sizes[k];
        double s;
        if (kt->gemm) {
            int panels = (d + kt->gemm_mr - 1) / kt->gemm_mr;
            TIME_BEST(s, 2, kt->gemm_pack(pk, a, (size_t)d, 1, d, d, 0, panels); kt->gemm(c, d, pk, d, b, (size_t)d, 1, d, d, 0));
        } else {
            TIME_BEST(s, 2, kt->matmul_f32(c, a, b, d, d, d, d));
        }
        snprintf(out[n].name, sizeof out[n].name, "matmul %dx%dx%d", d, d, d);
        snprintf(out[n].level, sizeof out[n].level, "%s", kt->name);
        out[n].value = 2.0 * d * d * d / s * 1e-9;
        out[n].unit = "GFLOP/s";
        n++;
    }
    for (int k = 0; k < 3 && n < cap; k++) {
        int d = sizes[k];
        double s;
        TIME_BEST(s, 20, f32.matvec(c, a, b, d, d));
        snprintf(out[n].name, sizeof out[n].name, "matvec %dx%d", d, d);
        snprintf(out[n].level, sizeof out[n].level, "%s", kt->name);
        out[n].value = 2.0 * d * d / s * 1e-9;
        out[n].unit = "GFLOP/s";
        n++;
    }
    struct { const char *name; int which; } vec[] = {{"softmax 4096", 0}, {"GELU 4096", 1}, {"SiLU (SwiGLU) 4096", 2},
                                                     {"LayerNorm 4096", 3}, {"RMSNorm 4096", 4}};
    float mean, rstd;
    for (size_t k = 0; k < sizeof vec / sizeof vec[0] && n < cap; k++) {
        double s;
        switch (vec[k].which) {
        case 0: TIME_BEST(s, 200, memcpy(c, a, 4096 * 4); kt->softmax(c, 4096)); break;
        case 1: TIME_BEST(s, 200, memcpy(c, a, 4096 * 4); kt->gelu(c, 4096)); break;
        case 2: TIME_BEST(s, 200, kt->swiglu(c, a, b, 4096)); break;
        case 3: TIME_BEST(s, 200, kt->norm_fwd(c, &mean, &rstd, a, w, b, 4096, 1e-5f, 1)); break;
        default: TIME_BEST(s, 200, kt->norm_fwd(c, &mean, &rstd, a, w, NULL, 4096, 1e-5f, 0)); break;
        }
        snprintf(out[n].name, sizeof out[n].name, "%s", vec[k].name);
        snprintf(out[n].level, sizeof out[n].level, "%s", kt->name);
        out[n].value = 2.0 * 4096 * 4 / s * 1e-9;  /* read and write once */
        out[n].unit = "GB/s";
        n++;
    }
    sm_free(a); sm_free(b); sm_free(c); sm_free(w); sm_free(pk);
    return n;
}

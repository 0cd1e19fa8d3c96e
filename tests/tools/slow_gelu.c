/* slow_gelu.c - a test-only link-time wrapper that makes one kernel, the
 * GELU activation, 20 % slower, so tests/profile_tools_test.sh can check
 * that `smallmind profile --compare` names "FFN activation" as slower.
 * It is linked into a second smallmind binary (build/smallmind_slow_gelu,
 * see the Makefile) with -Wl,--wrap for every GELU variant the kernel
 * tables point at; the library itself has no test hook. Each call runs the
 * real kernel, then spins for a fifth of the time it took (timed with the
 * time-stamp counter on x86-64, cheap next to a call of microseconds; the
 * monotonic clock elsewhere). */
#include <stdint.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
static uint64_t now(void) { return __rdtsc(); }
#else
static uint64_t now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
#endif

void __real_sm_gelu(float *x, int n);
void __wrap_sm_gelu(float *x, int n);

static void spin_after(uint64_t t0) {
    uint64_t t1 = now(), until = t1 + (t1 - t0) / 5;
    while (now() < until) {}
}

void __wrap_sm_gelu(float *x, int n) {
    uint64_t t0 = now();
    __real_sm_gelu(x, n);
    spin_after(t0);
}

#if defined(__x86_64__)
void __real_sm_gelu_avx2(float *x, int n);
void __real_sm_gelu_avx512(float *x, int n);
void __wrap_sm_gelu_avx2(float *x, int n);
void __wrap_sm_gelu_avx512(float *x, int n);

void __wrap_sm_gelu_avx2(float *x, int n) {
    uint64_t t0 = now();
    __real_sm_gelu_avx2(x, n);
    spin_after(t0);
}

void __wrap_sm_gelu_avx512(float *x, int n) {
    uint64_t t0 = now();
    __real_sm_gelu_avx512(x, n);
    spin_after(t0);
}
#endif

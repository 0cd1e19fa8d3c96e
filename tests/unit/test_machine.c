/* test_machine.c - the profiler's measurement of this machine
 * (sm_measure_machine): its memory ceiling is a rate at which memory can
 * be read, not that of a cache. Bug it guards: the memory probe began
 * where the L3 probe had just read, and its 98th percentile took those
 * L3-speed samples (51 GB/s "from DRAM" on a core that streams 20). */
#include "test.h"
#include "smallmind.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* The reference read: libc's memchr for a byte the buffer lacks reads it
 * front to back at memory speed in any build (a loop of our own, built
 * with the sanitizers at -O1, read 3.6 GB/s). */
static size_t read_all(const unsigned char *p, size_t n) {
    const unsigned char *hit = memchr(p, 0xFF, n);
    return hit ? (size_t)(hit - p) : n;
}

/* The best of three whole reads of bytes, GB/s (interference only slows one). */
static double whole_read_gbps(size_t bytes) {
    unsigned char *buf = malloc(bytes);
    if (!buf) return 0;
    for (size_t i = 0; i < bytes; i++) buf[i] = (unsigned char)(i & 0x7F);
    double best = 0;
    volatile size_t sink = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = seconds();
        sink += read_all(buf, bytes);
        double gbps = (double)bytes / (seconds() - t0) * 1e-9;
        if (gbps > best) best = gbps;
    }
    free(buf);
    (void)sink;
    return best;
}

/* On a shared VM one measurement can catch the probe in a quiet moment and
 * the whole reads in a loud one (a probe of 37.5 GB/s against reads of 18.2,
 * seen once): a failing comparison is measured again, up to three times.
 * The bug this guards gives its cache-speed figure every time. */
TEST(machine_memory_ceiling_is_read_from_memory) {
    double dram = 0, l3 = 0, best = 0;
    size_t bytes = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        sm_machine m;
        REQUIRE(sm_measure_machine(1, &m, NULL) == SM_OK);
        bytes = m.probe_bytes[0][SM_MEM_DRAM];
        CHECKF(bytes >= 2 * m.cache_bytes[2], "the memory probe reads %zu MiB, not twice the L3", bytes >> 20);
        best = whole_read_gbps(bytes);
        REQUIRE(best > 0);
        dram = m.read_gbps[0][SM_MEM_DRAM], l3 = m.read_gbps[0][SM_MEM_L3];
        printf("     (memory: the probe %.1f GB/s, a whole read %.1f GB/s; L3 %.1f GB/s)\n", dram, best, l3);
        if (dram <= 2.0 * best && dram <= 1.05 * l3) break;
    }
    CHECKF(dram <= 2.0 * best, "the probe's memory ceiling %.1f GB/s is more than twice a whole read of %zu MiB "
           "(%.1f GB/s): it measured a cache", dram, bytes >> 20, best);
    CHECKF(dram <= 1.05 * l3, "memory (%.1f GB/s) faster than L3 (%.1f GB/s)", dram, l3);
}

/* clock.h - monotonic time for statistics. */
#ifndef SM_CORE_CLOCK_H
#define SM_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t sm_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif

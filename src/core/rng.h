/* rng.h - the seeded generator behind model initialisation: splitmix64,
 * and standard normals by Box-Muller. */
#ifndef SM_CORE_RNG_H
#define SM_CORE_RNG_H

#include <math.h>
#include <stdint.h>

static inline uint64_t sm_rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline float sm_rng_normal(uint64_t *s) {
    double u1 = ((sm_rng_next(s) >> 11) + 1.0) / 9007199254740993.0, u2 = (sm_rng_next(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

#endif

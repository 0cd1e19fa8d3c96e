/* hash.h - 64-bit hashes for identities and checksums (not cryptographic):
 * FNV-1a over bytes, and a streaming hash that takes its input 8 bytes at a
 * time (FNV-1a's step on 64-bit words, with a final mix), fast enough for
 * the checksum of a saved KV cache of hundreds of megabytes. */
#ifndef SM_CORE_HASH_H
#define SM_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SM_FNV_OFFSET 0xcbf29ce484222325ull
#define SM_FNV_PRIME 0x100000001b3ull

static inline uint64_t sm_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * SM_FNV_PRIME;
    return h;
}

/* The streaming hash: feed any number of pieces of any length; the result
 * depends only on the bytes and their order. */
typedef struct sm_hasher {
    uint64_t h, total;
    unsigned char carry[8];
    unsigned n_carry;
} sm_hasher;

static inline void sm_hasher_init(sm_hasher *s) {
    s->h = SM_FNV_OFFSET;
    s->total = 0;
    s->n_carry = 0;
}

static inline void sm_hasher_word(sm_hasher *s, uint64_t w) {
    s->h = (s->h ^ w) * SM_FNV_PRIME;
    s->h ^= s->h >> 31;
}

static inline void sm_hasher_add(sm_hasher *s, const void *data, size_t n) {
    const unsigned char *p = data;
    s->total += n;
    while (n > 0 && s->n_carry > 0 && s->n_carry < 8) {
        s->carry[s->n_carry++] = *p++;
        n--;
        if (s->n_carry == 8) {
            uint64_t w;
            memcpy(&w, s->carry, 8);
            sm_hasher_word(s, w);
            s->n_carry = 0;
        }
    }
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        sm_hasher_word(s, w);
    }
    memcpy(s->carry + s->n_carry, p, n);
    s->n_carry += (unsigned)n;
}

static inline uint64_t sm_hasher_end(const sm_hasher *s) {
    uint64_t h = s->h;
    for (unsigned i = 0; i < s->n_carry; i++) h = (h ^ s->carry[i]) * SM_FNV_PRIME;
    h ^= s->total;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

#endif

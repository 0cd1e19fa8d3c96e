/* alloc.c - thin wrappers over libc's allocator (see alloc.h). */
#include "alloc.h"

#include <stdlib.h>

/* Statistics only: nothing the library does depends on them. */
static _Thread_local uint64_t n_allocs, n_bytes;

void sm_alloc_counters(uint64_t *count, uint64_t *bytes) {
    *count = n_allocs;
    *bytes = n_bytes;
}

void *sm_alloc(size_t bytes) {
    n_allocs++;
    n_bytes += bytes;
    return malloc(bytes ? bytes : 1);
}

void *sm_calloc(size_t count, size_t size) {
    n_allocs++;
    n_bytes += count * size;
    return calloc(count ? count : 1, size ? size : 1);
}

void *sm_alloc_aligned(size_t bytes) {
    void *p = NULL;
    n_allocs++;
    n_bytes += bytes;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    return p;
}

void sm_free(void *p) { free(p); }

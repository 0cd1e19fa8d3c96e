/* alloc.c - thin wrappers over libc's allocator (see alloc.h). */
#include "alloc.h"

#include <stdlib.h>

void *sm_alloc(size_t bytes) { return malloc(bytes ? bytes : 1); }

void *sm_calloc(size_t count, size_t size) {
    return calloc(count ? count : 1, size ? size : 1);
}

void *sm_alloc_aligned(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    return p;
}

void sm_free(void *p) { free(p); }

/* alloc.c - thin wrappers over libc's allocator (see alloc.h). */
#define _GNU_SOURCE
#include "alloc.h"

#include <stdlib.h>
#include <sys/mman.h>

/* Statistics only: nothing the library does depends on them. */
_Thread_local uint64_t sm_alloc_count_tls, sm_alloc_bytes_tls;
#define n_allocs sm_alloc_count_tls
#define n_bytes sm_alloc_bytes_tls

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

void *sm_alloc_huge(size_t bytes) {
#ifdef MADV_HUGEPAGE
    const size_t huge = (size_t)2 << 20;
    if (bytes >= huge) {
        void *p = NULL;
        n_allocs++;
        n_bytes += bytes;
        if (posix_memalign(&p, huge, bytes) != 0) return NULL;
        /* whole 4 KiB pages of the block only; an advice refused (a kernel
         * without transparent huge pages) leaves ordinary pages */
        (void)madvise(p, bytes & ~(size_t)4095, MADV_HUGEPAGE);
        return p;
    }
#endif
    return sm_alloc_aligned(bytes);
}

void sm_free(void *p) { free(p); }

/* alloc.h - the one allocator interface every library allocation goes
 * through, so that memory can be accounted for in one place. */
#ifndef SM_CORE_ALLOC_H
#define SM_CORE_ALLOC_H

#include <stddef.h>

void *sm_alloc(size_t bytes);
void *sm_calloc(size_t count, size_t size);
/* 64-byte aligned: cache lines and the widest SIMD registers. */
void *sm_alloc_aligned(size_t bytes);
void sm_free(void *p);

#endif

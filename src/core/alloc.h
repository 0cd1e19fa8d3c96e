/* alloc.h - the one allocator interface every library allocation goes
 * through, so that memory can be accounted for in one place. */
#ifndef SM_CORE_ALLOC_H
#define SM_CORE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *sm_alloc(size_t bytes);
void *sm_calloc(size_t count, size_t size);
/* 64-byte aligned: cache lines and the widest SIMD registers. */
void *sm_alloc_aligned(size_t bytes);
/* For a block a thread streams through and fills whole (weights, the
 * trainer's buffers, the bandwidth probe): from 2 MiB up it starts on a
 * 2 MiB boundary and is advised to the kernel as huge-page memory (madvise
 * MADV_HUGEPAGE, which Debian's default "madvise" setting of transparent
 * huge pages honours). Reading a stream through 4 KiB pages was ~25 %
 * slower on the hosts measured (docs/BENCHMARKS.md, "huge pages"). Not for
 * memory used a little at a time (a session's KV cache): each touched
 * 2 MiB page is resident whole. Smaller blocks, and systems without the
 * advice, get sm_alloc_aligned's. Freed with sm_free. */
void *sm_alloc_huge(size_t bytes);
void sm_free(void *p);

/* How many allocations, and how many bytes, this thread has made through
 * this interface. The profiler charges the differences to its scopes; the
 * counters are per thread, so sessions on other threads do not disturb
 * each other's accounts. */
extern _Thread_local uint64_t sm_alloc_count_tls, sm_alloc_bytes_tls;
static inline void sm_alloc_counters(uint64_t *count, uint64_t *bytes) {
    *count = sm_alloc_count_tls;
    *bytes = sm_alloc_bytes_tls;
}

#endif

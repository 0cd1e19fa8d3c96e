/* arena.c - see arena.h. */
#include "arena.h"

#include <stdint.h>

void *sm_arena_take(sm_arena *a, size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) { a->overflow = 1; return NULL; }
    size_t bytes = count * size;
    size_t start = (a->used + 63) & ~(size_t)63;
    if (start < a->used || bytes > SIZE_MAX - start - 64) { a->overflow = 1; return NULL; }
    a->used = start + bytes;
    if (!a->base) return NULL;
    if (a->used > a->capacity) { a->overflow = 1; return NULL; }
    return a->base + start;
}

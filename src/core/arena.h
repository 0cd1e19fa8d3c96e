/* arena.h - one block of memory carved into buffers at session creation.
 *
 * A layout function runs twice over an arena: first with no memory
 * (base == NULL) to measure, then over the real block to hand out pointers.
 * The same code computes both, so the plan and the use cannot disagree. */
#ifndef SM_CORE_ARENA_H
#define SM_CORE_ARENA_H

#include <stddef.h>

typedef struct sm_arena {
    char *base;      /* NULL while measuring */
    size_t used;
    size_t capacity;
    int overflow;    /* size arithmetic overflowed while measuring */
} sm_arena;

/* Returns a 64-byte aligned region of `count * size` bytes (NULL while
 * measuring). */
void *sm_arena_take(sm_arena *a, size_t count, size_t size);

#endif

/* test_mapfile.c - the huge-page blocks the weights' copies, the sessions'
 * arenas and the trainer's buffers live in (core/alloc.c). */
#define _GNU_SOURCE
#include "test.h"
#include "core/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The VmFlags line of the mapping that holds p, from /proc/self/smaps;
 * "" when it cannot be read. */
static void vm_flags_of(const void *p, char *out, size_t cap) {
    out[0] = '\0';
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return;
    char line[512];
    int inside = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        else if (inside && !strncmp(line, "VmFlags:", 8)) {
            snprintf(out, cap, "%.200s", line + 8);
            break;
        }
    }
    fclose(f);
}

/* A block of 2 MiB or more starts on a 2 MiB boundary and carries the
 * kernel's huge-page advice ("hg" in its VmFlags); a small one is the
 * plain 64-byte aligned kind. */
TEST(huge_alloc_is_aligned_and_advised) {
#ifndef MADV_HUGEPAGE
    SKIP("this system has no MADV_HUGEPAGE");
#else
    size_t big = (size_t)6 << 20;
    unsigned char *p = sm_alloc_huge(big + 100);
    REQUIRE(p);
    CHECK((uintptr_t)p % ((size_t)2 << 20) == 0);
    memset(p, 1, big + 100);
    char flags[256];
    vm_flags_of(p + big / 2, flags, sizeof flags);
    if (!flags[0]) { sm_free(p); SKIP("/proc/self/smaps is not readable"); }
    CHECKF(strstr(flags, " hg") != NULL, "VmFlags:%s", flags);
    sm_free(p);
    unsigned char *small = sm_alloc_huge(1000);
    REQUIRE(small);
    CHECK((uintptr_t)small % 64 == 0);
    sm_free(small);
#endif
}

/* test_mapfile.c - whole files mapped or read (core/mapfile.c), and the
 * huge-page blocks they and the weights' copies live in (core/alloc.c). */
#define _GNU_SOURCE
#include "test.h"
#include "core/alloc.h"
#include "core/mapfile.h"

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

/* sm_read_file gives the file's bytes, in a block freed by sm_unmap_file;
 * it refuses what sm_map_file refuses, with the same messages */
TEST(read_file_matches_map_and_refuses_the_same) {
    char dir[] = "/tmp/sm-mapfile-XXXXXX";
    REQUIRE(mkdtemp(dir));
    char path[256], fifo[256], empty[256];
    snprintf(path, sizeof path, "%s/data", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(empty, sizeof empty, "%s/empty", dir);
    size_t n = ((size_t)3 << 20) + 12345;   /* a huge-page block and a tail */
    unsigned char *want = malloc(n);
    REQUIRE(want);
    for (size_t i = 0; i < n; i++) want[i] = (unsigned char)(i * 2654435761u >> 24);
    FILE *f = fopen(path, "wb");
    REQUIRE(f && fwrite(want, 1, n, f) == n && fclose(f) == 0);
    f = fopen(empty, "wb");
    REQUIRE(f && fclose(f) == 0);
    REQUIRE(mkfifo(fifo, 0600) == 0);

    sm_mapped_file a, b;
    sm_error err = {0};
    REQUIRE(sm_map_file(path, &a, &err) == SM_OK && sm_read_file(path, &b, &err) == SM_OK);
    CHECK(!a.copied && b.copied && a.size == n && b.size == n);
    CHECK(memcmp(a.data, want, n) == 0 && memcmp(b.data, want, n) == 0);
    sm_unmap_file(&a);
    sm_unmap_file(&b);
    CHECK(b.data == NULL && b.size == 0);

    const char *bad[3] = {dir, fifo, empty}, *says[3] = {"is a directory", "not a regular file", "is empty"};
    for (int i = 0; i < 3; i++) {
        sm_error e1 = {0}, e2 = {0};
        sm_status s1 = sm_map_file(bad[i], &a, &e1), s2 = sm_read_file(bad[i], &b, &e2);
        CHECKF(s1 != SM_OK && s1 == s2 && strstr(e1.message, says[i]) && !strcmp(e1.message, e2.message),
               "%s: '%s' / '%s'", bad[i], e1.message, e2.message);
        CHECK(b.data == NULL);
    }
    sm_error e = {0};
    CHECK(sm_read_file("/nonexistent/model.gguf", &b, &e) == SM_ERR_IO && strstr(e.message, "cannot open"));
    free(want);
    unlink(path);
    unlink(fifo);
    unlink(empty);
    rmdir(dir);
}

/* test.h - a tiny test framework: TEST() registers a function, CHECK()
 * records a failure and goes on, SKIP() ends a test as skipped. The runner
 * prints one line per test and a closing "N passed, N failed, N skipped". */
#ifndef SM_TEST_H
#define SM_TEST_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "smallmind.h"

void test_register(const char *name, void (*fn)(void));
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void test_skip(const char *why);
int test_failed_now(void);

#define TEST(name)                                                              \
    static void name(void);                                                     \
    __attribute__((constructor)) static void register_##name(void) {            \
        test_register(#name, name);                                             \
    }                                                                           \
    static void name(void)

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) test_fail(__FILE__, __LINE__, "%s", #cond);                \
    } while (0)
#define CHECKF(cond, ...)                                                       \
    do {                                                                        \
        if (!(cond)) test_fail(__FILE__, __LINE__, __VA_ARGS__);                \
    } while (0)
/* Stops the test on failure: for preconditions later checks rely on. */
#define REQUIRE(cond)                                                           \
    do {                                                                        \
        if (!(cond)) { test_fail(__FILE__, __LINE__, "%s", #cond); return; }    \
    } while (0)
#define SKIP(why) do { test_skip(why); return; } while (0)

/* Path of a fixture under ../shared (or $SM_SHARED); NULL when absent. */
const char *shared_path(const char *rel);
#define NEED_SHARED(var, rel)                                                   \
    const char *var = shared_path(rel);                                         \
    if (!var) SKIP("../shared/" rel " is absent")

/* Reads a whole file; NULL if it cannot. Free with free(). */
char *read_file(const char *path, size_t *len);

/* A copy of the GGUF file src whose tokenizer.ggml.pre is pre (NULL: the
 * key left out, so that the file names no pre-tokenizer), in a new
 * temporary file. Returns its path (unlink it, free() the path), or NULL. */
char *vocab_with_pre(const char *src, const char *pre);

/* Allocation calls the library and tests have made so far (malloc, calloc,
 * realloc, free, posix_memalign, aligned_alloc), counted by link-time
 * wrapping. */
unsigned long alloc_calls(void);

#endif

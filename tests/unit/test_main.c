/* test_main.c - the unit-test runner and its helpers. */
#define _GNU_SOURCE
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>

/* ---- allocation counting (see the --wrap flags in the Makefile) ---- */
static unsigned long n_alloc_calls;
void *__real_malloc(size_t);
void *__real_calloc(size_t, size_t);
void *__real_realloc(void *, size_t);
void __real_free(void *);
int __real_posix_memalign(void **, size_t, size_t);
void *__real_aligned_alloc(size_t, size_t);
void *__wrap_malloc(size_t n) { __atomic_add_fetch(&n_alloc_calls, 1, __ATOMIC_RELAXED); return __real_malloc(n); }
void *__wrap_calloc(size_t a, size_t b) { __atomic_add_fetch(&n_alloc_calls, 1, __ATOMIC_RELAXED); return __real_calloc(a, b); }
void *__wrap_realloc(void *p, size_t n) { __atomic_add_fetch(&n_alloc_calls, 1, __ATOMIC_RELAXED); return __real_realloc(p, n); }
void __wrap_free(void *p) { if (p) __atomic_add_fetch(&n_alloc_calls, 1, __ATOMIC_RELAXED); __real_free(p); }
int __wrap_posix_memalign(void **p, size_t a, size_t n) { __atomic_add_fetch(&n_alloc_calls, 1, __ATOMIC_RELAXED); return __real_posix_memalign(p, a, n); }
void *__wrap_aligned_alloc(size_t a, size_t n) { __atomic_add_fetch(&n_alloc_calls, 1, __ATOMIC_RELAXED); return __real_aligned_alloc(a, n); }
unsigned long alloc_calls(void) { return __atomic_load_n(&n_alloc_calls, __ATOMIC_RELAXED); }

/* ---- registry ---- */
#define MAX_TESTS 512
static struct { const char *name; void (*fn)(void); } tests[MAX_TESTS];
static int n_tests, cur_failed, cur_skipped;
static char skip_reason[256];

void test_register(const char *name, void (*fn)(void)) {
    if (n_tests < MAX_TESTS) {
        tests[n_tests].name = name;
        tests[n_tests].fn = fn;
        n_tests++;
    }
}

void test_fail(const char *file, int line, const char *fmt, ...) {
    if (cur_failed < 5) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stdout, "    %s:%d: ", file, line);
        vfprintf(stdout, fmt, ap);
        fputc('\n', stdout);
        va_end(ap);
    }
    cur_failed++;
}

int test_failed_now(void) { return cur_failed; }

void test_skip(const char *why) {
    cur_skipped = 1;
    snprintf(skip_reason, sizeof skip_reason, "%s", why);
}

const char *shared_path(const char *rel) {
    static char buf[8][1024];
    static int next;
    const char *root = getenv("SM_SHARED");
    if (!root || !*root) root = "../shared";
    char *p = buf[next++ % 8];
    snprintf(p, 1024, "%s/%s", root, rel);
    struct stat st;
    return stat(p, &st) == 0 ? p : NULL;
}

char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[n] = '\0'; if (len) *len = (size_t)n; }
    return b;
}

/* With arguments, only the tests whose names contain one of them run. */
static int selected(const char *name, int argc, char **argv) {
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return 1;
    return 0;
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < n_tests; i++) {
        if (!selected(tests[i].name, argc, argv)) continue;
        cur_failed = cur_skipped = 0;
        tests[i].fn();
        if (cur_failed) { failed++; printf("FAIL %s (%d checks failed)\n", tests[i].name, cur_failed); }
        else if (cur_skipped) { skipped++; printf("skip %s: %s\n", tests[i].name, skip_reason); }
        else { passed++; printf("ok   %s\n", tests[i].name); }
        fflush(stdout);
    }
    printf("unit: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}

/* test_outfile.c - how SmallMind writes files (core/outfile.c, issue 11):
 * special files and directories refused and left alone, a symbolic link's
 * target replaced with the link kept, write errors (a file size limit)
 * reported with the destination unchanged, stale temporary files of killed
 * writers removed while a live writer's is kept, over-long paths refused,
 * and the training log cut back to whole rows after a failed write. */
#define _GNU_SOURCE
#include "test.h"
#include "core/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* A fresh directory under /tmp; its path in dir (PATH_MAX). */
static int temp_dir(char *dir) {
    strcpy(dir, "/tmp/sm_outfile_XXXXXX");
    return mkdtemp(dir) != NULL;
}

static void cleanup(const char *dir) {
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static int write_text(const char *path, const char *text, sm_error *err) {
    sm_output *o;
    if (sm_output_open(path, &o, err)) return -1;
    if (sm_output_write(o, text, strlen(text), err)) { sm_output_discard(o); return -1; }
    return sm_output_commit(o, err) ? -1 : 0;
}

static int count_temps(const char *dir) {
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c 'tmp-smallmind' > /dev/null", dir);
    return system(cmd) == 0;
}

TEST(output_refuses_special_files) {
    char dir[PATH_MAX], p[PATH_MAX + 32];
    REQUIRE(temp_dir(dir));
    sm_error err = {0};
    struct stat st;
    /* a FIFO: refused, and still a FIFO afterwards */
    snprintf(p, sizeof p, "%s/fifo", dir);
    REQUIRE(mkfifo(p, 0600) == 0);
    CHECK(write_text(p, "x", &err) != 0 && err.status == SM_ERR_IO && strstr(err.message, "FIFO"));
    CHECK(stat(p, &st) == 0 && S_ISFIFO(st.st_mode));
    /* a directory */
    CHECK(sm_output_check(dir, &err) == SM_ERR_IO && strstr(err.message, "directory"));
    /* /dev/null: a character device, refused before anything is written */
    CHECK(sm_output_check("/dev/null", &err) == SM_ERR_IO && strstr(err.message, "character device"));
    /* a device node made with mknod (as /dev/full, 1:7), which the old
     * writer's rename replaced with a regular file */
    snprintf(p, sizeof p, "%s/full", dir);
    if (mknod(p, S_IFCHR | 0600, makedev(1, 7)) == 0) {
        CHECK(write_text(p, "x", &err) != 0 && strstr(err.message, "character device"));
        CHECK(stat(p, &st) == 0 && S_ISCHR(st.st_mode));
    } else {
        fprintf(stderr, "    (mknod needs root: device node case not run)\n");
    }
    CHECK(!count_temps(dir));
    cleanup(dir);
}

TEST(output_writes_symlink_target) {
    char dir[PATH_MAX], target[PATH_MAX + 32], link[PATH_MAX + 32], dangling[PATH_MAX + 32];
    REQUIRE(temp_dir(dir));
    snprintf(target, sizeof target, "%s/target.txt", dir);
    snprintf(link, sizeof link, "%s/link.txt", dir);
    snprintf(dangling, sizeof dangling, "%s/dangling.txt", dir);
    sm_error err = {0};
    REQUIRE(write_text(target, "old", &err) == 0);
    REQUIRE(chmod(target, 0640) == 0);
    REQUIRE(symlink("target.txt", link) == 0);   /* relative, as ln -s makes them */
    CHECKF(write_text(link, "new contents", &err) == 0, "%s", err.message);
    struct stat st;
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    size_t n;
    char *got = read_file(target, &n);
    CHECK(got && n == 12 && !memcmp(got, "new contents", 12));
    free(got);
    /* the replaced file keeps its permissions */
    CHECK(stat(target, &st) == 0 && (st.st_mode & 0777) == 0640);
    /* a link to nothing is refused, and nothing is created */
    REQUIRE(symlink("nowhere/missing.txt", dangling) == 0);
    CHECK(write_text(dangling, "x", &err) != 0 && strstr(err.message, "does not exist"));
    CHECK(!count_temps(dir));
    cleanup(dir);
}

TEST(output_write_error_keeps_destination) {
    char dir[PATH_MAX], p[PATH_MAX + 32];
    REQUIRE(temp_dir(dir));
    snprintf(p, sizeof p, "%s/model.bin", dir);
    sm_error err = {0};
    REQUIRE(write_text(p, "the old file", &err) == 0);
    /* a file size limit makes write() fail with EFBIG once SIGXFSZ is ignored */
    struct rlimit old, lim;
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    size_t big = 256 * 1024;
    char *data = calloc(1, big);
    sm_output *o = NULL;
    sm_status st = sm_output_open(p, &o, &err);
    if (!st) st = sm_output_write(o, data, big, &err);
    if (o && st) sm_output_discard(o);
    else if (o) st = sm_output_commit(o, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_sig);
    free(data);
    CHECKF(st == SM_ERR_IO && strstr(err.message, "File too large"), "status %d: %s", st, err.message);
    size_t n;
    char *got = read_file(p, &n);
    CHECK(got && n == 12 && !memcmp(got, "the old file", 12));
    free(got);
    CHECK(!count_temps(dir));
    cleanup(dir);
}

static int n_removed;
static void on_removed(void *user, const char *file, uint64_t bytes) {
    (void)user;
    (void)bytes;
    n_removed++;
    CHECK(strstr(file, "ckpt.tmp-smallmind-AbC123") != NULL);
}

TEST(output_stale_temp_removed_live_kept) {
    char dir[PATH_MAX], p[PATH_MAX + 32], stale[PATH_MAX + 64], other[PATH_MAX + 64], lnk[PATH_MAX + 64];
    REQUIRE(temp_dir(dir));
    snprintf(p, sizeof p, "%s/m.ckpt", dir);
    snprintf(stale, sizeof stale, "%s/m.ckpt" SM_OUTPUT_TMP_TAG "AbC123", dir);
    snprintf(other, sizeof other, "%s/m.ckpt" SM_OUTPUT_TMP_TAG "AbC1234", dir);   /* not our pattern */
    snprintf(lnk, sizeof lnk, "%s/m.ckpt" SM_OUTPUT_TMP_TAG "LnK999", dir);        /* a link: not ours */
    FILE *f = fopen(stale, "w");
    REQUIRE(f);
    fputs("left by a killed writer", f);
    fclose(f);
    f = fopen(other, "w");
    REQUIRE(f);
    fclose(f);
    REQUIRE(symlink(other, lnk) == 0);
    /* a live writer: its temporary file is locked and must survive */
    sm_error err = {0};
    sm_output *live;
    REQUIRE(sm_output_open(p, &live, &err) == SM_OK);
    n_removed = 0;
    CHECK(sm_output_remove_stale(p, on_removed, NULL) == 1);
    CHECK(n_removed == 1);
    CHECK(access(stale, F_OK) != 0);
    CHECK(access(other, F_OK) == 0);
    struct stat st;
    CHECK(lstat(lnk, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(count_temps(dir));
    CHECK(sm_output_write(live, "ok", 2, &err) == SM_OK && sm_output_commit(live, &err) == SM_OK);
    size_t n;
    char *got = read_file(p, &n);
    CHECK(got && n == 2);
    free(got);
    cleanup(dir);
}

TEST(output_long_paths_refused) {
    sm_error err = {0};
    /* longer than PATH_MAX: refused up front, not cut short */
    size_t n = PATH_MAX + 10;
    char *p = malloc(n + 1);
    REQUIRE(p);
    for (size_t i = 0; i < n; i++) p[i] = i % 100 == 99 ? '/' : 'a';
    p[n] = '\0';
    CHECK(sm_output_check(p, &err) == SM_ERR_INVALID_ARG && strstr(err.message, "bytes long"));
    /* a file name that leaves no room for the temporary file's suffix */
    char name[300] = "/tmp/";
    memset(name + 5, 'b', 250);
    name[255] = '\0';
    CHECK(sm_output_check(name, &err) == SM_ERR_INVALID_ARG && strstr(err.message, "too long"));
    free(p);
}

TEST(append_log_cut_at_whole_row) {
    char dir[PATH_MAX], p[PATH_MAX + 32];
    REQUIRE(temp_dir(dir));
    snprintf(p, sizeof p, "%s/log.csv", dir);
    sm_error err = {0};
    sm_output *o;
    REQUIRE(sm_output_open_append(p, 1, &o, &err) == SM_OK);
    struct rlimit old, lim;
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 1000;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    int rows = 0;
    sm_status st = SM_OK;
    while (!st && rows < 1000) {
        st = sm_output_printf(o, &err, "%d,%s\n", rows, "0.123456,0.654321");
        if (!st) st = sm_output_flush(o, &err);
        if (!st) rows++;
    }
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_sig);
    sm_output_discard(o);
    CHECK(st == SM_ERR_IO && strstr(err.message, "File too large"));
    size_t n;
    char *got = read_file(p, &n);
    REQUIRE(got);
    /* every row that was reported written is there, whole, and no part of the failed one */
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += got[i] == '\n';
    CHECKF(lines == rows && n > 0 && got[n - 1] == '\n', "%d lines, %d rows, %zu bytes", lines, rows, n);
    free(got);
    /* and appending again continues it */
    REQUIRE(sm_output_open_append(p, 0, &o, &err) == SM_OK);
    CHECK(sm_output_printf(o, &err, "more\n") == SM_OK && sm_output_commit(o, &err) == SM_OK);
    got = read_file(p, &n);
    CHECK(got && n > 5 && !memcmp(got + n - 5, "more\n", 5));
    free(got);
    cleanup(dir);
}

/* outfile.c - see outfile.h: checked destinations, atomic replacement,
 * checked writes, and the removal of stale temporary files. */
#define _GNU_SOURCE
#include "outfile.h"
#include "alloc.h"
#include "error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_RANDOM 6        /* the XXXXXX of mkostemp */
#define MAX_LINKS 40        /* as the kernel's limit on nested symbolic links */

struct sm_output {
    char *shown;            /* the path as the caller gave it, for messages */
    char *path;             /* the destination, its symbolic links followed */
    char *tmp;              /* the temporary file; NULL when appending */
    int fd;
    int err_no;             /* the first failed write's errno, 0 if none */
    off_t good;             /* appending: the file's size after the last complete flush */
    FILE *stream;           /* sm_output_stream's, on a duplicate of fd */
    size_t fill;
    char buf[8192];
};

static char *dup_n(const char *s, size_t n) {
    char *d = sm_alloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char *dup_str(const char *s) { return dup_n(s, strlen(s)); }

/* The directory part of a path ("." when there is none). */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return dup_str(".");
    return dup_n(path, slash == path ? 1 : (size_t)(slash - path));
}

static const char *base_of(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static const char *kind_of(mode_t m) {
    return S_ISCHR(m) ? "character device" : S_ISBLK(m) ? "block device" : S_ISFIFO(m) ? "FIFO"
         : S_ISSOCK(m) ? "socket" : S_ISDIR(m) ? "directory" : "special file";
}

/* Follows the symbolic links of the last component: *out is the path of
 * what will be written (allocated), *exists and *st describe it. */
static sm_status resolve(const char *path, char **out, struct stat *st, int *exists, sm_error *err) {
    *out = NULL;
    char *cur = dup_str(path);
    if (!cur) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    for (int depth = 0; depth <= MAX_LINKS; depth++) {
        if (lstat(cur, st) != 0) {
            int e = errno;
            if (e == ENOENT && depth == 0) {
                *exists = 0;
                *out = cur;
                return SM_OK;
            }
            sm_status s = e == ENOENT
                              ? sm_fail(err, SM_ERR_IO, "'%s' is a symbolic link to '%s', which does not exist", path, cur)
                              : sm_fail(err, SM_ERR_IO, "cannot write '%s': %s", path, strerror(e));
            sm_free(cur);
            return s;
        }
        if (!S_ISLNK(st->st_mode)) {
            *exists = 1;
            *out = cur;
            return SM_OK;
        }
        /* the link's text: st_size says how long, but may be 0 (procfs) */
        size_t cap = (size_t)st->st_size + 1 > 256 ? (size_t)st->st_size + 1 : 256;
        char *target;
        ssize_t n;
        for (;;) {
            if (!(target = sm_alloc(cap))) { sm_free(cur); return sm_fail(err, SM_ERR_NOMEM, "out of memory"); }
            n = readlink(cur, target, cap);
            if (n < 0 || (size_t)n < cap) break;
            sm_free(target);
            cap *= 2;
        }
        if (n < 0) {
            sm_status s = sm_fail(err, SM_ERR_IO, "cannot read the symbolic link '%s': %s", path, strerror(errno));
            sm_free(target);
            sm_free(cur);
            return s;
        }
        target[n] = '\0';
        char *next = target;
        if (target[0] != '/') {   /* relative to the link's directory */
            char *dir = dir_of(cur);
            size_t dl = dir ? strlen(dir) : 0;
            next = dir ? sm_alloc(dl + 1 + (size_t)n + 1) : NULL;
            if (next) {
                memcpy(next, dir, dl);
                next[dl] = '/';
                memcpy(next + dl + 1, target, (size_t)n + 1);
            }
            sm_free(dir);
            sm_free(target);
        }
        sm_free(cur);
        if (!next) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
        cur = next;
    }
    sm_free(cur);
    return sm_fail(err, SM_ERR_IO, "'%s': too many levels of symbolic links", path);
}

/* Every check of a destination; *real is the path to write (allocated). */
static sm_status check(const char *path, char **real, struct stat *st, int *exists, sm_error *err) {
    *real = NULL;
    if (!path || !*path) return sm_fail(err, SM_ERR_INVALID_ARG, "no output file given");
    size_t len = strlen(path);
    if (len >= PATH_MAX)
        return sm_fail(err, SM_ERR_INVALID_ARG, "the output path '%.40s...' is %zu bytes long; the limit is %d", path,
                       len, PATH_MAX - 1);
    char *r;
    sm_status s = resolve(path, &r, st, exists, err);
    if (s) return s;
    size_t extra = strlen(SM_OUTPUT_TMP_TAG) + TMP_RANDOM;
    char *dir = NULL;
    struct stat ds;
    if (*exists && S_ISDIR(st->st_mode))
        s = sm_fail(err, SM_ERR_IO, "'%s' is a directory; give a file name", path);
    else if (*exists && !S_ISREG(st->st_mode))
        s = sm_fail(err, SM_ERR_IO, "'%s' is a %s, not a regular file; SmallMind writes only regular files", path,
                    kind_of(st->st_mode));
    else if (strlen(base_of(r)) + extra > NAME_MAX)
        s = sm_fail(err, SM_ERR_INVALID_ARG, "the file name '%.40s...' is too long: with the suffix of its temporary "
                    "file (%zu bytes) it must stay within %d bytes", base_of(r), extra, NAME_MAX);
    else if (strlen(r) + extra >= PATH_MAX)
        s = sm_fail(err, SM_ERR_INVALID_ARG, "the output path '%.40s...' is too long for its temporary file (limit %d "
                    "bytes)", r, PATH_MAX - 1);
    else if (!(dir = dir_of(r)))
        s = sm_fail(err, SM_ERR_NOMEM, "out of memory");
    else if (stat(dir, &ds) != 0)
        s = sm_fail(err, SM_ERR_IO, "cannot write '%s': directory '%s': %s", path, dir, strerror(errno));
    else if (!S_ISDIR(ds.st_mode))
        s = sm_fail(err, SM_ERR_IO, "cannot write '%s': '%s' is not a directory", path, dir);
    else if (access(dir, W_OK | X_OK) != 0)
        s = sm_fail(err, SM_ERR_IO, "cannot write '%s': directory '%s': %s", path, dir, strerror(errno));
    sm_free(dir);
    if (s) sm_free(r);
    else *real = r;
    return s;
}

sm_status sm_output_check(const char *path, sm_error *err) {
    struct stat st;
    int exists;
    char *real;
    sm_status s = check(path, &real, &st, &exists, err);
    sm_free(real);
    return s;
}

static sm_output *new_output(const char *path, char *real) {
    sm_output *o = sm_calloc(1, sizeof *o);
    if (o) o->shown = dup_str(path);
    if (!o || !o->shown) {
        if (o) sm_free(o);
        sm_free(real);
        return NULL;
    }
    o->path = real;
    o->fd = -1;
    return o;
}

static void free_output(sm_output *o) {
    sm_free(o->shown);
    sm_free(o->path);
    sm_free(o->tmp);
    sm_free(o);
}

sm_status sm_output_open(const char *path, sm_output **out, sm_error *err) {
    *out = NULL;
    struct stat st;
    int exists;
    char *real;
    sm_status s = check(path, &real, &st, &exists, err);
    if (s) return s;
    sm_output *o = new_output(path, real);
    if (!o) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    size_t n = strlen(real) + strlen(SM_OUTPUT_TMP_TAG) + TMP_RANDOM + 1;
    o->tmp = sm_alloc(n);
    if (!o->tmp) {
        free_output(o);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    }
    snprintf(o->tmp, n, "%s%sXXXXXX", real, SM_OUTPUT_TMP_TAG);
    o->fd = mkostemp(o->tmp, O_CLOEXEC);
    if (o->fd < 0) {
        s = sm_fail(err, SM_ERR_IO, "cannot create a temporary file beside '%s': %s", path, strerror(errno));
        free_output(o);
        return s;
    }
    /* held until the rename: a later run sees this file is being written */
    (void)flock(o->fd, LOCK_EX | LOCK_NB);
    /* mkostemp makes the file private (0600); a replaced file keeps its
     * permissions, a new one is readable by all, as models are shared */
    (void)fchmod(o->fd, exists ? (st.st_mode & 07777) : 0644);
    *out = o;
    return SM_OK;
}

sm_status sm_output_open_append(const char *path, int truncate, sm_output **out, sm_error *err) {
    *out = NULL;
    struct stat st;
    int exists;
    char *real;
    sm_status s = check(path, &real, &st, &exists, err);
    if (s) return s;
    sm_output *o = new_output(path, real);
    if (!o) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    /* O_NOFOLLOW and O_NONBLOCK: whatever replaced the checked file since,
     * neither a link nor a FIFO is opened, nor does the open block */
    o->fd = open(real, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    int e = errno;
    if (o->fd >= 0 && (fstat(o->fd, &st) != 0 || !S_ISREG(st.st_mode))) e = EINVAL;
    else if (o->fd >= 0 && truncate && ftruncate(o->fd, 0) != 0) e = errno;
    else if (o->fd >= 0) e = 0;
    if (e) {
        s = e == EINVAL ? sm_fail(err, SM_ERR_IO, "'%s' is not a regular file; SmallMind writes only regular files",
                                  path)
                        : sm_fail(err, SM_ERR_IO, "cannot write '%s': %s", path, strerror(e));
        if (o->fd >= 0) close(o->fd);
        free_output(o);
        return s;
    }
    (void)fcntl(o->fd, F_SETFL, O_APPEND);
    o->good = truncate ? 0 : st.st_size;
    *out = o;
    return SM_OK;
}

static sm_status failed(const sm_output *o, sm_error *err) {
    return sm_fail(err, SM_ERR_IO, "cannot write '%s': %s", o->shown, strerror(o->err_no));
}

static void write_all(sm_output *o, const char *p, size_t n) {
    while (n > 0 && !o->err_no) {
        ssize_t k = write(o->fd, p, n);
        if (k < 0) {
            if (errno != EINTR) o->err_no = errno;
            continue;
        }
        if (k == 0) { o->err_no = EIO; break; }
        p += k;
        n -= (size_t)k;
    }
}

sm_status sm_output_flush(sm_output *o, sm_error *err) {
    if (o->fill && !o->err_no) {
        write_all(o, o->buf, o->fill);
        /* an appended file keeps whole flushes only: no half row at its end */
        if (!o->tmp && o->err_no) (void)ftruncate(o->fd, o->good);
        else if (!o->tmp) o->good += (off_t)o->fill;
    }
    o->fill = 0;
    return o->err_no ? failed(o, err) : SM_OK;
}

sm_status sm_output_write(sm_output *o, const void *data, size_t n, sm_error *err) {
    if (o->err_no) return failed(o, err);
    if (n == 0) return SM_OK;
    if (o->fill + n > sizeof o->buf) {
        if (sm_output_flush(o, err)) return SM_ERR_IO;
        if (n >= sizeof o->buf) {
            write_all(o, data, n);
            return o->err_no ? failed(o, err) : SM_OK;
        }
    }
    memcpy(o->buf + o->fill, data, n);
    o->fill += n;
    return SM_OK;
}

sm_status sm_output_printf(sm_output *o, sm_error *err, const char *fmt, ...) {
    if (o->err_no) return failed(o, err);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->fill, sizeof o->buf - o->fill, fmt, ap);
    va_end(ap);
    if (n < 0) return sm_fail(err, SM_ERR_INVALID_ARG, "bad format writing '%s'", o->shown);
    if ((size_t)n < sizeof o->buf - o->fill) {
        o->fill += (size_t)n;
        return SM_OK;
    }
    /* it did not fit: make room, or format into memory of its own */
    if (sm_output_flush(o, err)) return SM_ERR_IO;
    char *big = (size_t)n < sizeof o->buf ? o->buf : sm_alloc((size_t)n + 1);
    if (!big) return sm_fail(err, SM_ERR_NOMEM, "out of memory");
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (big == o->buf) {
        o->fill = (size_t)n;
        return SM_OK;
    }
    write_all(o, big, (size_t)n);
    sm_free(big);
    return o->err_no ? failed(o, err) : SM_OK;
}

FILE *sm_output_stream(sm_output *o) {
    if (o->stream || o->err_no) return o->stream;
    sm_output_flush(o, NULL);   /* bytes written before come first */
    int fd = dup(o->fd);
    o->stream = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!o->stream) {
        o->err_no = errno ? errno : ENOMEM;
        if (fd >= 0) close(fd);
    }
    return o->stream;
}

/* Flushes and closes the stream, keeping the first error. */
static void close_stream(sm_output *o) {
    if (!o->stream) return;
    errno = 0;
    int bad = fflush(o->stream) != 0 || ferror(o->stream);
    int e = errno;
    if (fclose(o->stream) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    o->stream = NULL;
    if (bad && !o->err_no) o->err_no = e ? e : EIO;
}

/* A rename must itself survive a crash: sync the directory. */
static void sync_dir(const char *path) {
    char *dir = dir_of(path);
    if (!dir) return;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    sm_free(dir);
}

sm_status sm_output_commit(sm_output *o, sm_error *err) {
    if (!o) return sm_fail(err, SM_ERR_INVALID_ARG, "sm_output_commit: no file");
    close_stream(o);
    sm_output_flush(o, NULL);
    /* the data must be on disk before the name points at it */
    if (!o->err_no && fsync(o->fd) != 0) o->err_no = errno;
    if (!o->err_no && o->tmp && rename(o->tmp, o->path) != 0) o->err_no = errno;
    /* closing releases the lock; for the temporary file only after the rename */
    if (close(o->fd) != 0 && !o->err_no) o->err_no = errno;
    sm_status st = SM_OK;
    if (o->err_no) {
        if (o->tmp) unlink(o->tmp);
        st = failed(o, err);
    } else if (o->tmp) {
        sync_dir(o->path);
    }
    free_output(o);
    return st;
}

void sm_output_discard(sm_output *o) {
    if (!o) return;
    if (o->stream) fclose(o->stream);
    if (o->fd >= 0) close(o->fd);
    if (o->tmp) unlink(o->tmp);
    free_output(o);
}

/* DEST.tmp-smallmind- followed by exactly mkostemp's six characters. */
static int is_our_tmp(const char *name, const char *base) {
    size_t bl = strlen(base), tl = strlen(SM_OUTPUT_TMP_TAG);
    if (strncmp(name, base, bl) != 0 || strncmp(name + bl, SM_OUTPUT_TMP_TAG, tl) != 0) return 0;
    const char *r = name + bl + tl;
    for (int i = 0; i < TMP_RANDOM; i++) {
        char c = r[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return 0;
    }
    return r[TMP_RANDOM] == '\0';
}

int sm_output_remove_stale(const char *path, void (*removed)(void *user, const char *file, uint64_t bytes),
                           void *user) {
    if (!path || !*path || strlen(path) >= PATH_MAX) return 0;
    struct stat st;
    int exists;
    char *real;
    if (resolve(path, &real, &st, &exists, NULL)) return 0;
    char *dir = dir_of(real);
    const char *base = base_of(real);
    DIR *d = dir ? opendir(dir) : NULL;
    int count = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (!is_our_tmp(e->d_name, base)) continue;
        size_t n = strlen(dir) + 1 + strlen(e->d_name) + 1;
        char *full = sm_alloc(n);
        if (!full) break;
        snprintf(full, n, "%s/%s", dir, e->d_name);
        /* ours: a regular file (not a link), of this user, that no process
         * holds locked; with the lock held, no writer can be mid-write */
        int fd = open(full, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat fs;
        if (fd >= 0 && fstat(fd, &fs) == 0 && S_ISREG(fs.st_mode) && fs.st_uid == geteuid() &&
            flock(fd, LOCK_EX | LOCK_NB) == 0 && unlink(full) == 0) {
            count++;
            if (removed) removed(user, full, (uint64_t)fs.st_size);
        }
        if (fd >= 0) close(fd);
        sm_free(full);
    }
    if (d) closedir(d);
    sm_free(dir);
    sm_free(real);
    return count;
}

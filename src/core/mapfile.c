/* mapfile.c - see mapfile.h. By default weights stay in the page cache and
 * are never copied: loading a model costs a map, not a read. */
#define _GNU_SOURCE
#include "mapfile.h"
#include "error.h"
#include "alloc.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Opens path for reading when it is a regular, non-empty file; out is
 * emptied, then given the file's size. */
static sm_status open_regular(const char *path, sm_mapped_file *out, int *fd_out, sm_error *err) {
    out->data = NULL;
    out->size = 0;
    out->copied = 0;
    /* O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer;
     * what is not a regular file is refused before a byte is read */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return sm_fail(err, SM_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sm_fail(err, SM_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return sm_fail(err, SM_ERR_IO, "'%s' is a directory, not a model file", path);
    }
    if (!S_ISREG(st.st_mode)) {
        const char *kind = S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISCHR(st.st_mode) ? "a character device"
                         : S_ISBLK(st.st_mode) ? "a block device" : S_ISSOCK(st.st_mode) ? "a socket" : "a special file";
        close(fd);
        return sm_fail(err, SM_ERR_IO, "'%s' is %s, not a regular file", path, kind);
    }
    if (st.st_size == 0) {
        close(fd);
        return sm_fail(err, SM_ERR_FORMAT, "'%s' is empty", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return sm_fail(err, SM_ERR_IO, "'%s' is larger than this machine's address space", path);
    }
    *fd_out = fd;
    out->size = (size_t)st.st_size;
    return SM_OK;
}

sm_status sm_map_file(const char *path, sm_mapped_file *out, sm_error *err) {
    int fd;
    sm_status st = open_regular(path, out, &fd, err);
    if (st) return st;
    void *p = mmap(NULL, out->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) {
        out->size = 0;
        return sm_fail(err, SM_ERR_IO, "cannot map '%s': %s", path, strerror(e));
    }
    out->data = p;
    return SM_OK;
}

sm_status sm_read_file(const char *path, sm_mapped_file *out, sm_error *err) {
    int fd;
    sm_status st = open_regular(path, out, &fd, err);
    if (st) return st;
    size_t size = out->size;
    out->size = 0;
    unsigned char *p = sm_alloc_huge(size);
    if (!p) {
        close(fd);
        return sm_fail(err, SM_ERR_NOMEM, "out of memory reading the %.1f MiB of '%s' (without --no-mmap it is "
                       "mapped instead)", (double)size / 1048576.0, path);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, p + got, size - got > ((size_t)1 << 30) ? (size_t)1 << 30 : size - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : 0;
            close(fd);
            sm_free(p);
            if (e) return sm_fail(err, SM_ERR_IO, "cannot read '%s': %s", path, strerror(e));
            return sm_fail(err, SM_ERR_IO, "'%s' ended at byte %zu of %zu while it was read (did it change?)",
                           path, got, size);
        }
        got += (size_t)n;
    }
    close(fd);
    out->data = p;
    out->size = size;
    out->copied = 1;
    return SM_OK;
}

void sm_unmap_file(sm_mapped_file *f) {
    if (f->data && f->copied) sm_free((void *)f->data);
    else if (f->data) munmap((void *)f->data, f->size);
    f->data = NULL;
    f->size = 0;
}

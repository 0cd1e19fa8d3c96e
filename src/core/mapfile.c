/* mapfile.c - see mapfile.h. Weights stay in the page cache and are never
 * copied: loading a model costs a map, not a read. */
#define _GNU_SOURCE
#include "mapfile.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

sm_status sm_map_file(const char *path, sm_mapped_file *out, sm_error *err) {
    out->data = NULL;
    out->size = 0;
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
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return sm_fail(err, SM_ERR_IO, "cannot map '%s': %s", path, strerror(e));
    out->data = p;
    out->size = (size_t)st.st_size;
    return SM_OK;
}

void sm_unmap_file(sm_mapped_file *f) {
    if (f->data) munmap((void *)f->data, f->size);
    f->data = NULL;
    f->size = 0;
}

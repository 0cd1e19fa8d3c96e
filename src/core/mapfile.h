/* mapfile.h - whole files in memory, read-only: mapped, or read into a
 * block of their own. Only regular files are taken: a directory, FIFO,
 * device or socket is refused with a clear message, and checking one never
 * blocks (it is opened with O_NONBLOCK). */
#ifndef SM_CORE_MAPFILE_H
#define SM_CORE_MAPFILE_H

#include <stddef.h>
#include "smallmind.h"

typedef struct sm_mapped_file {
    const unsigned char *data;
    size_t size;
    int copied;   /* read into memory of its own (sm_read_file), not mapped */
} sm_mapped_file;

sm_status sm_map_file(const char *path, sm_mapped_file *out, sm_error *err);
/* The same checks, but the file is read into memory of the process's own
 * (sm_alloc_huge's: huge pages where the kernel gives them), which streams
 * faster than the page cache's 4 KiB pages; it costs the read and a second
 * copy of the file while the page cache holds it. Freed by sm_unmap_file. */
sm_status sm_read_file(const char *path, sm_mapped_file *out, sm_error *err);
void sm_unmap_file(sm_mapped_file *f);

#endif

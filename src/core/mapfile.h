/* mapfile.h - read-only memory maps of whole files. Only regular files are
 * mapped: a directory, FIFO, device or socket is refused with a clear
 * message, and checking one never blocks (it is opened with O_NONBLOCK). */
#ifndef SM_CORE_MAPFILE_H
#define SM_CORE_MAPFILE_H

#include <stddef.h>
#include "smallmind.h"

typedef struct sm_mapped_file {
    const unsigned char *data;
    size_t size;
} sm_mapped_file;

sm_status sm_map_file(const char *path, sm_mapped_file *out, sm_error *err);
void sm_unmap_file(sm_mapped_file *f);

#endif

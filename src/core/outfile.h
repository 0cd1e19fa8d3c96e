/* outfile.h - the one way SmallMind writes a file (see the public
 * sm_output_* calls in smallmind.h for the rules and docs/ARCHITECTURE.md,
 * "Writing files"):
 *
 *   - only regular files: an existing destination that is a directory, a
 *     device, a FIFO or a socket is refused before anything is written; a
 *     symbolic link is followed and its target written (a dangling link is
 *     refused);
 *   - atomically: the data goes to DEST.tmp-smallmind-XXXXXX beside the
 *     (resolved) destination, is synced, and is renamed over it; the writer
 *     holds an flock on the temporary file until the rename, so a later run
 *     can tell a stale one (no lock) from one being written and remove it;
 *   - every write is checked; the first error sticks and is reported by
 *     sm_output_commit, which then removes the temporary file.
 *
 * The one exception is the training log, which grows row by row where it
 * is (sm_output_open_append): same destination checks, every write checked,
 * no temporary file. */
#ifndef SM_CORE_OUTFILE_H
#define SM_CORE_OUTFILE_H

#include <stdarg.h>
#include <stddef.h>
#include "smallmind.h"

/* The suffix of our temporary files, before six random characters. */
#define SM_OUTPUT_TMP_TAG ".tmp-smallmind-"

/* Opens path for appending (truncate: start it empty), after the same checks
 * as sm_output_open; writes go straight to the file. */
sm_status sm_output_open_append(const char *path, int truncate, sm_output **out, sm_error *err);

/* Formatted output; like sm_output_write, an error is remembered and
 * returned by every later call and by sm_output_commit. */
sm_status sm_output_printf(sm_output *o, sm_error *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Pushes buffered bytes to the file (the training log after each row). When
 * appending, a flush that fails is cut off the file again: it ends with the
 * last whole flush (row), not part of one. */
sm_status sm_output_flush(sm_output *o, sm_error *err);

#endif

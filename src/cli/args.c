/* args.c - see args.h. */
#include "args.h"
#include "smallmind.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "smallmind%s%s: error: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int arg_is(cli_args *a, const char *short_name, const char *long_name) {
    const char *s = a->argv[a->i];
    a->inline_value = NULL;
    if (short_name && strcmp(s, short_name) == 0) return 1;
    if (long_name) {
        size_t n = strlen(long_name);
        if (strncmp(s, long_name, n) == 0) {
            if (s[n] == '\0') return 1;
            if (s[n] == '=') { a->inline_value = s + n + 1; return 1; }
        }
    }
    return 0;
}

const char *arg_value(cli_args *a) {
    const char *flag = a->argv[a->i];
    if (a->inline_value) return a->inline_value;
    if (a->i + 1 >= a->argc) {
        cli_error(a->cmd, "%s needs a value (see --help)", flag);
        return NULL;
    }
    return a->argv[++a->i];
}

int parse_int(const cli_args *a, const char *flag, const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi) {
        cli_error(a->cmd, "invalid value '%s' for %s: expected an integer from %lld to %lld", s, flag, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

int parse_float(const cli_args *a, const char *flag, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi) {
        cli_error(a->cmd, "invalid value '%s' for %s: expected a number from %g to %g", s, flag, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

static int parse_kv_type(const cli_args *a, const char *flag, const char *s, int *out) {
    static const char *const names[] = {[SM_KV_F32] = "f32", [SM_KV_F16] = "f16", [SM_KV_BF16] = "bf16",
                                         [SM_KV_Q8_0] = "q8_0"};
    for (int t = 0; t < 4; t++)
        if (!strcmp(s, names[t])) {
            *out = t;
            return 1;
        }
    static const char *const other[] = {"q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (!strcmp(s, other[i])) {
            cli_error(a->cmd, "%s %s: the KV cache can be f32, f16, bf16 or q8_0 here (llama.cpp's %s cache is not "
                      "supported)", flag, s, s);
            return 0;
        }
    cli_error(a->cmd, "invalid value '%s' for %s: expected f32, f16, bf16 or q8_0", s, flag);
    return 0;
}

int cli_kv_arg(cli_args *a, int *type_k, int *type_v) {
    int k = arg_is(a, "-ctk", "--cache-type-k");
    if (!k && !arg_is(a, "-ctv", "--cache-type-v")) return 0;
    const char *v = arg_value(a);
    return v && parse_kv_type(a, k ? "-ctk" : "-ctv", v, k ? type_k : type_v) ? 1 : -1;
}

/* The file is opened with O_NONBLOCK and checked before anything is read:
 * a FIFO or a device is refused at once instead of blocking for a writer.
 * Standard input, asked for by name (/dev/stdin), is read as it is. */
char *read_text_file(const char *cmd, const char *path, size_t max, size_t *len) {
    int is_stdin = !strcmp(path, "/dev/stdin");
    int fd = is_stdin ? dup(0) : open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        cli_error(cmd, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (!is_stdin && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        int e = errno;
        if (S_ISDIR(st.st_mode)) cli_error(cmd, "'%s' is a directory, not a file", path);
        else if (S_ISFIFO(st.st_mode)) cli_error(cmd, "'%s' is a FIFO, not a regular file", path);
        else if (S_ISCHR(st.st_mode)) cli_error(cmd, "'%s' is a character device, not a regular file", path);
        else if (S_ISBLK(st.st_mode)) cli_error(cmd, "'%s' is a block device, not a regular file", path);
        else if (S_ISSOCK(st.st_mode)) cli_error(cmd, "'%s' is a socket, not a regular file", path);
        else cli_error(cmd, "cannot stat '%s': %s", path, strerror(e));
        close(fd);
        return NULL;
    }
    if (!is_stdin) (void)fcntl(fd, F_SETFL, 0);   /* a regular file: plain blocking reads */
    char *buf = malloc(max + 1);
    if (!buf) {
        close(fd);
        cli_error(cmd, "out of memory reading '%s'", path);
        return NULL;
    }
    size_t n = 0;
    int e = 0;
    while (n < max + 1) {
        ssize_t k = read(fd, buf + n, max + 1 - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) { e = errno; break; }
        if (k == 0) break;
        n += (size_t)k;
    }
    close(fd);
    if (e) {
        free(buf);
        cli_error(cmd, "cannot read '%s': %s", path, strerror(e));
        return NULL;
    }
    if (n > max) {
        free(buf);
        cli_error(cmd, "'%s' is larger than %zu MiB", path, max >> 20);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

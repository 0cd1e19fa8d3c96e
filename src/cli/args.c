/* args.c - see args.h. */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

char *read_text_file(const char *cmd, const char *path, size_t max, size_t *len) {
    struct stat st;
    if (stat(path, &st) != 0) {
        cli_error(cmd, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        cli_error(cmd, "'%s' is a directory, not a file", path);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error(cmd, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 1);
    if (!buf) {
        fclose(f);
        cli_error(cmd, "out of memory reading '%s'", path);
        return NULL;
    }
    size_t n = fread(buf, 1, max + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        cli_error(cmd, "cannot read '%s'", path);
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

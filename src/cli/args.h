/* args.h - strict parsing of command-line values: every number is checked
 * for form and range, and every problem is one line on stderr. */
#ifndef SM_CLI_ARGS_H
#define SM_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

/* Exit statuses of the CLI. */
enum { SM_EXIT_OK = 0, SM_EXIT_ERROR = 1, SM_EXIT_USAGE = 2 };

typedef struct cli_args {
    const char *cmd;    /* subcommand name, for messages */
    int argc, i;
    char **argv;
    const char *inline_value;   /* the part after '=' of the flag just matched */
    int no_mmap;        /* --no-mmap (cli_llamacpp_arg): the model is read, not mapped */
} cli_args;

/* Does argv[i] name this flag (short or long form, or "--long=value")? */
int arg_is(cli_args *a, const char *short_name, const char *long_name);
/* The flag's value: "--flag=value" or the next argument. NULL (and a
 * message) when it is missing. */
const char *arg_value(cli_args *a);

int parse_int(const cli_args *a, const char *flag, const char *s, long long lo, long long hi, long long *out);
int parse_float(const cli_args *a, const char *flag, const char *s, double lo, double hi, double *out);

/* -ctk / --cache-type-k and -ctv / --cache-type-v (llama.cpp's flags and
 * type names: "f32", "f16" or "bf16", the sm_kv_type each sets): 1 when
 * argv[i] was one of them, 0 when not, -1 after a message (a missing value,
 * or another type, refused by name). */
int cli_kv_arg(cli_args *a, int *type_k, int *type_v);

void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reads a whole file (at most max bytes) into a NUL-terminated buffer. Only
 * a regular file is read (a FIFO or device is refused without blocking),
 * and standard input when the path is /dev/stdin. */
char *read_text_file(const char *cmd, const char *path, size_t max, size_t *len);

#endif

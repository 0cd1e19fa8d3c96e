/* cmd_tokenize.c - `smallmind tokenize`: how a model's tokenizer splits a text. */
#include "args.h"
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void tokenize_usage(void) {
    printf("usage: smallmind tokenize -m MODEL (-p TEXT | -f FILE) [--ids] [--no-bos] [--parse-special] [-z TOKENIZER]\n"
           "\n"
           "Prints one line per token (id and the text it stands for), or with --ids\n"
           "the ids alone as a list: [1, 15043, 3186]. Vocabulary-only GGUF files work.\n"
           "  --no-bos         do not add the beginning-of-text token\n"
           "  --parse-special  text that spells a special token (\"<s>\", \"<|user|>\") is that token\n");
}

static void print_escaped(const char *s, int n) {
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\'' || c == '\\') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7F) printf("\\x%02x", c);
        else putchar(c);
    }
}

int cmd_tokenize(int argc, char **argv) {
    cli_args a = {"tokenize", argc, 0, argv, NULL, 0};
    const char *path = NULL, *tok = NULL, *text = NULL, *file = NULL;
    int ids_only = 0, bos = 1, parse_special = 0;
    for (a.i = 0; a.i < argc; a.i++) {
        const char *v;
#define VALUE() do { if (!(v = arg_value(&a))) return SM_EXIT_USAGE; } while (0)
        if (arg_is(&a, "-h", "--help")) { tokenize_usage(); return SM_EXIT_OK; }
        else if (arg_is(&a, "-m", "--model")) { VALUE(); path = v; }
        else if (arg_is(&a, "-z", "--tokenizer")) { VALUE(); tok = v; }
        else if (arg_is(&a, "-p", "--prompt")) { VALUE(); text = v; }
        else if (arg_is(&a, "-f", "--file")) { VALUE(); file = v; }
        else if (arg_is(&a, NULL, "--ids")) ids_only = 1;
        else if (arg_is(&a, NULL, "--no-bos")) bos = 0;
        else if (arg_is(&a, NULL, "--parse-special")) parse_special = 1;
        else { cli_error(a.cmd, "unknown option '%s' (see smallmind tokenize --help)", argv[a.i]); return SM_EXIT_USAGE; }
#undef VALUE
    }
    if (!text && !file) { cli_error(a.cmd, "give the text with -p TEXT or -f FILE"); return SM_EXIT_USAGE; }
    if (text && file) { cli_error(a.cmd, "give the text with -p or -f, not both"); return SM_EXIT_USAGE; }
    size_t len = text ? strlen(text) : 0;
    char *buf = NULL;
    if (file) {
        if (!(buf = read_text_file(a.cmd, file, 64u << 20, &len))) return SM_EXIT_ERROR;
        text = buf;
    }
    sm_model *m = cli_load_model(&a, path, tok);
    if (!m) { free(buf); return SM_EXIT_ERROR; }
    sm_model_info info;
    sm_model_get_info(m, &info);
    if (info.warning) fprintf(stderr, "smallmind tokenize: warning: %s\n", info.warning);
    int rc = SM_EXIT_ERROR;
    sm_error err = {0};
    size_t need = 0;
    sm_token *ids = NULL;
    unsigned flags = (bos && info.add_bos ? SM_TOKENIZE_ADD_BOS : 0) | (parse_special ? SM_TOKENIZE_PARSE_SPECIAL : 0);
    sm_status st = sm_tokenize_ex(m, text, len, flags, NULL, 0, &need, &err);
    if (st == SM_OK || st == SM_ERR_BUFFER_TOO_SMALL) {
        ids = malloc((need ? need : 1) * sizeof *ids);
        st = ids ? sm_tokenize_ex(m, text, len, flags, ids, need, &need, &err) : SM_ERR_NOMEM;
    }
    if (st != SM_OK) {
        cli_error(a.cmd, "%s", st == SM_ERR_NOMEM ? "out of memory" : err.message);
        goto done;
    }
    if (ids_only) {
        putchar('[');
        for (size_t i = 0; i < need; i++) printf("%s%d", i ? ", " : "", ids[i]);
        printf("]\n");
    } else {
        for (size_t i = 0; i < need; i++) {
            const char *t;
            int n = sm_token_text(m, ids[i], &t);
            printf("%6d -> '", ids[i]);
            print_escaped(t, n);
            printf("'\n");
        }
    }
    rc = SM_EXIT_OK;
done:
    free(ids);
    free(buf);
    sm_model_free(m);
    return rc;
}

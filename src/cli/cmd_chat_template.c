/* cmd_chat_template.c - `smallmind chat-template`: prints the prompt a chat
 * model sees for a conversation (an OpenAI-style JSON message list), in the
 * model's chat template or a chosen one, so it can be checked by eye. */
#include "args.h"
#include "commands.h"
#ifdef SM_HAVE_JANSSON
#include "json/messages.h"
#endif
#ifdef SM_HAVE_SERVER
#include "server/request.h"
#include "server/server.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_MESSAGES_FILE (64u << 20)
#define MAX_TEMPLATE_FILE (1u << 20)

/* The built-in names, comma-separated, wrapped and indented. */
static void names_line(FILE *f) {
    size_t n, col = 4;
    const char *const *names = sm_chat_template_names(&n);
    fputs("    ", f);
    for (size_t i = 0; i < n; i++) {
        size_t w = strlen(names[i]);
        if (i > 0 && col + 2 + w > 88) { fputs(",\n    ", f); col = 4; }
        else if (i > 0) { fputs(", ", f); col += 2; }
        fputs(names[i], f);
        col += w;
    }
    fputc('\n', f);
}

static void chat_template_usage(void) {
    printf("usage: smallmind chat-template [-m MODEL | --chat-template NAME|FILE] MESSAGES.json [--no-assistant]\n"
           "\n"
           "Prints the prompt a chat model sees for the conversation in MESSAGES.json, exactly\n"
           "(no newline is added). MESSAGES.json (- for stdin) is an OpenAI-style list:\n"
           "  [{\"role\": \"system\", \"content\": \"You are ...\"}, {\"role\": \"user\", \"content\": \"Hi\"}]\n"
           "or a request object with such a \"messages\" array. The template is recognised as\n"
           "llama.cpp's built-in formatter does (by the markers in the Jinja text), or with --jinja\n"
           "run as the Jinja program it is; then (in a build with the server) the request's \"tools\"\n"
           "and each message's tool fields (tool_calls, tool_call_id, name, a null content) reach the\n"
           "template, and the prompt is the one `smallmind serve --jinja` builds for that request (with\n"
           "the tool format's own mends, as llama-server's /apply-template answers).\n"
           "  -m, --model MODEL         use the model's tokenizer.chat_template; a model without one (or\n"
           "                            with one that is not recognised) falls back to chatml, with a\n"
           "                            warning (default: the built-in model)\n"
           "  --chat-template NAME|FILE a built-in template by name, or a file holding a template's text\n"
           "                            (wins over the model's)\n"
           "  --no-assistant            do not end with the opening of the assistant's reply\n"
           "  --jinja                   run the template as a Jinja program, as llama.cpp's --jinja does,\n"
           "                            instead of recognising a built-in format in it\n"
           "  --bos-token, --eos-token TEXT\n"
           "                            the template's bos_token / eos_token with --jinja (default: the\n"
           "                            model's BOS and EOS texts, or none without a model)\n"
           "  -z, --tokenizer FILE      tokenizer.bin for a llama2.c model\n"
           "built-in templates:\n");
    names_line(stdout);
}

#ifdef SM_HAVE_JANSSON
/* --chat-template's value: a built-in name, a file's text, or template text
 * itself. Returns the template (value or *file_text) or NULL (reported). */
static const char *template_arg(const char *cmd, const char *value, int jinja, char **file_text) {
    *file_text = NULL;
    size_t n;
    const char *const *names = sm_chat_template_names(&n);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(value, names[i])) return value;
    struct stat st;
    if (stat(value, &st) == 0) {
        size_t len;
        char *t = read_text_file(cmd, value, MAX_TEMPLATE_FILE, &len);
        if (!t) return NULL;
        if (strlen(t) != len) {
            cli_error(cmd, "the template file '%s' contains a NUL byte", value);
            free(t);
            return NULL;
        }
        if (!jinja && !sm_chat_template_detect(t)) {
            cli_error(cmd, "the chat template in '%s' is not one of the built-in formats (it has none of their "
                           "markers); choose one by name (see --help)", value);
            free(t);
            return NULL;
        }
        return *file_text = t;
    }
    if (sm_chat_template_detect(value)) return value;   /* template text given inline */
    if (jinja && (strstr(value, "{{") || strstr(value, "{%"))) return value;
    char list[512];
    size_t w = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n && w < sizeof list; i++)
        w += (size_t)snprintf(list + w, sizeof list - w, "%s%s", i ? ", " : "", names[i]);
    cli_error(cmd, "unknown chat template '%s': neither a file nor a built-in name (%s)", value, list);
    return NULL;
}
#endif

#ifdef SM_HAVE_JANSSON
static int is_builtin_name(const char *s) {
    size_t n;
    const char *const *names = sm_chat_template_names(&n);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return 1;
    return 0;
}

/* The model's BOS (bos 1) or EOS token text, as a template's bos_token. */
static char *model_token(const sm_model *model, int bos) {
    sm_model_info info;
    sm_model_get_info(model, &info);
    const char *t;
    int n = sm_token_text(model, bos ? info.bos : info.eos, &t);
    return n < 0 ? NULL : strndup(t, (size_t)n);
}
#endif

int cmd_chat_template(int argc, char **argv) {
    cli_args a = {"chat-template", argc, 0, argv, NULL, 0};
    const char *model_path = NULL, *tok = NULL, *tmpl_arg = NULL, *messages_path = NULL;
    const char *bos_arg = NULL, *eos_arg = NULL;
    int add_assistant = 1, jinja = 0;
    for (a.i = 0; a.i < argc; a.i++) {
        const char *v;
#define VALUE() do { if (!(v = arg_value(&a))) return SM_EXIT_USAGE; } while (0)
        if (arg_is(&a, "-h", "--help")) { chat_template_usage(); return SM_EXIT_OK; }
        else if (arg_is(&a, "-m", "--model")) { VALUE(); model_path = v; }
        else if (arg_is(&a, "-z", "--tokenizer")) { VALUE(); tok = v; }
        else if (arg_is(&a, NULL, "--chat-template")) { VALUE(); tmpl_arg = v; }
        else if (arg_is(&a, NULL, "--no-assistant")) add_assistant = 0;
        else if (arg_is(&a, NULL, "--jinja")) jinja = 1;
        else if (arg_is(&a, NULL, "--bos-token")) { VALUE(); bos_arg = v; }
        else if (arg_is(&a, NULL, "--eos-token")) { VALUE(); eos_arg = v; }
        else if (argv[a.i][0] == '-' && argv[a.i][1] != '\0') {
            cli_error(a.cmd, "unknown option '%s' (see smallmind chat-template --help)", argv[a.i]);
            return SM_EXIT_USAGE;
        } else if (!messages_path) messages_path = argv[a.i];
        else { cli_error(a.cmd, "one messages file only ('%s' and '%s')", messages_path, argv[a.i]); return SM_EXIT_USAGE; }
#undef VALUE
    }
    if (!messages_path) { cli_error(a.cmd, "no messages file given (see smallmind chat-template --help)"); return SM_EXIT_USAGE; }
#ifndef SM_HAVE_JANSSON
    (void)model_path, (void)tok, (void)tmpl_arg, (void)add_assistant, (void)jinja, (void)bos_arg, (void)eos_arg;
    cli_error(a.cmd, "this smallmind was built without Jansson, which reads the messages file: install libjansson-dev "
                     "(apt-get install libjansson-dev) and rebuild with make");
    return SM_EXIT_ERROR;
#else
    int rc = SM_EXIT_ERROR;
    char *tmpl_file = NULL, *text = NULL, *out = NULL, *jinja_copy = NULL, *bos_copy = NULL, *eos_copy = NULL;
    sm_model *model = NULL;
    sm_json_messages msgs = {0};
    sm_error err = {0};
    const char *tmpl = NULL;
#ifdef SM_HAVE_SERVER
    request req;
    memset(&req, 0, sizeof req);
    char *wrapped = NULL;
#endif
    if (tmpl_arg && !(tmpl = template_arg(a.cmd, tmpl_arg, jinja, &tmpl_file))) goto done;

    size_t len;
    if (!(text = read_text_file(a.cmd, strcmp(messages_path, "-") ? messages_path : "/dev/stdin", MAX_MESSAGES_FILE, &len)))
        goto done;
#ifdef SM_HAVE_SERVER
    if (jinja) {
        /* read as `serve` reads a chat request, so tools and the messages' tool fields reach the template */
        const char *body = text;
        size_t blen = len, k = 0;
        while (k < len && strchr(" \t\r\n", text[k])) k++;
        if (k < len && text[k] == '[') {   /* a bare message list: the request around it */
            if (!(wrapped = malloc(len + 16))) { cli_error(a.cmd, "out of memory"); goto done; }
            blen = (size_t)snprintf(wrapped, len + 16, "{\"messages\":%.*s}", (int)len, text);
            body = wrapped;
        }
        req_limits lim = {1 << 30, 1 << 30, 1};
        req_error e;
        memset(&e, 0, sizeof e);
        if (request_parse(REQ_CHAT, body, blen, &lim, &req, &e)) {
            cli_error(a.cmd, "%s: %s%s%s%s", strcmp(messages_path, "-") ? messages_path : "<stdin>", e.message,
                      e.param[0] ? " (" : "", e.param, e.param[0] ? ")" : "");
            goto done;
        }
    } else
#endif
    if (sm_json_messages_parse(text, len, strcmp(messages_path, "-") ? messages_path : "<stdin>", &msgs, &err) != SM_OK) {
        cli_error(a.cmd, "%s", err.message);
        goto done;
    }

    /* the conversation: the chat request's (read for --jinja) or the message list's */
    const sm_chat_message *conv = msgs.msgs;
    size_t n_conv = msgs.n;
#ifdef SM_HAVE_SERVER
    if (jinja) conv = req.msgs, n_conv = req.n_msgs;
#endif
    char builtin[4096];
    if (!model_path && !tmpl) {
        model_path = cli_default_model(builtin, sizeof builtin);
        if (!model_path) {
            cli_error(a.cmd, "no model given and the built-in models/kjv-3m.gguf is not beside smallmind: "
                             "pass -m MODEL.gguf or --chat-template NAME");
            rc = SM_EXIT_USAGE;
            goto done;
        }
    }
    /* loaded even when --chat-template wins, so a bad -m is reported; only
     * its metadata is read, so without the run-time weight copies */
    if (model_path) {
        sm_model_params mp = sm_model_default_params();
        mp.tokenizer_path = tok;
        mp.skip_repack = 1;
        if (sm_model_load(model_path, &mp, &model, &err) != SM_OK) { cli_error(a.cmd, "%s", err.message); goto done; }
    }

    size_t need = 0;
    const char *jinja_text = NULL;
    if (jinja && tmpl && !is_builtin_name(tmpl)) {
        jinja_text = tmpl;
    } else if (jinja && !tmpl && model) {
        const char *t;
        size_t tl;
        if (sm_model_meta_str(model, "tokenizer.chat_template", &t, &tl) == 1 && tl > 0) {
            if (!(jinja_copy = strndup(t, tl))) { cli_error(a.cmd, "out of memory"); goto done; }
            jinja_text = jinja_copy;
        }
    }
    if (jinja_text) {
        /* --jinja: the template run as a program, BOS and EOS texts from
         * the options or the model */
        sm_chat_jinja_params jp = sm_chat_jinja_default_params();
        jp.add_assistant = add_assistant;
        jp.bos_token = bos_arg ? bos_arg : model ? (bos_copy = model_token(model, 1)) : NULL;
        jp.eos_token = eos_arg ? eos_arg : model ? (eos_copy = model_token(model, 0)) : NULL;
#ifdef SM_HAVE_SERVER
        if ((req.tools || req.extras) && !bos_arg && !eos_arg && add_assistant) {
            /* tools in play: the prompt `serve --jinja` builds (its BOS and EOS texts the model's) */
            server S;
            memset(&S, 0, sizeof S);
            S.model = model;
            S.opt.jinja = 1;
            S.jinja = (char *)jinja_text;
            req_error e;
            memset(&e, 0, sizeof e);
            if (tools_prepare(&S, &req, &e) || chat_text(&S, &req, &out, &need, &e)) {
                cli_error(a.cmd, "%s", e.message);
                goto done;
            }
            fprintf(stderr, "smallmind chat-template: template run as Jinja with the request's tools, as `serve --jinja` "
                            "runs it\n");
            goto write;
        }
        jp.tools = req.tools;
        jp.extras = req.extras;
#endif
        if (sm_chat_apply_jinja(jinja_text, conv, n_conv, &jp, NULL, 0, &need, &err) != SM_OK ||
            !(out = malloc(need + 1)) ||
            sm_chat_apply_jinja(jinja_text, conv, n_conv, &jp, out, need + 1, &need, &err) != SM_OK) {
            cli_error(a.cmd, "%s", out || err.message[0] ? err.message : "out of memory");
            goto done;
        }
        fprintf(stderr, "smallmind chat-template: template run as Jinja (%s)\n",
                jinja_copy ? "from the model's tokenizer.chat_template" : tmpl_file ? "from the template file" : "from the template text given");
        goto write;
    }

    sm_chat_template_info info;
    if (sm_chat_template_resolve(model, tmpl, &info, &err) != SM_OK) { cli_error(a.cmd, "%s", err.message); goto done; }
    if (info.warning) fprintf(stderr, "smallmind chat-template: warning: %s\n", info.warning);
    const char *from = "the default";
    if (!strcmp(info.origin, "model")) from = "from the model's tokenizer.chat_template";
    else if (tmpl_file) from = "from the template file";
    else if (tmpl && strcmp(tmpl, info.name)) from = "from the template text given";
    else if (tmpl) from = "by name";
    fprintf(stderr, "smallmind chat-template: template %s (%s)\n", info.name, from);

    if (sm_chat_apply(info.name, conv, n_conv, add_assistant, NULL, 0, &need, &err) != SM_OK ||
        !(out = malloc(need + 1)) ||
        sm_chat_apply(info.name, conv, n_conv, add_assistant, out, need + 1, &need, &err) != SM_OK) {
        cli_error(a.cmd, "%s", out || err.message[0] ? err.message : "out of memory");
        goto done;
    }
write:
    if (fwrite(out, 1, need, stdout) != need || fflush(stdout) != 0) {
        cli_error(a.cmd, "cannot write the prompt to standard output");
        goto done;
    }
    rc = SM_EXIT_OK;
done:
    free(out);
    free(text);
    free(jinja_copy);
    free(bos_copy);
    free(eos_copy);
    free(tmpl_file);
#ifdef SM_HAVE_SERVER
    request_free(&req);
    free(wrapped);
#endif
    sm_json_messages_free(&msgs);
    if (model) sm_model_free(model);
    return rc;
#endif
}

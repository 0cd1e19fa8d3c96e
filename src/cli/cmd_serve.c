/* cmd_serve.c - `smallmind serve`: an OpenAI-compatible HTTP server. Parses
 * the options and hands them to src/server (built in when libmicrohttpd and
 * Jansson are present; otherwise this says how to get them). */
#include "args.h"
#include "commands.h"
#ifdef SM_HAVE_SERVER
#include "server/server.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void serve_usage(void) {
    printf("usage: smallmind serve [-m MODEL] [options]\n"
           "\n"
           "Serves a model over HTTP with OpenAI's API: POST /v1/chat/completions, /v1/responses,\n"
           "/v1/completions and /v1/embeddings (streaming with stream: true), GET /v1/models (and\n"
           "/v1/models/ID), /health and /metrics (Prometheus), and a chat page at /; llama-server's own POST\n"
           "/completion, /infill, /tokenize, /detokenize, /apply-template and GET /props. Up to --parallel requests\n"
           "run at once, their tokens batched through the model together; more wait in a queue.\n"
           "SIGTERM or SIGINT lets the requests in flight finish, then exits.\n"
           "\n"
           "  -m, --model FILE      model file (default: the built-in models/kjv-3m.gguf)\n"
           "  -z, --tokenizer FILE  tokenizer.bin for a llama2.c model\n"
           "      --alias NAME      the model's name in the API (default: the file's name)\n"
           "      --host ADDR       address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)\n"
           "      --port N          TCP port (default 8080; 0 = any free one, printed at start)\n"
           "      --parallel N      requests that run at once, each in its own slot (default 4)\n"
           "  -c, --ctx-size N      context of each slot in tokens (default: min(model context, 4096))\n"
           "  -ctk, --cache-type-k T   the cached keys' type: f32 (default), f16, bf16 (half) or q8_0\n"
           "  -ctv, --cache-type-v T   the cached values' type: the same choice (q8_0: 34 bytes per 32)\n"
           "      --api-key KEY     require Authorization: Bearer KEY (except for / and /health)\n"
           "      --max-queue N     requests that may wait for a slot before new ones get 429 (default 64)\n"
           "      --timeout S       close connections idle for S seconds (default 600)\n"
           "      --max-body BYTES  largest request body; larger ones get 413 (default 4194304)\n"
           "      --trace-requests N  keep the timing of the last N requests (queue, prompt, generation per\n"
           "                        slot) at GET /debug/trace, a Chrome trace for Perfetto (default 0: off)\n"
           "      --chat-template NAME  a built-in chat template instead of the model's (with --jinja:\n"
           "                            template text)\n"
           "      --chat-template-file FILE  a file holding the chat template's text\n"
           "      --jinja               run the chat template (the model's, or the one given) as the\n"
           "                            Jinja program it is, as llama-server's --jinja does, instead\n"
           "                            of recognising a built-in format in it; requests with\n"
           "                            \"tools\" need it (tool calls come back as \"tool_calls\")\n"
           "      --reasoning-format F  with --jinja, DeepSeek R1's and Command R7B's thinking:\n"
           "                            deepseek (default: apart, as \"reasoning_content\") or none\n"
           "                            (left in the reply's content), as llama-server's\n"
           "      --spm-infill          /infill puts the suffix before the prefix (Suffix-Prefix-Middle,\n"
           "                            which some models were trained on; default Prefix-Suffix-Middle)\n"
           CLI_LORA_USAGE
           "  -t, --threads N       threads of the forward passes (default: physical cores)\n"
           CLI_LLAMACPP_USAGE
           "  -np, -a, -to          llama-server's short names of --parallel, --alias, --timeout;\n"
           "                        --metrics and -cb / --cont-batching are accepted (both always\n"
           "                        on here)\n"
           "      --kernels NAME    force a kernel variant: scalar, avx2, avx512 (default: best here)\n"
           "\n"
           "example: smallmind serve -m stories260K.gguf --port 8080 --parallel 4\n"
           "         curl http://127.0.0.1:8080/v1/chat/completions -d '{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}'\n");
}

int cmd_serve(int argc, char **argv) {
    cli_args a = {"serve", argc, 0, argv, NULL, 0};
    const char *model = NULL, *tok = NULL, *host = "127.0.0.1", *alias = NULL, *key = NULL, *tmpl = NULL;
    const char *tmpl_file = NULL;
    int jinja = 0, reasoning_none = 0, spm_infill = 0;
    const char *kernels = NULL;
    long long port = 8080, parallel = 4, n_ctx = 0, max_queue = 64, timeout = 600, threads = 0;
    int type_k = SM_KV_F32, type_v = SM_KV_F32, kvopt;   /* -ctk, -ctv */
    long long max_body = 4 << 20, trace_requests = 0;
    cli_lora lora = {0};
    int lr;
    for (a.i = 0; a.i < argc; a.i++) {
        const char *v;
#define VALUE() do { if (!(v = arg_value(&a))) return SM_EXIT_USAGE; } while (0)
        if (arg_is(&a, "-h", "--help")) { serve_usage(); return SM_EXIT_OK; }
        else if ((lr = cli_lora_arg(&a, &lora)) != 0) { if (lr < 0) return SM_EXIT_USAGE; }
        else if ((lr = cli_llamacpp_arg(&a)) != 0) { if (lr < 0) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--metrics") || arg_is(&a, "-cb", "--cont-batching")) continue;
        else if (arg_is(&a, NULL, "--jinja")) jinja = 1;
        else if (arg_is(&a, NULL, "--spm-infill")) spm_infill = 1;
        else if (arg_is(&a, NULL, "--chat-template-file")) { VALUE(); tmpl_file = v; }
        else if (arg_is(&a, NULL, "--reasoning-format")) {
            VALUE();
            if (strcmp(v, "deepseek") && strcmp(v, "none")) {
                cli_error(a.cmd, "--reasoning-format takes deepseek or none, not '%s'", v);
                return SM_EXIT_USAGE;
            }
            reasoning_none = !strcmp(v, "none");
        }
        else if (arg_is(&a, "-m", "--model")) { VALUE(); model = v; }
        else if (arg_is(&a, "-z", "--tokenizer")) { VALUE(); tok = v; }
        else if (arg_is(&a, "-a", "--alias")) { VALUE(); alias = v; }
        else if (arg_is(&a, NULL, "--host")) { VALUE(); host = v; }
        else if (arg_is(&a, NULL, "--api-key")) { VALUE(); key = v; }
        else if (arg_is(&a, NULL, "--chat-template")) { VALUE(); tmpl = v; }
        else if (arg_is(&a, NULL, "--kernels")) { VALUE(); kernels = v; }
        else if (arg_is(&a, NULL, "--port")) { VALUE(); if (!parse_int(&a, "--port", v, 0, 65535, &port)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-np", "--parallel")) { VALUE(); if (!parse_int(&a, "--parallel", v, 1, 64, &parallel)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-c", "--ctx-size")) { VALUE(); if (!parse_int(&a, "-c", v, 0, 1 << 24, &n_ctx)) return SM_EXIT_USAGE; }
        else if ((kvopt = cli_kv_arg(&a, &type_k, &type_v)) != 0) { if (kvopt < 0) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--max-queue")) { VALUE(); if (!parse_int(&a, "--max-queue", v, 0, 1 << 20, &max_queue)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-to", "--timeout")) { VALUE(); if (!parse_int(&a, "--timeout", v, 1, 86400, &timeout)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--trace-requests")) { VALUE(); if (!parse_int(&a, "--trace-requests", v, 0, 1 << 20, &trace_requests)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--max-body")) { VALUE(); if (!parse_int(&a, "--max-body", v, 1024, 1ll << 30, &max_body)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-t", "--threads")) { VALUE(); if (!parse_int(&a, "-t", v, 1, 1024, &threads)) return SM_EXIT_USAGE; }
        else { cli_error(a.cmd, "unknown option '%s' (see smallmind serve --help)", argv[a.i]); return SM_EXIT_USAGE; }
#undef VALUE
    }
    if (key && !*key) { cli_error(a.cmd, "--api-key needs a non-empty key"); return SM_EXIT_USAGE; }
#ifndef SM_HAVE_SERVER
    (void)model, (void)tok, (void)host, (void)alias, (void)tmpl, (void)kernels, (void)lora, (void)jinja, (void)tmpl_file, (void)reasoning_none, (void)spm_infill;
    (void)port, (void)parallel, (void)n_ctx, (void)max_queue, (void)timeout, (void)threads, (void)max_body, (void)trace_requests, (void)type_k, (void)type_v;
    cli_error(a.cmd, "this smallmind was built without libmicrohttpd and Jansson, which the server needs: install "
                     "libmicrohttpd-dev and libjansson-dev (apt-get install libmicrohttpd-dev libjansson-dev) and "
                     "rebuild with make");
    return SM_EXIT_ERROR;
#else
    char def[4096];
    if (!model && !(model = cli_default_model(def, sizeof def))) {
        cli_error(a.cmd, "no model given and the built-in models/kjv-3m.gguf is not beside the command: pass -m MODEL");
        return SM_EXIT_USAGE;
    }
    char *file_text = NULL;
    if (tmpl_file) {
        size_t len;
        if (!(file_text = read_text_file(a.cmd, tmpl_file, 1u << 20, &len))) return SM_EXIT_USAGE;
        tmpl = file_text;
    }
    if (tmpl && !jinja) {
        sm_chat_template_info ti;
        sm_error err = {0};
        if (sm_chat_template_resolve(NULL, tmpl, &ti, &err) != SM_OK) {
            cli_error(a.cmd, "%s", err.message);
            free(file_text);
            return SM_EXIT_USAGE;
        }
    }
    server_options o = {0};
    o.model_path = model;
    o.tokenizer_path = tok;
    o.no_mmap = a.no_mmap;
    o.host = host;
    o.alias = alias;
    o.api_key = key;
    o.chat_template = tmpl;
    o.jinja = jinja;
    o.reasoning_none = reasoning_none;
    o.spm_infill = spm_infill;
    o.kernels = kernels;
    o.port = (int)port;
    o.parallel = (int)parallel;
    o.n_ctx = (int)n_ctx;
    o.type_k = type_k;
    o.type_v = type_v;
    o.max_queue = (int)max_queue;
    o.timeout = (int)timeout;
    o.threads = (int)threads;
    o.max_body = (size_t)max_body;
    o.trace_requests = (int)trace_requests;
    /* tests: hold the model back a while, to see the 503s of loading */
    const char *delay = getenv("SMALLMIND_SERVE_LOAD_DELAY_MS");
    o.load_delay_ms = delay ? atoi(delay) : 0;
    o.n_lora = lora.n;   /* loaded by the server, against its model */
    for (int i = 0; i < lora.n; i++) {
        o.lora_path[i] = lora.path[i];
        o.lora_scale[i] = lora.scale[i];
    }
    int rc = server_run(&o);
    free(file_text);
    return rc;
#endif
}

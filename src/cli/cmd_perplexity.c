/* cmd_perplexity.c - `smallmind perplexity -m MODEL -f TEXT`: how well a
 * model predicts a text (lower is better); what quantization costs. */
#include "args.h"
#include "commands.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void perplexity_usage(void) {
    printf("usage: smallmind perplexity -m MODEL -f TEXT [-c N] [--chunks N] [-z TOKENIZER] [-t N] [-ctk T] [-ctv T]\n"
           "                            [--lora FILE ...]\n"
           "\n"
           "llama.cpp's llama-perplexity measure, so the two print the same figure for a model and a\n"
           "text: the text is tokenized once (with the start token where the model's prompts get\n"
           "one), cut into chunks of -c tokens (default: min(model context, 512)), the first token\n"
           "of each chunk replaced by the start token, and each chunk's second half is scored\n"
           "(positions -c/2 to -c - 1, each predicted from all before it in its chunk). Prints\n"
           "exp(mean negative log-likelihood) with its standard error, and a running value per\n"
           "chunk. The text must be at least 2 x -c tokens; -c at least 3. --chunks N scores the\n"
           "first N chunks only (llama.cpp's option; default all). -ctk / -ctv f16 (bf16, q8_0) keep the\n"
           "cache's keys / values in F16 (f32 by default).\n"
           "\n" CLI_LORA_USAGE CLI_LLAMACPP_USAGE);
}

int cmd_perplexity(int argc, char **argv) {
    cli_args a = {"perplexity", argc, 0, argv, NULL, 0};
    const char *model_path = NULL, *tok = NULL, *file = NULL;
    long long n_ctx = 0, threads = 0, max_chunks = -1;
    int type_k = SM_KV_F32, type_v = SM_KV_F32, kvopt;   /* -ctk, -ctv */
    cli_lora lora = {0};
    int lr;
    for (a.i = 0; a.i < argc; a.i++) {
        const char *v;
#define VALUE() do { if (!(v = arg_value(&a))) return SM_EXIT_USAGE; } while (0)
        if (arg_is(&a, "-h", "--help")) { perplexity_usage(); return SM_EXIT_OK; }
        else if ((lr = cli_lora_arg(&a, &lora)) != 0) { if (lr < 0) return SM_EXIT_USAGE; }
        else if ((lr = cli_llamacpp_arg(&a)) != 0) { if (lr < 0) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-m", "--model")) { VALUE(); model_path = v; }
        else if (arg_is(&a, "-z", "--tokenizer")) { VALUE(); tok = v; }
        else if (arg_is(&a, "-f", "--file")) { VALUE(); file = v; }
        else if (arg_is(&a, "-c", "--ctx-size")) { VALUE(); if (!parse_int(&a, "-c", v, 2, 1 << 16, &n_ctx)) return SM_EXIT_USAGE; }
        else if ((kvopt = cli_kv_arg(&a, &type_k, &type_v)) != 0) { if (kvopt < 0) return SM_EXIT_USAGE; }
        else if (arg_is(&a, NULL, "--chunks")) { VALUE(); if (!parse_int(&a, "--chunks", v, 1, 1LL << 31, &max_chunks)) return SM_EXIT_USAGE; }
        else if (arg_is(&a, "-t", "--threads")) { VALUE(); if (!parse_int(&a, "-t", v, 1, 1024, &threads)) return SM_EXIT_USAGE; }
        else { cli_error(a.cmd, "unknown option '%s' (see smallmind perplexity --help)", argv[a.i]); return SM_EXIT_USAGE; }
#undef VALUE
    }
    if (!file) { cli_error(a.cmd, "give the text with -f FILE"); return SM_EXIT_USAGE; }
    size_t len;
    char *text = read_text_file(a.cmd, file, 256u << 20, &len);
    if (!text) return SM_EXIT_ERROR;
    sm_model *m = cli_load_model(&a, model_path, tok);
    if (!m) { free(text); return SM_EXIT_ERROR; }
    sm_model_info info;
    sm_model_get_info(m, &info);
    if (n_ctx == 0) n_ctx = info.n_ctx_train < 512 ? info.n_ctx_train : 512;
    /* a chunk's first half is context; positions n_ctx / 2 to n_ctx - 2 predict the tokens after them:
     * three positions score one token */
    if (n_ctx < 3) {
        cli_error(a.cmd, "a context of %lld scores no token: the first half of each chunk is context, and its "
                  "last position predicts nothing within it; use -c 3 or more", n_ctx);
        free(text);
        sm_model_free(m);
        return SM_EXIT_USAGE;
    }
    int rc = SM_EXIT_ERROR;
    sm_error err = {0};
    size_t n = 0;
    sm_token *toks = NULL;
    float *logits = NULL;
    sm_session *s = NULL;
    /* as llama.cpp tokenizes the text: once, with the start token where the model's prompts get one */
    int add_bos = info.add_bos && info.bos >= 0;
    sm_status st = sm_tokenize(m, text, len, add_bos, NULL, 0, &n, &err);
    if (st != SM_OK && st != SM_ERR_BUFFER_TOO_SMALL) { cli_error(a.cmd, "%s: %s", file, err.message); goto done; }
    toks = malloc((n + 1) * sizeof *toks);
    if (!toks || sm_tokenize(m, text, len, add_bos, toks, n, &n, &err)) { cli_error(a.cmd, "%s", err.message); goto done; }
    if ((long long)n < 2 * n_ctx) {
        cli_error(a.cmd, "%s is %zu tokens; -c %lld needs at least %lld (two chunks' worth): give a longer text or a "
                  "smaller -c", file, n, n_ctx, 2 * n_ctx);
        goto done;
    }
    sm_session_params sp = sm_session_default_params();
    sp.n_ctx = (int)n_ctx;
    sp.type_k = (sm_kv_type)type_k;
    sp.type_v = (sm_kv_type)type_v;
    sp.n_threads = (int)threads;
    if ((sp.lora_rank_max = cli_lora_load(a.cmd, &lora, m)) < 0) goto done;
    if (sm_session_create(m, &sp, &s, &err)) { cli_error(a.cmd, "%s", err.message); goto done; }
    if (cli_lora_set(a.cmd, &lora, s)) goto done;
    logits = malloc((size_t)n_ctx * (size_t)info.n_vocab * sizeof *logits);
    sm_token *buf = malloc((size_t)n_ctx * sizeof *buf);
    if (!logits || !buf) { free(buf); cli_error(a.cmd, "out of memory"); goto done; }
    double nll = 0, nll2 = 0;
    long count = 0;
    int n_chunks = (int)(n / (size_t)n_ctx), first = (int)n_ctx / 2;
    if (max_chunks > 0 && max_chunks < n_chunks) n_chunks = (int)max_chunks;
    for (int c = 0; c < n_chunks; c++) {
        memcpy(buf, toks + (size_t)c * n_ctx, (size_t)n_ctx * sizeof *buf);
        if (add_bos) buf[0] = info.bos;   /* every chunk starts as a prompt does */
        sm_session_reset(s);
        if (sm_session_eval_all(s, buf, (size_t)n_ctx, logits, &err)) { free(buf); cli_error(a.cmd, "%s", err.message); goto done; }
        for (int i = first; i < n_ctx - 1; i++) {   /* the second half: position i predicts token i + 1 */
            const float *l = logits + (size_t)i * info.n_vocab;
            double max = l[0], z = 0;
            for (int v = 1; v < info.n_vocab; v++) max = l[v] > max ? l[v] : max;
            for (int v = 0; v < info.n_vocab; v++) z += exp((double)l[v] - max);
            double e = -((double)l[buf[i + 1]] - max - log(z));
            nll += e;
            nll2 += e * e;
            count++;
        }
        fprintf(stderr, "[%d/%d] %.4f\n", c + 1, n_chunks, exp(nll / count));
    }
    free(buf);
    /* the standard error of the mean log-likelihood, carried to the perplexity (llama.cpp's "+/-") */
    double mean = nll / count, var = nll2 / count - mean * mean;
    double se = count > 1 && var > 0 ? sqrt(var / (count - 1)) * exp(mean) : 0;
    printf("perplexity: %.4f over %ld tokens (%d chunks of %lld, the second half of each scored; +/- %.5f)\n",
           exp(mean), count, n_chunks, n_ctx, se);
    rc = SM_EXIT_OK;
done:
    free(logits);
    free(toks);
    free(text);
    sm_session_free(s);
    cli_lora_free(&lora);
    sm_model_free(m);
    return rc;
}

/* cmd_train.c - `smallmind train`: train a GPT-2 or LLaMA model on a text
 * file, with a progress line on stderr. */
#include "args.h"
#include "commands.h"
#include "common.h"
#include "train_report.h"
#ifdef SM_HAVE_JANSSON
#include "json/sft.h"
#endif
#ifdef SM_HAVE_MPI
#include "mpi/mpi_train.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void train_usage(void) {
    printf("usage: smallmind train --data FILE --out MODEL.gguf [options]\n"
           "\n"
           "Trains a model on a UTF-8 text file and writes it as GGUF (smallmind run and\n"
           "llama.cpp load it), with its loss curve beside it (MODEL.loss.svg).\n"
           "\n"
           "data:\n"
           "  --data FILE            training text, or FILE.jsonl: chat examples, one\n"
           "                         {\"messages\": [{\"role\": ..., \"content\": ...}, ...]} per line, formatted\n"
           "                         with the chat template; the loss is on the assistant's replies only\n"
           "                         (needs --init or --resume for the tokenizer)\n"
           "  --val FILE             validation text or .jsonl (default: the last --val-split of --data)\n"
           "  --chat-template T      for .jsonl data: a template name (chatml, llama3, ...), its text\n"
           "                         or a file holding it (default: the model's, else chatml);\n"
           "                         written into the output (--chat-template-file FILE the same)\n"
           "  --jinja                run the template as the Jinja program it is (as llama.cpp's\n"
           "                         --jinja); a model template no built-in format recognises\n"
           "                         runs so without it too\n"
           "  --val-split F          default 0.1\n"
           "  --tokenizer T          char (a character vocabulary from the data, the default)\n"
           "                         or FROM.gguf (that model's vocabulary)\n"
           "model (ignored with --init or --resume, which bring their own):\n"
           "  --arch NAME            gpt2 (default), llama, qwen2 (q, k, v biases, NeoX RoPE), qwen3\n"
           "                         (per-head q/k norms), gemma, gemma2, gemma3 or phi3\n"
           "  --dim N --layers N --heads N --kv-heads N --ffn N --ctx N\n"
           "                         defaults 128, 4, 4, = heads, 4 x dim (gated FFNs: 8/3 x dim), 256\n"
           "  --init MODEL.gguf      start from this model's weights\n"
           "  --resume CKPT          continue from a checkpoint exactly where it stopped\n"
           "LoRA (with --init BASE.gguf, which may be quantized and stays frozen):\n"
           "  --lora-rank R          train a LoRA adapter of rank R; --out is the adapter, in\n"
           "                         llama.cpp's GGUF format (smallmind run --lora, llama-cli --lora)\n"
           "  --lora-alpha A         the adapter's scale is A / R (default A = R)\n"
           "  --lora-targets LIST    matrices to adapt: q,k,v,o,gate,up,down (default all of them)\n"
           "optimisation:\n"
           "  --batch N --seq N      sequences per step and their length (default 8, 128)\n"
           "  --accum N              micro-batches per optimizer step (default 1)\n"
           "  --steps N              optimizer steps (default 1000)\n"
           "  --lr F --min-lr F      peak and final learning rate (default 1e-3, 1e-4)\n"
           "  --warmup N             linear warm-up steps, then cosine decay (default 50)\n"
           "  --weight-decay F       AdamW decoupled weight decay on matrices (default 0.1)\n"
           "  --grad-clip F          global gradient norm limit, 0 = off (default 1.0)\n"
           "  --seed N               initialisation seed (default 1337)\n"
           "  -t, --threads N        threads (default: physical cores; results do not depend on it)\n"
           "  --grad-checkpointing   keep only each layer's input and recompute the rest in the\n"
           "                         backward pass: same result, less memory (the saving is printed)\n"
           "  --bf16                 mixed precision: the weight matrices' products round both\n"
           "                         operands to BF16 and sum in F32 (parameters, gradients and the\n"
           "                         rest stay F32; with LoRA those through the frozen base); faster\n"
           "                         on CPUs with AVX512_BF16, which it needs\n"
           "progress and files:\n"
           "  --eval-every N         validation loss every N steps (default 100)\n"
           "  --checkpoint-every N   write MODEL.gguf.ckpt (or --checkpoint FILE) every N steps\n"
           "  --log FILE.csv         step, loss, val loss, lr, gradient norm, tokens/s\n"
           "profiling:\n"
           "  --profile              time forward, backward and optimizer per layer and operation\n"
           "                         (every other step; the rest measure the profiler's cost) and\n"
           "                         write MODEL.profile.md and .json and MODEL.roofline.svg\n"
           "  --trace FILE.json      (with --profile) a timeline of the timed steps, every thread,\n"
           "                         for Perfetto or chrome://tracing\n"
           "  --folded FILE          (with --profile) folded stacks;  --flame FILE.svg  a flame graph\n"
           "\n"
           "Under mpirun (a smallmind built with Open MPI: `smallmind version` says mpi: yes) every\n"
           "process takes its share of each --batch and the gradients are summed; rank 0 reports and\n"
           "writes the files (docs/DISTRIBUTED.md): mpirun -np 2 smallmind train ... -t 1\n"
           "\n"
           "example: smallmind train --data tiny.txt --out tiny.gguf --steps 200 --dim 64 --layers 2\n");
}

/* Whether the progress line is open (no newline after it yet). */
typedef struct train_view {
    int mid_line;
} train_view;

static void on_notice(void *user, const char *message) {
    train_view *v = user;
    if (v->mid_line) fputc('\n', stderr);
    v->mid_line = 0;
    fprintf(stderr, "smallmind train: %s\n", message);
}

static void on_progress(void *user, const sm_train_progress *p) {
    train_view *v = user;
    if (p->step == 1)
        fprintf(stderr, "smallmind train: %.2f M parameters, vocabulary %d, activations %.1f MiB\n",
                (double)p->n_params / 1e6, p->vocab, (double)p->activation_bytes / 1048576.0);
    if (p->step == 1 && p->activation_bytes < p->activation_bytes_full)
        fprintf(stderr, "smallmind train: gradient checkpointing saves %.1f MiB (%.1f MiB without it)\n",
                (double)(p->activation_bytes_full - p->activation_bytes) / 1048576.0,
                (double)p->activation_bytes_full / 1048576.0);
    double eta = p->step ? p->elapsed_seconds / p->step * (p->steps - p->step) : 0;
    char val[32] = "-";
    if (p->val_loss >= 0) snprintf(val, sizeof val, "%.4f", p->val_loss);
    char comm[48] = "";
    if (p->n_ranks > 1) snprintf(comm, sizeof comm, " | %d ranks, allreduce %.1f ms", p->n_ranks, p->comm_seconds * 1e3);
    fprintf(stderr, "\rstep %d/%d | loss %.4f | val %s | lr %.2e | %.0f tok/s%s | ETA %.0fs%s   ", p->step, p->steps,
            p->loss, val, p->lr, p->tokens_per_second, comm, eta, p->checkpointed ? " | checkpoint" : "");
    v->mid_line = 1;
    if (p->step == p->steps) {
        fputc('\n', stderr);
        v->mid_line = 0;
    }
}

static int is_jsonl(const char *path) {
    size_t n = path ? strlen(path) : 0;
    return n > 6 && !strcmp(path + n - 6, ".jsonl");
}

#ifdef SM_HAVE_JANSSON
/* The Jinja text written for chatml (the common ChatML template), which
 * sm_chat_template_detect and llama.cpp recognise; other names are
 * written as the name, which both accept as well. */
static const char *template_text(const char *name) { return !strcmp(name, "chatml") ? sm_chat_chatml_jinja() : name; }

/* --data FILE.jsonl, and --val when it is one, in the template tmpl (as
 * sm_json_sft_load takes it) */
static sm_status load_data_and_val(const sm_train_params *p, const sm_model *model, const char *tmpl, int jinja,
                                   sm_json_sft *data, sm_json_sft *val, sm_error *err) {
    sm_status st = sm_json_sft_load(p->data, model, tmpl, jinja, data, err);
    if (!st && is_jsonl(p->val)) st = sm_json_sft_load(p->val, model, tmpl, jinja, val, err);
    return st;
}

/* Chat examples: --data (and --val) FILE.jsonl tokenized with the model's
 * tokenizer and the template: a built-in format, or with --jinja the
 * template run as Jinja. A model template that none of the built-in formats
 * recognise is run as Jinja without --jinja too (it is the model's format);
 * if it cannot run, chatml serves, with a warning. *owned: template text the
 * caller frees after training (p->chat_template may point into it). */
static int load_examples(cli_args *a, sm_train_params *p, const char *tmpl_arg, int jinja, sm_model **model,
                         sm_json_sft *data, sm_json_sft *val, char **owned) {
    const char *from = p->lora_rank || !p->resume ? p->init : p->resume;
    if (!from) {
        cli_error(a->cmd, "chat examples (.jsonl) need a model to start from: --init MODEL.gguf");
        return SM_EXIT_USAGE;
    }
    sm_model_params mp = sm_model_default_params();
    mp.skip_repack = 1;
    sm_error err = {0};
    sm_chat_template_info info;
    char *tmpl = NULL, *jtext = NULL;
    int asked = jinja;   /* --jinja given: a template that fails is an error */
    if (tmpl_arg && !(tmpl = cli_template_value(a->cmd, tmpl_arg))) return SM_EXIT_ERROR;
    *owned = tmpl;
    if (sm_model_load(from, &mp, model, &err) || sm_chat_template_resolve(*model, NULL, &info, &err)) {
        cli_error(a->cmd, "%s", err.message);
        return err.status == SM_ERR_INVALID_ARG ? SM_EXIT_USAGE : SM_EXIT_ERROR;
    }
    const char *own_text;
    size_t own_len = 0;
    int unrecognised = !tmpl && !strcmp(info.origin, "default") &&
                       sm_model_meta_str(*model, "tokenizer.chat_template", &own_text, &own_len) == 1 && own_len > 0;
    if (jinja || unrecognised) {
        if (sm_chat_jinja_template(*model, tmpl, &jtext, &err) != SM_OK && jinja) {
            cli_error(a->cmd, "%s", err.message);
            return SM_EXIT_ERROR;
        }
        if (jtext) {   /* else a built-in name, or no template: the built-in formats serve */
            if (!jinja)
                fprintf(stderr, "smallmind train: the model's chat template is not one of the built-in formats; "
                                "running it as Jinja (as --jinja)\n");
            info.name = "Jinja", info.warning = NULL;
        } else if (unrecognised) {
            info.warning = "the model's chat template is not one of the built-in formats and cannot run as Jinja "
                           "here; using chatml, which may not suit this model";
        }
        jinja = jtext != NULL;
    }
    if (!jinja && tmpl && sm_chat_template_resolve(*model, tmpl, &info, &err)) {
        int looks = strstr(tmpl, "{%") || strstr(tmpl, "{{");
        cli_error(a->cmd, "%s%s", err.message, looks ? "; to run it as the Jinja program it is, add --jinja" : "");
        return err.status == SM_ERR_INVALID_ARG ? SM_EXIT_USAGE : SM_EXIT_ERROR;
    }
    const char *use = jinja ? jtext : tmpl;
    sm_status st = load_data_and_val(p, *model, use, jinja, data, val, &err);
    static char why[600];
    if (st && unrecognised && !asked && jinja && (st == SM_ERR_UNSUPPORTED || st == SM_ERR_FORMAT)) {
        /* the model's own template, run unasked, fails on these conversations: chatml, as before --jinja */
        snprintf(why, sizeof why, "the model's chat template, run as Jinja, fails on these examples (%.400s); using "
                 "chatml, which may not suit this model", err.message);
        sm_json_sft_free(data);
        sm_json_sft_free(val);
        free(jtext);
        jtext = NULL, jinja = 0, use = NULL;
        info.name = "chatml", info.origin = "default", info.warning = why;
        st = load_data_and_val(p, *model, "chatml", 0, data, val, &err);
    }
    if (st) {
        cli_error(a->cmd, "%s", err.message);
        free(jtext);
        return err.status == SM_ERR_INVALID_ARG ? SM_EXIT_USAGE : SM_EXIT_ERROR;
    }
    if (info.warning) fprintf(stderr, "smallmind train: warning: %s\n", info.warning);
    /* the output says how it was trained: the template given, or the one used when the model has none */
    if (jinja) {
        if (tmpl) p->chat_template = tmpl;   /* the Jinja text given (the model's own stays otherwise) */
        free(jtext);
    } else if (tmpl || strcmp(info.origin, "model")) {
        p->chat_template = template_text(info.name);
    }
    p->examples = &data->ex;
    if (is_jsonl(p->val)) p->val_examples = &val->ex;
    fprintf(stderr, "smallmind train: %zu examples (%s), %zu tokens, %zu of them in replies\n", data->ex.n, info.name,
            data->ex.offsets[data->ex.n], data->n_masked);
    return SM_EXIT_OK;
}
#endif

static int train_main(int argc, char **argv, int rank, int n_ranks);

/* Under mpirun (when built with MPI) every process runs the same command
 * and takes its share of each batch; rank 0 reports and writes the files. */
int cmd_train(int argc, char **argv) {
    int rank = 0, n_ranks = 1;
#ifdef SM_HAVE_MPI
    int mpi = sm_mpi_start(NULL, NULL, &rank, &n_ranks);
    int rc = train_main(argc, argv, rank, n_ranks);
    if (mpi) sm_mpi_finish(rc != SM_EXIT_OK);
    return rc;
#else
    return train_main(argc, argv, rank, n_ranks);
#endif
}

static int train_main(int argc, char **argv, int rank, int n_ranks) {
    cli_args a = {"train", argc, 0, argv, NULL, 0};
    sm_train_params p = sm_train_default_params();
    const char *chat_template = NULL;
    char *template_owned = NULL;
    int jinja = 0;
    sm_train_profile_params pp = {NULL, 0};
    const char *folded = NULL, *flame = NULL;
    int profile = 0;
    long long v;
    double f;
    for (a.i = 0; a.i < argc; a.i++) {
        const char *s;
#define VALUE() do { if (!(s = arg_value(&a))) return SM_EXIT_USAGE; } while (0)
#define INT(flag, lo, hi, dst) do { VALUE(); if (!parse_int(&a, flag, s, lo, hi, &v)) return SM_EXIT_USAGE; dst = (int)v; } while (0)
#define FLT(flag, lo, hi, dst) do { VALUE(); if (!parse_float(&a, flag, s, lo, hi, &f)) return SM_EXIT_USAGE; dst = (float)f; } while (0)
        if (arg_is(&a, "-h", "--help")) { train_usage(); return SM_EXIT_OK; }
        else if (arg_is(&a, NULL, "--data")) { VALUE(); p.data = s; }
        else if (arg_is(&a, NULL, "--val")) { VALUE(); p.val = s; }
        else if (arg_is(&a, NULL, "--val-split")) FLT("--val-split", 0.0, 0.9, p.val_split);
        else if (arg_is(&a, "-o", "--out")) { VALUE(); p.out = s; }
        else if (arg_is(&a, NULL, "--arch")) { VALUE(); p.arch = s; }   /* checked by the library, first */
        else if (arg_is(&a, NULL, "--dim")) INT("--dim", 1, 65536, p.dim);
        else if (arg_is(&a, NULL, "--layers")) INT("--layers", 1, 256, p.layers);
        else if (arg_is(&a, NULL, "--heads")) INT("--heads", 1, 4096, p.heads);
        else if (arg_is(&a, NULL, "--kv-heads")) INT("--kv-heads", 1, 4096, p.kv_heads);
        else if (arg_is(&a, NULL, "--ffn")) INT("--ffn", 1, 1 << 20, p.ffn);
        else if (arg_is(&a, NULL, "--ctx")) INT("--ctx", 2, 1 << 16, p.ctx);
        else if (arg_is(&a, NULL, "--tokenizer")) { VALUE(); p.tokenizer = s; }
        else if (arg_is(&a, NULL, "--batch")) INT("--batch", 1, 4096, p.batch);
        else if (arg_is(&a, NULL, "--seq")) INT("--seq", 2, 1 << 16, p.seq);
        else if (arg_is(&a, NULL, "--steps")) INT("--steps", 1, 1 << 24, p.steps);
        else if (arg_is(&a, NULL, "--accum")) INT("--accum", 1, 4096, p.accum);
        else if (arg_is(&a, NULL, "--lr")) FLT("--lr", 1e-9, 10.0, p.lr);
        else if (arg_is(&a, NULL, "--min-lr")) FLT("--min-lr", 0.0, 10.0, p.min_lr);
        else if (arg_is(&a, NULL, "--warmup")) INT("--warmup", 0, 1 << 24, p.warmup);
        else if (arg_is(&a, NULL, "--weight-decay")) FLT("--weight-decay", 0.0, 10.0, p.weight_decay);
        else if (arg_is(&a, NULL, "--grad-clip")) FLT("--grad-clip", 0.0, 1e6, p.grad_clip);
        else if (arg_is(&a, "-s", "--seed")) { VALUE(); if (!parse_int(&a, "--seed", s, 0, INT64_MAX, &v)) return SM_EXIT_USAGE; p.seed = (uint64_t)v; }
        else if (arg_is(&a, "-t", "--threads")) INT("-t", 1, 1024, p.threads);
        else if (arg_is(&a, NULL, "--eval-every")) INT("--eval-every", 0, 1 << 24, p.eval_every);
        else if (arg_is(&a, NULL, "--checkpoint-every")) INT("--checkpoint-every", 0, 1 << 24, p.checkpoint_every);
        else if (arg_is(&a, NULL, "--checkpoint")) { VALUE(); p.checkpoint = s; }
        else if (arg_is(&a, NULL, "--resume")) { VALUE(); p.resume = s; }
        else if (arg_is(&a, NULL, "--init")) { VALUE(); p.init = s; }
        else if (arg_is(&a, NULL, "--log")) { VALUE(); p.log_csv = s; }
        else if (arg_is(&a, NULL, "--grad-checkpointing")) p.grad_checkpointing = 1;
        else if (arg_is(&a, NULL, "--bf16")) p.bf16 = 1;
        else if (arg_is(&a, NULL, "--lora-rank")) INT("--lora-rank", 1, 4096, p.lora_rank);
        else if (arg_is(&a, NULL, "--lora-alpha")) FLT("--lora-alpha", 1e-6, 1e6, p.lora_alpha);
        else if (arg_is(&a, NULL, "--lora-targets")) { VALUE(); p.lora_targets = s; }
        else if (arg_is(&a, NULL, "--chat-template") || arg_is(&a, NULL, "--chat-template-file")) { VALUE(); chat_template = s; }
        else if (arg_is(&a, NULL, "--jinja")) jinja = 1;
        else if (arg_is(&a, NULL, "--profile")) profile = 1;
        else if (arg_is(&a, NULL, "--trace")) { VALUE(); pp.trace_path = s; }
        else if (arg_is(&a, NULL, "--folded")) { VALUE(); folded = s; }
        else if (arg_is(&a, NULL, "--flame")) { VALUE(); flame = s; }
        else { cli_error(a.cmd, "unknown option '%s' (see smallmind train --help)", argv[a.i]); return SM_EXIT_USAGE; }
#undef FLT
#undef INT
#undef VALUE
    }
    if (!p.data || !p.out) { cli_error(a.cmd, "give the text with --data FILE and the result with --out MODEL.gguf"); return SM_EXIT_USAGE; }
    if (p.resume && p.init && !p.lora_rank) {
        cli_error(a.cmd, "--resume and --init exclude each other (except with --lora-rank: --init names the base)");
        return SM_EXIT_USAGE;
    }
    if (p.lora_rank && !p.init) { cli_error(a.cmd, "--lora-rank needs the base model: --init BASE.gguf"); return SM_EXIT_USAGE; }
    if (is_jsonl(p.val) && !is_jsonl(p.data)) { cli_error(a.cmd, "--val FILE.jsonl goes with --data FILE.jsonl"); return SM_EXIT_USAGE; }
    if ((pp.trace_path || folded || flame) && !profile) {
        cli_error(a.cmd, "--trace, --folded and --flame come with --profile");
        return SM_EXIT_USAGE;
    }
    if (rank != 0) pp.trace_path = NULL;   /* under MPI the timeline is rank 0's */
    /* the profile's files are checked before step 1, as sm_train checks its own */
    if (profile && rank == 0 &&
        (!train_report_prepare(a.cmd, p.out, folded, flame) || (pp.trace_path && !cli_prepare_output(a.cmd, pp.trace_path))))
        return SM_EXIT_ERROR;
    train_view view = {0};
    p.notice = on_notice;
    sm_model *tok_model = NULL;
    sm_train_profile *tp = NULL;
    int rc = SM_EXIT_OK;
#ifdef SM_HAVE_JANSSON
    sm_json_sft data = {0}, val = {0};
    if (is_jsonl(p.data) && (rc = load_examples(&a, &p, chat_template, jinja, &tok_model, &data, &val, &template_owned)) != SM_EXIT_OK)
        goto done;
#else
    if (is_jsonl(p.data)) { cli_error(a.cmd, "this smallmind was built without Jansson, so it cannot read .jsonl"); return SM_EXIT_ERROR; }
#endif
    if ((chat_template || jinja) && !p.examples) {
        cli_error(a.cmd, "--chat-template and --jinja go with chat examples (--data FILE.jsonl)");
        rc = SM_EXIT_USAGE;
        goto done;
    }
    sm_error err = {0};
    uint64_t hash = 0;
    p.rank = rank;
    p.n_ranks = n_ranks;
#ifdef SM_HAVE_MPI
    sm_mpi_stats mpi_stats = {0};
    p.allreduce = sm_mpi_allreduce;
    p.comm_user = &mpi_stats;
    p.param_hash = &hash;
#endif
    sm_status st = profile ? sm_train_profiled(&p, &pp, on_progress, &view, &tp, &err)
                           : sm_train(&p, on_progress, &view, &err);
    if (st != SM_OK) {
        if (view.mid_line) fputc('\n', stderr);
        if (n_ranks > 1) cli_error(a.cmd, "rank %d: %s", rank, err.message);
        else cli_error(a.cmd, "%s", err.message);
        rc = err.status == SM_ERR_INVALID_ARG ? SM_EXIT_USAGE : SM_EXIT_ERROR;
        goto done;
    }
    if (n_ranks > 1)   /* each rank's parameters, which must agree */
        fprintf(stderr, "smallmind train: rank %d of %d: parameters fnv1a %016llx\n", rank, n_ranks,
                (unsigned long long)hash);
#ifdef SM_HAVE_MPI
    if (n_ranks > 1 && rank == 0 && mpi_stats.calls)
        fprintf(stderr,
                "smallmind train: gradient all-reduce of %.1f MB: %.2f ms per step in MPI_Allreduce, %.2f ms before it "
                "waiting for the slowest rank\n",
                mpi_stats.floats * 4e-6, mpi_stats.transfer_seconds * 1e3 / mpi_stats.calls,
                mpi_stats.wait_seconds * 1e3 / mpi_stats.calls);
#endif
    if (rank == 0) fprintf(stderr, "smallmind train: wrote %s\n", p.out);
    if (tp && rank == 0 && train_report_write(a.cmd, &p, tp, folded, flame) != 0) rc = SM_EXIT_ERROR;
done:
    sm_train_profile_free(tp);
#ifdef SM_HAVE_JANSSON
    sm_json_sft_free(&data);
    sm_json_sft_free(&val);
#endif
    sm_model_free(tok_model);
    free(template_owned);
    return rc;
}

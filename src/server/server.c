/* server.c - `smallmind serve` from start to exit: the HTTP daemon starts
 * first (so /health can answer 503 while the model loads), a loader thread
 * loads the model and makes the sessions, then the scheduler runs. The
 * main thread waits for a signal: SIGTERM or SIGINT stops new connections
 * and new requests (503), lets every accepted request finish and its
 * answer go out, then exits 0; a second one exits at once. */
#include "server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The one thing the server reads about the vocabulary up front: the
 * longest token text, so that prompts too long to fit can be refused
 * before they are tokenized. */
static size_t longest_piece(const sm_model *m, int n_vocab) {
    size_t best = 1;
    for (int t = 0; t < n_vocab; t++) {
        const char *p;
        int n = sm_token_text(m, t, &p);
        if (n > 0 && (size_t)n > best) best = (size_t)n;
    }
    return best;
}

/* The tokens that end a reply: the vocabulary's end of text, and the chat
 * template's end of turn when it is one special token. */
static void find_eog(server *S) {
    S->n_eog = 0;
    if (S->info.eos >= 0) S->eog[S->n_eog++] = S->info.eos;
    const char *eot;
    sm_chat_template_info ti;
    if (S->jinja) eot = sm_chat_template_eot(S->jinja);   /* the built-in format it resembles, if any */
    else eot = sm_chat_template_resolve(S->model, S->tmpl, &ti, NULL) == SM_OK ? ti.eot : NULL;
    if (!eot) return;
    sm_token t[4];
    size_t n = 0;
    const char *piece;
    if (sm_tokenize_ex(S->model, eot, strlen(eot), SM_TOKENIZE_PARSE_SPECIAL, t, 4, &n, NULL) == SM_OK &&
        n == 1 && sm_token_piece(S->model, t[0], &piece) == 0 && t[0] != S->info.eos)
        S->eog[S->n_eog++] = t[0];
}

/* The adapters on a session: the workspace runs the batches' products,
 * the slots hold their caches (set on both, so no path runs without them). */
static int set_adapters(server *S, sm_session *s) {
    for (int i = 0; i < S->opt.n_lora; i++) {
        sm_error err = {0};
        if (S->opt.lora_scale[i] != 0.0f && sm_session_set_adapter(s, S->lora[i], S->opt.lora_scale[i], &err) != SM_OK) {
            snprintf(S->load_error, sizeof S->load_error, "%s: %s", S->opt.lora_path[i], err.message);
            return -1;
        }
    }
    return 0;
}

static int load(server *S) {
    sm_error err = {0};
    sm_model_params mp = sm_model_default_params();
    mp.tokenizer_path = S->opt.tokenizer_path;
    mp.no_mmap = S->opt.no_mmap;
    if (sm_model_load(S->opt.model_path, &mp, &S->model, &err) != SM_OK) {
        snprintf(S->load_error, sizeof S->load_error, "%s", err.message);
        return -1;
    }
    sm_model_get_info(S->model, &S->info);
    if (!S->info.has_weights) {
        snprintf(S->load_error, sizeof S->load_error, "%s holds only a vocabulary; it cannot generate",
                 S->opt.model_path);
        return -1;
    }
    if (S->opt.n_ctx == 0) S->opt.n_ctx = S->info.n_ctx_train < 4096 ? S->info.n_ctx_train : 4096;
    sm_session_params sp = sm_session_default_params();
    sp.n_ctx = S->opt.n_ctx;
    sp.kernels = S->opt.kernels;
    sp.type_k = (sm_kv_type)S->opt.type_k;
    sp.type_v = (sm_kv_type)S->opt.type_v;
    for (int i = 0; i < S->opt.n_lora; i++) {
        if (sm_adapter_load(S->model, S->opt.lora_path[i], &S->lora[i], &err) != SM_OK) {
            snprintf(S->load_error, sizeof S->load_error, "%s", err.message);
            return -1;
        }
        sm_adapter_info ai;
        sm_adapter_get_info(S->lora[i], &ai);
        if (ai.max_rank > sp.lora_rank_max) sp.lora_rank_max = ai.max_rank;
    }
    /* the workspace runs every batch on -t threads; the slots only hold
     * their KV caches and tokens, so they need no threads of their own */
    sp.n_threads = S->opt.threads;
    if (sm_session_create(S->model, &sp, &S->ws, &err) != SM_OK) {
        snprintf(S->load_error, sizeof S->load_error, "%s", err.message);
        return -1;
    }
    S->opt.n_ctx = sm_session_n_ctx(S->ws);
    if (set_adapters(S, S->ws) != 0) return -1;
    sp.n_threads = 1;
    S->slots = calloc((size_t)S->opt.parallel, sizeof *S->slots);
    if (!S->slots) {
        snprintf(S->load_error, sizeof S->load_error, "out of memory");
        return -1;
    }
    for (int i = 0; i < S->opt.parallel; i++) {
        if (sm_session_create(S->model, &sp, &S->slots[i].s, &err) != SM_OK) {
            snprintf(S->load_error, sizeof S->load_error, "slot %d: %s", i, err.message);
            return -1;
        }
        S->n_slots++;
        if (set_adapters(S, S->slots[i].s) != 0) return -1;
    }
    if (S->opt.jinja && sm_chat_jinja_template(S->model, S->tmpl, &S->jinja, &err) != SM_OK) {
        snprintf(S->load_error, sizeof S->load_error, "%s", err.message);
        return -1;
    }
    sm_chat_template_info ti;
    if (!S->jinja && sm_chat_template_resolve(S->model, S->tmpl, &ti, &err) != SM_OK) {
        snprintf(S->load_error, sizeof S->load_error, "%s", err.message);
        return -1;
    }
    if (!S->jinja && ti.warning) fprintf(stderr, "smallmind serve: warning: %s\n", ti.warning);
    find_eog(S);
    S->max_piece = longest_piece(S->model, S->info.n_vocab);
    if (sm_grammar_vocab_for_model(S->model, &S->gvocab, &err) != SM_OK) {
        snprintf(S->load_error, sizeof S->load_error, "%s", err.message);
        return -1;
    }
    return 0;
}

typedef struct loader_args {
    server *S;
    pthread_t main_thread;
} loader_args;

static void *loader(void *arg) {
    loader_args *a = arg;
    server *S = a->S;
    if (S->opt.load_delay_ms > 0) {
        struct timespec ts = {S->opt.load_delay_ms / 1000, (long)(S->opt.load_delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    double t0 = now_seconds();
    int rc = load(S);
    pthread_mutex_lock(&S->mu);
    if (rc == 0 && sched_start(S) != 0) {
        snprintf(S->load_error, sizeof S->load_error, "cannot start the scheduler thread");
        rc = -1;
    }
    if (rc == 0) S->loaded = 1;
    else S->load_failed = 1;
    pthread_mutex_unlock(&S->mu);
    if (rc == 0) {
        fprintf(stderr, "smallmind serve: model %s loaded in %.2f s: %d slots of %d tokens, %d threads\n", S->model_id,
                now_seconds() - t0, S->n_slots, S->opt.n_ctx, sm_session_threads(S->ws));
    } else {
        pthread_kill(a->main_thread, SIGUSR1);
    }
    return NULL;
}

static void free_server(server *S) {
    free(S->traces);
    for (int i = 0; i < S->n_slots; i++) {
        sm_session_free(S->slots[i].s);
        text_free(&S->slots[i].txt);
    }
    free(S->slots);
    sm_session_free(S->ws);
    for (int i = 0; i < S->opt.n_lora; i++) sm_adapter_free(S->lora[i]);
    sm_grammar_vocab_free(S->gvocab);
    free(S->jinja);
    sm_model_free(S->model);
    pthread_mutex_destroy(&S->mu);
    pthread_cond_destroy(&S->wake);
    pthread_cond_destroy(&S->idle);
}

/* Waits for every accepted request to be answered; a second signal, or
 * no progress for --timeout seconds, gives up. Returns 0 when all done. */
static int drain(server *S, const sigset_t *sigs) {
    double last_change = now_seconds();
    pthread_mutex_lock(&S->mu);
    int last_jobs = S->n_jobs;
    while (S->n_jobs > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&S->idle, &S->mu, &ts);
        if (S->n_jobs != last_jobs) {
            last_jobs = S->n_jobs;
            last_change = now_seconds();
        }
        struct timespec zero = {0, 0};
        pthread_mutex_unlock(&S->mu);
        int sig = sigtimedwait(sigs, NULL, &zero);
        if (sig == SIGTERM || sig == SIGINT) {
            fprintf(stderr, "smallmind serve: second signal: exiting without waiting\n");
            return -1;
        }
        if (now_seconds() - last_change > (S->opt.timeout > 10 ? S->opt.timeout : 10)) {
            fprintf(stderr, "smallmind serve: requests made no progress for %d s: exiting\n", S->opt.timeout);
            return -1;
        }
        pthread_mutex_lock(&S->mu);
    }
    pthread_mutex_unlock(&S->mu);
    return 0;
}

int server_run(const server_options *o) {
    server *S = calloc(1, sizeof *S);
    if (!S) return 1;
    S->opt = *o;
    S->listen_fd = -1;
    S->tmpl = o->chat_template;
    const char *slash = strrchr(o->model_path, '/');
    snprintf(S->model_id, sizeof S->model_id, "%s", o->alias ? o->alias : slash ? slash + 1 : o->model_path);
    pthread_mutex_init(&S->mu, NULL);
    pthread_cond_init(&S->wake, NULL);
    pthread_cond_init(&S->idle, NULL);
    metrics_init(&S->m);
    S->t_origin = now_seconds();
    if (o->trace_requests > 0 && !(S->traces = calloc((size_t)o->trace_requests, sizeof *S->traces))) {
        fprintf(stderr, "smallmind serve: error: out of memory for --trace-requests %d\n", o->trace_requests);
        free(S);
        return 1;
    }

    /* every thread started from here on leaves these signals to sigwait */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (http_start(S) != 0) {
        free_server(S);
        free(S);
        return 1;
    }
    fprintf(stderr, "smallmind serve: listening on http://%s%s%s:%d/ (loading %s)\n",
            strchr(o->host, ':') ? "[" : "", o->host, strchr(o->host, ':') ? "]" : "", S->opt.port, o->model_path);
    loader_args la = {S, pthread_self()};
    pthread_t lt;
    if (pthread_create(&lt, NULL, loader, &la) != 0) {
        fprintf(stderr, "smallmind serve: error: cannot start the loader thread\n");
        http_stop(S);
        free_server(S);
        free(S);
        return 1;
    }
    int status = 0, sig = 0;
    for (;;) {
        if (sigwait(&sigs, &sig) != 0) continue;
        if (sig == SIGUSR1) {
            pthread_mutex_lock(&S->mu);
            int failed = S->load_failed;
            pthread_mutex_unlock(&S->mu);
            if (!failed) continue;
            fprintf(stderr, "smallmind serve: error: %s\n", S->load_error);
            status = 1;
        }
        break;
    }
    pthread_join(lt, NULL);
    if (status == 0) {
        /* graceful: nothing new, everything accepted answered */
        fprintf(stderr, "smallmind serve: %s: finishing the requests in flight\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        pthread_mutex_lock(&S->mu);
        S->stopping = 1;
        pthread_mutex_unlock(&S->mu);
        http_quiesce(S);
        if (drain(S, &sigs) != 0) _exit(1);
    }
    sched_stop(S);
    http_stop(S);
    free_server(S);
    free(S);
    if (status == 0) fprintf(stderr, "smallmind serve: stopped\n");
    return status;
}

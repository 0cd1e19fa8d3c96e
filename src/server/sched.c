/* sched.c - the slots, the queue and the scheduler thread.
 *
 * Each step the scheduler builds one batch for sm_session_eval_batch: the
 * next token of every generating slot, then prompt tokens of the slots
 * still reading theirs, as many as fit in the batch (prompts are chunked:
 * a long prompt is read over several steps while the other slots keep
 * generating). New requests take a free slot between steps; the free slot
 * whose tokens share the longest prefix with the new prompt is taken and
 * only the rest is evaluated (sm_session_truncate). A slot whose client
 * has not read its text yet (JOB_TEXT_CAP) sits out the steps until it
 * has; one whose client left is freed at the next step. Embedding requests
 * run between steps on the workspace session.
 *
 * Numerics: a batch gives each session exactly what it would get alone
 * (sm_session_eval_batch), and every prompt is read in chunks of at least
 * two tokens (a lone prompt token would take the one-token products), so a
 * request's tokens do not depend on what runs beside it.
 *
 * response_format: a request with a grammar samples through
 * sm_session_sample_grammar with its own matcher (request.c made it) over
 * the server's one grammar vocabulary; an end token comes only where the
 * output is complete, and the reply ends when the grammar allows nothing
 * more. */
#include "server.h"

#include <math.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

job *job_new(enum req_kind kind) {
    job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->kind = kind;
    j->refs = 1;
    j->state = JOB_QUEUED;
    j->slot_index = -1;
    return j;
}

void job_release(server *S, job *j) {
    if (!j || --j->refs > 0) return;
    request_free(&j->req);
    free(j->prompt);
    for (int i = 0; i < j->n_in; i++) free(j->inputs[i]);
    free(j->inputs);
    free(j->n_inputs);
    free(j->text);
    free(j->embd);
    free(j->lp);
    free(j->lp_top_tok);
    free(j->lp_top);
    free(j);
    S->n_jobs--;
    pthread_cond_broadcast(&S->idle);
}

void sched_poke(server *S) { pthread_cond_signal(&S->wake); }

int sched_submit(server *S, job *j) {
    if (S->stopping) return 503;
    /* those queued beyond the free slots wait; at most max_queue of them */
    if (S->queue_len - (S->n_slots - S->n_busy) >= S->opt.max_queue) return 429;
    j->refs++;                  /* the scheduler's */
    j->state = JOB_QUEUED;
    j->next = NULL;
    if (S->queue_tail) S->queue_tail->next = j;
    else S->queue_head = j;
    S->queue_tail = j;
    S->queue_len++;
    S->n_jobs++;
    pthread_cond_signal(&S->wake);
    return 0;
}

/* Remembers a suspended connection to resume once the mutex is released. */
static void wake_job(server *S, job *j) {
    if (!j->suspended || !j->conn) return;
    if (S->resume_cap <= 0) return;
    j->suspended = 0;
    S->resume[--S->resume_cap] = j->conn;
}

/* Ends a slot's job; flush: what is held back is text (not after a stop
 * string, where the rest is dropped). */
/* The job's timing into the ring of /debug/trace (when it is on). */
static void trace_job(server *S, const job *j, const char *reason) {
    if (S->opt.trace_requests <= 0 || !S->traces) return;
    req_trace *t = &S->traces[S->n_traced++ % (uint64_t)S->opt.trace_requests];
    snprintf(t->id, sizeof t->id, "%s", j->id);
    t->kind = j->kind == REQ_CHAT ? "chat" : "completion";
    t->finish = reason;
    t->slot = j->slot_index;
    t->n_prompt = j->n_prompt;
    t->n_cached = j->n_cached;
    t->n_gen = j->n_gen;
    t->t_arrival = j->t_arrival;
    t->t_start = j->t_start;
    t->t_first = j->t_first;
    t->t_end = now_seconds();
}

static void finish(server *S, slot *sl, const char *reason, int flush) {
    job *j = sl->j;
    trace_job(S, j, reason);
    if (flush) text_flush(&sl->txt, j);
    else text_reset(&sl->txt);
    j->finish_reason = reason;
    j->state = JOB_DONE;
    wake_job(S, j);
    sl->j = NULL;
    sl->state = SLOT_IDLE;
    sl->last_used = ++S->use_clock;
    S->n_busy--;
    job_release(S, j);
}

/* A client that left: its slot is free now, what it evaluated stays for
 * the next request to reuse. */
static void drop(server *S, slot *sl) {
    job *j = sl->j;
    trace_job(S, j, "cancelled");
    j->state = JOB_DONE;
    j->finish_reason = "stop";
    sl->j = NULL;
    sl->state = SLOT_IDLE;
    sl->last_used = ++S->use_clock;
    S->n_busy--;
    job_release(S, j);
}

static int is_eog(const server *S, sm_token t) {
    if (sm_token_is_eog(S->model, t)) return 1;   /* the vocabulary's end-of-generation tokens */
    for (int i = 0; i < S->n_eog; i++)
        if (S->eog[i] == t) return 1;
    return 0;
}

/* The free slot to take: the longest shared prefix with the prompt, then
 * the least recently used. */
static slot *pick_slot(server *S, const job *j, int *prefix) {
    slot *best = NULL;
    int best_len = -1;
    for (int i = 0; i < S->n_slots; i++) {
        slot *sl = &S->slots[i];
        if (sl->state != SLOT_IDLE) continue;
        const sm_token *t = sm_session_tokens(sl->s);
        int n = sm_session_n_past(sl->s), k = 0;
        while (k < n && k < j->n_prompt && t[k] == j->prompt[k]) k++;
        if (k > best_len || (k == best_len && sl->last_used < best->last_used)) {
            best = sl;
            best_len = k;
        }
    }
    *prefix = best_len;
    return best;
}

static void start(server *S, slot *sl, job *j, int prefix) {
    /* evaluate at least the last prompt token (for its logits), and when the
     * prompt has two or more tokens at least two (see the top comment) */
    int min_new = j->n_prompt >= 2 ? 2 : 1;
    int keep = prefix < j->n_prompt - min_new ? prefix : j->n_prompt - min_new;
    if (keep < 0) keep = 0;
    sm_session_truncate(sl->s, keep, NULL);
    sl->j = j;
    sl->state = SLOT_PROMPT;
    sl->n_done = keep;
    j->t_start = now_seconds();
    j->slot_index = (int)(sl - S->slots);
    j->n_cached = keep;
    j->state = JOB_RUNNING;
    S->m.prompt_tokens += (uint64_t)j->n_prompt;
    S->m.cached_tokens += (uint64_t)keep;
    const req_params *p = &j->req.p;
    sl->sp = (sm_sampler_params){p->temperature, p->top_k, p->top_p, p->min_p, p->repeat_penalty, p->repeat_last_n,
                                 p->presence_penalty, p->frequency_penalty, p->ignore_eos};
    sm_session_set_seed(sl->s, p->has_seed ? p->seed : splitmix64(&S->seed_state));
    text_reset(&sl->txt);
    S->n_busy++;
}

/* Embeddings, on the workspace, without the mutex. */
static void run_embeddings(server *S, job *j) {
    int dim = S->info.dim;
    j->embd = calloc((size_t)j->n_in * dim, sizeof *j->embd);
    if (!j->embd) {
        j->err_status = 500;
        snprintf(j->err_msg, sizeof j->err_msg, "out of memory");
        return;
    }
    for (int i = 0; i < j->n_in; i++) {
        sm_error err = {0};
        if (sm_session_embed(S->ws, j->inputs[i], (size_t)j->n_inputs[i], j->embd + (size_t)i * dim, &err) != SM_OK) {
            j->err_status = 500;
            snprintf(j->err_msg, sizeof j->err_msg, "%s", err.message);
            return;
        }
        j->n_embd_tokens += j->n_inputs[i];
    }
}

/* A sampled token: the end, or text for the client. */
static void take_token(server *S, slot *sl, sm_token tok) {
    job *j = sl->j;
    if (j->n_gen == 0) {
        j->t_first = now_seconds();
        metrics_observe(&S->m.ttft, j->t_first - j->t_arrival);
    }
    /* under a grammar, an end token comes only where the output is complete */
    if (is_eog(S, tok) && (!j->req.p.ignore_eos || req_matcher(&j->req))) {
        j->stop_eos = 1;
        finish(S, sl, "stop", 1);
        return;
    }
    if (j->req.p.logprobs && lp_record(j, sm_session_logits(sl->s), S->info.n_vocab, tok)) {
        j->err_status = 500;
        snprintf(j->err_msg, sizeof j->err_msg, "out of memory for the log probabilities");
        finish(S, sl, "stop", 1);
        return;
    }
    j->n_gen++;
    S->m.generated_tokens++;
    const char *piece;
    int len = sm_token_piece(S->model, tok, &piece);
    if (len > 0) j->gen_bytes += (size_t)len;
    if (j->req.awaiting && len > 0) tools_trigger(&j->req, piece, (size_t)len);
    int stopped = len > 0 && text_add(&sl->txt, piece, (size_t)len, &j->req.p, j);
    if (stopped) {
        lp_trim(j);   /* the entries of the stop string's tokens go with its text */
        j->stop_word = j->req.p.stop[stopped - 1];
    }
    if (j->req.p.stream && !job_reads_back(j) && j->text_len >= JOB_TEXT_CAP) j->blocked = 1;
    wake_job(S, j);
    const sm_grammar_matcher *g = req_matcher(&j->req);
    if (stopped) finish(S, sl, "stop", 0);
    else if (g && sm_grammar_matcher_is_complete(g) && !sm_grammar_matcher_can_continue(g)) {
        j->stop_eos = 1;   /* (llama.cpp's grammar allows only the end token here) */
        finish(S, sl, "stop", 1);
    }
    else if (j->req.p.max_tokens >= 0 && j->n_gen >= j->req.p.max_tokens) finish(S, sl, "length", 1);
    else if (sm_session_n_past(sl->s) >= sm_session_n_ctx(sl->s)) finish(S, sl, "length", 1);
    else {
        sl->next = tok;
        sl->state = SLOT_GEN;
    }
}

/* Resumes the connections collected under the mutex (MHD's own locks are
 * never taken while holding ours). */
static void resume_all(server *S, struct MHD_Connection **list, int n) {
    (void)S;
    for (int i = 0; i < n; i++) MHD_resume_connection(list[i]);
}

static void *scheduler(void *arg) {
    server *S = arg;
    int cap = sm_session_batch_cap(S->ws);
    sm_batch_item *items = calloc((size_t)S->n_slots, sizeof *items);
    slot **owner = calloc((size_t)S->n_slots, sizeof *owner);
    int n_resume_max = S->n_slots + 8;
    struct MHD_Connection **resume = calloc((size_t)n_resume_max, sizeof *resume);
    if (!items || !owner || !resume) {
        fprintf(stderr, "smallmind serve: out of memory in the scheduler\n");
        abort();
    }
    pthread_mutex_lock(&S->mu);
    S->resume = resume;
    S->resume_cap = n_resume_max;
    for (;;) {
        /* clients that left */
        for (int i = 0; i < S->n_slots; i++)
            if (S->slots[i].j && S->slots[i].j->cancelled) drop(S, &S->slots[i]);
        /* new requests, while slots are free (embeddings need none) */
        job *embed = NULL;
        while (S->queue_head) {
            job *j = S->queue_head;
            if (j->kind != REQ_EMBEDDING && S->n_busy == S->n_slots) break;
            S->queue_head = j->next;
            if (!S->queue_head) S->queue_tail = NULL;
            S->queue_len--;
            if (j->cancelled) {
                j->state = JOB_DONE;
                job_release(S, j);
                continue;
            }
            if (j->kind == REQ_EMBEDDING) {
                embed = j;
                break;
            }
            int prefix;
            slot *sl = pick_slot(S, j, &prefix);
            start(S, sl, j, prefix);
        }
        /* the batch: generating slots' next tokens first, then prompt chunks */
        int n = 0, rows = 0;
        for (int k = 0; k < S->n_slots && rows < cap; k++) {
            slot *sl = &S->slots[(k + S->steps) % (uint64_t)S->n_slots];   /* a fair start when they do not all fit */
            if (sl->state != SLOT_GEN || sl->j->blocked) continue;
            items[n] = (sm_batch_item){sl->s, &sl->next, 1};
            owner[n++] = sl;
            rows++;
        }
        for (int i = 0; i < S->n_slots && rows < cap; i++) {
            slot *sl = &S->slots[i];
            if (sl->state != SLOT_PROMPT) continue;
            int left = sl->j->n_prompt - sl->n_done, take = left;
            if (left > 1) {
                if (take > cap - rows) take = cap - rows;
                if (left - take == 1) take--;   /* never leave a lone token */
                if (take < 2) continue;
            }
            items[n] = (sm_batch_item){sl->s, sl->j->prompt + sl->n_done, take};
            owner[n++] = sl;
            rows += take;
        }
        /* the connections woken by the last step (wake_job adds them from the
         * top of the list down) are resumed without the mutex */
        int resumes = n_resume_max - S->resume_cap;
        if (n == 0 && !embed && !resumes) {
            if (S->quit) break;
            pthread_cond_wait(&S->wake, &S->mu);
            continue;
        }
        S->resume_cap = n_resume_max;   /* only this thread adds to the list */
        pthread_mutex_unlock(&S->mu);
        resume_all(S, resume + n_resume_max - resumes, resumes);
        /* the work, without the mutex */
        if (embed) run_embeddings(S, embed);
        sm_error err = {0};
        sm_status st = n ? sm_session_eval_batch(S->ws, items, n, &err) : SM_OK;
        pthread_mutex_lock(&S->mu);
        if (embed) {
            embed->state = JOB_DONE;
            wake_job(S, embed);
            job_release(S, embed);
        }
        if (n) {
            S->m.batch_steps++;
            S->m.batch_rows += (uint64_t)rows;
            S->steps++;
        }
        for (int k = 0; k < n; k++) {
            slot *sl = owner[k];
            if (st != SM_OK) {
                sl->j->err_status = 500;
                snprintf(sl->j->err_msg, sizeof sl->j->err_msg, "%s", err.message);
                finish(S, sl, "stop", 1);
                continue;
            }
            if (sl->state == SLOT_PROMPT) {
                sl->n_done += items[k].n_tokens;
                if (sl->n_done < sl->j->n_prompt) continue;
            }
            if (sl->j->cancelled) continue;   /* dropped at the top of the next step */
            sm_token tok;
            sm_grammar_matcher *g = req_matcher(&sl->j->req);
            sm_status sst = g ? sm_session_sample_grammar(sl->s, &sl->sp, g, S->gvocab, &tok, &err)
                              : sm_session_sample(sl->s, &sl->sp, &tok, &err);
            if (sst != SM_OK) {
                sl->j->err_status = 500;
                snprintf(sl->j->err_msg, sizeof sl->j->err_msg, "%s", err.message);
                finish(S, sl, "stop", 1);
                continue;
            }
            take_token(S, sl, tok);
        }
    }
    pthread_mutex_unlock(&S->mu);
    free(items);
    free(owner);
    free(resume);
    return NULL;
}

int sched_start(server *S) {
    S->seed_state = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)S << 16);
    if (pthread_create(&S->sched_thread, NULL, scheduler, S) != 0) return -1;
    S->sched_started = 1;
    return 0;
}

void sched_stop(server *S) {
    if (!S->sched_started) return;
    pthread_mutex_lock(&S->mu);
    S->quit = 1;
    pthread_cond_signal(&S->wake);
    pthread_mutex_unlock(&S->mu);
    pthread_join(S->sched_thread, NULL);
    S->sched_started = 0;
}

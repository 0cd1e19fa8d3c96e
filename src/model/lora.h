/* lora.h - LoRA adapters at run time: an adapter file loaded against a base
 * model (adapter.c) and the extra product y += scale * B (A x) that a
 * session adds after each targeted matrix product (lora.c). */
#ifndef SM_MODEL_LORA_H
#define SM_MODEL_LORA_H

#include "model.h"

struct sm_session;

/* One adapted matrix: W (rows x cols) gains B (rows x rank) A (rank x cols). */
typedef struct sm_lora_pair {
    const sm_matrix *target;     /* the base matrix, inside the model this adapter was loaded for */
    int role, layer;             /* arch.h role; layer -1 for model-wide */
    int rank, rows, cols;
    float *a;                    /* rank x cols, row-major (lora_a as stored) */
    float *bt;                   /* rank x rows: lora_b transposed, so B y is rank axpys */
} sm_lora_pair;

struct sm_adapter {
    const sm_model *model;
    float alpha;                 /* adapter.lora.alpha; 0 = no alpha / rank scaling (llama.cpp's rule) */
    int n_pairs, max_rank;
    sm_lora_pair *pairs;
    float *mem;                  /* every a and bt */
    char *chat_template;         /* tokenizer.chat_template, when the adapter carries one, or NULL */
};

/* sm_adapter_load from memory (the fuzz target's entry). */
sm_status sm_adapter_load_buffer(const sm_model *model, const void *data, size_t size, struct sm_adapter **out,
                                 sm_error *err);

/* The factor an adapter set with `scale` multiplies B A x by for a pair:
 * scale * alpha / rank, or scale when alpha is 0 (llama.cpp's get_scale). */
float sm_lora_pair_scale(const struct sm_adapter *a, const sm_lora_pair *p, float scale);

/* The pair of an adapter for a base matrix, or NULL. */
const sm_lora_pair *sm_lora_find(const struct sm_adapter *a, const sm_matrix *w);

/* c[t * ldc + o] += scale * (B (A x_t))[o] for each adapter the session has
 * set that adapts w, for the n rows x_t of x (w->cols wide). Uses the
 * session's arena scratch (lora_ax); allocates nothing. */
void sm_lora_apply(struct sm_session *s, const sm_matrix *w, float *c, int ldc, const float *x, int n);

#endif

/* sft.h - chat fine-tuning data read with Jansson: a JSONL file with one
 * {"messages": [{"role": ..., "content": ...}, ...]} record per line, each
 * turned into training tokens and a loss mask (sm_chat_tokenize), as the
 * examples sm_train takes. */
#ifndef SM_JSON_SFT_H
#define SM_JSON_SFT_H

#include "smallmind.h"

typedef struct sm_json_sft {
    sm_token *tokens;
    uint8_t *mask;
    size_t *offsets;
    sm_train_examples ex;        /* views of the three above */
    size_t n_masked;             /* tokens with a loss */
} sm_json_sft;

/* Reads the file; records are formatted with tmpl (NULL: the model's
 * template or chatml), a built-in format's name or, with jinja, template
 * text run as Jinja. Errors name the file and line. */
sm_status sm_json_sft_load(const char *path, const sm_model *model, const char *tmpl, int jinja, sm_json_sft *out,
                           sm_error *err);
/* The same for text[0..size) already in memory; name stands for the file
 * in errors. */
sm_status sm_json_sft_parse(const char *text, size_t size, const char *name, const sm_model *model, const char *tmpl,
                            int jinja, sm_json_sft *out, sm_error *err);
void sm_json_sft_free(sm_json_sft *s);

#endif

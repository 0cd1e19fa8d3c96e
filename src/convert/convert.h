/* convert.h - what the writers of converted models (convert/) share. */
#ifndef SM_CONVERT_CONVERT_H
#define SM_CONVERT_CONVERT_H

#include <stddef.h>
#include <stdint.h>
#include "core/error.h"
#include "io/gguf.h"

/* A target type as `smallmind quantize` names it ("F16", "Q8_0", "Q4_0",
 * "Q4_K", "Q6_K", "Q4_0_MIXED", any case): the type of the matrices, of the
 * output matrix, and llama.cpp's general.file_type. 0 if unknown. */
int sm_quant_type_parse(const char *t, uint32_t *type, uint32_t *output_type, uint32_t *ftype);

/* `to`, or when its blocks do not divide a row of cols elements, Q8_0,
 * then F16 (llama-quantize's fallbacks). */
uint32_t sm_convert_fit(uint32_t to, int64_t cols);

/* Converts tensor t (named name, for errors) to type `to` row by row through
 * row (ne[0] floats of scratch); edit, when given, changes each row's
 * floats before they are written (merge-lora adds its deltas). *out is
 * allocated here (sm_free) and holds *bytes bytes. */
typedef void (*sm_convert_row_edit)(void *user, float *row, int r, int cols);
sm_status sm_convert_tensor(const sm_gguf_tensor *t, const char *name, uint32_t to, float *row,
                            sm_convert_row_edit edit, void *user, unsigned char **out, size_t *bytes, sm_error *err);

#endif

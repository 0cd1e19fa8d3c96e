/* convert.h - what the writers of converted models (convert/) share. */
#ifndef SM_CONVERT_CONVERT_H
#define SM_CONVERT_CONVERT_H

#include <stdint.h>

/* A target type as `smallmind quantize` names it ("F16", "Q8_0", "Q4_0",
 * "Q4_K", "Q6_K", "Q4_0_MIXED", any case): the type of the matrices, of the
 * output matrix, and llama.cpp's general.file_type. 0 if unknown. */
int sm_quant_type_parse(const char *t, uint32_t *type, uint32_t *output_type, uint32_t *ftype);

#endif

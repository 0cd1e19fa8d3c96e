/* interleave.h - Q4_0 and Q8_0 weights re-laid out sixteen rows at a time
 * for the AVX-512 VNNI matrix x vector kernels (and the AVX2 ones of
 * kernels_x86_x16_avx2.c, which read each chunk as two 8-row halves).
 *
 * In GGUF each row's blocks are contiguous, so a kernel working on one row
 * spends most of its instructions unpacking, widening and summing one block
 * horizontally. Here the blocks of 16 rows sit together and every 4 bytes of
 * a row's block share a 32-bit lane with the same 4 bytes of the other 15
 * rows: one 512-bit load feeds one VNNI instruction that advances 16 rows by
 * 4 columns, against 4 bytes of the activations broadcast to every lane.
 *
 * Group of 16 rows, block b (32 columns):
 *   d[16]       the 16 rows' fp16 scales
 *   qs[c][r][4] chunk c holds bytes 4c..4c+3 of row r's block: for Q4_0 the
 *               raw nibble bytes (c = 0..3; the low nibbles are columns
 *               4c..4c+3, the high ones 16+4c..), for Q8_0 the codes plus
 *               128 as unsigned bytes (c = 0..7), because VNNI multiplies
 *               unsigned by signed bytes.
 * Both offsets are removed with the activation block's sum: the dot of
 * (q + k) with x is the dot of q with x plus k times the sum of x. */
#ifndef SM_KERNELS_INTERLEAVE_H
#define SM_KERNELS_INTERLEAVE_H

#include <stdint.h>
#include "quant.h"

#define SM_X16 16

typedef struct { uint16_t d[SM_X16]; uint8_t qs[SM_X16 * SM_QK / 2]; } sm_block_q4_0x16;
typedef struct { uint16_t d[SM_X16]; uint8_t qs[SM_X16 * SM_QK]; } sm_block_q8_0x16;

_Static_assert(sizeof(sm_block_q4_0x16) == 16 * sizeof(sm_block_q4_0), "Q4_0 x16 block");
_Static_assert(sizeof(sm_block_q8_0x16) == 16 * sizeof(sm_block_q8_0), "Q8_0 x16 block");

/* rows must be a multiple of 16 and cols of 32; dst holds rows * cols / 32
 * blocks' worth of bytes, group after group. */
void sm_interleave_q4_0(void *dst, const void *src, int rows, int cols);
void sm_interleave_q8_0(void *dst, const void *src, int rows, int cols);
/* F16 weights sixteen rows at a time, column after column: a group holds
 * its 16 rows' element of column c side by side (32 bytes) at c x 32, so
 * the decode kernel reads one stream and 16 rows' sums sit in two vectors
 * (kernels_x86_x16_avx2.c). rows a multiple of 16, any cols. */
void sm_interleave_f16(void *dst, const void *src, int rows, int cols);
/* The 16 rows of one group as floats, row after row (out: 16 x cols). */
void sm_dequantize_q4_0x16(float *out, const void *group, int cols);
void sm_dequantize_q8_0x16(float *out, const void *group, int cols);
/* sums[b] = the sum of activation block b's 32 codes */
void sm_q8_0_block_sums(int32_t *sums, const sm_block_q8_0 *x, int nb);

#endif

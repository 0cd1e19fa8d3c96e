/* interleave_legacy.h - Q4_1, Q5_0, Q5_1 and IQ4_NL weights re-laid out
 * sixteen rows at a time for the AVX-512 VNNI matrix x vector kernels, as
 * interleave.h does for Q4_0 (read it first): the blocks of 16 rows sit
 * together and each 4 bytes of a row's block share a 32-bit lane with the
 * same 4 bytes of the other 15 rows, so one 512-bit load feeds one vpdpbusd
 * for 16 rows. Each group is exactly as large as its 16 GGUF blocks.
 *
 * Group of 16 rows, block b (32 columns):
 *   d[16], m[16]  the rows' fp16 scales (and minimums for Q4_1/Q5_1)
 *   qh[r][4]      (Q5_*) row r's fifth bits re-packed: bit c of byte k is
 *                 the fifth bit of column 4c+k, bit 4+c that of column
 *                 16+4c+k (c, k = 0..3), so a chunk's bits line up with its
 *                 nibbles after one shift
 *   qs[c][r][4]   chunk c = bytes 4c..4c+3 of row r's nibbles: the low
 *                 nibbles are columns 4c..4c+3, the high ones 16+4c..
 * Q5_0's offset (16) and IQ4_NL's (its values are looked up as value + 128,
 * unsigned) are removed with the activation block's sum; Q4_1/Q5_1 codes
 * are unsigned already and their minimum meets the Q8_1 block's s. */
#ifndef SM_KERNELS_INTERLEAVE_LEGACY_H
#define SM_KERNELS_INTERLEAVE_LEGACY_H

#include <stdint.h>
#include "quant_legacy.h"
#include "interleave.h"

typedef struct { uint16_t d[SM_X16], m[SM_X16]; uint8_t qs[SM_X16 * SM_QK / 2]; } sm_block_q4_1x16;
typedef struct { uint16_t d[SM_X16]; uint8_t qh[SM_X16 * 4]; uint8_t qs[SM_X16 * SM_QK / 2]; } sm_block_q5_0x16;
typedef struct { uint16_t d[SM_X16], m[SM_X16]; uint8_t qh[SM_X16 * 4]; uint8_t qs[SM_X16 * SM_QK / 2]; } sm_block_q5_1x16;
typedef struct { uint16_t d[SM_X16]; uint8_t qs[SM_X16 * SM_QK / 2]; } sm_block_iq4_nlx16;

_Static_assert(sizeof(sm_block_q4_1x16) == 16 * sizeof(sm_block_q4_1), "Q4_1 x16 block");
_Static_assert(sizeof(sm_block_q5_0x16) == 16 * sizeof(sm_block_q5_0), "Q5_0 x16 block");
_Static_assert(sizeof(sm_block_q5_1x16) == 16 * sizeof(sm_block_q5_1), "Q5_1 x16 block");
_Static_assert(sizeof(sm_block_iq4_nlx16) == 16 * sizeof(sm_block_iq4_nl), "IQ4_NL x16 block");

/* rows a multiple of 16, cols of 32 (the type table's interleave_x16). */
void sm_interleave_q4_1(void *dst, const void *src, int rows, int cols);
void sm_interleave_q5_0(void *dst, const void *src, int rows, int cols);
void sm_interleave_q5_1(void *dst, const void *src, int rows, int cols);
void sm_interleave_iq4_nl(void *dst, const void *src, int rows, int cols);
/* One group's 16 rows as floats, row after row (out: 16 x cols). */
void sm_dequantize_q4_1x16(float *out, const void *group, int cols);
void sm_dequantize_q5_0x16(float *out, const void *group, int cols);
void sm_dequantize_q5_1x16(float *out, const void *group, int cols);
void sm_dequantize_iq4_nlx16(float *out, const void *group, int cols);

#endif

/* interleave.c - see interleave.h. Portable: run once at model load (the
 * re-layout) and by the prefill path (dequantizing a group of rows). */
#include "interleave.h"
#include "half.h"

#include <string.h>

void sm_interleave_q4_0(void *dstv, const void *srcv, int rows, int cols) {
    sm_block_q4_0x16 *dst = dstv;
    const sm_block_q4_0 *src = srcv;
    int nb = cols / SM_QK;
    for (int g = 0; g < rows / SM_X16; g++)
        for (int b = 0; b < nb; b++) {
            sm_block_q4_0x16 *o = dst + (size_t)g * nb + b;
            for (int r = 0; r < SM_X16; r++) {
                const sm_block_q4_0 *in = src + (size_t)(g * SM_X16 + r) * nb + b;
                o->d[r] = in->d;
                for (int c = 0; c < 4; c++) memcpy(o->qs + (c * SM_X16 + r) * 4, in->qs + 4 * c, 4);
            }
        }
}

void sm_interleave_q8_0(void *dstv, const void *srcv, int rows, int cols) {
    sm_block_q8_0x16 *dst = dstv;
    const sm_block_q8_0 *src = srcv;
    int nb = cols / SM_QK;
    for (int g = 0; g < rows / SM_X16; g++)
        for (int b = 0; b < nb; b++) {
            sm_block_q8_0x16 *o = dst + (size_t)g * nb + b;
            for (int r = 0; r < SM_X16; r++) {
                const sm_block_q8_0 *in = src + (size_t)(g * SM_X16 + r) * nb + b;
                o->d[r] = in->d;
                for (int c = 0; c < 8; c++) {   /* four bytes at a time: adding 128 to a byte flips its top bit */
                    uint32_t w;
                    memcpy(&w, in->qs + 4 * c, 4);
                    w ^= 0x80808080u;
                    memcpy(o->qs + (c * SM_X16 + r) * 4, &w, 4);
                }
            }
        }
}

void sm_dequantize_q4_0x16(float *out, const void *gv, int cols) {
    const sm_block_q4_0x16 *group = gv;
    int nb = cols / SM_QK;
    for (int b = 0; b < nb; b++)
        for (int r = 0; r < SM_X16; r++) {
            float d = sm_fp16_to_fp32(group[b].d[r]), *y = out + (size_t)r * cols + b * SM_QK;
            for (int c = 0; c < 4; c++)
                for (int i = 0; i < 4; i++) {
                    uint8_t q = group[b].qs[(c * SM_X16 + r) * 4 + i];
                    y[4 * c + i] = ((q & 0x0F) - 8) * d;
                    y[16 + 4 * c + i] = ((q >> 4) - 8) * d;
                }
        }
}

void sm_dequantize_q8_0x16(float *out, const void *gv, int cols) {
    const sm_block_q8_0x16 *group = gv;
    int nb = cols / SM_QK;
    for (int b = 0; b < nb; b++)
        for (int r = 0; r < SM_X16; r++) {
            float d = sm_fp16_to_fp32(group[b].d[r]), *y = out + (size_t)r * cols + b * SM_QK;
            for (int c = 0; c < 8; c++)
                for (int i = 0; i < 4; i++) y[4 * c + i] = ((int)group[b].qs[(c * SM_X16 + r) * 4 + i] - 128) * d;
        }
}

void sm_q8_0_block_sums(int32_t *sums, const sm_block_q8_0 *x, int nb) {
    for (int b = 0; b < nb; b++) {
        int32_t s = 0;
        for (int i = 0; i < SM_QK; i++) s += x[b].qs[i];
        sums[b] = s;
    }
}

void sm_interleave_f16(void *dstv, const void *srcv, int rows, int cols) {
    uint16_t *dst = dstv;
    const uint16_t *src = srcv;
    for (int g = 0; g < rows / SM_X16; g++)
        for (int c = 0; c < cols; c++)
            for (int r = 0; r < SM_X16; r++)
                dst[((size_t)g * cols + c) * SM_X16 + r] = src[(size_t)(g * SM_X16 + r) * cols + c];
}

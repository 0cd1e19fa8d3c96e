/* interleave_legacy.c - see interleave_legacy.h. Portable: the re-layout
 * runs once at model load; the group dequantizers are the reference the
 * AVX-512 ones are tested against. */
#include "interleave_legacy.h"
#include "half.h"

#include <string.h>

/* Row r's 16 nibble bytes into chunk-major order. */
static void put_nibbles(uint8_t *qs, int r, const uint8_t *src) {
    for (int c = 0; c < 4; c++)
        for (int i = 0; i < 4; i++) qs[(c * SM_X16 + r) * 4 + i] = src[4 * c + i];
}

/* Row r's fifth bits (bit j = column j) into the chunk-aligned bytes. */
static void put_high_bits(uint8_t *qh, int r, const uint8_t *src) {
    uint32_t h;
    memcpy(&h, src, 4);
    for (int k = 0; k < 4; k++) {
        uint8_t v = 0;
        for (int c = 0; c < 4; c++) {
            v |= (uint8_t)(((h >> (4 * c + k)) & 1u) << c);
            v |= (uint8_t)(((h >> (16 + 4 * c + k)) & 1u) << (4 + c));
        }
        qh[4 * r + k] = v;
    }
}

/* The fifth bits of row r's columns 4c+i (lo) and 16+4c+i (hi), as 0/16. */
static int high_lo(const uint8_t *qh, int r, int c, int i) { return ((qh[4 * r + i] >> c) & 1) << 4; }
static int high_hi(const uint8_t *qh, int r, int c, int i) { return ((qh[4 * r + i] >> (4 + c)) & 1) << 4; }

#define GROUPS(DST_T, SRC_T, BODY)                                                 \
    DST_T *dst = dstv;                                                             \
    const SRC_T *src = srcv;                                                       \
    int nb = cols / SM_QK;                                                         \
    for (int g = 0; g < rows / SM_X16; g++)                                        \
        for (int b = 0; b < nb; b++) {                                             \
            DST_T *o = dst + (size_t)g * nb + b;                                   \
            for (int r = 0; r < SM_X16; r++) {                                     \
                const SRC_T *in = src + (size_t)(g * SM_X16 + r) * nb + b;         \
                BODY                                                               \
            }                                                                      \
        }

void sm_interleave_q4_1(void *dstv, const void *srcv, int rows, int cols) {
    GROUPS(sm_block_q4_1x16, sm_block_q4_1, o->d[r] = in->d; o->m[r] = in->m; put_nibbles(o->qs, r, in->qs);)
}

void sm_interleave_q5_0(void *dstv, const void *srcv, int rows, int cols) {
    GROUPS(sm_block_q5_0x16, sm_block_q5_0, o->d[r] = in->d; put_high_bits(o->qh, r, in->qh); put_nibbles(o->qs, r, in->qs);)
}

void sm_interleave_q5_1(void *dstv, const void *srcv, int rows, int cols) {
    GROUPS(sm_block_q5_1x16, sm_block_q5_1, o->d[r] = in->d; o->m[r] = in->m; put_high_bits(o->qh, r, in->qh);
           put_nibbles(o->qs, r, in->qs);)
}

void sm_interleave_iq4_nl(void *dstv, const void *srcv, int rows, int cols) {
    GROUPS(sm_block_iq4_nlx16, sm_block_iq4_nl, o->d[r] = in->d; put_nibbles(o->qs, r, in->qs);)
}

/* Walks a group's elements: for row r, chunk c, byte i, the nibble byte q
 * and the row's output y (columns 4c+i and 16+4c+i). */
#define EACH_ELEMENT(G_T, BODY)                                                    \
    const G_T *grp = gv;                                                           \
    for (int b = 0; b < cols / SM_QK; b++)                                         \
        for (int r = 0; r < SM_X16; r++) {                                         \
            float *y = out + (size_t)r * cols + b * SM_QK;                         \
            for (int c = 0; c < 4; c++)                                            \
                for (int i = 0; i < 4; i++) {                                      \
                    uint8_t q = grp[b].qs[(c * SM_X16 + r) * 4 + i];               \
                    BODY                                                           \
                }                                                                  \
        }

void sm_dequantize_q4_1x16(float *out, const void *gv, int cols) {
    EACH_ELEMENT(sm_block_q4_1x16, float d = sm_fp16_to_fp32(grp[b].d[r]); float m = sm_fp16_to_fp32(grp[b].m[r]);
                 y[4 * c + i] = (q & 0x0F) * d + m; y[16 + 4 * c + i] = (q >> 4) * d + m;)
}

void sm_dequantize_q5_0x16(float *out, const void *gv, int cols) {
    EACH_ELEMENT(sm_block_q5_0x16, float d = sm_fp16_to_fp32(grp[b].d[r]);
                 y[4 * c + i] = (((q & 0x0F) | high_lo(grp[b].qh, r, c, i)) - 16) * d;
                 y[16 + 4 * c + i] = (((q >> 4) | high_hi(grp[b].qh, r, c, i)) - 16) * d;)
}

void sm_dequantize_q5_1x16(float *out, const void *gv, int cols) {
    EACH_ELEMENT(sm_block_q5_1x16, float d = sm_fp16_to_fp32(grp[b].d[r]); float m = sm_fp16_to_fp32(grp[b].m[r]);
                 y[4 * c + i] = ((q & 0x0F) | high_lo(grp[b].qh, r, c, i)) * d + m;
                 y[16 + 4 * c + i] = ((q >> 4) | high_hi(grp[b].qh, r, c, i)) * d + m;)
}

void sm_dequantize_iq4_nlx16(float *out, const void *gv, int cols) {
    EACH_ELEMENT(sm_block_iq4_nlx16, float d = sm_fp16_to_fp32(grp[b].d[r]);
                 y[4 * c + i] = d * sm_iq4nl_values[q & 0x0F]; y[16 + 4 * c + i] = d * sm_iq4nl_values[q >> 4];)
}

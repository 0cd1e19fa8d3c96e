/* interleave_k.c - see interleave_k.h. Portable: the re-layout runs once at
 * model load; the group dequantizers are the reference the AVX-512 ones are
 * tested against. */
#include "interleave_k.h"
#include "half.h"

/* Q4_K's and Q5_K's 6-bit scales and mins of one row, re-packed for the
 * group: sclo[h][r][i] = low nibbles of scale and min 4h + i, schi[r][i] =
 * the top two bits of scales i, i + 4 and mins i, i + 4. */
static void pack_scales(uint8_t sclo[2][SM_X16][4], uint8_t schi[SM_X16][4], int r, const uint8_t *scales) {
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; j++) sm_q4_K_scale_min(j, scales, &sc[j], &m[j]);
    for (int i = 0; i < 4; i++) {
        for (int h = 0; h < 2; h++) sclo[h][r][i] = (uint8_t)((sc[4 * h + i] & 0x0F) | (m[4 * h + i] & 0x0F) << 4);
        schi[r][i] = (uint8_t)((sc[i] >> 4) | (sc[i + 4] >> 4) << 2 | (m[i] >> 4) << 4 | (m[i + 4] >> 4) << 6);
    }
}

/* Scale and min j of row r, back from that packing. */
static void unpack_scale(const uint8_t sclo[2][SM_X16][4], const uint8_t schi[SM_X16][4], int r, int j, uint8_t *sc,
                         uint8_t *m) {
    uint8_t lo = sclo[j / 4][r][j % 4], hi = schi[r][j % 4];
    *sc = (uint8_t)((lo & 0x0F) | ((hi >> (2 * (j / 4))) & 3) << 4);
    *m = (uint8_t)((lo >> 4) | ((hi >> (4 + 2 * (j / 4))) & 3) << 4);
}

void sm_interleave_q4_K(void *dstv, const void *srcv, int rows, int cols) {
    sm_block_q4_Kx16 *dst = dstv;
    const sm_block_q4_K *src = srcv;
    int nb = cols / SM_QK_K;
    for (int g = 0; g < rows / SM_X16; g++)
        for (int b = 0; b < nb; b++) {
            sm_block_q4_Kx16 *o = dst + (size_t)g * nb + b;
            for (int r = 0; r < SM_X16; r++) {
                const sm_block_q4_K *in = src + (size_t)(g * SM_X16 + r) * nb + b;
                o->d[r] = in->d;
                o->dmin[r] = in->dmin;
                pack_scales(o->sclo, o->schi, r, in->scales);
                for (int c = 0; c < 32; c++)
                    for (int i = 0; i < 4; i++) o->qs[c][r][i] = in->qs[4 * c + i];
            }
        }
}

void sm_q4_Kx16_scale_min(const sm_block_q4_Kx16 *g, int r, int j, uint8_t *sc, uint8_t *m) {
    unpack_scale(g->sclo, g->schi, r, j, sc, m);
}

/* The arithmetic is sm_dequantize_q4_K's: d * scale, dmin * min, then
 * (d * scale) * code - dmin * min. */
void sm_dequantize_q4_Kx16(float *out, const void *gv, int cols) {
    const sm_block_q4_Kx16 *grp = gv;
    for (int b = 0; b < cols / SM_QK_K; b++)
        for (int r = 0; r < SM_X16; r++) {
            float d = sm_fp16_to_fp32(grp[b].d[r]), dmin = sm_fp16_to_fp32(grp[b].dmin[r]), d1[8], n1[8];
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                sm_q4_Kx16_scale_min(&grp[b], r, j, &sc, &m);
                d1[j] = d * sc;
                n1[j] = dmin * m;
            }
            float *y = out + (size_t)r * cols + b * SM_QK_K;
            for (int c = 0; c < 32; c++) {
                int k = c / 8, e = 64 * k + 4 * (c % 8);
                for (int i = 0; i < 4; i++) {
                    uint8_t q = grp[b].qs[c][r][i];
                    y[e + i] = d1[2 * k] * (q & 0x0F) - n1[2 * k];
                    y[e + 32 + i] = d1[2 * k + 1] * (q >> 4) - n1[2 * k + 1];
                }
            }
        }
}

void sm_interleave_q5_K(void *dstv, const void *srcv, int rows, int cols) {
    sm_block_q5_Kx16 *dst = dstv;
    const sm_block_q5_K *src = srcv;
    int nb = cols / SM_QK_K;
    for (int g = 0; g < rows / SM_X16; g++)
        for (int b = 0; b < nb; b++) {
            sm_block_q5_Kx16 *o = dst + (size_t)g * nb + b;
            for (int r = 0; r < SM_X16; r++) {
                const sm_block_q5_K *in = src + (size_t)(g * SM_X16 + r) * nb + b;
                o->d[r] = in->d;
                o->dmin[r] = in->dmin;
                pack_scales(o->sclo, o->schi, r, in->scales);
                for (int c = 0; c < 8; c++)
                    for (int i = 0; i < 4; i++) o->qh[c][r][i] = in->qh[4 * c + i];
                for (int c = 0; c < 32; c++)
                    for (int i = 0; i < 4; i++) o->qs[c][r][i] = in->qs[4 * c + i];
            }
        }
}

void sm_q5_Kx16_scale_min(const sm_block_q5_Kx16 *g, int r, int j, uint8_t *sc, uint8_t *m) {
    unpack_scale(g->sclo, g->schi, r, j, sc, m);
}

/* The arithmetic is sm_dequantize_q5_K's: d * scale, dmin * min, then
 * (d * scale) * code - dmin * min, the code the nibble plus 16 times its
 * qh bit. */
void sm_dequantize_q5_Kx16(float *out, const void *gv, int cols) {
    const sm_block_q5_Kx16 *grp = gv;
    for (int b = 0; b < cols / SM_QK_K; b++)
        for (int r = 0; r < SM_X16; r++) {
            float d = sm_fp16_to_fp32(grp[b].d[r]), dmin = sm_fp16_to_fp32(grp[b].dmin[r]), d1[8], n1[8];
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                sm_q5_Kx16_scale_min(&grp[b], r, j, &sc, &m);
                d1[j] = d * sc;
                n1[j] = dmin * m;
            }
            float *y = out + (size_t)r * cols + b * SM_QK_K;
            for (int c = 0; c < 32; c++) {
                int k = c / 8, m = c % 8, e = 64 * k + 4 * m;
                for (int i = 0; i < 4; i++) {
                    uint8_t q = grp[b].qs[c][r][i], h = grp[b].qh[m][r][i];
                    int lo = (q & 0x0F) + 16 * ((h >> (2 * k)) & 1), hi = (q >> 4) + 16 * ((h >> (2 * k + 1)) & 1);
                    y[e + i] = d1[2 * k] * lo - n1[2 * k];
                    y[e + 32 + i] = d1[2 * k + 1] * hi - n1[2 * k + 1];
                }
            }
        }
}

/* where the top 2 bits of scale j sit in sh (see interleave_k.h) */
static const int iq4_xs_hi_pos[8] = {4, 12, 2, 10, 6, 14, 0, 8};

void sm_interleave_iq4_xs(void *dstv, const void *srcv, int rows, int cols) {
    sm_block_iq4_xsx16 *dst = dstv;
    const sm_block_iq4_xs *src = srcv;
    int nb = cols / SM_QK_K;
    for (int g = 0; g < rows / SM_X16; g++)
        for (int b = 0; b < nb; b++) {
            sm_block_iq4_xsx16 *o = dst + (size_t)g * nb + b;
            for (int r = 0; r < SM_X16; r++) {
                const sm_block_iq4_xs *in = src + (size_t)(g * SM_X16 + r) * nb + b;
                int8_t s[8];
                sm_iq4_xs_scales(in, s);
                o->d[r] = in->d;
                uint16_t sh = 0;
                for (int j = 0; j < 8; j++) sh |= (uint16_t)(((s[j] + 32) >> 4) << iq4_xs_hi_pos[j]);
                o->sh[r] = sh;
                for (int i = 0; i < 4; i++) o->sl[r][i] = (uint8_t)(((s[i] + 32) & 0x0F) | ((s[i + 4] + 32) & 0x0F) << 4);
                for (int c = 0; c < 32; c++)
                    for (int i = 0; i < 4; i++) o->qs[c][r][i] = in->qs[4 * c + i];
            }
        }
}

int sm_iq4_xsx16_scale(const sm_block_iq4_xsx16 *g, int r, int j) {
    int lo = (g->sl[r][j % 4] >> (4 * (j / 4))) & 0x0F, hi = (g->sh[r] >> iq4_xs_hi_pos[j]) & 3;
    return (lo | hi << 4) - 32;
}

/* The arithmetic is sm_dequantize_iq4_xs's: (d * scale) * value. */
void sm_dequantize_iq4_xsx16(float *out, const void *gv, int cols) {
    const sm_block_iq4_xsx16 *grp = gv;
    for (int b = 0; b < cols / SM_QK_K; b++)
        for (int r = 0; r < SM_X16; r++) {
            float d = sm_fp16_to_fp32(grp[b].d[r]), *y = out + (size_t)r * cols + b * SM_QK_K;
            for (int c = 0; c < 32; c++) {
                int j = c / 4, e = 32 * j + 4 * (c % 4);
                float dl = d * sm_iq4_xsx16_scale(&grp[b], r, j);
                for (int i = 0; i < 4; i++) {
                    uint8_t q = grp[b].qs[c][r][i];
                    y[e + i] = dl * sm_iq4nl_values[q & 0x0F];
                    y[e + 16 + i] = dl * sm_iq4nl_values[q >> 4];
                }
            }
        }
}

void sm_interleave_q6_K(void *dstv, const void *srcv, int rows, int cols) {
    sm_block_q6_Kx16 *dst = dstv;
    const sm_block_q6_K *src = srcv;
    int nb = cols / SM_QK_K;
    for (int g = 0; g < rows / SM_X16; g++)
        for (int b = 0; b < nb; b++) {
            sm_block_q6_Kx16 *o = dst + (size_t)g * nb + b;
            for (int r = 0; r < SM_X16; r++) {
                const sm_block_q6_K *in = src + (size_t)(g * SM_X16 + r) * nb + b;
                o->d[r] = in->d;
                for (int j = 0; j < 16; j++) o->sc[j][r] = in->scales[j];
                for (int c = 0; c < 32; c++)
                    for (int i = 0; i < 4; i++) SM_Q6X16_QL(o, c)[r][i] = in->ql[4 * c + i];
                for (int c = 0; c < 16; c++)
                    for (int i = 0; i < 4; i++) SM_Q6X16_QH(o, c)[r][i] = in->qh[4 * c + i];
            }
        }
}

/* The arithmetic is sm_dequantize_q6_K's: (d * scale) * (code - 32). */
void sm_dequantize_q6_Kx16(float *out, const void *gv, int cols) {
    const sm_block_q6_Kx16 *grp = gv;
    for (int b = 0; b < cols / SM_QK_K; b++)
        for (int r = 0; r < SM_X16; r++) {
            float d = sm_fp16_to_fp32(grp[b].d[r]), *y = out + (size_t)r * cols + b * SM_QK_K;
            for (int e = 0; e < SM_QK_K; e++) {
                int h = e / 128, k = (e % 128) / 32, m = (e % 32) / 4, i = e % 4;
                uint8_t lo = SM_Q6X16_QL(&grp[b], 16 * h + 8 * (k & 1) + m)[r][i], hi = SM_Q6X16_QH(&grp[b], 8 * h + m)[r][i];
                int q = ((k < 2 ? lo & 0x0F : lo >> 4) | (((hi >> (2 * k)) & 3) << 4)) - 32;
                y[e] = d * grp[b].sc[e / 16][r] * q;
            }
        }
}

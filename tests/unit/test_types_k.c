/* test_types_k.c - the 256-element super-block formats (Q2_K, Q3_K, Q4_K,
 * Q5_K, Q6_K, IQ4_XS): blocks built by hand from the format description,
 * round trips, the reference integer dots against the float dot of the
 * dequantized operands, every kernel level against the reference (random,
 * ragged and extreme blocks), the Q8_K activation quantizers bit for bit,
 * and llama.cpp's own ggml as an independent source (tests/refs/types_k/
 * ggml_k.txt, written by make_refs.sh: ggml's dequantized values, its dots
 * and its quantization error). */
#include "test.h"
#include "kernels/dispatch.h"
#include "kernels/half.h"
#include "kernels/quant.h"
#include "kernels/quant_k.h"
#include "kernels/types.h"

#include <math.h>
#include <stdlib.h>

static float lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) / 16777216.0) * 2.0f - 1.0f;
}

/* the ggml levels of IQ4_NL/IQ4_XS, copied here from ggml-common.h so the
 * hand-built test does not read our own table */
static const int kv_iq4[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* One format under test: where its fp16 scales sit and its reference dot. */
typedef struct ktype {
    const char *name;
    uint32_t type;
    int d_off, dmin_off;     /* byte offsets of d and dmin (-1: none) */
    float (*dot)(const void *w, const sm_block_q8_K *x, int n);
} ktype;

static float dot_q2(const void *w, const sm_block_q8_K *x, int n) { return sm_dot_q2_K_q8_K(w, x, n); }
static float dot_q3(const void *w, const sm_block_q8_K *x, int n) { return sm_dot_q3_K_q8_K(w, x, n); }
static float dot_q4(const void *w, const sm_block_q8_K *x, int n) { return sm_dot_q4_K_q8_K(w, x, n); }
static float dot_q5(const void *w, const sm_block_q8_K *x, int n) { return sm_dot_q5_K_q8_K(w, x, n); }
static float dot_q6(const void *w, const sm_block_q8_K *x, int n) { return sm_dot_q6_K_q8_K(w, x, n); }
static float dot_iq4(const void *w, const sm_block_q8_K *x, int n) { return sm_dot_iq4_xs_q8_K(w, x, n); }

static const ktype ktypes[] = {
    {"Q2_K", SM_GGML_Q2_K, 80, 82, dot_q2},  {"Q3_K", SM_GGML_Q3_K, 108, -1, dot_q3},
    {"Q4_K", SM_GGML_Q4_K, 0, 2, dot_q4},    {"Q5_K", SM_GGML_Q5_K, 0, 2, dot_q5},
    {"Q6_K", SM_GGML_Q6_K, 208, -1, dot_q6}, {"IQ4_XS", SM_GGML_IQ4_XS, 0, -1, dot_iq4},
};
#define N_KTYPES (int)(sizeof ktypes / sizeof ktypes[0])

static size_t block_bytes(const ktype *k) { return sm_type(k->type)->bytes; }

static void put_f16(unsigned char *p, float v) {
    uint16_t h = sm_fp32_to_fp16(v);
    memcpy(p, &h, 2);
}

/* A block of random bytes (every code and scale pattern) with fp16 scales
 * in a sane range; all 0xFF (every code and scale at its maximum) when
 * extreme is 1, all zero bits but the scales when 2. */
static void random_block(const ktype *k, unsigned char *b, uint64_t *s, int extreme) {
    for (size_t i = 0; i < block_bytes(k); i++) b[i] = extreme == 1 ? 0xFF : extreme == 2 ? 0 : (unsigned char)(lcg(s) * 127.5f + 128);
    put_f16(b + k->d_off, 0.001f + 0.05f * fabsf(lcg(s)));
    if (k->dmin_off >= 0) put_f16(b + k->dmin_off, 0.001f + 0.05f * fabsf(lcg(s)));
}

/* Q8_K activations: random codes in -127..127 (some blocks all at +-127),
 * their sums, a positive scale. */
static void random_q8_K(sm_block_q8_K *x, int nb, uint64_t *s) {
    for (int b = 0; b < nb; b++) {
        x[b].d = 0.001f + fabsf(lcg(s)) * 0.1f;
        for (int i = 0; i < SM_QK_K; i++) {
            int v = (int)lrintf(lcg(s) * 127.0f);
            if (b % 5 == 3) v = (i % 3) ? 127 : -127;
            x[b].qs[i] = (int8_t)v;
        }
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) sum += x[b].qs[16 * g + i];
            x[b].bsums[g] = (int16_t)sum;
        }
    }
}

/* sum |w_i x_i|, with the min part of w (dmin * m) counted on its own, so
 * that cancellation inside a block does not hide the scale of the sum */
static double dot_magnitude(const ktype *k, const unsigned char *w, const float *xd, int n) {
    size_t nb = (size_t)n / SM_QK_K, bb = block_bytes(k);
    float *full = malloc(sizeof(float) * n), *part = malloc(sizeof(float) * n);
    unsigned char *nomin = malloc(nb * bb);
    memcpy(nomin, w, nb * bb);
    if (k->dmin_off >= 0)
        for (size_t b = 0; b < nb; b++) put_f16(nomin + b * bb + k->dmin_off, 0.0f);
    sm_type(k->type)->to_float(full, w, n);
    sm_type(k->type)->to_float(part, nomin, n);
    double mag = 0;
    for (int i = 0; i < n; i++) mag += (fabs(part[i]) + fabs((double)full[i] - part[i])) * fabs(xd[i]);
    free(full); free(part); free(nomin);
    return mag;
}

static void q8_K_to_float(float *y, const sm_block_q8_K *x, int nb) {
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < SM_QK_K; i++) y[b * SM_QK_K + i] = x[b].d * x[b].qs[i];
}

/* ------------------------------------------------ the format, by hand */

TEST(types_k_dequantize_hand_built_blocks) {
    float y[256];
    int bad = 0;
    /* Q2_K: d = 0.5, dmin = 0.25; sub-block j: scale j, min 15 - j; element e
     * has code (7e + e/16) % 4 at byte 32 (e/128) + e%32, bits 2 ((e%128)/32) */
    {
        unsigned char b[84] = {0};
        for (int j = 0; j < 16; j++) b[j] = (unsigned char)(j | ((15 - j) << 4));
        for (int e = 0; e < 256; e++) b[16 + 32 * (e / 128) + e % 32] |= (unsigned char)(((7 * e + e / 16) % 4) << (2 * ((e % 128) / 32)));
        put_f16(b + 80, 0.5f);
        put_f16(b + 82, 0.25f);
        sm_dequantize_q2_K(y, b, 256);
        for (int e = 0; e < 256; e++) bad += y[e] != 0.5f * (e / 16) * ((7 * e + e / 16) % 4) - 0.25f * (15 - e / 16);
        CHECKF(bad == 0, "%d Q2_K values differ", bad);
    }
    /* Q3_K: d = 0.25; 6-bit scale v_j = (5j + 3) % 64 meaning v_j - 32, low 4
     * bits in byte 96 + j (j < 8, low nibble) or 96 + j - 8 (high nibble),
     * high 2 bits in byte 104 + j%4 at bits 2 (j/4); code u = (3e + e/32) % 8
     * meaning u - 4: 2 bits as Q2_K's, the third in hmask[e%32] bit e/32 */
    {
        unsigned char b[110] = {0};
        for (int j = 0; j < 16; j++) {
            int v = (5 * j + 3) % 64;
            b[96 + j % 8] |= (unsigned char)((v & 15) << (j < 8 ? 0 : 4));
            b[104 + j % 4] |= (unsigned char)((v >> 4) << (2 * (j / 4)));
        }
        for (int e = 0; e < 256; e++) {
            int u = (3 * e + e / 32) % 8;
            b[32 + 32 * (e / 128) + e % 32] |= (unsigned char)((u & 3) << (2 * ((e % 128) / 32)));
            b[e % 32] |= (unsigned char)((u >> 2) << (e / 32));
        }
        put_f16(b + 108, 0.25f);
        sm_dequantize_q3_K(y, b, 256);
        bad = 0;
        for (int e = 0; e < 256; e++) bad += y[e] != 0.25f * ((5 * (e / 16) + 3) % 64 - 32) * ((3 * e + e / 32) % 8 - 4);
        CHECKF(bad == 0, "%d Q3_K values differ", bad);
    }
    /* Q5_K: d = 1, dmin = 0.5; Q4_K's 6-bit scale/min packing (sc_j, m_j);
     * code u = (11e + 5) % 32: 4 bits at byte 48 + 32 (e/64) + e%32 (low
     * nibble when (e/32) is even), the fifth in qh[e%32] (byte 16 + e%32) bit e/32 */
    {
        unsigned char b[176] = {0};
        uint8_t sc[8] = {1, 2, 3, 4, 40, 50, 60, 63}, mn[8] = {0, 1, 2, 3, 17, 33, 48, 62};
        for (int j = 0; j < 4; j++) {
            b[4 + j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
            b[8 + j] = (uint8_t)((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
            b[12 + j] = (uint8_t)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
        }
        for (int e = 0; e < 256; e++) {
            int u = (11 * e + 5) % 32;
            b[48 + 32 * (e / 64) + e % 32] |= (unsigned char)((u & 15) << ((e / 32) % 2 ? 4 : 0));
            b[16 + e % 32] |= (unsigned char)((u >> 4) << (e / 32));
        }
        put_f16(b, 1.0f);
        put_f16(b + 2, 0.5f);
        sm_dequantize_q5_K(y, b, 256);
        bad = 0;
        for (int e = 0; e < 256; e++) bad += y[e] != 1.0f * sc[e / 32] * ((11 * e + 5) % 32) - 0.5f * mn[e / 32];
        CHECKF(bad == 0, "%d Q5_K values differ", bad);
    }
    /* IQ4_XS: d = 0.5; 6-bit scale l_j = (9j + 1) % 64 meaning l_j - 32: low
     * 4 bits in scales_l[j/2] (byte 4 + j/2, nibble j%2), high 2 bits in
     * scales_h (bytes 2-3) bits 2j; code c = (5e + e/32) % 16 of element i of
     * sub-block j in byte 8 + 16j + i%16, low nibble when i < 16 */
    {
        unsigned char b[136] = {0};
        uint16_t sh = 0;
        for (int j = 0; j < 8; j++) {
            int l = (9 * j + 1) % 64;
            b[4 + j / 2] |= (unsigned char)((l & 15) << (4 * (j % 2)));
            sh |= (uint16_t)((l >> 4) << (2 * j));
        }
        memcpy(b + 2, &sh, 2);
        for (int e = 0; e < 256; e++) {
            int j = e / 32, i = e % 32;
            b[8 + 16 * j + i % 16] |= (unsigned char)(((5 * e + j) % 16) << (i < 16 ? 0 : 4));
        }
        put_f16(b, 0.5f);
        sm_dequantize_iq4_xs(y, b, 256);
        bad = 0;
        for (int e = 0; e < 256; e++) bad += y[e] != 0.5f * ((9 * (e / 32) + 1) % 64 - 32) * kv_iq4[(5 * e + e / 32) % 16];
        CHECKF(bad == 0, "%d IQ4_XS values differ", bad);
    }
}

TEST(types_k_table_entries) {
    for (int t = 0; t < N_KTYPES; t++) {
        const sm_type_traits *tt = sm_type(ktypes[t].type);
        REQUIRE(tt != NULL);
        CHECKF(tt->blck == 256 && tt->vec_dot_type == SM_GGML_Q8_K && tt->to_float && tt->from_float_ref &&
               sm_type_runnable(ktypes[t].type), "%s entry", ktypes[t].name);
        CHECKF(sm_type_by_name(ktypes[t].name) == (int)ktypes[t].type, "%s by name", ktypes[t].name);
        CHECKF(sm_type_row_bytes(ktypes[t].type, 512) == 2 * tt->bytes, "%s row bytes", ktypes[t].name);
    }
}

/* -------------------------------------------------- quantizers' accuracy */

/* Relative rms error of a round trip; bounds about half again what a
 * uniform input gives each format (levels per sub-block and scale bits). */
TEST(types_k_round_trip_error_is_bounded) {
    static const double bound[] = {0.45, 0.25, 0.12, 0.06, 0.03, 0.12};
    uint64_t s = 3;
    enum { N = 2048 };
    static float x[N], y[N];
    static unsigned char q[N / 256 * 256];
    for (int i = 0; i < N; i++) x[i] = lcg(&s) * (1 + i % 7) * ((i / 256) % 3 ? 1.0f : 0.01f);
    for (int t = 0; t < N_KTYPES; t++) {
        const sm_type_traits *tt = sm_type(ktypes[t].type);
        tt->from_float_ref(q, x, N);
        tt->to_float(y, q, N);
        double err = 0, mag = 0;
        for (int i = 0; i < N; i++) { err += (double)(x[i] - y[i]) * (x[i] - y[i]); mag += (double)x[i] * x[i]; }
        CHECKF(sqrt(err / mag) < bound[t], "%s: relative rms error %.4f", ktypes[t].name, sqrt(err / mag));
        /* all-zero input: a valid all-zero block */
        float z[256] = {0}, zy[256];
        tt->from_float_ref(q, z, 256);
        tt->to_float(zy, q, 256);
        int nz = 0;
        for (int i = 0; i < 256; i++) nz += zy[i] != 0;
        CHECKF(nz == 0, "%s: zeros come back as %d non-zeros", ktypes[t].name, nz);
    }
}

/* ------------------------------------------------ reference integer dots */

TEST(types_k_reference_dot_is_the_float_dot) {
    int cols[] = {256, 768, 2048};
    uint64_t s = 17;
    for (int t = 0; t < N_KTYPES; t++) {
        const ktype *k = &ktypes[t];
        for (size_t ci = 0; ci < sizeof cols / sizeof cols[0]; ci++) {
            int n = cols[ci], nb = n / SM_QK_K;
            float *w = malloc(sizeof(float) * n), *wd = malloc(sizeof(float) * n), *x = malloc(sizeof(float) * n),
                  *xd = malloc(sizeof(float) * n);
            unsigned char *q = malloc(block_bytes(k) * nb);
            sm_block_q8_K *xq = malloc(sizeof *xq * nb);
            for (int kind = 0; kind < 2; kind++) {
                for (int i = 0; i < n; i++) { w[i] = lcg(&s) * 2.0f + 0.3f; x[i] = lcg(&s); }
                if (kind == 0) sm_type(k->type)->from_float_ref(q, w, n);
                else
                    for (int b = 0; b < nb; b++) random_block(k, q + b * block_bytes(k), &s, 0);
                sm_quantize_q8_K(xq, x, n);
                sm_type(k->type)->to_float(wd, q, n);
                q8_K_to_float(xd, xq, nb);
                double plain = 0;
                for (int i = 0; i < n; i++) plain += (double)wd[i] * xd[i];
                double mag = dot_magnitude(k, q, xd, n);
                float ref = k->dot(q, xq, n);
                CHECKF(fabs(ref - plain) <= 2e-6 * mag + 1e-6, "%s %s n=%d: %g vs %g (magnitude %g)", k->name,
                       kind ? "random blocks" : "quantized", n, ref, plain, mag);
            }
            free(w); free(wd); free(x); free(xd); free(q); free(xq);
        }
    }
}

/* ------------------------------------------- every kernel level agrees */

static sm_type_kernels kernels_of(const sm_kernel_table *kt, uint32_t type) {
    sm_type_kernels k;
    sm_kernels_for_type(kt, type, &k);
    return k;
}


/* A case for the kernel tests: rows of quantized data (every third), of
 * random bytes and of extreme blocks, Q8_K activations (xq, and as floats
 * xd), the reference integer dots and the magnitude of each dot's terms. */
static void make_case(const ktype *k, unsigned char *w, sm_block_q8_K *xq, float *xd, float *wf, float *ref, double *mag,
                      int rows, int cols, uint64_t *s) {
    int nb = cols / SM_QK_K;
    size_t bb = block_bytes(k);
    for (int r = 0; r < rows; r++) {
        unsigned char *wr = w + (size_t)r * nb * bb;
        if (r % 3 == 0) {
            for (int i = 0; i < cols; i++) wf[i] = lcg(s) * (r % 2 ? 0.01f : 1.0f) + (i % 9 == 0 ? 0.5f : 0.0f);
            sm_type(k->type)->from_float_ref(wr, wf, cols);
        } else {
            for (int b = 0; b < nb; b++) random_block(k, wr + b * bb, s, (r + b) % 7 == 2 ? 1 : (r + b) % 7 == 4 ? 2 : 0);
        }
    }
    random_q8_K(xq, nb, s);
    q8_K_to_float(xd, xq, nb);
    for (int r = 0; r < rows; r++) {
        ref[r] = k->dot(w + (size_t)r * nb * bb, xq, cols);
        mag[r] = dot_magnitude(k, w + (size_t)r * nb * bb, xd, cols);
    }
}

TEST(types_k_every_level_matches_reference) {
    const sm_kernel_table *all[8];
    int nl = sm_kernels_available(all, 8);
    int shapes[][2] = {{1, 256}, {3, 512}, {5, 768}, {16, 256}, {17, 1280}, {33, 2048}, {4, 4352}, {7, 256}};
    uint64_t s = 99;
    for (int t = 0; t < N_KTYPES; t++) {
        const ktype *k = &ktypes[t];
        size_t bb = block_bytes(k);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            int rows = shapes[si][0], cols = shapes[si][1], nb = cols / SM_QK_K;
            unsigned char *w = malloc(bb * nb * rows);
            sm_block_q8_K *xq = malloc(sizeof *xq * nb);
            float *xd = malloc(sizeof(float) * cols), *wf = malloc(sizeof(float) * cols);
            float *ref = malloc(sizeof(float) * rows), *got = malloc(sizeof(float) * rows);
            double *mag = malloc(sizeof(double) * rows);
            /* rows of quantized data, of random bytes, and of extreme blocks */
            make_case(k, w, xq, xd, wf, ref, mag, rows, cols, &s);
            for (int v = 0; v < nl; v++) {
                sm_type_kernels kk = kernels_of(all[v], k->type);
                REQUIRE(kk.matvec != NULL);
                for (int r = 0; r < rows; r++) got[r] = NAN;
                kk.matvec(got, w, xq, rows, cols);
                for (int r = 0; r < rows; r++)
                    CHECKF(fabs((double)got[r] - ref[r]) <= 2e-6 * mag[r] + 1e-6, "%s %s %dx%d row %d: %.9g vs %.9g",
                           all[v]->name, k->name, rows, cols, r, got[r], ref[r]);
            }
            free(w); free(xq); free(xd); free(wf); free(ref); free(got); free(mag);
        }
    }
}

/* The prompt path's dequantizers of each level give the reference's floats
 * bit for bit (quantized, random-byte and extreme blocks, odd lengths). */
TEST(types_k_every_level_dequantizes_as_reference) {
    const sm_kernel_table *all[8];
    int nl = sm_kernels_available(all, 8);
    enum { NB = 7 };
    static unsigned char q[NB * 256];
    static float x[NB * 256], want[NB * 256], got[NB * 256];
    uint64_t s = 123;
    for (int t = 0; t < N_KTYPES; t++) {
        const ktype *k = &ktypes[t];
        size_t bb = block_bytes(k);
        for (int i = 0; i < NB * 256; i++) x[i] = lcg(&s) * (i % 5 + 1);
        sm_type(k->type)->from_float_ref(q, x, 3 * 256);
        for (int b = 3; b < NB; b++) random_block(k, q + b * bb, &s, b == 5 ? 1 : b == 6 ? 2 : 0);
        sm_type(k->type)->to_float(want, q, NB * 256);
        for (int v = 0; v < nl; v++)
            for (int nb = 1; nb <= NB; nb += 3) {
                memset(got, 0x7F, sizeof got);
                kernels_of(all[v], k->type).to_float(got, q, nb * 256);
                uint32_t after;
                memcpy(&after, &got[nb * 256 < NB * 256 ? nb * 256 : 0], 4);
                CHECKF(!memcmp(got, want, sizeof(float) * nb * 256), "%s %s: %d blocks dequantize differently",
                       all[v]->name, k->name, nb);
                CHECKF(nb == NB || after == 0x7F7F7F7Fu, "%s %s: writes past %d blocks", all[v]->name, k->name, nb);
            }
    }
}

/* The 16-row interleaved layout (kernels/interleave_k.h), for the types
 * that have one: each level's x16 matrix x vector kernel against the
 * reference dot of the GGUF rows (quantized, random-byte and extreme blocks;
 * several groups and super-blocks), and each level's group dequantizer
 * against the reference dequantizer bit for bit. The scalar level has no
 * x16 kernel: its dequantizer is checked there. Q4_K, Q5_K, IQ4_XS and
 * Q6_K must have one (so that none drops out of the test unnoticed). */
TEST(types_k_interleaved_x16_match_reference) {
    const int with_x16[] = {SM_GGML_Q4_K, SM_GGML_Q5_K, SM_GGML_IQ4_XS, SM_GGML_Q6_K};
    for (size_t i = 0; i < sizeof with_x16 / sizeof with_x16[0]; i++)
        CHECKF(sm_type(with_x16[i])->interleave_x16 != NULL, "%s has no interleaved layout", sm_type(with_x16[i])->name);
    const sm_kernel_table *all[8];
    int nl = sm_kernels_available(all, 8);
    int shapes[][2] = {{16, 256}, {32, 768}, {48, 2048}, {16, 4352}};
    uint64_t s = 4242;
    for (int t = 0; t < N_KTYPES; t++) {
        const ktype *k = &ktypes[t];
        if (!sm_type(k->type)->interleave_x16) continue;
        size_t bb = block_bytes(k);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            int rows = shapes[si][0], cols = shapes[si][1], nb = cols / SM_QK_K;
            unsigned char *w = malloc(bb * nb * rows), *wi = malloc(bb * nb * rows);
            sm_block_q8_K *xq = malloc(sizeof *xq * nb);
            float *xd = malloc(sizeof(float) * cols), *wf = malloc(sizeof(float) * cols);
            float *ref = malloc(sizeof(float) * rows), *got = malloc(sizeof(float) * rows);
            float *want = malloc(sizeof(float) * 16 * cols), *deq = malloc(sizeof(float) * 16 * cols);
            double *mag = malloc(sizeof(double) * rows);
            make_case(k, w, xq, xd, wf, ref, mag, rows, cols, &s);
            sm_type(k->type)->interleave_x16(wi, w, rows, cols);
            for (int v = 0; v < nl; v++) {
                sm_type_kernels kk = kernels_of(all[v], k->type);
                REQUIRE(kk.dequant_x16 != NULL);
                for (int grp = 0; grp < rows / 16; grp++) {
                    sm_type(k->type)->to_float(want, w + (size_t)grp * 16 * nb * bb, 16 * cols);
                    memset(deq, 0x7F, sizeof(float) * 16 * cols);
                    kk.dequant_x16(deq, wi + (size_t)grp * 16 * nb * bb, cols);
                    CHECKF(!memcmp(deq, want, sizeof(float) * 16 * cols), "%s %s dequant_x16 group %d of %dx%d differs",
                           all[v]->name, k->name, grp, rows, cols);
                }
                if (!kk.matvec_x16) {
                    CHECKF(all[v]->level != SM_LEVEL_AVX512, "%s %s has no x16 kernel", all[v]->name, k->name);
                    continue;
                }
                for (int r = 0; r < rows; r++) got[r] = NAN;
                kk.matvec_x16(got, wi, xq, NULL, rows, cols);
                for (int r = 0; r < rows; r++)
                    CHECKF(fabs((double)got[r] - ref[r]) <= 2e-6 * mag[r] + 1e-6, "%s %s x16 %dx%d row %d: %.9g vs %.9g",
                           all[v]->name, k->name, rows, cols, r, got[r], ref[r]);
            }
            free(w); free(wi); free(xq); free(xd); free(wf); free(ref); free(got); free(want); free(deq); free(mag);
        }
    }
}

/* The integer prefill products (batch_x16) on the interleaved layout:
 * against a batch of Q8_K rows (a stride past each row), every token's
 * results are bit for bit the same level's one-token x16 kernel's for it,
 * and within the reference dot's bound; with accumulate they add to what c
 * held; c's columns past the rows and the row past the batch stay as they
 * were. Token counts cover the full tiles and each remainder. Every type
 * with the layout must have one on the AVX-512 level. */
TEST(types_k_batch_x16_match_one_token) {
    const sm_kernel_table *all[8];
    int nl = sm_kernels_available(all, 8);
    int shapes[][3] = {{16, 256, 1}, {32, 768, 5}, {48, 2048, 7}, {16, 512, 9}, {32, 256, 3}, {16, 4352, 6}};
    uint64_t s = 777;
    for (int t = 0; t < N_KTYPES; t++) {
        const ktype *k = &ktypes[t];
        if (!sm_type(k->type)->interleave_x16) continue;
        size_t bb = block_bytes(k);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            int rows = shapes[si][0], cols = shapes[si][1], m = shapes[si][2], nb = cols / SM_QK_K, ldc = rows + 3;
            size_t xqs = sizeof(sm_block_q8_K) * (size_t)nb + 12;
            unsigned char *w = malloc(bb * nb * rows), *wi = malloc(bb * nb * rows), *xq = malloc(xqs * m);
            sm_block_q8_K *x0 = malloc(sizeof *x0 * nb);
            float *xd = malloc(sizeof(float) * cols), *wf = malloc(sizeof(float) * cols);
            float *ref = malloc(sizeof(float) * rows), *one = malloc(sizeof(float) * rows);
            float *got = malloc(sizeof(float) * (size_t)ldc * (m + 1)), *before = malloc(sizeof(float) * (size_t)ldc * (m + 1));
            double *mag = malloc(sizeof(double) * rows);
            make_case(k, w, x0, xd, wf, ref, mag, rows, cols, &s);
            sm_type(k->type)->interleave_x16(wi, w, rows, cols);
            for (int i = 0; i < m; i++) {
                sm_block_q8_K *xi = (sm_block_q8_K *)(xq + (size_t)i * xqs);
                if (i == 0) memcpy(xi, x0, sizeof *x0 * nb);
                else random_q8_K(xi, nb, &s);
            }
            for (int v = 0; v < nl; v++) {
                sm_type_kernels kk = kernels_of(all[v], k->type);
                if (!kk.batch_x16) {
                    CHECKF(all[v]->level != SM_LEVEL_AVX512, "%s %s has no batch kernel", all[v]->name, k->name);
                    continue;
                }
                for (int acc = 0; acc < 2; acc++) {
                    for (int i = 0; i < ldc * (m + 1); i++) before[i] = got[i] = lcg(&s);
                    kk.batch_x16(got, (size_t)ldc, wi, xq, xqs, NULL, 0, m, rows, cols, acc);
                    int exact = 0, near = 0, kept = 0;
                    for (int i = 0; i < m; i++) {
                        const sm_block_q8_K *xi = (const sm_block_q8_K *)(xq + (size_t)i * xqs);
                        kk.matvec_x16(one, wi, xi, NULL, rows, cols);
                        q8_K_to_float(xd, xi, nb);
                        for (int r = 0; r < rows; r++) {
                            const unsigned char *wr = w + (size_t)r * nb * bb;
                            double want = k->dot(wr, xi, cols), mg = dot_magnitude(k, wr, xd, cols);
                            float g = got[(size_t)i * ldc + r], b = before[(size_t)i * ldc + r];
                            if (!acc) exact += memcmp(&g, &one[r], sizeof g) != 0;
                            near += !(fabs((double)g - (acc ? b : 0.0f) - want) <= 2e-6 * mg + 1e-5 * (fabs(b) + 1));
                        }
                        for (int r = rows; r < ldc; r++) kept += got[(size_t)i * ldc + r] != before[(size_t)i * ldc + r];
                    }
                    for (int r = 0; r < ldc; r++) kept += got[(size_t)m * ldc + r] != before[(size_t)m * ldc + r];
                    CHECKF(exact == 0 && near == 0 && kept == 0,
                           "%s %s batch_x16 %dx%d, %d tokens, accumulate %d: %d differ from the one-token kernel, %d "
                           "from the reference, %d outside the output changed",
                           all[v]->name, k->name, rows, cols, m, acc, exact, near, kept);
                }
            }
            free(w); free(wi); free(xq); free(x0); free(xd); free(wf); free(ref); free(one); free(got); free(before);
            free(mag);
        }
    }
}

/* The activation quantizer of each level gives the reference's bytes,
 * halves included (roundf rounds them away from zero). */
TEST(types_k_q8_K_quantizers_bit_exact) {
    const sm_kernel_table *all[8];
    int nl = sm_kernels_available(all, 8);
    enum { N = 1024 };
    static float x[N];
    static sm_block_q8_K want[N / 256], got[N / 256];
    uint64_t s = 5;
    for (int i = 0; i < N; i++) x[i] = lcg(&s) * 3.0f;
    /* block 1: amax 127 so that d = 1 and halves stay halves */
    for (int i = 256; i < 512; i++) x[i] = (float)((i % 40) - 20) + ((i % 3) ? 0.5f : -0.5f);
    x[300] = 127.0f;
    for (int i = 512; i < 768; i++) x[i] = 0.0f;   /* block 2: all zero */
    x[800] = -1e-30f;                               /* block 3: a tiny extreme */
    sm_quantize_q8_K(want, x, N);
    for (int v = 0; v < nl; v++) {
        memset(got, 0x55, sizeof got);
        kernels_of(all[v], SM_GGML_Q8_K).from_float(got, x, N);
        CHECKF(!memcmp(got, want, sizeof want), "%s: Q8_K activations differ from the reference", all[v]->name);
    }
}

/* ------------------------------------------------ llama.cpp's ggml */

typedef struct ggml_case {
    char name[16];
    unsigned char block[2][256];
    float deq[2][256], dot[2];
    double rel_rms;
} ggml_case;

static int unhex(const char *h, unsigned char *out, size_t cap) {
    size_t n = 0;
    while (h[0] && h[1] && h[0] != '\n' && n < cap) {
        unsigned v;
        if (sscanf(h, "%2x", &v) != 1) return -1;
        out[n++] = (unsigned char)v;
        h += 2;
    }
    return (int)n;
}

/* Reads ggml_k.txt: the Q8_K activations and one case per type. */
static int read_ggml_refs(unsigned char *q8k, ggml_case *cases, int cap) {
    char *text = read_file("tests/refs/types_k/ggml_k.txt", NULL);
    if (!text) return -1;
    int nc = -1, blk = -1, ok = 1;
    for (char *line = strtok(text, "\n"); line && ok; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "q8k ", 4)) ok = unhex(line + 4, q8k, 292) == 292;
        else if (!strncmp(line, "type ", 5) && nc + 1 < cap) {
            nc++;
            blk = -1;
            snprintf(cases[nc].name, sizeof cases[nc].name, "%s", line + 5);
        } else if (!strncmp(line, "block ", 6) && nc >= 0 && blk < 1) ok = unhex(line + 6, cases[nc].block[++blk], 256) > 0;
        else if (!strncmp(line, "deq ", 4) && blk >= 0) {
            char *p = line + 4;
            for (int i = 0; i < 256; i++) cases[nc].deq[blk][i] = strtof(p, &p);
        } else if (!strncmp(line, "dot ", 4) && blk >= 0) cases[nc].dot[blk] = strtof(line + 4, NULL);
        else if (!strncmp(line, "rel_rms ", 8) && nc >= 0) cases[nc].rel_rms = strtod(line + 8, NULL);
    }
    free(text);
    return ok ? nc + 1 : -1;
}

static const ktype *ktype_named(const char *name) {
    for (int t = 0; t < N_KTYPES; t++) {
        size_t i = 0;
        while (name[i] && ktypes[t].name[i] && (name[i] | 0x20) == (ktypes[t].name[i] | 0x20)) i++;
        if (!name[i] && !ktypes[t].name[i]) return &ktypes[t];
    }
    return NULL;
}

/* ggml's dequantization of a block quantized by ggml and of a block of
 * random bytes; ggml's dot of each with ggml's Q8_K activations, against
 * our reference dot and every kernel level. */
TEST(types_k_ggml_dequantize_and_dot) {
    static unsigned char q8k[292];
    static ggml_case cases[8];
    int nc = read_ggml_refs(q8k, cases, 8);
    if (nc < 0) SKIP("tests/refs/types_k/ggml_k.txt is absent or unreadable");
    CHECK(nc == N_KTYPES);
    const sm_kernel_table *all[8];
    int nl = sm_kernels_available(all, 8);
    const sm_block_q8_K *x = (const sm_block_q8_K *)q8k;
    float xd[256];
    q8_K_to_float(xd, x, 1);
    for (int c = 0; c < nc; c++) {
        const ktype *k = ktype_named(cases[c].name);
        REQUIRE(k != NULL);
        for (int b = 0; b < 2; b++) {
            float y[256];
            double amax = 0;
            sm_type(k->type)->to_float(y, cases[c].block[b], 256);
            int bad = 0;
            for (int i = 0; i < 256; i++)
                if (fabs(cases[c].deq[b][i]) > amax) amax = fabs(cases[c].deq[b][i]);
            for (int i = 0; i < 256; i++)
                if (fabs((double)y[i] - cases[c].deq[b][i]) > 1e-6 * amax) bad++;
            CHECKF(bad == 0, "%s block %d: %d of 256 values differ from ggml's", k->name, b, bad);
            double mag = dot_magnitude(k, cases[c].block[b], xd, 256);
            float ref = k->dot(cases[c].block[b], x, 256);
            CHECKF(fabs((double)ref - cases[c].dot[b]) <= 1e-5 * mag + 1e-6, "%s block %d: dot %.9g, ggml %.9g", k->name,
                   b, ref, cases[c].dot[b]);
            for (int v = 0; v < nl; v++) {
                float got = NAN;
                kernels_of(all[v], k->type).matvec(&got, cases[c].block[b], x, 1, 256);
                CHECKF(fabs((double)got - cases[c].dot[b]) <= 1e-5 * mag + 1e-6, "%s %s block %d: %.9g, ggml %.9g",
                       all[v]->name, k->name, b, got, cases[c].dot[b]);
            }
        }
    }
}

/* the inputs ggml_ref.c quantized (keep in step with its input_row) */
static void input_row(float *x, int n, int r) {
    uint64_t s = 1000 + (uint64_t)r;
    float scale = 0.02f * (float)(1 + r % 5);
    for (int i = 0; i < n; i++) x[i] = scale * (lcg(&s) + lcg(&s) + lcg(&s));
    for (int i = r; i < n; i += 97) x[i] *= 6.0f;
    if (r == 3)
        for (int i = 256; i < 512; i++) x[i] = 0.0f;
}

/* Our quantizers on the rows ggml quantized: at most 3% more rms error. */
TEST(types_k_quantizers_as_accurate_as_ggml) {
    static unsigned char q8k[292], q[4096 * 2];
    static ggml_case cases[8];
    static float x[4096], y[4096];
    int nc = read_ggml_refs(q8k, cases, 8);
    if (nc < 0) SKIP("tests/refs/types_k/ggml_k.txt is absent or unreadable");
    for (int c = 0; c < nc; c++) {
        const ktype *k = ktype_named(cases[c].name);
        REQUIRE(k != NULL);
        double err = 0, mag = 0;
        for (int r = 0; r < 16; r++) {
            input_row(x, 4096, r);
            sm_type(k->type)->from_float_ref(q, x, 4096);
            sm_type(k->type)->to_float(y, q, 4096);
            for (int i = 0; i < 4096; i++) { err += (double)(y[i] - x[i]) * (y[i] - x[i]); mag += (double)x[i] * x[i]; }
        }
        double ours = sqrt(err / mag);
        CHECKF(ours <= 1.03 * cases[c].rel_rms, "%s: relative rms error %.5f, ggml's %.5f", k->name, ours, cases[c].rel_rms);
    }
}

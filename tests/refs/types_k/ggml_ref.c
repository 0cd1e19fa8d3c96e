/* ggml_ref.c - expected values for tests/unit/test_types_k.c, computed by
 * llama.cpp's own ggml (built against its headers and libraries by
 * make_refs.sh; never part of SmallMind). For each 256-element format:
 *   - two blocks: one quantized by ggml from fixed inputs, one of random
 *     bytes with sane fp16 scales (every code and scale pattern), and ggml's
 *     dequantization of each (to_float);
 *   - ggml's Q8_K quantization of fixed activations and ggml's vec_dot of
 *     each block with it;
 *   - ggml's rms quantization error on 16 fixed rows of 4096 values, which
 *     SmallMind's quantizers must not exceed by more than a few percent.
 * The inputs come from the same generator the unit test uses (input_row). */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "ggml.h"
#include "ggml-cpu.h"

static float lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) / 16777216.0) * 2.0f - 1.0f;
}

/* Row r of the fixed inputs (keep in step with input_row in the test):
 * a sum of three uniforms (roughly normal), a per-row scale, a few outliers,
 * and a run of zeros in row 3. */
static void input_row(float *x, int n, int r) {
    uint64_t s = 1000 + (uint64_t)r;
    float scale = 0.02f * (float)(1 + r % 5);
    for (int i = 0; i < n; i++) x[i] = scale * (lcg(&s) + lcg(&s) + lcg(&s));
    for (int i = r; i < n; i += 97) x[i] *= 6.0f;
    if (r == 3)
        for (int i = 256; i < 512; i++) x[i] = 0.0f;
}

static void hex(const char *tag, const void *p, size_t n) {
    const unsigned char *b = p;
    printf("%s ", tag);
    for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
    printf("\n");
}

static void floats(const char *tag, const float *v, int n) {
    printf("%s", tag);
    for (int i = 0; i < n; i++) printf(" %.9g", v[i]);
    printf("\n");
}

int main(void) {
    ggml_cpu_init();
    const enum ggml_type types[] = {GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K,
                                    GGML_TYPE_IQ4_XS};
    /* offsets of the fp16 scales in each block (ggml-common.h) */
    const int d_off[] = {80, 108, 0, 0, 208, 0}, dmin_off[] = {82, -1, 2, 2, -1, -1};
    static float x[16][4096], y[4096], act[256];
    static unsigned char q[4096 * 2], q8k[512];
    for (int r = 0; r < 16; r++) input_row(x[r], 4096, r);
    uint64_t s = 77;
    for (int i = 0; i < 256; i++) act[i] = lcg(&s) * (i % 16 == 5 ? 3.0f : 1.0f);
    ggml_get_type_traits_cpu(GGML_TYPE_Q8_K)->from_float(act, q8k, 256);
    size_t q8k_bytes = ggml_row_size(GGML_TYPE_Q8_K, 256);
    printf("# expected values from llama.cpp's ggml (tests/refs/types_k/make_refs.sh)\n");
    hex("q8k", q8k, q8k_bytes);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        enum ggml_type ty = types[t];
        size_t bytes = ggml_row_size(ty, 256);
        const struct ggml_type_traits *tt = ggml_get_type_traits(ty);
        const struct ggml_type_traits_cpu *tc = ggml_get_type_traits_cpu(ty);
        printf("type %s\n", ggml_type_name(ty));
        for (int k = 0; k < 2; k++) {
            unsigned char blk[256];
            if (k == 0) {
                ggml_quantize_chunk(ty, x[0] + 512, blk, 0, 1, 256, NULL);
            } else {
                uint64_t s2 = 5 + t;
                for (size_t i = 0; i < bytes; i++) blk[i] = (unsigned char)(lcg(&s2) * 127.0f + 128.0f);
                ggml_fp16_t d = ggml_fp32_to_fp16(0.0123f), dm = ggml_fp32_to_fp16(0.0071f);
                memcpy(blk + d_off[t], &d, 2);
                if (dmin_off[t] >= 0) memcpy(blk + dmin_off[t], &dm, 2);
            }
            hex("block", blk, bytes);
            tt->to_float(blk, y, 256);
            floats("deq", y, 256);
            float dot = 0;
            tc->vec_dot(256, &dot, 0, blk, 0, q8k, 0, 1);
            printf("dot %.9g\n", dot);
        }
        double err = 0, mag = 0;
        for (int r = 0; r < 16; r++) {
            ggml_quantize_chunk(ty, x[r], q, 0, 1, 4096, NULL);
            tt->to_float(q, y, 4096);
            for (int i = 0; i < 4096; i++) {
                err += (double)(y[i] - x[r][i]) * (y[i] - x[r][i]);
                mag += (double)x[r][i] * x[r][i];
            }
        }
        printf("rel_rms %.9g\n", sqrt(err / mag));
    }
    return 0;
}

/* test_kernels.c - numeric kernels against known values and double
 * precision recomputation. */
#include "test.h"
#include "kernels/half.h"
#include "kernels/kernels.h"
#include "kernels/dispatch.h"

#include <math.h>
#include <stdlib.h>

TEST(fp16_known_values) {
    struct { uint16_t h; float f; } known[] = {
        {0x0000, 0.0f}, {0x3C00, 1.0f}, {0xC000, -2.0f}, {0x7BFF, 65504.0f}, {0x0001, 5.9604644775390625e-8f},
        {0x0400, 6.103515625e-5f}, {0x3555, 0.333251953125f}, {0x03FF, 6.097555160522461e-5f},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        CHECKF(sm_fp16_to_fp32(known[i].h) == known[i].f, "0x%04x", known[i].h);
        CHECKF(sm_fp32_to_fp16(known[i].f) == known[i].h, "%g", known[i].f);
    }
    CHECK(isinf(sm_fp16_to_fp32(0x7C00)) && isnan(sm_fp16_to_fp32(0x7E00)));
    CHECK(sm_fp32_to_fp16(1e6f) == 0x7C00);          /* overflow -> inf */
    CHECK(sm_fp32_to_fp16(1.00048828125f) == 0x3C00); /* exactly half an ulp: to even */
    CHECK(sm_fp32_to_fp16(1.00146484375f) == 0x3C02); /* 1.5 ulp: to even (up) */
    /* every finite half survives a round trip */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue;  /* NaN */
        if (sm_fp32_to_fp16(sm_fp16_to_fp32((uint16_t)h)) != h) bad++;
    }
    CHECK(bad == 0);
}

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) / 16777216.0) * 2.0f - 1.0f;
}

TEST(matvec_f32_and_f16_against_double) {
    uint64_t s = 5;
    int shapes[][2] = {{1, 1}, {3, 7}, {17, 33}, {64, 172}, {5, 1000}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int r = shapes[k][0], c = shapes[k][1];
        float *w = malloc(sizeof(float) * r * c), *x = malloc(sizeof(float) * c), *o = malloc(sizeof(float) * r);
        uint16_t *wh = malloc(2 * (size_t)r * c);
        for (int i = 0; i < r * c; i++) {
            wh[i] = sm_fp32_to_fp16(frand(&s));
            w[i] = sm_fp16_to_fp32(wh[i]);
        }
        for (int i = 0; i < c; i++) x[i] = frand(&s);
        sm_matvec_f32(o, w, x, r, c);
        float *oh = malloc(sizeof(float) * r);
        sm_matvec_f16(oh, wh, x, r, c);
        for (int i = 0; i < r; i++) {
            double ref = 0;
            for (int j = 0; j < c; j++) ref += (double)w[(size_t)i * c + j] * x[j];
            CHECKF(fabs(o[i] - ref) <= 1e-5 * c, "f32 %dx%d row %d", r, c, i);
            CHECKF(fabs(oh[i] - ref) <= 1e-5 * c, "f16 %dx%d row %d", r, c, i);
        }
        free(w); free(x); free(o); free(wh); free(oh);
    }
}

TEST(norm_softmax_swiglu_rope_against_definitions) {
    float x[5] = {1, -2, 3, 0.5f, -0.25f}, w[5] = {1, 2, 0.5f, 1, -1}, out[5];
    double ss = 0;
    for (int i = 0; i < 5; i++) ss += (double)x[i] * x[i];
    double inv = 1.0 / sqrt(ss / 5 + 1e-5), mu = (1 - 2 + 3 + 0.5 - 0.25) / 5.0, var = 0;
    float mean, rstd, b[5] = {0.5f, 0, -1, 2, 0};
    sm_norm_fwd_scalar(out, &mean, &rstd, x, w, NULL, 5, 1e-5f, 0);
    for (int i = 0; i < 5; i++) CHECK(fabs(out[i] - x[i] * inv * w[i]) < 1e-6);
    for (int i = 0; i < 5; i++) var += (x[i] - mu) * (x[i] - mu) / 5;
    sm_norm_fwd_scalar(out, &mean, &rstd, x, w, b, 5, 1e-5f, 1);
    for (int i = 0; i < 5; i++) CHECK(fabs(out[i] - ((x[i] - mu) / sqrt(var + 1e-5) * w[i] + b[i])) < 1e-6);
    float sm[4] = {1000, 1001, 1002, 999};
    sm_softmax(sm, 4);
    double z = exp(-2) + exp(-1) + 1 + exp(-3);
    CHECK(fabs(sm[2] - 1 / z) < 1e-6 && fabs(sm[3] - exp(-3) / z) < 1e-6);
    float g[3] = {0, 2, -3}, u[3] = {1, 1, 2}, o[3];
    sm_swiglu(o, g, u, 3);
    CHECK(o[0] == 0 && fabs(o[1] - 2 / (1 + exp(-2.0))) < 1e-6 && fabs(o[2] - 2 * (-3 / (1 + exp(3.0)))) < 1e-6);
    /* a quarter turn maps (a, b) to (-b, a); dims past rot_dim are untouched */
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8}, c[2] = {0, 1}, sn[2] = {1, 0};
    sm_rope(v, 2, 4, 2, c, sn);
    CHECK(v[0] == -2 && v[1] == 1 && v[2] == 3 && v[3] == 4 && v[4] == -6 && v[5] == 5 && v[6] == 7);
}

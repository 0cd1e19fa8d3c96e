/* avx512_emu.h - the AVX-512 intrinsics of the kernels, emulated on any
 * AVX2 host, for `make emu-test` (see src/kernels/x86_isa.h). Most come
 * from SIMDe (Debian's libsimde-dev: portable implementations of the x86
 * intrinsics, mapped to the Intel names by its native aliases); the few
 * that its 0.7.4 lacks are written below, element by element, from the
 * operation each has in Intel's Intrinsics Guide. Reductions add in the
 * order of halves (lanes i and i + 8, then i + 4, i + 2, i + 1), the order
 * GCC's own _mm512_reduce_* follow, so the emulated kernels give the same
 * bits as the real ones. */
#ifndef SM_TESTS_AVX512_EMU_H
#define SM_TESTS_AVX512_EMU_H

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>
#include <simde/x86/fma.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline simde__m512 emu512_ps(const float v[16]) {
    simde__m512_private r;
    memcpy(&r.f32, v, sizeof(float) * 16);
    return simde__m512_from_private(r);
}

static inline simde__m512i emu512_i32(const int32_t v[16]) {
    simde__m512i_private r;
    memcpy(&r.i32, v, sizeof(int32_t) * 16);
    return simde__m512i_from_private(r);
}

/* 16 int32 as floats (round to nearest, as the default MXCSR does) */
static inline simde__m512 emu_mm512_cvtepi32_ps(simde__m512i a) {
    simde__m512i_private x = simde__m512i_to_private(a);
    float v[16];
    for (int i = 0; i < 16; i++) v[i] = (float)x.i32[i];
    return emu512_ps(v);
}

/* 8 floats as 8 doubles (exact) */
static inline simde__m512d emu_mm512_cvtps_pd(simde__m256 a) {
    simde__m256_private x = simde__m256_to_private(a);
    simde__m512d_private r;
    for (int i = 0; i < 8; i++) r.f64[i] = (double)x.f32[i];
    return simde__m512d_from_private(r);
}

/* widening of the 16 lanes of a 128-bit (bytes, signed or not) or 256-bit
 * (words) vector */
static inline simde__m512i emu_widen_bytes(simde__m128i a, int is_signed) {
    simde__m128i_private x = simde__m128i_to_private(a);
    int32_t v[16];
    for (int i = 0; i < 16; i++) v[i] = is_signed ? x.i8[i] : x.u8[i];
    return emu512_i32(v);
}

static inline simde__m512i emu_mm512_cvtepi8_epi32(simde__m128i a) { return emu_widen_bytes(a, 1); }
static inline simde__m512i emu_mm512_cvtepu8_epi32(simde__m128i a) { return emu_widen_bytes(a, 0); }

static inline simde__m512i emu_mm512_cvtepu16_epi32(simde__m256i a) {
    simde__m256i_private x = simde__m256i_to_private(a);
    int32_t v[16];
    for (int i = 0; i < 16; i++) v[i] = x.u16[i];
    return emu512_i32(v);
}

/* 16 halves (IEEE binary16) as floats: exact, through F16C 8 at a time */
static inline simde__m512 emu_mm512_cvtph_ps(simde__m256i a) {
    simde__m256i_private x = simde__m256i_to_private(a);
    float v[16];
    for (int i = 0; i < 16; i++) v[i] = _cvtsh_ss(x.u16[i]);
    return emu512_ps(v);
}

/* 16 floats rounded to halves (imm: the rounding, as _cvtss_sh takes it), through F16C one at a time */
static inline simde__m256i emu_mm512_cvtps_ph(simde__m512 a, int imm) {
    simde__m512_private x = simde__m512_to_private(a);
    simde__m256i_private r;
    for (int i = 0; i < 16; i++) r.u16[i] = _cvtss_sh(x.f32[i], imm);
    return simde__m256i_from_private(r);
}

/* arithmetic shift right of each int32 by imm (32 or more: the sign) */
static inline simde__m512i emu_mm512_srai_epi32(simde__m512i a, unsigned imm) {
    simde__m512i_private x = simde__m512i_to_private(a);
    int32_t v[16];
    for (int i = 0; i < 16; i++) v[i] = imm > 31 ? (x.i32[i] < 0 ? -1 : 0) : x.i32[i] >> imm;
    return emu512_i32(v);
}

/* within each 128-bit lane, element j is the lane's element (imm >> 2 j) & 3 */
static inline simde__m512 emu_mm512_permute_ps(simde__m512 a, int imm) {
    simde__m512_private x = simde__m512_to_private(a);
    float v[16];
    for (int l = 0; l < 4; l++)
        for (int j = 0; j < 4; j++) v[4 * l + j] = x.f32[4 * l + ((imm >> (2 * j)) & 3)];
    return emu512_ps(v);
}

/* 128-bit lanes: the two low ones picked from a by imm's bits 0-3, the two
 * high ones from b by bits 4-7 */
static inline simde__m512 emu_mm512_shuffle_f32x4(simde__m512 a, simde__m512 b, int imm) {
    simde__m512_private x = simde__m512_to_private(a), y = simde__m512_to_private(b);
    float v[16];
    for (int l = 0; l < 4; l++) {
        const simde__m512_private *src = l < 2 ? &x : &y;
        int from = (imm >> (2 * l)) & 3;
        for (int j = 0; j < 4; j++) v[4 * l + j] = src->f32[4 * from + j];
    }
    return emu512_ps(v);
}

static inline simde__m512 emu_mm512_maskz_loadu_ps(simde__mmask16 k, const void *p) {
    float v[16];
    for (int i = 0; i < 16; i++) v[i] = (k >> i & 1) ? ((const float *)p)[i] : 0.0f;
    return emu512_ps(v);
}

static inline void emu_mm512_mask_storeu_ps(void *p, simde__mmask16 k, simde__m512 a) {
    simde__m512_private x = simde__m512_to_private(a);
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) ((float *)p)[i] = x.f32[i];
}

/* a non-temporal store is, for the values, an aligned store */
static inline void emu_mm512_stream_ps(void *p, simde__m512 a) { simde_mm512_store_ps(p, a); }

static inline simde__m256i emu_mm256_maskz_loadu_epi16(simde__mmask16 k, const void *p) {
    simde__m256i_private r;
    for (int i = 0; i < 16; i++) r.u16[i] = (k >> i & 1) ? ((const uint16_t *)p)[i] : 0;
    return simde__m256i_from_private(r);
}

/* lane i of a to base + idx[i] * scale bytes, where mask bit i is set */
static inline void emu_mm512_mask_i32scatter_ps(void *base, simde__mmask16 k, simde__m512i idx, simde__m512 a,
                                                int scale) {
    simde__m512i_private ix = simde__m512i_to_private(idx);
    simde__m512_private x = simde__m512_to_private(a);
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) memcpy((char *)base + (ptrdiff_t)ix.i32[i] * scale, &x.f32[i], sizeof(float));
}

static inline float emu_mm512_reduce_add_ps(simde__m512 a) {
    simde__m512_private x = simde__m512_to_private(a);
    float v[16];
    memcpy(v, &x.f32, sizeof v);
    for (int w = 8; w >= 1; w /= 2)
        for (int i = 0; i < w; i++) v[i] = v[i] + v[i + w];
    return v[0];
}

static inline float emu_mm512_reduce_max_ps(simde__m512 a) {
    simde__m512_private x = simde__m512_to_private(a);
    float v[16];
    memcpy(v, &x.f32, sizeof v);
    for (int w = 8; w >= 1; w /= 2)
        for (int i = 0; i < w; i++) v[i] = v[i] > v[i + w] ? v[i] : v[i + w];
    return v[0];
}

static inline int emu_mm512_reduce_add_epi32(simde__m512i a) {
    simde__m512i_private x = simde__m512i_to_private(a);
    uint32_t s = 0;
    for (int i = 0; i < 16; i++) s += (uint32_t)x.i32[i];
    return (int)s;
}

/* a float as bfloat16, as VCVTNE2PS2BF16 does it: NaN stays a quiet NaN,
 * a denormal becomes a zero of its sign, the rest rounds to nearest even */
static inline uint16_t emu_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

/* 32 bfloat16: the 16 of b, then the 16 of a */
static inline simde__m512bh emu_mm512_cvtne2ps_pbh(simde__m512 a, simde__m512 b) {
    simde__m512_private x = simde__m512_to_private(a), y = simde__m512_to_private(b);
    uint16_t v[32];
    for (int i = 0; i < 16; i++) {
        v[i] = emu_bf16(y.f32[i]);
        v[16 + i] = emu_bf16(x.f32[i]);
    }
    simde__m512bh r;
    memcpy(&r, v, sizeof r);
    return r;
}

#undef _mm512_cvtepi32_ps
#undef _mm512_cvtepi8_epi32
#undef _mm512_cvtepu8_epi32
#undef _mm512_cvtepu16_epi32
#undef _mm512_cvtph_ps
#undef _mm512_cvtps_ph
#undef _mm512_srai_epi32
#undef _mm512_shuffle_f32x4
#undef _mm512_maskz_loadu_ps
#undef _mm512_mask_storeu_ps
#undef _mm512_stream_ps
#undef _mm256_maskz_loadu_epi16
#undef _mm512_mask_i32scatter_ps
#undef _mm512_reduce_add_ps
#undef _mm512_reduce_max_ps
#undef _mm512_reduce_add_epi32
#undef _mm512_cvtne2ps_pbh
#define _mm512_cvtepi32_ps emu_mm512_cvtepi32_ps
#define _mm512_cvtps_pd emu_mm512_cvtps_pd
#define _mm512_cvtepi8_epi32 emu_mm512_cvtepi8_epi32
#define _mm512_cvtepu8_epi32 emu_mm512_cvtepu8_epi32
#define _mm512_cvtepu16_epi32 emu_mm512_cvtepu16_epi32
#define _mm512_cvtph_ps emu_mm512_cvtph_ps
#define _mm512_cvtps_ph emu_mm512_cvtps_ph
#define _mm512_srai_epi32 emu_mm512_srai_epi32
#define _mm512_shuffle_f32x4 emu_mm512_shuffle_f32x4
#define _mm512_permute_ps emu_mm512_permute_ps
#define _mm512_maskz_loadu_ps emu_mm512_maskz_loadu_ps
#define _mm512_mask_storeu_ps emu_mm512_mask_storeu_ps
#define _mm512_stream_ps emu_mm512_stream_ps
#define _mm256_maskz_loadu_epi16 emu_mm256_maskz_loadu_epi16
#define _mm512_mask_i32scatter_ps emu_mm512_mask_i32scatter_ps
#define _mm512_reduce_add_ps emu_mm512_reduce_add_ps
#define _mm512_reduce_max_ps emu_mm512_reduce_max_ps
#define _mm512_reduce_add_epi32 emu_mm512_reduce_add_epi32
#define _mm512_cvtne2ps_pbh emu_mm512_cvtne2ps_pbh

#endif

/* types.c - the element-type table (see types.h). Block sizes are ggml's
 * (ggml/src/ggml-common.h); a type we cannot run still has its name and
 * layout so that files holding it parse and the error can name it. */
#include "types.h"
#include "kernels.h"
#include "quant.h"
#include "quant_k.h"
#include "interleave.h"
#include "simd.h"
#include "quant_legacy.h"
#include "interleave_legacy.h"
#include "interleave_k.h"
#include "simd_legacy.h"

#include <stdio.h>
#include <string.h>

/* A slot that exists only where its instruction set does. */
#if defined(__x86_64__)
#define X86(f) f
#else
#define X86(f) NULL
#endif
#if defined(__aarch64__)
#define ARM(f) f
#else
#define ARM(f) NULL
#endif

#define SCALAR SM_LEVEL_SCALAR
#define NEON SM_LEVEL_NEON
#define AVX2 SM_LEVEL_AVX2
#define AVX512 SM_LEVEL_AVX512

static const sm_type_traits table[SM_GGML_TYPE_COUNT] = {
    [SM_GGML_F32] = {"F32", 1, 4, SM_GGML_F32, sm_f32_copy_row, sm_f32_store_row, NULL,
                     .level = {[SCALAR] = {.matvec = sm_matvec_f32},
                               [NEON] = {.matvec = ARM(sm_matvec_f32_neon)},
                               [AVX2] = {.matvec = X86(sm_matvec_f32_avx2), .matvec_n = X86(sm_matvec_f32_n_avx2)},
                               [AVX512] = {.matvec = X86(sm_matvec_f32_avx512), .matvec_n = X86(sm_matvec_f32_n_avx512)}}},
    [SM_GGML_F16] = {"F16", 1, 2, SM_GGML_F32, sm_f16_to_f32_row, sm_f32_to_f16_row, sm_interleave_f16,
                     .level = {[SCALAR] = {.matvec = sm_matvec_f16},
                               [NEON] = {.matvec = ARM(sm_matvec_f16_neon)},
                               [AVX2] = {.matvec = X86(sm_matvec_f16_avx2), .to_float = X86(sm_f16_to_f32_avx2),
                                         .from_float = X86(sm_f32_to_f16_avx2), .matvec_x16 = X86(sm_matvec_f16_x16_avx2)},
                               [AVX512] = {.matvec = X86(sm_matvec_f16_avx512), .to_float = X86(sm_f16_to_f32_avx512),
                                           .from_float = X86(sm_f32_to_f16_avx512), .matvec_n = X86(sm_matvec_f16_n_avx512)}}},
    [SM_GGML_Q4_0] = {"Q4_0", 32, 18, SM_GGML_Q8_0, sm_dequantize_q4_0, sm_quantize_q4_0, sm_interleave_q4_0,
                      .level = {[SCALAR] = {.matvec = sm_matvec_q4_0_scalar, .dequant_x16 = sm_dequantize_q4_0x16},
                                [NEON] = {.matvec = ARM(sm_matvec_q4_0_neon)},
                                [AVX2] = {.matvec = X86(sm_matvec_q4_0_avx2),
                                          .matvec_x16 = X86(sm_matvec_q4_0_x16_avx2),
                                          .batch_x16 = X86(sm_batch_q4_0_x16_avx2)},
                                [AVX512] = {.matvec = X86(sm_matvec_q4_0_avx512),
                                            .matvec_x16 = X86(sm_matvec_q4_0_x16_avx512),
                                            .batch_x16 = X86(sm_batch_q4_0_x16_avx512),
                                            .dequant_x16 = X86(sm_dequantize_q4_0x16_avx512)}}},
    [SM_GGML_Q4_1] = {"Q4_1", 32, 20, SM_GGML_Q8_1, sm_dequantize_q4_1, sm_quantize_q4_1, sm_interleave_q4_1,
                      .level = {[SCALAR] = {.matvec = sm_matvec_q4_1_scalar, .dequant_x16 = sm_dequantize_q4_1x16},
                                [NEON] = {.matvec = ARM(sm_matvec_q4_1_neon)},
                                [AVX2] = {.matvec = X86(sm_matvec_q4_1_avx2), .to_float = X86(sm_dequantize_q4_1_avx2),
                                          .matvec_x16 = X86(sm_matvec_q4_1_x16_avx2),
                                          .dequant_x16_cols = X86(sm_dequantize_q4_1x16_cols_avx2)},
                                [AVX512] = {.matvec = X86(sm_matvec_q4_1_avx512),
                                            .matvec_x16 = X86(sm_matvec_q4_1_x16_avx512),
                                            .batch_x16 = X86(sm_batch_q4_1_x16_avx512),
                                            .dequant_x16 = X86(sm_dequantize_q4_1x16_avx512)}}},
    [SM_GGML_Q5_0] = {"Q5_0", 32, 22, SM_GGML_Q8_0, sm_dequantize_q5_0, sm_quantize_q5_0, sm_interleave_q5_0,
                      .level = {[SCALAR] = {.matvec = sm_matvec_q5_0_scalar, .dequant_x16 = sm_dequantize_q5_0x16},
                                [NEON] = {.matvec = ARM(sm_matvec_q5_0_neon)},
                                [AVX2] = {.matvec = X86(sm_matvec_q5_0_avx2), .to_float = X86(sm_dequantize_q5_0_avx2),
                                          .matvec_x16 = X86(sm_matvec_q5_0_x16_avx2),
                                          .dequant_x16_cols = X86(sm_dequantize_q5_0x16_cols_avx2)},
                                [AVX512] = {.matvec = X86(sm_matvec_q5_0_avx512),
                                            .matvec_x16 = X86(sm_matvec_q5_0_x16_avx512),
                                            .batch_x16 = X86(sm_batch_q5_0_x16_avx512),
                                            .dequant_x16 = X86(sm_dequantize_q5_0x16_avx512)}}},
    [SM_GGML_Q5_1] = {"Q5_1", 32, 24, SM_GGML_Q8_1, sm_dequantize_q5_1, sm_quantize_q5_1, sm_interleave_q5_1,
                      .level = {[SCALAR] = {.matvec = sm_matvec_q5_1_scalar, .dequant_x16 = sm_dequantize_q5_1x16},
                                [NEON] = {.matvec = ARM(sm_matvec_q5_1_neon)},
                                [AVX2] = {.matvec = X86(sm_matvec_q5_1_avx2), .to_float = X86(sm_dequantize_q5_1_avx2),
                                          .matvec_x16 = X86(sm_matvec_q5_1_x16_avx2),
                                          .dequant_x16_cols = X86(sm_dequantize_q5_1x16_cols_avx2)},
                                [AVX512] = {.matvec = X86(sm_matvec_q5_1_avx512),
                                            .matvec_x16 = X86(sm_matvec_q5_1_x16_avx512),
                                            .batch_x16 = X86(sm_batch_q5_1_x16_avx512),
                                            .dequant_x16 = X86(sm_dequantize_q5_1x16_avx512)}}},
    [SM_GGML_Q8_0] = {"Q8_0", 32, 34, SM_GGML_Q8_0, sm_dequantize_q8_0, sm_quantize_q8_0, sm_interleave_q8_0,
                      .level = {[SCALAR] = {.matvec = sm_matvec_q8_0_scalar, .from_float = sm_quantize_q8_0,
                                            .dequant_x16 = sm_dequantize_q8_0x16},
                                [NEON] = {.matvec = ARM(sm_matvec_q8_0_neon)},
                                [AVX2] = {.matvec = X86(sm_matvec_q8_0_avx2), .from_float = X86(sm_quantize_q8_0_avx2),
                                          .matvec_x16 = X86(sm_matvec_q8_0_x16_avx2),
                                          .dequant_x16_cols = X86(sm_dequantize_q8_0x16_cols_avx2)},
                                [AVX512] = {.matvec = X86(sm_matvec_q8_0_avx512),
                                            .matvec_x16 = X86(sm_matvec_q8_0_x16_avx512),
                                            .batch_x16 = X86(sm_batch_q8_0_x16_avx512),
                                            .dequant_x16 = X86(sm_dequantize_q8_0x16_avx512)}}},
    /* the activation format of the Q4_1/Q5_1 dots: Q8_0 plus s = d * sum(q) */
    [SM_GGML_Q8_1] = {"Q8_1", 32, 36, SM_GGML_Q8_1, sm_dequantize_q8_1, sm_quantize_q8_1, NULL,
                      .level = {[SCALAR] = {.from_float = sm_quantize_q8_1},
                                [NEON] = {.from_float = ARM(sm_quantize_q8_1_neon)},
                                [AVX2] = {.from_float = X86(sm_quantize_q8_1_avx2)}}},
    [SM_GGML_Q2_K] = {"Q2_K", 256, 84, SM_GGML_Q8_K, sm_dequantize_q2_K, sm_quantize_q2_K, NULL,
                      .level = {[SCALAR] = {.matvec = sm_matvec_q2_K_scalar},
                                [NEON] = {.matvec = ARM(sm_matvec_q2_K_neon)},
                                [AVX2] = {.matvec = X86(sm_matvec_q2_K_avx2), .to_float = X86(sm_dequantize_q2_K_avx2)},
                                [AVX512] = {.matvec = X86(sm_matvec_q2_K_avx512)}}},
    [SM_GGML_Q3_K] = {"Q3_K", 256, 110, SM_GGML_Q8_K, sm_dequantize_q3_K, sm_quantize_q3_K, NULL,
                      .level = {[SCALAR] = {.matvec = sm_matvec_q3_K_scalar},
                                [NEON] = {.matvec = ARM(sm_matvec_q3_K_neon)},
                                [AVX2] = {.matvec = X86(sm_matvec_q3_K_avx2), .to_float = X86(sm_dequantize_q3_K_avx2)},
                                [AVX512] = {.matvec = X86(sm_matvec_q3_K_avx512)}}},
    [SM_GGML_Q4_K] = {"Q4_K", 256, 144, SM_GGML_Q8_K, sm_dequantize_q4_K, sm_quantize_q4_K_fit, sm_interleave_q4_K,
                      .level = {[SCALAR] = {.matvec = sm_matvec_q4_K_scalar, .dequant_x16 = sm_dequantize_q4_Kx16},
                                [NEON] = {.matvec = ARM(sm_matvec_q4_K_neon)},
                                [AVX2] = {.matvec = X86(sm_matvec_q4_K_avx2), .to_float = X86(sm_dequantize_q4_K_avx2),
                                          .matvec_x16 = X86(sm_matvec_q4_K_x16_avx2),
                                          .dequant_x16 = X86(sm_dequantize_q4_Kx16_avx2)},
                                [AVX512] = {.matvec = X86(sm_matvec_q4_K_avx512),
                                            .matvec_x16 = X86(sm_matvec_q4_K_x16_avx512),
                                            .batch_x16 = X86(sm_batch_q4_K_x16_avx512),
                                            .dequant_x16 = X86(sm_dequantize_q4_Kx16_avx512)}}},
    [SM_GGML_Q5_K] = {"Q5_K", 256, 176, SM_GGML_Q8_K, sm_dequantize_q5_K, sm_quantize_q5_K, sm_interleave_q5_K,
                      .level = {[SCALAR] = {.matvec = sm_matvec_q5_K_scalar, .dequant_x16 = sm_dequantize_q5_Kx16},
                                [NEON] = {.matvec = ARM(sm_matvec_q5_K_neon)},
                                [AVX2] = {.matvec = X86(sm_matvec_q5_K_avx2), .to_float = X86(sm_dequantize_q5_K_avx2)},
                                [AVX512] = {.matvec = X86(sm_matvec_q5_K_avx512),
                                            .matvec_x16 = X86(sm_matvec_q5_K_x16_avx512),
                                            .batch_x16 = X86(sm_batch_q5_K_x16_avx512),
                                            .dequant_x16 = X86(sm_dequantize_q5_Kx16_avx512)}}},
    [SM_GGML_Q6_K] = {"Q6_K", 256, 210, SM_GGML_Q8_K, sm_dequantize_q6_K, sm_quantize_q6_K_fit, sm_interleave_q6_K,
                      .level = {[SCALAR] = {.matvec = sm_matvec_q6_K_scalar, .dequant_x16 = sm_dequantize_q6_Kx16},
                                [NEON] = {.matvec = ARM(sm_matvec_q6_K_neon)},
                                [AVX2] = {.matvec = X86(sm_matvec_q6_K_avx2), .to_float = X86(sm_dequantize_q6_K_avx2)},
                                [AVX512] = {.matvec = X86(sm_matvec_q6_K_avx512),
                                            .matvec_x16 = X86(sm_matvec_q6_K_x16_avx512),
                                            .batch_x16 = X86(sm_batch_q6_K_x16_avx512),
                                            .dequant_x16 = X86(sm_dequantize_q6_Kx16_avx512)}}},
    /* the activation format of the K-quant dots: f32 scale, 256 codes, 16 sums */
    [SM_GGML_Q8_K] = {"Q8_K", 256, 292, SM_GGML_Q8_K, sm_dequantize_q8_K, sm_quantize_q8_K, NULL,
                      .level = {[SCALAR] = {.from_float = sm_quantize_q8_K},
                                [AVX2] = {.from_float = X86(sm_quantize_q8_K_avx2)}}},
    [SM_GGML_IQ2_XXS] = {"IQ2_XXS", 256, 66},
    [SM_GGML_IQ2_XS] = {"IQ2_XS", 256, 74},
    [SM_GGML_IQ3_XXS] = {"IQ3_XXS", 256, 98},
    [SM_GGML_IQ1_S] = {"IQ1_S", 256, 50},
    [SM_GGML_IQ4_NL] = {"IQ4_NL", 32, 18, SM_GGML_Q8_0, sm_dequantize_iq4_nl, sm_quantize_iq4_nl, sm_interleave_iq4_nl,
                        .level = {[SCALAR] = {.matvec = sm_matvec_iq4_nl_scalar, .dequant_x16 = sm_dequantize_iq4_nlx16},
                                  [NEON] = {.matvec = ARM(sm_matvec_iq4_nl_neon)},
                                  [AVX2] = {.matvec = X86(sm_matvec_iq4_nl_avx2), .to_float = X86(sm_dequantize_iq4_nl_avx2),
                                          .matvec_x16 = X86(sm_matvec_iq4_nl_x16_avx2),
                                          .dequant_x16_cols = X86(sm_dequantize_iq4_nlx16_cols_avx2)},
                                  [AVX512] = {.matvec = X86(sm_matvec_iq4_nl_avx512),
                                              .matvec_x16 = X86(sm_matvec_iq4_nl_x16_avx512),
                                            .batch_x16 = X86(sm_batch_iq4_nl_x16_avx512),
                                              .dequant_x16 = X86(sm_dequantize_iq4_nlx16_avx512)}}},
    [SM_GGML_IQ3_S] = {"IQ3_S", 256, 110},
    [SM_GGML_IQ2_S] = {"IQ2_S", 256, 82},
    [SM_GGML_IQ4_XS] = {"IQ4_XS", 256, 136, SM_GGML_Q8_K, sm_dequantize_iq4_xs, sm_quantize_iq4_xs, sm_interleave_iq4_xs,
                        .level = {[SCALAR] = {.matvec = sm_matvec_iq4_xs_scalar, .dequant_x16 = sm_dequantize_iq4_xsx16},
                                  [NEON] = {.matvec = ARM(sm_matvec_iq4_xs_neon)},
                                  [AVX2] = {.matvec = X86(sm_matvec_iq4_xs_avx2), .to_float = X86(sm_dequantize_iq4_xs_avx2),
                                            .matvec_x16 = X86(sm_matvec_iq4_xs_x16_avx2),
                                            .dequant_x16 = X86(sm_dequantize_iq4_xsx16_avx2)},
                                  [AVX512] = {.matvec = X86(sm_matvec_iq4_xs_avx512),
                                              .matvec_x16 = X86(sm_matvec_iq4_xs_x16_avx512),
                                            .batch_x16 = X86(sm_batch_iq4_xs_x16_avx512),
                                              .dequant_x16 = X86(sm_dequantize_iq4_xsx16_avx512)}}},
    [SM_GGML_I8] = {"I8", 1, 1},
    [SM_GGML_I16] = {"I16", 1, 2},
    [SM_GGML_I32] = {"I32", 1, 4},
    [SM_GGML_I64] = {"I64", 1, 8},
    [SM_GGML_F64] = {"F64", 1, 8},
    [SM_GGML_IQ1_M] = {"IQ1_M", 256, 56},
    [SM_GGML_BF16] = {"BF16", 1, 2, SM_GGML_F32, sm_bf16_to_f32_row, sm_f32_to_bf16_row, sm_interleave_f16,
                      .level = {[SCALAR] = {.matvec = sm_matvec_bf16},
                                [NEON] = {.matvec = ARM(sm_matvec_bf16_neon), .to_float = ARM(sm_bf16_to_f32_neon)},
                                [AVX2] = {.matvec = X86(sm_matvec_bf16_avx2), .to_float = X86(sm_bf16_to_f32_avx2),
                                          .matvec_x16 = X86(sm_matvec_bf16_x16_avx2)},
                                [AVX512] = {.matvec = X86(sm_matvec_bf16_avx512), .to_float = X86(sm_bf16_to_f32_avx512),
                                            .matvec_n = X86(sm_matvec_bf16_n_avx512)}}},
    [SM_GGML_TQ1_0] = {"TQ1_0", 256, 54},
    [SM_GGML_TQ2_0] = {"TQ2_0", 256, 66},
};

const sm_type_traits *sm_type(uint32_t type) {
    return type < SM_GGML_TYPE_COUNT && table[type].name ? &table[type] : NULL;
}

const char *sm_type_name(uint32_t type) {
    const sm_type_traits *t = sm_type(type);
    return t ? t->name : NULL;
}

int sm_type_by_name(const char *name) {
    for (int i = 0; i < SM_GGML_TYPE_COUNT; i++) {
        const char *n = table[i].name;
        if (!n || strlen(n) != strlen(name)) continue;
        size_t k = 0;
        while (n[k] && (n[k] == name[k] || (n[k] >= 'A' && n[k] <= 'Z' && n[k] + 32 == name[k]))) k++;
        if (!n[k]) return i;
    }
    return -1;
}

size_t sm_type_row_bytes(uint32_t type, int64_t n) {
    const sm_type_traits *t = sm_type(type);
    if (!t || !t->blck) return 0;
    return (size_t)(n / t->blck) * t->bytes;
}

int sm_type_runnable(uint32_t type) {
    const sm_type_traits *t = sm_type(type);
    return t && t->to_float && t->level[SM_LEVEL_SCALAR].matvec;
}

void sm_type_runnable_list(char *buf, size_t cap) {
    size_t n = 0;
    if (cap) buf[0] = '\0';
    for (int i = 0; i < SM_GGML_TYPE_COUNT && n < cap; i++) {
        if (!sm_type_runnable((uint32_t)i)) continue;
        int w = snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", table[i].name);
        if (w < 0 || (size_t)w >= cap - n) break;
        n += (size_t)w;
    }
}

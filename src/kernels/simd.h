/* simd.h - the SIMD kernel variants (kernels_x86.c, kernels_neon.c), for
 * the tables that choose among them: types.c (per element type) and
 * dispatch.c (everything else). Each has a portable reference with the same
 * signature in kernels_scalar.c or quant.c. */
#ifndef SM_KERNELS_SIMD_H
#define SM_KERNELS_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Unrolling that the tile kernels need to keep their per-token
 * accumulator arrays in registers (gcc). Clang unrolls constant-count
 * loops by itself where it pays; forced, its sanitizer builds of the
 * integer batch kernels (the fuzz targets) took ten times as long. Off
 * in the emulated AVX-512 build too (x86_isa.h), where unrolled loops of
 * emulated intrinsics took gcc 9 minutes for one file (8 s without). */
#define SM_PRAGMA(x) _Pragma(#x)
#if defined(__clang__) || defined(SM_EMULATE_AVX512)
#define SM_UNROLL(n)
#else
#define SM_UNROLL(n) SM_PRAGMA(GCC unroll n)
#endif

/* 4 bytes at p (an activation block's 4 codes, broadcast by the integer
 * kernels), whatever p's alignment */
static inline int32_t sm_load_i32(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#if defined(__x86_64__)
#include "x86_isa.h"
/* A 4 x 4 transpose of 32-bit words in registers: v[i] word j <-> v[j] word i. */
static inline void sm_transpose_words4(__m128i v[4]) {
    __m128i t0 = _mm_unpacklo_epi32(v[0], v[1]), t1 = _mm_unpackhi_epi32(v[0], v[1]);
    __m128i t2 = _mm_unpacklo_epi32(v[2], v[3]), t3 = _mm_unpackhi_epi32(v[2], v[3]);
    v[0] = _mm_unpacklo_epi64(t0, t2);
    v[1] = _mm_unpackhi_epi64(t0, t2);
    v[2] = _mm_unpacklo_epi64(t1, t3);
    v[3] = _mm_unpackhi_epi64(t1, t3);
}

/* Four rows' 4 code bytes from four consecutive chunks of a 16-row
 * interleaved layout at p (chunk stride 64 bytes, or stride, the rows' 4
 * bytes side by side), transposed: u[t] = row t's 16 consecutive bytes.
 * The dequantizers of the interleaved layouts walk their rows this way. */
static inline void sm_transpose_quad_stride(const uint8_t *p, size_t stride, __m128i u[4]) {
    for (int i = 0; i < 4; i++) u[i] = _mm_loadu_si128((const __m128i *)(p + stride * i));
    sm_transpose_words4(u);
}
static inline void sm_transpose_quad(const uint8_t *p, __m128i u[4]) { sm_transpose_quad_stride(p, 64, u); }

/* The other way: one chunk of a 16-row interleaved layout at p (16 rows'
 * 4 bytes side by side, 64 bytes) as its 4 columns, col[j] = byte j of rows
 * 0-15: a byte shuffle makes each quad of rows column-major, a 4 x 4
 * transpose of 32-bit words gathers the quads. The dequantizers that write
 * a group column after column (dequant_x16_cols) walk their chunks so. */
__attribute__((target("ssse3"))) static inline void sm_chunk_columns(const uint8_t *p, __m128i col[4]) {
    const __m128i cm = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    for (int i = 0; i < 4; i++) col[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), cm);
    sm_transpose_words4(col);
}

/* IQ4_NL's 16 values (sm_iq4nl_values) + 128, unsigned 1..241, split as lo
 * + 16 hi into two byte look-up tables, each value at most 15, in both
 * 128-bit lanes: the AVX2 kernels without VNNI look codes up in both so
 * that maddubs' pair sums cannot overflow (IQ4_NL's and IQ4_XS's). */
__attribute__((target("avx2"))) static inline void sm_iq4nl_split_avx2(const int8_t *values, __m256i *lo, __m256i *hi) {
    __m256i v = _mm256_add_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)values)),
                                _mm256_set1_epi8((char)0x80));
    *lo = _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
    *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F));
}

/* 8 or 16 BF16 values at p widened to floats: a bf16 is the top half of a
 * float, so widening is a 16-bit shift (the BF16 kernels and the strided
 * products' packing of BF16 weights). */
SM_TARGET_AVX2 static inline __m256 sm_bf16x8(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
SM_TARGET_AVX512 static inline __m512 sm_bf16x16_bits(__m256i h) {   /* the same, from a register */
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
SM_TARGET_AVX512 static inline __m512 sm_bf16x16(const uint16_t *p) {
    return sm_bf16x16_bits(_mm256_loadu_si256((const __m256i *)p));
}
#endif

/* How far ahead (bytes) AVX2 decode kernels (the interleaved Q4_0, Q8_0
 * and Q4_K ones, the K-quants' one-row ones) fetch their one weight stream
 * into L1 themselves: on the Zen 3 host the hardware prefetcher alone left
 * Q8_0 decode at 2/3 of the memory rate, and 3-8 KiB ahead gave +5-43 %
 * by type (docs/BENCHMARKS.md). */
#define SM_X16_PREFETCH 3072
/* Asks for the lines of [p, p + bytes) SM_X16_PREFETCH bytes ahead. */
#define SM_PREFETCH_AHEAD(p, bytes)                                                          \
    do {                                                                                     \
        for (size_t o_ = 0; o_ < (size_t)(bytes); o_ += 64)                                  \
            _mm_prefetch((const char *)(p) + SM_X16_PREFETCH + o_, _MM_HINT_T0);             \
    } while (0)

/* The strided products fetch the next weight block while a block's tiles
 * run: its `rows` rows of `lines` 64-byte lines (row i at base + i *
 * row_bytes), a share of them before each of `tiles` tiles (the AVX2 and
 * AVX-512 loops, each with its own cache level). */
typedef struct sm_block_prefetch {
    const char *base;
    size_t row_bytes;
    int lines, rows, per;   /* per: lines before each tile */
    int row, line;          /* the next line to fetch */
} sm_block_prefetch;

static inline sm_block_prefetch sm_block_prefetch_plan(const char *base, size_t row_bytes, int lines, int rows,
                                                       int tiles) {
    sm_block_prefetch b = {base, row_bytes, lines, rows, rows > 0 ? (rows * lines + tiles - 1) / tiles : 0, 0, 0};
    return b;
}

/* The next line of the block, or NULL once every line is asked for. */
static inline const char *sm_block_prefetch_next(sm_block_prefetch *b) {
    if (b->row >= b->rows) return NULL;
    const char *p = b->base + (size_t)b->row * b->row_bytes + (size_t)b->line * 64;
    if (++b->line == b->lines) b->line = 0, b->row++;
    return p;
}

/* the strided gemm's tile: tokens per packed panel, weight rows per block,
 * columns per block (sm_gemm_avx512) */
#define SM_GEMM_MR 12
#define SM_GEMM_NR 32
#define SM_GEMM_KC 1024
/* the same for AVX2 hosts (sm_gemm_avx2): 6 x 16 tiles, 24 KiB weight blocks */
#define SM_GEMM_AVX2_MR 6
#define SM_GEMM_AVX2_NR 16
#define SM_GEMM_AVX2_KC 384
/* a run's slice of the packed batch (panels by one column block), which
 * stays in L2 while every weight block meets it: about 1 MiB (AVX-512),
 * 256 KiB (AVX2); gemm_strided packs each run into scratch of that size */
#define SM_GEMM_RUN_BYTES ((size_t)1 << 20)
#define SM_GEMM_AVX2_RUN_BYTES ((size_t)1 << 18)
/* the same for gemm_bf16's dot variant: a run rounded to BF16 pairs, on
 * the stack (256 KiB; pool workers have at least 2 MiB) */
#define SM_GEMM_PAIRS_BYTES ((size_t)1 << 18)
/* gemm_mixed's F32 weights rounded to BF16 pairs once per column block (not
 * once per run of the batch), kept after the batch's run in scratch: up to
 * 2 MiB, more rows in chunks */
#define SM_GEMM_MIXED_W_BYTES ((size_t)2 << 20)
/* scratch per thread (the kernel table's gemm_scratch): a run of the batch
 * packed in F32, and for gemm_mixed after its run the rounded weights
 * (aligned to 64 bytes there) */
#define SM_GEMM_SCRATCH_BYTES (2 * SM_GEMM_PAIRS_BYTES + SM_GEMM_MIXED_W_BYTES + 64 > SM_GEMM_RUN_BYTES \
                                   ? 2 * SM_GEMM_PAIRS_BYTES + SM_GEMM_MIXED_W_BYTES + 64                  \
                                   : SM_GEMM_RUN_BYTES)
/* panels per run for column blocks of step columns: within bytes (step <= KC keeps it >= 4) */
static inline int sm_gemm_run_panels(int mr, int step, size_t bytes) {
    int run = (int)(bytes / ((size_t)mr * (size_t)step * sizeof(float)));
    return run < 1 ? 1 : run;
}

#if defined(__x86_64__)
/* per element type (types.c) */
void sm_matvec_f32_avx2(float *out, const void *w, const void *x, int rows, int cols);
void sm_matvec_f16_avx2(float *out, const void *w, const void *x, int rows, int cols);
void sm_matvec_f32_n_avx2(float *const *outs, const void *w, const float *x, size_t x_stride, int n, int rows,
                          int cols);
void sm_matvec_q8_0_avx2(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q4_0_avx2(float *out, const void *w, const void *xq, int rows, int cols);
void sm_quantize_q8_0_avx2(void *out, const float *x, int n);
void sm_f16_to_f32_avx2(float *out, const void *in, int n);
void sm_f32_to_f16_avx2(void *out, const float *in, int n);
void sm_matvec_f32_avx512(float *out, const void *w, const void *x, int rows, int cols);
void sm_matvec_f16_avx512(float *out, const void *w, const void *x, int rows, int cols);
/* with (1) or without (0) the software prefetches (kernels_x86.c), whatever the host: the same bits */
void sm_matvec_f16_variant_avx512(int prefetch, float *out, const void *w, const void *x, int rows, int cols);
/* BF16 through the same kernel, widened by a shift (and its variants) */
void sm_matvec_bf16_avx512(float *out, const void *w, const void *x, int rows, int cols);
void sm_matvec_bf16_variant_avx512(int prefetch, float *out, const void *w, const void *x, int rows, int cols);
void sm_matvec_bf16_n_avx512(float *const *outs, const void *w, const float *x, size_t x_stride, int n, int rows,
                             int cols);
void sm_matvec_q8_0_avx512(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q4_0_avx512(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q4_0_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_matvec_q8_0_x16_avx512(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_batch_q4_0_x16_avx512(float *c, size_t ldc, const void *w, const void *xq, size_t xq_stride,
                              const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols, int accumulate);
void sm_batch_q8_0_x16_avx512(float *c, size_t ldc, const void *w, const void *xq, size_t xq_stride,
                              const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols, int accumulate);
void sm_dequantize_q4_0x16_avx512(float *out, const void *group, int cols);
void sm_dequantize_q8_0x16_avx512(float *out, const void *group, int cols);
void sm_f16_to_f32_avx512(float *out, const void *in, int n);
void sm_f32_to_f16_avx512(void *out, const float *in, int n);
/* the rest (dispatch.c) */
void sm_gelu_avx2(float *x, int n);
void sm_gelu_avx512(float *x, int n);
void sm_gelu_grad_avx2(float *dinp, const float *inp, const float *dout, int n);
void sm_swiglu_grad_avx2(float *dg, float *du, const float *g, const float *u, const float *dh, int n);
void sm_gelu_grad_avx512(float *dinp, const float *inp, const float *dout, int n);
void sm_swiglu_avx2(float *out, const float *g, const float *u, int n);
void sm_swiglu_avx512(float *out, const float *g, const float *u, int n);
void sm_swiglu_grad_avx512(float *dg, float *du, const float *g, const float *u, const float *dh, int n);
void sm_norm_fwd_avx2(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int n,
                      float eps, int layer_norm);
void sm_norm_bwd_avx2(float *dx, const float *dy, const float *x, const float *w, float mean, float rstd, int n,
                      int layer_norm);
void sm_norm_cols_bwd_avx2(float *dw, float *db, const float *dy, const float *x, float mean, float rstd, int n,
                           int layer_norm);
void sm_norm_fwd_avx512(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int n,
                        float eps, int layer_norm);
void sm_norm_bwd_avx512(float *dx, const float *dy, const float *x, const float *w, float mean, float rstd, int n,
                        int layer_norm);
struct sm_adamw_step;
void sm_adamw_avx2(float *w, float *g, float *m, float *v, size_t n, const struct sm_adamw_step *a);
void sm_adamw_avx512(float *w, float *g, float *m, float *v, size_t n, const struct sm_adamw_step *a);
void sm_softmax_avx2(float *x, int n);
void sm_softmax_avx512(float *x, int n);
float sm_exp_sum_avx2(float *x, float shift, int n);
float sm_scale_max_avx2(float *x, float scale, int n);
float sm_scale_max_avx512(float *x, float scale, int n);
void sm_softmax_bwd_avx2(float *ds, const float *p, float scale, int n);
void sm_softmax_bwd_avx512(float *ds, const float *p, float scale, int n);
void sm_rope_pairs_avx2(float *x, const float *c, const float *s, float sign, int n);
void sm_rope_pairs_avx512(float *x, const float *c, const float *s, float sign, int n);
float sm_exp_sum_avx512(float *x, float shift, int n);
float sm_dot_f32_avx2(const float *a, const float *b, int n);
void sm_axpy_f32_avx2(float *y, float a, const float *x, int n);
float sm_dot_f16_avx2(const float *a, const void *bv, int n);
void sm_axpy_f16_avx2(float *y, float a, const void *xv, int n);
float sm_dot_bf16_avx2(const float *a, const void *bv, int n);
void sm_axpy_bf16_avx2(float *y, float a, const void *xv, int n);
float sm_dot_q8_0_avx2(const float *a, const void *bv, int n);
void sm_axpy_q8_0_avx2(float *y, float a, const void *xv, int n);
void sm_matmul_f32_avx2(float *c, const float *a, const float *w, int m, int n, int k, int ldc);
void sm_matmul_f32_avx512(float *c, const float *a, const float *w, int m, int n, int k, int ldc);
void sm_pack_a_avx512(float *packed, const float *a, int m, int k);
void sm_matmul_packed_avx512(float *c, const float *packed, const float *w, int m, int n, int k, int ldc);
void sm_matvec_q4_0_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_batch_q4_0_x16_avx2(float *c, size_t ldc, const void *w, const void *xq, size_t xq_stride,
                            const int32_t *xsum, size_t xsum_stride, int n, int rows, int cols, int accumulate);
void sm_matvec_q8_0_x16_avx2(float *out, const void *w, const void *xq, const int32_t *xsum, int rows, int cols);
void sm_matvec_f16_x16_avx2(float *out, const void *w, const void *x, const int32_t *xsum, int rows, int cols);
void sm_matvec_bf16_x16_avx2(float *out, const void *w, const void *x, const int32_t *xsum, int rows, int cols);
void sm_gemm_pack_avx2(float *packed, const float *a, size_t rs, size_t cs, int m, int k, int p0, int p1);
void sm_gemm_strided_avx2(float *c, int ldc, const float *a, size_t a_rs, size_t a_cs, int m, const float *w,
                          size_t rs, size_t cs, int n, int k, int flags, float *scratch);
void sm_gemm_avx2(float *c, int ldc, const float *packed, int m, const float *w, size_t rs, size_t cs, int n, int k,
                  int flags);
void sm_gemm_f16_avx2(float *c, int ldc, const float *packed, int m, const uint16_t *w, size_t rs, int n, int k,
                      int accumulate);
void sm_gemm_bf16_avx2(float *c, int ldc, const float *packed, int m, const uint16_t *w, size_t rs, int n, int k,
                       int accumulate);
/* the same on F16's 16-row interleaved copy (sm_interleave_f16), n a multiple of 16 */
void sm_gemm_f16x16_avx2(float *c, int ldc, const float *packed, int m, const uint16_t *w, int n, int k,
                         int accumulate);
/* the same on F32 weights 16 rows per column (a dequant_x16_cols block), n a multiple of 16 */
void sm_gemm_x16_avx2(float *c, int ldc, const float *packed, int m, const float *w, int n, int k, int accumulate);
void sm_dequantize_q8_0x16_cols_avx2(float *out, const void *group, int cols);
void sm_matvec_f32_n_avx512(float *const *outs, const void *w, const float *x, size_t x_stride, int n, int rows,
                            int cols);
void sm_matvec_f16_n_avx512(float *const *outs, const void *w, const float *x, size_t x_stride, int n, int rows,
                            int cols);
void sm_gemm_pack_avx512(float *packed, const float *a, size_t rs, size_t cs, int m, int k, int p0, int p1);
void sm_gemm_strided_avx512(float *c, int ldc, const float *a, size_t a_rs, size_t a_cs, int m, const float *w,
                            size_t rs, size_t cs, int n, int k, int flags, float *scratch);
void sm_gemm_avx512(float *c, int ldc, const float *packed, int m, const float *w, size_t rs, size_t cs, int n,
                    int k, int flags);
void sm_gemm_f16_avx512(float *c, int ldc, const float *packed, int m, const uint16_t *w, size_t rs, int n, int k,
                        int accumulate);
/* dot 1: the batch rounded to BF16 through vdpbf16ps where the CPU has it (else, and with dot 0, widening) */
void sm_gemm_bf16_variant_avx512(int dot, float *c, int ldc, const float *packed, int m, const uint16_t *w, size_t rs,
                                 int n, int k, int accumulate);
/* whether sm_gemm_bf16_avx512 takes the dot variant on this CPU */
int sm_gemm_bf16_takes_dot_avx512(void);
void sm_gemm_bf16_avx512(float *c, int ldc, const float *packed, int m, const uint16_t *w, size_t rs, int n, int k,
                         int accumulate);
/* both operands rounded to BF16: only where the CPU has AVX512_BF16 */
void sm_gemm_mixed_avx512(float *c, int ldc, const float *packed, const float *a, size_t a_rs, size_t a_cs, int m,
                          const float *w, size_t rs, size_t cs, int n, int k, int flags, float *scratch);
#endif

#if defined(__aarch64__)
void sm_matvec_f32_neon(float *out, const void *w, const void *x, int rows, int cols);
void sm_matvec_f16_neon(float *out, const void *w, const void *x, int rows, int cols);
void sm_matvec_q8_0_neon(float *out, const void *w, const void *xq, int rows, int cols);
void sm_matvec_q4_0_neon(float *out, const void *w, const void *xq, int rows, int cols);
float sm_dot_f32_neon(const float *a, const float *b, int n);
void sm_axpy_f32_neon(float *y, float a, const float *x, int n);
float sm_dot_f16_neon(const float *a, const void *bv, int n);
void sm_axpy_f16_neon(float *y, float a, const void *xv, int n);
float sm_dot_bf16_neon(const float *a, const void *bv, int n);
void sm_axpy_bf16_neon(float *y, float a, const void *xv, int n);
float sm_dot_q8_0_neon(const float *a, const void *bv, int n);
void sm_axpy_q8_0_neon(float *y, float a, const void *xv, int n);
void sm_matmul_f32_neon(float *c, const float *a, const float *w, int m, int n, int k, int ldc);
#endif

#endif

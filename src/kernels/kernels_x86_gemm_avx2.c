/* kernels_x86_gemm_avx2.c - the strided gemm (dispatch.h's gemm_pack and
 * gemm slots) for AVX2 + FMA hosts without AVX-512, such as AMD Zen 3:
 * prompts, attention blocks and training's products on those hosts run
 * through it. Same contract and loop nest as sm_gemm_avx512
 * (kernels_x86.c); the register tile is 6 tokens by 16 weight rows, the
 * 6 x 16 tile of BLIS's Haswell sgemm: 12 accumulators, and per column of
 * k 2 loads and 6 broadcasts for 12 FMAs. Tested against a double sum
 * (test_simd.c). */
#include "simd.h"
#include "half.h"
#include "quant_legacy.h"
#include "dispatch.h"

#if defined(__x86_64__)
#include "x86_isa.h"

#define AVX2 SM_TARGET_AVX2
#define MR SM_GEMM_AVX2_MR
#define NR SM_GEMM_AVX2_NR
#define KC SM_GEMM_AVX2_KC
_Static_assert(MR == 6, "store6 and copy6 move a panel's column of 6 floats");

/* v[i] = lane i of each of v[0..7] (an 8 x 8 transpose in registers;
 * written out: as loops at -O2 gcc keeps the arrays in memory) */
AVX2 static inline __attribute__((always_inline)) void transpose8(__m256 v[8]) {
    __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
    __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
    v[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    v[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    v[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    v[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    v[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    v[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    v[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    v[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* the first n lanes (0 <= n <= 8) */
AVX2 static inline __m256i lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* 6 floats (a panel's column) stored, or copied, without a masked store:
 * vmaskmovps to memory is microcoded on AMD Zen (the pack's masked stores
 * took 70 % of its time on Zen 3) */
AVX2 static inline void store6(float *dst, __m256 v) {
    _mm_storeu_ps(dst, _mm256_castps256_ps128(v));
    _mm_storel_pi((__m64 *)(dst + 4), _mm256_extractf128_ps(v, 1));
}
AVX2 static inline void copy6(float *dst, const float *src) {
    _mm_storeu_ps(dst, _mm_loadu_ps(src));
    _mm_storel_pi((__m64 *)(dst + 4), _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(src + 4)));
}

AVX2 void sm_gemm_pack_avx2(float *packed, const float *a, size_t rs, size_t cs, int m, int k, int p0, int p1) {
    if (rs == 1) {   /* a panel's tokens are contiguous: 6 floats per column, and the next panel's follow them */
        int full = m / MR < p1 ? m / MR : p1;   /* the panels of 6 tokens */
        /* eight panels at a time, so each column is read as one stretch of 48 floats (whole cache
         * lines, in order) and not as 6 floats of a line the next panels read again */
        for (int g0 = p0; g0 < full; g0 += 8) {
            int g1 = g0 + 8 < full ? g0 + 8 : full;
            for (int x = 0; x < k; x++) {
                const float *src = a + (size_t)x * cs + (size_t)g0 * MR;
                for (int p = g0; p < g1; p++, src += MR)
                    copy6(packed + ((size_t)p * k + x) * MR, src);
            }
        }
        if (full > p0) p0 = full;
    }
    for (int p = p0; p < p1; p++) {
        float *dst = packed + (size_t)p * k * MR;
        int rows = m - MR * p < MR ? m - MR * p : MR;
        const float *src = a + (size_t)p * MR * rs;
        int x = 0;
        if (cs == 1)   /* a's rows are contiguous: 8 columns at a time through a transpose */
            for (; x + 8 <= k; x += 8) {
                __m256 v[8];
                for (int j = 0; j < 8; j++) v[j] = j < rows ? _mm256_loadu_ps(src + (size_t)j * rs + x) : _mm256_setzero_ps();
                transpose8(v);
                for (int i = 0; i < 8; i++) store6(dst + (size_t)(x + i) * MR, v[i]);
            }
        for (int j = 0; j < MR; j++) {
            const float *sj = src + (size_t)j * rs;
            for (int xx = x; xx < k; xx++) dst[(size_t)xx * MR + j] = j < rows ? sj[(size_t)xx * cs] : 0.0f;
        }
    }
}

/* A tile's results to c rows j < mr, columns < nr (added to what c holds
 * when load). */
AVX2 static inline __attribute__((always_inline)) void store_tile(float *c, int ldc, __m256 *lo, __m256 *hi, int mr,
                                                                 int nr, int load, int stream) {
    if (stream) {   /* a whole tile to aligned rows of c, past the caches (SM_GEMM_STREAM) */
        for (int j = 0; j < MR; j++) {
            _mm256_stream_ps(c + (size_t)j * ldc, lo[j]);
            _mm256_stream_ps(c + (size_t)j * ldc + 8, hi[j]);
        }
        return;
    }
    if (nr == NR) {
        for (int j = 0; j < mr; j++) {
            float *cj = c + (size_t)j * ldc;
            if (load) {
                lo[j] = _mm256_add_ps(_mm256_loadu_ps(cj), lo[j]);
                hi[j] = _mm256_add_ps(_mm256_loadu_ps(cj + 8), hi[j]);
            }
            _mm256_storeu_ps(cj, lo[j]);
            _mm256_storeu_ps(cj + 8, hi[j]);
        }
        return;
    }
    __m256i m0 = lanes(nr < 8 ? nr : 8), m1 = lanes(nr > 8 ? nr - 8 : 0);
    for (int j = 0; j < mr; j++) {
        float *cj = c + (size_t)j * ldc;
        if (load) {
            lo[j] = _mm256_add_ps(_mm256_maskload_ps(cj, m0), lo[j]);
            hi[j] = _mm256_add_ps(_mm256_maskload_ps(cj + 8, m1), hi[j]);
        }
        _mm256_maskstore_ps(cj, m0, lo[j]);
        _mm256_maskstore_ps(cj + 8, m1, hi[j]);
    }
}

/* One 6 x 16 tile over kc columns: c rows j < mr, columns < nr. The 12
 * accumulators are named variables: as arrays gcc keeps them on the stack
 * (16 ymm registers leave no room for its bookkeeping). wp: the block,
 * 16 floats per column, or (f16) 16 halves per column, converted in
 * registers (F16's interleaved copy, read in place). */
#define LOAD_W(wp, x, f16)                                                                                     \
    __m256 w0 = f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)(wp) + 16 * (x))))      \
                    : _mm256_loadu_ps((const float *)(wp) + 16 * (x));                                         \
    __m256 w1 = f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)(wp) + 16 * (x) + 8)))  \
                    : _mm256_loadu_ps((const float *)(wp) + 16 * (x) + 8)
#define TOKEN_FMA(j)                                   \
    b = _mm256_broadcast_ss(ap + (size_t)(j) * st);    \
    l##j = _mm256_fmadd_ps(b, w0, l##j);               \
    h##j = _mm256_fmadd_ps(b, w1, h##j)
AVX2 static inline __attribute__((always_inline)) void tile_6x16(float *c, int ldc, const float *ap, size_t sx,
                                                                size_t st, const void *wp, int kc, int mr, int nr,
                                                                int load, int f16, int stream) {
    __m256 l0 = _mm256_setzero_ps(), l1 = l0, l2 = l0, l3 = l0, l4 = l0, l5 = l0;
    __m256 h0 = l0, h1 = l0, h2 = l0, h3 = l0, h4 = l0, h5 = l0;
    for (int x = 0; x < kc; x++, ap += sx) {
        LOAD_W(wp, x, f16);
        __m256 b;
        TOKEN_FMA(0); TOKEN_FMA(1); TOKEN_FMA(2); TOKEN_FMA(3); TOKEN_FMA(4); TOKEN_FMA(5);
    }
    __m256 lo[MR] = {l0, l1, l2, l3, l4, l5}, hi[MR] = {h0, h1, h2, h3, h4, h5};
    store_tile(c, ldc, lo, hi, mr, nr, load, stream);
}

/* The same for a panel's last tokens when they are 3 or fewer (a prompt
 * of 128 leaves 2): half the multiply-adds of the full tile. */
AVX2 static inline __attribute__((always_inline)) void tile_3x16(float *c, int ldc, const float *ap, const void *wp,
                                                                int kc, int mr, int nr, int load, int f16) {
    const size_t st = 1;
    __m256 l0 = _mm256_setzero_ps(), l1 = l0, l2 = l0, h0 = l0, h1 = l0, h2 = l0;
    for (int x = 0; x < kc; x++, ap += MR) {
        LOAD_W(wp, x, f16);
        __m256 b;
        TOKEN_FMA(0); TOKEN_FMA(1); TOKEN_FMA(2);
    }
    __m256 lo[3] = {l0, l1, l2}, hi[3] = {h0, h1, h2};
    store_tile(c, ldc, lo, hi, mr, nr, load, 0);
}

/* A panel's last 1 to 3 tokens against two neighbouring 16-row groups of
 * an interleaved copy read in place (the second's columns g floats or
 * halves past the first's): 4 accumulators per token, so 2 tokens keep 8
 * multiply-adds in flight, where the 16-row tile above waits on the
 * latency of its 4 or 6. Each sum runs over x in the same order as in the
 * other tiles: the same bits. rows is a constant in each caller. */
#define LOAD_W2(wp, x, f16)                                                                                    \
    LOAD_W(wp, x, f16);                                                                                        \
    __m256 w2 = f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)(wp) + g + 16 * (x))))  \
                    : _mm256_loadu_ps((const float *)(wp) + g + 16 * (x));                                     \
    __m256 w3 = f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)(wp) + g + 16 * (x) + 8))) \
                    : _mm256_loadu_ps((const float *)(wp) + g + 16 * (x) + 8)
#define TOKEN_FMA2(j)                        \
    b = _mm256_broadcast_ss(ap + (j));       \
    l##j = _mm256_fmadd_ps(b, w0, l##j);     \
    h##j = _mm256_fmadd_ps(b, w1, h##j);     \
    u##j = _mm256_fmadd_ps(b, w2, u##j);     \
    v##j = _mm256_fmadd_ps(b, w3, v##j)
AVX2 static inline __attribute__((always_inline)) void tile_tail_2g(float *c, int ldc, const float *ap, const void *wp,
                                                                   size_t g, int kc, int rows, int mr, int load,
                                                                   int f16) {
    __m256 l0 = _mm256_setzero_ps(), l1 = l0, l2 = l0, h0 = l0, h1 = l0, h2 = l0;
    __m256 u0 = l0, u1 = l0, u2 = l0, v0 = l0, v1 = l0, v2 = l0;
    for (int x = 0; x < kc; x++, ap += MR) {
        LOAD_W2(wp, x, f16);
        __m256 b;
        TOKEN_FMA2(0);
        if (rows > 1) { TOKEN_FMA2(1); }
        if (rows > 2) { TOKEN_FMA2(2); }
    }
    __m256 lo[3] = {l0, l1, l2}, hi[3] = {h0, h1, h2}, lo2[3] = {u0, u1, u2}, hi2[3] = {v0, v1, v2};
    store_tile(c, ldc, lo, hi, mr, NR, load, 0);
    store_tile(c + NR, ldc, lo2, hi2, mr, NR, load, 0);
}
#undef TOKEN_FMA2
#undef LOAD_W2
#undef TOKEN_FMA
#undef LOAD_W

#define TILE_ARGS float *c, int ldc, const float *ap, const void *wp, int kc, int mr, int nr, int load
AVX2 __attribute__((noinline)) static void gemm_tile_6x16(TILE_ARGS) {
    tile_6x16(c, ldc, ap, MR, 1, wp, kc, mr, nr, load, 0, 0);
}
AVX2 __attribute__((noinline)) static void gemm_tile_6x16_stream(TILE_ARGS) {
    tile_6x16(c, ldc, ap, MR, 1, wp, kc, mr, nr, load, 0, 1);
}
/* 6 rows of the batch read in place, row stride st (stored, or streamed) */
AVX2 __attribute__((noinline)) static void gemm_tile_rows_6x16(TILE_ARGS, size_t st) {
    tile_6x16(c, ldc, ap, 1, st, wp, kc, mr, nr, load, 0, 0);
}
AVX2 __attribute__((noinline)) static void gemm_tile_rows_6x16_stream(TILE_ARGS, size_t st) {
    tile_6x16(c, ldc, ap, 1, st, wp, kc, mr, nr, load, 0, 1);
}
AVX2 __attribute__((noinline)) static void gemm_tile_3x16(TILE_ARGS) { tile_3x16(c, ldc, ap, wp, kc, mr, nr, load, 0); }
AVX2 __attribute__((noinline)) static void gemm_tile_6x16_f16(TILE_ARGS) {
    tile_6x16(c, ldc, ap, MR, 1, wp, kc, mr, nr, load, 1, 0);
}
AVX2 __attribute__((noinline)) static void gemm_tile_3x16_f16(TILE_ARGS) { tile_3x16(c, ldc, ap, wp, kc, mr, nr, load, 1); }
#undef TILE_ARGS
/* tile_tail_2g for 1, 2 or 3 tokens (mr), F32 or F16 groups g elements apart */
#define TAIL_ARGS float *c, int ldc, const float *ap, const void *wp, size_t g, int kc, int mr, int load
AVX2 __attribute__((noinline)) static void gemm_tail_2g_f32(TAIL_ARGS) {
    if (mr == 1) tile_tail_2g(c, ldc, ap, wp, g, kc, 1, mr, load, 0);
    else if (mr == 2) tile_tail_2g(c, ldc, ap, wp, g, kc, 2, mr, load, 0);
    else tile_tail_2g(c, ldc, ap, wp, g, kc, 3, mr, load, 0);
}
AVX2 __attribute__((noinline)) static void gemm_tail_2g_f16(TAIL_ARGS) {
    if (mr == 1) tile_tail_2g(c, ldc, ap, wp, g, kc, 1, mr, load, 1);
    else if (mr == 2) tile_tail_2g(c, ldc, ap, wp, g, kc, 2, mr, load, 1);
    else tile_tail_2g(c, ldc, ap, wp, g, kc, 3, mr, load, 1);
}
#undef TAIL_ARGS

/* block[x][i] = w(r + i, x0 + x) for i < nr (zero beyond), x < kc */
AVX2 static void gemm_pack_block(float *block, const float *wb, size_t rs, size_t cs, int nr, int kc) {
    if (rs == 1) {   /* the block's rows are contiguous in each column */
        __m256i m0 = lanes(nr < 8 ? nr : 8), m1 = lanes(nr > 8 ? nr - 8 : 0);
        for (int x = 0; x < kc; x++) {
            const float *src = wb + (size_t)x * cs;
            _mm256_store_ps(block + (size_t)x * NR, _mm256_maskload_ps(src, m0));
            _mm256_store_ps(block + (size_t)x * NR + 8, _mm256_maskload_ps(src + 8, m1));
        }
        return;
    }
    int x = 0;
    if (cs == 1 && nr == NR)   /* rows contiguous: 8 rows by 8 columns at a time through a transpose */
        for (; x + 8 <= kc; x += 8)
            for (int h = 0; h < NR; h += 8) {
                /* unconditional loads: with a row test in this loop gcc kept v[] in memory */
                const float *src = wb + (size_t)h * rs + x;
                __m256 v[8];
SM_UNROLL(8)
                for (int i = 0; i < 8; i++) v[i] = _mm256_loadu_ps(src + (size_t)i * rs);
                transpose8(v);
SM_UNROLL(8)
                for (int j = 0; j < 8; j++) _mm256_store_ps(block + (size_t)(x + j) * NR + h, v[j]);
            }
    for (int i = 0; i < NR; i++) {
        const float *src = wb + (size_t)i * rs;
        for (int xx = x; xx < kc; xx++) block[xx * NR + i] = i < nr ? src[(size_t)xx * cs] : 0.0f;
    }
}

/* The same for F16 or BF16 weights stored by rows (w(r, x) = w[r rs + x]),
 * converted as they are packed (exactly): a prompt on an F16 or BF16 model
 * needs no F32 copy of its weights. */
AVX2 static inline __m256 widen8(const uint16_t *p, int bf16) {
    return bf16 ? sm_bf16x8(p) : _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

AVX2 static void gemm_pack_block_h16(float *block, const uint16_t *wb, size_t rs, int nr, int kc, int bf16) {
    int x = 0;
    if (nr == NR)
        for (; x + 8 <= kc; x += 8)
            for (int h = 0; h < NR; h += 8) {
                const uint16_t *src = wb + (size_t)h * rs + x;
                __m256 v[8];
SM_UNROLL(8)
                for (int i = 0; i < 8; i++) v[i] = widen8(src + (size_t)i * rs, bf16);
                transpose8(v);
SM_UNROLL(8)
                for (int j = 0; j < 8; j++) _mm256_store_ps(block + (size_t)(x + j) * NR + h, v[j]);
            }
    for (int i = 0; i < NR; i++) {
        const uint16_t *src = wb + (size_t)i * rs;
        for (int xx = x; xx < kc; xx++)
            block[xx * NR + i] = i >= nr ? 0.0f : bf16 ? sm_bf16_to_fp32(src[xx]) : sm_fp16_to_fp32(src[xx]);
    }
}

/* Loops, outside in: column blocks of at most KC (in order: that is each
 * sum's order), runs of panels whose slice of the packed batch stays in
 * L2, blocks of 16 weight rows (packed once per run, kept in L1), panels.
 * With a (the batch read in place, F32 weights) rows (a_cs = 1) go to the
 * tile as they are, 6 at a time (a last panel of fewer is packed on the
 * stack), and a batch read by columns is packed a run at a time into
 * scratch as the loops reach it; else the batch comes from packed.
 * layout: F32 (w strided by rs, cs), F16 by rows (cs = 1), or F16 or F32 in
 * 16-row groups stored column after column (sm_interleave_f16, a type's
 * dequant_x16_cols: group g's column x at w + 16 g k + 16 x elements; n a
 * multiple of 16), read in place. */
enum { W_F32, W_F16_ROWS, W_BF16_ROWS, W_F16_X16, W_F32_X16 };
AVX2 static inline __attribute__((always_inline)) void gemm(float *c, int ldc, const float *packed, const float *a,
                                                            size_t a_rs, size_t a_cs, float *scratch, int m,
                                                            const void *w, size_t rs, size_t cs, int n, int k,
                                                            int flags, int layout) {
    float block[NR * KC] __attribute__((aligned(32))), tail[MR * KC] __attribute__((aligned(32)));
    size_t esize = layout == W_F32 || layout == W_F32_X16 ? sizeof(float) : sizeof(uint16_t);
    int in_place = layout == W_F16_X16 || layout == W_F32_X16;   /* the block is the weights themselves */
    int panels = (m + MR - 1) / MR, direct = a && a_cs == 1;
    /* k split into equal blocks of at most KC (multiples of 8): no short last block */
    int nblk = (k + KC - 1) / KC, step = ((k + nblk - 1) / nblk + 7) & ~7;
    /* a run's slice of the batch: about 256 KiB (it stays in L2 while every weight block meets it) */
    int run = sm_gemm_run_panels(MR, step, SM_GEMM_AVX2_RUN_BYTES);
    int accumulate = flags & SM_GEMM_ACCUMULATE;
    /* the results stream past the caches when asked, each written once (one column block), aligned */
    int stream = (flags & SM_GEMM_STREAM) && !accumulate && nblk == 1 && ((uintptr_t)c & 31) == 0 && (ldc & 7) == 0;
    for (int x0 = 0; x0 < k; x0 += step) {
        int kc = k - x0 < step ? k - x0 : step;
        for (int p0 = 0; p0 < panels; p0 += run) {
            int p1 = p0 + run < panels ? p0 + run : panels;
            const float *slice = NULL;   /* panel p0 of this column block, packed */
            size_t pstride = (size_t)k * MR;
            if (direct) {
                if (p1 == panels && m % MR)
                    sm_gemm_pack_avx2(tail, a + (size_t)(panels - 1) * MR * a_rs + x0, a_rs, 1, m % MR, kc, 0, 1);
            } else if (a) {
                sm_gemm_pack_avx2(scratch, a + (size_t)p0 * MR * a_rs + (size_t)x0 * a_cs, a_rs, a_cs, m - p0 * MR,
                                  kc, 0, p1 - p0);
                slice = scratch, pstride = (size_t)kc * MR;
            } else {
                slice = packed + (size_t)x0 * MR + (size_t)p0 * pstride;
            }
            for (int r = 0; r < n; r += NR) {
                int nr = n - r < NR ? n - r : NR;
                const char *wb, *nb, *tile_w = (const char *)block;
                /* rows stored contiguously come from memory: the next block's
                 * lines are fetched while this one's tiles run (row after row
                 * of it, or one run of lines in the interleaved layout) */
                int lines, rows_next = NR, next = cs == 1 && r + NR < n;
                size_t row_bytes;
                if (in_place) {
                    wb = tile_w = (const char *)w + ((size_t)r * k + (size_t)x0 * NR) * esize;
                    lines = (int)(((size_t)kc * NR * esize + 63) / 64), rows_next = 1;
                    row_bytes = (size_t)k * NR * esize;
                    nb = wb + row_bytes;   /* the next group's slice */
                } else {
                    wb = (const char *)w + ((size_t)r * rs + (size_t)x0 * cs) * esize;
                    if (layout == W_F16_ROWS || layout == W_BF16_ROWS)
                        gemm_pack_block_h16(block, (const uint16_t *)wb, rs, nr, kc, layout == W_BF16_ROWS);
                    else gemm_pack_block(block, (const float *)wb, rs, cs, nr, kc);
                    lines = (int)(((size_t)kc * esize + 63) / 64);
                    row_bytes = rs * esize;
                    nb = wb + NR * row_bytes;   /* the next block's first row */
                }
                sm_block_prefetch ahead = sm_block_prefetch_plan(nb, row_bytes, lines, next ? rows_next : 0, p1 - p0);
                for (int p = p0; p < p1; p++) {
                    const char *line;
                    for (int q = 0; q < ahead.per && (line = sm_block_prefetch_next(&ahead)); q++)
                        _mm_prefetch(line, _MM_HINT_T0);
                    int mr = m - MR * p < MR ? m - MR * p : MR;
                    float *cp = c + (size_t)p * MR * ldc + r;
                    int load = accumulate || x0 > 0, whole = stream && mr == MR && nr == NR;
                    if (direct && mr == MR) {
                        const float *ar = a + (size_t)p * MR * a_rs + x0;
                        (whole ? gemm_tile_rows_6x16_stream : gemm_tile_rows_6x16)(cp, ldc, ar, tile_w, kc, mr, nr, load,
                                                                                   a_rs);
                        continue;
                    }
                    const float *ap = direct ? tail : slice + (size_t)(p - p0) * pstride;
                    if (in_place && mr <= 3) {   /* groups in pairs: the first of a pair takes both */
                        if (r / NR % 2) continue;
                        if (r + NR < n) {
                            (layout == W_F16_X16 ? gemm_tail_2g_f16 : gemm_tail_2g_f32)(cp, ldc, ap, tile_w, (size_t)k * NR,
                                                                                       kc, mr, load);
                            continue;
                        }
                    }
                    if (layout == W_F16_X16) (mr > 3 ? gemm_tile_6x16_f16 : gemm_tile_3x16_f16)(cp, ldc, ap, tile_w, kc, mr, nr, load);
                    else if (whole) gemm_tile_6x16_stream(cp, ldc, ap, tile_w, kc, mr, nr, 0);
                    else (mr > 3 ? gemm_tile_6x16 : gemm_tile_3x16)(cp, ldc, ap, tile_w, kc, mr, nr, load);
                }
            }
        }
    }
    if (stream) _mm_sfence();   /* the streamed stores are seen before whatever this thread does next */
}

AVX2 void sm_gemm_avx2(float *c, int ldc, const float *packed, int m, const float *w, size_t rs, size_t cs, int n, int k,
                       int flags) {
    gemm(c, ldc, packed, NULL, 0, 0, NULL, m, w, rs, cs, n, k, flags, W_F32);
}

AVX2 void sm_gemm_strided_avx2(float *c, int ldc, const float *a, size_t a_rs, size_t a_cs, int m, const float *w,
                               size_t rs, size_t cs, int n, int k, int flags, float *scratch) {
    gemm(c, ldc, NULL, a, a_rs, a_cs, scratch, m, w, rs, cs, n, k, flags, W_F32);
}

AVX2 void sm_gemm_f16_avx2(float *c, int ldc, const float *packed, int m, const uint16_t *w, size_t rs, int n, int k,
                           int accumulate) {
    gemm(c, ldc, packed, NULL, 0, 0, NULL, m, w, rs, 1, n, k, accumulate ? SM_GEMM_ACCUMULATE : 0, W_F16_ROWS);
}

AVX2 void sm_gemm_bf16_avx2(float *c, int ldc, const float *packed, int m, const uint16_t *w, size_t rs, int n, int k,
                            int accumulate) {
    gemm(c, ldc, packed, NULL, 0, 0, NULL, m, w, rs, 1, n, k, accumulate ? SM_GEMM_ACCUMULATE : 0, W_BF16_ROWS);
}

AVX2 void sm_gemm_x16_avx2(float *c, int ldc, const float *packed, int m, const float *w, int n, int k, int accumulate) {
    gemm(c, ldc, packed, NULL, 0, 0, NULL, m, w, 0, 1, n, k, accumulate ? SM_GEMM_ACCUMULATE : 0, W_F32_X16);
}

AVX2 void sm_gemm_f16x16_avx2(float *c, int ldc, const float *packed, int m, const uint16_t *w, int n, int k,
                              int accumulate) {
    gemm(c, ldc, packed, NULL, 0, 0, NULL, m, w, 0, 1, n, k, accumulate ? SM_GEMM_ACCUMULATE : 0, W_F16_X16);
}
#endif

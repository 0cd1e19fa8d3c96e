/* x86_isa.h - what every x86 kernel file includes: the intrinsics, the
 * target attributes of the AVX2 and AVX-512 levels (each function carries
 * its own, so the files build with plain flags and dispatch.c picks what
 * the CPU has at run time), and sm_x86_has(feature), whether it has one.
 *
 * Built with SM_EMULATE_AVX512 (`make emu-test`), the AVX-512 intrinsics
 * come from tests/emu/avx512_emu.h (SIMDe's portable implementations), the
 * AVX-512 functions are compiled for AVX2, and the CPU is taken to have
 * every AVX-512 feature the kernels use: the AVX-512 kernels then run, more
 * slowly but with the same results, on an AVX2 host, where the kernel
 * tests compare them with the scalar reference. */
#ifndef SM_KERNELS_X86_ISA_H
#define SM_KERNELS_X86_ISA_H

#if defined(__x86_64__)
#define SM_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#if defined(SM_EMULATE_AVX512)
#include "avx512_emu.h"
#include <string.h>
#define SM_TARGET_AVX512
#define SM_TARGET_AVX512BF16
#define sm_x86_has(feature) (strncmp(feature, "avx512", 6) == 0 || __builtin_cpu_supports(feature))
#else
#include <immintrin.h>
#define SM_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")))
#define SM_TARGET_AVX512BF16 \
    __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512bf16,avx2,fma,f16c")))
#define sm_x86_has(feature) __builtin_cpu_supports(feature)
#endif
/* Whether the AVX-512 F16 decode kernel adds software prefetches to its
 * four row streams: on Intel (1.2-1.5x faster with them on Ice Lake), not
 * on AMD (the AVX2 kernels' streams on Zen 3 have none). */
#define sm_x86_decode_prefetch() __builtin_cpu_is("intel")
#endif

#endif

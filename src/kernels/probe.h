/* probe.h - the measurements of the machine that bench.c and machine.c
 * share. */
#ifndef SM_KERNELS_PROBE_H
#define SM_KERNELS_PROBE_H

/* FP32 FMA throughput of the calling thread over iters rounds of twelve
 * independent multiply-adds on the widest vectors this CPU has, GFLOP/s. */
double sm_probe_fma_gflops(long iters);
/* 8-bit integer dot-product throughput (AVX-512 VNNI: unsigned x signed
 * bytes summed into int32) of the calling thread, in GOP/s counting a
 * multiply-add as two, like the FLOPs; 0 where the CPU has no such dots. */
double sm_probe_int8_gops(long iters);
/* BF16 dot-product throughput (AVX512_BF16: pairs of BF16 multiplied and
 * summed into FP32) of the calling thread, GFLOP/s; 0 where the CPU has none. */
double sm_probe_bf16_gflops(long iters);

#endif

/* probe.h - the measurements of the machine that bench.c and machine.c
 * share. */
#ifndef SM_KERNELS_PROBE_H
#define SM_KERNELS_PROBE_H

/* FP32 FMA throughput of the calling thread over iters rounds of twelve
 * independent multiply-adds on the widest vectors this CPU has, GFLOP/s. */
double sm_probe_fma_gflops(long iters);

#endif

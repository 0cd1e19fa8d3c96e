/* cpu.h - facts about the machine. */
#ifndef SM_CORE_CPU_H
#define SM_CORE_CPU_H

#include <stddef.h>

/* Physical cores (hyper-threads not counted); at least 1. */
int sm_cpu_physical_cores(void);

/* The data cache sizes of cpu0 in bytes, L1d, L2 and L3 (0 for a level the
 * machine lacks), from /sys/devices/system/cpu/cpu0/cache, else from
 * sysconf(_SC_LEVEL*_CACHE_SIZE), else fixed guesses (32 KiB, 1 MiB,
 * 8 MiB). Sizes that make no sense (a level not larger than the one below
 * it, or over 4 GiB) are not believed. Returns where they came from:
 * "sysfs", "sysconf" or "default". */
const char *sm_cpu_cache_sizes(size_t bytes[3]);

#endif

/* cpu.h - facts about the machine. */
#ifndef SM_CORE_CPU_H
#define SM_CORE_CPU_H

/* Physical cores (hyper-threads not counted); at least 1. */
int sm_cpu_physical_cores(void);

#endif

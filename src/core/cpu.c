/* cpu.c - see cpu.h. Compute-bound kernels gain nothing from a second
 * hyper-thread on the same core, so the default thread count is the number
 * of distinct (package, core) pairs Linux reports. */
#include "cpu.h"

#include <stdio.h>
#include <unistd.h>

int sm_cpu_physical_cores(void) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1) online = 1;
    if (online > 4096) online = 4096;
    /* Each (package, core) pair seen is recorded once. */
    static const int max_pairs = 4096;
    int pkg_seen[4096], core_seen[4096];
    int n = 0;
    for (long cpu = 0; cpu < online; cpu++) {
        char path[128];
        int pkg = -1, core = -1;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%ld/topology/physical_package_id", cpu);
        FILE *f = fopen(path, "r");
        if (!f) return (int)online;
        if (fscanf(f, "%d", &pkg) != 1) pkg = -1;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%ld/topology/core_id", cpu);
        f = fopen(path, "r");
        if (!f) return (int)online;
        if (fscanf(f, "%d", &core) != 1) core = -1;
        fclose(f);
        int dup = 0;
        for (int i = 0; i < n; i++)
            if (pkg_seen[i] == pkg && core_seen[i] == core) { dup = 1; break; }
        if (!dup && n < max_pairs) { pkg_seen[n] = pkg; core_seen[n] = core; n++; }
    }
    return n > 0 ? n : (int)online;
}

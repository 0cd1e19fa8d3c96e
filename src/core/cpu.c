/* cpu.c - see cpu.h. Compute-bound kernels gain nothing from a second
 * hyper-thread on the same core, so the default thread count is the number
 * of distinct (package, core) pairs Linux reports. The cache sizes size the
 * profiler's bandwidth probes (kernels/machine.c). */
#include "cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* "32K", "1024K", "32M" as sysfs writes cache sizes. */
static size_t parse_size(const char *s) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s) return 0;
    if (*end == 'K' || *end == 'k') v <<= 10;
    else if (*end == 'M' || *end == 'm') v <<= 20;
    else if (*end == 'G' || *end == 'g') v <<= 30;
    return (size_t)v;
}

static int sane(const size_t b[3]) {
    if (b[0] == 0 || b[0] > (1u << 24)) return 0;
    if (b[1] && (b[1] <= b[0] || b[1] > (1ull << 32))) return 0;
    if (b[2] && (b[2] <= b[1] || b[2] > (1ull << 32))) return 0;
    return 1;
}

static int from_sysfs(size_t b[3]) {
    b[0] = b[1] = b[2] = 0;
    for (int i = 0; i < 16; i++) {
        char path[96], line[64], type[32];
        int level = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f) break;
        if (!fgets(line, sizeof line, f)) line[0] = '\0';
        fclose(f);
        level = atoi(line);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        if (!(f = fopen(path, "r"))) continue;
        if (!fgets(type, sizeof type, f)) type[0] = '\0';
        fclose(f);
        if (!strncmp(type, "Instruction", 11)) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (!(f = fopen(path, "r"))) continue;
        if (!fgets(line, sizeof line, f)) line[0] = '\0';
        fclose(f);
        if (level >= 1 && level <= 3) b[level - 1] = parse_size(line);
    }
    return sane(b);
}

static int from_sysconf(size_t b[3]) {
    long v[3] = {-1, -1, -1};
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE) && defined(_SC_LEVEL3_CACHE_SIZE)
    v[0] = sysconf(_SC_LEVEL1_DCACHE_SIZE);
    v[1] = sysconf(_SC_LEVEL2_CACHE_SIZE);
    v[2] = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
    for (int i = 0; i < 3; i++) b[i] = v[i] > 0 ? (size_t)v[i] : 0;
    return sane(b);
}

const char *sm_cpu_cache_sizes(size_t bytes[3]) {
    if (from_sysfs(bytes)) return "sysfs";
    if (from_sysconf(bytes)) return "sysconf";
    bytes[0] = 32u << 10;
    bytes[1] = 1u << 20;
    bytes[2] = 8u << 20;
    return "default";
}

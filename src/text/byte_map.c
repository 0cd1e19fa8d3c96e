/* byte_map.c - see byte_map.h. */
#include "byte_map.h"

static int printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

uint32_t sm_bpe_byte_to_cp(unsigned char b) {
    if (printable(b)) return b;
    uint32_t n = 0;
    for (int x = 0; x < b; x++) n += !printable(x);
    return 256 + n;
}

int sm_bpe_cp_to_byte(uint32_t cp) {
    if (cp < 256) return printable((int)cp) ? (int)cp : -1;
    uint32_t n = cp - 256;
    for (int x = 0; x < 256; x++)
        if (!printable(x) && n-- == 0) return x;
    return -1;
}

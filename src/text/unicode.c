/* unicode.c - category and white-space look-ups (binary search over the
 * generated ranges) and UTF-8 <-> code point conversion. */
#include "unicode.h"

static int find(const sm_unicode_range *r, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[mid].lo) hi = mid - 1;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return mid;
    }
    return -1;
}

int sm_unicode_category(uint32_t cp) {
    int i = find(sm_unicode_categories, sm_unicode_n_categories, cp);
    return i < 0 ? SM_UC_CN : sm_unicode_categories[i].cat;
}

int sm_unicode_is_space(uint32_t cp) {
    return find(sm_unicode_white_space, sm_unicode_n_white_space, cp) >= 0;
}

size_t sm_utf8_to_cps(const char *s, size_t len, uint32_t *out) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c = p[i];
        size_t k = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (i + k > len) k = len - i;
        if (k == 2) c = ((c & 0x1F) << 6) | (p[i + 1] & 0x3F);
        else if (k == 3) c = ((c & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F);
        else if (k == 4) c = ((c & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12) | ((p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F);
        out[n++] = c;
        i += k;
    }
    return n;
}

size_t sm_cp_to_utf8(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 63)); o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 63));
    o[2] = (char)(0x80 | ((cp >> 6) & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

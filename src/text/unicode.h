/* unicode.h - Unicode general categories and White_Space, from tables
 * generated out of the Unicode Character Database (unicode_tables.c). */
#ifndef SM_TEXT_UNICODE_H
#define SM_TEXT_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum sm_unicode_category {
    SM_UC_CN = 0, /* unassigned */
    SM_UC_LU, SM_UC_LL, SM_UC_LT, SM_UC_LM, SM_UC_LO,
    SM_UC_MN, SM_UC_MC, SM_UC_ME,
    SM_UC_ND, SM_UC_NL, SM_UC_NO,
    SM_UC_PC, SM_UC_PD, SM_UC_PS, SM_UC_PE, SM_UC_PI, SM_UC_PF, SM_UC_PO,
    SM_UC_SM, SM_UC_SC, SM_UC_SK, SM_UC_SO,
    SM_UC_ZS, SM_UC_ZL, SM_UC_ZP,
    SM_UC_CC, SM_UC_CF, SM_UC_CS, SM_UC_CO,
    SM_UC_COUNT
};

typedef struct sm_unicode_range {
    uint32_t lo, hi;
    int cat;
} sm_unicode_range;

extern const sm_unicode_range sm_unicode_categories[];
extern const int sm_unicode_n_categories;
extern const sm_unicode_range sm_unicode_white_space[];
extern const int sm_unicode_n_white_space;

int sm_unicode_category(uint32_t cp);
int sm_unicode_is_space(uint32_t cp);

/* Decodes valid UTF-8 into code points; returns the count (out needs room
 * for len entries). */
size_t sm_utf8_to_cps(const char *s, size_t len, uint32_t *out);
/* Encodes one code point; returns its length (1-4). */
size_t sm_cp_to_utf8(uint32_t cp, char *out);

#endif

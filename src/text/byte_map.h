/* byte_map.h - GPT-2's byte <-> code point mapping, the alphabet byte-level
 * BPE vocabularies write their token texts in: printable bytes stand for
 * themselves, the other 68 bytes are moved to U+0100 and up, in byte order
 * (the mapping of GPT-2's encoder.py, `bytes_to_unicode`). */
#ifndef SM_TEXT_BYTE_MAP_H
#define SM_TEXT_BYTE_MAP_H

#include <stdint.h>

uint32_t sm_bpe_byte_to_cp(unsigned char b);
/* The byte a code point stands for, or -1. */
int sm_bpe_cp_to_byte(uint32_t cp);

#endif

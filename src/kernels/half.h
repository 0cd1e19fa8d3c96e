/* half.h - IEEE 754 binary16 <-> binary32 conversion. */
#ifndef SM_KERNELS_HALF_H
#define SM_KERNELS_HALF_H

#include <stdint.h>

float sm_fp16_to_fp32(uint16_t h);
/* Round to nearest even; overflow gives infinity; NaN stays NaN. */
uint16_t sm_fp32_to_fp16(float f);

#endif

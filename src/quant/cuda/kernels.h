/* kernels.h: the CUDA kernels of the quant table (one declaration per entry with the entry's type from
 * quant/quant_kernels.h; the table is cuda/kernels.c). A kernel file cuda/<op>.cu defines its entries with C linkage. */
#pragma once
#include "quant/quant_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

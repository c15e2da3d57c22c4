/* kernels.h: the CUDA kernels of the table (one declaration per entry, with the entry's type from backend.h; the
 * table is cuda/kernels.c). A kernel file cuda/<op>.cu defines its entries with C linkage. */
#pragma once
#include "autograd/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The message of the last failed kernel call on this state (cudaGetErrorString included). */
const char *qb_cuda_error_message(qb_dev *d);

/* backend.cu: memory */
qb_k_fill qb_cuda_fill;
qb_k_memcpy qb_cuda_memcpy_h2d;
qb_k_memcpy qb_cuda_memcpy_d2h;
qb_k_memcpy qb_cuda_memcpy_d2d;

#ifdef __cplusplus
}
#endif

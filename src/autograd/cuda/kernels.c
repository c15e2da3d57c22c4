/* kernels.c: the CUDA kernel table. Entries not listed are NULL: ops that need them fail with "no cuda kernel".
 * Adding a kernel: its declaration in kernels.h and one line here. */
#include "autograd/cuda/kernels.h"

const qb_kernels qb_cuda_kernels = {
    .name = "cuda",
#ifdef QB_HAVE_CUDA
    .error_message = qb_cuda_error_message,
    .fill = qb_cuda_fill,
    .memcpy_h2d = qb_cuda_memcpy_h2d,
    .memcpy_d2h = qb_cuda_memcpy_d2h,
    .memcpy_d2d = qb_cuda_memcpy_d2d,
#endif
};

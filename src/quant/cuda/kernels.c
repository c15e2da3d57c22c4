/* kernels.c: the CUDA quant kernel table. Entries not listed are NULL: their ops fail with "no cuda kernel".
 * Adding a kernel: its declaration in kernels.h and one line here (inside QB_HAVE_CUDA). */
#include "quant/cuda/kernels.h"

const qb_quant_kernels qb_quant_cuda_kernels = {
    .name = "cuda",
#ifdef QB_HAVE_CUDA
#endif
};

/* kernels.c: the CUDA kernel table. Entries not listed are NULL: ops that need them fail with "no cuda kernel".
 * Adding a kernel: its declaration in kernels.h and one line here. */
#include "autograd/cuda/backend.h"

#ifdef QB_HAVE_CUDA
static void *cuda_alloc(qb_dev *d, size_t bytes) {
    (void)d;
    return qb_cuda_malloc(bytes ? bytes : 64);
}

static void cuda_release(qb_dev *d, void *p) {
    (void)d;
    if (p) qb_cuda_free(p);
}
#endif

const qb_kernels qb_cuda_kernels = {
    .name = "cuda",
#ifdef QB_HAVE_CUDA
    .error_message = qb_cuda_error_message,
    .alloc = cuda_alloc,
    .release = cuda_release,
    .fill = qb_cuda_fill,
    .memcpy_h2d = qb_cuda_memcpy_h2d,
    .memcpy_d2h = qb_cuda_memcpy_d2h,
    .memcpy_d2d = qb_cuda_memcpy_d2d,
#endif
};

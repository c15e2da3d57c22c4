/* shape.cu: strided gather (contiguous output) and strided accumulate (view backwards) on device memory, one thread
 * per element of the contiguous side (coalesced there). */
#include "autograd/cuda/cuda_compat.h"

#include "autograd/cuda/device_util.cuh"

__global__ static void __launch_bounds__(QB_CUDA_THREADS) copy_strided_kernel(float *dst, const float *src, qb_view4 v, int64_t n) {
    QB_GRID_LOOP(i, n) dst[i] = src[qb_view4_offset(v, i)];
}

__global__ static void __launch_bounds__(QB_CUDA_THREADS) accumulate_strided_kernel(float *dst, const float *src, qb_view4 v, int64_t n) {
    QB_GRID_LOOP(i, n) dst[qb_view4_offset(v, i)] += src[i];
}

extern "C" int qb_cuda_copy_strided(qb_dev *d, float *dst, const float *src, int ndim, const int64_t *shape, const int64_t *src_stride) {
    int64_t n;
    qb_view4 v = qb_view4_of(ndim, shape, src_stride, &n);
    if (n <= 0) return 0;
    QB_LAUNCH(copy_strided_kernel, qb_cuda_blocks(n, QB_CUDA_THREADS), QB_CUDA_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), dst, src, v, n);
    return qb_cuda_status(d, "copy_strided", cudaGetLastError());
}

/* Elements of the view are distinct (a permutation or a slice), so threads never add into one element. */
extern "C" int qb_cuda_accumulate_strided(qb_dev *d, float *dst, const int64_t *dst_stride, const float *src, int ndim, const int64_t *shape) {
    int64_t n;
    qb_view4 v = qb_view4_of(ndim, shape, dst_stride, &n);
    if (n <= 0) return 0;
    QB_LAUNCH(accumulate_strided_kernel, qb_cuda_blocks(n, QB_CUDA_THREADS), QB_CUDA_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), dst, src, v,
              n);
    return qb_cuda_status(d, "accumulate_strided", cudaGetLastError());
}

/* memory.cu: axpy on device memory (fill and the copies are in backend.cu). */
#include "autograd/cuda/cuda_compat.h"

#include "autograd/cuda/device_util.cuh"

__global__ static void __launch_bounds__(QB_CUDA_THREADS) axpy_kernel(float *dst, const float *src, float alpha, int64_t n) {
    QB_GRID_LOOP(i, n) dst[i] += alpha * src[i];
}

extern "C" int qb_cuda_axpy(qb_dev *d, float *dst, const float *src, float alpha, int64_t n) {
    if (n <= 0) return 0;
    QB_LAUNCH(axpy_kernel, qb_cuda_blocks(n, QB_CUDA_THREADS), QB_CUDA_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), dst, src, alpha, n);
    return qb_cuda_status(d, "axpy", cudaGetLastError());
}

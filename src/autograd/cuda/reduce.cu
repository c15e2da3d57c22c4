/* reduce.cu: sum and mean of all elements into a device scalar, and their backward, on device memory. The sum is
 * taken in double: a grid of at most SUM_MAX_BLOCKS blocks (fixed by n) sums strided slices into the state's scratch,
 * one block adds those in a fixed tree (the same bits on every run). */
#include "autograd/cuda/cuda_compat.h"

#include "autograd/cuda/device_util.cuh"

#define SUM_MAX_BLOCKS 1024
#define SUM_ITEMS 8 /* elements a thread at least */

/* Block b: the double sum of x[i] for i = b*T + t + k*G*T; with one block the result goes to y (mean: / n). */
__global__ static void __launch_bounds__(QB_CUDA_THREADS) sum_partial_kernel(double *partial, float *y, const float *x, int64_t n, bool mean) {
    __shared__ double warp_sums[32];
    double s = 0.0;
    QB_GRID_LOOP(i, n) s += (double)x[i];
    s = qb_block_sum(s, warp_sums);
    if (threadIdx.x != 0) return;
    if (gridDim.x > 1) partial[blockIdx.x] = s;
    else y[0] = mean ? (float)(s / (double)n) : (float)s;
}

__global__ static void __launch_bounds__(QB_CUDA_THREADS) sum_final_kernel(float *y, const double *partial, int blocks, int64_t n, bool mean) {
    __shared__ double warp_sums[32];
    double s = 0.0;
    for (int b = threadIdx.x; b < blocks; b += blockDim.x) s += partial[b];
    s = qb_block_sum(s, warp_sums);
    if (threadIdx.x == 0) y[0] = mean ? (float)(s / (double)n) : (float)s;
}

extern "C" int qb_cuda_sum(qb_dev *d, float *y, const float *x, int64_t n, bool mean) {
    cudaStream_t st = (cudaStream_t)qb_cuda_stream(d);
    int64_t want = (n + QB_CUDA_THREADS * SUM_ITEMS - 1) / (QB_CUDA_THREADS * SUM_ITEMS);
    int blocks = (int)(want < 1 ? 1 : want > SUM_MAX_BLOCKS ? SUM_MAX_BLOCKS : want);
    double *partial = nullptr;
    if (blocks > 1 && !(partial = (double *)qb_cuda_scratch(d, (size_t)blocks * sizeof(double)))) return -1;
    QB_LAUNCH(sum_partial_kernel, blocks, QB_CUDA_THREADS, 0, st, partial, y, x, n, mean);
    if (blocks > 1 && cudaPeekAtLastError() == cudaSuccess) QB_LAUNCH(sum_final_kernel, 1, QB_CUDA_THREADS, 0, st, y, partial, blocks, n, mean);
    return qb_cuda_status(d, "sum", cudaGetLastError());
}

__global__ static void __launch_bounds__(QB_CUDA_THREADS) sum_grad_kernel(float *dx, const float *dy, float scale, int64_t n) {
    float g = dy[0] * scale;
    QB_GRID_LOOP(i, n) dx[i] += g;
}

extern "C" int qb_cuda_sum_grad(qb_dev *d, float *dx, const float *dy, float scale, int64_t n) {
    if (n <= 0) return 0;
    QB_LAUNCH(sum_grad_kernel, qb_cuda_blocks(n, QB_CUDA_THREADS), QB_CUDA_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), dx, dy, scale, n);
    return qb_cuda_status(d, "sum_grad", cudaGetLastError());
}

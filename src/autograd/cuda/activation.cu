/* activation.cu: GELU (erf and tanh forms), tanh and ReLU, forward and backward, on device memory; one thread per
 * element, CUDA's erff/tanhf/expf (a few ulp from the CPU's libm: the suite compares with a tolerance). */
#include "autograd/cuda/cuda_compat.h"

#include "autograd/cuda/act_math.cuh"
#include "autograd/cuda/device_util.cuh"

__global__ static void __launch_bounds__(QB_CUDA_THREADS) unary_kernel(qb_unary_kind k, float *y, const float *x, int64_t n) {
    QB_GRID_LOOP(i, n) y[i] = qb_act(k, x[i]);
}

/* ReLU passes dy through (not dy * 1), as the CPU does, so that an infinite dy at x <= 0 gives 0. */
__global__ static void __launch_bounds__(QB_CUDA_THREADS) unary_grad_kernel(qb_unary_kind k, float keep, float *dx, const float *dy, const float *x,
                                                                             const float *y, int64_t n) {
    QB_GRID_LOOP(i, n) {
        float g = k == QB_UNARY_RELU ? (x[i] > 0.0f ? dy[i] : 0.0f) : dy[i] * qb_act_grad(k, x[i], k == QB_UNARY_TANH ? y[i] : 0.0f);
        dx[i] = keep * dx[i] + g;
    }
}

extern "C" int qb_cuda_unary(qb_dev *d, qb_unary_kind kind, float *y, const float *x, int64_t n) {
    if (n <= 0) return 0;
    QB_LAUNCH(unary_kernel, qb_cuda_blocks(n, QB_CUDA_THREADS), QB_CUDA_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), kind, y, x, n);
    return qb_cuda_status(d, "unary", cudaGetLastError());
}

extern "C" int qb_cuda_unary_grad(qb_dev *d, qb_unary_kind kind, float keep, float *dx, const float *dy, const float *x, const float *y,
                                  int64_t n) {
    if (n <= 0) return 0;
    QB_LAUNCH(unary_grad_kernel, qb_cuda_blocks(n, QB_CUDA_THREADS), QB_CUDA_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), kind, keep, dx, dy, x,
              y, n);
    return qb_cuda_status(d, "unary_grad", cudaGetLastError());
}

/* activation.cu: GELU (erf and tanh forms), tanh and ReLU, forward and backward, on device memory; one thread per
 * element, CUDA's erff/tanhf/expf (a few ulp from the CPU's libm: the suite compares with a tolerance). */
#include "autograd/cuda/cuda_compat.h"

#include "autograd/cuda/device_util.cuh"

#define SQRT_2_OVER_PI 0.7978845608028654f
#define INV_SQRT_2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f
#define GELU_TANH_C 0.044715f

__device__ static inline float act(qb_unary_kind k, float x) {
    switch (k) {
    case QB_UNARY_GELU: return 0.5f * x * (1.0f + erff(x * INV_SQRT_2));
    case QB_UNARY_GELU_TANH: return 0.5f * x * (1.0f + tanhf(SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x)));
    case QB_UNARY_TANH: return tanhf(x);
    default: return x > 0.0f ? x : 0.0f;
    }
}

/* act'(x) (tanh from y = tanh(x)) */
__device__ static inline float act_grad(qb_unary_kind k, float x, float y) {
    switch (k) {
    case QB_UNARY_GELU: return 0.5f * (1.0f + erff(x * INV_SQRT_2)) + x * INV_SQRT_2PI * expf(-0.5f * x * x);
    case QB_UNARY_GELU_TANH: {
        float t = tanhf(SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x));
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_TANH_C * x * x);
    }
    case QB_UNARY_TANH: return 1.0f - y * y;
    default: return x > 0.0f ? 1.0f : 0.0f;
    }
}

__global__ static void __launch_bounds__(QB_CUDA_THREADS) unary_kernel(qb_unary_kind k, float *y, const float *x, int64_t n) {
    QB_GRID_LOOP(i, n) y[i] = act(k, x[i]);
}

/* ReLU passes dy through (not dy * 1), as the CPU does, so that an infinite dy at x <= 0 gives 0. */
__global__ static void __launch_bounds__(QB_CUDA_THREADS) unary_grad_kernel(qb_unary_kind k, float keep, float *dx, const float *dy, const float *x,
                                                                             const float *y, int64_t n) {
    QB_GRID_LOOP(i, n) {
        float g = k == QB_UNARY_RELU ? (x[i] > 0.0f ? dy[i] : 0.0f) : dy[i] * act_grad(k, x[i], k == QB_UNARY_TANH ? y[i] : 0.0f);
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

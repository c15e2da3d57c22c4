/* activation.c: GELU (erf and tanh forms), tanh and ReLU, forward and backward, on host memory. */
#include "autograd/cpu/kernels.h"
#include "autograd/cpu/simd_math.h"
#include "autograd/cpu/gelu_math.h"

#define SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_TANH_C 0.044715f

/* Forward over n elements; each kind is its own simple loop so the compiler vectorises it (GELU inline, tanh libmvec). */
QB_MULTIVERSION static void act_forward_cpu(qb_unary_kind k, float *restrict y, const float *restrict x, int64_t n) {
    switch (k) {
    case QB_UNARY_GELU:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (int64_t i = 0; i < n; i++) {
            float e;
            y[i] = 0.5f * x[i] * qb_gelu_cdf2(x[i], &e);
        }
        break;
    case QB_UNARY_GELU_TANH:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + tanhf(SQRT_2_OVER_PI * (x[i] + GELU_TANH_C * x[i] * x[i] * x[i])));
        break;
    case QB_UNARY_TANH:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
        break;
    case QB_UNARY_RELU:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    }
}

/* dx = keep * dx + dy * act'(x), with y = act(x); keep is 0 when dx is dy's own buffer (overwrite) and 1 otherwise. */
QB_MULTIVERSION static void act_backward_cpu(qb_unary_kind k, float keep, float *dx, const float *dy, const float *restrict x,
                                             const float *restrict y, int64_t n) {
    switch (k) {
    case QB_UNARY_GELU:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (int64_t i = 0; i < n; i++) {
            float e, c = qb_gelu_cdf2(x[i], &e);
            dx[i] = keep * dx[i] + dy[i] * (0.5f * c + x[i] * QB_GELU_INV_SQRT_2PI * e);
        }
        break;
    case QB_UNARY_GELU_TANH:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (int64_t i = 0; i < n; i++) {
            float t = tanhf(SQRT_2_OVER_PI * (x[i] + GELU_TANH_C * x[i] * x[i] * x[i]));
            dx[i] = keep * dx[i] + dy[i] * (0.5f * (1.0f + t) + 0.5f * x[i] * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_TANH_C * x[i] * x[i]));
        }
        break;
    case QB_UNARY_TANH:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (int64_t i = 0; i < n; i++) dx[i] = keep * dx[i] + dy[i] * (1.0f - y[i] * y[i]);
        break;
    case QB_UNARY_RELU:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (int64_t i = 0; i < n; i++) dx[i] = keep * dx[i] + (x[i] > 0.0f ? dy[i] : 0.0f);
        break;
    }
}

int qb_cpu_unary(qb_dev *d, qb_unary_kind kind, float *y, const float *x, int64_t n) {
    (void)d;
    act_forward_cpu(kind, y, x, n);
    return 0;
}

int qb_cpu_unary_grad(qb_dev *d, qb_unary_kind kind, float keep, float *dx, const float *dy, const float *x, const float *y, int64_t n) {
    (void)d;
    act_backward_cpu(kind, keep, dx, dy, x, y, n);
    return 0;
}

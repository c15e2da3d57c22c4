/* dropout.c: inverted dropout from the counter-based RNG, forward and backward, on host memory. */
#include "autograd/cpu/kernels.h"
#include "autograd/cpu/simd_math.h"
#include "autograd/rng.h"

static inline float keep_scale(uint32_t key, uint64_t counter, float p, float inv_keep) {
    return qb_rng_uniform32(key, counter) >= p ? inv_keep : 0.0f;
}

/* y[i] = x[i] * mask(offset + i): forward. */
QB_MULTIVERSION static void dropout_forward_cpu(float *restrict y, const float *restrict x, int64_t n, uint32_t key, uint64_t offset,
                                                float p, float inv_keep) {
#pragma omp parallel for simd schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * keep_scale(key, offset + (uint64_t)i, p, inv_keep);
}

/* g[i] = keep * g[i] + dy[i] * mask(offset + i): backward (g may be dy's own buffer, then keep is 0). */
QB_MULTIVERSION static void dropout_backward_cpu(float *g, const float *dy, float keep, int64_t n, uint32_t key, uint64_t offset,
                                                 float p, float inv_keep) {
#pragma omp parallel for simd schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++) g[i] = keep * g[i] + dy[i] * keep_scale(key, offset + (uint64_t)i, p, inv_keep);
}

int qb_cpu_dropout(qb_dev *d, float *y, const float *x, int64_t n, uint32_t key, uint64_t offset, float p, float inv_keep) {
    (void)d;
    dropout_forward_cpu(y, x, n, key, offset, p, inv_keep);
    return 0;
}

int qb_cpu_dropout_grad(qb_dev *d, float *dx, float keep, const float *dy, int64_t n, uint32_t key, uint64_t offset, float p,
                        float inv_keep) {
    (void)d;
    dropout_backward_cpu(dx, dy, keep, n, key, offset, p, inv_keep);
    return 0;
}

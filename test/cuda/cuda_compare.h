/* cuda_compare.h: helpers of the cuda suite's CPU comparisons (host N(0, 1) data, device copies, the fp32 tolerance). */
#pragma once
#include <math.h>
#include <stdlib.h>
#include "autograd/rng.h"
#include "autograd/tensor.h"
#include "check.h"

static inline double max_abs(const float *x, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
    return m;
}

/* cuda vs cpu: the cuda suite's fp32 tolerance (1e-5 of the largest value, and per element) */
static inline void compare(qb_check *chk, const char *what, const float *got, const float *want, int64_t n) {
    qb_check_close(chk, what, got, want, n, 1e-5 * max_abs(want, n) + 1e-30, 1e-5);
}

/* n N(0, 1) floats (malloc'd) from seed. */
static inline float *randn(int64_t n, uint64_t seed) {
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!x) abort();
    qb_rng_normal(x, n, 0.0f, 1.0f, seed, 0);
    return x;
}

/* A step-memory copy of n host floats on g's device, or NULL. */
static inline float *dev_copy(qb_ctx *g, const float *host, int64_t n) {
    float *d = qb_act_alloc(g, (size_t)(n > 0 ? n : 1) * sizeof(float));
    return d && !qb_upload(g, d, host, (size_t)n * sizeof(float)) ? d : NULL;
}

/* row_math.h: one row of the CPU's layer norm kernels, shared with the fused kernels of src/quant/cpu/fused.c so that
 * both give the same bits (the softmax row: softmax_row.h). */
#pragma once
#include <math.h>
#include <stdint.h>

/* yr = (xr - mean) * rstd * gamma + beta over h (gamma, beta may be NULL); *mean, *rstd written. Two passes in float. */
static inline void qb_layernorm_row(float *yr, float *mean, float *rstd, const float *xr, const float *gamma, const float *beta, int64_t h,
                                    float eps) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < h; j++) s += xr[j];
    float m = s / (float)h, v = 0.0f;
#pragma omp simd reduction(+ : v)
    for (int64_t j = 0; j < h; j++) v += (xr[j] - m) * (xr[j] - m);
    float rs = 1.0f / sqrtf(v / (float)h + eps);
    *mean = m;
    *rstd = rs;
#pragma omp simd
    for (int64_t j = 0; j < h; j++) yr[j] = (xr[j] - m) * rs * (gamma ? gamma[j] : 1.0f) + (beta ? beta[j] : 0.0f);
}

/* mean(dn) and mean(dn * xhat) over a row of h, dn = dy * gamma (NULL: 1): the layer norm input gradient's two sums. */
static inline void qb_layernorm_grad_row_means(float *mean_dn, float *mean_dn_xhat, const float *dyr, const float *xr, const float *gamma,
                                               float m, float rs, int64_t h) {
    float sum_dn = 0.0f, sum_dn_n = 0.0f;
#pragma omp simd reduction(+ : sum_dn, sum_dn_n)
    for (int64_t j = 0; j < h; j++) {
        float dn = dyr[j] * (gamma ? gamma[j] : 1.0f);
        sum_dn += dn;
        sum_dn_n += dn * (xr[j] - m) * rs;
    }
    *mean_dn = sum_dn / (float)h;
    *mean_dn_xhat = sum_dn_n / (float)h;
}

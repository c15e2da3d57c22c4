/* row_math.h: one row of the CPU's softmax and layer norm kernels, shared with the fused kernels of src/quant/cpu/fused.c
 * so that both give the same bits (include simd_math.h first for the vector expf and QB_MULTIVERSION). */
#pragma once
#include <math.h>
#include <stdint.h>

/* yr = softmax(xr * scale + mr[j * mstride]) over c (mr NULL: no mask); a max pass, an exp-and-sum pass, a scale pass.
 * Compiled per ISA (QB_MULTIVERSION) and called, not inlined, so that every caller gets the same vector width and bits. */
QB_MULTIVERSION __attribute__((unused)) static void qb_softmax_row(float *restrict yr, const float *restrict xr, const float *restrict mr,
                                                                   int64_t mstride, float scale, int64_t c) {
    float mx = -INFINITY;
    if (!mr) {
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < c; j++) {
            float v = xr[j] * scale + 0.0f;
            yr[j] = v;
            mx = v > mx ? v : mx;
        }
    } else if (mstride == 1) {
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < c; j++) {
            float v = xr[j] * scale + mr[j];
            yr[j] = v;
            mx = v > mx ? v : mx;
        }
    } else {
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < c; j++) {
            float v = xr[j] * scale + mr[j * mstride];
            yr[j] = v;
            mx = v > mx ? v : mx;
        }
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < c; j++) {
        float e = qb_expf_flush(yr[j] - mx);
        yr[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t j = 0; j < c; j++) yr[j] *= inv;
}

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

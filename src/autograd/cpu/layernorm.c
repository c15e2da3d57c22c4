/* layernorm.c: layer norm over the last dim, forward and backward, on host memory. */
#include <math.h>
#include "autograd/cpu/kernels.h"
#include "autograd/cpu/simd_math.h"
#include "autograd/cpu/row_math.h"

/* dg[j] += sum_r dy[r,j] * xhat[r,j], db[j] += sum_r dy[r,j]; columns split across threads (order independent of
 * the thread count). */
QB_MULTIVERSION static void layernorm_param_grads_cpu(float *dg, float *db, const float *dy, const float *x, const float *mean,
                                                      const float *rstd, int64_t rows, int64_t h) {
#pragma omp parallel for schedule(static)
    for (int64_t j0 = 0; j0 < h; j0 += 64) {
        int64_t j1 = j0 + 64 < h ? j0 + 64 : h;
        for (int64_t r = 0; r < rows; r++) {
            const float *dyr = dy + r * h, *xr = x + r * h;
            float m = mean[r], rs = rstd[r];
            if (dg)
#pragma omp simd
                for (int64_t j = j0; j < j1; j++) dg[j] += dyr[j] * (xr[j] - m) * rs;
            if (db)
#pragma omp simd
                for (int64_t j = j0; j < j1; j++) db[j] += dyr[j];
        }
    }
}

/* g = keep * g + rstd * (dn - mean(dn) - xhat * mean(dn * xhat)), dn = dy * gamma, row by row (g may be dy's buffer). */
QB_MULTIVERSION static void layernorm_input_grad_cpu(float *g, float keep, const float *dy, const float *x, const float *gamma,
                                                     const float *mean, const float *rstd, int64_t rows, int64_t h) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * h, *dyr = dy + r * h;
        float *gr = g + r * h;
        float m = mean[r], rs = rstd[r], a, b;
        qb_layernorm_grad_row_means(&a, &b, dyr, xr, gamma, m, rs, h);
#pragma omp simd
        for (int64_t j = 0; j < h; j++) {
            float dn = dyr[j] * (gamma ? gamma[j] : 1.0f);
            gr[j] = keep * gr[j] + rs * (dn - a - (xr[j] - m) * rs * b);
        }
    }
}

/* y = (x - mean) * rstd * gamma + beta per row of h; saves mean and rstd. Two passes in float. */
QB_MULTIVERSION static void layernorm_forward_cpu(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                                                  const float *beta, int64_t rows, int64_t h, float eps) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) qb_layernorm_row(y + r * h, mean + r, rstd + r, x + r * h, gamma, beta, h, eps);
}

int qb_cpu_layernorm(qb_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma, const float *beta,
                     int64_t rows, int64_t h, float eps) {
    (void)d;
    layernorm_forward_cpu(y, mean, rstd, x, gamma, beta, rows, h, eps);
    return 0;
}

int qb_cpu_layernorm_grad_params(qb_dev *d, float *dg, float *db, const float *dy, const float *x, const float *mean,
                                 const float *rstd, int64_t rows, int64_t h) {
    (void)d;
    layernorm_param_grads_cpu(dg, db, dy, x, mean, rstd, rows, h);
    return 0;
}

int qb_cpu_layernorm_grad_input(qb_dev *d, float *g, float keep, const float *dy, const float *x, const float *gamma,
                                const float *mean, const float *rstd, int64_t rows, int64_t h) {
    (void)d;
    layernorm_input_grad_cpu(g, keep, dy, x, gamma, mean, rstd, rows, h);
    return 0;
}

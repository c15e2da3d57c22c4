/* loss.c: cross-entropy (with ignore_index), MSE and BCE-with-logits, forward and backward, on host memory. */
#include <math.h>
#include "autograd/cpu/kernels.h"

int qb_cpu_cross_entropy(qb_dev *d, float *loss, float *lse, const float *x, const int32_t *labels, int64_t rows, int64_t c,
                         int32_t ignore_index, int64_t count) {
    (void)d;
    double total = 0.0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        float mx = -INFINITY;
        for (int64_t j = 0; j < c; j++) mx = xr[j] > mx ? xr[j] : mx;
        double s = 0.0;
        for (int64_t j = 0; j < c; j++) s += exp((double)(xr[j] - mx));
        lse[r] = mx + (float)log(s);
        if (labels[r] == ignore_index) continue;
        total += (double)lse[r] - xr[labels[r]];
    }
    loss[0] = count ? (float)(total / (double)count) : NAN;
    return 0;
}

int qb_cpu_cross_entropy_grad(qb_dev *d, float *dx, const float *x, const float *lse, const int32_t *labels, const float *dloss,
                              int64_t rows, int64_t c, int32_t ignore, int64_t count) {
    (void)d;
    if (count == 0) return 0;
    float g = dloss[0] / (float)count;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        if (labels[r] == ignore) continue;
        const float *xr = x + r * c;
        float *gr = dx + r * c;
        for (int64_t j = 0; j < c; j++) gr[j] += g * expf(xr[j] - lse[r]);
        gr[labels[r]] -= g;
    }
    return 0;
}

int qb_cpu_mse(qb_dev *d, float *loss, const float *a, const float *b, int64_t cnt) {
    (void)d;
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (cnt > 65536)
    for (int64_t i = 0; i < cnt; i++) {
        double df = (double)a[i] - b[i];
        s += df * df;
    }
    loss[0] = (float)(s / (double)cnt);
    return 0;
}

int qb_cpu_mse_grad(qb_dev *d, float *dt, const float *a, const float *b, const float *dloss, bool negate, int64_t cnt) {
    (void)d;
    float g = 2.0f * dloss[0] / (float)cnt;
    float sign = negate ? -g : g;
#pragma omp parallel for schedule(static) if (cnt > 65536)
    for (int64_t i = 0; i < cnt; i++) dt[i] += sign * (a[i] - b[i]);
    return 0;
}

int qb_cpu_bce(qb_dev *d, float *loss, const float *x, const float *t, int64_t cnt) {
    (void)d;
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (cnt > 65536)
    for (int64_t i = 0; i < cnt; i++) {
        float v = x[i];
        s += (double)((v > 0.0f ? v : 0.0f) - v * t[i] + log1pf(expf(-fabsf(v))));
    }
    loss[0] = (float)(s / (double)cnt);
    return 0;
}

int qb_cpu_bce_grad(qb_dev *d, float *dx, const float *x, const float *t, const float *dloss, int64_t cnt) {
    (void)d;
    float g = dloss[0] / (float)cnt;
#pragma omp parallel for schedule(static) if (cnt > 65536)
    for (int64_t i = 0; i < cnt; i++) {
        float sig = 1.0f / (1.0f + expf(-x[i]));
        dx[i] += g * (sig - t[i]);
    }
    return 0;
}

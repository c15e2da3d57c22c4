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

/* log(sum_j exp(x[j] * k)) in double. */
static double scaled_lse(const float *x, int64_t c, float k) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < c; j++) mx = x[j] * k > mx ? x[j] * k : mx;
    double s = 0.0;
    for (int64_t j = 0; j < c; j++) s += exp((double)(x[j] * k - mx));
    return (double)mx + log(s);
}

int qb_cpu_distill_kl(qb_dev *d, float *loss, float *lse_s, float *lse_t, const float *s, const float *t, int64_t rows, int64_t c,
                      float inv_t) {
    (void)d;
    double total = 0.0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *sr = s + r * c, *tr = t + r * c;
        double ls = scaled_lse(sr, c, inv_t), lt = scaled_lse(tr, c, inv_t), kl = 0.0;
        for (int64_t j = 0; j < c; j++) {
            double log_pt = (double)(tr[j] * inv_t) - lt, log_ps = (double)(sr[j] * inv_t) - ls;
            kl += exp(log_pt) * (log_pt - log_ps);
        }
        lse_s[r] = (float)ls;
        lse_t[r] = (float)lt;
        total += kl;
    }
    loss[0] = (float)(total / (double)rows);
    return 0;
}

int qb_cpu_distill_kl_grad(qb_dev *d, float *ds, const float *s, const float *t, const float *lse_s, const float *lse_t, const float *dloss,
                           int64_t rows, int64_t c, float inv_t) {
    (void)d;
    float g = dloss[0] * inv_t / (float)rows;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *sr = s + r * c, *tr = t + r * c;
        float *gr = ds + r * c;
        for (int64_t j = 0; j < c; j++) gr[j] += g * (expf(sr[j] * inv_t - lse_s[r]) - expf(tr[j] * inv_t - lse_t[r]));
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

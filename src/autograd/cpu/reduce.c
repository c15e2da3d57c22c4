/* reduce.c: sum and mean of all elements, forward and backward, on host memory. */
#include "autograd/cpu/kernels.h"

int qb_cpu_sum(qb_dev *d, float *y, const float *p, int64_t cnt, bool mean) {
    (void)d;
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (cnt > 65536)
    for (int64_t i = 0; i < cnt; i++) s += p[i];
    y[0] = mean ? (float)(s / (double)cnt) : (float)s;
    return 0;
}

int qb_cpu_sum_grad(qb_dev *d, float *p, const float *dy, float scale, int64_t cnt) {
    (void)d;
    float g = dy[0] * scale;
#pragma omp parallel for schedule(static) if (cnt > 65536)
    for (int64_t i = 0; i < cnt; i++) p[i] += g;
    return 0;
}

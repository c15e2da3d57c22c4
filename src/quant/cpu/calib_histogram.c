/* calib_histogram.c: statistics of |x| and the counting of a batch into histogram bins, on host memory (per-thread
 * counts added in thread order: the counts do not depend on the thread count). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include "quant/calib_histogram.h"
#include "quant/cpu/kernels.h"

#define PAR_MIN 32768

int qb_cpu_abs_stats(qb_dev *d, qb_abs_stats *out, const float *x, int64_t n, bool skip_zeros) {
    (void)d;
    float hi = 0.0f, lo = INFINITY;
    int64_t cnt = 0;
    int nonfinite = 0;
#pragma omp parallel for simd schedule(static) reduction(max : hi) reduction(min : lo) reduction(+ : cnt) \
    reduction(| : nonfinite) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        nonfinite |= !(a <= 3.402823466e38f);
        int keep = !(skip_zeros && a == 0.0f);
        cnt += keep;
        hi = keep && a > hi ? a : hi;
        lo = keep && a < lo ? a : lo;
    }
    *out = (qb_abs_stats){.max = hi, .min = lo, .kept = cnt, .bad = nonfinite != 0};
    return 0;
}

/* counts += torch.histc: float32 index (|x| - lo) * nb / (hi - lo), values outside [lo, hi] skipped, hi in the last bin. */
static void count_linear(int64_t *tc, int64_t nb, const float *x, int64_t n, bool skip_zeros, float lo, float hi) {
    const float nbf = (float)nb, width = hi - lo;
#pragma omp parallel if (n > PAR_MIN)
    {
        int64_t *loc = tc + (int64_t)omp_get_thread_num() * nb;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            float a = fabsf(x[i]);
            if ((skip_zeros && a == 0.0f) || !(a >= lo && a <= hi)) continue;
            int64_t pos = (int64_t)((a - lo) * nbf / width);
            if (pos == nb) pos--;
            loc[pos]++;
        }
    }
}

/* np.histogram over uniform float32 edges ef: float32 index and one-bin correction. */
static void count_uniform(int64_t *tc, int64_t nb, const float *x, int64_t n, bool skip, float lo, float hi, const float *ef) {
    const float denom = hi - lo, nbf = (float)nb;
#pragma omp parallel if (n > PAR_MIN)
    {
        int64_t *loc = tc + (int64_t)omp_get_thread_num() * nb;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            float a = fabsf(x[i]);
            if ((skip && a == 0.0f) || !(a >= lo && a <= hi)) continue;
            int64_t k = (int64_t)(((a - lo) / denom) * nbf);
            if (k == nb) k--;
            if (a < ef[k]) k--;
            else if (k != nb - 1 && a >= ef[k + 1]) k++;
            loc[k]++;
        }
    }
}

/* np.histogram(|x|, bins=e). */
static void count_edges(int64_t *tc, int64_t nb, const float *x, int64_t n, bool skip, const double *e) {
    const double lo = e[0], hi = e[nb];
    const double inv_w = 1.0 / (e[1] - e[0] > 0.0 ? e[1] - e[0] : 1.0);
#pragma omp parallel if (n > PAR_MIN)
    {
        int64_t *loc = tc + (int64_t)omp_get_thread_num() * nb;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            double a = fabsf(x[i]);
            if ((skip && a == 0.0) || !(a >= lo && a <= hi)) continue;
            loc[calib_histogram_edge_bin(a, e, nb, inv_w)]++;
        }
    }
}

int qb_cpu_histogram(qb_dev *d, int64_t *counts, const float *x, int64_t n, const qb_hist_bins *b) {
    (void)d;
    const int64_t nb = b->nbins;
    const int nt = omp_get_max_threads();
    int64_t *tc = calloc((size_t)nt * (size_t)nb, sizeof(int64_t));
    if (!tc) return -1;
    switch (b->mode) {
    case QB_HIST_LINEAR: count_linear(tc, nb, x, n, b->skip_zeros, b->lo, b->hi); break;
    case QB_HIST_UNIFORM: count_uniform(tc, nb, x, n, b->skip_zeros, b->lo, b->hi, b->edges_f32); break;
    case QB_HIST_EDGES: count_edges(tc, nb, x, n, b->skip_zeros, b->edges); break;
    }
    for (int t = 0; t < nt; t++)
        for (int64_t k = 0; k < nb; k++) counts[k] += tc[(int64_t)t * nb + k];
    free(tc);
    return 0;
}

/* calib_histogram.c: statistics of |x| and the counting of a batch into histogram bins, on host memory (per-thread
 * counts added in thread order: the counts do not depend on the thread count). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include "quant/calib_histogram.h"
#include "quant/cpu/kernels.h"
#include "quant/quant_math.h"

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

/* counts += the bins of x by the shared bin functions (quant_math.h), per-thread counts tc [threads, nb]. */
static void count(int64_t *tc, const float *x, int64_t n, const qb_hist_bins *b) {
    const int64_t nb = b->nbins;
    const bool skip = b->skip_zeros;
    const float lo = b->lo, hi = b->hi, nbf = (float)nb, width = hi - lo;
    const float *ef = b->edges_f32;
    const double *e = b->edges;
    const double inv_w = b->mode == QB_HIST_EDGES ? hist_edges_inv_width(e) : 1.0;
#pragma omp parallel if (n > PAR_MIN)
    {
        int64_t *loc = tc + (int64_t)omp_get_thread_num() * nb;
        switch (b->mode) {
        case QB_HIST_LINEAR:
#pragma omp for schedule(static)
            for (int64_t i = 0; i < n; i++) {
                int64_t k = hist_bin_linear(x[i], skip, lo, hi, nbf, width, nb);
                if (k >= 0) loc[k]++;
            }
            break;
        case QB_HIST_UNIFORM:
#pragma omp for schedule(static)
            for (int64_t i = 0; i < n; i++) {
                int64_t k = hist_bin_uniform(x[i], skip, lo, hi, width, nbf, nb, ef);
                if (k >= 0) loc[k]++;
            }
            break;
        case QB_HIST_EDGES:
#pragma omp for schedule(static)
            for (int64_t i = 0; i < n; i++) {
                int64_t k = hist_bin_edges(x[i], skip, e, nb, inv_w);
                if (k >= 0) loc[k]++;
            }
            break;
        }
    }
}

int qb_cpu_histogram(qb_dev *d, int64_t *counts, const float *x, int64_t n, const qb_hist_bins *b) {
    (void)d;
    const int64_t nb = b->nbins;
    const int nt = omp_get_max_threads();
    int64_t *tc = calloc((size_t)nt * (size_t)nb, sizeof(int64_t));
    if (!tc) return -1;
    count(tc, x, n, b);
    for (int t = 0; t < nt; t++)
        for (int64_t k = 0; k < nb; k++) counts[k] += tc[(int64_t)t * nb + k];
    free(tc);
    return 0;
}

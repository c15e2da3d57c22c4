/* calib_histogram_amax.c: amax from a histogram by percentile, entropy (KL) or mse, as modelopt computes them
 * (spec §2.2), with float64 sums in numpy's pairwise order where numpy sums. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include "quant/calib_histogram.h"
#include "quant/fake_quant.h"

/* numpy's pairwise summation of a contiguous float64 array. */
static double pairwise_sum(const double *a, int64_t n) {
    if (n < 8) {
        double r = 0.0;
        for (int64_t i = 0; i < n; i++) r += a[i];
        return r;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; j++) r[j] = a[j];
        int64_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

int calib_histogram_percentile_amax(const int64_t *counts, int64_t n, const double *edges, double percentile,
                                    float *amax, qb_err *err) {
    if (!(percentile >= 0.0 && percentile <= 100.0))
        return qb_errorf(err, "percentile %g out of range [0, 100]", percentile);
    int64_t total = 0;
    for (int64_t k = 0; k < n; k++) total += counts[k];
    if (total <= 0) return qb_errorf(err, "percentile: empty histogram");
    const double p = percentile / 100.0, t = (double)total;
    double cdf = 0.0;
    int64_t idx = n;
    for (int64_t k = 0; k < n; k++) {
        cdf += (double)counts[k] / t;
        if (cdf >= p) {
            idx = k;
            break;
        }
    }
    *amax = (float)edges[idx];
    return 0;
}

/* KL(P || Q) of candidate i (spec §2.2 entropy steps 1-7); q and terms are scratch of length >= i. */
static double kl_candidate(const int64_t *bins, int64_t n, int64_t i, int64_t nq, int64_t total, double *sums,
                           int64_t *cnts, double *q, double *terms) {
    for (int64_t k = 0; k < nq; k++) {
        sums[k] = 0.0;
        cnts[k] = 0;
    }
    for (int64_t j = 0; j < i; j++) {
        if (!bins[j]) continue;
        int64_t b = j * nq / i;
        sums[b] += (double)bins[j];
        cnts[b]++;
    }
    for (int64_t k = 0; k < nq; k++)
        if (cnts[k]) sums[k] /= (double)cnts[k];
    for (int64_t j = 0; j < i; j++) q[j] = bins[j] ? sums[j * nq / i] : 0.0;
    const double qsum = pairwise_sum(q, i);
    int64_t outliers = 0;
    for (int64_t j = i; j < n; j++) outliers += bins[j];
    for (int64_t j = 0; j < i; j++) {
        const double pj = (double)(bins[j] + (j == i - 1 ? outliers : 0)) / (double)total;
        const double qj = q[j] / qsum; /* NaN when every candidate bin is empty (0 / 0), as in scipy */
        terms[j] = isnan(qj) ? NAN : pj > 0.0 ? (qj > 0.0 ? pj * log(pj / qj) : INFINITY) : qj >= 0.0 ? 0.0 : INFINITY;
    }
    return pairwise_sum(terms, i);
}

int calib_histogram_entropy_amax(const int64_t *counts, int64_t n, const double *edges, int num_bits, bool is_unsigned,
                                 int stride, int start_bin, float *amax, qb_err *err) {
    if (n < 2 || stride < 1 || start_bin < 1 || start_bin > n)
        return qb_errorf(err, "entropy: %lld bins, start_bin %d, stride %d leave no candidate", (long long)n, start_bin,
                         stride);
    int64_t *bins = malloc((size_t)n * sizeof(int64_t));
    if (!bins) return qb_errorf(err, "entropy: out of memory");
    for (int64_t k = 0; k < n; k++) bins[k] = counts[k];
    bins[0] = bins[1];
    int64_t total = 0;
    for (int64_t k = 0; k < n; k++) total += bins[k];
    if (total <= 0) {
        free(bins);
        return qb_errorf(err, "entropy: empty histogram");
    }
    const int64_t nq = (int64_t)1 << (num_bits - 1 + (is_unsigned ? 1 : 0));
    const int64_t ncand = (n - start_bin) / stride + 1;
    double *div = malloc((size_t)ncand * sizeof(double));
    const int nt = omp_get_max_threads();
    const size_t per = (size_t)(2 * n + 2 * nq);
    double *scratch = malloc((size_t)nt * per * sizeof(double));
    int64_t *cnts = malloc((size_t)nt * (size_t)nq * sizeof(int64_t));
    if (!div || !scratch || !cnts) {
        free(bins);
        free(div);
        free(scratch);
        free(cnts);
        return qb_errorf(err, "entropy: out of memory");
    }
#pragma omp parallel
    {
        const int t = omp_get_thread_num();
        double *s = scratch + (size_t)t * per;
#pragma omp for schedule(dynamic, 16)
        for (int64_t c = 0; c < ncand; c++)
            div[c] = kl_candidate(bins, n, start_bin + c * stride, nq, total, s, cnts + (size_t)t * (size_t)nq,
                                  s + nq, s + nq + n);
    }
    /* numpy's argmin over the reversed divergences: the last NaN if any (NaN wins), else the last minimum */
    int64_t best = -1;
    for (int64_t c = ncand - 1; c >= 0 && best < 0; c--)
        if (isnan(div[c])) best = c;
    if (best < 0) {
        best = 0;
        for (int64_t c = 1; c < ncand; c++)
            if (div[c] <= div[best]) best = c;
    }
    *amax = (float)edges[start_bin + best * stride];
    free(bins);
    free(div);
    free(scratch);
    free(cnts);
    return 0;
}

int calib_histogram_mse_amax(const int64_t *counts, int64_t n, const double *edges, int num_bits, bool is_unsigned,
                             int stride, int start_bin, float *amax, qb_err *err) {
    if (stride < 1 || start_bin < 0 || start_bin >= n)
        return qb_errorf(err, "mse: %lld bins, start_bin %d, stride %d leave no candidate", (long long)n, start_bin,
                         stride);
    int64_t total = 0;
    for (int64_t k = 0; k < n; k++) total += counts[k];
    if (total <= 0) return qb_errorf(err, "mse: empty histogram");
    float *centers = malloc((size_t)n * sizeof(float)), *cf = malloc((size_t)n * sizeof(float));
    const int64_t ncand = (n - 1 - start_bin) / stride + 1;
    double *mse = malloc((size_t)ncand * sizeof(double));
    if (!centers || !cf || !mse) {
        free(centers);
        free(cf);
        free(mse);
        return qb_errorf(err, "mse: out of memory");
    }
    for (int64_t j = 0; j < n; j++) {
        centers[j] = ((float)edges[j + 1] + (float)edges[j]) / 2.0f;
        cf[j] = (float)counts[j];
    }
    quant_desc d = quant_desc_default();
    d.num_bits = num_bits;
    d.is_unsigned = is_unsigned;
    d.narrow_range = !is_unsigned;
    const float lo = quant_desc_qmin(&d), hi = quant_desc_bound(&d);
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t c = 0; c < ncand; c++) {
        const float a = centers[start_bin + c * stride];
        const float s = fake_quant_scale(a, &d), dv = s == 0.0f ? 1.0f : s;
        double acc = 0.0;
        for (int64_t j = 0; j < n; j++) {
            if (cf[j] == 0.0f) continue;
            float q = rintf(centers[j] * s);
            q = q < lo ? lo : q > hi ? hi : q;
            const float e = q / dv - centers[j];
            acc += (double)(e * e * cf[j]);
        }
        mse[c] = acc / (double)n;
    }
    int64_t best = 0;
    for (int64_t c = 1; c < ncand; c++)
        if (mse[c] < mse[best]) best = c;
    *amax = centers[start_bin + best * stride];
    free(centers);
    free(cf);
    free(mse);
    return 0;
}

int calib_histogram_compute_amax(const calib_histogram *h, hist_amax_method method, const quant_desc *d,
                                 float *amax, const char *name, qb_err *err) {
    if (h->nbins == 0) return qb_errorf(err, "quantizer %s: histogram calibrator saw no data", name);
    int rc;
    switch (method) {
    case HIST_AMAX_PERCENTILE:
        rc = calib_histogram_percentile_amax(h->counts, h->nbins, h->edges, d->percentile, amax, err);
        break;
    case HIST_AMAX_ENTROPY:
        rc = calib_histogram_entropy_amax(h->counts, h->nbins, h->edges, d->num_bits, d->is_unsigned, d->stride,
                                          d->start_bin, amax, err);
        break;
    case HIST_AMAX_MSE:
        rc = calib_histogram_mse_amax(h->counts, h->nbins, h->edges, d->num_bits, d->is_unsigned, d->stride,
                                      d->start_bin, amax, err);
        break;
    default: return qb_errorf(err, "quantizer %s: unknown histogram amax method %d", name, (int)method);
    }
    return rc ? qb_err_context(err, "quantizer %s", name) : 0;
}

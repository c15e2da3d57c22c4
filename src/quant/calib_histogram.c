/* calib_histogram.c: histogram collection, growth and merge (see calib_histogram.h). */
#include "quant/calib_histogram.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void calib_histogram_init(calib_histogram *h, const quant_desc *d) {
    memset(h, 0, sizeof *h);
    h->semantics = d->hist_semantics;
    h->num_bins = d->num_bins;
    h->skip_zeros = d->skip_zeros;
}

void calib_histogram_free(calib_histogram *h) {
    free(h->counts);
    free(h->edges);
    h->counts = NULL;
    h->edges = NULL;
    h->nbins = 0;
    h->hist_hi = 0.0;
    h->edges_f64 = false;
}

void calib_histogram_reset(calib_histogram *h) { calib_histogram_free(h); }

/* Resizes to nb bins (new bins zero, old counts kept in the leading bins). */
static int resize(calib_histogram *h, int64_t nb) {
    int64_t *c = realloc(h->counts, (size_t)nb * sizeof(int64_t));
    if (!c) return -1;
    h->counts = c;
    double *e = realloc(h->edges, (size_t)(nb + 1) * sizeof(double));
    if (!e) return -1;
    h->edges = e;
    for (int64_t k = h->nbins; k < nb; k++) c[k] = 0;
    h->nbins = nb;
    return 0;
}

/* torch.linspace(0, r, steps) in float32 (the last edge is exactly r; others within an ulp of torch's
 * vectorised fill). */
static void torch_linspace_from0(double *e, int64_t steps, float r) {
    const float step = r / (float)(steps - 1);
    const int64_t half = steps / 2;
    for (int64_t k = 0; k < steps; k++)
        e[k] = k < half ? (double)(step * (float)k) : (double)(r - step * (float)(steps - 1 - k));
    e[steps - 1] = r;
}

/* Element k of torch.arange(0, end, w) (n elements, float32 on an AVX2 CPU): 8-wide vectors in pairs, each
 * vector from a float32 base plus j*w in double; the tail scalar. Exact for n <= 32768 (one thread's chunk). */
static float torch_arange_elem(double w, int64_t k, int64_t n) {
    if (k < n / 16 * 16) {
        int64_t b = k / 8 * 8;
        float base = (float)(w * (double)b);
        return (float)((double)base + (double)(k - b) * w);
    }
    return (float)(w * (double)k);
}

/* Counts the batch x (n elements, ex's memory) into bins b, adding to h->counts[0..b.nbins); edges_f32 (UNIFORM) or
 * edges (EDGES) are host arrays. A device with host memory counts straight into h; another gets zeroed counts and the
 * edges uploaded, and its counts are read back and added. */
static int count_add(calib_histogram *h, const qb_quant_exec *ex, const float *x, int64_t n, qb_hist_bins b, const float *edges_f32,
                     const double *edges, qb_err *err) {
    if (ex->k->host_memory) {
        b.edges_f32 = edges_f32;
        b.edges = edges;
        return QB_QKERNEL(err, ex, "histogram", histogram, h->counts, x, n, &b);
    }
    const int64_t nb = b.nbins;
    const size_t count_bytes = (size_t)nb * sizeof(int64_t);
    const size_t edge_bytes = b.mode == QB_HIST_UNIFORM ? (size_t)(nb + 1) * sizeof(float) : b.mode == QB_HIST_EDGES ? (size_t)(nb + 1) * sizeof(double) : 0;
    int64_t *dev = qb_quant_alloc(ex, count_bytes + edge_bytes, "histogram", err);
    int64_t *host = dev ? calloc((size_t)nb + 1, sizeof(int64_t)) : NULL;
    int rc = host ? 0 : dev ? qb_errorf(err, "histogram: out of memory for %lld bins", (long long)nb) : -1;
    if (!rc) rc = qb_quant_upload(ex, dev, host, count_bytes, "histogram", err);
    if (!rc && edge_bytes)
        rc = qb_quant_upload(ex, dev + nb, b.mode == QB_HIST_UNIFORM ? (const void *)edges_f32 : (const void *)edges, edge_bytes, "histogram", err);
    b.edges_f32 = b.mode == QB_HIST_UNIFORM ? (const float *)(dev + nb) : NULL;
    b.edges = b.mode == QB_HIST_EDGES ? (const double *)(dev + nb) : NULL;
    if (!rc) rc = QB_QKERNEL(err, ex, "histogram", histogram, dev, x, n, &b);
    if (!rc) rc = qb_quant_download(ex, host, dev, count_bytes, "histogram", err);
    for (int64_t k = 0; !rc && k < nb; k++) h->counts[k] += host[k];
    free(host);
    if (dev) qb_quant_release(ex, dev);
    return rc;
}

/* h->counts += torch.histc(|x|, nbins, min=lo, max=hi). lo == hi falls back to the data's range, then to
 * [lo - 1, hi + 1]. */
static int torch_histc_add(calib_histogram *h, const qb_quant_exec *ex, const float *x, int64_t n, float lo, float hi,
                           float data_min, float data_max, qb_err *err) {
    if (lo == hi) {
        lo = data_min;
        hi = data_max;
    }
    if (lo == hi) {
        lo -= 1.0f;
        hi += 1.0f;
    }
    qb_hist_bins b = {.mode = QB_HIST_LINEAR, .nbins = h->nbins, .skip_zeros = h->skip_zeros, .lo = lo, .hi = hi};
    return count_add(h, ex, x, n, b, NULL, NULL, err);
}

/* Growth beyond this many bins of the first batch's width is refused (the range is not representative). */
#define HIST_MAX_BINS ((int64_t)1 << 24)
#define HIST_TOO_WIDE (-2)

/* modelopt growth to cover xmax: bins of the first width w over [0, arange(0, xmax + w, w)[-1]]. */
static int grow_torch(calib_histogram *h, float xmax) {
    const double w = (float)h->edges[1] - (float)h->edges[0];
    const double ratio = (double)xmax / w;
    if (!(w > 0.0) || !isfinite(ratio) || ratio > (double)HIST_MAX_BINS) return HIST_TOO_WIDE;
    const int64_t nb = (int64_t)ceilf(xmax / (float)w);
    const float end = xmax + (float)w;
    const int64_t n_ar = (int64_t)ceil((double)end / (double)w);
    if (nb < h->nbins || n_ar < 1) return -1;
    if (resize(h, nb)) return -1;
    for (int64_t k = 0; k <= nb; k++) h->edges[k] = k < n_ar ? torch_arange_elem(w, k, n_ar) : (float)(w * (double)k);
    h->hist_hi = torch_arange_elem(w, n_ar - 1, n_ar);
    return 0;
}

/* numpy growth to cover xmax: edges += np.arange(last + w, xmax + w, w) with numpy's scalar types. */
static int grow_numpy(calib_histogram *h, float xmax) {
    double start, stop, w, b1;
    const double last = h->edges[h->nbins];
    if (!h->edges_f64) {
        const float wf = (float)h->edges[1] - (float)h->edges[0];
        const float sf = (float)last + wf;
        w = wf;
        start = sf;
        stop = (float)(xmax + wf);
        b1 = (float)(sf + wf);
    } else {
        w = h->edges[1] - h->edges[0];
        start = last + w;
        stop = (double)xmax + w;
        b1 = start + w;
    }
    h->edges_f64 = true;
    const double len = ceil((stop - start) / w);
    if (!isfinite(len) || len + (double)h->nbins > (double)HIST_MAX_BINS) return HIST_TOO_WIDE;
    if (!(len > 0)) return 0;
    const int64_t n_new = (int64_t)len, old = h->nbins;
    if (resize(h, old + n_new)) return -1;
    const double d = b1 - start;
    for (int64_t i = 0; i < n_new; i++) h->edges[old + 1 + i] = start + (double)i * d;
    return 0;
}

/* np.histogram(|x|, bins=num_bins) over [min, max] of the kept values: float32 index and one-bin correction. */
static int numpy_first(calib_histogram *h, const qb_quant_exec *ex, const float *x, int64_t n, float lo, float hi, qb_err *err) {
    if (lo == hi) {
        lo = lo - 0.5f;
        hi = hi + 0.5f;
    }
    const int64_t nb = h->num_bins;
    if (resize(h, nb)) return -1;
    const float denom = hi - lo, step = denom / (float)nb;
    float *ef = malloc((size_t)(nb + 1) * sizeof(float));
    if (!ef) return -1;
    for (int64_t k = 0; k <= nb; k++) ef[k] = (float)k * step + lo;
    ef[nb] = hi;
    for (int64_t k = 0; k <= nb; k++) h->edges[k] = ef[k];
    h->edges_f64 = false;
    qb_hist_bins b = {.mode = QB_HIST_UNIFORM, .nbins = nb, .skip_zeros = h->skip_zeros, .lo = lo, .hi = hi};
    int rc = count_add(h, ex, x, n, b, ef, NULL, err);
    free(ef);
    return rc;
}

/* np.histogram(|x|, bins=edges) added into the counts. */
static int numpy_edges_add(calib_histogram *h, const qb_quant_exec *ex, const float *x, int64_t n, qb_err *err) {
    qb_hist_bins b = {.mode = QB_HIST_EDGES, .nbins = h->nbins, .skip_zeros = h->skip_zeros};
    return count_add(h, ex, x, n, b, NULL, h->edges, err);
}

static int torch_first(calib_histogram *h, const qb_quant_exec *ex, const float *x, int64_t n, float xmax, float xmin, qb_err *err) {
    const int64_t nb = h->num_bins;
    if (resize(h, nb)) return -1;
    torch_linspace_from0(h->edges, nb + 1, xmax);
    h->hist_hi = xmax;
    return torch_histc_add(h, ex, x, n, 0.0f, xmax, xmin, xmax, err);
}

int calib_histogram_collect(calib_histogram *h, const float *x, int64_t n, const char *name, qb_err *err) {
    qb_quant_exec ex = qb_quant_exec_cpu();
    return calib_histogram_collect_on(h, &ex, x, n, name, err);
}

/* Statistics of |x| from the device. */
static int abs_stats(const qb_quant_exec *ex, const float *x, int64_t n, bool skip_zeros, qb_abs_stats *st, qb_err *err) {
    if (ex->k->host_memory) return QB_QKERNEL(err, ex, "histogram", abs_stats, st, x, n, skip_zeros);
    qb_abs_stats *dev = qb_quant_alloc(ex, sizeof *dev, "histogram", err);
    int rc = dev ? QB_QKERNEL(err, ex, "histogram", abs_stats, dev, x, n, skip_zeros) : -1;
    if (!rc) rc = qb_quant_download(ex, st, dev, sizeof *st, "histogram", err);
    if (dev) qb_quant_release(ex, dev);
    return rc;
}

int calib_histogram_collect_on(calib_histogram *h, const qb_quant_exec *ex, const float *x, int64_t n, const char *name, qb_err *err) {
    qb_abs_stats st;
    if (abs_stats(ex, x, n, h->skip_zeros, &st, err)) return qb_err_context(err, "quantizer %s", name);
    float xmax = st.max, xmin = st.min;
    if (st.bad) return qb_errorf(err, "quantizer %s: NaN or Inf in calibration data", name);
    if (st.kept == 0) return 0;
    int rc = 0;
    if (h->semantics == HIST_PQ21_NUMPY) {
        if (h->nbins == 0) {
            rc = numpy_first(h, ex, x, n, xmin, xmax, err);
        } else {
            if (xmax > h->edges[h->nbins]) rc = grow_numpy(h, xmax);
            if (!rc) rc = numpy_edges_add(h, ex, x, n, err);
        }
    } else if (h->nbins == 0) {
        rc = torch_first(h, ex, x, n, xmax, xmin, err);
    } else if (xmax > h->hist_hi && h->edges[1] == 0.0) {
        /* Every earlier value was zero (zero-width bins; the reference fails here): restart on this batch's range
         * and keep the zeros in bin 0. */
        int64_t zeros = 0;
        for (int64_t k = 0; k < h->nbins; k++) zeros += h->counts[k];
        calib_histogram_free(h);
        rc = torch_first(h, ex, x, n, xmax, xmin, err);
        if (!rc) h->counts[0] += zeros;
    } else {
        if (xmax > h->hist_hi) rc = grow_torch(h, xmax);
        if (!rc) rc = torch_histc_add(h, ex, x, n, 0.0f, (float)h->hist_hi, xmin, xmax, err);
    }
    if (rc == HIST_TOO_WIDE)
        return qb_errorf(err, "quantizer %s: histogram range grew to %g, more than %lld bins of the first batch's bin width "
                              "(calibrate with a more representative first batch)", name, (double)xmax, (long long)HIST_MAX_BINS);
    if (rc && err->failed) return qb_err_context(err, "quantizer %s", name);
    if (rc) return qb_errorf(err, "quantizer %s: histogram collection failed (out of memory)", name);
    return 0;
}

int calib_histogram_set_range(calib_histogram *h, float amax, qb_err *err) {
    if (h->nbins) return qb_errorf(err, "histogram set_range: data already collected");
    if (!(amax > 0.0f && isfinite(amax))) return qb_errorf(err, "histogram set_range: amax %g must be finite and > 0",
                                                           (double)amax);
    if (resize(h, h->num_bins)) return qb_errorf(err, "histogram set_range: out of memory");
    if (h->semantics == HIST_PQ21_NUMPY) {
        const float step = amax / (float)h->num_bins;
        for (int64_t k = 0; k <= h->nbins; k++) h->edges[k] = (float)k * step;
        h->edges[h->nbins] = amax;
        h->edges_f64 = false;
    } else {
        torch_linspace_from0(h->edges, h->nbins + 1, amax);
    }
    h->hist_hi = amax;
    return 0;
}

static int copy_hist(calib_histogram *dst, const calib_histogram *src) {
    calib_histogram_free(dst);
    if (resize(dst, src->nbins)) return -1;
    memcpy(dst->counts, src->counts, (size_t)src->nbins * sizeof(int64_t));
    memcpy(dst->edges, src->edges, (size_t)(src->nbins + 1) * sizeof(double));
    dst->hist_hi = src->hist_hi;
    dst->edges_f64 = src->edges_f64;
    return 0;
}

/* Spreads src's counts over dst's bins by overlap (largest remainder per src bin). */
static int rebin_add(calib_histogram *dst, const calib_histogram *src) {
    const int64_t nb = dst->nbins;
    const double *e = dst->edges;
    const double inv_w = hist_edges_inv_width(e);
    int64_t *share = malloc((size_t)nb * sizeof(int64_t));
    double *frac = malloc((size_t)nb * sizeof(double));
    if (!share || !frac) {
        free(share);
        free(frac);
        return -1;
    }
    for (int64_t j = 0; j < src->nbins; j++) {
        const int64_t c = src->counts[j];
        if (!c) continue;
        double a = src->edges[j], b = src->edges[j + 1];
        a = a < e[0] ? e[0] : a > e[nb] ? e[nb] : a;
        b = b < e[0] ? e[0] : b > e[nb] ? e[nb] : b;
        const int64_t k0 = calib_histogram_edge_bin(a, e, nb, inv_w);
        if (!(b > a)) {
            dst->counts[k0] += c;
            continue;
        }
        int64_t k1 = k0, given = 0;
        for (; k1 < nb && e[k1] < b; k1++) {
            double lo = a > e[k1] ? a : e[k1], hi = b < e[k1 + 1] ? b : e[k1 + 1];
            double x = hi > lo ? (double)c * (hi - lo) / (b - a) : 0.0;
            share[k1 - k0] = (int64_t)floor(x);
            frac[k1 - k0] = x - floor(x);
            given += share[k1 - k0];
        }
        for (int64_t left = c - given; left > 0; left--) {
            int64_t best = 0;
            for (int64_t k = 1; k < k1 - k0; k++)
                if (frac[k] > frac[best]) best = k;
            share[best]++;
            frac[best] = -1.0;
        }
        for (int64_t k = k0; k < k1; k++) dst->counts[k] += share[k - k0];
    }
    free(share);
    free(frac);
    return 0;
}

int calib_histogram_merge(calib_histogram *dst, const calib_histogram *src, qb_err *err) {
    if (dst->semantics != src->semantics) return qb_errorf(err, "histogram merge: different histogram semantics");
    if (src->nbins == 0) return 0;
    if (dst->nbins == 0) return copy_hist(dst, src) ? qb_errorf(err, "histogram merge: out of memory") : 0;
    const calib_histogram *lng = dst->nbins >= src->nbins ? dst : src, *shr = lng == dst ? src : dst;
    bool aligned = memcmp(lng->edges, shr->edges, (size_t)(shr->nbins + 1) * sizeof(double)) == 0 &&
                   (shr->semantics == HIST_PQ21_NUMPY || lng->nbins > shr->nbins || lng->hist_hi == shr->hist_hi);
    if (aligned) {
        if (src->nbins > dst->nbins) {
            const int64_t old = dst->nbins;
            if (resize(dst, src->nbins)) return qb_errorf(err, "histogram merge: out of memory");
            memcpy(dst->edges + old + 1, src->edges + old + 1, (size_t)(src->nbins - old) * sizeof(double));
            dst->hist_hi = src->hist_hi;
            dst->edges_f64 = src->edges_f64;
        }
        for (int64_t k = 0; k < src->nbins; k++) dst->counts[k] += src->counts[k];
        return 0;
    }
    const float top = (float)src->edges[src->nbins];
    const double dst_top = dst->semantics == HIST_PQ21_NUMPY ? dst->edges[dst->nbins] : dst->hist_hi;
    int rc = 0;
    if (top > dst_top) rc = dst->semantics == HIST_PQ21_NUMPY ? grow_numpy(dst, top) : grow_torch(dst, top);
    if (!rc) rc = rebin_add(dst, src);
    if (rc == HIST_TOO_WIDE)
        return qb_errorf(err, "histogram merge: range %g needs more than %lld bins of the destination's bin width", (double)top,
                         (long long)HIST_MAX_BINS);
    return rc ? qb_errorf(err, "histogram merge: out of memory") : 0;
}

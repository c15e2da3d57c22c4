/* calib_histogram.h: histogram of |x| over calibration batches (HistogramCalibrator), per tensor, 64-bit counts.
 *
 * HIST_MODELOPT (default) follows modelopt / pytorch-quantization 2.2 (torch_hist=True): the first batch gives
 * num_bins bins over [0, max|x|] (torch.histc, float32 bin index); a batch with a larger max grows the histogram to
 * ceil(max / w) bins of width w over [0, arange(0, max + w, w)[-1]], keeping the old counts in the leading bins.
 * HIST_PQ21_NUMPY follows pytorch-quantization 2.1 (np.histogram): the first batch spans [min|x|, max|x|]; growth
 * appends edges last+w, last+2w, ... (np.arange); values below the first edge are dropped.
 * Edges are kept as the reference reports them (float32 values, or float64 after a numpy growth).
 * Counts never saturate (the reference's float32 counts stop at 2^24). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "base/error.h"
#include "quant/quant_desc.h"
#include "quant/quant_kernels.h"
#include "quant/quant_math.h" /* calib_histogram_edge_bin */

typedef struct calib_histogram {
    hist_semantics semantics;
    int num_bins;        /* bins of the first batch */
    bool skip_zeros;
    int64_t nbins;       /* 0 until data (or a range) arrives */
    int64_t *counts;     /* [nbins] */
    double *edges;       /* [nbins + 1] as the reference reports them */
    double hist_hi;      /* modelopt: right end of the binned range (the last arange edge, maybe past edges[nbins]) */
    bool edges_f64;      /* numpy: edges are float64 (after the first growth) */
} calib_histogram;

/* Starts an empty histogram with the descriptor's bins, skip_zeros and semantics. */
void calib_histogram_init(calib_histogram *h, const quant_desc *d);
/* Frees the counts and edges. */
void calib_histogram_free(calib_histogram *h);
/* Forgets the data seen. */
void calib_histogram_reset(calib_histogram *h);
/* Adds |x| (n elements) to the histogram; NaN/Inf is an error naming `name`. An empty batch (or all zeros with
 * skip_zeros) changes nothing. */
int calib_histogram_collect(calib_histogram *h, const float *x, int64_t n, const char *name, qb_err *err);
/* The same for x in the memory of ex's device: statistics and counts by ex's kernels, the bins decided here. */
int calib_histogram_collect_on(calib_histogram *h, const qb_quant_exec *ex, const float *x, int64_t n, const char *name, qb_err *err);
/* Fixes the range before any data (modelopt semantics): num_bins bins over [0, amax], as a first batch whose
 * max is amax. Histograms of several processes given the same range have identical edges, so merging them is
 * exact; the range is agreed by max-merging calib_max calibrators first. */
int calib_histogram_set_range(calib_histogram *h, float amax, qb_err *err);
/* dst += src. Exact (the counts of one histogram over both data sets) when the edges of the shorter histogram
 * are a prefix of the longer one's (same first batch range, or set_range with the same amax). Otherwise src is
 * re-binned onto dst's grid (grown as the reference grows it to cover src): each src bin's count is spread over
 * the dst bins it overlaps in proportion to the overlap (largest remainder, total kept), so a count can move by
 * up to the width of its src bin. */
int calib_histogram_merge(calib_histogram *dst, const calib_histogram *src, qb_err *err);
/* The amax from the collected histogram by a method (percentile, entropy, mse) with the descriptor's
 * percentile, num_bits, unsigned, start_bin and stride; an error when no data was seen. */
int calib_histogram_compute_amax(const calib_histogram *h, hist_amax_method method, const quant_desc *d,
                                 float *amax, const char *name, qb_err *err);

/* ---- compute-amax methods on a histogram: counts [n], edges [n + 1] (spec §2.2) */
/* Left edge of the first bin whose cumulative fraction (float64, as numpy) reaches percentile/100. */
int calib_histogram_percentile_amax(const int64_t *counts, int64_t n, const double *edges, double percentile,
                                    float *amax, qb_err *err);
/* TensorRT-style KL minimisation: right edge of the last candidate bin with the smallest divergence (a NaN
 * divergence, from a candidate whose kept bins are all empty, wins as in numpy's argmin). */
int calib_histogram_entropy_amax(const int64_t *counts, int64_t n, const double *edges, int num_bits, bool is_unsigned,
                                 int stride, int start_bin, float *amax, qb_err *err);
/* Bin centre (float32) with the first smallest count-weighted squared fake-quant error of the bin centres. */
int calib_histogram_mse_amax(const int64_t *counts, int64_t n, const double *edges, int num_bits, bool is_unsigned,
                             int stride, int start_bin, float *amax, qb_err *err);

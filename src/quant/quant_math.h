/* quant_math.h: the per-element arithmetic of the quant kernels, shared by the CPU (C) and CUDA (nvcc, emulator)
 * kernel files so that every device evaluates the same float32 / float64 expressions and gives the same bits: the
 * fake-quant element and the histogram bin of a value. Under nvcc the functions are device functions (kernel files
 * only call them from kernels) and the one product whose rounding matters is __fmul_rn (never contracted into an FMA);
 * nvcc's defaults (-prec-div=true, -ftz=false, no reassociation) keep division, denormals and sums IEEE. */
#pragma once
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __CUDACC__
#define QUANT_HD __device__
#define QUANT_FMUL(a, b) __fmul_rn((a), (b))
#else
#define QUANT_HD
#define QUANT_FMUL(a, b) ((a) * (b))
#endif

#define FAKE_QUANT_TINY_AMAX (1.0f / 16777216.0f) /* 2^-24, the smallest fp16 subnormal */
#define FAKE_QUANT_ROUND_MAGIC 12582912.0f       /* 1.5 * 2^23: adding and subtracting it rounds |v| < 2^22 to an integer */

/* bound / amax in float32, or 0 when amax <= 2^-24. */
QUANT_HD static inline float fake_quant_scale_of(float amax, float bound) {
    if (amax <= FAKE_QUANT_TINY_AMAX) return 0.0f;
    return bound / amax;
}

/* One element: clamp(rint_half_even(x * s), lo, hi) / div (div = s, or 1 when s is 0). v is clamped to
 * [lo - 1, hi + 1] first (rint is monotone and lo, hi are integers, so the result is clamp(rint(v), lo, hi)), which
 * keeps it in the magic-number rounding range; copysign restores the sign of a zero as rintf gives it; the
 * comparisons keep NaN as torch.clamp does. Vectorises on the CPU without SSE4.1. */
QUANT_HD static inline float fake_quant_one(float x, float s, float div, float lo, float hi) {
    float v = QUANT_FMUL(x, s);
    v = v < lo - 1.0f ? lo - 1.0f : v;
    v = v > hi + 1.0f ? hi + 1.0f : v;
    float q = copysignf((fabsf(v) + FAKE_QUANT_ROUND_MAGIC) - FAKE_QUANT_ROUND_MAGIC, v);
    q = q < lo ? lo : q;
    q = q > hi ? hi : q;
    return q / div;
}

/* ---- histogram bins (modes of qb_hist_mode in quant_kernels.h); each returns the bin of |x|, or -1 when the value
 * is skipped (an exact zero with skip_zeros, or outside the range) */

/* torch.histc over [lo, hi] with nbf = nb as float32 and width = hi - lo: bin (|x| - lo) * nbf / width, hi in the
 * last bin. */
QUANT_HD static inline int64_t hist_bin_linear(float x, bool skip_zeros, float lo, float hi, float nbf, float width, int64_t nb) {
    const float a = fabsf(x);
    if ((skip_zeros && a == 0.0f) || !(a >= lo && a <= hi)) return -1;
    const int64_t k = (int64_t)((a - lo) * nbf / width);
    return k >= nb ? nb - 1 : k;
}

/* np.histogram over uniform float32 edges ef [nb + 1] spanning [lo, hi] (denom = hi - lo, nbf = nb): float32 index
 * ((|x| - lo) / denom) * nbf, then the one-bin correction against the edges. */
QUANT_HD static inline int64_t hist_bin_uniform(float x, bool skip_zeros, float lo, float hi, float denom, float nbf, int64_t nb,
                                                const float *ef) {
    const float a = fabsf(x);
    if ((skip_zeros && a == 0.0f) || !(a >= lo && a <= hi)) return -1;
    int64_t k = (int64_t)(((a - lo) / denom) * nbf);
    if (k >= nb) k = nb - 1;
    if (a < ef[k]) k--;
    else if (k != nb - 1 && a >= ef[k + 1]) k++;
    return k;
}

/* 1 / (e[1] - e[0]) for calib_histogram_edge_bin, 1 when that width is not positive. */
QUANT_HD static inline double hist_edges_inv_width(const double *e) { return 1.0 / (e[1] - e[0] > 0.0 ? e[1] - e[0] : 1.0); }

/* Bin of a in edges e[0..nb] with np.histogram's rule [e_k, e_k+1) (last bin closed); a within [e_0, e_nb]; inv_w from
 * hist_edges_inv_width. */
QUANT_HD static inline int64_t calib_histogram_edge_bin(double a, const double *e, int64_t nb, double inv_w) {
    int64_t k = (int64_t)((a - e[0]) * inv_w);
    k = k < 0 ? 0 : k >= nb ? nb - 1 : k;
    while (k > 0 && a < e[k]) k--;
    while (k < nb - 1 && a >= e[k + 1]) k++;
    return k;
}

/* np.histogram(|x|, bins=e) with float64 edges e [nb + 1]: values outside [e_0, e_nb] skipped. */
QUANT_HD static inline int64_t hist_bin_edges(float x, bool skip_zeros, const double *e, int64_t nb, double inv_w) {
    const double a = fabsf(x);
    if ((skip_zeros && a == 0.0) || !(a >= e[0] && a <= e[nb])) return -1;
    return calib_histogram_edge_bin(a, e, nb, inv_w);
}

/* fake_quant.c: see fake_quant.h. Rounding is half to even in the default FE_TONEAREST mode. */
#include "quant/fake_quant.h"

#include <math.h>

#define PAR_MIN 32768

float fake_quant_scale(float amax, const quant_desc *d) {
    if (amax <= FAKE_QUANT_TINY_AMAX) return 0.0f;
    return quant_desc_bound(d) / amax;
}

#define ROUND_MAGIC 12582912.0f /* 1.5 * 2^23: adding and subtracting it rounds |v| < 2^22 to an integer */

/* One element. v is clamped to [lo - 1, hi + 1] first (rint is monotone and lo, hi are integers, so the result
 * is clamp(rint(v), lo, hi)), which keeps it in the magic-number rounding range; copysign restores the sign of a
 * zero as rintf gives it; the comparisons keep NaN as torch.clamp does. Vectorises without SSE4.1. */
static inline float fq1(float x, float s, float div, float lo, float hi) {
    float v = x * s;
    v = v < lo - 1.0f ? lo - 1.0f : v;
    v = v > hi + 1.0f ? hi + 1.0f : v;
    float q = copysignf((fabsf(v) + ROUND_MAGIC) - ROUND_MAGIC, v);
    q = q < lo ? lo : q;
    q = q > hi ? hi : q;
    return q / div;
}

void fake_quant_per_tensor(float *out, const float *x, int64_t n, float amax, const quant_desc *d) {
    const float s = fake_quant_scale(amax, d), div = s == 0.0f ? 1.0f : s;
    const float lo = quant_desc_qmin(d), hi = quant_desc_bound(d);
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = fq1(x[i], s, div, lo, hi);
}

void fake_quant_per_channel(float *out, const float *x, int64_t outer, int64_t channels, int64_t inner,
                            const float *amax, const quant_desc *d) {
    const float lo = quant_desc_qmin(d), hi = quant_desc_bound(d);
    const int64_t rows = outer * channels;
#pragma omp parallel for schedule(static) if (rows * inner > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float s = fake_quant_scale(amax[r % channels], d), div = s == 0.0f ? 1.0f : s;
        const float *xr = x + r * inner;
        float *yr = out + r * inner;
#pragma omp simd
        for (int64_t i = 0; i < inner; i++) yr[i] = fq1(xr[i], s, div, lo, hi);
    }
}

void fake_quant_ste_mask(uint8_t *mask, const float *x, int64_t n, float amax) {
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) mask[i] = fabsf(x[i]) <= amax;
}

void fake_quant_ste_backward_per_tensor(float *gx, const float *gy, const float *x, int64_t n, float amax, float keep) {
    /* two loops rather than keep * gx: a clipped element must give 0 even when its upstream gradient is not finite */
    if (keep != 0.0f) {
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) gx[i] += fabsf(x[i]) <= amax ? gy[i] : 0.0f;
    } else {
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) gx[i] = fabsf(x[i]) <= amax ? gy[i] : 0.0f;
    }
}

void fake_quant_ste_backward_per_channel(float *gx, const float *gy, const float *x, int64_t outer, int64_t channels,
                                         int64_t inner, const float *amax, float keep) {
    const int64_t rows = outer * channels;
#pragma omp parallel for schedule(static) if (rows * inner > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float a = amax[r % channels];
        const int64_t o = r * inner;
        if (keep != 0.0f) {
#pragma omp simd
            for (int64_t i = 0; i < inner; i++) gx[o + i] += fabsf(x[o + i]) <= a ? gy[o + i] : 0.0f;
        } else {
#pragma omp simd
            for (int64_t i = 0; i < inner; i++) gx[o + i] = fabsf(x[o + i]) <= a ? gy[o + i] : 0.0f;
        }
    }
}

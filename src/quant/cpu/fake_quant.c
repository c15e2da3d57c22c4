/* fake_quant.c: fake quantization, its clipped-STE gradient and the learnable (PACT) form on host memory: the CPU
 * kernels of the quant table and fake_quant.h (the element formula is quant_math.h's, shared with the CUDA kernels). */
#include "quant/fake_quant.h"

#include <math.h>
#include <stdbool.h>
#include "autograd/cpu/simd_math.h"
#include "quant/cpu/kernels.h"

#define PAR_MIN 32768

float fake_quant_scale(float amax, const quant_desc *d) { return fake_quant_scale_of(amax, quant_desc_bound(d)); }

QB_MULTIVERSION static void fq_per_tensor(float *out, const float *x, int64_t n, float amax, float lo, float hi) {
    const float s = fake_quant_scale_of(amax, hi), div = s == 0.0f ? 1.0f : s;
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = fake_quant_one(x[i], s, div, lo, hi);
}

QB_MULTIVERSION static void fq_per_channel(float *out, const float *x, int64_t outer, int64_t channels, int64_t inner, const float *amax,
                                           float lo, float hi) {
    const int64_t rows = outer * channels;
#pragma omp parallel for schedule(static) if (rows * inner > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float s = fake_quant_scale_of(amax[r % channels], hi), div = s == 0.0f ? 1.0f : s;
        const float *xr = x + r * inner;
        float *yr = out + r * inner;
#pragma omp simd
        for (int64_t i = 0; i < inner; i++) yr[i] = fake_quant_one(xr[i], s, div, lo, hi);
    }
}

void fake_quant_per_tensor(float *out, const float *x, int64_t n, float amax, const quant_desc *d) {
    fq_per_tensor(out, x, n, amax, quant_desc_qmin(d), quant_desc_bound(d));
}

void fake_quant_per_channel(float *out, const float *x, int64_t outer, int64_t channels, int64_t inner,
                            const float *amax, const quant_desc *d) {
    fq_per_channel(out, x, outer, channels, inner, amax, quant_desc_qmin(d), quant_desc_bound(d));
}

void fake_quant_ste_mask(uint8_t *mask, const float *x, int64_t n, float amax) {
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) mask[i] = fabsf(x[i]) <= amax;
}

/* gy where |x| <= amax, else +0, with gy read whatever the test gives (the STE loops then have no branch and vectorise). */
static inline float ste_select(float x, float gy, float amax) { return fabsf(x) <= amax ? gy : 0.0f; }

/* a + b with b's NaN when both are NaN (as the scalar a += b gives it, and quant_host_add on CUDA), whichever operand
 * order the vector code takes. */
static inline float add_b_nan_first(float a, float b) { return (b != b ? 0.0f : a) + b; }

/* Two loops rather than keep * gx: a clipped element must give 0 even when its upstream gradient is not finite. */
QB_MULTIVERSION static void ste_per_tensor(float *gx, const float *gy, const float *x, int64_t n, float amax, float keep) {
    if (keep != 0.0f) {
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) gx[i] = add_b_nan_first(gx[i], ste_select(x[i], gy[i], amax));
    } else {
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) gx[i] = ste_select(x[i], gy[i], amax);
    }
}

QB_MULTIVERSION static void ste_per_channel(float *gx, const float *gy, const float *x, int64_t outer, int64_t channels, int64_t inner,
                                            const float *amax, float keep) {
    const int64_t rows = outer * channels;
#pragma omp parallel for schedule(static) if (rows * inner > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float a = amax[r % channels];
        float *g = gx + r * inner;
        const float *dy = gy + r * inner, *xr = x + r * inner;
        if (keep != 0.0f) {
#pragma omp simd
            for (int64_t i = 0; i < inner; i++) g[i] = add_b_nan_first(g[i], ste_select(xr[i], dy[i], a));
        } else {
#pragma omp simd
            for (int64_t i = 0; i < inner; i++) g[i] = ste_select(xr[i], dy[i], a);
        }
    }
}

void fake_quant_ste_backward_per_tensor(float *gx, const float *gy, const float *x, int64_t n, float amax, float keep) {
    ste_per_tensor(gx, gy, x, n, amax, keep);
}

void fake_quant_ste_backward_per_channel(float *gx, const float *gy, const float *x, int64_t outer, int64_t channels,
                                         int64_t inner, const float *amax, float keep) {
    ste_per_channel(gx, gy, x, outer, channels, inner, amax, keep);
}

int qb_cpu_fake_quant(qb_dev *d, float *y, const float *x, int64_t outer, int64_t channels, int64_t inner, const float *amax,
                      float qmin, float qmax) {
    (void)d;
    if (channels == 1) fq_per_tensor(y, x, outer * inner, amax[0], qmin, qmax);
    else fq_per_channel(y, x, outer, channels, inner, amax, qmin, qmax);
    return 0;
}

/* One segment of the block: fq_per_channel's elements (channels 1: one amax), and per row whether an element fails
 * |x| <= amax. */
static void fq_segment(float *out, uint8_t *clipped, const float *x, const qb_fq_segment *sg, const float *amax) {
    const int64_t rows = sg->outer * sg->channels, inner = sg->inner;
    const float lo = sg->qmin, hi = sg->qmax;
#pragma omp parallel for schedule(static) if (rows * inner > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float a = amax[r % sg->channels], s = fake_quant_scale_of(a, hi), div = s == 0.0f ? 1.0f : s;
        const float *xr = x + r * inner;
        float *yr = out + r * inner;
        int c = 0;
#pragma omp simd reduction(| : c)
        for (int64_t i = 0; i < inner; i++) {
            yr[i] = fake_quant_one(xr[i], s, div, lo, hi);
            c |= !(fabsf(xr[i]) <= a);
        }
        clipped[r] = c != 0;
    }
}

int qb_cpu_fake_quant_block(qb_dev *d, float *dst, const float *src, const float *amax, const qb_fq_segment *seg, int n_seg,
                            int64_t max_numel, uint8_t *clipped, int64_t n_clipped) {
    (void)d;
    (void)max_numel;
    (void)n_clipped;
    for (int k = 0; k < n_seg; k++) fq_segment(dst + seg[k].dst_off, clipped + seg[k].clip_off, src + seg[k].src_off, &seg[k], amax + seg[k].amax_off);
    return 0;
}

int qb_cpu_fake_quant_mask_rows(qb_dev *d, float *g, const float *x, int64_t outer, int64_t channels, int64_t inner, const float *amax,
                                const uint8_t *clipped) {
    (void)d;
    const int64_t rows = outer * channels;
#pragma omp parallel for schedule(static) if (rows * inner > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        if (!clipped[r]) continue;
        const float a = amax[r % channels];
        float *gr = g + r * inner;
        const float *xr = x + r * inner;
#pragma omp simd
        for (int64_t i = 0; i < inner; i++) gr[i] = ste_select(xr[i], gr[i], a);
    }
    return 0;
}

int qb_cpu_fake_quant_grad(qb_dev *d, float *dx, float keep, const float *dy, const float *x, int64_t outer, int64_t channels,
                           int64_t inner, const float *amax) {
    (void)d;
    if (channels == 1) fake_quant_ste_backward_per_tensor(dx, dy, x, outer * inner, amax[0], keep);
    else fake_quant_ste_backward_per_channel(dx, dy, x, outer, channels, inner, amax, keep);
    return 0;
}

int qb_cpu_fake_quant_learnable(qb_dev *d, float *yp, const float *xp, int64_t cnt, const float *amax, float qmin, float qmax) {
    (void)d;
    const float a = amax[0];
#pragma omp parallel for simd schedule(static) if (cnt > 32768)
    for (int64_t i = 0; i < cnt; i++) yp[i] = xp[i] < -a ? -a : xp[i] > a ? a : xp[i];
    fq_per_tensor(yp, yp, cnt, a, qmin, qmax);
    return 0;
}

int qb_cpu_fake_quant_learnable_grad(qb_dev *d, float *g, float *da, const float *dy, const float *xp, int64_t cnt, const float *amaxp) {
    (void)d;
    const float amax = amaxp[0];
    if (g) {
#pragma omp parallel for simd schedule(static) if (cnt > 32768)
        for (int64_t i = 0; i < cnt; i++) g[i] += xp[i] > -amax && xp[i] < amax ? dy[i] : 0.0f;
    }
    if (da) {
        double acc = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : acc) if (cnt > 32768)
        for (int64_t i = 0; i < cnt; i++) acc += xp[i] >= amax ? dy[i] : xp[i] <= -amax ? -dy[i] : 0.0f;
        da[0] += (float)acc;
    }
    return 0;
}

int qb_cpu_fake_quant_lsq(qb_dev *d, float *y, const float *x, int64_t cnt, const float *scale, float qmin, float qmax) {
    (void)d;
    const float s = scale[0], inv = 1.0f / s;
#pragma omp parallel for schedule(static) if (cnt > 32768)
    for (int64_t i = 0; i < cnt; i++) {
        float q = nearbyintf(x[i] * inv);
        y[i] = (q < qmin ? qmin : q > qmax ? qmax : q) * s;
    }
    return 0;
}

int qb_cpu_fake_quant_lsq_grad(qb_dev *d, float *dx, float *dscale, const float *dy, const float *x, int64_t cnt, const float *scale, float qmin,
                               float qmax, float grad_factor) {
    (void)d;
    const float s = scale[0], inv = 1.0f / s;
    double acc = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : acc) if (cnt > 32768)
    for (int64_t i = 0; i < cnt; i++) {
        float q = nearbyintf(x[i] * inv);
        bool in = q >= qmin && q <= qmax;
        if (dx && in) dx[i] += dy[i];
        float ds = q < qmin ? qmin : q > qmax ? qmax : (q * s - x[i]) * inv;
        acc += (double)(ds * dy[i] * grad_factor);
    }
    if (dscale) dscale[0] += (float)acc;
    return 0;
}

int qb_cpu_any_negative(qb_dev *d, int32_t *flag, const float *x, int64_t n) {
    (void)d;
    int neg = 0;
#pragma omp parallel for simd schedule(static) reduction(| : neg) if (n > 32768)
    for (int64_t i = 0; i < n; i++) neg |= x[i] < 0.0f;
    flag[0] = neg != 0;
    return 0;
}

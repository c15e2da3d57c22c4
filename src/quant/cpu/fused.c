/* fused.c: the fused ops' CPU kernels (op_fused.c): a producer and the fake quant of its output in one pass over each
 * row or block of elements. Every loop repeats the unfused kernels' expressions and loop forms (autograd/cpu/softmax.c,
 * dropout.c, activation.c, layernorm.c; the fake-quant element of quant_math.h), so that the results equal the unfused
 * composition bit for bit. */
#include <math.h>
#include <string.h>
#include "autograd/cpu/simd_math.h"
#include "autograd/cpu/row_math.h"
#include "autograd/cpu/softmax_row.h"
#include "autograd/cpu/gelu_math.h"
#include "autograd/rng.h"
#include "quant/cpu/kernels.h"
#include "quant/quant_math.h"

#define SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_TANH_C 0.044715f
#define PAR_MIN 16384

/* z[j] = fake_quant(y[j] * keep(base + j)) over n elements (keep 1 when not dropping). */
QB_MULTIVERSION static void dropout_fq(float *restrict z, const float *restrict y, int64_t n, uint64_t base, const qb_fused_dropout *drop,
                                       bool dropping, float qs, float div, float lo, float hi) {
    if (dropping) {
        const uint32_t key = drop->key;
        const float p = drop->p, inv_keep = drop->inv_keep;
        const uint64_t off = drop->offset + base;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            float k = qb_rng_uniform32(key, off + (uint64_t)j) >= p ? inv_keep : 0.0f;
            z[j] = fake_quant_one(y[j] * k, qs, div, lo, hi);
        }
    } else {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) z[j] = fake_quant_one(y[j], qs, div, lo, hi);
    }
}

#define SOFTMAX_BLOCK 4096 /* elements of the rows whose dropout and fake quant run as one call */

int qb_cpu_softmax_fq(qb_dev *d, float *y, float *z, const float *x, float scale, const float *mp, const int64_t *sh, const int64_t *mst,
                      const qb_fused_dropout *drop, const qb_fq_point *fq) {
    (void)d;
    const int64_t c = sh[3], rows = sh[0] * sh[1] * sh[2], rb = c < SOFTMAX_BLOCK ? SOFTMAX_BLOCK / c : 1, n_blocks = (rows + rb - 1) / rb;
    const float lo = fq->qmin, hi = fq->qmax, qs = fake_quant_scale_of(fq->amax[0], hi), div = qs == 0.0f ? 1.0f : qs;
    const bool dropping = drop && drop->on;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < n_blocks; b++) {
        const int64_t r0 = b * rb, r1 = r0 + rb < rows ? r0 + rb : rows;
        for (int64_t r = r0; r < r1; r++) {
            int64_t i2 = r % sh[2], i1 = (r / sh[2]) % sh[1], i0 = r / (sh[2] * sh[1]);
            const float *mr = mp ? mp + i0 * mst[0] + i1 * mst[1] + i2 * mst[2] : NULL;
            qb_softmax_row(y + r * c, x + r * c, mr, mst[3], scale, c);
        }
        dropout_fq(z + r0 * c, y + r0 * c, (r1 - r0) * c, (uint64_t)(r0 * c), drop, dropping, qs, div, lo, hi);
    }
    return 0;
}

/* u[j] = the STE of the fake quant of y[j] * keep(base + j) applied to dz[j], times keep(base + j) (keep 1 when not
 * dropping): the upstream gradient of the softmax over n elements. */
QB_MULTIVERSION static void softmax_fq_upstream(float *u, const float *y, const float *dz, int64_t n, uint64_t base, const qb_fused_dropout *drop,
                                                bool dropping, float amax) {
    if (dropping) {
        const uint32_t key = drop->key;
        const float p = drop->p, inv_keep = drop->inv_keep;
        const uint64_t off = drop->offset + base;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            float k = qb_rng_uniform32(key, off + (uint64_t)j) >= p ? inv_keep : 0.0f, g = dz[j], t = fabsf(y[j] * k) <= amax ? g : 0.0f;
            u[j] = t * k;
        }
    } else {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            float g = dz[j];
            u[j] = fabsf(y[j]) <= amax ? g : 0.0f;
        }
    }
}

#define SOFTMAX_GRAD_ROWS 8 /* rows whose in-order sums run interleaved */

/* dot[r] += sum over j in order of y[r c + j] * u[r c + j] for nr <= SOFTMAX_GRAD_ROWS rows of n columns with row
 * stride c (softmax.c's sum, one chain per row, the chains interleaved). */
static void softmax_grad_dots(float *dot, const float *y, const float *u, int64_t nr, int64_t n, int64_t c) {
    float acc[SOFTMAX_GRAD_ROWS];
    for (int64_t r = 0; r < nr; r++) acc[r] = dot[r];
    if (nr == SOFTMAX_GRAD_ROWS) {
        for (int64_t j = 0; j < n; j++)
            for (int r = 0; r < SOFTMAX_GRAD_ROWS; r++) acc[r] += y[r * c + j] * u[r * c + j];
    } else {
        for (int64_t j = 0; j < n; j++)
            for (int64_t r = 0; r < nr; r++) acc[r] += y[r * c + j] * u[r * c + j];
    }
    for (int64_t r = 0; r < nr; r++) dot[r] = acc[r];
}

/* g[j] = keep * g[j] + scale * y[j] * (u[j] - dot) over n; keep 0 gives 0 * u[j] for the first term, as the unfused
 * chain where the upstream gradient sits in g's buffer. */
static void softmax_grad_finish(float *g, const float *y, const float *u, int64_t n, float dot, float keep, float scale) {
    if (keep == 0.0f) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) g[j] = 0.0f * u[j] + scale * y[j] * (u[j] - dot);
    } else {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) g[j] = keep * g[j] + scale * y[j] * (u[j] - dot);
    }
}

int qb_cpu_softmax_fq_grad(qb_dev *d, float *g, float keep, const float *yp, const float *dz, float scale, int64_t rows, int64_t c,
                           const qb_fused_dropout *drop, const float *amaxp) {
    (void)d;
    const float amax = amaxp[0];
    const bool dropping = drop && drop->on;
    const int64_t rb = c <= SOFTMAX_BLOCK / SOFTMAX_GRAD_ROWS ? SOFTMAX_GRAD_ROWS : 1, n_blocks = (rows + rb - 1) / rb;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < n_blocks; b++) {
        const int64_t r0 = b * rb, nr = r0 + rb < rows ? rb : rows - r0;
        float u[SOFTMAX_BLOCK], dot[SOFTMAX_GRAD_ROWS] = {0};
        if (nr * c <= SOFTMAX_BLOCK) {
            const int64_t o = r0 * c;
            softmax_fq_upstream(u, yp + o, dz + o, nr * c, (uint64_t)o, drop, dropping, amax);
            softmax_grad_dots(dot, yp + o, u, nr, c, c);
            for (int64_t r = 0; r < nr; r++) softmax_grad_finish(g + o + r * c, yp + o + r * c, u + r * c, c, dot[r], keep, scale);
        } else { /* one long row: the upstream gradient recomputed per chunk, for the sum and then for the output */
            const int64_t o = r0 * c;
            for (int64_t j = 0; j < c; j += SOFTMAX_BLOCK) {
                const int64_t m = c - j < SOFTMAX_BLOCK ? c - j : SOFTMAX_BLOCK;
                softmax_fq_upstream(u, yp + o + j, dz + o + j, m, (uint64_t)(o + j), drop, dropping, amax);
                softmax_grad_dots(dot, yp + o + j, u, 1, m, c);
            }
            for (int64_t j = 0; j < c; j += SOFTMAX_BLOCK) {
                const int64_t m = c - j < SOFTMAX_BLOCK ? c - j : SOFTMAX_BLOCK;
                softmax_fq_upstream(u, yp + o + j, dz + o + j, m, (uint64_t)(o + j), drop, dropping, amax);
                softmax_grad_finish(g + o + j, yp + o + j, u, m, dot[0], keep, scale);
            }
        }
    }
    return 0;
}

/* g where pass, else +0 (the STE's select as a bit mask: no branch in the loops that also call vector math). */
static inline float ste_pass(bool pass, float g) {
    uint32_t b;
    memcpy(&b, &g, sizeof b);
    b &= 0u - (uint32_t)pass;
    memcpy(&g, &b, sizeof g);
    return g;
}

/* z = fake_quant(act(x)); one simple loop per kind (the vector math of libmvec, as activation.c). */
QB_MULTIVERSION static void act_fq_cpu(qb_unary_kind k, float *restrict z, const float *restrict x, int64_t n, float s, float div, float lo,
                                       float hi) {
    switch (k) {
    case QB_UNARY_GELU:
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float e;
            z[i] = fake_quant_one(0.5f * x[i] * qb_gelu_cdf2(x[i], &e), s, div, lo, hi);
        }
        break;
    case QB_UNARY_GELU_TANH:
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            z[i] = fake_quant_one(0.5f * x[i] * (1.0f + tanhf(SQRT_2_OVER_PI * (x[i] + GELU_TANH_C * x[i] * x[i] * x[i]))), s, div, lo, hi);
        break;
    case QB_UNARY_TANH:
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) z[i] = fake_quant_one(tanhf(x[i]), s, div, lo, hi);
        break;
    case QB_UNARY_RELU:
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) z[i] = fake_quant_one(x[i] > 0.0f ? x[i] : 0.0f, s, div, lo, hi);
        break;
    }
}

/* dx = keep * dx + ste(act(x)) * act'(x), act(x) recomputed. */
QB_MULTIVERSION static void act_fq_grad_cpu(qb_unary_kind k, float keep, float *dx, const float *dz, const float *restrict x, int64_t n,
                                            float amax) {
    switch (k) {
    case QB_UNARY_GELU:
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float e, c = qb_gelu_cdf2(x[i], &e), t = ste_pass(fabsf(0.5f * x[i] * c) <= amax, dz[i]);
            dx[i] = keep * dx[i] + t * (0.5f * c + x[i] * QB_GELU_INV_SQRT_2PI * e);
        }
        break;
    case QB_UNARY_GELU_TANH:
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float th = tanhf(SQRT_2_OVER_PI * (x[i] + GELU_TANH_C * x[i] * x[i] * x[i]));
            float t = ste_pass(fabsf(0.5f * x[i] * (1.0f + th)) <= amax, dz[i]);
            dx[i] = keep * dx[i] +
                    t * (0.5f * (1.0f + th) + 0.5f * x[i] * (1.0f - th * th) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_TANH_C * x[i] * x[i]));
        }
        break;
    case QB_UNARY_TANH:
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float y = tanhf(x[i]), t = ste_pass(fabsf(y) <= amax, dz[i]);
            dx[i] = keep * dx[i] + t * (1.0f - y * y);
        }
        break;
    case QB_UNARY_RELU:
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float t = ste_pass(fabsf(x[i] > 0.0f ? x[i] : 0.0f) <= amax, dz[i]);
            dx[i] = keep * dx[i] + (x[i] > 0.0f ? t : 0.0f);
        }
        break;
    }
}

int qb_cpu_act_fq(qb_dev *d, qb_unary_kind kind, float *z, const float *x, int64_t n, const qb_fq_point *fq) {
    (void)d;
    const float s = fake_quant_scale_of(fq->amax[0], fq->qmax);
    act_fq_cpu(kind, z, x, n, s, s == 0.0f ? 1.0f : s, fq->qmin, fq->qmax);
    return 0;
}

int qb_cpu_act_fq_grad(qb_dev *d, qb_unary_kind kind, float keep, float *dx, const float *dz, const float *x, int64_t n, const float *amax) {
    (void)d;
    act_fq_grad_cpu(kind, keep, dx, dz, x, n, amax[0]);
    return 0;
}

/* The scale and divisor of a fake-quant point (s 0: amax tiny, div 1). */
static void fq_scale(const qb_fq_point *p, float *s, float *div) {
    *s = fake_quant_scale_of(p->amax[0], p->qmax);
    *div = *s == 0.0f ? 1.0f : *s;
}

/* One row pass per row: s, then layer norm's two sums and output (layernorm.c's loops), then yq. */
QB_MULTIVERSION static void add_fq_layernorm_cpu(float *y, float *yq, float *sum_out, float *mean, float *rstd, const float *a, const float *res,
                                                 const float *gamma, const float *beta, int64_t rows, int64_t h, float eps,
                                                 const qb_fq_point *fa, const qb_fq_point *fr, const qb_fq_point *fy) {
    float sa, da, sr, dr, sy = 0.0f, dyv = 1.0f;
    fq_scale(fa, &sa, &da);
    fq_scale(fr, &sr, &dr);
    if (yq) fq_scale(fy, &sy, &dyv);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *ar = a + r * h, *rr = res + r * h;
        float *xr = sum_out + r * h, *yr = y + r * h;
#pragma omp simd
        for (int64_t j = 0; j < h; j++)
            xr[j] = fake_quant_one(ar[j], sa, da, fa->qmin, fa->qmax) + fake_quant_one(rr[j], sr, dr, fr->qmin, fr->qmax);
        qb_layernorm_row(yr, mean + r, rstd + r, xr, gamma, beta, h, eps);
        if (yq) {
            float *qr = yq + r * h;
#pragma omp simd
            for (int64_t j = 0; j < h; j++) qr[j] = fake_quant_one(yr[j], sy, dyv, fy->qmin, fy->qmax);
        }
    }
}

int qb_cpu_add_fq_layernorm(qb_dev *d, float *y, float *yq, float *s, float *mean, float *rstd, const float *a, const float *r,
                            const float *gamma, const float *beta, int64_t rows, int64_t h, float eps, const qb_fq_point *fa,
                            const qb_fq_point *fr, const qb_fq_point *fy) {
    (void)d;
    add_fq_layernorm_cpu(y, fy && fy->amax ? yq : NULL, s, mean, rstd, a, r, gamma, beta, rows, h, eps, fa, fr, fy);
    return 0;
}

/* layernorm.c's input gradient with x = s, its result (as written over dy's buffer there) split by the two STE masks. */
QB_MULTIVERSION static void add_fq_layernorm_grad_cpu(float *ga, float keep_a, float *gr, float keep_r, const float *dy, const float *s,
                                                      const float *a, const float *res, const float *gamma, const float *mean,
                                                      const float *rstd, int64_t rows, int64_t h, float amax_a, float amax_r) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = s + r * h, *dyr = dy + r * h, *ar = a + r * h, *rr = res + r * h;
        float *gar = ga ? ga + r * h : NULL, *grr = gr ? gr + r * h : NULL;
        float m = mean[r], rs = rstd[r], ma, mb;
        qb_layernorm_grad_row_means(&ma, &mb, dyr, xr, gamma, m, rs, h);
#pragma omp simd
        for (int64_t j = 0; j < h; j++) {
            float dn = dyr[j] * (gamma ? gamma[j] : 1.0f);
            float ds = 0.0f * dyr[j] + rs * (dn - ma - (xr[j] - m) * rs * mb);
            if (grr) {
                float t = fabsf(rr[j]) <= amax_r ? 0.0f + ds : 0.0f;
                grr[j] = keep_r != 0.0f ? grr[j] + t : t;
            }
            if (gar) {
                float t = fabsf(ar[j]) <= amax_a ? ds : 0.0f;
                gar[j] = keep_a != 0.0f ? gar[j] + t : t;
            }
        }
    }
}

int qb_cpu_add_fq_layernorm_grad(qb_dev *d, float *da, float keep_a, float *dr, float keep_r, const float *dy, const float *s,
                                 const float *a, const float *r, const float *gamma, const float *mean, const float *rstd, int64_t rows,
                                 int64_t h, const float *amax_a, const float *amax_r) {
    (void)d;
    add_fq_layernorm_grad_cpu(da, keep_a, dr, keep_r, dy, s, a, r, gamma, mean, rstd, rows, h, amax_a ? amax_a[0] : 0.0f,
                              amax_r ? amax_r[0] : 0.0f);
    return 0;
}

/* quantizer.c: see quantizer.h. */
#include "model/quantizer.h"
#include "autograd/simd_math.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AMAX_EPS (1.0f / 16777216.0f)

/* ---- fake quant. saved: saved[0] = amax copy, i[0] = n_amax, i[1] = row length */

#define ROUND_MAGIC 12582912.0f  /* 1.5 * 2^23: (v + M) - M rounds |v| < 2^22 to nearest, ties to even */
#define CHUNK 16384

/* y = clamp(rint(x * s), -128, 127) / div over n elements (clamping first gives the same integers). */
QB_MULTIVERSION
static void fake_quant_span(const float *restrict x, float *restrict y, int64_t n, float s, float div) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] * s;
        v = v < -128.0f ? -128.0f : v > 127.0f ? 127.0f : v;
        y[i] = ((v + ROUND_MAGIC) - ROUND_MAGIC) / div;
    }
}

/* g += dy where |x| <= a. */
QB_MULTIVERSION
static void fake_quant_grad_span(const float *restrict x, const float *restrict dy, float *restrict g, int64_t n, float a) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) g[i] += fabsf(x[i]) <= a ? dy[i] : 0.0f;
}

/* Work is split in chunks of at most CHUNK elements that never cross a row (amax index = row). */
static void fake_quant_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0];
    qb_tensor *dx = qb_grad(ctx, x);
    if (!dx) return;
    const float *amax = n->saved[0];
    int64_t n_amax = n->i[0], row = n->i[1], cnt = qb_numel(x);
    int64_t per_row = (row + CHUNK - 1) / CHUNK, chunks = n_amax * per_row;
    const float *xp = x->data, *dy = n->out->grad->data;
    float *g = dx->data;
#pragma omp parallel for schedule(static) if (cnt > CHUNK)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t r = c / per_row, off = r * row + (c % per_row) * CHUNK, len = row - (c % per_row) * CHUNK;
        fake_quant_grad_span(xp + off, dy + off, g + off, len < CHUNK ? len : CHUNK, amax[r]);
    }
}

/* y = fake_quant(x): x [R, ...], amax [1] or [R]. */
static qb_tensor *fake_quant(qb_ctx *ctx, qb_tensor *x, const float *amax, int64_t n_amax) {
    if (qb_ctx_failed(ctx) || !x) return NULL;
    if (x->device != QB_CPU) return qb_errorf(&ctx->err, "fake_quant: no %s kernel yet", qb_device_name(x->device)), NULL;
    if (n_amax != 1 && (x->ndim < 1 || x->shape[0] != n_amax)) {
        char sb[96];
        return qb_errorf(&ctx->err, "fake_quant: %ld amax values for input %s (want 1 or one per row of dim 0)", (long)n_amax,
                         qb_shape_str(x, sb, sizeof sb)), NULL;
    }
    for (int64_t r = 0; r < n_amax; r++)
        if (!(amax[r] >= 0.0f)) return qb_errorf(&ctx->err, "fake_quant: amax[%ld] = %g is negative or NaN", (long)r, amax[r]), NULL;
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new(ctx, x->ndim, x->shape) : NULL;
    float *saved = qb_meta_alloc(ctx, (size_t)n_amax * sizeof(float));
    if (!y || !saved) return NULL;
    memcpy(saved, amax, (size_t)n_amax * sizeof(float));
    int64_t cnt = qb_numel(x), row = cnt / n_amax;
    int64_t per_row = (row + CHUNK - 1) / CHUNK, chunks = n_amax * per_row;
    const float *xp = x->data;
    float *yp = y->data;
#pragma omp parallel for schedule(static) if (cnt > CHUNK)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t r = c / per_row, off = r * row + (c % per_row) * CHUNK, len = row - (c % per_row) * CHUNK;
        float a = saved[r];
        float s = a <= AMAX_EPS ? 0.0f : 127.0f / a, div = a <= AMAX_EPS ? 1.0f : s;
        fake_quant_span(xp + off, yp + off, len < CHUNK ? len : CHUNK, s, div);
    }
    qb_node *n = qb_record(ctx, "fake_quant", fake_quant_backward, y, &x, 1);
    if (n) {
        n->saved[0] = saved;
        n->i[0] = n_amax;
        n->i[1] = row;
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

qb_tensor *qb_quantizer_apply(qb_ctx *ctx, qb_quantizer *q, qb_tensor *x) {
    if (!q->enabled || !x) return x;
    if (!q->amax) return qb_errorf(&ctx->err, "%s: enabled but has no amax (calibrate or load one)", q->name), NULL;
    return fake_quant(ctx, x, q->amax, q->n_amax);
}

qb_tensor *qb_quant_hook_default(qb_ctx *ctx, qb_quantizer *q, qb_tensor *x, void *user) {
    (void)user;
    return qb_quantizer_apply(ctx, q, x);
}

int qb_quantizer_set_amax(qb_quantizer *q, const float *amax, int64_t n, qb_err *err) {
    if (n != q->n_amax) return qb_errorf(err, "%s: %ld amax values given, want %ld", q->name, (long)n, (long)q->n_amax);
    if (!q->amax) {
        q->amax = malloc((size_t)n * sizeof(float));
        if (!q->amax) return qb_errorf(err, "%s: out of memory", q->name);
    }
    memcpy(q->amax, amax, (size_t)n * sizeof(float));
    return 0;
}

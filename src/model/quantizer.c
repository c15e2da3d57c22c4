/* quantizer.c: see quantizer.h. */
#include "model/quantizer.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AMAX_EPS (1.0f / 16777216.0f)

/* ---- fake quant. saved: saved[0] = amax copy, i[0] = n_amax, i[1] = row length */

static void fake_quant_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0];
    qb_tensor *dx = qb_grad(ctx, x);
    if (!dx) return;
    const float *amax = n->saved[0];
    int64_t n_amax = n->i[0], row = n->i[1], cnt = qb_numel(x);
    const float *xp = x->data, *dy = n->out->grad->data;
    float *g = dx->data;
#pragma omp parallel for schedule(static) if (cnt > 16384)
    for (int64_t i = 0; i < cnt; i++) {
        float a = amax[n_amax == 1 ? 0 : i / row];
        if (fabsf(xp[i]) <= a) g[i] += dy[i];
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
    int64_t cnt = qb_numel(x), row = n_amax == 1 ? cnt : cnt / n_amax;
    const float *xp = x->data;
    float *yp = y->data;
    if (n_amax == 1) {
        float a = saved[0];
        float s = a <= AMAX_EPS ? 0.0f : 127.0f / a, div = a <= AMAX_EPS ? 1.0f : s;
#pragma omp parallel for schedule(static) if (cnt > 16384)
        for (int64_t i = 0; i < cnt; i++) yp[i] = fminf(fmaxf(rintf(xp[i] * s), -128.0f), 127.0f) / div;
    } else {
#pragma omp parallel for schedule(static) if (cnt > 16384)
        for (int64_t r = 0; r < n_amax; r++) {
            float a = saved[r];
            float s = a <= AMAX_EPS ? 0.0f : 127.0f / a, div = a <= AMAX_EPS ? 1.0f : s;
            const float *xr = xp + r * row;
            float *yr = yp + r * row;
            for (int64_t i = 0; i < row; i++) yr[i] = fminf(fmaxf(rintf(xr[i] * s), -128.0f), 127.0f) / div;
        }
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

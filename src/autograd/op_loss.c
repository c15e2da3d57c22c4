/* op_loss.c: cross-entropy (with ignore_index), MSE and BCE-with-logits, forward and backward (CPU). */
#include <math.h>
#include <string.h>
#include "autograd/op_internal.h"

/* ---- cross-entropy. saved: saved[0] = labels, saved[1] = log-sum-exp per row; i[0] = ignore_index, i[1] = count */

static void cross_entropy_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0];
    qb_tensor *dx = qb_grad(ctx, x);
    if (!dx) return;
    const int32_t *labels = n->saved[0];
    const float *lse = n->saved[1];
    int32_t ignore = (int32_t)n->i[0];
    int64_t count = n->i[1], rows = x->shape[0], c = x->shape[1];
    if (count == 0) return;
    float g = n->out->grad->data[0] / (float)count;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        if (labels[r] == ignore) continue;
        const float *xr = x->data + r * c;
        float *gr = dx->data + r * c;
        for (int64_t j = 0; j < c; j++) gr[j] += g * expf(xr[j] - lse[r]);
        gr[labels[r]] -= g;
    }
}

qb_tensor *qb_cross_entropy(qb_ctx *ctx, qb_tensor *logits, const int32_t *labels, int32_t ignore_index) {
    QB_OP_BEGIN(ctx, logits);
    QB_SHAPE_BUFS;
    QB_OP_CPU_ONLY(ctx, "cross_entropy", logits);
    if (logits->ndim != 2 || logits->shape[1] == 0)
        return qb_errorf(&ctx->err, "cross_entropy: logits %s are not [rows, classes]", qb_shape_str(logits, qb_sa_, sizeof qb_sa_)), NULL;
    int64_t rows = logits->shape[0], c = logits->shape[1];
    for (int64_t r = 0; r < rows; r++)
        if (labels[r] != ignore_index && (labels[r] < 0 || labels[r] >= c))
            return qb_errorf(&ctx->err, "cross_entropy: label %d of row %ld is outside [0, %ld) and is not ignore_index %d", labels[r],
                             (long)r, (long)c, ignore_index), NULL;
    qb_tensor *x = qb_contiguous(ctx, logits);
    int64_t one = 1;
    qb_tensor *y = x ? qb_new(ctx, 1, &one) : NULL;
    float *lse = qb_act_alloc(ctx, (size_t)(rows ? rows : 1) * sizeof(float));
    int32_t *saved = qb_meta_alloc(ctx, (size_t)(rows ? rows : 1) * sizeof(int32_t));
    if (!y || !lse || !saved) return NULL;
    memcpy(saved, labels, (size_t)rows * sizeof(int32_t));
    double total = 0.0;
    int64_t count = 0;
#pragma omp parallel for reduction(+ : total, count) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * c;
        float mx = -INFINITY;
        for (int64_t j = 0; j < c; j++) mx = xr[j] > mx ? xr[j] : mx;
        double s = 0.0;
        for (int64_t j = 0; j < c; j++) s += exp((double)(xr[j] - mx));
        lse[r] = mx + (float)log(s);
        if (labels[r] == ignore_index) continue;
        total += (double)lse[r] - xr[labels[r]];
        count++;
    }
    y->data[0] = count ? (float)(total / (double)count) : NAN;
    qb_node *n = qb_record(ctx, "cross_entropy", cross_entropy_backward, y, &x, 1);
    if (n) {
        n->saved[0] = saved;
        n->saved[1] = lse;
        n->i[0] = ignore_index;
        n->i[1] = count;
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* ---- mse: mean((a - b)^2) */

static void mse_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *a = n->in[0], *b = n->in[1];
    int64_t cnt = qb_numel(a);
    float g = 2.0f * n->out->grad->data[0] / (float)cnt;
    for (int k = 0; k < 2; k++) {
        qb_tensor *t = n->in[k];
        if (!t->requires_grad) continue;
        qb_tensor *dt = qb_grad(ctx, t);
        if (!dt) return;
        float sign = k == 0 ? g : -g;
#pragma omp parallel for schedule(static) if (cnt > 65536)
        for (int64_t i = 0; i < cnt; i++) dt->data[i] += sign * (a->data[i] - b->data[i]);
    }
}

qb_tensor *qb_mse_loss(qb_ctx *ctx, qb_tensor *a, qb_tensor *b) {
    QB_OP_BEGIN(ctx, a, b);
    QB_SHAPE_BUFS;
    QB_OP_CPU_ONLY(ctx, "mse_loss", a);
    bool same = a->ndim == b->ndim;
    for (int d = 0; same && d < a->ndim; d++) same = a->shape[d] == b->shape[d];
    if (!same || qb_numel(a) == 0) return qb_errorf(&ctx->err, "mse_loss: shapes %s and %s differ or are empty", QB_SHAPES(a, b)), NULL;
    a = qb_contiguous(ctx, a);
    b = qb_contiguous(ctx, b);
    int64_t one = 1;
    qb_tensor *y = a && b ? qb_new(ctx, 1, &one) : NULL;
    if (!y) return NULL;
    int64_t cnt = qb_numel(a);
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (cnt > 65536)
    for (int64_t i = 0; i < cnt; i++) {
        double d = (double)a->data[i] - b->data[i];
        s += d * d;
    }
    y->data[0] = (float)(s / (double)cnt);
    qb_tensor *in[2] = {a, b};
    qb_record(ctx, "mse_loss", mse_backward, y, in, 2);
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* ---- bce with logits: mean(max(x,0) - x t + log(1 + exp(-|x|))) */

static void bce_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *t = n->in[1];
    qb_tensor *dx = qb_grad(ctx, x);
    if (!dx) return;
    int64_t cnt = qb_numel(x);
    float g = n->out->grad->data[0] / (float)cnt;
#pragma omp parallel for schedule(static) if (cnt > 65536)
    for (int64_t i = 0; i < cnt; i++) {
        float sig = 1.0f / (1.0f + expf(-x->data[i]));
        dx->data[i] += g * (sig - t->data[i]);
    }
}

qb_tensor *qb_bce_with_logits(qb_ctx *ctx, qb_tensor *logits, qb_tensor *targets) {
    QB_OP_BEGIN(ctx, logits, targets);
    QB_SHAPE_BUFS;
    QB_OP_CPU_ONLY(ctx, "bce_with_logits", logits);
    bool same = logits->ndim == targets->ndim;
    for (int d = 0; same && d < logits->ndim; d++) same = logits->shape[d] == targets->shape[d];
    if (!same || qb_numel(logits) == 0)
        return qb_errorf(&ctx->err, "bce_with_logits: logits %s and targets %s differ or are empty", QB_SHAPES(logits, targets)), NULL;
    qb_tensor *x = qb_contiguous(ctx, logits), *t = qb_contiguous(ctx, targets);
    int64_t one = 1;
    qb_tensor *y = x && t ? qb_new(ctx, 1, &one) : NULL;
    if (!y) return NULL;
    int64_t cnt = qb_numel(x);
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (cnt > 65536)
    for (int64_t i = 0; i < cnt; i++) {
        float v = x->data[i];
        s += (double)((v > 0.0f ? v : 0.0f) - v * t->data[i] + log1pf(expf(-fabsf(v))));
    }
    y->data[0] = (float)(s / (double)cnt);
    qb_tensor *in[2] = {x, t};
    qb_record(ctx, "bce_with_logits", bce_backward, y, in, 2);
    return qb_ctx_failed(ctx) ? NULL : y;
}

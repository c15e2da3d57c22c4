/* op_reduce.c: sum and mean of all elements, forward and backward (CPU). saved: f[0] = scale (1 or 1/n). */
#include "autograd/op_internal.h"

static void reduce_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *dx = qb_grad(ctx, n->in[0]);
    if (!dx) return;
    float g = n->out->grad->data[0] * n->f[0];
    int64_t cnt = qb_numel(n->in[0]);
    float *p = dx->data;
#pragma omp parallel for schedule(static) if (cnt > 65536)
    for (int64_t i = 0; i < cnt; i++) p[i] += g;
}

static qb_tensor *reduce_all(qb_ctx *ctx, const char *op, qb_tensor *x, bool mean) {
    QB_OP_BEGIN(ctx, x);
    QB_OP_CPU_ONLY(ctx, op, x);
    x = qb_contiguous(ctx, x);
    int64_t one = 1;
    qb_tensor *y = x ? qb_new(ctx, 1, &one) : NULL;
    if (!y) return NULL;
    int64_t cnt = qb_numel(x);
    double s = 0.0;
    const float *p = x->data;
#pragma omp parallel for reduction(+ : s) schedule(static) if (cnt > 65536)
    for (int64_t i = 0; i < cnt; i++) s += p[i];
    float scale = mean ? 1.0f / (float)cnt : 1.0f;
    y->data[0] = mean ? (float)(s / (double)cnt) : (float)s;
    qb_node *n = qb_record(ctx, op, reduce_backward, y, &x, 1);
    if (n) n->f[0] = scale;
    return qb_ctx_failed(ctx) ? NULL : y;
}

qb_tensor *qb_sum(qb_ctx *ctx, qb_tensor *x) { return reduce_all(ctx, "sum", x, false); }
qb_tensor *qb_mean(qb_ctx *ctx, qb_tensor *x) { return reduce_all(ctx, "mean", x, true); }

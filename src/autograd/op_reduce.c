/* op_reduce.c: sum and mean of all elements (kernels: cpu/reduce.c). saved: f[0] = scale (1 or 1/n). */
#include "autograd/op_internal.h"

static void reduce_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *dx = qb_grad(ctx, n->in[0]);
    if (!dx) return;
    QB_KERNEL(ctx, n->op, sum_grad, dx->data, n->out->grad->data, n->f[0], qb_numel(n->in[0]));
}

static qb_tensor *reduce_all(qb_ctx *ctx, const char *op, qb_tensor *x, bool mean) {
    QB_OP_BEGIN(ctx, x);
    QB_OP_DEVICES(ctx, op, x);
    x = qb_contiguous(ctx, x);
    int64_t one = 1;
    qb_tensor *y = x ? qb_new(ctx, 1, &one) : NULL;
    if (!y) return NULL;
    int64_t cnt = qb_numel(x);
    if (QB_KERNEL(ctx, op, sum, y->data, x->data, cnt, mean)) return NULL;
    qb_node *n = qb_record(ctx, op, reduce_backward, y, &x, 1);
    if (n) n->f[0] = mean ? 1.0f / (float)cnt : 1.0f;
    return qb_ctx_failed(ctx) ? NULL : y;
}

qb_tensor *qb_sum(qb_ctx *ctx, qb_tensor *x) { return reduce_all(ctx, "sum", x, false); }
qb_tensor *qb_mean(qb_ctx *ctx, qb_tensor *x) { return reduce_all(ctx, "mean", x, true); }

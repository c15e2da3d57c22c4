/* op_softmax.c: softmax over the last dim of x * scale + mask (kernels: cpu/softmax.c).
 * The mask is additive (0 keep, large negative drop), broadcast against x, and gets no gradient.
 * saved: f[0] = scale. */
#include <math.h>
#include "autograd/op_internal.h"

static void softmax_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *y = n->out;
    bool overwrite;
    qb_tensor *dx = qb_grad_reuse(ctx, x, y, &overwrite);
    if (!dx) return;
    int64_t c = x->shape[x->ndim - 1], rows = qb_numel(x) / c;
    QB_KERNEL(ctx, "softmax", softmax_grad, dx->data, overwrite ? 0.0f : 1.0f, y->data, y->grad->data, n->f[0], rows, c);
}

qb_tensor *qb_softmax(qb_ctx *ctx, qb_tensor *x, float scale, qb_tensor *mask) {
    QB_OP_BEGIN(ctx, x);
    QB_SHAPE_BUFS;
    QB_OP_DEVICES(ctx, "softmax", x, mask);
    if (x->ndim < 1 || x->shape[x->ndim - 1] == 0)
        return qb_errorf(&ctx->err, "softmax: input %s has no last dim to normalise", qb_shape_str(x, qb_sa_, sizeof qb_sa_)), NULL;
    int64_t mst[4] = {0, 0, 0, 0};
    int off = 4 - x->ndim;
    if (mask) {
        if (mask->ndim > x->ndim)
            return qb_errorf(&ctx->err, "softmax: mask %s has more dims than input %s", QB_SHAPES(mask, x)), NULL;
        int moff = x->ndim - mask->ndim;
        for (int d = 0; d < mask->ndim; d++) {
            int64_t ms = mask->shape[d], xs = x->shape[moff + d];
            if (ms != xs && ms != 1)
                return qb_errorf(&ctx->err, "softmax: mask %s does not broadcast to input %s", QB_SHAPES(mask, x)), NULL;
            mst[off + moff + d] = ms == 1 ? 0 : mask->stride[d];
        }
    }
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new_like(ctx, x) : NULL;
    if (!y) return NULL;
    int64_t sh[4] = {1, 1, 1, 1};
    for (int d = 0; d < x->ndim; d++) sh[off + d] = x->shape[d];
    if (QB_KERNEL(ctx, "softmax", softmax, y->data, x->data, scale, mask ? mask->data : NULL, sh, mst)) return NULL;
    qb_node *n = qb_record(ctx, "softmax", softmax_backward, y, &x, 1);
    if (n) n->f[0] = scale;
    return qb_ctx_failed(ctx) ? NULL : y;
}

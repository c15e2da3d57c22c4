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

int qb_softmax_mask_layout(qb_ctx *ctx, const char *op, const qb_tensor *x, const qb_tensor *mask, int64_t sh[4], int64_t mst[4]) {
    QB_SHAPE_BUFS;
    if (x->ndim < 1 || x->ndim > 4 || x->shape[x->ndim - 1] == 0)
        return qb_errorf(&ctx->err, "%s: input %s has no last dim to normalise", op, qb_shape_str(x, qb_sa_, sizeof qb_sa_));
    int off = 4 - x->ndim;
    for (int d = 0; d < 4; d++) {
        mst[d] = 0;
        sh[d] = d < off ? 1 : x->shape[d - off];
    }
    if (!mask) return 0;
    if (mask->ndim > x->ndim) return qb_errorf(&ctx->err, "%s: mask %s has more dims than input %s", op, QB_SHAPES(mask, x));
    int moff = x->ndim - mask->ndim;
    for (int d = 0; d < mask->ndim; d++) {
        int64_t ms = mask->shape[d], xs = x->shape[moff + d];
        if (ms != xs && ms != 1) return qb_errorf(&ctx->err, "%s: mask %s does not broadcast to input %s", op, QB_SHAPES(mask, x));
        mst[off + moff + d] = ms == 1 ? 0 : mask->stride[d];
    }
    return 0;
}

qb_tensor *qb_softmax(qb_ctx *ctx, qb_tensor *x, float scale, qb_tensor *mask) {
    QB_OP_BEGIN(ctx, x);
    QB_OP_DEVICES(ctx, "softmax", x, mask);
    int64_t sh[4], mst[4];
    if (qb_softmax_mask_layout(ctx, "softmax", x, mask, sh, mst)) return NULL;
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new_like(ctx, x) : NULL;
    if (!y) return NULL;
    if (QB_KERNEL(ctx, "softmax", softmax, y->data, x->data, scale, mask ? mask->data : NULL, sh, mst)) return NULL;
    qb_node *n = qb_record(ctx, "softmax", softmax_backward, y, &x, 1);
    if (n) n->f[0] = scale;
    return qb_ctx_failed(ctx) ? NULL : y;
}

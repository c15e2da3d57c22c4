/* op_embedding.c: embedding lookup and its scatter-add backward (kernels: cpu/embedding.c). The host ids are checked
 * on the host and uploaded into step memory. saved: saved[0] = ids (device), i[0] = number of ids, i[1] = padding row
 * (-1: none; it gets no gradient). */
#include "autograd/op_internal.h"

static void embedding_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *w = n->in[0], *y = n->out;
    qb_tensor *dw = qb_grad(ctx, w);
    if (!dw) return;
    QB_KERNEL(ctx, "embedding", embedding_grad, dw->data, y->grad->data, (const int32_t *)n->saved[0], n->i[0], w->shape[1], n->i[1]);
}

qb_tensor *qb_embedding(qb_ctx *ctx, qb_tensor *weight, const int32_t *ids, int ndim, const int64_t *shape) {
    return qb_embedding_padded(ctx, weight, ids, ndim, shape, -1);
}

qb_tensor *qb_embedding_padded(qb_ctx *ctx, qb_tensor *weight, const int32_t *ids, int ndim, const int64_t *shape, int64_t padding_idx) {
    QB_OP_BEGIN(ctx, weight);
    QB_SHAPE_BUFS;
    QB_OP_DEVICES(ctx, "embedding", weight);
    if (weight->ndim != 2 || !qb_is_contiguous(weight))
        return qb_errorf(&ctx->err, "embedding: table must be a contiguous [V, H] tensor, got %s", qb_shape_str(weight, qb_sa_, sizeof qb_sa_)), NULL;
    if (ndim < 1 || ndim > QB_MAX_DIMS - 1) return qb_errorf(&ctx->err, "embedding: ids must have 1 to 3 dims, got %d", ndim), NULL;
    int64_t cnt = 1, oshape[QB_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        cnt *= shape[d];
        oshape[d] = shape[d];
    }
    int64_t v = weight->shape[0], h = weight->shape[1];
    for (int64_t t = 0; t < cnt; t++)
        if (ids[t] < 0 || ids[t] >= v)
            return qb_errorf(&ctx->err, "embedding: id %d at position %ld is outside the table of %ld rows", ids[t], (long)t, (long)v), NULL;
    oshape[ndim] = h;
    qb_tensor *y = qb_new(ctx, ndim + 1, oshape);
    int32_t *dids = y ? qb_upload_i32(ctx, ids, cnt) : NULL;
    if (!dids || QB_KERNEL(ctx, "embedding", embedding, y->data, weight->data, dids, cnt, h)) return NULL;
    qb_node *n = qb_record(ctx, "embedding", embedding_backward, y, &weight, 1);
    if (n) {
        n->saved[0] = dids;
        n->i[0] = cnt;
        n->i[1] = padding_idx;
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

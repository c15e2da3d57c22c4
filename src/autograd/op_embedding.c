/* op_embedding.c: embedding lookup, forward and backward (scatter-add into the table's gradient) (CPU).
 * saved: saved[0] = ids (host copy), i[0] = number of ids, i[1] = padding row (-1: none; it gets no gradient). */
#include <string.h>
#include "autograd/op_internal.h"

static void embedding_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *w = n->in[0], *y = n->out;
    qb_tensor *dw = qb_grad(ctx, w);
    if (!dw) return;
    const int32_t *ids = n->saved[0];
    int64_t cnt = n->i[0], h = w->shape[1], pad = n->i[1];
    const float *dy = y->grad->data;
    float *g = dw->data;
    /* columns split across threads: each id row is summed in the same order whatever the thread count */
#pragma omp parallel for schedule(static)
    for (int64_t j0 = 0; j0 < h; j0 += 16) {
        int64_t j1 = j0 + 16 < h ? j0 + 16 : h;
        for (int64_t t = 0; t < cnt; t++) {
            if (ids[t] == pad) continue;
            for (int64_t j = j0; j < j1; j++) g[(int64_t)ids[t] * h + j] += dy[t * h + j];
        }
    }
}

qb_tensor *qb_embedding(qb_ctx *ctx, qb_tensor *weight, const int32_t *ids, int ndim, const int64_t *shape) {
    return qb_embedding_padded(ctx, weight, ids, ndim, shape, -1);
}

qb_tensor *qb_embedding_padded(qb_ctx *ctx, qb_tensor *weight, const int32_t *ids, int ndim, const int64_t *shape, int64_t padding_idx) {
    QB_OP_BEGIN(ctx, weight);
    QB_SHAPE_BUFS;
    QB_OP_CPU_ONLY(ctx, "embedding", weight);
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
    if (!y) return NULL;
#pragma omp parallel for schedule(static) if (cnt * h > 65536)
    for (int64_t t = 0; t < cnt; t++) memcpy(y->data + t * h, weight->data + (int64_t)ids[t] * h, (size_t)h * sizeof(float));
    if (qb_needs_grad(ctx, &weight, 1)) {
        int32_t *saved = qb_meta_alloc(ctx, (size_t)cnt * sizeof(int32_t));
        if (!saved) return NULL;
        memcpy(saved, ids, (size_t)cnt * sizeof(int32_t));
        qb_node *n = qb_record(ctx, "embedding", embedding_backward, y, &weight, 1);
        if (n) {
            n->saved[0] = saved;
            n->i[0] = cnt;
            n->i[1] = padding_idx;
        }
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

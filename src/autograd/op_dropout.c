/* op_dropout.c: inverted dropout from the counter-based RNG (kernels: cpu/dropout.c).
 * The mask is not stored: backward regenerates it from (seed, offset). saved: f[0] = p, i[0] = RNG offset. */
#include "autograd/op_internal.h"
#include "autograd/rng.h"

static void dropout_backward(qb_ctx *ctx, qb_node *n) {
    bool overwrite;
    qb_tensor *dx = qb_grad_reuse(ctx, n->in[0], n->out, &overwrite);
    if (!dx) return;
    float p = n->f[0], inv_keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    QB_KERNEL(ctx, "dropout", dropout_grad, dx->data, overwrite ? 0.0f : 1.0f, n->out->grad->data, qb_numel(n->out),
              qb_rng_key32(ctx->seed), (uint64_t)n->i[0], p, inv_keep);
}

qb_tensor *qb_dropout(qb_ctx *ctx, qb_tensor *x, float p) {
    QB_OP_BEGIN(ctx, x);
    QB_OP_DEVICES(ctx, "dropout", x);
    if (!(p >= 0.0f && p <= 1.0f)) return qb_errorf(&ctx->err, "dropout: probability %g is outside [0, 1]", p), NULL;
    if (!ctx->training || p == 0.0f) return x;
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new_like(ctx, x) : NULL;
    if (!y) return NULL;
    int64_t cnt = qb_numel(x);
    uint64_t offset = ctx->rng_counter;
    ctx->rng_counter += (uint64_t)cnt;
    float inv_keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    if (QB_KERNEL(ctx, "dropout", dropout, y->data, x->data, cnt, qb_rng_key32(ctx->seed), offset, p, inv_keep)) return NULL;
    qb_node *n = qb_record(ctx, "dropout", dropout_backward, y, &x, 1);
    if (n) {
        n->f[0] = p;
        n->i[0] = (int64_t)offset;
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* op_layernorm.c: layer norm over the last dim (kernels: cpu/layernorm.c).
 * saved: saved[0] = mean [R], saved[1] = rstd [R] (device memory); f[0] = eps. */
#include "autograd/op_internal.h"

static void layernorm_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2], *y = n->out;
    int64_t h = x->shape[x->ndim - 1], rows = qb_numel(x) / h;
    const float *mean = n->saved[0], *rstd = n->saved[1], *dy = y->grad->data;
    /* gamma and beta first: with overwrite, x's gradient takes over dy's buffer */
    bool dg_needed = gamma && gamma->requires_grad, db_needed = beta && beta->requires_grad;
    if (dg_needed || db_needed) {
        qb_tensor *dgt = dg_needed ? qb_grad(ctx, gamma) : NULL, *dbt = db_needed ? qb_grad(ctx, beta) : NULL;
        if ((dg_needed && !dgt) || (db_needed && !dbt)) return;
        if (QB_KERNEL(ctx, "layernorm", layernorm_grad_params, dgt ? dgt->data : NULL, dbt ? dbt->data : NULL, dy, x->data, mean,
                      rstd, rows, h))
            return;
    }
    if (x->requires_grad) {
        bool overwrite;
        qb_tensor *dx = qb_grad_reuse(ctx, x, y, &overwrite);
        if (!dx) return;
        QB_KERNEL(ctx, "layernorm", layernorm_grad_input, dx->data, overwrite ? 0.0f : 1.0f, dy, x->data, gamma ? gamma->data : NULL,
                  mean, rstd, rows, h);
    }
}

qb_tensor *qb_layernorm(qb_ctx *ctx, qb_tensor *x, qb_tensor *gamma, qb_tensor *beta, float eps) {
    QB_OP_BEGIN(ctx, x);
    QB_SHAPE_BUFS;
    QB_OP_DEVICES(ctx, "layernorm", x, gamma, beta);
    if (x->ndim < 1) return qb_errorf(&ctx->err, "layernorm: input is a scalar"), NULL;
    int64_t h = x->shape[x->ndim - 1];
    if (gamma && (gamma->ndim != 1 || gamma->shape[0] != h))
        return qb_errorf(&ctx->err, "layernorm: weight %s does not match input %s", QB_SHAPES(gamma, x)), NULL;
    if (beta && (beta->ndim != 1 || beta->shape[0] != h))
        return qb_errorf(&ctx->err, "layernorm: bias %s does not match input %s", QB_SHAPES(beta, x)), NULL;
    if (h == 0) return qb_errorf(&ctx->err, "layernorm: normalised dim is empty in %s", qb_shape_str(x, qb_sa_, sizeof qb_sa_)), NULL;
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new_like(ctx, x) : NULL;
    if (!y) return NULL;
    int64_t rows = qb_numel(x) / h;
    float *mean = qb_act_alloc(ctx, (size_t)rows * sizeof(float));
    float *rstd = qb_act_alloc(ctx, (size_t)rows * sizeof(float));
    if (!mean || !rstd ||
        QB_KERNEL(ctx, "layernorm", layernorm, y->data, mean, rstd, x->data, gamma ? gamma->data : NULL, beta ? beta->data : NULL, rows,
                  h, eps))
        return NULL;
    qb_tensor *in[3] = {x, gamma, beta};
    qb_node *n = qb_record(ctx, "layernorm", layernorm_backward, y, in, 3);
    if (n) {
        n->saved[0] = mean;
        n->saved[1] = rstd;
        n->f[0] = eps;
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

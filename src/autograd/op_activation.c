/* op_activation.c: GELU (erf and tanh forms), tanh and ReLU (kernels: cpu/activation.c). saved: i[0] = kind. */
#include "autograd/op_internal.h"

static void act_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *y = n->out;
    bool overwrite;
    qb_tensor *dx = qb_grad_reuse(ctx, x, y, &overwrite);
    if (!dx) return;
    QB_KERNEL(ctx, n->op, unary_grad, (qb_unary_kind)n->i[0], overwrite ? 0.0f : 1.0f, dx->data, y->grad->data, x->data, y->data,
              qb_numel(x));
}

static void act_recompute(qb_ctx *ctx, qb_node *n) {
    QB_KERNEL(ctx, n->op, unary, (qb_unary_kind)n->i[0], n->out->data, n->in[0]->data, qb_numel(n->in[0]));
}

/* recomputed: y in the recompute buffer (its backward then must not read y: not for tanh) */
static qb_tensor *activation(qb_ctx *ctx, const char *op, qb_unary_kind k, qb_tensor *x, bool recomputed) {
    QB_OP_BEGIN(ctx, x);
    QB_OP_DEVICES(ctx, op, x);
    x = qb_contiguous(ctx, x);
    qb_tensor *y = !x ? NULL : recomputed ? qb_new_recomputed(ctx, x->ndim, x->shape) : qb_new_like(ctx, x);
    if (!y || QB_KERNEL(ctx, op, unary, k, y->data, x->data, qb_numel(x))) return NULL;
    qb_node *n = qb_record(ctx, op, act_backward, y, &x, 1);
    if (n) {
        n->i[0] = k;
        if (recomputed) n->recompute = act_recompute;
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

qb_tensor *qb_gelu(qb_ctx *ctx, qb_tensor *x) { return activation(ctx, "gelu", QB_UNARY_GELU, x, false); }
qb_tensor *qb_gelu_tanh(qb_ctx *ctx, qb_tensor *x) { return activation(ctx, "gelu_tanh", QB_UNARY_GELU_TANH, x, false); }
qb_tensor *qb_tanh(qb_ctx *ctx, qb_tensor *x) { return activation(ctx, "tanh", QB_UNARY_TANH, x, false); }
qb_tensor *qb_relu(qb_ctx *ctx, qb_tensor *x) { return activation(ctx, "relu", QB_UNARY_RELU, x, false); }

qb_tensor *qb_activation_recomputed(qb_ctx *ctx, qb_unary_kind act, qb_tensor *x) {
    switch (act) {
    case QB_UNARY_GELU: return activation(ctx, "gelu", act, x, true);
    case QB_UNARY_GELU_TANH: return activation(ctx, "gelu_tanh", act, x, true);
    case QB_UNARY_RELU: return activation(ctx, "relu", act, x, true);
    default: return qb_errorf(&ctx->err, "activation: kind %d cannot be recomputed (its gradient reads the output)", (int)act), NULL;
    }
}

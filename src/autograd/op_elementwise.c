/* op_elementwise.c: add, sub, mul (b broadcast against a), scale and bias add (kernels: cpu/elementwise.c). */
#include "autograd/op_internal.h"

/* Strides of b aligned to a's dims, 0 where b broadcasts; -1 when b cannot broadcast to a. */
static int broadcast_strides(const qb_tensor *a, const qb_tensor *b, int64_t *bst) {
    if (b->ndim > a->ndim) return -1;
    int off = a->ndim - b->ndim;
    for (int d = 0; d < a->ndim; d++) {
        if (d < off) {
            bst[d] = 0;
            continue;
        }
        int64_t bs = b->shape[d - off];
        if (bs == a->shape[d]) bst[d] = b->stride[d - off];
        else if (bs == 1) bst[d] = 0;
        else return -1;
    }
    return 0;
}

/* b covers a's trailing elements exactly (same shape or a suffix of a's shape after b's leading 1s, contiguous). */
static bool is_suffix(const qb_tensor *a, const qb_tensor *b) {
    if (!qb_is_contiguous(b) || b->ndim > a->ndim) return false;
    int lead = 0;
    while (lead < b->ndim && b->shape[lead] == 1) lead++;
    for (int d = lead; d < b->ndim; d++)
        if (b->shape[d] != a->shape[a->ndim - b->ndim + d]) return false;
    return true;
}

static void ew_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *a = n->in[0], *b = n->in[1], *y = n->out;
    qb_binary_kind kind = (qb_binary_kind)n->i[0];
    int64_t cnt = qb_numel(y);
    const float *dy = y->grad->data;
    /* b first: with overwrite, a's gradient takes over dy's buffer */
    if (b->requires_grad) {
        qb_tensor *db = qb_grad(ctx, b);
        if (!db) return;
        /* db is contiguous in b's shape: the general broadcast accumulates through b's contiguous strides */
        qb_tensor bc = *b;
        qb_set_contiguous_strides(&bc);
        int64_t bst[QB_MAX_DIMS];
        broadcast_strides(a, &bc, bst);
        if (QB_KERNEL(ctx, n->op, binary_grad_b, kind, db->data, dy, a->data, cnt, qb_numel(b), is_suffix(a, b), a->ndim, a->shape, bst))
            return;
    }
    if (a->requires_grad) {
        bool overwrite;
        qb_tensor *da = qb_grad_reuse(ctx, a, y, &overwrite);
        if (!da) return;
        if (kind == QB_BINARY_MUL) {
            int64_t bst[QB_MAX_DIMS];
            broadcast_strides(a, b, bst);
            QB_KERNEL(ctx, n->op, mul_grad_a, da->data, overwrite ? 0.0f : 1.0f, dy, b->data, cnt, a->ndim, a->shape, bst);
        } else if (!overwrite) {
            QB_KERNEL(ctx, n->op, axpy, da->data, dy, 1.0f, cnt);
        }
    }
}

static qb_tensor *elementwise(qb_ctx *ctx, const char *op, qb_binary_kind kind, qb_tensor *a, qb_tensor *b) {
    QB_OP_BEGIN(ctx, a, b);
    QB_SHAPE_BUFS;
    QB_OP_DEVICES(ctx, op, a, b);
    int64_t bst[QB_MAX_DIMS];
    if (broadcast_strides(a, b, bst))
        return qb_errorf(&ctx->err, "%s: shapes %s and %s do not broadcast (b must broadcast to a)", op, QB_SHAPES(a, b)), NULL;
    a = qb_contiguous(ctx, a);
    if (!a) return NULL;
    if (qb_numel(b) == qb_numel(a) || is_suffix(a, b)) {
        b = qb_contiguous(ctx, b);
        if (!b) return NULL;
    }
    broadcast_strides(a, b, bst);
    qb_tensor *y = qb_new_like(ctx, a);
    if (!y) return NULL;
    int64_t cnt = qb_numel(a), nb = qb_numel(b);
    bool rows = qb_is_contiguous(b) && (nb == cnt || is_suffix(a, b));
    if (QB_KERNEL(ctx, op, binary, kind, y->data, a->data, b->data, cnt, nb, rows, a->ndim, a->shape, bst)) return NULL;
    qb_tensor *in[2] = {a, b};
    qb_node *n = qb_record(ctx, op, ew_backward, y, in, 2);
    if (n) n->i[0] = kind;
    return qb_ctx_failed(ctx) ? NULL : y;
}

qb_tensor *qb_add(qb_ctx *ctx, qb_tensor *a, qb_tensor *b) { return elementwise(ctx, "add", QB_BINARY_ADD, a, b); }
qb_tensor *qb_sub(qb_ctx *ctx, qb_tensor *a, qb_tensor *b) { return elementwise(ctx, "sub", QB_BINARY_SUB, a, b); }
qb_tensor *qb_mul(qb_ctx *ctx, qb_tensor *a, qb_tensor *b) { return elementwise(ctx, "mul", QB_BINARY_MUL, a, b); }

qb_tensor *qb_bias_add(qb_ctx *ctx, qb_tensor *x, qb_tensor *bias) {
    QB_OP_BEGIN(ctx, x, bias);
    QB_SHAPE_BUFS;
    if (bias->ndim != 1 || x->ndim < 1 || x->shape[x->ndim - 1] != bias->shape[0])
        return qb_errorf(&ctx->err, "bias_add: bias %s does not match the last dim of %s", QB_SHAPES(bias, x)), NULL;
    return elementwise(ctx, "bias_add", QB_BINARY_ADD, x, bias);
}

/* ---- scale: y = x * s (saved: f[0] = s) */

static void scale_backward(qb_ctx *ctx, qb_node *n) {
    bool overwrite;
    qb_tensor *dx = qb_grad_reuse(ctx, n->in[0], n->out, &overwrite);
    if (!dx) return;
    int64_t cnt = qb_numel(n->out);
    const float *dy = n->out->grad->data;
    if (overwrite) QB_KERNEL(ctx, "scale", scale, dx->data, dy, n->f[0], cnt);
    else QB_KERNEL(ctx, "scale", axpy, dx->data, dy, n->f[0], cnt);
}

qb_tensor *qb_scale(qb_ctx *ctx, qb_tensor *x, float s) {
    QB_OP_BEGIN(ctx, x);
    QB_OP_DEVICES(ctx, "scale", x);
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new_like(ctx, x) : NULL;
    if (!y || QB_KERNEL(ctx, "scale", scale, y->data, x->data, s, qb_numel(x))) return NULL;
    qb_node *n = qb_record(ctx, "scale", scale_backward, y, &x, 1);
    if (n) n->f[0] = s;
    return qb_ctx_failed(ctx) ? NULL : y;
}

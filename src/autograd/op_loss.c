/* op_loss.c: cross-entropy (with ignore_index), MSE and BCE-with-logits (kernels: cpu/loss.c). The loss is a device
 * scalar; backward kernels read its gradient from device memory. */
#include <math.h>
#include "autograd/op_internal.h"

/* ---- cross-entropy. saved: saved[0] = labels, saved[1] = log-sum-exp per row (device); i[0] = ignore_index, i[1] = count */

static void cross_entropy_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0];
    qb_tensor *dx = qb_grad(ctx, x);
    if (!dx) return;
    QB_KERNEL(ctx, "cross_entropy", cross_entropy_grad, dx->data, x->data, (const float *)n->saved[1], (const int32_t *)n->saved[0],
              n->out->grad->data, x->shape[0], x->shape[1], (int32_t)n->i[0], n->i[1]);
}

qb_tensor *qb_cross_entropy(qb_ctx *ctx, qb_tensor *logits, const int32_t *labels, int32_t ignore_index) {
    QB_OP_BEGIN(ctx, logits);
    QB_SHAPE_BUFS;
    QB_OP_DEVICES(ctx, "cross_entropy", logits);
    if (logits->ndim != 2 || logits->shape[1] == 0)
        return qb_errorf(&ctx->err, "cross_entropy: logits %s are not [rows, classes]", qb_shape_str(logits, qb_sa_, sizeof qb_sa_)), NULL;
    int64_t rows = logits->shape[0], c = logits->shape[1], count = 0;
    for (int64_t r = 0; r < rows; r++) {
        if (labels[r] != ignore_index && (labels[r] < 0 || labels[r] >= c))
            return qb_errorf(&ctx->err, "cross_entropy: label %d of row %ld is outside [0, %ld) and is not ignore_index %d", labels[r],
                             (long)r, (long)c, ignore_index), NULL;
        count += labels[r] != ignore_index;
    }
    qb_tensor *x = qb_contiguous(ctx, logits);
    int64_t one = 1;
    qb_tensor *y = x ? qb_new(ctx, 1, &one) : NULL;
    float *lse = qb_act_alloc(ctx, (size_t)(rows ? rows : 1) * sizeof(float));
    int32_t *dlabels = qb_upload_i32(ctx, labels, rows);
    if (!y || !lse || !dlabels ||
        QB_KERNEL(ctx, "cross_entropy", cross_entropy, y->data, lse, x->data, dlabels, rows, c, ignore_index, count))
        return NULL;
    qb_node *n = qb_record(ctx, "cross_entropy", cross_entropy_backward, y, &x, 1);
    if (n) {
        n->saved[0] = dlabels;
        n->saved[1] = lse;
        n->i[0] = ignore_index;
        n->i[1] = count;
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* ---- distillation KL. saved: saved[0], saved[1] = log-sum-exps of student / T and teacher / T (device); f[0] = 1 / T */

static void distill_kl_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *s = n->in[0], *t = n->in[1];
    qb_tensor *ds = qb_grad(ctx, s);
    if (!ds) return;
    QB_KERNEL(ctx, "distill_kl", distill_kl_grad, ds->data, s->data, t->data, (const float *)n->saved[0], (const float *)n->saved[1],
              n->out->grad->data, s->shape[0], s->shape[1], n->f[0]);
}

qb_tensor *qb_distill_kl(qb_ctx *ctx, qb_tensor *student, qb_tensor *teacher, float temperature) {
    QB_OP_BEGIN(ctx, student, teacher);
    QB_SHAPE_BUFS;
    QB_OP_DEVICES(ctx, "distill_kl", student, teacher);
    if (student->ndim != 2 || student->shape[0] == 0 || student->shape[1] == 0 || teacher->ndim != 2 ||
        teacher->shape[0] != student->shape[0] || teacher->shape[1] != student->shape[1])
        return qb_errorf(&ctx->err, "distill_kl: student %s and teacher %s are not the same [rows, classes]", QB_SHAPES(student, teacher)), NULL;
    if (!(temperature > 0) || isinf(temperature)) return qb_errorf(&ctx->err, "distill_kl: temperature %g must be > 0", (double)temperature), NULL;
    if (teacher->requires_grad) return qb_errorf(&ctx->err, "distill_kl: the teacher's logits must not require grad"), NULL;
    qb_tensor *s = qb_contiguous(ctx, student), *t = qb_contiguous(ctx, teacher);
    int64_t one = 1, rows = student->shape[0];
    qb_tensor *y = s && t ? qb_new(ctx, 1, &one) : NULL;
    float *lse = qb_act_alloc(ctx, (size_t)(2 * rows) * sizeof(float)), inv_t = 1.0f / temperature;
    if (!y || !lse || QB_KERNEL(ctx, "distill_kl", distill_kl, y->data, lse, lse + rows, s->data, t->data, rows, s->shape[1], inv_t))
        return NULL;
    qb_tensor *in[2] = {s, t};
    qb_node *n = qb_record(ctx, "distill_kl", distill_kl_backward, y, in, 2);
    if (n) {
        n->saved[0] = lse;
        n->saved[1] = lse + rows;
        n->f[0] = inv_t;
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* ---- mse: mean((a - b)^2) */

static void mse_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *a = n->in[0], *b = n->in[1];
    for (int k = 0; k < 2; k++) {
        qb_tensor *t = n->in[k];
        if (!t->requires_grad) continue;
        qb_tensor *dt = qb_grad(ctx, t);
        if (!dt || QB_KERNEL(ctx, "mse_loss", mse_grad, dt->data, a->data, b->data, n->out->grad->data, k == 1, qb_numel(a))) return;
    }
}

/* Loss tensors: the inputs contiguous, a [1] output. */
static qb_tensor *loss_output(qb_ctx *ctx, qb_tensor **a, qb_tensor **b) {
    *a = qb_contiguous(ctx, *a);
    *b = qb_contiguous(ctx, *b);
    int64_t one = 1;
    return *a && *b ? qb_new(ctx, 1, &one) : NULL;
}

static bool same_shape(const qb_tensor *a, const qb_tensor *b) {
    bool same = a->ndim == b->ndim;
    for (int d = 0; same && d < a->ndim; d++) same = a->shape[d] == b->shape[d];
    return same;
}

qb_tensor *qb_mse_loss(qb_ctx *ctx, qb_tensor *a, qb_tensor *b) {
    QB_OP_BEGIN(ctx, a, b);
    QB_SHAPE_BUFS;
    QB_OP_DEVICES(ctx, "mse_loss", a, b);
    if (!same_shape(a, b) || qb_numel(a) == 0) return qb_errorf(&ctx->err, "mse_loss: shapes %s and %s differ or are empty", QB_SHAPES(a, b)), NULL;
    qb_tensor *y = loss_output(ctx, &a, &b);
    if (!y || QB_KERNEL(ctx, "mse_loss", mse, y->data, a->data, b->data, qb_numel(a))) return NULL;
    qb_tensor *in[2] = {a, b};
    qb_record(ctx, "mse_loss", mse_backward, y, in, 2);
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* ---- bce with logits: mean(max(x,0) - x t + log(1 + exp(-|x|))) */

static void bce_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *t = n->in[1];
    qb_tensor *dx = qb_grad(ctx, x);
    if (!dx) return;
    QB_KERNEL(ctx, "bce_with_logits", bce_grad, dx->data, x->data, t->data, n->out->grad->data, qb_numel(x));
}

qb_tensor *qb_bce_with_logits(qb_ctx *ctx, qb_tensor *logits, qb_tensor *targets) {
    QB_OP_BEGIN(ctx, logits, targets);
    QB_SHAPE_BUFS;
    QB_OP_DEVICES(ctx, "bce_with_logits", logits, targets);
    if (!same_shape(logits, targets) || qb_numel(logits) == 0)
        return qb_errorf(&ctx->err, "bce_with_logits: logits %s and targets %s differ or are empty", QB_SHAPES(logits, targets)), NULL;
    qb_tensor *x = logits, *t = targets;
    qb_tensor *y = loss_output(ctx, &x, &t);
    if (!y || QB_KERNEL(ctx, "bce_with_logits", bce, y->data, x->data, t->data, qb_numel(x))) return NULL;
    qb_tensor *in[2] = {x, t};
    qb_record(ctx, "bce_with_logits", bce_backward, y, in, 2);
    return qb_ctx_failed(ctx) ? NULL : y;
}

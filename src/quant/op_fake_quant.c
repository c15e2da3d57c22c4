/* op_fake_quant.c: see op_fake_quant.h (kernels: the quant table, cpu/fake_quant.c). */
#include "quant/op_fake_quant.h"

#include <math.h>
#include <string.h>
#include "autograd/op_internal.h"
#include "quant/quant_kernels.h"

/* saved: saved[0] = amax (device, [channels]), saved[1] = the rows' clipped flags (fake_quant_cached); i[0..2] = outer,
 * channels, inner */
static void fake_quant_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *y = n->out;
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    if (y->grad == x->grad) { /* y->grad_alias: the gradient is in x's already; the mask where a row has clipped elements */
        QB_QKERNEL(&ctx->err, &ex, "fake_quant", fake_quant_mask_rows, x->grad->data, x->data, n->i[0], n->i[1], n->i[2],
                   (const float *)n->saved[0], (const uint8_t *)n->saved[1]);
        return;
    }
    bool overwrite;
    qb_tensor *dx = x->is_param ? qb_grad_for_write(ctx, x, &overwrite) : qb_grad_reuse(ctx, x, y, &overwrite);
    if (!dx) return;
    QB_QKERNEL(&ctx->err, &ex, "fake_quant", fake_quant_grad, dx->data, overwrite ? 0.0f : 1.0f, y->grad->data, x->data, n->i[0], n->i[1],
               n->i[2], (const float *)n->saved[0]);
}

/* Records y = fake_quant(x) with its clipped-STE backward; y, or NULL on error. */
static qb_tensor *record(qb_ctx *ctx, const char *op, qb_tensor *x, qb_tensor *y, const float *amax_dev, int64_t outer, int64_t channels,
                         int64_t inner) {
    qb_node *n = qb_record(ctx, op, fake_quant_backward, y, &x, 1);
    if (n) {
        n->saved[0] = (void *)amax_dev;
        n->i[0] = outer;
        n->i[1] = channels;
        n->i[2] = inner;
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* The op with amax on the host (checked, then uploaded) or already on the device (amax_dev). */
static qb_tensor *fake_quant_op(qb_ctx *ctx, qb_tensor *x, const float *amax, const float *amax_dev, int64_t n_amax, const quant_desc *d) {
    QB_OP_BEGIN(ctx, x);
    QB_OP_DEVICES(ctx, "fake_quant", x);
    if (quant_desc_validate(d, &ctx->err) || quant_desc_check_ndim(d, x->ndim, &ctx->err)) return NULL;
    int64_t outer, channels, inner;
    qb_channel_view(x->ndim, x->shape, n_amax == 1 ? -1 : d->axis, &outer, &channels, &inner);
    if (n_amax != channels)
        return qb_errorf(&ctx->err, "fake_quant: %lld amax values for %lld channels along axis %d", (long long)n_amax,
                         (long long)channels, d->axis),
               NULL;
    for (int64_t c = 0; amax && c < n_amax; c++)
        if (!(amax[c] >= 0.0f))
            return qb_errorf(&ctx->err, "fake_quant: amax[%lld] = %g (must be >= 0)", (long long)c, (double)amax[c]),
                   NULL;
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new_like(ctx, x) : NULL;
    if (y && amax) amax_dev = qb_upload_f32(ctx, amax, n_amax);
    if (!y || !amax_dev) return NULL;
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    if (d->is_unsigned) {
        int32_t *flag = qb_act_alloc(ctx, sizeof(int32_t)), neg = 0;
        if (!flag || QB_QKERNEL(&ctx->err, &ex, "fake_quant", any_negative, flag, x->data, qb_numel(x)) ||
            qb_download(ctx, &neg, flag, sizeof neg))
            return NULL;
        if (neg) return qb_errorf(&ctx->err, "fake_quant: negative input with unsigned quantization"), NULL;
    }
    if (QB_QKERNEL(&ctx->err, &ex, "fake_quant", fake_quant, y->data, x->data, outer, channels, inner, amax_dev, quant_desc_qmin(d),
                   quant_desc_bound(d)))
        return NULL;
    return record(ctx, "fake_quant", x, y, amax_dev, outer, channels, inner);
}

qb_tensor *qb_fake_quant(qb_ctx *ctx, qb_tensor *x, const float *amax, int64_t n_amax, const quant_desc *d) {
    return fake_quant_op(ctx, x, amax, NULL, n_amax, d);
}

qb_tensor *qb_fake_quant_dev(qb_ctx *ctx, qb_tensor *x, const float *amax_dev, int64_t n_amax, const quant_desc *d) {
    return fake_quant_op(ctx, x, NULL, amax_dev, n_amax, d);
}

qb_tensor *qb_fake_quant_precomputed(qb_ctx *ctx, qb_tensor *x, float *y_data, const float *amax_dev, int64_t outer, int64_t channels,
                                     int64_t inner, const uint8_t *clipped_dev) {
    QB_OP_BEGIN(ctx, x);
    if (!qb_is_contiguous(x) || qb_numel(x) != outer * channels * inner)
        return qb_errorf(&ctx->err, "fake_quant: a precomputed output needs a contiguous input of %lld elements", (long long)(outer * channels * inner)),
               NULL;
    qb_tensor *y = qb_meta_alloc(ctx, sizeof *y);
    if (!y) return NULL;
    memset(y, 0, sizeof *y);
    y->ndim = x->ndim;
    for (int d = 0; d < x->ndim; d++) y->shape[d] = x->shape[d];
    qb_set_contiguous_strides(y);
    y->device = x->device;
    y->data = y_data;
    y->grad_alias = clipped_dev && x->is_param ? x : NULL;
    qb_tensor *out = record(ctx, "fake_quant_cached", x, y, amax_dev, outer, channels, inner);
    if (out && out->node) out->node->saved[1] = (void *)clipped_dev;
    return out;
}

static void fake_quant_learnable_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *a = n->in[1], *y = n->out;
    qb_tensor *dx = x->requires_grad ? qb_grad(ctx, x) : NULL, *da = a->requires_grad ? qb_grad(ctx, a) : NULL;
    if ((x->requires_grad && !dx) || (a->requires_grad && !da)) return;
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    QB_QKERNEL(&ctx->err, &ex, "fake_quant_learnable", fake_quant_learnable_grad, dx ? dx->data : NULL, da ? da->data : NULL,
               y->grad->data, x->data, qb_numel(x), a->data);
}

qb_tensor *qb_fake_quant_learnable(qb_ctx *ctx, qb_tensor *x, qb_tensor *amax, const quant_desc *d) {
    QB_OP_BEGIN(ctx, x, amax);
    QB_OP_DEVICES(ctx, "fake_quant_learnable", x, amax);
    if (quant_desc_validate(d, &ctx->err)) return NULL;
    if (qb_numel(amax) != 1) return qb_errorf(&ctx->err, "fake_quant_learnable: amax must be one value"), NULL;
    if (d->is_unsigned) return qb_errorf(&ctx->err, "fake_quant_learnable: unsigned is not supported"), NULL;
    const float a = qb_item(ctx, amax);
    if (qb_ctx_failed(ctx)) return NULL;
    if (!(a >= 0.0f) || isinf(a)) return qb_errorf(&ctx->err, "fake_quant_learnable: amax = %g", (double)a), NULL;
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new_like(ctx, x) : NULL;
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    if (!y || QB_QKERNEL(&ctx->err, &ex, "fake_quant_learnable", fake_quant_learnable, y->data, x->data, qb_numel(x), amax->data,
                         quant_desc_qmin(d), quant_desc_bound(d)))
        return NULL;
    qb_tensor *in[2] = {x, amax};
    qb_record(ctx, "fake_quant_learnable", fake_quant_learnable_backward, y, in, 2);
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* saved: f[0] = qmin, f[1] = qmax, f[2] = grad_factor */
static void fake_quant_lsq_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *s = n->in[1], *y = n->out;
    qb_tensor *dx = x->requires_grad ? qb_grad(ctx, x) : NULL, *ds = s->requires_grad ? qb_grad(ctx, s) : NULL;
    if ((x->requires_grad && !dx) || (s->requires_grad && !ds)) return;
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    QB_QKERNEL(&ctx->err, &ex, "fake_quant_lsq", fake_quant_lsq_grad, dx ? dx->data : NULL, ds ? ds->data : NULL, y->grad->data, x->data,
               qb_numel(x), s->data, n->f[0], n->f[1], n->f[2]);
}

float qb_lsq_grad_factor(const qb_tensor *x, const quant_desc *d) {
    return (float)(1.0 / sqrt((double)qb_numel(x) * (double)quant_desc_bound(d)));
}

qb_tensor *qb_fake_quant_lsq(qb_ctx *ctx, qb_tensor *x, qb_tensor *scale, const quant_desc *d, float grad_factor) {
    QB_OP_BEGIN(ctx, x, scale);
    QB_OP_DEVICES(ctx, "fake_quant_lsq", x, scale);
    if (quant_desc_validate(d, &ctx->err)) return NULL;
    if (qb_numel(scale) != 1) return qb_errorf(&ctx->err, "fake_quant_lsq: scale must be one value"), NULL;
    if (d->is_unsigned) return qb_errorf(&ctx->err, "fake_quant_lsq: unsigned is not supported"), NULL;
    const float s = qb_item(ctx, scale);
    if (qb_ctx_failed(ctx)) return NULL;
    if (!(s > 0.0f) || isinf(s)) return qb_errorf(&ctx->err, "fake_quant_lsq: scale = %g (must be > 0)", (double)s), NULL;
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new_like(ctx, x) : NULL;
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    float qmin = quant_desc_qmin(d), qmax = quant_desc_bound(d);
    if (!y || QB_QKERNEL(&ctx->err, &ex, "fake_quant_lsq", fake_quant_lsq, y->data, x->data, qb_numel(x), scale->data, qmin, qmax)) return NULL;
    qb_tensor *in[2] = {x, scale};
    qb_node *n = qb_record(ctx, "fake_quant_lsq", fake_quant_lsq_backward, y, in, 2);
    if (n) {
        n->f[0] = qmin;
        n->f[1] = qmax;
        n->f[2] = grad_factor;
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* op_fake_quant.c: see op_fake_quant.h. */
#include "quant/op_fake_quant.h"

#include <math.h>
#include <string.h>
#include "autograd/op_internal.h"
#include "quant/fake_quant.h"

static void fake_quant_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *y = n->out;
    bool overwrite;
    qb_tensor *dx = qb_grad_reuse(ctx, x, y, &overwrite);
    if (!dx) return;
    const float *amax = n->saved[0], keep = overwrite ? 0.0f : 1.0f;
    const int64_t outer = n->i[0], channels = n->i[1], inner = n->i[2];
    if (channels == 1)
        fake_quant_ste_backward_per_tensor(dx->data, y->grad->data, x->data, outer * inner, amax[0], keep);
    else
        fake_quant_ste_backward_per_channel(dx->data, y->grad->data, x->data, outer, channels, inner, amax, keep);
}

/* x viewed as [outer, channels, inner] around d->axis. */
static void channel_view(const qb_tensor *x, int axis, int64_t *outer, int64_t *channels, int64_t *inner) {
    *outer = *channels = *inner = 1;
    for (int k = 0; k < x->ndim; k++) {
        if (axis < 0 || k > axis) *inner *= x->shape[k];
        else if (k == axis) *channels = x->shape[k];
        else *outer *= x->shape[k];
    }
}

static bool any_negative(const float *x, int64_t n) {
    int neg = 0;
#pragma omp parallel for simd schedule(static) reduction(| : neg) if (n > 32768)
    for (int64_t i = 0; i < n; i++) neg |= x[i] < 0.0f;
    return neg != 0;
}

qb_tensor *qb_fake_quant(qb_ctx *ctx, qb_tensor *x, const float *amax, int64_t n_amax, const quant_desc *d) {
    QB_OP_BEGIN(ctx, x);
    QB_OP_CPU_ONLY(ctx, "fake_quant", x);
    if (quant_desc_validate(d, &ctx->err) || quant_desc_check_ndim(d, x->ndim, &ctx->err)) return NULL;
    int64_t outer, channels, inner;
    channel_view(x, n_amax == 1 ? -1 : d->axis, &outer, &channels, &inner);
    if (n_amax != channels)
        return qb_errorf(&ctx->err, "fake_quant: %lld amax values for %lld channels along axis %d", (long long)n_amax,
                         (long long)channels, d->axis),
               NULL;
    for (int64_t c = 0; c < n_amax; c++)
        if (!(amax[c] >= 0.0f))
            return qb_errorf(&ctx->err, "fake_quant: amax[%lld] = %g (must be >= 0)", (long long)c, (double)amax[c]),
                   NULL;
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new_like(ctx, x) : NULL;
    float *saved = y ? qb_meta_alloc(ctx, (size_t)n_amax * sizeof(float)) : NULL;
    if (!saved) return NULL;
    memcpy(saved, amax, (size_t)n_amax * sizeof(float));
    if (d->is_unsigned && any_negative(x->data, qb_numel(x)))
        return qb_errorf(&ctx->err, "fake_quant: negative input with unsigned quantization"), NULL;
    if (channels == 1) fake_quant_per_tensor(y->data, x->data, qb_numel(x), amax[0], d);
    else fake_quant_per_channel(y->data, x->data, outer, channels, inner, saved, d);
    qb_node *n = qb_record(ctx, "fake_quant", fake_quant_backward, y, &x, 1);
    if (n) {
        n->saved[0] = saved;
        n->i[0] = outer;
        n->i[1] = channels;
        n->i[2] = inner;
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

static void fake_quant_learnable_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *a = n->in[1], *y = n->out;
    const float amax = n->f[0];
    const int64_t cnt = qb_numel(x);
    const float *xp = x->data, *dy = y->grad->data;
    if (x->requires_grad) {
        qb_tensor *dx = qb_grad(ctx, x);
        if (!dx) return;
        float *g = dx->data;
#pragma omp parallel for simd schedule(static) if (cnt > 32768)
        for (int64_t i = 0; i < cnt; i++) g[i] += xp[i] > -amax && xp[i] < amax ? dy[i] : 0.0f;
    }
    if (a->requires_grad) {
        qb_tensor *da = qb_grad(ctx, a);
        if (!da) return;
        double acc = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : acc) if (cnt > 32768)
        for (int64_t i = 0; i < cnt; i++) acc += xp[i] >= amax ? dy[i] : xp[i] <= -amax ? -dy[i] : 0.0f;
        da->data[0] += (float)acc;
    }
}

qb_tensor *qb_fake_quant_learnable(qb_ctx *ctx, qb_tensor *x, qb_tensor *amax, const quant_desc *d) {
    QB_OP_BEGIN(ctx, x, amax);
    QB_OP_CPU_ONLY(ctx, "fake_quant_learnable", x);
    if (quant_desc_validate(d, &ctx->err)) return NULL;
    if (qb_numel(amax) != 1 || amax->device != QB_CPU)
        return qb_errorf(&ctx->err, "fake_quant_learnable: amax must be one value on the CPU"), NULL;
    if (d->is_unsigned) return qb_errorf(&ctx->err, "fake_quant_learnable: unsigned is not supported"), NULL;
    const float a = amax->data[0];
    if (!(a >= 0.0f) || isinf(a)) return qb_errorf(&ctx->err, "fake_quant_learnable: amax = %g", (double)a), NULL;
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new_like(ctx, x) : NULL;
    if (!y) return NULL;
    const int64_t cnt = qb_numel(x);
    const float *xp = x->data;
    float *yp = y->data;
#pragma omp parallel for simd schedule(static) if (cnt > 32768)
    for (int64_t i = 0; i < cnt; i++) yp[i] = xp[i] < -a ? -a : xp[i] > a ? a : xp[i];
    fake_quant_per_tensor(yp, yp, cnt, a, d);
    qb_tensor *in[2] = {x, amax};
    qb_node *n = qb_record(ctx, "fake_quant_learnable", fake_quant_learnable_backward, y, in, 2);
    if (n) n->f[0] = a;
    return qb_ctx_failed(ctx) ? NULL : y;
}

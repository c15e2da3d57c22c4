/* optim_adamw.c: see optim_adamw.h (kernel: the table's adamw, cpu/optim.c). */
#include "train/optim_adamw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The parameters' layout with the decay flags, on the device. */
static int layout(qb_adamw *opt, qb_ctx *ctx) {
    if (qb_params_layout(ctx, &opt->seg)) return -1;
    for (int i = 0; i < opt->n; i++)
        if (opt->decay[i]) opt->seg.host[i].flags |= QB_SEG_DECAY;
    return qb_seg_table_sync(ctx, &opt->seg);
}

int qb_adamw_init(qb_adamw *opt, qb_ctx *ctx, double beta1, double beta2, double eps, double weight_decay, qb_err *err) {
    memset(opt, 0, sizeof *opt);
    opt->beta1 = beta1;
    opt->beta2 = beta2;
    opt->eps = eps;
    opt->weight_decay = weight_decay;
    opt->k = ctx->k;
    opt->dev = ctx->dev;
    opt->n = ctx->params.n;
    opt->decay = calloc((size_t)opt->n + 1, sizeof *opt->decay);
    if (!opt->decay) return qb_errorf(err, "adamw: out of memory"), qb_adamw_free(opt), -1;
    for (int i = 0; i < opt->n; i++) {
        const char *name = ctx->params.items[i]->name;
        opt->decay[i] = !(ends_with(name, "bias") || ends_with(name, "LayerNorm.weight"));
    }
    if (qb_params_ensure_packed(ctx)) return qb_errorf(err, "adamw: %s", ctx->err.msg), qb_adamw_free(opt), -1;
    opt->numel = ctx->params.block_numel;
    size_t bytes = (size_t)(opt->numel ? opt->numel : 1) * sizeof(float);
    opt->m = qb_device_alloc(ctx, bytes);
    opt->v = opt->m ? qb_device_alloc(ctx, bytes) : NULL;
    if (!opt->v) return qb_errorf(err, "adamw: moments: %s", ctx->err.msg), qb_adamw_free(opt), -1;
    if (QB_KERNEL(ctx, "adamw", fill, opt->m, opt->numel, 0.0f) || QB_KERNEL(ctx, "adamw", fill, opt->v, opt->numel, 0.0f) || layout(opt, ctx))
        return qb_errorf(err, "%s", ctx->err.msg), qb_adamw_free(opt), -1;
    return 0;
}

int qb_adamw_step(qb_adamw *opt, qb_ctx *ctx, float lr) {
    if (ctx->params.n != opt->n || ctx->params.block_numel != opt->numel)
        return qb_errorf(&ctx->err, "adamw: the parameters changed since qb_adamw_init (%d then, %d now)", opt->n, ctx->params.n);
    if (layout(opt, ctx) || qb_zero_grad_flush(ctx)) return -1;
    opt->step++;
    /* torch.optim.AdamW (single tensor): p *= 1 - lr*wd; m.lerp_(g, 1 - b1); v = v*b2 + (1 - b2)*g*g;
     * p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps), the scalars formed in double and used as float */
    qb_adamw_hyper h = {.w1 = (float)(1.0 - opt->beta1), .b2 = (float)opt->beta2, .w2 = (float)(1.0 - opt->beta2), .eps = (float)opt->eps,
                        .step_size = (float)((double)lr / (1.0 - pow(opt->beta1, (double)opt->step))),
                        .bc2_sqrt = (float)sqrt(1.0 - pow(opt->beta2, (double)opt->step)),
                        .decay_factor = (float)(1.0 - (double)lr * opt->weight_decay)};
    qb_params_touch(ctx); /* the weights change: caches of their fake-quantized values are stale */
    return QB_KERNEL(ctx, "adamw", adamw, ctx->params.block_data, opt->m, opt->v, ctx->params.block_grad, opt->numel, opt->seg.dev,
                     opt->seg.n, &h);
}

float *qb_adamw_moment(const qb_adamw *opt, int i, bool second) { return (second ? opt->v : opt->m) + opt->seg.host[i].offset; }

void qb_adamw_free(qb_adamw *opt) {
    if (opt->m) opt->k->release(opt->dev, opt->m);
    if (opt->v) opt->k->release(opt->dev, opt->v);
    if (opt->k) qb_seg_table_free(opt->k, opt->dev, &opt->seg);
    free(opt->decay);
    memset(opt, 0, sizeof *opt);
}

/* clip_grad.c: see clip_grad.h (kernels: the table's grad_norm and grad_clip, cpu/optim.c). Sums of squares are taken
 * per parameter in double over fixed chunks, combined in order (the same bits whatever the thread count). */
#include "train/clip_grad.h"

#include <math.h>

int qb_grad_norm_dev(qb_ctx *ctx, float *norm) {
    qb_seg_table *t = &ctx->params.seg;
    if (qb_params_layout(ctx, t) || qb_seg_table_sync(ctx, t) || qb_zero_grad_flush(ctx)) return -1;
    return QB_KERNEL(ctx, "grad_norm", grad_norm, norm, t->scratch, ctx->params.block_grad, ctx->params.block_numel, t->dev, t->n);
}

int qb_grad_clip_dev(qb_ctx *ctx, double max_norm, const float *norm) {
    const qb_seg_table *t = &ctx->params.seg;
    if (qb_zero_grad_flush(ctx)) return -1;
    return QB_KERNEL(ctx, "clip_grad_norm", grad_clip, ctx->params.block_grad, ctx->params.block_numel, t->dev, t->n, norm, max_norm);
}

int qb_clip_grad_norm_dev(qb_ctx *ctx, double max_norm, float *norm) {
    return qb_grad_norm_dev(ctx, norm) || qb_grad_clip_dev(ctx, max_norm, norm) ? -1 : 0;
}

/* Runs one of the above into step memory and reads the norm back. */
static double read_norm(qb_ctx *ctx, bool clip, double max_norm) {
    float *d = qb_act_alloc(ctx, sizeof(float)), v = NAN;
    if (!d || (clip ? qb_clip_grad_norm_dev(ctx, max_norm, d) : qb_grad_norm_dev(ctx, d)) || qb_download(ctx, &v, d, sizeof v)) return NAN;
    return (double)v;
}

double qb_grad_norm(qb_ctx *ctx) { return read_norm(ctx, false, 0.0); }

double qb_clip_grad_norm(qb_ctx *ctx, double max_norm) { return read_norm(ctx, true, max_norm); }

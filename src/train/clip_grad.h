/* clip_grad.h: global-norm gradient clipping as torch.nn.utils.clip_grad_norm_ (L2 norm over all gradients), in one
 * pass over the packed gradient block on the context's device (parameters packed first when needed). */
#pragma once
#include "autograd/tensor.h"

/* Scales the gradient of every parameter of ctx that requires grad by min(1, max_norm / (total_norm + 1e-6)) and
 * returns total_norm (the L2 norm of all gradients before clipping; NaN/Inf pass through as torch's default). NaN with
 * ctx->err set on failure. */
double qb_clip_grad_norm(qb_ctx *ctx, double max_norm);
/* The L2 norm of all parameter gradients of ctx, without changing them. */
double qb_grad_norm(qb_ctx *ctx);
/* As qb_clip_grad_norm, leaving the norm in device memory norm[0] (no host synchronisation). */
int qb_clip_grad_norm_dev(qb_ctx *ctx, double max_norm, float *norm);
/* As qb_grad_norm, into device memory norm[0]. */
int qb_grad_norm_dev(qb_ctx *ctx, float *norm);
/* The scaling of qb_clip_grad_norm with the total norm already in device memory norm[0] (from qb_grad_norm_dev). */
int qb_grad_clip_dev(qb_ctx *ctx, double max_norm, const float *norm);

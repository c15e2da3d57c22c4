/* clip_grad.h: global-norm gradient clipping as torch.nn.utils.clip_grad_norm_ (L2 norm over all gradients). */
#pragma once
#include "autograd/tensor.h"

/* Scales the gradient of every parameter of ctx that requires grad by min(1, max_norm / (total_norm + 1e-6)) and
 * returns total_norm (the L2 norm of all gradients before clipping; NaN/Inf pass through as torch's default). */
double qb_clip_grad_norm(qb_ctx *ctx, double max_norm);
/* The L2 norm of all parameter gradients of ctx, without changing them. */
double qb_grad_norm(qb_ctx *ctx);

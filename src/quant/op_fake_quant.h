/* op_fake_quant.h: fake quantization as autograd ops on any tensor, on the context's device. */
#pragma once
#include "autograd/autograd.h"
#include "quant/quant_desc.h"

/* y = fake_quant(x) (see fake_quant.h) with host amax values: n_amax = 1 (per tensor, also with an axis) or
 * x->shape[d->axis] (per channel). Backward: dx = dy where |x| <= amax, else 0 (clipped STE); amax gets none.
 * Errors: negative or NaN amax, wrong amax count, negative x with an unsigned descriptor. */
qb_tensor *qb_fake_quant(qb_ctx *ctx, qb_tensor *x, const float *amax, int64_t n_amax, const quant_desc *d);
/* The same with amax_dev [n_amax] already in the context's device memory (values not checked: computed, >= 0). */
qb_tensor *qb_fake_quant_dev(qb_ctx *ctx, qb_tensor *x, const float *amax_dev, int64_t n_amax, const quant_desc *d);
/* y = fake_quant(x) already computed: y_data (x's shape, contiguous, device memory that outlives the step) holds it,
 * amax_dev [channels] the amax values of the view [outer, channels, inner]. Recorded with qb_fake_quant's backward.
 * With clipped_dev (device memory, [outer * channels]: 1 where a row has an element failing |x| <= amax) and x a
 * parameter, y->grad_alias is x: y's first gradient writer writes into x's gradient while it is marked zero (and y is x's
 * only consumer), and the backward then applies the mask in place to the flagged rows only (no temporary, no pass over
 * the others). */
qb_tensor *qb_fake_quant_precomputed(qb_ctx *ctx, qb_tensor *x, float *y_data, const float *amax_dev, int64_t outer, int64_t channels,
                                     int64_t inner, const uint8_t *clipped_dev);
/* PACT-style learnable amax: y = fake_quant(clip(x, -a, a), a) with a the value of amax (a 1-element tensor on the
 * context's device; read once to check it). Backward: dx = dy where -a < x < a; da = sum(dy where x >= a) -
 * sum(dy where x <= -a) (pytorch-quantization's Clip gradient with clip_min = -a, clip_max = a); the fake quant
 * inside is straight through. */
qb_tensor *qb_fake_quant_learnable(qb_ctx *ctx, qb_tensor *x, qb_tensor *amax, const quant_desc *d);
/* LSQ (learned step size): y = clamp(round(x / s), qmin, qmax) * s with the learned scale s [1] (a parameter) and zero
 * point 0, as torch._fake_quantize_learnable_per_tensor_affine; the scale's gradient is multiplied by grad_factor
 * (LSQ's 1 / sqrt(numel * qmax); 1 = none). */
qb_tensor *qb_fake_quant_lsq(qb_ctx *ctx, qb_tensor *x, qb_tensor *scale, const quant_desc *d, float grad_factor);
/* LSQ's gradient scale for x: 1 / sqrt(numel(x) * qmax). */
float qb_lsq_grad_factor(const qb_tensor *x, const quant_desc *d);

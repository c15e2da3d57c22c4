/* fake_quant.h: fake quantization kernels (quantize then dequantize, float32) and their clipped-STE gradient.
 * Numerics (spec §1.2, §8; bit exact with modelopt's CPU path and pytorch-quantization 2.1):
 *   s = bound / amax in float32; q = clamp(rint_half_even(x * s), qmin, bound); y = q / s;
 *   amax <= 2^-24 gives s = 0, so y = 0 (signed zero of x); NaN x gives NaN.
 * Per channel: x is viewed as [outer, channels, inner] and channel c uses amax[c]. */
#pragma once
#include <stdint.h>
#include "quant/quant_desc.h"
#include "quant/quant_math.h" /* FAKE_QUANT_TINY_AMAX and the element formula */

/* The scale bound/amax in float32, or 0 when amax <= 2^-24. */
float fake_quant_scale(float amax, const quant_desc *d);
/* out[i] = fake-quant of x[i] (n elements) with one amax >= 0; out may alias x. */
void fake_quant_per_tensor(float *out, const float *x, int64_t n, float amax, const quant_desc *d);
/* out = fake-quant of x [outer, channels, inner] with amax [channels]; out may alias x. */
void fake_quant_per_channel(float *out, const float *x, int64_t outer, int64_t channels, int64_t inner,
                            const float *amax, const quant_desc *d);
/* mask[i] = 1 where |x[i]| <= amax, else 0: where the straight-through gradient passes. */
void fake_quant_ste_mask(uint8_t *mask, const float *x, int64_t n, float amax);
/* gx[i] = keep * gx[i] + (gy[i] where |x[i]| <= amax, else 0): the clipped straight-through estimator over n
 * elements; keep 1 accumulates, keep 0 overwrites (gx may then be gy itself). */
void fake_quant_ste_backward_per_tensor(float *gx, const float *gy, const float *x, int64_t n, float amax, float keep);
/* The same per channel: x, gy, gx [outer, channels, inner], amax [channels]. */
void fake_quant_ste_backward_per_channel(float *gx, const float *gy, const float *x, int64_t outer, int64_t channels,
                                         int64_t inner, const float *amax, float keep);

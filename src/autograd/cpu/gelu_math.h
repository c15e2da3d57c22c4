/* gelu_math.h: the erf GELU's pieces per element, inline so that `omp simd` loops vectorise them; shared with the fused
 * kernels of src/quant/cpu/fused.c so that both give the same bits. erf from the one exp(-x^2 / 2) that the gradient needs
 * anyway (libmvec's vector expf, underflow flushed to 0) by Abramowitz-Stegun 7.1.26 (|error| <= 1.5e-7, the form of
 * PyTorch's vectorised CPU erf), instead of a second libmvec call (erff, the slowest of them). */
#pragma once
#include <stdint.h>
#include <string.h>
#include "autograd/cpu/simd_math.h"

#define QB_GELU_INV_SQRT_2 0.7071067811865476f
#define QB_GELU_INV_SQRT_2PI 0.3989422804014327f

/* 1 + erf(x / sqrt 2) (twice the normal CDF), and *gauss = exp(-x^2 / 2). gelu(x) = 0.5 x cdf2;
 * gelu'(x) = 0.5 cdf2 + x gauss / sqrt(2 pi). */
static inline float qb_gelu_cdf2(float x, float *gauss) {
    float e = qb_expf_flush(-0.5f * x * x);
    float t = 1.0f / (1.0f + 0.3275911f * (fabsf(x) * QB_GELU_INV_SQRT_2));
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    float c = p * t * e, d = 2.0f - c; /* erfc(|x| / sqrt 2), 1 + erf(|x| / sqrt 2) */
    uint32_t cb, db, pos = 0u - (uint32_t)(x >= 0.0f); /* a bit select: no branch next to the vector expf call */
    memcpy(&cb, &c, sizeof cb);
    memcpy(&db, &d, sizeof db);
    cb = (db & pos) | (cb & ~pos);
    memcpy(&c, &cb, sizeof c);
    *gauss = e;
    return c;
}

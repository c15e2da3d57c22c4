/* weight_int8.h: integer weights for deployment, taken from the forward's own fake quantization (src/quant/fake_quant.h):
 * q is the integer level of fake_quant(w), so a weight that drifted past its frozen amax is clipped exactly as the forward
 * clips it. Deployment scale = amax / bound (what ONNX DequantizeLinear and TensorRT multiply by); the forward divides by
 * bound / amax instead, so the exact reconstruction of the fake-quantized weight is q / float32(bound / amax). */
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "quant/quant_desc.h"

typedef struct qb_int8_weight {
    int8_t *q;            /* [rows, cols] */
    float *amax;          /* [n_scale] */
    float *scale;         /* [n_scale] amax / bound; 1 where amax <= 2^-24 (q is 0 there) */
    int64_t rows, cols;
    int64_t n_scale;      /* rows (one per row, axis 0) or 1 (per tensor) */
    quant_desc desc;
} qb_int8_weight;

/* Quantizes host weights w [rows, cols] with amax [n_amax] (1 or rows) under d (signed, 2..8 bits); checks that
 * qb_int8_dequantize_exact(q) reproduces fake_quant(w) (as float32 values; int8 carries no -0.0). */
int qb_int8_quantize(const float *w, int64_t rows, int64_t cols, const float *amax, int64_t n_amax, const quant_desc *d,
                     qb_int8_weight *out, qb_err *err);
/* w = q / fake_quant_scale(amax, d) in float32 (0 where that scale is 0): the fake-quantized weight. */
void qb_int8_dequantize_exact(const int8_t *q, int64_t rows, int64_t cols, const float *amax, int64_t n_amax,
                              const quant_desc *d, float *w);
/* The deployment scale amax / bound in float32, or 1 when amax <= 2^-24. */
float qb_int8_scale(float amax, const quant_desc *d);
/* Frees the arrays. */
void qb_int8_weight_free(qb_int8_weight *w);

/* quantizer.h: a quantization point of the model: src/quant's tensor_quantizer (pytorch-quantization's
 * TensorQuantizer: descriptor, switches, calibrator, amax, fake quant with clipped straight-through gradient) under
 * its HF QDQBert name, plus the number of amax values a checkpoint may give it. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "autograd/autograd.h"
#include "quant/tensor_quantizer.h"

typedef struct qb_quantizer {
    tensor_quantizer tq;  /* tq.name e.g. bert.encoder.layer.0.attention.self.query._input_quantizer */
    int64_t channels;     /* amax values of a per-row quantizer (weight rows); 1 for per-tensor ones */
} qb_quantizer;

/* Sets up a disabled quantizer (quantization on, calibration off, no amax) from a descriptor. */
int qb_quantizer_init(qb_quantizer *q, const char *name, const quant_desc *desc, int64_t channels, qb_err *err);
/* Frees the calibrator state and amax. */
void qb_quantizer_free(qb_quantizer *q);
/* True when the quantizer keeps one amax per row (descriptor axis 0). */
static inline bool qb_quantizer_per_channel(const qb_quantizer *q) { return q->tq.desc.axis >= 0; }
/* Sets amax: `channels` values, or 1 (a per-row quantizer then becomes per tensor, as with --quant-per-tensor). */
int qb_quantizer_set_amax(qb_quantizer *q, const float *amax, int64_t n, qb_err *err);
/* x through the quantizer (tensor_quantizer_forward): x itself when disabled. */
static inline qb_tensor *qb_quantizer_apply(qb_ctx *ctx, qb_quantizer *q, qb_tensor *x) { return tensor_quantizer_forward(ctx, &q->tq, x); }

/* quantizer.h: a named quantization point of the model (HF QDQBert name, amax, on/off, per-tensor or per-row)
 * and the int8 fake-quant op it applies: s = 127/amax, q = clamp(rint(x*s), -128, 127), y = q/s; amax <= 2^-24
 * gives 0; backward passes the gradient where |x| <= amax (STE); amax [1] per tensor or [rows of dim 0] per channel.
 * The op is src/quant's qb_fake_quant (pytorch-quantization 2.1 numerics); calibration plugs in through the hook. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "autograd/autograd.h"

#define QB_QUANT_NAME_MAX 128

typedef struct qb_quantizer {
    char name[QB_QUANT_NAME_MAX];  /* e.g. bert.encoder.layer.0.attention.self.query._input_quantizer */
    bool enabled;                  /* false: the forward passes x through untouched */
    bool per_channel;              /* one amax per row of dim 0 (weights [out, in]); else one for the tensor */
    int64_t n_amax;                /* 1, or rows when per_channel */
    float *amax;                   /* [n_amax]; NULL until calibrated or loaded */
} qb_quantizer;

/* The hook the model calls at every quantization point: returns the (fake-quantized) tensor to use for x. */
typedef qb_tensor *(*qb_quant_hook)(qb_ctx *ctx, qb_quantizer *q, qb_tensor *x, void *user);

/* Fake quantization of x by q when enabled (x returned as is when disabled); an enabled quantizer without amax fails. */
qb_tensor *qb_quantizer_apply(qb_ctx *ctx, qb_quantizer *q, qb_tensor *x);
/* The default hook: qb_quantizer_apply. */
qb_tensor *qb_quant_hook_default(qb_ctx *ctx, qb_quantizer *q, qb_tensor *x, void *user);
/* Sets amax (copies n values; n must be n_amax). */
int qb_quantizer_set_amax(qb_quantizer *q, const float *amax, int64_t n, qb_err *err);

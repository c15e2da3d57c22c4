/* tensor_quantizer.h: pytorch-quantization's TensorQuantizer: a descriptor, switches, a calibrator and the amax.
 * forward(x): disabled -> x; calibration on -> the calibrator sees x; quantization on -> fake_quant(x, amax), where
 * amax is the loaded/fixed value, the learnable parameter, or (none loaded yet) max|x| over the non-axis dims
 * computed on the fly, as the reference does. */
#pragma once
#include "autograd/autograd.h"
#include "quant/calib_histogram.h"
#include "quant/calib_max.h"
#include "quant/quant_desc.h"

#define TENSOR_QUANTIZER_NAME_MAX 96

typedef struct tensor_quantizer {
    char name[TENSOR_QUANTIZER_NAME_MAX]; /* for messages, e.g. "layer.0.attention.self.query._input_quantizer" */
    quant_desc desc;
    bool disabled;          /* full bypass */
    bool calib_on;          /* collect statistics in forward */
    bool quant_on;          /* fake quantize in forward */
    float *amax;            /* [n_amax] (1 per tensor, channels per channel); NULL until loaded or fixed */
    int64_t n_amax;
    calib_max max;          /* desc.calib == CALIB_MAX */
    calib_histogram hist;   /* desc.calib == CALIB_HISTOGRAM */
    qb_tensor *learned_amax; /* [1] parameter after tensor_quantizer_init_learn_amax: the amax (PACT) or the scale (LSQ) */
    float lsq_scale;        /* an LSQ scale loaded with a checkpoint (0: none; the parameter then starts at amax / bound) */
} tensor_quantizer;

/* Validates desc and sets up an enabled quantizer (quant on, calibration off); fixed amax is loaded. */
int tensor_quantizer_init(tensor_quantizer *q, const char *name, const quant_desc *desc, qb_err *err);
/* Frees the calibrator state and amax (a learned parameter belongs to its context). */
void tensor_quantizer_free(tensor_quantizer *q);

static inline void tensor_quantizer_enable(tensor_quantizer *q) { q->disabled = false; }
static inline void tensor_quantizer_disable(tensor_quantizer *q) { q->disabled = true; }
static inline void tensor_quantizer_enable_calib(tensor_quantizer *q) { q->calib_on = true; }
static inline void tensor_quantizer_disable_calib(tensor_quantizer *q) { q->calib_on = false; }
static inline void tensor_quantizer_enable_quant(tensor_quantizer *q) { q->quant_on = true; }
static inline void tensor_quantizer_disable_quant(tensor_quantizer *q) { q->quant_on = false; }

/* Feeds a host tensor (row-major, ndim dims) to the calibrator; NaN/Inf is an error naming the quantizer. */
int tensor_quantizer_collect(tensor_quantizer *q, const float *x, int ndim, const int64_t *shape, qb_err *err);
/* The same for x in the memory of ex's device (statistics by ex's kernels). */
int tensor_quantizer_collect_on(tensor_quantizer *q, const qb_quant_exec *ex, const float *x, int ndim, const int64_t *shape, qb_err *err);
/* Sets amax from the calibrator: max, or a histogram by method (percentile uses `percentile`); an error when the
 * calibrator saw no data. */
int tensor_quantizer_load_calib_amax(tensor_quantizer *q, hist_amax_method method, double percentile, qb_err *err);
/* Sets amax directly: n = 1 or the channel count; values finite and >= 0. */
int tensor_quantizer_set_amax(tensor_quantizer *q, const float *amax, int64_t n, qb_err *err);
/* Creates the learned range parameter from the largest loaded amax: "<name>.amax" for amax_mode QUANT_AMAX_LEARNABLE
 * (PACT; init_learn_amax in the reference), "<name>.scale" = amax / bound (or the loaded lsq_scale) for QUANT_AMAX_LSQ;
 * per-tensor descriptors only. */
int tensor_quantizer_init_learn_amax(qb_ctx *ctx, tensor_quantizer *q);
/* Sets an existing learned parameter from the quantizer's amax (LSQ: lsq_scale when loaded, else amax / bound), e.g.
 * after loading other weights into the model. */
int tensor_quantizer_reload_learned(qb_ctx *ctx, tensor_quantizer *q);
/* The learned range as an amax (the parameter's value, times bound for LSQ) and, for LSQ, the scale; 0 and -1 with
 * ctx->err set when reading it fails. A quantizer without a learned parameter gives -1 without an error. */
int tensor_quantizer_learned_range(qb_ctx *ctx, const tensor_quantizer *q, float *amax, float *scale);
/* The quantizer applied to x (see the top of this file); errors go to ctx->err. */
qb_tensor *tensor_quantizer_forward(qb_ctx *ctx, tensor_quantizer *q, qb_tensor *x);

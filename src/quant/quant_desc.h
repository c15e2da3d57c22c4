/* quant_desc.h: what a quantizer does (bits, axis, range, amax source, calibration) and per-kind defaults. */
#pragma once
#include <stdbool.h>
#include "base/error.h"

typedef enum {
    QUANT_AMAX_CALIBRATED = 0, /* from a calibrator; dynamic max|x| until one is loaded (as the reference) */
    QUANT_AMAX_FIXED,          /* fixed_amax, never calibrated */
    QUANT_AMAX_LEARNABLE,      /* a parameter trained with a PACT-style clip gradient (per tensor only) */
    QUANT_AMAX_LSQ,            /* a learned step size (LSQ) parameter, scale = amax / bound (per tensor only) */
} quant_amax_mode;

typedef enum { CALIB_MAX = 0, CALIB_HISTOGRAM } calib_method;

typedef enum { HIST_AMAX_PERCENTILE = 0, HIST_AMAX_ENTROPY, HIST_AMAX_MSE } hist_amax_method;

typedef enum {
    HIST_MODELOPT = 0, /* torch.histc path of modelopt / pytorch-quantization 2.2: range [0, max], growing */
    HIST_PQ21_NUMPY,   /* np.histogram path of pytorch-quantization 2.1: first range [min|x|, max|x|] */
} hist_semantics;

typedef struct quant_desc {
    int num_bits;              /* 2..16 */
    int axis;                  /* -1: per tensor; otherwise the dim that keeps its own amax (0 = weight rows) */
    bool is_unsigned;          /* range [0, 2^b - 1] */
    bool narrow_range;         /* signed range [-(2^(b-1)-1), 2^(b-1)-1] instead of [-2^(b-1), 2^(b-1)-1] */
    quant_amax_mode amax_mode;
    float fixed_amax;          /* QUANT_AMAX_FIXED only */
    calib_method calib;
    hist_amax_method hist_method;
    double percentile;         /* 0..100, for HIST_AMAX_PERCENTILE */
    int num_bins;              /* first-batch histogram bins */
    int start_bin;             /* entropy / mse: first candidate bin */
    int stride;                /* entropy / mse: candidate step */
    bool skip_zeros;           /* histogram drops exact zeros */
    hist_semantics hist_semantics;
} quant_desc;

/* Kinds of quantizer in QDQBERT, each with its own default descriptor. */
typedef enum {
    QUANT_KIND_LINEAR_INPUT = 0,
    QUANT_KIND_LINEAR_WEIGHT,
    QUANT_KIND_MATMUL_INPUT,
    QUANT_KIND_RESIDUAL_INPUT,
    QUANT_KIND_COUNT
} quant_kind;

/* The default descriptor of each kind; owned by the caller (no global state). */
typedef struct quant_defaults {
    quant_desc kind[QUANT_KIND_COUNT];
} quant_defaults;

/* 8-bit signed per-tensor, max calibration, full range [-128, 127]; histogram settings as the reference. */
quant_desc quant_desc_default(void);
/* Inputs per tensor (max calibration), weights per row (axis 0, max calibration), as pytorch-quantization. */
void quant_defaults_init(quant_defaults *d);
/* Validates d and stores it as the default of a kind (set_default_quant_desc_input/weight). */
int quant_defaults_set(quant_defaults *d, quant_kind kind, const quant_desc *desc, qb_err *err);
/* Checks every field; returns -1 with a message naming the field when one is out of range. */
int quant_desc_validate(const quant_desc *d, qb_err *err);
/* Checks that the axis exists in a tensor of ndim dims (-1 always does). */
int quant_desc_check_ndim(const quant_desc *d, int ndim, qb_err *err);
/* Largest integer level: 2^(b-1+unsigned) - 1. */
float quant_desc_bound(const quant_desc *d);
/* Smallest integer level: 0 unsigned, -bound narrow, -bound-1 otherwise. */
float quant_desc_qmin(const quant_desc *d);
/* Name of a histogram amax method ("percentile", "entropy", "mse"). */
const char *hist_amax_method_name(hist_amax_method m);

/* calib_max.h: running max|x| over calibration batches, per tensor or per channel (MaxCalibrator). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "base/error.h"
#include "quant/quant_kernels.h"

typedef struct calib_max {
    int axis;        /* -1 per tensor, else the channel dim */
    int64_t n;       /* amax count: 1, or the channel count fixed by the first batch */
    float *amax;     /* [n], NULL until the first batch */
} calib_max;

/* Starts an empty calibrator for an axis (-1 per tensor). */
void calib_max_init(calib_max *c, int axis);
/* Frees the running values. */
void calib_max_free(calib_max *c);
/* Forgets the data seen. */
void calib_max_reset(calib_max *c);
/* Folds a row-major tensor into the running max; NaN/Inf or a changed channel count is an error naming `name`. */
int calib_max_collect(calib_max *c, const float *x, int ndim, const int64_t *shape, const char *name, qb_err *err);
/* The same for x in the memory of ex's device (the max by ex's kernels). */
int calib_max_collect_on(calib_max *c, const qb_quant_exec *ex, const float *x, int ndim, const int64_t *shape, const char *name,
                         qb_err *err);
/* Copies the running amax into out[n] (n must equal c->n); an error when no data was seen. */
int calib_max_compute(const calib_max *c, float *out, int64_t n, const char *name, qb_err *err);
/* dst = elementwise max of both (exact: the result equals one calibrator over both data sets). */
int calib_max_merge(calib_max *dst, const calib_max *src, qb_err *err);

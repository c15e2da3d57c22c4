/* quant_desc.c: see quant_desc.h. */
#include "quant/quant_desc.h"

#include <math.h>
#include "autograd/tensor.h"

quant_desc quant_desc_default(void) {
    return (quant_desc){
        .num_bits = 8,
        .axis = -1,
        .is_unsigned = false,
        .narrow_range = false,
        .amax_mode = QUANT_AMAX_CALIBRATED,
        .fixed_amax = 0.0f,
        .calib = CALIB_MAX,
        .hist_method = HIST_AMAX_PERCENTILE,
        .percentile = 99.99,
        .num_bins = 2048,
        .start_bin = 128,
        .stride = 1,
        .skip_zeros = false,
        .hist_semantics = HIST_MODELOPT,
    };
}

void quant_defaults_init(quant_defaults *d) {
    for (int k = 0; k < QUANT_KIND_COUNT; k++) d->kind[k] = quant_desc_default();
    d->kind[QUANT_KIND_LINEAR_WEIGHT].axis = 0;
}

int quant_defaults_set(quant_defaults *d, quant_kind kind, const quant_desc *desc, qb_err *err) {
    if ((int)kind < 0 || kind >= QUANT_KIND_COUNT) return qb_errorf(err, "quant defaults: unknown kind %d", (int)kind);
    if (quant_desc_validate(desc, err)) return -1;
    d->kind[kind] = *desc;
    return 0;
}

int quant_desc_validate(const quant_desc *d, qb_err *err) {
    if (d->num_bits < 2 || d->num_bits > 16)
        return qb_errorf(err, "quant desc: num_bits %d out of range [2, 16]", d->num_bits);
    if (d->axis < -1 || d->axis >= QB_MAX_DIMS)
        return qb_errorf(err, "quant desc: axis %d out of range [-1, %d]", d->axis, QB_MAX_DIMS - 1);
    if (d->is_unsigned && d->narrow_range)
        return qb_errorf(err, "quant desc: narrow_range applies to signed quantization only");
    if (d->amax_mode < QUANT_AMAX_CALIBRATED || d->amax_mode > QUANT_AMAX_LSQ)
        return qb_errorf(err, "quant desc: unknown amax mode %d", (int)d->amax_mode);
    if (d->amax_mode == QUANT_AMAX_FIXED && !(d->fixed_amax >= 0.0f && isfinite(d->fixed_amax)))
        return qb_errorf(err, "quant desc: fixed amax %g must be finite and >= 0", (double)d->fixed_amax);
    if ((d->amax_mode == QUANT_AMAX_LEARNABLE || d->amax_mode == QUANT_AMAX_LSQ) && d->axis != -1)
        return qb_errorf(err, "quant desc: learnable amax is per tensor only (axis %d given)", d->axis);
    if (d->calib != CALIB_MAX && d->calib != CALIB_HISTOGRAM)
        return qb_errorf(err, "quant desc: unknown calibration method %d", (int)d->calib);
    if (d->calib == CALIB_HISTOGRAM && d->axis != -1)
        return qb_errorf(err, "quant desc: histogram calibration is per tensor only (axis %d given)", d->axis);
    if (d->hist_method < HIST_AMAX_PERCENTILE || d->hist_method > HIST_AMAX_MSE)
        return qb_errorf(err, "quant desc: unknown histogram amax method %d", (int)d->hist_method);
    if (!(d->percentile >= 0.0 && d->percentile <= 100.0))
        return qb_errorf(err, "quant desc: percentile %g out of range [0, 100]", d->percentile);
    if (d->num_bins < 2 || d->num_bins > (1 << 24))
        return qb_errorf(err, "quant desc: num_bins %d out of range [2, 2^24]", d->num_bins);
    if (d->start_bin < 1 || d->start_bin >= d->num_bins)
        return qb_errorf(err, "quant desc: start_bin %d out of range [1, num_bins)", d->start_bin);
    if (d->stride < 1) return qb_errorf(err, "quant desc: stride %d must be >= 1", d->stride);
    if (d->hist_semantics != HIST_MODELOPT && d->hist_semantics != HIST_PQ21_NUMPY)
        return qb_errorf(err, "quant desc: unknown histogram semantics %d", (int)d->hist_semantics);
    return 0;
}

int quant_desc_check_ndim(const quant_desc *d, int ndim, qb_err *err) {
    if (d->axis >= ndim) return qb_errorf(err, "quant desc: axis %d out of range for a %d-d tensor", d->axis, ndim);
    return 0;
}

float quant_desc_bound(const quant_desc *d) {
    return (float)((1 << (d->num_bits - 1 + (d->is_unsigned ? 1 : 0))) - 1);
}

float quant_desc_qmin(const quant_desc *d) {
    float m = quant_desc_bound(d);
    return d->is_unsigned ? 0.0f : d->narrow_range ? -m : -m - 1.0f;
}

const char *hist_amax_method_name(hist_amax_method m) {
    switch (m) {
    case HIST_AMAX_PERCENTILE: return "percentile";
    case HIST_AMAX_ENTROPY: return "entropy";
    case HIST_AMAX_MSE: return "mse";
    }
    return "?";
}

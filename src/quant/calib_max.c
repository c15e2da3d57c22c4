/* calib_max.c: see calib_max.h. */
#include "quant/calib_max.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void calib_max_init(calib_max *c, int axis) {
    c->axis = axis;
    c->n = 0;
    c->amax = NULL;
}

void calib_max_free(calib_max *c) {
    free(c->amax);
    c->amax = NULL;
    c->n = 0;
}

void calib_max_reset(calib_max *c) { calib_max_free(c); }

int calib_max_collect(calib_max *c, const float *x, int ndim, const int64_t *shape, const char *name, qb_err *err) {
    qb_quant_exec ex = qb_quant_exec_cpu();
    return calib_max_collect_on(c, &ex, x, ndim, shape, name, err);
}

/* local[channels] and the NaN/Inf flag of max|x| by ex's kernel. */
static int reduce_on(const qb_quant_exec *ex, float *local, int32_t *bad, const float *x, int64_t outer, int64_t channels,
                     int64_t inner, qb_err *err) {
    if (ex->k->host_memory) return QB_QKERNEL(err, ex, "calib_max", amax_reduce, local, bad, x, outer, channels, inner);
    size_t bytes = (size_t)channels * sizeof(float);
    float *dev = qb_quant_alloc(ex, bytes + sizeof(int32_t), "calib_max", err);
    int rc = dev ? QB_QKERNEL(err, ex, "calib_max", amax_reduce, dev, (int32_t *)(dev + channels), x, outer, channels, inner) : -1;
    if (!rc) rc = qb_quant_download(ex, local, dev, bytes, "calib_max", err);
    if (!rc) rc = qb_quant_download(ex, bad, dev + channels, sizeof *bad, "calib_max", err);
    if (dev) qb_quant_release(ex, dev);
    return rc;
}

int calib_max_collect_on(calib_max *c, const qb_quant_exec *ex, const float *x, int ndim, const int64_t *shape, const char *name,
                         qb_err *err) {
    if (c->axis >= ndim)
        return qb_errorf(err, "quantizer %s: axis %d out of range for a %d-d tensor", name, c->axis, ndim);
    int64_t outer, channels, inner;
    qb_channel_view(ndim, shape, c->axis, &outer, &channels, &inner);
    if (outer * channels * inner == 0) return 0;
    if (c->amax && channels != c->n)
        return qb_errorf(err, "quantizer %s: amax shape changed (%lld channels, was %lld)", name, (long long)channels,
                         (long long)c->n);
    float *local = malloc((size_t)channels * sizeof(float));
    if (!local) return qb_errorf(err, "quantizer %s: out of memory", name);
    int32_t bad = 0;
    if (reduce_on(ex, local, &bad, x, outer, channels, inner, err)) {
        free(local);
        return qb_err_context(err, "quantizer %s", name);
    }
    if (bad) {
        free(local);
        return qb_errorf(err, "quantizer %s: NaN or Inf in calibration data", name);
    }
    if (!c->amax) {
        c->amax = local;
        c->n = channels;
        return 0;
    }
    for (int64_t k = 0; k < channels; k++) c->amax[k] = local[k] > c->amax[k] ? local[k] : c->amax[k];
    free(local);
    return 0;
}

int calib_max_compute(const calib_max *c, float *out, int64_t n, const char *name, qb_err *err) {
    if (!c->amax) return qb_errorf(err, "quantizer %s: max calibrator saw no data", name);
    if (n != c->n)
        return qb_errorf(err, "quantizer %s: amax has %lld values, %lld requested", name, (long long)c->n, (long long)n);
    memcpy(out, c->amax, (size_t)n * sizeof(float));
    return 0;
}

int calib_max_merge(calib_max *dst, const calib_max *src, qb_err *err) {
    if (dst->axis != src->axis) return qb_errorf(err, "calib max merge: axes differ (%d, %d)", dst->axis, src->axis);
    if (!src->amax) return 0;
    if (!dst->amax) {
        dst->amax = malloc((size_t)src->n * sizeof(float));
        if (!dst->amax) return qb_errorf(err, "calib max merge: out of memory");
        memcpy(dst->amax, src->amax, (size_t)src->n * sizeof(float));
        dst->n = src->n;
        return 0;
    }
    if (dst->n != src->n)
        return qb_errorf(err, "calib max merge: channel counts differ (%lld, %lld)", (long long)dst->n, (long long)src->n);
    for (int64_t k = 0; k < dst->n; k++) dst->amax[k] = src->amax[k] > dst->amax[k] ? src->amax[k] : dst->amax[k];
    return 0;
}

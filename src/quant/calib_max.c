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

void calib_max_reduce(float *amax, const float *x, int64_t outer, int64_t channels, int64_t inner, bool *bad) {
    int nonfinite = 0;
    for (int64_t c = 0; c < channels; c++) amax[c] = 0.0f;
    if (channels == 1) {
        const int64_t n = outer * inner;
        float m = 0.0f;
#pragma omp parallel for simd schedule(static) reduction(max : m) reduction(| : nonfinite) if (n > 32768)
        for (int64_t i = 0; i < n; i++) {
            float a = fabsf(x[i]);
            nonfinite |= !(a <= 3.402823466e38f);
            m = a > m ? a : m;
        }
        amax[0] = m;
    } else {
#pragma omp parallel for schedule(static) reduction(| : nonfinite) if (outer * channels * inner > 32768)
        for (int64_t c = 0; c < channels; c++) {
            float m = 0.0f;
            for (int64_t o = 0; o < outer; o++) {
                const float *row = x + (o * channels + c) * inner;
                for (int64_t i = 0; i < inner; i++) {
                    float a = fabsf(row[i]);
                    nonfinite |= !(a <= 3.402823466e38f);
                    m = a > m ? a : m;
                }
            }
            amax[c] = m;
        }
    }
    *bad = nonfinite != 0;
}

int calib_max_collect(calib_max *c, const float *x, int ndim, const int64_t *shape, const char *name, qb_err *err) {
    if (c->axis >= ndim)
        return qb_errorf(err, "quantizer %s: axis %d out of range for a %d-d tensor", name, c->axis, ndim);
    int64_t outer = 1, channels = 1, inner = 1;
    for (int d = 0; d < ndim; d++) {
        if (c->axis < 0 || d > c->axis) inner *= shape[d];
        else if (d == c->axis) channels = shape[d];
        else outer *= shape[d];
    }
    if (outer * channels * inner == 0) return 0;
    if (c->amax && channels != c->n)
        return qb_errorf(err, "quantizer %s: amax shape changed (%lld channels, was %lld)", name, (long long)channels,
                         (long long)c->n);
    float *local = malloc((size_t)channels * sizeof(float));
    if (!local) return qb_errorf(err, "quantizer %s: out of memory", name);
    bool bad = false;
    calib_max_reduce(local, x, outer, channels, inner, &bad);
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

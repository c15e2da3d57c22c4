/* tensor_quantizer.c: see tensor_quantizer.h. */
#include "quant/tensor_quantizer.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "quant/op_fake_quant.h"

int tensor_quantizer_init(tensor_quantizer *q, const char *name, const quant_desc *desc, qb_err *err) {
    memset(q, 0, sizeof *q);
    snprintf(q->name, sizeof q->name, "%s", name);
    if (quant_desc_validate(desc, err)) return qb_err_context(err, "quantizer %s", q->name);
    q->desc = *desc;
    q->quant_on = true;
    calib_max_init(&q->max, desc->axis);
    calib_histogram_init(&q->hist, desc);
    if (desc->amax_mode == QUANT_AMAX_FIXED) return tensor_quantizer_set_amax(q, &desc->fixed_amax, 1, err);
    return 0;
}

void tensor_quantizer_free(tensor_quantizer *q) {
    calib_max_free(&q->max);
    calib_histogram_free(&q->hist);
    free(q->amax);
    q->amax = NULL;
    q->n_amax = 0;
}

int tensor_quantizer_collect(tensor_quantizer *q, const float *x, int ndim, const int64_t *shape, qb_err *err) {
    qb_quant_exec ex = qb_quant_exec_cpu();
    return tensor_quantizer_collect_on(q, &ex, x, ndim, shape, err);
}

int tensor_quantizer_collect_on(tensor_quantizer *q, const qb_quant_exec *ex, const float *x, int ndim, const int64_t *shape, qb_err *err) {
    if (q->desc.calib == CALIB_MAX) return calib_max_collect_on(&q->max, ex, x, ndim, shape, q->name, err);
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    return calib_histogram_collect_on(&q->hist, ex, x, n, q->name, err);
}

int tensor_quantizer_set_amax(tensor_quantizer *q, const float *amax, int64_t n, qb_err *err) {
    if (n < 1) return qb_errorf(err, "quantizer %s: no amax values", q->name);
    for (int64_t k = 0; k < n; k++)
        if (!(amax[k] >= 0.0f) || isinf(amax[k]))
            return qb_errorf(err, "quantizer %s: amax[%lld] = %g (must be finite and >= 0)", q->name, (long long)k,
                             (double)amax[k]);
    float *a = malloc((size_t)n * sizeof(float));
    if (!a) return qb_errorf(err, "quantizer %s: out of memory", q->name);
    memcpy(a, amax, (size_t)n * sizeof(float));
    free(q->amax);
    q->amax = a;
    q->n_amax = n;
    return 0;
}

int tensor_quantizer_load_calib_amax(tensor_quantizer *q, hist_amax_method method, double percentile, qb_err *err) {
    if (q->desc.calib == CALIB_MAX) {
        if (!q->max.amax) return qb_errorf(err, "quantizer %s: max calibrator saw no data", q->name);
        float *a = malloc((size_t)q->max.n * sizeof(float));
        if (!a) return qb_errorf(err, "quantizer %s: out of memory", q->name);
        int rc = calib_max_compute(&q->max, a, q->max.n, q->name, err);
        if (!rc) rc = tensor_quantizer_set_amax(q, a, q->max.n, err);
        free(a);
        return rc;
    }
    quant_desc d = q->desc;
    d.percentile = percentile;
    if (quant_desc_validate(&d, err)) return qb_err_context(err, "quantizer %s", q->name);
    float a;
    if (calib_histogram_compute_amax(&q->hist, method, &d, &a, q->name, err)) return -1;
    return tensor_quantizer_set_amax(q, &a, 1, err);
}

int tensor_quantizer_init_learn_amax(qb_ctx *ctx, tensor_quantizer *q) {
    bool lsq = q->desc.amax_mode == QUANT_AMAX_LSQ;
    if ((q->desc.amax_mode != QUANT_AMAX_LEARNABLE && !lsq) || q->desc.axis != -1)
        return qb_errorf(&ctx->err, "quantizer %s: learnable amax needs a per-tensor learnable descriptor", q->name);
    if (!q->amax) return qb_errorf(&ctx->err, "quantizer %s: learnable amax needs an initial amax", q->name);
    float m = 0.0f;
    for (int64_t k = 0; k < q->n_amax; k++) m = q->amax[k] > m ? q->amax[k] : m;
    if (lsq) m = q->lsq_scale > 0.0f ? q->lsq_scale : m / quant_desc_bound(&q->desc);
    if (lsq && !(m > 0.0f)) return qb_errorf(&ctx->err, "quantizer %s: LSQ needs an amax > 0", q->name);
    char pname[TENSOR_QUANTIZER_NAME_MAX + 8];
    snprintf(pname, sizeof pname, "%s.%s", q->name, lsq ? "scale" : "amax");
    int64_t one = 1;
    qb_tensor *p = qb_param_new(ctx, pname, 1, &one);
    if (!p) return -1;
    if (qb_copy_from_host(ctx, p, &m)) return -1;
    q->learned_amax = p;
    return 0;
}

int tensor_quantizer_reload_learned(qb_ctx *ctx, tensor_quantizer *q) {
    if (!q->learned_amax) return 0;
    if (!q->amax) return qb_errorf(&ctx->err, "quantizer %s: no amax to set its learned range from", q->name);
    float v = q->amax[0];
    if (q->desc.amax_mode == QUANT_AMAX_LSQ) v = q->lsq_scale > 0.0f ? q->lsq_scale : v / quant_desc_bound(&q->desc);
    return qb_copy_from_host(ctx, q->learned_amax, &v);
}

int tensor_quantizer_learned_range(qb_ctx *ctx, const tensor_quantizer *q, float *amax, float *scale) {
    if (!q->learned_amax) return -1;
    float v = qb_item(ctx, q->learned_amax);
    if (qb_ctx_failed(ctx)) return -1;
    bool lsq = q->desc.amax_mode == QUANT_AMAX_LSQ;
    *scale = lsq ? v : 0.0f;
    *amax = lsq ? v * quant_desc_bound(&q->desc) : v;
    return 0;
}

qb_tensor *tensor_quantizer_forward(qb_ctx *ctx, tensor_quantizer *q, qb_tensor *x) {
    if (!x || qb_ctx_failed(ctx)) return NULL;
    if (q->disabled) return x;
    qb_quant_exec ex = qb_quant_exec_of(ctx);
    if (q->calib_on) {
        qb_tensor *xc = qb_contiguous(ctx, x);
        if (!xc || tensor_quantizer_collect_on(q, &ex, xc->data, xc->ndim, xc->shape, &ctx->err)) return NULL;
    }
    if (!q->quant_on) return x;
    qb_tensor *y;
    if (q->learned_amax && (q->desc.amax_mode == QUANT_AMAX_LEARNABLE || q->desc.amax_mode == QUANT_AMAX_LSQ)) {
        /* a learned range stays >= FLT_EPSILON, as torch.ao's LearnableFakeQuantize clamps its scale */
        float v = qb_item(ctx, q->learned_amax), eps = FLT_EPSILON;
        if (!qb_ctx_failed(ctx) && !(v >= eps) && !isnan(v)) qb_copy_from_host(ctx, q->learned_amax, &eps);
        if (qb_ctx_failed(ctx)) return NULL;
    }
    if (q->desc.amax_mode == QUANT_AMAX_LEARNABLE && q->learned_amax) {
        y = qb_fake_quant_learnable(ctx, x, q->learned_amax, &q->desc);
    } else if (q->desc.amax_mode == QUANT_AMAX_LSQ && q->learned_amax) {
        y = qb_fake_quant_lsq(ctx, x, q->learned_amax, &q->desc, qb_lsq_grad_factor(x, &q->desc));
    } else if (q->amax) {
        y = qb_fake_quant(ctx, x, q->amax, q->n_amax, &q->desc);
    } else {  /* dynamic amax, on the device */
        if (quant_desc_check_ndim(&q->desc, x->ndim, &ctx->err)) return NULL;
        qb_tensor *xc = qb_contiguous(ctx, x);
        if (!xc) return NULL;
        int64_t outer, channels, inner;
        qb_channel_view(xc->ndim, xc->shape, q->desc.axis, &outer, &channels, &inner);
        float *dyn = qb_act_alloc(ctx, (size_t)channels * sizeof(float));
        int32_t *bad = qb_act_alloc(ctx, sizeof(int32_t)), bad_host = 0;
        if (!dyn || !bad || QB_QKERNEL(&ctx->err, &ex, "quantizer", amax_reduce, dyn, bad, xc->data, outer, channels, inner) ||
            qb_download(ctx, &bad_host, bad, sizeof bad_host))
            return NULL;
        if (bad_host) return qb_errorf(&ctx->err, "quantizer %s: NaN or Inf in input (dynamic amax)", q->name), NULL;
        y = qb_fake_quant_dev(ctx, x, dyn, channels, &q->desc);
    }
    if (!y) qb_err_context(&ctx->err, "quantizer %s", q->name);
    return y;
}

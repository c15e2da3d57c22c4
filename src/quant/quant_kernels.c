/* quant_kernels.c: see quant_kernels.h. */
#include "quant/quant_kernels.h"

qb_quant_exec qb_quant_exec_cpu(void) { return (qb_quant_exec){&qb_quant_cpu_kernels, &qb_cpu_kernels, NULL}; }

qb_quant_exec qb_quant_exec_of(const qb_ctx *ctx) {
    const qb_quant_kernels *qk = ctx->quant_kernels ? ctx->quant_kernels
                                 : ctx->device == QB_CUDA ? &qb_quant_cuda_kernels : &qb_quant_cpu_kernels;
    return (qb_quant_exec){qk, ctx->k, ctx->dev};
}

void *qb_quant_alloc(const qb_quant_exec *ex, size_t bytes, const char *op, qb_err *err) {
    void *p = ex->k->alloc(ex->dev, bytes);
    if (!p) qb_errorf(err, "%s: out of %s memory for %zu bytes", op, ex->k->name, bytes);
    return p;
}

void qb_quant_release(const qb_quant_exec *ex, void *p) { ex->k->release(ex->dev, p); }

int qb_quant_download(const qb_quant_exec *ex, void *host, const void *src, size_t bytes, const char *op, qb_err *err) {
    return QB_TABLE_CALL(err, ex->k, ex->k, ex->dev, op, memcpy_d2h, host, src, bytes);
}

int qb_quant_upload(const qb_quant_exec *ex, void *dst, const void *host, size_t bytes, const char *op, qb_err *err) {
    return QB_TABLE_CALL(err, ex->k, ex->k, ex->dev, op, memcpy_h2d, dst, host, bytes);
}

void qb_channel_view(int ndim, const int64_t *shape, int axis, int64_t *outer, int64_t *channels, int64_t *inner) {
    *outer = *channels = *inner = 1;
    for (int k = 0; k < ndim; k++) {
        if (axis < 0 || k > axis) *inner *= shape[k];
        else if (k == axis) *channels = shape[k];
        else *outer *= shape[k];
    }
}

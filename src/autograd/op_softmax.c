/* op_softmax.c: softmax over the last dim of x * scale + mask, forward and backward (CPU).
 * The mask is additive (0 keep, large negative drop), broadcast against x, and gets no gradient.
 * saved: f[0] = scale. */
#include "autograd/op_internal.h"
#include "autograd/simd_math.h"

static void softmax_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *y = n->out;
    bool overwrite;
    qb_tensor *dx = qb_grad_reuse(ctx, x, y, &overwrite);
    if (!dx) return;
    float keep = overwrite ? 0.0f : 1.0f;
    int64_t c = x->shape[x->ndim - 1], rows = qb_numel(x) / c;
    float scale = n->f[0];
    const float *yp = y->data, *dy = y->grad->data;
    float *g = dx->data;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = yp + r * c, *dyr = dy + r * c;
        float dot = 0.0f;
        for (int64_t j = 0; j < c; j++) dot += yr[j] * dyr[j];
        for (int64_t j = 0; j < c; j++) g[r * c + j] = keep * g[r * c + j] + scale * yr[j] * (dyr[j] - dot);
    }
}

qb_tensor *qb_softmax(qb_ctx *ctx, qb_tensor *x, float scale, qb_tensor *mask) {
    QB_OP_BEGIN(ctx, x);
    QB_SHAPE_BUFS;
    QB_OP_CPU_ONLY(ctx, "softmax", x);
    if (x->ndim < 1 || x->shape[x->ndim - 1] == 0)
        return qb_errorf(&ctx->err, "softmax: input %s has no last dim to normalise", qb_shape_str(x, qb_sa_, sizeof qb_sa_)), NULL;
    int64_t mst[4] = {0, 0, 0, 0};
    int off = 4 - x->ndim;
    if (mask) {
        if (mask->ndim > x->ndim)
            return qb_errorf(&ctx->err, "softmax: mask %s has more dims than input %s", QB_SHAPES(mask, x)), NULL;
        int moff = x->ndim - mask->ndim;
        for (int d = 0; d < mask->ndim; d++) {
            int64_t ms = mask->shape[d], xs = x->shape[moff + d];
            if (ms != xs && ms != 1)
                return qb_errorf(&ctx->err, "softmax: mask %s does not broadcast to input %s", QB_SHAPES(mask, x)), NULL;
            mst[off + moff + d] = ms == 1 ? 0 : mask->stride[d];
        }
    }
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new_like(ctx, x) : NULL;
    if (!y) return NULL;
    int64_t sh[4] = {1, 1, 1, 1};
    for (int d = 0; d < x->ndim; d++) sh[off + d] = x->shape[d];
    int64_t c = sh[3], rows = qb_numel(x) / c;
    const float *mp = mask ? mask->data : NULL;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t i2 = r % sh[2], i1 = (r / sh[2]) % sh[1], i0 = r / (sh[2] * sh[1]);
        const float *mr = mp ? mp + i0 * mst[0] + i1 * mst[1] + i2 * mst[2] : NULL;
        const float *xr = x->data + r * c;
        float *yr = y->data + r * c;
        float mx = -INFINITY;
        for (int64_t j = 0; j < c; j++) {
            float v = xr[j] * scale + (mr ? mr[j * mst[3]] : 0.0f);
            yr[j] = v;
            if (v > mx) mx = v;
        }
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < c; j++) {
            float e = expf(yr[j] - mx);
            yr[j] = e;
            sum += e;
        }
        float inv = 1.0f / sum;
        for (int64_t j = 0; j < c; j++) yr[j] *= inv;
    }
    qb_node *n = qb_record(ctx, "softmax", softmax_backward, y, &x, 1);
    if (n) n->f[0] = scale;
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* op_layernorm.c: layer norm over the last dim, forward and backward (CPU).
 * saved: saved[0] = mean [R], saved[1] = rstd [R]; f[0] = eps. */
#include <math.h>
#include "autograd/op_internal.h"
#include "autograd/simd_math.h"

/* dg[j] += sum_r dy[r,j] * xhat[r,j], db[j] += sum_r dy[r,j]; columns split across threads (order independent of
 * the thread count). */
QB_MULTIVERSION static void layernorm_param_grads_cpu(float *dg, float *db, const float *dy, const float *x, const float *mean,
                                                      const float *rstd, int64_t rows, int64_t h) {
#pragma omp parallel for schedule(static)
    for (int64_t j0 = 0; j0 < h; j0 += 64) {
        int64_t j1 = j0 + 64 < h ? j0 + 64 : h;
        for (int64_t r = 0; r < rows; r++) {
            const float *dyr = dy + r * h, *xr = x + r * h;
            float m = mean[r], rs = rstd[r];
            if (dg)
#pragma omp simd
                for (int64_t j = j0; j < j1; j++) dg[j] += dyr[j] * (xr[j] - m) * rs;
            if (db)
#pragma omp simd
                for (int64_t j = j0; j < j1; j++) db[j] += dyr[j];
        }
    }
}

/* g = keep * g + rstd * (dn - mean(dn) - xhat * mean(dn * xhat)), dn = dy * gamma, row by row (g may be dy's buffer). */
QB_MULTIVERSION static void layernorm_input_grad_cpu(float *g, float keep, const float *dy, const float *x, const float *gamma,
                                                     const float *mean, const float *rstd, int64_t rows, int64_t h) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * h, *dyr = dy + r * h;
        float *gr = g + r * h;
        float m = mean[r], rs = rstd[r], sum_dn = 0.0f, sum_dn_n = 0.0f;
#pragma omp simd reduction(+ : sum_dn, sum_dn_n)
        for (int64_t j = 0; j < h; j++) {
            float dn = dyr[j] * (gamma ? gamma[j] : 1.0f);
            sum_dn += dn;
            sum_dn_n += dn * (xr[j] - m) * rs;
        }
        float a = sum_dn / (float)h, b = sum_dn_n / (float)h;
#pragma omp simd
        for (int64_t j = 0; j < h; j++) {
            float dn = dyr[j] * (gamma ? gamma[j] : 1.0f);
            gr[j] = keep * gr[j] + rs * (dn - a - (xr[j] - m) * rs * b);
        }
    }
}

static void layernorm_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2], *y = n->out;
    int64_t h = x->shape[x->ndim - 1], rows = qb_numel(x) / h;
    const float *mean = n->saved[0], *rstd = n->saved[1], *dy = y->grad->data;
    /* gamma and beta first: with overwrite, x's gradient takes over dy's buffer */
    bool dg_needed = gamma && gamma->requires_grad, db_needed = beta && beta->requires_grad;
    if (dg_needed || db_needed) {
        qb_tensor *dgt = dg_needed ? qb_grad(ctx, gamma) : NULL, *dbt = db_needed ? qb_grad(ctx, beta) : NULL;
        if ((dg_needed && !dgt) || (db_needed && !dbt)) return;
        layernorm_param_grads_cpu(dgt ? dgt->data : NULL, dbt ? dbt->data : NULL, dy, x->data, mean, rstd, rows, h);
    }
    if (x->requires_grad) {
        bool overwrite;
        qb_tensor *dx = qb_grad_reuse(ctx, x, y, &overwrite);
        if (!dx) return;
        layernorm_input_grad_cpu(dx->data, overwrite ? 0.0f : 1.0f, dy, x->data, gamma ? gamma->data : NULL, mean, rstd, rows, h);
    }
}

/* y = (x - mean) * rstd * gamma + beta per row of h; saves mean and rstd. Two passes in float. */
QB_MULTIVERSION static void layernorm_forward_cpu(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                                                  const float *beta, int64_t rows, int64_t h, float eps) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * h;
        float *yr = y + r * h;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < h; j++) s += xr[j];
        float m = s / (float)h, v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int64_t j = 0; j < h; j++) v += (xr[j] - m) * (xr[j] - m);
        float rs = 1.0f / sqrtf(v / (float)h + eps);
        mean[r] = m;
        rstd[r] = rs;
#pragma omp simd
        for (int64_t j = 0; j < h; j++) yr[j] = (xr[j] - m) * rs * (gamma ? gamma[j] : 1.0f) + (beta ? beta[j] : 0.0f);
    }
}

qb_tensor *qb_layernorm(qb_ctx *ctx, qb_tensor *x, qb_tensor *gamma, qb_tensor *beta, float eps) {
    QB_OP_BEGIN(ctx, x);
    QB_SHAPE_BUFS;
    QB_OP_CPU_ONLY(ctx, "layernorm", x);
    if (x->ndim < 1) return qb_errorf(&ctx->err, "layernorm: input is a scalar"), NULL;
    int64_t h = x->shape[x->ndim - 1];
    if (gamma && (gamma->ndim != 1 || gamma->shape[0] != h))
        return qb_errorf(&ctx->err, "layernorm: weight %s does not match input %s", QB_SHAPES(gamma, x)), NULL;
    if (beta && (beta->ndim != 1 || beta->shape[0] != h))
        return qb_errorf(&ctx->err, "layernorm: bias %s does not match input %s", QB_SHAPES(beta, x)), NULL;
    if (h == 0) return qb_errorf(&ctx->err, "layernorm: normalised dim is empty in %s", qb_shape_str(x, qb_sa_, sizeof qb_sa_)), NULL;
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new_like(ctx, x) : NULL;
    if (!y) return NULL;
    int64_t rows = qb_numel(x) / h;
    float *mean = qb_act_alloc(ctx, (size_t)rows * sizeof(float));
    float *rstd = qb_act_alloc(ctx, (size_t)rows * sizeof(float));
    if (!mean || !rstd) return NULL;
    layernorm_forward_cpu(y->data, mean, rstd, x->data, gamma ? gamma->data : NULL, beta ? beta->data : NULL, rows, h, eps);
    qb_tensor *in[3] = {x, gamma, beta};
    qb_node *n = qb_record(ctx, "layernorm", layernorm_backward, y, in, 3);
    if (n) {
        n->saved[0] = mean;
        n->saved[1] = rstd;
        n->f[0] = eps;
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

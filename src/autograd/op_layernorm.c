/* op_layernorm.c: layer norm over the last dim, forward and backward (CPU).
 * saved: saved[0] = mean [R], saved[1] = rstd [R]; f[0] = eps. */
#include <math.h>
#include "autograd/op_internal.h"

static void layernorm_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2], *y = n->out;
    int64_t h = x->shape[x->ndim - 1], rows = qb_numel(x) / h;
    const float *mean = n->saved[0], *rstd = n->saved[1], *xp = x->data, *dy = y->grad->data;
    const float *gp = gamma ? gamma->data : NULL;
    /* gamma and beta first: with overwrite, x's gradient takes over dy's buffer */
    bool dg_needed = gamma && gamma->requires_grad, db_needed = beta && beta->requires_grad;
    if (dg_needed || db_needed) {
        qb_tensor *dgt = dg_needed ? qb_grad(ctx, gamma) : NULL, *dbt = db_needed ? qb_grad(ctx, beta) : NULL;
        if ((dg_needed && !dgt) || (db_needed && !dbt)) return;
        float *dg = dgt ? dgt->data : NULL, *db = dbt ? dbt->data : NULL;
#pragma omp parallel for schedule(static)
        for (int64_t j0 = 0; j0 < h; j0 += 32) {
            int64_t j1 = j0 + 32 < h ? j0 + 32 : h;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = j0; j < j1; j++) {
                    if (dg) dg[j] += dy[r * h + j] * (xp[r * h + j] - mean[r]) * rstd[r];
                    if (db) db[j] += dy[r * h + j];
                }
        }
    }
    if (x->requires_grad) {
        bool overwrite;
        qb_tensor *dx = qb_grad_reuse(ctx, x, y, &overwrite);
        if (!dx) return;
        float *g = dx->data, keep = overwrite ? 0.0f : 1.0f;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = xp + r * h, *dyr = dy + r * h;
            float m = mean[r], rs = rstd[r];
            double sum_dn = 0.0, sum_dn_n = 0.0;
            for (int64_t j = 0; j < h; j++) {
                float dn = dyr[j] * (gp ? gp[j] : 1.0f);
                sum_dn += dn;
                sum_dn_n += dn * (xr[j] - m) * rs;
            }
            float a = (float)(sum_dn / h), b = (float)(sum_dn_n / h);
            for (int64_t j = 0; j < h; j++) {
                float dn = dyr[j] * (gp ? gp[j] : 1.0f);
                g[r * h + j] = keep * g[r * h + j] + rs * (dn - a - (xr[j] - m) * rs * b);
            }
        }
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
    const float *gp = gamma ? gamma->data : NULL, *bp = beta ? beta->data : NULL;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * h;
        double s = 0.0;
        for (int64_t j = 0; j < h; j++) s += xr[j];
        float m = (float)(s / h);
        double v = 0.0;
        for (int64_t j = 0; j < h; j++) {
            float d = xr[j] - m;
            v += (double)d * d;
        }
        float rs = 1.0f / sqrtf((float)(v / h) + eps);
        mean[r] = m;
        rstd[r] = rs;
        float *yr = y->data + r * h;
        for (int64_t j = 0; j < h; j++) yr[j] = (xr[j] - m) * rs * (gp ? gp[j] : 1.0f) + (bp ? bp[j] : 0.0f);
    }
    qb_tensor *in[3] = {x, gamma, beta};
    qb_node *n = qb_record(ctx, "layernorm", layernorm_backward, y, in, 3);
    if (n) {
        n->saved[0] = mean;
        n->saved[1] = rstd;
        n->f[0] = eps;
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

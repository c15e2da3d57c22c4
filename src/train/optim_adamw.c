/* optim_adamw.c: see optim_adamw.h. */
#include "train/optim_adamw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int qb_adamw_init(qb_adamw *opt, qb_ctx *ctx, double beta1, double beta2, double eps, double weight_decay, qb_err *err) {
    memset(opt, 0, sizeof *opt);
    opt->beta1 = beta1;
    opt->beta2 = beta2;
    opt->eps = eps;
    opt->weight_decay = weight_decay;
    opt->n = ctx->params.n;
    opt->m = calloc((size_t)opt->n + 1, sizeof *opt->m);
    opt->v = calloc((size_t)opt->n + 1, sizeof *opt->v);
    opt->decay = calloc((size_t)opt->n + 1, sizeof *opt->decay);
    if (!opt->m || !opt->v || !opt->decay) return qb_errorf(err, "adamw: out of memory"), qb_adamw_free(opt), -1;
    for (int i = 0; i < opt->n; i++) {
        qb_tensor *p = ctx->params.items[i];
        size_t n = (size_t)qb_numel(p);
        opt->m[i] = calloc(n ? n : 1, sizeof(float));
        opt->v[i] = calloc(n ? n : 1, sizeof(float));
        if (!opt->m[i] || !opt->v[i]) return qb_errorf(err, "adamw: out of memory for %s", p->name), qb_adamw_free(opt), -1;
        opt->decay[i] = !(ends_with(p->name, "bias") || ends_with(p->name, "LayerNorm.weight"));
    }
    return 0;
}

void qb_adamw_step(qb_adamw *opt, qb_ctx *ctx, float lr) {
    opt->step++;
    /* torch.optim.AdamW (single tensor): p *= 1 - lr*wd; m.lerp_(g, 1 - b1); v = v*b2 + (1 - b2)*g*g;
     * p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps), the scalars formed in double and used as float */
    const float w1 = (float)(1.0 - opt->beta1), b2 = (float)opt->beta2, w2 = (float)(1.0 - opt->beta2), eps = (float)opt->eps;
    const float step_size = (float)((double)lr / (1.0 - pow(opt->beta1, (double)opt->step)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow(opt->beta2, (double)opt->step));
    const float decay_factor = (float)(1.0 - (double)lr * opt->weight_decay);
    for (int i = 0; i < opt->n && i < ctx->params.n; i++) {
        qb_tensor *p = ctx->params.items[i];
        if (!p->requires_grad || !p->grad) continue;
        int64_t n = qb_numel(p);
        float *w = p->data, *m = opt->m[i], *v = opt->v[i];
        const float *g = p->grad->data;
        float keep = opt->decay[i] ? decay_factor : 1.0f;
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (int64_t k = 0; k < n; k++) {
            w[k] *= keep;
            m[k] += w1 * (g[k] - m[k]);  /* lerp with weight < 0.5, as torch's CPU kernel */
            v[k] = v[k] * b2 + w2 * g[k] * g[k];
            w[k] -= step_size * m[k] / (sqrtf(v[k]) / bc2_sqrt + eps);
        }
    }
}

void qb_adamw_free(qb_adamw *opt) {
    for (int i = 0; i < opt->n; i++) {
        if (opt->m) free(opt->m[i]);
        if (opt->v) free(opt->v[i]);
    }
    free(opt->m);
    free(opt->v);
    free(opt->decay);
    memset(opt, 0, sizeof *opt);
}

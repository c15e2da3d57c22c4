/* clip_grad.c: see clip_grad.h. Sums of squares are taken in double over fixed chunks, combined in order (the same
 * bits whatever the thread count or timing). */
#include "train/clip_grad.h"

#include <math.h>

static bool has_grad(const qb_tensor *p) { return p->requires_grad && p->grad && p->grad->data; }

#define CHUNK 65536
#define MAX_CHUNKS 4096

static double sum_squares(const float *g, int64_t n) {
    int64_t chunks = (n + CHUNK - 1) / CHUNK;
    if (chunks <= 1 || chunks > MAX_CHUNKS) {
        double ss = 0.0;
        for (int64_t k = 0; k < n; k++) ss += (double)g[k] * (double)g[k];
        return ss;
    }
    double part[MAX_CHUNKS];
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t end = (c + 1) * CHUNK < n ? (c + 1) * CHUNK : n;
        double ss = 0.0;
        for (int64_t k = c * CHUNK; k < end; k++) ss += (double)g[k] * (double)g[k];
        part[c] = ss;
    }
    double ss = 0.0;
    for (int64_t c = 0; c < chunks; c++) ss += part[c];
    return ss;
}

double qb_grad_norm(qb_ctx *ctx) {
    double total = 0.0;
    for (int i = 0; i < ctx->params.n; i++) {
        qb_tensor *p = ctx->params.items[i];
        if (!has_grad(p)) continue;
        const float *g = p->grad->data;
        int64_t n = qb_numel(p);
        double ss = sum_squares(g, n);
        double norm = (double)(float)sqrt(ss);
        total += norm * norm;
    }
    return (double)(float)sqrt(total);
}

double qb_clip_grad_norm(qb_ctx *ctx, double max_norm) {
    double total = qb_grad_norm(ctx);
    float coef = (float)(max_norm / (total + 1e-6));
    if (!(coef < 1.0f) && !isnan(coef)) return total;
    for (int i = 0; i < ctx->params.n; i++) {
        qb_tensor *p = ctx->params.items[i];
        if (!has_grad(p)) continue;
        float *g = p->grad->data;
        int64_t n = qb_numel(p);
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t k = 0; k < n; k++) g[k] *= coef;
    }
    return total;
}

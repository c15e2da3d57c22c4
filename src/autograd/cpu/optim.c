/* optim.c: AdamW, the global gradient norm and clipping over the packed blocks, on host memory. Segments are
 * processed one after another, each as one parallel loop (the arithmetic of torch's single-tensor AdamW and of
 * clip_grad_norm_, per parameter). */
#include <math.h>
#include "autograd/cpu/kernels.h"

int qb_cpu_adamw(qb_dev *d, float *wb, float *mb, float *vb, const float *gb, int64_t numel, const qb_segment *seg, int n_seg,
                 const qb_adamw_hyper *h) {
    (void)d;
    (void)numel;
    const float w1 = h->w1, b2 = h->b2, w2 = h->w2, eps = h->eps, step_size = h->step_size, bc2_sqrt = h->bc2_sqrt;
    for (int s = 0; s < n_seg; s++) {
        if (!(seg[s].flags & QB_SEG_GRAD)) continue;
        int64_t n = seg[s].n;
        float *w = wb + seg[s].offset, *m = mb + seg[s].offset, *v = vb + seg[s].offset;
        const float *g = gb + seg[s].offset;
        float keep = seg[s].flags & QB_SEG_DECAY ? h->decay_factor : 1.0f;
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (int64_t k = 0; k < n; k++) {
            w[k] *= keep;
            m[k] += w1 * (g[k] - m[k]);  /* lerp with weight < 0.5, as torch's CPU kernel */
            v[k] = v[k] * b2 + w2 * g[k] * g[k];
            w[k] -= step_size * m[k] / (sqrtf(v[k]) / bc2_sqrt + eps);
        }
    }
    return 0;
}

#define CHUNK 65536
#define MAX_CHUNKS 4096

/* Sum of squares in double over fixed chunks, combined in order. */
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

int qb_cpu_grad_norm(qb_dev *d, float *norm, double *sumsq, const float *g, int64_t numel, const qb_segment *seg, int n_seg) {
    (void)d;
    (void)numel;
    double total = 0.0;
    for (int s = 0; s < n_seg; s++) {
        sumsq[s] = seg[s].flags & QB_SEG_GRAD ? sum_squares(g + seg[s].offset, seg[s].n) : 0.0;
        if (!(seg[s].flags & QB_SEG_GRAD)) continue;
        double pn = (double)(float)sqrt(sumsq[s]);
        total += pn * pn;
    }
    norm[0] = (float)sqrt(total);
    return 0;
}

int qb_cpu_grad_clip(qb_dev *d, float *gb, int64_t numel, const qb_segment *seg, int n_seg, const float *norm, double max_norm) {
    (void)d;
    (void)numel;
    float coef = (float)(max_norm / ((double)norm[0] + 1e-6));
    if (!(coef < 1.0f) && !isnan(coef)) return 0;
    for (int s = 0; s < n_seg; s++) {
        if (!(seg[s].flags & QB_SEG_GRAD)) continue;
        float *g = gb + seg[s].offset;
        int64_t n = seg[s].n;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t k = 0; k < n; k++) g[k] *= coef;
    }
    return 0;
}

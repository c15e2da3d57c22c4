/* op_dropout.c: inverted dropout from the counter-based RNG, forward and backward (CPU).
 * The mask is not stored: backward regenerates it from (seed, offset). saved: f[0] = p, i[0] = RNG offset. */
#include "autograd/op_internal.h"
#include "autograd/rng.h"
#include "autograd/simd_math.h"

static inline float keep_scale(uint32_t key, uint64_t counter, float p, float inv_keep) {
    return qb_rng_uniform32(key, counter) >= p ? inv_keep : 0.0f;
}

/* y[i] = x[i] * mask(offset + i): forward. */
QB_MULTIVERSION static void dropout_forward_cpu(float *restrict y, const float *restrict x, int64_t n, uint32_t key, uint64_t offset,
                                                float p, float inv_keep) {
#pragma omp parallel for simd schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * keep_scale(key, offset + (uint64_t)i, p, inv_keep);
}

/* g[i] = keep * g[i] + dy[i] * mask(offset + i): backward (g may be dy's own buffer, then keep is 0). */
QB_MULTIVERSION static void dropout_backward_cpu(float *g, const float *dy, float keep, int64_t n, uint32_t key, uint64_t offset,
                                                 float p, float inv_keep) {
#pragma omp parallel for simd schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++) g[i] = keep * g[i] + dy[i] * keep_scale(key, offset + (uint64_t)i, p, inv_keep);
}

static void dropout_backward(qb_ctx *ctx, qb_node *n) {
    bool overwrite;
    qb_tensor *dx = qb_grad_reuse(ctx, n->in[0], n->out, &overwrite);
    if (!dx) return;
    float keep = overwrite ? 0.0f : 1.0f;
    float p = n->f[0], inv_keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    uint64_t offset = (uint64_t)n->i[0];
    int64_t cnt = qb_numel(n->out);
    dropout_backward_cpu(dx->data, n->out->grad->data, keep, cnt, qb_rng_key32(ctx->seed), offset, p, inv_keep);
}

qb_tensor *qb_dropout(qb_ctx *ctx, qb_tensor *x, float p) {
    QB_OP_BEGIN(ctx, x);
    if (!(p >= 0.0f && p <= 1.0f)) return qb_errorf(&ctx->err, "dropout: probability %g is outside [0, 1]", p), NULL;
    if (!ctx->training || p == 0.0f) return x;
    QB_OP_CPU_ONLY(ctx, "dropout", x);
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new_like(ctx, x) : NULL;
    if (!y) return NULL;
    int64_t cnt = qb_numel(x);
    uint64_t offset = ctx->rng_counter;
    ctx->rng_counter += (uint64_t)cnt;
    float inv_keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    dropout_forward_cpu(y->data, x->data, cnt, qb_rng_key32(ctx->seed), offset, p, inv_keep);
    qb_node *n = qb_record(ctx, "dropout", dropout_backward, y, &x, 1);
    if (n) {
        n->f[0] = p;
        n->i[0] = (int64_t)offset;
    }
    return qb_ctx_failed(ctx) ? NULL : y;
}

/* op_activation.c: GELU (erf and tanh forms), tanh and ReLU, forward and backward (CPU). */
#include "autograd/op_internal.h"
#include "autograd/simd_math.h"

#define SQRT_2_OVER_PI 0.7978845608028654f
#define INV_SQRT_2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f
#define GELU_TANH_C 0.044715f

typedef enum { ACT_GELU, ACT_GELU_TANH, ACT_TANH, ACT_RELU } act_kind;

/* Forward over n elements; each kind is its own simple loop so the compiler vectorises it with libmvec. */
QB_MULTIVERSION static void act_forward_cpu(act_kind k, float *restrict y, const float *restrict x, int64_t n) {
    switch (k) {
    case ACT_GELU:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * INV_SQRT_2));
        break;
    case ACT_GELU_TANH:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + tanhf(SQRT_2_OVER_PI * (x[i] + GELU_TANH_C * x[i] * x[i] * x[i])));
        break;
    case ACT_TANH:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
        break;
    case ACT_RELU:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    }
}

/* dx = keep * dx + dy * act'(x), with y = act(x); keep is 0 when dx is dy's own buffer (overwrite) and 1 otherwise. */
QB_MULTIVERSION static void act_backward_cpu(act_kind k, float keep, float *dx, const float *dy, const float *restrict x,
                                             const float *restrict y, int64_t n) {
    switch (k) {
    case ACT_GELU:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (int64_t i = 0; i < n; i++)
            dx[i] = keep * dx[i] + dy[i] * (0.5f * (1.0f + erff(x[i] * INV_SQRT_2)) + x[i] * INV_SQRT_2PI * expf(-0.5f * x[i] * x[i]));
        break;
    case ACT_GELU_TANH:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (int64_t i = 0; i < n; i++) {
            float t = tanhf(SQRT_2_OVER_PI * (x[i] + GELU_TANH_C * x[i] * x[i] * x[i]));
            dx[i] = keep * dx[i] + dy[i] * (0.5f * (1.0f + t) + 0.5f * x[i] * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_TANH_C * x[i] * x[i]));
        }
        break;
    case ACT_TANH:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (int64_t i = 0; i < n; i++) dx[i] = keep * dx[i] + dy[i] * (1.0f - y[i] * y[i]);
        break;
    case ACT_RELU:
#pragma omp parallel for simd schedule(static) if (n > 16384)
        for (int64_t i = 0; i < n; i++) dx[i] = keep * dx[i] + (x[i] > 0.0f ? dy[i] : 0.0f);
        break;
    }
}

static void act_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *y = n->out;
    bool overwrite;
    qb_tensor *dx = qb_grad_reuse(ctx, x, y, &overwrite);
    if (!dx) return;
    act_backward_cpu((act_kind)n->i[0], overwrite ? 0.0f : 1.0f, dx->data, y->grad->data, x->data, y->data, qb_numel(x));
}

static qb_tensor *activation(qb_ctx *ctx, const char *op, act_kind k, qb_tensor *x) {
    QB_OP_BEGIN(ctx, x);
    QB_OP_CPU_ONLY(ctx, op, x);
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new_like(ctx, x) : NULL;
    if (!y) return NULL;
    int64_t cnt = qb_numel(x);
    act_forward_cpu(k, y->data, x->data, cnt);
    qb_node *n = qb_record(ctx, op, act_backward, y, &x, 1);
    if (n) n->i[0] = k;
    return qb_ctx_failed(ctx) ? NULL : y;
}

qb_tensor *qb_gelu(qb_ctx *ctx, qb_tensor *x) { return activation(ctx, "gelu", ACT_GELU, x); }
qb_tensor *qb_gelu_tanh(qb_ctx *ctx, qb_tensor *x) { return activation(ctx, "gelu_tanh", ACT_GELU_TANH, x); }
qb_tensor *qb_tanh(qb_ctx *ctx, qb_tensor *x) { return activation(ctx, "tanh", ACT_TANH, x); }
qb_tensor *qb_relu(qb_ctx *ctx, qb_tensor *x) { return activation(ctx, "relu", ACT_RELU, x); }

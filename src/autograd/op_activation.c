/* op_activation.c: GELU (erf and tanh forms), tanh and ReLU, forward and backward (CPU). */
#include <math.h>
#include "autograd/op_internal.h"

#define SQRT_2_OVER_PI 0.7978845608028654f
#define INV_SQRT_2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f
#define GELU_TANH_C 0.044715f

typedef enum { ACT_GELU, ACT_GELU_TANH, ACT_TANH, ACT_RELU } act_kind;

static inline float act_forward(act_kind k, float x) {
    switch (k) {
    case ACT_GELU: return 0.5f * x * (1.0f + erff(x * INV_SQRT_2));
    case ACT_GELU_TANH: return 0.5f * x * (1.0f + tanhf(SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x)));
    case ACT_TANH: return tanhf(x);
    case ACT_RELU: return x > 0.0f ? x : 0.0f;
    }
    return 0.0f;
}

/* d act / dx at input x with output y. */
static inline float act_derivative(act_kind k, float x, float y) {
    switch (k) {
    case ACT_GELU: return 0.5f * (1.0f + erff(x * INV_SQRT_2)) + x * INV_SQRT_2PI * expf(-0.5f * x * x);
    case ACT_GELU_TANH: {
        float t = tanhf(SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x));
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_TANH_C * x * x);
    }
    case ACT_TANH: return 1.0f - y * y;
    case ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    }
    return 0.0f;
}

static void act_backward(qb_ctx *ctx, qb_node *n) {
    qb_tensor *x = n->in[0], *y = n->out;
    qb_tensor *dx = qb_grad(ctx, x);
    if (!dx) return;
    act_kind k = (act_kind)n->i[0];
    int64_t cnt = qb_numel(x);
    const float *xp = x->data, *yp = y->data, *dy = y->grad->data;
    float *g = dx->data;
#pragma omp parallel for schedule(static) if (cnt > 16384)
    for (int64_t i = 0; i < cnt; i++) g[i] += dy[i] * act_derivative(k, xp[i], yp[i]);
}

static qb_tensor *activation(qb_ctx *ctx, const char *op, act_kind k, qb_tensor *x) {
    QB_OP_BEGIN(ctx, x);
    QB_OP_CPU_ONLY(ctx, op, x);
    x = qb_contiguous(ctx, x);
    qb_tensor *y = x ? qb_new_like(ctx, x) : NULL;
    if (!y) return NULL;
    int64_t cnt = qb_numel(x);
    const float *xp = x->data;
    float *yp = y->data;
#pragma omp parallel for schedule(static) if (cnt > 16384)
    for (int64_t i = 0; i < cnt; i++) yp[i] = act_forward(k, xp[i]);
    qb_node *n = qb_record(ctx, op, act_backward, y, &x, 1);
    if (n) n->i[0] = k;
    return qb_ctx_failed(ctx) ? NULL : y;
}

qb_tensor *qb_gelu(qb_ctx *ctx, qb_tensor *x) { return activation(ctx, "gelu", ACT_GELU, x); }
qb_tensor *qb_gelu_tanh(qb_ctx *ctx, qb_tensor *x) { return activation(ctx, "gelu_tanh", ACT_GELU_TANH, x); }
qb_tensor *qb_tanh(qb_ctx *ctx, qb_tensor *x) { return activation(ctx, "tanh", ACT_TANH, x); }
qb_tensor *qb_relu(qb_ctx *ctx, qb_tensor *x) { return activation(ctx, "relu", ACT_RELU, x); }

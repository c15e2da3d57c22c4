/* act_math.cuh: the activations' element functions on the GPU (GELU erf and tanh forms, tanh, ReLU) and their
 * derivatives, shared by activation.cu and the fused kernels of src/quant/cuda/fused.cu. Include after cuda_compat.h. */
#pragma once
#include "autograd/backend.h"

#define QB_SQRT_2_OVER_PI 0.7978845608028654f
#define QB_INV_SQRT_2 0.7071067811865476f
#define QB_INV_SQRT_2PI 0.3989422804014327f
#define QB_GELU_TANH_C 0.044715f

__device__ static inline float qb_act(qb_unary_kind k, float x) {
    switch (k) {
    case QB_UNARY_GELU: return 0.5f * x * (1.0f + erff(x * QB_INV_SQRT_2));
    case QB_UNARY_GELU_TANH: return 0.5f * x * (1.0f + tanhf(QB_SQRT_2_OVER_PI * (x + QB_GELU_TANH_C * x * x * x)));
    case QB_UNARY_TANH: return tanhf(x);
    default: return x > 0.0f ? x : 0.0f;
    }
}

/* act'(x) (tanh from y = tanh(x)) */
__device__ static inline float qb_act_grad(qb_unary_kind k, float x, float y) {
    switch (k) {
    case QB_UNARY_GELU: return 0.5f * (1.0f + erff(x * QB_INV_SQRT_2)) + x * QB_INV_SQRT_2PI * expf(-0.5f * x * x);
    case QB_UNARY_GELU_TANH: {
        float t = tanhf(QB_SQRT_2_OVER_PI * (x + QB_GELU_TANH_C * x * x * x));
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * QB_SQRT_2_OVER_PI * (1.0f + 3.0f * QB_GELU_TANH_C * x * x);
    }
    case QB_UNARY_TANH: return 1.0f - y * y;
    default: return x > 0.0f ? 1.0f : 0.0f;
    }
}

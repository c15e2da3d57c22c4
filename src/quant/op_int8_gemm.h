/* op_int8_gemm.h: the fake-quantized linear layer and matmul computed on integer codes: both inputs are outputs of
 * fake quantization (x = q_x / s_x per tensor, w = q_w / s_w[row] per row or per tensor), so the forward is
 * Y = (Q_x Q_w^T) / (s_x s_w[row]) (+ bias) with int8 inputs and an exact int32 sum (cuBLASLt IMMA on CUDA, oneDNN's s8
 * matmul or a loop on the CPU), dequantized in float64 and rounded once. The backward is the fp32 op's (linear,
 * matmul) on the same fake-quantized tensors: the same gradients, through the straight-through estimator of the fake
 * quantization ops that made them. */
#pragma once
#include "autograd/autograd.h"
#include "quant/quant_desc.h"

/* True when codes of quantizer descriptor d fit int8 (signed, at most 8 bits). */
bool qb_int8_gemm_supported(const quant_desc *d);
/* y = x @ w^T + bias as qb_linear, for x fake-quantized with x_desc and amax x_amax (one value, host) and w [out, in]
 * with w_desc and w_amax [n_w_amax] (host; 1 or out values). */
qb_tensor *qb_linear_int8(qb_ctx *ctx, qb_tensor *x, const float *x_amax, const quant_desc *x_desc, qb_tensor *w, const float *w_amax,
                          int64_t n_w_amax, const quant_desc *w_desc, qb_tensor *bias);
/* a @ op(b) as qb_matmul (no transpose of a; b with a's batch dims or 2-d shared), both fake-quantized per tensor with
 * the given descriptors and host amax values. */
qb_tensor *qb_matmul_int8(qb_ctx *ctx, qb_tensor *a, float a_amax, const quant_desc *a_desc, qb_tensor *b, float b_amax,
                          const quant_desc *b_desc, bool trans_b);

/* op_fused.h: fused ops: a producer and the per-tensor fake quant of its output in one kernel pass, forward and
 * backward, on the context's device (kernels: the quant table, cpu/fused.c, cuda/fused.cu). Each equals the unfused
 * composition of autograd's ops and qb_fake_quant bit for bit on the CPU; the STE masks are recomputed in the backward
 * from the saved input and amax, never stored. */
#pragma once
#include "autograd/autograd.h"
#include "quant/quant_desc.h"

/* A per-tensor fake quant inside a fused op: one amax (>= 0, host) and a signed descriptor. */
typedef struct qb_fq_spec {
    float amax;
    const quant_desc *desc;
} qb_fq_spec;

/* fake_quant(dropout(softmax(x * scale + mask), p)): the attention probabilities as P @ V reads them (dropout as
 * qb_dropout: only when ctx->training and p > 0). Saves the probabilities, not the dropout output or the mask. */
qb_tensor *qb_softmax_dropout_fq(qb_ctx *ctx, qb_tensor *x, float scale, qb_tensor *mask, float p, const qb_fq_spec *fq);
/* fake_quant(act(x)) for act GELU (erf, tanh form), tanh or ReLU; act(x) is not stored (the backward recomputes it). */
qb_tensor *qb_act_fq(qb_ctx *ctx, qb_unary_kind act, qb_tensor *x, const qb_fq_spec *fq);
/* qb_act_fq with its output in the recompute buffer (qb_new_recomputed): not kept for the backward either; the reader
 * of it there (the next linear's weight gradient) recomputes it from x (train.recompute_activation). */
qb_tensor *qb_act_fq_recomputed(qb_ctx *ctx, qb_unary_kind act, qb_tensor *x, const qb_fq_spec *fq);
/* layernorm(fake_quant(a, fa) + fake_quant(r, fr)) over the last dim (a, r [..., H], gamma/beta [H] or NULL): QDQBERT's
 * residual block. When fy and yq are given, *yq = fake_quant(y, fy) from the same pass, recorded as its own fake-quant
 * node (the input quantizer of y's next consumer). Saves the sum s, mean and rstd. */
qb_tensor *qb_add_fq_layernorm(qb_ctx *ctx, qb_tensor *a, qb_tensor *r, qb_tensor *gamma, qb_tensor *beta, float eps, const qb_fq_spec *fa,
                               const qb_fq_spec *fr, const qb_fq_spec *fy, qb_tensor **yq);

/* op_internal.h: helpers shared by the op shells (not part of the public API). An op is a shell: checks, output
 * and saved buffers, recording, then its kernels through the context's table (QB_KERNEL). */
#pragma once
#include <stdio.h>
#include "autograd/graph.h"
#include "autograd/ops.h"

/* Returns NULL from an op when an input is missing (an earlier op failed) or the context holds an error. */
#define QB_OP_BEGIN(ctx, ...)                                                        \
    do {                                                                             \
        qb_tensor *qb_in_[] = {__VA_ARGS__};                                         \
        if (qb_ctx_failed(ctx)) return NULL;                                         \
        for (size_t qb_k_ = 0; qb_k_ < sizeof qb_in_ / sizeof qb_in_[0]; qb_k_++)    \
            if (!qb_in_[qb_k_]) {                                                    \
                qb_errorf(&(ctx)->err, "%s: input %zu is NULL", __func__, qb_k_);   \
                return NULL;                                                         \
            }                                                                        \
    } while (0)

/* Returns NULL from op `opname` unless every given input (NULL ones, i.e. absent optional inputs, skipped) is on the
 * context's device. */
#define QB_OP_DEVICES(ctx, opname, ...)                                                                  \
    do {                                                                                                 \
        qb_tensor *qb_dv_[] = {__VA_ARGS__};                                                             \
        if (qb_op_check_devices(ctx, opname, qb_dv_, (int)(sizeof qb_dv_ / sizeof qb_dv_[0]))) return NULL; \
    } while (0)

/* Formats two shapes for messages. */
#define QB_SHAPES(a, b) qb_shape_str(a, qb_sa_, sizeof qb_sa_), qb_shape_str(b, qb_sb_, sizeof qb_sb_)
#define QB_SHAPE_BUFS char qb_sa_[96], qb_sb_[96]; (void)qb_sa_; (void)qb_sb_

/* A new tensor on the context device with x's shape. */
static inline qb_tensor *qb_new_like(qb_ctx *ctx, const qb_tensor *x) { return qb_new(ctx, x->ndim, x->shape); }

/* 0 when every non-NULL in[i] is on ctx's device; else an error naming op and the devices. */
int qb_op_check_devices(qb_ctx *ctx, const char *op, qb_tensor *const *in, int n);

/* The softmax kernels' 4-dim shape of x (leading 1s) and the mask's strides against it (0 where it broadcasts; all 0
 * without a mask); 0, or -1 with an error naming op when x or the mask does not fit. */
int qb_softmax_mask_layout(qb_ctx *ctx, const char *op, const qb_tensor *x, const qb_tensor *mask, int64_t sh[4], int64_t mst[4]);
/* The backward of matmul (saved i[0] trans_a, i[1] trans_b, i[2] batch count, i[3] B shared) and of linear (inputs x,
 * w, bias), for ops that compute the same forward another way (quant/op_int8_gemm.c) and share its gradients. */
void qb_matmul_backward(qb_ctx *ctx, qb_node *n);
void qb_linear_backward(qb_ctx *ctx, qb_node *n);

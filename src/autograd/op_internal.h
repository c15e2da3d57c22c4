/* op_internal.h: helpers shared by the op implementations (not part of the public API). */
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

/* Fails an op whose inputs are on a device it has no kernel for. */
#define QB_OP_CPU_ONLY(ctx, opname, t)                                                                 \
    do {                                                                                               \
        if ((t)->device != QB_CPU) {                                                                   \
            qb_errorf(&(ctx)->err, "%s: no %s kernel yet", opname, qb_device_name((t)->device));       \
            return NULL;                                                                               \
        }                                                                                              \
    } while (0)

/* Formats two shapes for messages. */
#define QB_SHAPES(a, b) qb_shape_str(a, qb_sa_, sizeof qb_sa_), qb_shape_str(b, qb_sb_, sizeof qb_sb_)
#define QB_SHAPE_BUFS char qb_sa_[96], qb_sb_[96]; (void)qb_sa_; (void)qb_sb_

/* A new tensor on the context device with x's shape. */
static inline qb_tensor *qb_new_like(qb_ctx *ctx, const qb_tensor *x) { return qb_new(ctx, x->ndim, x->shape); }

/* dst[i] += src[i] for i < n. */
void qb_accumulate(float *dst, const float *src, int64_t n);
/* dst[i] += alpha * src[i] for i < n. */
void qb_accumulate_scaled(float *dst, const float *src, float alpha, int64_t n);
/* Adds a contiguous src of the given shape into dst laid out with dst_stride (elements). */
void qb_strided_accumulate(float *dst, const int64_t *dst_stride, const float *src, int ndim, const int64_t *shape);
/* Row-major sgemm: C = alpha * op(A) op(B) + beta * C. */
void qb_gemm_cpu(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* graph.h: the tape of recorded ops and reverse-mode differentiation over it. */
#pragma once
#include <stdio.h>
#include "autograd/tensor.h"

#define QB_NODE_MAX_IN 4

typedef void (*qb_backward_fn)(qb_ctx *ctx, qb_node *n);

struct qb_node {
    const char *op;                 /* op name, for messages */
    qb_backward_fn backward;        /* adds d(loss)/d(in[i]) into in[i]->grad for inputs that need it */
    qb_tensor *out;
    qb_tensor *in[QB_NODE_MAX_IN];
    int n_in;
    void *saved[2];                 /* op-specific buffers kept for backward (step memory) */
    float f[4];                     /* op-specific scalars */
    int64_t i[8];                   /* op-specific integers */
    qb_backward_fn recompute;       /* rewrites out->data from the saved inputs (an output made by qb_new_recomputed) */
};

/* True when an op on these inputs must be recorded (grad mode on and some input requires grad). */
bool qb_needs_grad(const qb_ctx *ctx, qb_tensor *const *in, int n_in);
/* Records an op producing `out`; marks out->requires_grad. Returns the node, or NULL on error. */
qb_node *qb_record(qb_ctx *ctx, const char *op, qb_backward_fn backward, qb_tensor *out,
                   qb_tensor *const *in, int n_in);
/* The gradient buffer of t, allocated as zeros on first use (a parameter's marked zero is written first). */
qb_tensor *qb_grad(qb_ctx *ctx, qb_tensor *t);
/* The gradient of t for a backward that writes every element of it: when t has none yet it is allocated without
 * zeroing and *fresh is set (the caller then writes, e.g. sgemm with beta 0); else the existing one, to add into. A
 * parameter's gradient marked zero (qb_zero_grad) counts as none: *fresh, and it is no longer marked; so does that of
 * t->grad_alias while marked when t's producer is its only consumer on the tape: it is then t's gradient as well. */
qb_tensor *qb_grad_for_write(qb_ctx *ctx, qb_tensor *t, bool *fresh);
/* The gradient of `in` for a backward that computes it element for element from out->grad. When `in` has no
 * gradient yet, is not a parameter, and out's gradient has as many elements and was not handed on before, out's
 * gradient buffer becomes in's (no allocation) and *overwrite is set: the caller then writes, not adds, each element,
 * reading out->grad at the same index first. Otherwise returns qb_grad(ctx, in) and *overwrite is false.
 * Consequence: gradients of intermediate activations are not kept after backward (those of leaves and parameters are). */
qb_tensor *qb_grad_reuse(qb_ctx *ctx, qb_tensor *in, qb_tensor *out, bool *overwrite);
/* Starts collecting per-op forward/backward times (clears earlier ones). */
void qb_profile_start(qb_ctx *ctx);
/* Prints the collected times, largest first, with each op's share, and stops collecting. */
void qb_profile_report(qb_ctx *ctx, FILE *out);
/* Backpropagates from a scalar loss (seed gradient 1); at the end, parameter gradients still marked zero are written. */
int qb_backward(qb_ctx *ctx, qb_tensor *loss);
/* Backpropagates from any tensor with a given upstream gradient (same shape, contiguous host data). */
int qb_backward_with_grad(qb_ctx *ctx, qb_tensor *out, const float *host_grad);

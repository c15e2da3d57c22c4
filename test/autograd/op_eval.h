/* op_eval.h: runs one op case from host inputs: forward, and optionally backward from an upstream gradient. */
#pragma once
#include "op_cases.h"

typedef struct op_eval_result {
    float *out;                        /* malloc'd, numel(out) floats */
    int64_t out_n;
    int out_ndim;
    int64_t out_shape[4];
    float *grads[OP_CASE_MAX_IN];      /* malloc'd input gradients (NULL for non-differentiable inputs) */
} op_eval_result;

/* Evaluates case c on host inputs; when upstream is not NULL, backpropagates it. Returns 0, or -1 with ctx->err set. */
int op_eval(qb_ctx *ctx, const op_case *c, float *const *host_in, const op_case_aux *aux, const float *upstream,
            op_eval_result *r);
/* Frees the buffers of a result. */
void op_eval_result_free(op_eval_result *r);
/* numel of input i of case c. */
int64_t op_case_numel(const op_case *c, int i);
/* Fills the inputs of case c (buffers of op_case_numel floats) with N(0, 1) values from seed, kept away from kinks for
 * kinked cases; a mask or bce targets for non-differentiable inputs. */
void op_case_fill_inputs(const op_case *c, float **in, uint64_t seed);

/* op_cases.h: one table of op cases shared by the gradient-check and the PyTorch-fixture tests. */
#pragma once
#include "autograd/autograd.h"

#define OP_CASE_MAX_IN 3

typedef struct op_case_aux {
    const int32_t *ints;  /* ids or labels, when the op takes them */
    int64_t n_ints;
    int ints_ndim;
    int64_t ints_shape[3];
} op_case_aux;

typedef struct op_case {
    const char *name;
    int n_in;
    int ndim[OP_CASE_MAX_IN];
    int64_t shape[OP_CASE_MAX_IN][4];
    bool differentiable[OP_CASE_MAX_IN];  /* inputs whose gradient the op defines */
    qb_tensor *(*forward)(qb_ctx *ctx, qb_tensor **in, const op_case_aux *aux);
    bool training;                        /* run with ctx->training (dropout) */
    bool kinked;                          /* non-smooth at 0 (relu): keep inputs away from kinks */
} op_case;

extern const op_case op_cases[];
extern const int n_op_cases;

/* Finds a case by name, or NULL. */
const op_case *op_case_find(const char *name);
/* Default ints for a case that needs them (gradient check), else aux with no ints. */
op_case_aux op_case_default_aux(const op_case *c);

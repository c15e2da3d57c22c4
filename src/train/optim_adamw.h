/* optim_adamw.h: AdamW with decoupled weight decay and bias correction, as torch.optim.AdamW, in one pass over the
 * packed parameter, gradient and moment blocks on the context's device. */
#pragma once
#include "autograd/tensor.h"

typedef struct qb_adamw {
    double beta1, beta2, eps, weight_decay;  /* as given (Python floats in torch): 1 - beta is formed in double */
    int64_t step;        /* steps taken */
    int n;               /* number of parameters */
    float *m, *v;        /* first and second moments: one block each (device memory, the parameter block's layout) */
    int64_t numel;       /* floats in each block */
    bool *decay;         /* [n] weight decay applies to parameter i */
    qb_seg_table seg;    /* the parameters' segments with QB_SEG_DECAY */
    const qb_kernels *k; /* the context's device (memory of m, v, seg) */
    qb_dev *dev;
} qb_adamw;

/* Creates the optimizer state for every parameter of ctx (packing them first when needed); parameters whose name
 * matches a no-decay suffix ("bias", "LayerNorm.weight", "LayerNorm.bias", as HF's Trainer) get no weight decay. */
int qb_adamw_init(qb_adamw *opt, qb_ctx *ctx, double beta1, double beta2, double eps, double weight_decay, qb_err *err);
/* One update of every parameter that requires grad from its gradient with learning rate lr; errors go to ctx->err
 * (parameters added since init are one). */
int qb_adamw_step(qb_adamw *opt, qb_ctx *ctx, float lr);
/* The moments of parameter i (its segment in the blocks): device pointers, n = the parameter's numel. */
float *qb_adamw_moment(const qb_adamw *opt, int i, bool second);
/* Frees the state. */
void qb_adamw_free(qb_adamw *opt);

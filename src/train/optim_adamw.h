/* optim_adamw.h: AdamW with decoupled weight decay and bias correction, as torch.optim.AdamW. */
#pragma once
#include "autograd/tensor.h"

typedef struct qb_adamw {
    double beta1, beta2, eps, weight_decay;  /* as given (Python floats in torch): 1 - beta is formed in double */
    int64_t step;        /* steps taken */
    int n;               /* number of parameters */
    float **m, **v;      /* first and second moments, one buffer per parameter (host) */
    bool *decay;         /* weight decay applies to this parameter */
} qb_adamw;

/* Creates the optimizer state for every parameter of ctx; parameters whose name matches a no-decay suffix
 * ("bias", "LayerNorm.weight", "LayerNorm.bias", as HF's Trainer) get no weight decay. */
int qb_adamw_init(qb_adamw *opt, qb_ctx *ctx, double beta1, double beta2, double eps, double weight_decay, qb_err *err);
/* One update of every parameter from its gradient with learning rate lr. */
void qb_adamw_step(qb_adamw *opt, qb_ctx *ctx, float lr);
/* Frees the state. */
void qb_adamw_free(qb_adamw *opt);

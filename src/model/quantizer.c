/* quantizer.c: see quantizer.h. */
#include "model/quantizer.h"
#include "quant/op_fake_quant.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

qb_tensor *qb_quantizer_apply(qb_ctx *ctx, qb_quantizer *q, qb_tensor *x) {
    if (!q->enabled || !x) return x;
    if (!q->amax) return qb_errorf(&ctx->err, "%s: enabled but has no amax (calibrate or load one)", q->name), NULL;
    quant_desc d = quant_desc_default();  /* int8, [-128, 127], s = 127/amax */
    d.axis = q->per_channel && q->n_amax > 1 ? 0 : -1;
    return qb_fake_quant(ctx, x, q->amax, q->n_amax, &d);
}

qb_tensor *qb_quant_hook_default(qb_ctx *ctx, qb_quantizer *q, qb_tensor *x, void *user) {
    (void)user;
    return qb_quantizer_apply(ctx, q, x);
}

int qb_quantizer_set_amax(qb_quantizer *q, const float *amax, int64_t n, qb_err *err) {
    if (n != q->n_amax) return qb_errorf(err, "%s: %ld amax values given, want %ld", q->name, (long)n, (long)q->n_amax);
    if (!q->amax) {
        q->amax = malloc((size_t)n * sizeof(float));
        if (!q->amax) return qb_errorf(err, "%s: out of memory", q->name);
    }
    memcpy(q->amax, amax, (size_t)n * sizeof(float));
    return 0;
}

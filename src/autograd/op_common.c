/* op_common.c: see op_internal.h. */
#include "autograd/op_internal.h"

int qb_op_check_devices(qb_ctx *ctx, const char *op, qb_tensor *const *in, int n) {
    const qb_tensor *first = NULL;
    for (int i = 0; i < n; i++) {
        if (!in[i]) continue;
        if (!first) first = in[i];
        if (in[i]->device != first->device)
            return qb_errorf(&ctx->err, "%s: inputs on %s and %s (an op takes all its inputs on one device)", op,
                             qb_device_name(first->device), qb_device_name(in[i]->device));
    }
    if (first && first->device != ctx->device)
        return qb_errorf(&ctx->err, "%s: inputs on %s but the context on %s", op, qb_device_name(first->device),
                         qb_device_name(ctx->device));
    return 0;
}

/* test_cuda_backend.c: the CUDA backend links and initialises (cudart, cuBLAS, cuBLASLt); on a machine without a
 * GPU it reports why and exits 77 (SKIP). With a GPU: context creation, a fill and a device→host copy round trip. */
#include <stdio.h>
#include <string.h>
#include "autograd/autograd.h"
#include "autograd/cuda/backend.h"
#include "check.h"

int main(void) {
    qb_check chk = {0};
    char info[256];
    qb_cuda_describe(info, sizeof info);
    printf("%s\n", info);
    if (qb_cuda_device_count() == 0) {
        qb_check_skip(&chk, "cuda backend", "no CUDA device visible on this machine");
        return qb_check_finish(&chk, "cuda backend");
    }
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CUDA, 3, &err);
    if (!CHECK(&chk, ctx != NULL, "cuda context: %s", err.msg)) return qb_check_finish(&chk, "cuda backend");
    qb_tensor *t = qb_new(ctx, 2, (int64_t[]){64, 33});
    CHECK(&chk, t && t->device == QB_CUDA, "tensor on the device");
    float host[64 * 33], want[64 * 33];
    for (int i = 0; i < 64 * 33; i++) want[i] = 2.5f;
    CHECK(&chk, qb_fill(ctx, t, 2.5f) == 0 && qb_to_host(ctx, t, host) == 0, "fill and copy back: %s", ctx->err.msg);
    qb_check_close(&chk, "device fill round trip", host, want, 64 * 33, 0, 0);
    for (int i = 0; i < 64 * 33; i++) want[i] = (float)i;
    CHECK(&chk, qb_copy_from_host(ctx, t, want) == 0 && qb_to_host(ctx, t, host) == 0, "host->device->host");
    qb_check_close(&chk, "host round trip", host, want, 64 * 33, 0, 0);
    qb_ctx_free(ctx);
    return qb_check_finish(&chk, "cuda backend");
}

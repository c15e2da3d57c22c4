/* test_cuda_backend.c: the CUDA backend links and initialises (cudart, cuBLAS, cuBLASLt); on a machine without a
 * GPU it reports why and exits 77 (SKIP). With a GPU: context creation with the cuda table, a fill and copy round
 * trips, parameters packed on the device (padding zero), the uniform error of a missing kernel, and a CUDA failure
 * whose message carries cudaGetErrorString. */
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
    CHECK(&chk, ctx->k == &qb_cuda_kernels && ctx->dev != NULL, "a cuda context takes the cuda table");
    qb_tensor *p = qb_param_new(ctx, "p", 1, (int64_t[]){5}), *q = qb_param_new(ctx, "q", 1, (int64_t[]){3});
    float pv[5] = {1, 2, 3, 4, 5}, block[32];
    CHECK(&chk, p && q && qb_copy_from_host(ctx, p, pv) == 0 && qb_fill(ctx, q, 7.0f) == 0 && qb_params_pack(ctx) == 0 &&
                    qb_download(ctx, block, ctx->params.block_data, sizeof block) == 0,
          "parameters packed on the device: %s", ctx->err.msg);
    int bad = 0;
    for (int i = 0; i < 32; i++) bad += block[i] != (i < 5 ? pv[i] : i >= 16 && i < 19 ? 7.0f : 0.0f);
    CHECK(&chk, bad == 0, "packed block: values kept, padding zero (%d wrong)", bad);
    qb_kernels partial = qb_cuda_kernels; /* the cuda table less one entry, on the same device state */
    partial.layernorm = NULL;
    qb_ctx *pctx = qb_ctx_new_on(&partial, ctx->dev, QB_CUDA, 3, &err);
    qb_tensor *x = pctx ? qb_zeros(pctx, 2, (int64_t[]){4, 8}) : NULL;
    CHECK(&chk, x && qb_layernorm(pctx, x, NULL, NULL, 1e-5f) == NULL && strstr(pctx->err.msg, "layernorm: no cuda kernel"),
          "an op without a cuda kernel: %s", pctx ? pctx->err.msg : err.msg);
    qb_ctx_free(pctx);
    qb_ctx_step_reset(ctx);
    CHECK(&chk, qb_device_alloc(ctx, (size_t)1 << 52) == NULL && strstr(ctx->err.msg, "out of cuda memory") && strstr(ctx->err.msg, "bytes: out of memory"),
          "a failed cudaMalloc names the CUDA error: %s", ctx->err.msg);
    qb_ctx_free(ctx);
    return qb_check_finish(&chk, "cuda backend");
}

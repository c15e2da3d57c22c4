/* bench_int8_gemm.c: the forward GEMM of a fake-quantized linear layer two ways on one device: the fp32 path
 * (qb_linear on the fake-quantized x and W, in the context's precision) and quant.int8_gemm's (qb_linear_int8: codes,
 * an exact int32 product, dequantization), on BERT-base's shapes (rows = batch x seq tokens). Median of N after a
 * warm-up, no gradients; each timing ends with a read of the output (the device's work included).
 * Run: OMP_NUM_THREADS=2 ./build/bench/bench_int8_gemm [--device cpu|cuda] [--precision fp32|tf32|bf16] [--rows 1024]
 *      [--steps 5] [--hidden 768] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench_util.h"
#include "quant/op_int8_gemm.h"
#include "quant/quant.h"


static void die(qb_ctx *ctx) {
    fprintf(stderr, "bench_int8_gemm: %s\n", ctx->err.msg);
    exit(1);
}

int main(int argc, char **argv) {
    const char *device = "cpu", *precision = "fp32";
    int rows = 1024, steps = 5, hidden = 768;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--device")) device = argv[i + 1];
        else if (!strcmp(argv[i], "--precision")) precision = argv[i + 1];
        else if (!strcmp(argv[i], "--rows")) rows = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--hidden")) hidden = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_int8_gemm [--device cpu|cuda] [--precision fp32|tf32|bf16] [--rows R] [--steps N] [--hidden H]\n");
            return 2;
        }
    }
    if (rows < 1 || steps < 1 || steps > 100 || hidden < 1)
        return fprintf(stderr, "bench_int8_gemm: need rows >= 1, steps in [1, 100], hidden >= 1\n"), 2;
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(!strcmp(device, "cuda") ? QB_CUDA : QB_CPU, 1, &err);
    if (!ctx) return fprintf(stderr, "bench_int8_gemm: %s\n", err.msg), 1;
    qb_precision prec;
    if (qb_precision_parse(precision, &prec) || qb_ctx_set_precision(ctx, prec)) return fprintf(stderr, "bench_int8_gemm: precision %s\n", precision), 2;
    ctx->no_grad = true;
    const quant_desc d = quant_desc_default();
    quant_desc dw = d;
    dw.axis = 0;
    const int64_t H = hidden, shapes[][2] = {{H, H}, {4 * H, H}, {H, 4 * H}}; /* [out, in]: q/k/v/attention output, intermediate, output */
    printf("device %s, precision %s, rows %d, median of %d\n", device, precision, rows, steps);
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        const int64_t out = shapes[c][0], in = shapes[c][1], xs[2] = {rows, in}, ws[2] = {out, in};
        float *xh = malloc((size_t)(rows * in) * sizeof(float)), *wh = malloc((size_t)(out * in) * sizeof(float));
        float *wa = malloc((size_t)out * sizeof(float)), xa = 4.0f, probe;
        for (int64_t i = 0; i < rows * in; i++) xh[i] = (float)((i * 7919) % 2001 - 1000) * 0.004f;
        for (int64_t i = 0; i < out * in; i++) wh[i] = (float)((i * 104729) % 2001 - 1000) * 0.0001f;
        for (int64_t o = 0; o < out; o++) wa[o] = 0.1f;
        double t[2][100];
        for (int s = -1; s < steps; s++)
            for (int v = 0; v < 2; v++) {
                if (qb_ctx_step_reset(ctx)) die(ctx);
                qb_tensor *x = qb_from_host(ctx, 2, xs, xh), *w = qb_from_host(ctx, 2, ws, wh);
                qb_tensor *xq = qb_fake_quant(ctx, x, &xa, 1, &d), *wq = qb_fake_quant(ctx, w, wa, out, &dw);
                if (!xq || !wq || qb_download(ctx, &probe, xq->data, sizeof probe)) die(ctx); /* the inputs are ready */
                const double t0 = bench_now();
                qb_tensor *y = v ? qb_linear_int8(ctx, xq, &xa, &d, wq, wa, out, &dw, NULL) : qb_linear(ctx, xq, wq, NULL);
                if (!y || qb_download(ctx, &probe, y->data, sizeof probe)) die(ctx);
                if (s >= 0) t[v][s] = bench_now() - t0;
            }
        double med[2];
        for (int v = 0; v < 2; v++) med[v] = bench_median(t[v], steps);
        const double flops = 2.0 * rows * (double)in * out;
        printf("linear [%d, %lld] x [%lld, %lld]^T: fp32 fake-quant GEMM %.3f ms (%.1f GFLOP/s), int8 codes + GEMM + dequant %.3f ms (%.1f "
               "GOP/s): int8 %.2fx the fp32 path's speed\n",
               rows, (long long)in, (long long)out, (long long)in, 1e3 * med[0], flops / med[0] * 1e-9, 1e3 * med[1], flops / med[1] * 1e-9,
               med[0] / med[1]);
        free(xh), free(wh), free(wa);
    }
    qb_ctx_free(ctx);
    return 0;
}

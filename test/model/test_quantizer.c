/* test_quantizer.c: the quantization point's fake quant (s = 127/amax, ties to even, [-128, 127], zero range) and its
 * clipped straight-through gradient, per tensor and per row; disabled quantizers pass x through. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "model/quantizer.h"

int main(void) {
    qb_check c = {0};
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    if (!CHECK(&c, ctx != NULL, "%s", err.msg)) return qb_check_finish(&c, "model quantizer");

    /* per tensor, amax 127: s = 1, so y = clamp(rint(x), -128, 127) */
    qb_quantizer q = {.name = "t._input_quantizer", .enabled = true, .n_amax = 1};
    float amax = 127.0f;
    CHECK(&c, qb_quantizer_set_amax(&q, &amax, 1, &err) == 0, "%s", err.msg);
    float x[8] = {0.5f, 1.5f, 2.5f, -2.5f, 127.0f, 127.4f, -130.0f, 300.0f};
    float want[8] = {0.0f, 2.0f, 2.0f, -2.0f, 127.0f, 127.0f, -128.0f, 127.0f};
    int64_t shape[1] = {8};
    qb_tensor *xt = qb_from_host(ctx, 1, shape, x);
    xt->requires_grad = true;
    qb_tensor *y = qb_quantizer_apply(ctx, &q, xt);
    float got[8];
    if (CHECK(&c, y && qb_to_host(ctx, y, got) == 0, "apply: %s", ctx->err.msg)) qb_check_close(&c, "per tensor, ties to even, clamp", got, want, 8, 0, 0);
    /* STE: gradient where |x| <= amax (127.0 included, 127.4 and beyond clipped) */
    float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1}, gwant[8] = {1, 1, 1, 1, 1, 0, 0, 0};
    if (CHECK(&c, y && qb_backward_with_grad(ctx, y, ones) == 0 && xt->grad, "backward: %s", ctx->err.msg))
        qb_check_close(&c, "clipped straight-through gradient", xt->grad->data, gwant, 8, 0, 0);

    /* per row with a zero-range row; dequantized by dividing by s */
    qb_ctx_step_reset(ctx);
    qb_quantizer w = {.name = "t._weight_quantizer", .enabled = true, .per_channel = true, .n_amax = 2};
    float wa[2] = {0.3f, 0.0f}, wx[6] = {0.1f, -0.31f, 0.2f, 1.0f, -1.0f, 0.0f};
    CHECK(&c, qb_quantizer_set_amax(&w, wa, 2, &err) == 0, "%s", err.msg);
    int64_t wshape[2] = {2, 3};
    y = qb_quantizer_apply(ctx, &w, qb_from_host(ctx, 2, wshape, wx));
    float s = 127.0f / 0.3f, wwant[6] = {rintf(0.1f * s) / s, -128.0f / s, rintf(0.2f * s) / s, 0, 0, 0};
    if (CHECK(&c, y && qb_to_host(ctx, y, got) == 0, "per row: %s", ctx->err.msg)) qb_check_close(&c, "per row, zero range row", got, wwant, 6, 0, 0);
    CHECK(&c, qb_quantizer_set_amax(&w, wa, 1, &err) != 0 && strstr(err.msg, "t._weight_quantizer: 1 amax values given, want 2"), "count: %s", err.msg);

    /* disabled: x itself; enabled without amax: an error naming the quantizer */
    qb_ctx_step_reset(ctx);
    qb_tensor *x2 = qb_from_host(ctx, 1, shape, x);
    q.enabled = false;
    CHECK(&c, qb_quantizer_apply(ctx, &q, x2) == x2, "disabled passes through");
    qb_quantizer none = {.name = "t.matmul_a_input_quantizer", .enabled = true, .n_amax = 1};
    CHECK(&c, qb_quantizer_apply(ctx, &none, x2) == NULL && strstr(ctx->err.msg, "t.matmul_a_input_quantizer: enabled but has no amax"),
          "no amax: %s", ctx->err.msg);
    free(q.amax);
    free(w.amax);
    qb_ctx_free(ctx);
    return qb_check_finish(&c, "model quantizer");
}

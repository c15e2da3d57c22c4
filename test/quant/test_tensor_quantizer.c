/* test_tensor_quantizer.c: the TensorQuantizer flow (calibrate, load amax, fake quantize), switches, dynamic
 * amax, and its errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "quant/quant.h"

static void fill(float *x, int64_t n, float scale, uint64_t seed) {
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = ((float)((seed >> 40) & 0xFFFFFF) / 16777216.0f - 0.5f) * 2.0f * scale;
    }
}

static void flow(qb_check *c, calib_method method) {
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    quant_desc d = quant_desc_default();
    d.calib = method;
    tensor_quantizer q;
    CHECK(c, tensor_quantizer_init(&q, "encoder.layer.0.output.dense._input_quantizer", &d, &err) == 0, "init");
    tensor_quantizer_disable_quant(&q);
    tensor_quantizer_enable_calib(&q);
    int64_t shape[3] = {2, 8, 16};
    float xh[256];
    float maxabs = 0.0f;
    for (int b = 0; b < 3; b++) {
        fill(xh, 256, 1.0f + (float)b, 11 + b);
        for (int i = 0; i < 256; i++) maxabs = fmaxf(maxabs, fabsf(xh[i]));
        qb_tensor *x = qb_from_host(ctx, 3, shape, xh);
        qb_tensor *y = tensor_quantizer_forward(ctx, &q, x);
        CHECK(c, y == x, "calibration pass returns the input unchanged (%s)", ctx->err.msg);
    }
    CHECK(c, tensor_quantizer_load_calib_amax(&q, HIST_AMAX_PERCENTILE, 99.99, &err) == 0 && q.n_amax == 1,
          "load_calib_amax: %s", err.msg);
    if (method == CALIB_MAX) CHECK(c, q.amax[0] == maxabs, "max calibration gives max|x| (%g vs %g)", q.amax[0], maxabs);
    else CHECK(c, q.amax[0] > 0.5f * maxabs && q.amax[0] <= maxabs, "percentile amax %g of max %g", q.amax[0], maxabs);
    tensor_quantizer_disable_calib(&q);
    tensor_quantizer_enable_quant(&q);
    qb_tensor *x = qb_from_host(ctx, 3, shape, xh);
    qb_tensor *y = tensor_quantizer_forward(ctx, &q, x);
    float want[256];
    fake_quant_per_tensor(want, xh, 256, q.amax[0], &d);
    CHECK(c, y && !memcmp(y->data, want, sizeof want), "quantized forward uses the loaded amax");
    tensor_quantizer_disable(&q);
    CHECK(c, tensor_quantizer_forward(ctx, &q, x) == x, "disabled quantizer is the identity");
    tensor_quantizer_free(&q);
    qb_ctx_free(ctx);
}

static void per_channel_weight(qb_check *c) {
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    quant_defaults defs;
    quant_defaults_init(&defs);
    tensor_quantizer q;
    tensor_quantizer_init(&q, "query._weight_quantizer", &defs.kind[QUANT_KIND_LINEAR_WEIGHT], &err);
    int64_t shape[2] = {4, 32};
    float w[128], rowmax[4] = {0};
    for (int r = 0; r < 4; r++) {
        fill(w + r * 32, 32, powf(10.0f, (float)r - 2.0f), 5 + r);
        for (int i = 0; i < 32; i++) rowmax[r] = fmaxf(rowmax[r], fabsf(w[r * 32 + i]));
    }
    qb_tensor *x = qb_from_host(ctx, 2, shape, w);
    qb_tensor *dyn = tensor_quantizer_forward(ctx, &q, x);
    float want[128];
    fake_quant_per_channel(want, w, 1, 4, 32, rowmax, &q.desc);
    CHECK(c, dyn && !memcmp(dyn->data, want, sizeof want), "no amax loaded: dynamic per-row max|W| (as the reference)");
    tensor_quantizer_enable_calib(&q);
    tensor_quantizer_forward(ctx, &q, x);
    CHECK(c, tensor_quantizer_load_calib_amax(&q, HIST_AMAX_PERCENTILE, 99.99, &err) == 0 && q.n_amax == 4 &&
                 !memcmp(q.amax, rowmax, sizeof rowmax),
          "per-row calibrated amax = max|W_row|");
    tensor_quantizer_free(&q);
    qb_ctx_free(ctx);
}

static void errors(qb_check *c) {
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    quant_desc d = quant_desc_default();
    d.calib = CALIB_HISTOGRAM;
    tensor_quantizer q;
    tensor_quantizer_init(&q, "layer.4.attention.self.matmul_a_input_quantizer", &d, &err);
    CHECK(c, tensor_quantizer_load_calib_amax(&q, HIST_AMAX_MSE, 99.99, &err) != 0 &&
                 strstr(err.msg, "matmul_a_input_quantizer") && strstr(err.msg, "no data"),
          "load_calib_amax with no data is an error naming the quantizer (%s)", err.msg);
    tensor_quantizer_enable_calib(&q);
    int64_t shape[1] = {4};
    float bad[4] = {1, NAN, 2, 3};
    qb_tensor *x = qb_from_host(ctx, 1, shape, bad);
    CHECK(c, tensor_quantizer_forward(ctx, &q, x) == NULL && strstr(ctx->err.msg, "matmul_a_input_quantizer") &&
                 strstr(ctx->err.msg, "NaN"),
          "NaN during calibration is an error naming the quantizer (%s)", ctx->err.msg);
    tensor_quantizer_free(&q);
    d = quant_desc_default();
    d.num_bits = 1;
    qb_err_clear(&err);
    CHECK(c, tensor_quantizer_init(&q, "bad_bits", &d, &err) != 0 && strstr(err.msg, "bad_bits") &&
                 strstr(err.msg, "num_bits"),
          "num_bits 1 rejected at configuration (%s)", err.msg);
    tensor_quantizer_free(&q);
    qb_ctx_free(ctx);
}

int main(void) {
    qb_check c = {0};
    flow(&c, CALIB_MAX);
    flow(&c, CALIB_HISTOGRAM);
    per_channel_weight(&c);
    errors(&c);
    return qb_check_finish(&c, "tensor_quantizer");
}

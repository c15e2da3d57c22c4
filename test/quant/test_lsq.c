/* test_lsq.c: the LSQ op (qb_fake_quant_lsq: learned per-tensor scale, zero point 0) against
 * torch._fake_quantize_learnable_per_tensor_affine (test/ref/gen_lsq_fixture.py): forward values, the input's
 * gradient (straight through inside the range) and the scale's gradient with and without LSQ's gradient scale, for
 * full, narrow and 4-bit ranges; qb_lsq_grad_factor; errors for a non-positive scale. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "fixture.h"
#include "quant/op_fake_quant.h"

static float *floats(json_t *a, int64_t n) {
    float *v = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; v && i < n; i++) v[i] = (float)json_number_value(json_array_get(a, (size_t)i));
    return v;
}

int main(void) {
    qb_check c = {0};
    qb_err err = {0};
    json_t *root = qb_fixture_load("test/quant/fixtures/lsq_torch.json", &err);
    if (!CHECK(&c, root != NULL, "fixture: %s", err.msg)) return qb_check_finish(&c, "lsq");
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    json_t *cases = json_object_get(root, "cases");
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *k = json_array_get(cases, i);
        int64_t n = json_integer_value(json_object_get(k, "n"));
        int qmin = (int)json_integer_value(json_object_get(k, "qmin")), qmax = (int)json_integer_value(json_object_get(k, "qmax"));
        float s0 = (float)json_number_value(json_object_get(k, "scale")), g = (float)json_number_value(json_object_get(k, "grad_factor"));
        float *x = floats(json_object_get(k, "x"), n), *dy = floats(json_object_get(k, "dy"), n), *wy = floats(json_object_get(k, "y"), n);
        float *wdx = floats(json_object_get(k, "dx"), n), *got = malloc((size_t)n * sizeof(float));
        double wds = json_number_value(json_object_get(k, "dscale"));
        quant_desc d = quant_desc_default();
        d.num_bits = qmax == 7 ? 4 : 8;
        d.narrow_range = qmin == -qmax;
        d.amax_mode = QUANT_AMAX_LEARNABLE;
        qb_ctx_step_reset(ctx);
        qb_tensor *xt = qb_from_host(ctx, 1, &n, x);
        xt->requires_grad = true;
        qb_tensor *st = qb_param_find(ctx, "lsq.scale");
        if (!st) st = qb_param_new(ctx, "lsq.scale", 1, (int64_t[]){1});
        qb_copy_from_host(ctx, st, &s0);
        qb_zero_grad(ctx);
        qb_tensor *y = qb_fake_quant_lsq(ctx, xt, st, &d, g);
        char what[128];
        bool ok = y && qb_backward_with_grad(ctx, y, dy) == 0 && qb_to_host(ctx, y, got) == 0;
        if (!CHECK(&c, ok, "case %zu: %s", i, ctx->err.msg)) continue;
        snprintf(what, sizeof what, "case %zu (%lld, [%d, %d]): y", i, (long long)n, qmin, qmax);
        qb_check_close(&c, what, got, wy, n, 0, 0);
        qb_to_host(ctx, xt->grad, got);
        snprintf(what, sizeof what, "case %zu: dx", i);
        qb_check_close(&c, what, got, wdx, n, 0, 0);
        float ds = qb_item(ctx, st->grad);
        CHECK(&c, fabs(ds - wds) <= 1e-5 * fabs(wds) + 1e-7, "case %zu: dscale %.8g vs torch %.8g (grad factor %g)", i, (double)ds, wds, (double)g);
        if (g != 1.0f) {
            qb_tensor *probe = qb_from_host(ctx, 1, &n, x);
            CHECK(&c, fabsf(qb_lsq_grad_factor(probe, &d) - g) <= 1e-7f * g, "case %zu: qb_lsq_grad_factor = 1/sqrt(%lld * %d)", i, (long long)n, qmax);
        }
        free(x), free(dy), free(wy), free(wdx), free(got);
    }
    qb_ctx_step_reset(ctx);
    quant_desc d = quant_desc_default();
    float v[3] = {1, 2, 3}, zero = 0.0f;
    qb_tensor *xt = qb_from_host(ctx, 1, (int64_t[]){3}, v), *st = qb_param_find(ctx, "lsq.scale");
    qb_copy_from_host(ctx, st, &zero);
    CHECK(&c, !qb_fake_quant_lsq(ctx, xt, st, &d, 1.0f) && strstr(ctx->err.msg, "fake_quant_lsq: scale = 0 (must be > 0)"), "zero scale: %s", ctx->err.msg);
    qb_ctx_free(ctx);
    json_decref(root);
    return qb_check_finish(&c, "lsq");
}

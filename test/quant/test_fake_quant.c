/* test_fake_quant.c: fake quant bit for bit against modelopt, the clipped-STE gradient through the autograd op,
 * descriptor validation, and the learnable (PACT) amax gradient. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "fixture.h"
#include "quant/quant.h"

static int64_t bits_differ(const float *a, const float *b, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    return bad;
}

static void golden_case(qb_check *c, json_t *cs) {
    const char *name = json_string_value(json_object_get(cs, "name"));
    int nd, nda, ndg;
    int64_t shape[4], ashape[4], gshape[4], n, na, ng;
    float *x = qb_fixture_tensor(json_object_get(cs, "x"), &nd, shape, &n);
    float *amax = qb_fixture_tensor(json_object_get(cs, "amax"), &nda, ashape, &na);
    float *gy = qb_fixture_tensor(json_object_get(cs, "grad_y"), &ndg, gshape, &ng);
    float *want_y = qb_fixture_tensor(json_object_get(cs, "y"), &ndg, gshape, &ng);
    float *want_dx = qb_fixture_tensor(json_object_get(cs, "grad_x"), &ndg, gshape, &ng);
    if (!CHECK(c, x && amax && gy && want_y && want_dx, "%s: malformed fixture", name)) goto done;
    quant_desc d = quant_desc_default();
    d.num_bits = (int)json_integer_value(json_object_get(cs, "num_bits"));
    d.axis = (int)json_integer_value(json_object_get(cs, "axis"));
    d.is_unsigned = json_is_true(json_object_get(cs, "unsigned"));
    d.narrow_range = json_is_true(json_object_get(cs, "narrow_range"));

    float *y = malloc((size_t)n * sizeof(float));
    if (d.axis < 0) {
        fake_quant_per_tensor(y, x, n, amax[0], &d);
    } else {
        int64_t outer = 1, inner = 1;
        for (int k = 0; k < d.axis; k++) outer *= shape[k];
        for (int k = d.axis + 1; k < nd; k++) inner *= shape[k];
        fake_quant_per_channel(y, x, outer, shape[d.axis], inner, amax, &d);
    }
    int64_t bad = bits_differ(y, want_y, n);
    CHECK(c, bad == 0, "%s: kernel output differs from modelopt in %lld of %lld elements", name, (long long)bad,
          (long long)n);

    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    qb_tensor *xp = qb_param_new(ctx, "x", nd, shape);
    qb_copy_from_host(ctx, xp, x);
    qb_tensor *out = qb_fake_quant(ctx, xp, amax, na, &d);
    if (CHECK(c, out != NULL, "%s: op failed: %s", name, ctx->err.msg)) {
        bad = bits_differ(out->data, want_y, n);
        CHECK(c, bad == 0, "%s: op output differs from modelopt in %lld elements", name, (long long)bad);
        CHECK(c, qb_backward_with_grad(ctx, out, gy) == 0, "%s: backward: %s", name, ctx->err.msg);
        bad = bits_differ(xp->grad->data, want_dx, n);
        CHECK(c, bad == 0, "%s: STE gradient differs from modelopt/torch autograd in %lld elements", name,
              (long long)bad);
    }
    qb_ctx_free(ctx);
    free(y);
done:
    free(x);
    free(amax);
    free(gy);
    free(want_y);
    free(want_dx);
}

static void test_desc_validation(qb_check *c) {
    qb_err err = {0};
    quant_desc d = quant_desc_default();
    CHECK(c, quant_desc_validate(&d, &err) == 0, "default descriptor valid: %s", err.msg);
    CHECK(c, quant_desc_bound(&d) == 127.0f && quant_desc_qmin(&d) == -128.0f, "int8 range [-128, 127]");
    d.narrow_range = true;
    CHECK(c, quant_desc_qmin(&d) == -127.0f, "narrow range gives -127");
    d = quant_desc_default();
    d.is_unsigned = true;
    CHECK(c, quant_desc_bound(&d) == 255.0f && quant_desc_qmin(&d) == 0.0f, "uint8 range [0, 255]");
    int bad_bits[] = {1, 17, 0, -3};
    for (int k = 0; k < 4; k++) {
        d = quant_desc_default();
        d.num_bits = bad_bits[k];
        qb_err_clear(&err);
        CHECK(c, quant_desc_validate(&d, &err) != 0 && strstr(err.msg, "num_bits"), "num_bits %d rejected (%s)",
              bad_bits[k], err.msg);
    }
    d = quant_desc_default();
    d.axis = 4;
    qb_err_clear(&err);
    CHECK(c, quant_desc_validate(&d, &err) != 0 && strstr(err.msg, "axis"), "axis 4 rejected (%s)", err.msg);
    d.axis = -2;
    qb_err_clear(&err);
    CHECK(c, quant_desc_validate(&d, &err) != 0, "axis -2 rejected");
    d = quant_desc_default();
    d.axis = 2;
    qb_err_clear(&err);
    CHECK(c, quant_desc_check_ndim(&d, 2, &err) != 0, "axis 2 rejected for a 2-d tensor");
    d = quant_desc_default();
    d.calib = CALIB_HISTOGRAM;
    d.axis = 0;
    qb_err_clear(&err);
    CHECK(c, quant_desc_validate(&d, &err) != 0, "per-channel histogram rejected");
    d = quant_desc_default();
    d.amax_mode = QUANT_AMAX_LEARNABLE;
    d.axis = 0;
    qb_err_clear(&err);
    CHECK(c, quant_desc_validate(&d, &err) != 0, "per-channel learnable amax rejected");
    d = quant_desc_default();
    d.percentile = 100.5;
    qb_err_clear(&err);
    CHECK(c, quant_desc_validate(&d, &err) != 0, "percentile 100.5 rejected");

    quant_defaults defs;
    quant_defaults_init(&defs);
    CHECK(c, defs.kind[QUANT_KIND_LINEAR_WEIGHT].axis == 0 && defs.kind[QUANT_KIND_LINEAR_INPUT].axis == -1,
          "weights per row, inputs per tensor by default");
    d = quant_desc_default();
    d.calib = CALIB_HISTOGRAM;
    d.num_bits = 6;
    qb_err_clear(&err);
    CHECK(c, quant_defaults_set(&defs, QUANT_KIND_MATMUL_INPUT, &d, &err) == 0 &&
                 defs.kind[QUANT_KIND_MATMUL_INPUT].num_bits == 6 &&
                 defs.kind[QUANT_KIND_RESIDUAL_INPUT].num_bits == 8,
          "set default of one kind only");
    d.num_bits = 20;
    qb_err_clear(&err);
    CHECK(c, quant_defaults_set(&defs, QUANT_KIND_MATMUL_INPUT, &d, &err) != 0 &&
                 defs.kind[QUANT_KIND_MATMUL_INPUT].num_bits == 6,
          "invalid default rejected and not stored");
}

static void test_op_errors(qb_check *c) {
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    int64_t shape[2] = {3, 4};
    float host[12] = {-1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    qb_tensor *x = qb_from_host(ctx, 2, shape, host);
    quant_desc d = quant_desc_default();
    float amax2[2] = {1, 2}, neg = -1.0f;
    d.axis = 0;
    CHECK(c, qb_fake_quant(ctx, x, amax2, 2, &d) == NULL && strstr(ctx->err.msg, "amax values"),
          "amax count mismatch is an error (%s)", ctx->err.msg);
    qb_ctx_step_reset(ctx);
    x = qb_from_host(ctx, 2, shape, host);
    d.axis = -1;
    CHECK(c, qb_fake_quant(ctx, x, &neg, 1, &d) == NULL, "negative amax is an error");
    qb_ctx_step_reset(ctx);
    x = qb_from_host(ctx, 2, shape, host);
    d.is_unsigned = true;
    CHECK(c, qb_fake_quant(ctx, x, amax2, 1, &d) == NULL && strstr(ctx->err.msg, "unsigned"),
          "negative input with unsigned is an error");
    qb_ctx_free(ctx);
}

/* PACT gradient: dx passes strictly inside (-a, a); da = sum(dy, x >= a) - sum(dy, x <= -a). */
static void test_learnable(qb_check *c) {
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    const int64_t n = 1000, one = 1;
    float *xh = malloc(n * sizeof(float)), *gh = malloc(n * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        xh[i] = (float)((i * 37) % 1000) / 250.0f - 2.0f;
        gh[i] = (float)((i * 13) % 7) - 3.0f;
    }
    xh[5] = 1.5f;
    xh[6] = -1.5f;
    qb_tensor *x = qb_param_new(ctx, "x", 1, &n), *a = qb_param_new(ctx, "a", 1, &one);
    qb_copy_from_host(ctx, x, xh);
    a->data[0] = 1.5f;
    quant_desc d = quant_desc_default();
    d.amax_mode = QUANT_AMAX_LEARNABLE;
    qb_tensor *y = qb_fake_quant_learnable(ctx, x, a, &d);
    if (CHECK(c, y && qb_backward_with_grad(ctx, y, gh) == 0, "learnable op: %s", ctx->err.msg)) {
        float *clip = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
        double da = 0.0;
        int64_t dx_bad = 0;
        for (int64_t i = 0; i < n; i++) {
            clip[i] = fminf(fmaxf(xh[i], -1.5f), 1.5f);
            da += xh[i] >= 1.5f ? gh[i] : xh[i] <= -1.5f ? -gh[i] : 0.0f;
            dx_bad += x->grad->data[i] != (xh[i] > -1.5f && xh[i] < 1.5f ? gh[i] : 0.0f);
        }
        fake_quant_per_tensor(want, clip, n, 1.5f, &d);
        CHECK(c, bits_differ(y->data, want, n) == 0, "learnable forward = fake_quant(clip(x))");
        CHECK(c, dx_bad == 0, "learnable dx passes inside (-a, a) only (%lld wrong)", (long long)dx_bad);
        CHECK(c, fabs(a->grad->data[0] - da) <= 1e-4 * (1 + fabs(da)) && da != 0.0, "learnable da %g want %g",
              (double)a->grad->data[0], da);
        free(clip);
        free(want);
    }
    free(xh);
    free(gh);
    qb_ctx_free(ctx);
}

int main(void) {
    qb_check c = {0};
    qb_err err = {0};
    json_t *root = qb_fixture_load("test/quant/fixtures/fake_quant.json", &err);
    if (CHECK(&c, root != NULL, "fixture: %s", err.msg)) {
        json_t *cases = json_object_get(root, "cases");
        CHECK(&c, json_array_size(cases) >= 20, "fixture has the golden cases");
        for (size_t k = 0; k < json_array_size(cases); k++) golden_case(&c, json_array_get(cases, k));
        json_decref(root);
    }
    test_desc_validation(&c);
    test_op_errors(&c);
    test_learnable(&c);
    return qb_check_finish(&c, "fake_quant");
}

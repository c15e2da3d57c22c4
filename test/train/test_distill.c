/* test_distill.c: the QA distillation loss (src/train/qa_distill.h, op distill_kl) against PyTorch
 * (test/ref/gen_distill_fixture.py: F.kl_div batchmean of log_softmax(s / T) and softmax(t / T), BERT QA
 * cross-entropy with the ignored index): KL alone, the combined loss and its gradients with respect to the student's
 * start and end logits, for several temperatures and alphas (0, between, 1), and the op's errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "check.h"
#include "fixture.h"
#include "train/qa_distill.h"

static float *floats(json_t *a, int64_t n) {
    float *v = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; v && i < n; i++) v[i] = (float)json_number_value(json_array_get(a, (size_t)i));
    return v;
}

static void one_case(qb_check *c, qb_ctx *ctx, json_t *k, int idx) {
    int64_t rows = json_integer_value(json_object_get(k, "rows")), cols = json_integer_value(json_object_get(k, "cols")), n = rows * cols, ni;
    float alpha = (float)json_number_value(json_object_get(k, "alpha")), temp = (float)json_number_value(json_object_get(k, "temperature"));
    float *ss = floats(json_object_get(k, "student_start"), n), *se = floats(json_object_get(k, "student_end"), n);
    float *ts = floats(json_object_get(k, "teacher_start"), n), *te = floats(json_object_get(k, "teacher_end"), n);
    float *gs = floats(json_object_get(k, "grad_start"), n), *ge = floats(json_object_get(k, "grad_end"), n);
    int32_t *ys = qb_fixture_ints(json_object_get(k, "start_positions"), &ni), *ye = qb_fixture_ints(json_object_get(k, "end_positions"), &ni);
    int64_t shape[2] = {rows, cols};
    qb_ctx_step_reset(ctx);
    qb_tensor *s = qb_from_host(ctx, 2, shape, ss), *e = qb_from_host(ctx, 2, shape, se);
    qb_tensor *t1 = qb_from_host(ctx, 2, shape, ts), *t2 = qb_from_host(ctx, 2, shape, te);
    s->requires_grad = e->requires_grad = true;
    char what[160];
    float kl = qb_item(ctx, qb_distill_kl(ctx, s, t1, temp));
    double want_kl = json_number_value(json_object_get(k, "kl_start"));
    CHECK(c, fabs(kl - want_kl) <= 1e-5 * fabs(want_kl) + 1e-6, "case %d: KL(teacher || student) at T %g: %.8g vs torch %.8g", idx, (double)temp,
          (double)kl, want_kl);
    qb_ctx_step_reset(ctx);
    s = qb_from_host(ctx, 2, shape, ss), e = qb_from_host(ctx, 2, shape, se);
    t1 = qb_from_host(ctx, 2, shape, ts), t2 = qb_from_host(ctx, 2, shape, te);
    s->requires_grad = e->requires_grad = true;
    qb_tensor *ce = qb_scale(ctx, qb_add(ctx, qb_cross_entropy(ctx, s, ys, (int32_t)cols), qb_cross_entropy(ctx, e, ye, (int32_t)cols)), 0.5f);
    qb_tensor *loss = qb_qa_distill_loss(ctx, s, e, t1, t2, ce, alpha, temp);
    int rc = qb_backward(ctx, loss);
    float got = rc ? NAN : qb_item(ctx, loss);
    double want = json_number_value(json_object_get(k, "loss"));
    CHECK(c, rc == 0 && fabs(got - want) <= 1e-5 * fabs(want) + 1e-6, "case %d (%lldx%lld, alpha %g, T %g): loss %.8g vs torch %.8g %s", idx,
          (long long)rows, (long long)cols, (double)alpha, (double)temp, (double)got, want, ctx->err.msg);
    float *hs = malloc((size_t)n * sizeof(float)), *he = malloc((size_t)n * sizeof(float));
    if (rc == 0 && !qb_to_host(ctx, s->grad, hs) && !qb_to_host(ctx, e->grad, he)) {
        snprintf(what, sizeof what, "case %d: d loss / d student start", idx);
        qb_check_close(c, what, hs, gs, n, 2e-7, 1e-4);
        snprintf(what, sizeof what, "case %d: d loss / d student end", idx);
        qb_check_close(c, what, he, ge, n, 2e-7, 1e-4);
    }
    free(hs), free(he), free(ss), free(se), free(ts), free(te), free(gs), free(ge), free(ys), free(ye);
}

int main(void) {
    qb_check c = {0};
    qb_err err = {0};
    json_t *root = qb_fixture_load("test/train/fixtures/distill_torch.json", &err);
    if (!CHECK(&c, root != NULL, "fixture: %s", err.msg)) return qb_check_finish(&c, "distill");
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    json_t *cases = json_object_get(root, "cases");
    for (size_t i = 0; i < json_array_size(cases); i++) one_case(&c, ctx, json_array_get(cases, i), (int)i);
    CHECK(&c, json_array_size(cases) >= 5, "%zu cases", json_array_size(cases));

    qb_ctx_step_reset(ctx);
    float v[6] = {1, 2, 3, 4, 5, 6};
    qb_tensor *a = qb_from_host(ctx, 2, (int64_t[]){2, 3}, v), *b = qb_from_host(ctx, 2, (int64_t[]){3, 2}, v);
    CHECK(&c, !qb_distill_kl(ctx, a, b, 2.0f) && strstr(ctx->err.msg, "distill_kl: student [2, 3] and teacher [3, 2]"), "shape error: %s", ctx->err.msg);
    qb_ctx_step_reset(ctx);
    a = qb_from_host(ctx, 2, (int64_t[]){2, 3}, v);
    CHECK(&c, !qb_distill_kl(ctx, a, a, 0.0f) && strstr(ctx->err.msg, "temperature 0 must be > 0"), "temperature error: %s", ctx->err.msg);
    qb_ctx_step_reset(ctx);
    a = qb_from_host(ctx, 2, (int64_t[]){2, 3}, v);
    b = qb_from_host(ctx, 2, (int64_t[]){2, 3}, v);
    b->requires_grad = true;
    CHECK(&c, !qb_distill_kl(ctx, a, b, 1.0f) && strstr(ctx->err.msg, "must not require grad"), "teacher with grad: %s", ctx->err.msg);
    qb_ctx_free(ctx);
    json_decref(root);
    return qb_check_finish(&c, "distill");
}

/* test_ops_gradcheck.c: every op's backward against central finite differences of its forward.
 * The scalar is L = sum(out * R) for a fixed random R, accumulated in double; eps = 5e-3 on float32 inputs.
 * Tolerance: max |numeric - analytic| <= 1e-2 * max(max |analytic|, 1e-2) per input tensor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "op_eval.h"

static double loss_of(qb_ctx *ctx, const op_case *c, float **in, const op_case_aux *aux, const float *R, int64_t n, int *fail) {
    op_eval_result r;
    if (op_eval(ctx, c, in, aux, NULL, &r)) {
        *fail = 1;
        op_eval_result_free(&r);
        return 0.0;
    }
    double l = 0.0;
    for (int64_t i = 0; i < n; i++) l += (double)r.out[i] * R[i];
    op_eval_result_free(&r);
    return l;
}

int main(void) {
    qb_check chk = {0};
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 42, &err);
    if (!ctx) qb_die("test_ops_gradcheck", &err);
    for (int ci = 0; ci < n_op_cases; ci++) {
        const op_case *c = &op_cases[ci];
        op_case_aux aux = op_case_default_aux(c);
        float *in[OP_CASE_MAX_IN] = {NULL};
        for (int i = 0; i < c->n_in; i++) in[i] = malloc((size_t)op_case_numel(c, i) * sizeof(float));
        op_case_fill_inputs(c, in, 7 + (uint64_t)ci);
        op_eval_result fwd;
        if (op_eval(ctx, c, in, &aux, NULL, &fwd)) {
            CHECK(&chk, false, "%s: forward failed: %s", c->name, ctx->err.msg);
            continue;
        }
        int64_t n_out = fwd.out_n;
        float *R = malloc((size_t)n_out * sizeof(float));
        qb_rng_normal(R, n_out, 0.0f, 1.0f, 99, 0);
        op_eval_result_free(&fwd);
        op_eval_result an;
        if (op_eval(ctx, c, in, &aux, R, &an)) {
            CHECK(&chk, false, "%s: backward failed: %s", c->name, ctx->err.msg);
            continue;
        }
        for (int i = 0; i < c->n_in; i++) {
            if (!c->differentiable[i]) continue;
            int64_t n = op_case_numel(c, i);
            double maxerr = 0.0, maxg = 0.0;
            int fail = 0;
            for (int64_t k = 0; k < n; k++) {
                float x0 = in[i][k];
                const float eps = 5e-3f;
                in[i][k] = x0 + eps;
                double lp = loss_of(ctx, c, in, &aux, R, n_out, &fail);
                in[i][k] = x0 - eps;
                double lm = loss_of(ctx, c, in, &aux, R, n_out, &fail);
                in[i][k] = x0;
                double num = (lp - lm) / (2.0 * (double)eps);
                double e = fabs(num - an.grads[i][k]);
                if (e > maxerr) maxerr = e;
                if (fabs(an.grads[i][k]) > maxg) maxg = fabs(an.grads[i][k]);
            }
            double tol = 1e-2 * fmax(maxg, 1e-2);
            bool ok = !fail && maxerr <= tol && maxg > 0.0;
            printf("%s %-22s input %d: n=%-4ld max|grad|=%.3g max|num-analytic|=%.3g (tol %.3g)\n", ok ? "ok  " : "FAIL", c->name, i,
                   (long)n, maxg, maxerr, tol);
            CHECK(&chk, ok, "%s input %d: gradient check failed%s", c->name, i, fail ? " (forward error)" : "");
        }
        op_eval_result_free(&an);
        free(R);
        for (int i = 0; i < c->n_in; i++) free(in[i]);
    }
    qb_ctx_free(ctx);
    return qb_check_finish(&chk, "autograd gradcheck");
}

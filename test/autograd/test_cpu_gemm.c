/* test_cpu_gemm.c: the CPU's fp32 GEMM libraries (run.cpu_gemm, QB_CPU_GEMM):
 * - the setting: parse and names, the default (oneDNN where built with it), $QB_CPU_GEMM read at context creation and
 *   a bad value refused with its name, onednn refused by a build without it;
 * - oneDNN's sgemm against OpenBLAS's on the model's GEMM shapes (gemm_cases.h: transposes, alpha and beta, batches of
 *   strided head views, shared operands and outputs, odd leading dims): per element within fp32 accumulation error,
 *   |d| <= 2 k u (|alpha| |A| |B| + |beta C|) with u = 2^-24, and outputs outside C's matrices untouched;
 * - every matmul and linear op case forward and backward under each library, equal within fp32 rounding.
 * The library comparison exits 77 where the build has no oneDNN. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/cpu/kernels.h"
#include "check.h"
#include "gemm_cases.h"
#include "op_eval.h"

/* C = the case's product through lib from c0 (abs: |alpha| |A| |B| + |beta| |c0|, the rounding bound). */
static float *gemm(const gemm_case *g, qb_cpu_gemm_lib lib, const float *a, const float *b, const float *c0, int64_t nc, bool abs) {
    float *c = malloc((size_t)nc * sizeof(float));
    if (!c) abort();
    for (int64_t i = 0; i < nc; i++) c[i] = abs ? fabsf(c0[i]) : c0[i];
    qb_gemm_batch bt = g->bt;
    bt.cpu_gemm = lib;
    if (qb_cpu_kernels.gemm(NULL, g->ta, g->tb, g->m, g->n, g->k, abs ? fabsf(g->alpha) : g->alpha, a, g->lda, b, g->ldb,
                            abs ? fabsf(g->beta) : g->beta, c, g->ldc, &bt)) {
        free(c);
        return NULL;
    }
    return c;
}

static float *absolute(const float *x, int64_t n) {
    float *y = malloc((size_t)n * sizeof(float));
    if (!y) abort();
    for (int64_t i = 0; i < n; i++) y[i] = fabsf(x[i]);
    return y;
}

static void test_libraries_agree(qb_check *chk) {
    for (int i = 0; i < n_cases; i++) {
        const gemm_case *g = &cases[i];
        bool shared = g->bt.c[0] == 0 && g->bt.c[1] == 0;
        int64_t na, nb, nc;
        gemm_case_spans(g, &na, &nb, &nc);
        float *a = randn(na, 200 + 3 * (uint64_t)i), *b = randn(nb, 201 + 3 * (uint64_t)i), *c0 = randn(nc, 202 + 3 * (uint64_t)i);
        float *abs_a = absolute(a, na), *abs_b = absolute(b, nb);
        float *want = gemm(g, QB_CPU_GEMM_OPENBLAS, a, b, c0, nc, false), *got = gemm(g, QB_CPU_GEMM_ONEDNN, a, b, c0, nc, false);
        float *bound = gemm(g, QB_CPU_GEMM_OPENBLAS, abs_a, abs_b, c0, nc, true);
        if (CHECK(chk, want && got && bound, "gemm %s runs through both libraries", g->name)) {
            int64_t bad = 0, changed = 0, k_sum = g->k * (shared ? g->bt.count[0] * g->bt.count[1] : 1);
            double worst = 0.0;
            for (int64_t e = 0; e < nc; e++) {
                double d = fabs((double)got[e] - want[e]), tol = 2.0 * (double)(k_sum + 2) * 0x1p-24 * bound[e];
                bad += !(d <= tol);
                changed += got[e] != c0[e];
                if (bound[e] > 0) worst = fmax(worst, d / bound[e]);
            }
            CHECK(chk, bad == 0 && changed > 0, "gemm %s: oneDNN vs OpenBLAS within 2 k u |alpha A B + beta C| (%lld of %lld outside; worst %.2e)",
                  g->name, (long long)bad, (long long)nc, worst);
        }
        free(a), free(b), free(c0), free(abs_a), free(abs_b), free(want), free(got), free(bound);
    }
}

static void test_setting(qb_check *chk) {
    qb_cpu_gemm_lib g = QB_CPU_GEMM_OPENBLAS;
    CHECK(chk, qb_cpu_gemm_parse("onednn", &g) == 0 && g == QB_CPU_GEMM_ONEDNN && qb_cpu_gemm_parse("openblas", &g) == 0 &&
                   g == QB_CPU_GEMM_OPENBLAS && qb_cpu_gemm_parse("default", &g) == 0 && g == QB_CPU_GEMM_DEFAULT &&
                   qb_cpu_gemm_parse("mkl", &g) == -1,
          "cpu_gemm names parse, others are refused");
    CHECK(chk, strcmp(qb_cpu_gemm_name(QB_CPU_GEMM_DEFAULT), qb_cpu_have_onednn() ? "onednn" : "openblas") == 0 &&
                   strcmp(qb_cpu_gemm_name(QB_CPU_GEMM_OPENBLAS), "openblas") == 0,
          "the default is oneDNN where built with it: %s", qb_cpu_gemm_name(QB_CPU_GEMM_DEFAULT));
    qb_err err = {0};
    unsetenv("QB_CPU_GEMM");
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    if (!CHECK(chk, ctx != NULL, "context: %s", err.msg)) return;
    CHECK(chk, ctx->cpu_gemm == (qb_cpu_have_onednn() ? QB_CPU_GEMM_ONEDNN : QB_CPU_GEMM_OPENBLAS), "a new context has the default library");
    int rc = qb_ctx_set_cpu_gemm(ctx, QB_CPU_GEMM_ONEDNN);
    if (qb_cpu_have_onednn()) CHECK(chk, rc == 0 && ctx->cpu_gemm == QB_CPU_GEMM_ONEDNN, "onednn set");
    else CHECK(chk, rc == -1 && strstr(ctx->err.msg, "no oneDNN"), "onednn refused without it: %s", ctx->err.msg);
    CHECK(chk, qb_ctx_set_cpu_gemm(ctx, QB_CPU_GEMM_OPENBLAS) == 0 && ctx->cpu_gemm == QB_CPU_GEMM_OPENBLAS, "openblas set");
    qb_ctx_free(ctx);
    setenv("QB_CPU_GEMM", "openblas", 1);
    ctx = qb_ctx_new(QB_CPU, 1, &err);
    CHECK(chk, ctx && ctx->cpu_gemm == QB_CPU_GEMM_OPENBLAS, "QB_CPU_GEMM=openblas read at context creation");
    qb_ctx_free(ctx);
    setenv("QB_CPU_GEMM", "blis", 1);
    ctx = qb_ctx_new(QB_CPU, 1, &err);
    CHECK(chk, !ctx && strstr(err.msg, "QB_CPU_GEMM=blis") && strstr(err.msg, "expected onednn, openblas or default"),
          "a bad QB_CPU_GEMM is refused with its value: %s", err.msg);
    qb_ctx_free(ctx);
    unsetenv("QB_CPU_GEMM");
}

/* Every matmul and linear op case (op_cases.c: transposes, batches, a shared operand, strided views, bias), forward
 * and backward, under both libraries: equal within fp32 rounding. */
static void test_ops(qb_check *chk) {
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 3, &err);
    if (!CHECK(chk, ctx != NULL, "context: %s", err.msg)) return;
    for (int i = 0; i < n_op_cases; i++) {
        const op_case *c = &op_cases[i];
        if (strncmp(c->name, "matmul", 6) && strncmp(c->name, "linear", 6)) continue;
        float *in[OP_CASE_MAX_IN] = {0};
        for (int j = 0; j < c->n_in; j++) in[j] = malloc((size_t)op_case_numel(c, j) * sizeof(float));
        op_case_fill_inputs(c, in, 300 + (uint64_t)i);
        op_case_aux aux = op_case_default_aux(c);
        op_eval_result r[2] = {{0}, {0}};
        float *up = NULL;
        int rc = 0;
        for (int lib = 0; lib < 2 && !rc; lib++) {
            qb_ctx_step_reset(ctx);
            rc = qb_ctx_set_cpu_gemm(ctx, lib ? QB_CPU_GEMM_ONEDNN : QB_CPU_GEMM_OPENBLAS);
            if (!rc && lib == 0 && !(rc = op_eval(ctx, c, in, &aux, NULL, &r[0]))) {
                up = randn(r[0].out_n, 400 + (uint64_t)i);
                op_eval_result_free(&r[0]);
            }
            if (!rc) rc = op_eval(ctx, c, in, &aux, up, &r[lib]);
        }
        if (CHECK(chk, rc == 0, "%s runs under both libraries: %s", c->name, ctx->err.msg)) {
            char what[96];
            snprintf(what, sizeof what, "%s output, oneDNN vs OpenBLAS", c->name);
            qb_check_close(chk, what, r[1].out, r[0].out, r[0].out_n, 1e-5, 1e-5);
            for (int j = 0; j < c->n_in; j++)
                if (r[0].grads[j]) {
                    snprintf(what, sizeof what, "%s input %d gradient, oneDNN vs OpenBLAS", c->name, j);
                    qb_check_close(chk, what, r[1].grads[j], r[0].grads[j], op_case_numel(c, j), 1e-5, 1e-5);
                }
        }
        qb_err_clear(&ctx->err);
        op_eval_result_free(&r[0]), op_eval_result_free(&r[1]);
        free(up);
        for (int j = 0; j < c->n_in; j++) free(in[j]);
    }
    qb_ctx_free(ctx);
}

int main(void) {
    qb_check chk = {0};
    test_setting(&chk);
    if (!qb_cpu_have_onednn()) {
        printf("SKIP: this build has no oneDNN: the fp32 GEMM is OpenBLAS's only\n");
        return chk.failed ? 1 : 77;
    }
    test_libraries_agree(&chk);
    test_ops(&chk);
    return qb_check_finish(&chk, "cpu_gemm");
}

/* test_cpu_bf16.c: the CPU's bf16 GEMM (oneDNN; precision bf16):
 * - the setting: tf32 refused on the cpu, bf16 accepted exactly where the build and CPU have it (else its reason);
 * - GEMM shapes (transposes, alpha and beta, batches of strided matrices, a shared operand, shared outputs, odd leading
 *   dims): per element |bf16 - fp32| <= 2u sum_l |a_il| |b_lj| (u = 2^-8), a result that differs from fp32 (bf16 ran),
 *   and the fp32 product of the inputs rounded to bf16 (nearest even) within fp32 accumulation error;
 * - the same cases with A and B cast to bf16 first (cast_bf16; a_bf16, b_bf16): the bits of the fp32-operand GEMM;
 * - cast_bf16 against this file's rounding, bit for bit (ties, subnormals, overflow to inf, inf, NaN kept NaN);
 * - linear and matmul ops forward and backward under bf16 against fp32, within the same bound per element;
 * - the linear under bf16 keeps x's bf16 copy for dW: output and gradients bit for bit those of the GEMMs on fp32
 *   operands, also after x's fp32 memory was handed back (qb_release_f32) and reused with other values.
 * Exits 77 where this build has no oneDNN or the CPU has neither AVX512-BF16 nor AMX. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/cpu/kernels.h"
#include "check.h"
#include "gemm_cases.h"
#include "op_eval.h"

static const double U_BF16 = 0x1p-8;


/* x rounded to bf16, nearest even */
static float round_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

static float *map(const float *x, int64_t n, float (*f)(float)) {
    float *y = malloc((size_t)n * sizeof(float));
    if (!y) abort();
    for (int64_t i = 0; i < n; i++) y[i] = f(x[i]);
    return y;
}

/* C = the case's product in precision p from c0 (abs: |alpha| |A| |B|, beta 0: the rounding bound). */
static float *gemm(const gemm_case *g, qb_precision p, const float *a, const float *b, const float *c0, int64_t nc, bool abs_bound) {
    float *c = malloc((size_t)nc * sizeof(float));
    if (!c) abort();
    for (int64_t i = 0; i < nc; i++) c[i] = abs_bound ? 0.0f : c0[i];
    qb_gemm_batch bt = g->bt;
    bt.precision = p;
    int rc = qb_cpu_kernels.gemm(NULL, g->ta, g->tb, g->m, g->n, g->k, abs_bound ? fabsf(g->alpha) : g->alpha, a, g->lda, b, g->ldb,
                                 abs_bound ? 0.0f : g->beta, c, g->ldc, &bt);
    if (rc) {
        free(c);
        return NULL;
    }
    return c;
}

/* x cast to bf16 by the cpu kernel (n values). */
static uint16_t *cast(const float *x, int64_t n) {
    uint16_t *y = malloc((size_t)n * sizeof *y + 2);
    if (!y || qb_cpu_kernels.cast_bf16(NULL, y, x, n)) abort();
    return y;
}

/* The case's product from c0 with both operands given in bf16. */
static float *gemm_bf16_operands(const gemm_case *g, const uint16_t *a, const uint16_t *b, const float *c0, int64_t nc) {
    float *c = malloc((size_t)nc * sizeof(float));
    if (!c) abort();
    memcpy(c, c0, (size_t)nc * sizeof(float));
    qb_gemm_batch bt = g->bt;
    bt.precision = QB_PREC_BF16;
    bt.a_bf16 = bt.b_bf16 = true;
    if (qb_cpu_kernels.gemm(NULL, g->ta, g->tb, g->m, g->n, g->k, g->alpha, a, g->lda, b, g->ldb, g->beta, c, g->ldc, &bt)) {
        free(c);
        return NULL;
    }
    return c;
}

static void test_gemm(qb_check *chk) {
    for (int i = 0; i < n_cases; i++) {
        const gemm_case *g = &cases[i];
        int64_t na, nb, nc;
        gemm_case_spans(g, &na, &nb, &nc);
        float *a = randn(na, 100 + 3 * (uint64_t)i), *b = randn(nb, 101 + 3 * (uint64_t)i), *c0 = randn(nc, 102 + 3 * (uint64_t)i);
        float *abs_a = map(a, na, fabsf), *abs_b = map(b, nb, fabsf), *ra = map(a, na, round_bf16), *rb = map(b, nb, round_bf16);
        float *want = gemm(g, QB_PREC_FP32, a, b, c0, nc, false), *bound = gemm(g, QB_PREC_FP32, abs_a, abs_b, c0, nc, true);
        float *rounded = gemm(g, QB_PREC_FP32, ra, rb, c0, nc, false), *got = gemm(g, QB_PREC_BF16, a, b, c0, nc, false);
        uint16_t *a16 = cast(a, na), *b16 = cast(b, nb);
        float *got16 = gemm_bf16_operands(g, a16, b16, c0, nc);
        CHECK(chk, got && got16 && memcmp(got, got16, (size_t)nc * sizeof(float)) == 0,
              "gemm %s with bf16 operands: the bits of fp32 operands rounded in the GEMM", g->name);
        free(a16), free(b16), free(got16);
        if (CHECK(chk, got != NULL, "gemm %s in bf16 runs", g->name)) {
            int64_t bad = 0, bad_rounded = 0;
            double diff_max = 0.0, worst = 0.0, rounded_max = 0.0;
            for (int64_t e = 0; e < nc; e++) {
                double diff = fabs((double)got[e] - want[e]), tol32 = 1e-5 * (bound[e] + fabs(c0[e]));
                bad += !(diff <= 2.0 * U_BF16 * bound[e] + tol32);
                diff_max = fmax(diff_max, diff);
                if (bound[e] > 0) worst = fmax(worst, diff / bound[e]);
                double dr = fabs((double)got[e] - rounded[e]);
                bad_rounded += !(dr <= tol32);
                rounded_max = fmax(rounded_max, dr);
            }
            CHECK(chk, bad == 0, "gemm %s in bf16: %lld elements beyond 2u sum|a||b| of fp32", g->name, (long long)bad);
            CHECK(chk, diff_max > 0.0, "gemm %s in bf16: differs from fp32 (max |diff| %.3g)", g->name, diff_max);
            CHECK(chk, bad_rounded == 0, "gemm %s in bf16: %lld elements off the fp32 product of bf16-rounded inputs (max %.3g)", g->name,
                  (long long)bad_rounded, rounded_max);
            printf("gemm %s in bf16: max |diff| vs fp32 %.3g, max |diff| / sum|a||b| %.3g (bound %.3g); vs rounded inputs %.3g\n",
                   g->name, diff_max, worst, 2.0 * U_BF16, rounded_max);
        }
        free(a), free(b), free(c0), free(abs_a), free(abs_b), free(ra), free(rb);
        free(want), free(bound), free(rounded), free(got);
    }
}

/* One op case forward and backward in bf16 against fp32: every output and gradient within (2u + 1e-5) of the same op
 * on |inputs| with |upstream| (sum |a||b| per element, the bias added), and some element different from fp32. */
static void test_op(qb_check *chk, qb_ctx *ctx, const char *name) {
    const op_case *c = op_case_find(name);
    if (!CHECK(chk, c != NULL, "op case %s exists", name)) return;
    op_case_aux aux = op_case_default_aux(c);
    float *in[OP_CASE_MAX_IN] = {NULL}, *abs_in[OP_CASE_MAX_IN] = {NULL};
    for (int i = 0; i < c->n_in; i++) in[i] = malloc((size_t)(op_case_numel(c, i) + 1) * sizeof(float));
    op_case_fill_inputs(c, in, 700);
    for (int i = 0; i < c->n_in; i++) abs_in[i] = map(in[i], op_case_numel(c, i), fabsf);
    op_eval_result want = {0}, bound = {0}, got = {0};
    int rc = qb_ctx_set_precision(ctx, QB_PREC_FP32) || op_eval(ctx, c, in, &aux, NULL, &want);
    int64_t out_n = want.out_n;
    op_eval_result_free(&want);
    float *up = randn(out_n + 1, 701), *abs_up = map(up, out_n + 1, fabsf);
    rc = rc || op_eval(ctx, c, in, &aux, up, &want) || op_eval(ctx, c, abs_in, &aux, abs_up, &bound) ||
         qb_ctx_set_precision(ctx, QB_PREC_BF16) || op_eval(ctx, c, in, &aux, up, &got);
    if (CHECK(chk, rc == 0, "op %s in fp32 and bf16 runs: %s", name, ctx->err.msg)) {
        double diff_max = 0.0;
        for (int t = -1; t < c->n_in; t++) {
            const float *g = t < 0 ? got.out : got.grads[t], *w = t < 0 ? want.out : want.grads[t], *bd = t < 0 ? bound.out : bound.grads[t];
            if (!w) continue;
            int64_t n = t < 0 ? want.out_n : op_case_numel(c, t), bad = 0;
            for (int64_t e = 0; e < n; e++) {
                double diff = fabs((double)g[e] - w[e]);
                bad += !(diff <= (2.0 * U_BF16 + 1e-5) * bd[e] + 1e-30);
                diff_max = fmax(diff_max, diff);
            }
            CHECK(chk, bad == 0, "op %s %s%.0d in bf16: %lld elements beyond 2u sum|a||b| of fp32", name, t < 0 ? "output" : "grad of input ",
                  t < 0 ? 0 : t, (long long)bad);
        }
        CHECK(chk, diff_max > 0.0, "op %s in bf16 differs from fp32 (max |diff| %.3g)", name, diff_max);
    }
    op_eval_result_free(&got);
    op_eval_result_free(&want);
    op_eval_result_free(&bound);
    qb_ctx_set_precision(ctx, QB_PREC_FP32);
    free(up);
    free(abs_up);
    for (int i = 0; i < c->n_in; i++) free(in[i]), free(abs_in[i]);
}

static void test_cast(qb_check *chk) {
    enum { N = 4096 };
    float x[N];
    qb_rng_normal(x, N, 0.0f, 3.0f, 77, 0);
    const uint32_t special[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x00000001u, 0x807fffffu, 0x7f7fffffu, 0xff7fffffu,
                                0x7f800000u, 0xff800000u, 0x00000000u, 0x80000000u, 0x7fc00001u, 0xff800001u, 0x3f80ffffu};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) memcpy(&x[i], &special[i], 4);
    uint16_t *y = cast(x, N);
    int64_t bad = 0;
    for (int i = 0; i < N; i++) {
        float r = round_bf16(x[i]), back;
        uint32_t u = (uint32_t)y[i] << 16;
        memcpy(&back, &u, 4);
        bad += isnan(x[i]) ? !isnan(back) : memcmp(&r, &back, 4) != 0;
    }
    CHECK(chk, bad == 0, "cast_bf16: %lld of %d values not rounded to nearest even (NaN kept)", (long long)bad, N);
    free(y);
}

/* float 0 == -0; else the same bits. */
static int64_t unequal(const float *a, const float *b, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += !(a[i] == b[i]) && memcmp(a + i, b + i, 4) != 0;
    return bad;
}

static void test_linear_saved(qb_check *chk, qb_ctx *ctx) {
    enum { R = 48, IN = 80, OUT = 56 };
    const int64_t xs[3] = {2, R / 2, IN}, ws[2] = {OUT, IN}, bs[1] = {OUT};
    float *x = randn(R * IN, 901), *w = randn(OUT * IN, 902), *bias = randn(OUT, 903), *up = randn(R * OUT, 904);
    qb_ctx_step_reset(ctx);
    qb_tensor *wt = qb_param_new(ctx, "saved.w", 2, ws), *bt = qb_param_new(ctx, "saved.b", 1, bs);
    if (!wt || !bt || qb_copy_from_host(ctx, wt, w) || qb_copy_from_host(ctx, bt, bias) || qb_ctx_set_precision(ctx, QB_PREC_BF16)) abort();
    qb_zero_grad(ctx);
    qb_tensor *xt = qb_from_host(ctx, 3, xs, x);
    xt->requires_grad = true;
    qb_mark_gemm_input(xt);
    qb_tensor *y = qb_linear(ctx, xt, wt, bt);
    if (!CHECK(chk, y && y->node, "linear under bf16 runs: %s", ctx->err.msg)) return;
    CHECK(chk, y->node->saved[0] && y->node->saved[0] == xt->bf16, "linear under bf16 saves x's bf16 copy");
    float *old = xt->data;
    qb_release_f32(ctx, xt);
    CHECK(chk, xt->data == NULL, "qb_release_f32 hands x's fp32 memory back");
    qb_tensor *junk = qb_new(ctx, 3, xs);
    CHECK(chk, junk && junk->data == old, "the next allocation of x's size reuses x's memory");
    if (junk) qb_fill(ctx, junk, 12345.0f);
    if (qb_backward_with_grad(ctx, y, up)) {
        CHECK(chk, false, "linear backward: %s", ctx->err.msg);
        return;
    }
    float *got_y = malloc(R * OUT * 4), *got_dx = malloc(R * IN * 4), *got_dw = malloc(OUT * IN * 4), *got_db = malloc(OUT * 4);
    qb_to_host(ctx, y, got_y);
    qb_to_host(ctx, xt->grad, got_dx);
    qb_to_host(ctx, wt->grad, got_dw);
    qb_to_host(ctx, bt->grad, got_db);
    /* the GEMMs as the bf16 path ran them before: fp32 operands rounded inside */
    qb_gemm_batch one = {{1, 1}, {0, 0}, {0, 0}, {0, 0}, QB_PREC_BF16, false, false, QB_CPU_GEMM_DEFAULT};
    float *ref_y = malloc(R * OUT * 4), *ref_dx = calloc(R * IN, 4), *ref_dw = calloc(OUT * IN, 4), *ref_db = calloc(OUT, 4);
    for (int r = 0; r < R; r++) memcpy(ref_y + r * OUT, bias, OUT * 4);
    int rc = qb_cpu_gemm(NULL, false, true, R, OUT, IN, 1.0f, x, IN, w, IN, 1.0f, ref_y, OUT, &one) ||
             qb_cpu_gemm(NULL, false, false, R, IN, OUT, 1.0f, up, OUT, w, IN, 0.0f, ref_dx, IN, &one) ||
             qb_cpu_gemm(NULL, true, false, OUT, IN, R, 1.0f, up, OUT, x, IN, 1.0f, ref_dw, IN, &one) ||
             qb_cpu_col_sum(NULL, ref_db, up, R, OUT);
    CHECK(chk, rc == 0, "reference GEMMs run");
    CHECK(chk, unequal(got_y, ref_y, R * OUT) == 0, "linear bf16 output: the fp32-operand bf16 GEMM's bits");
    CHECK(chk, unequal(got_dx, ref_dx, R * IN) == 0, "linear bf16 dx: the fp32-operand bf16 GEMM's bits");
    CHECK(chk, unequal(got_dw, ref_dw, OUT * IN) == 0, "linear bf16 dW from the saved bf16 x: the fp32-operand bf16 GEMM's bits");
    CHECK(chk, unequal(got_db, ref_db, OUT) == 0, "linear bf16 dbias");
    free(got_y), free(got_dx), free(got_dw), free(got_db), free(ref_y), free(ref_dx), free(ref_dw), free(ref_db);
    free(x), free(w), free(bias), free(up);
    qb_ctx_set_precision(ctx, QB_PREC_FP32);
}

int main(void) {
    qb_check chk = {0};
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    if (!ctx) {
        fprintf(stderr, "context: %s\n", err.msg);
        return 1;
    }
    int rc = qb_ctx_set_precision(ctx, QB_PREC_TF32);
    CHECK(&chk, rc == -1 && strstr(ctx->err.msg, "precision tf32: the cpu device computes GEMMs in fp32 or bf16 only") &&
                    ctx->precision == QB_PREC_FP32,
          "tf32 refused on the cpu: %s", ctx->err.msg);
    qb_err_clear(&ctx->err);
    const char *why = qb_cpu_bf16_unavailable();
    rc = qb_ctx_set_precision(ctx, QB_PREC_BF16);
    if (why) {
        CHECK(&chk, rc == -1 && strstr(ctx->err.msg, why) && ctx->precision == QB_PREC_FP32, "bf16 refused with the reason: %s",
              ctx->err.msg);
        printf("SKIP: bf16 GEMMs on the cpu: %s\n", why);
        qb_ctx_free(ctx);
        return chk.failed ? 1 : 77;
    }
    CHECK(&chk, rc == 0 && ctx->precision == QB_PREC_BF16, "bf16 accepted on this cpu: %s", ctx->err.msg);
    qb_ctx_set_precision(ctx, QB_PREC_FP32);
    test_gemm(&chk);
    test_cast(&chk);
    test_linear_saved(&chk, ctx);
    static const char *ops[] = {"matmul_nn", "matmul_tn", "matmul_nt", "matmul_tt", "matmul_batched", "matmul_shared_b",
                                "matmul_strided_view", "linear_bias", "linear_nobias"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        qb_ctx_step_reset(ctx);
        test_op(&chk, ctx, ops[i]);
    }
    qb_ctx_free(ctx);
    return qb_check_finish(&chk, "cpu bf16");
}

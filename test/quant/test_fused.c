/* test_fused.c: each fused op (op_fused.h) against the unfused composition of autograd's ops and qb_fake_quant on the
 * CPU: outputs and every input gradient bit for bit (fused_cases.h); the same on the remote test device (the shells
 * read no tensor memory); and the shells' errors. */
#include "check.h"
#include "fused_cases.h"
#include "remote_device.h"

static qb_check chk;

static void check_bits(const char *what, const char *name, const float *got, const float *want, int64_t n) {
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++)
        if (memcmp(got + i, want + i, sizeof(float))) {
            if (first < 0) first = i;
            bad++;
        }
    CHECK(&chk, bad == 0, "%s: %s: %lld of %lld differ (first at %lld: %.9g vs %.9g)", name, what, (long long)bad, (long long)n,
          (long long)first, first >= 0 ? (double)got[first] : 0.0, first >= 0 ? (double)want[first] : 0.0);
}

static void errors(void) {
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    int64_t s2[2] = {2, 3}, s3[2] = {3, 2};
    quant_desc d = quant_desc_default(), du = d;
    du.is_unsigned = true;
    qb_tensor *a = qb_param_new(ctx, "a", 2, s2), *b = qb_param_new(ctx, "b", 2, s3);
    qb_fq_spec ok = {1.0f, &d}, neg = {-1.0f, &d}, uns = {1.0f, &du};
    CHECK(&chk, !qb_add_fq_layernorm(ctx, a, b, NULL, NULL, 1e-5f, &ok, &ok, NULL, NULL) && strstr(ctx->err.msg, "differ in shape"),
          "shape mismatch: %s", ctx->err.msg);
    qb_err_clear(&ctx->err);
    CHECK(&chk, !qb_act_fq(ctx, QB_UNARY_GELU, a, &neg) && strstr(ctx->err.msg, "amax = -1"), "negative amax: %s", ctx->err.msg);
    qb_err_clear(&ctx->err);
    CHECK(&chk, !qb_softmax_dropout_fq(ctx, a, 1.0f, NULL, 0.1f, &uns) && strstr(ctx->err.msg, "unsigned"), "unsigned: %s", ctx->err.msg);
    qb_err_clear(&ctx->err);
    CHECK(&chk, !qb_softmax_dropout_fq(ctx, a, 1.0f, b, 0.1f, &ok) && strstr(ctx->err.msg, "does not broadcast"), "mask: %s", ctx->err.msg);
    qb_ctx_free(ctx);
}

int main(void) {
    for (int i = 0; i < FC_N_CASES; i++) {
        const fc_case *c = &fc_cases[i];
        qb_err err = {0};
        qb_ctx *cf = qb_ctx_new(QB_CPU, 7, &err), *cu = qb_ctx_new(QB_CPU, 7, &err), *cr = remote_ctx_new(7, &err);
        if (!cf || !cu || !cr) qb_die("test_fused", &err);
        fc_result f, u, rm;
        int rf = fc_run(cf, c, true, &f), ru = fc_run(cu, c, false, &u), rr = fc_run(cr, c, true, &rm);
        if (CHECK(&chk, rr == 0 && rm.n_out == u.n_out && rm.n_in == u.n_in, "%s: remote: %s", c->name, rm.err)) {
            for (int k = 0; k < rm.n_out; k++) check_bits("remote output", c->name, rm.out[k], u.out[k], rm.out_n[k]);
            for (int k = 0; k < rm.n_in; k++) check_bits("remote input gradient", c->name, rm.grad[k], u.grad[k], rm.in_n[k]);
        }
        fc_free(&rm);
        qb_ctx_free(cr);
        if (CHECK(&chk, rf == 0 && ru == 0, "%s: fused: %s; unfused: %s", c->name, f.err, u.err) &&
            CHECK(&chk, f.n_out == u.n_out && f.n_in == u.n_in, "%s: outputs/inputs differ", c->name)) {
            for (int k = 0; k < f.n_out; k++) check_bits("output", c->name, f.out[k], u.out[k], f.out_n[k]);
            for (int k = 0; k < f.n_in; k++) check_bits("input gradient", c->name, f.grad[k], u.grad[k], f.in_n[k]);
        }
        fc_free(&f);
        fc_free(&u);
        qb_ctx_free(cf);
        qb_ctx_free(cu);
    }
    errors();
    return qb_check_finish(&chk, "test_fused");
}

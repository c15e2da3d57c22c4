/* test_errors.c: a bad shape or op misuse gives an error naming the op and the shapes, never a crash;
 * later ops on the failed result return NULL, and a step reset clears the error. */
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include "autograd/autograd.h"
#include "check.h"

static qb_tensor *t2(qb_ctx *ctx, int64_t a, int64_t b) { return qb_zeros(ctx, 2, (int64_t[]){a, b}); }

/* Checks that ctx failed with a message containing every needle, then resets. */
static void expect_error(qb_check *chk, qb_ctx *ctx, qb_tensor *result, const char *what, const char *n1, const char *n2) {
    bool ok = result == NULL && qb_ctx_failed(ctx) && strstr(ctx->err.msg, n1) && (!n2 || strstr(ctx->err.msg, n2));
    printf("%s %-28s -> %s\n", ok ? "ok  " : "FAIL", what, ctx->err.msg);
    CHECK(chk, ok, "%s: expected an error naming '%s'%s%s, got '%s'", what, n1, n2 ? " and " : "", n2 ? n2 : "", ctx->err.msg);
    qb_ctx_step_reset(ctx);
}

int main(void) {
    qb_check chk = {0};
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    if (!ctx) qb_die("test_errors", &err);

    expect_error(&chk, ctx, qb_matmul(ctx, t2(ctx, 5, 7), t2(ctx, 6, 3), false, false), "matmul inner dims", "matmul", "[5, 7]");
    expect_error(&chk, ctx, qb_matmul(ctx, qb_zeros(ctx, 3, (int64_t[]){2, 4, 5}), qb_zeros(ctx, 3, (int64_t[]){3, 5, 6}), false, false),
                 "matmul batch dims", "matmul: batch dims", "[3, 5, 6]");
    expect_error(&chk, ctx, qb_linear(ctx, t2(ctx, 4, 8), t2(ctx, 6, 7), NULL), "linear in features", "linear", "[6, 7]");
    expect_error(&chk, ctx, qb_linear(ctx, t2(ctx, 4, 8), t2(ctx, 6, 8), qb_zeros(ctx, 1, (int64_t[]){5})), "linear bias", "linear: bias", "[5]");
    expect_error(&chk, ctx, qb_add(ctx, t2(ctx, 3, 4), t2(ctx, 3, 5)), "add broadcast", "add", "[3, 5]");
    expect_error(&chk, ctx, qb_bias_add(ctx, t2(ctx, 3, 4), qb_zeros(ctx, 1, (int64_t[]){3})), "bias_add", "bias_add", "[3]");
    expect_error(&chk, ctx, qb_layernorm(ctx, t2(ctx, 3, 4), qb_zeros(ctx, 1, (int64_t[]){5}), NULL, 1e-5f), "layernorm weight", "layernorm", "[5]");
    expect_error(&chk, ctx, qb_softmax(ctx, qb_zeros(ctx, 4, (int64_t[]){2, 3, 5, 5}), 1.0f, qb_zeros(ctx, 4, (int64_t[]){2, 1, 1, 4})),
                 "softmax mask", "softmax: mask", "[2, 1, 1, 4]");
    expect_error(&chk, ctx, qb_dropout(ctx, t2(ctx, 2, 2), 1.5f), "dropout p", "dropout", "1.5");
    int32_t ids[3] = {0, 12, 1};
    expect_error(&chk, ctx, qb_embedding(ctx, t2(ctx, 10, 4), ids, 1, (int64_t[]){3}), "embedding id", "embedding: id 12", "position 1");
    int32_t labels[2] = {0, 7};
    expect_error(&chk, ctx, qb_cross_entropy(ctx, t2(ctx, 2, 5), labels, -100), "cross_entropy label", "cross_entropy: label 7", "row 1");
    expect_error(&chk, ctx, qb_reshape(ctx, t2(ctx, 3, 4), 2, (int64_t[]){5, 2}), "reshape count", "reshape", "[5, 2]");
    expect_error(&chk, ctx, qb_slice(ctx, t2(ctx, 3, 4), 1, 2, 3), "slice range", "slice", "[3, 4]");
    expect_error(&chk, ctx, qb_permute(ctx, t2(ctx, 3, 4), (int[]){0, 0}), "permute", "permute", NULL);
    expect_error(&chk, ctx, qb_split_heads(ctx, qb_zeros(ctx, 3, (int64_t[]){2, 3, 10}), 4), "split_heads", "split_heads", "[2, 3, 10]");
    expect_error(&chk, ctx, qb_mse_loss(ctx, t2(ctx, 2, 3), t2(ctx, 3, 2)), "mse shapes", "mse_loss", "[3, 2]");
    expect_error(&chk, ctx, qb_zeros(ctx, 5, (int64_t[]){1, 1, 1, 1, 1}), "too many dims", "5 dims", NULL);
    expect_error(&chk, ctx, qb_zeros(ctx, 2, (int64_t[]){2, -1}), "negative size", "negative size", NULL);

    /* backward misuse */
    qb_tensor *w = qb_param_new(ctx, "w", 2, (int64_t[]){2, 3});
    qb_tensor *y = qb_scale(ctx, w, 2.0f);
    CHECK(&chk, qb_backward(ctx, y) != 0 && strstr(ctx->err.msg, "one element") && strstr(ctx->err.msg, "[2, 3]"),
          "backward of a non-scalar names the shape: %s", ctx->err.msg);
    qb_ctx_step_reset(ctx);

    /* an error propagates: later ops get NULL and keep the first message */
    qb_tensor *bad = qb_matmul(ctx, t2(ctx, 2, 3), t2(ctx, 4, 5), false, false);
    qb_tensor *later = qb_gelu(ctx, qb_add(ctx, bad, bad));
    CHECK(&chk, later == NULL && strstr(ctx->err.msg, "matmul"), "first error is kept: %s", ctx->err.msg);
    qb_ctx_step_reset(ctx);
    CHECK(&chk, !qb_ctx_failed(ctx) && qb_gelu(ctx, t2(ctx, 2, 2)) != NULL, "reset clears the error");

    /* cuda tensors on a cpu-only op path are refused, not crashed on */
    qb_err cerr = {0};
    qb_ctx *cctx = qb_ctx_new(QB_CUDA, 1, &cerr);
    CHECK(&chk, cctx != NULL || strstr(cerr.msg, "cuda"), "cuda context: created or refused with a cuda message (%s)", cerr.msg);
    qb_ctx_free(cctx);
    qb_ctx_free(ctx);
    return qb_check_finish(&chk, "autograd errors");
}

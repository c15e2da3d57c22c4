/* test_backend.c: the kernel table: a context takes its device's table, a NULL entry gives one error naming the op and
 * the device, every op checks the devices of all its inputs, view backwards run through the table, and the explicit
 * memory calls (item, upload, download, row views). Bugs fixed with the table: packed-block padding zeroed, linear with
 * no input features, a shared-B matmul gradient with an empty batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "autograd/cpu/kernels.h"
#include "check.h"

static int accumulate_calls;

static int counting_accumulate_strided(qb_dev *d, float *dst, const int64_t *dst_stride, const float *src, int ndim, const int64_t *shape) {
    accumulate_calls++;
    return qb_cpu_accumulate_strided(d, dst, dst_stride, src, ndim, shape);
}

static bool failed_with(qb_ctx *ctx, const char *n1, const char *n2) {
    bool ok = qb_ctx_failed(ctx) && strstr(ctx->err.msg, n1) && (!n2 || strstr(ctx->err.msg, n2));
    printf("%s %s\n", ok ? "ok  " : "FAIL", ctx->err.msg);
    return ok;
}

/* sum(view(x)) backward for a [2, 3, 4] parameter: the gradient is 1 where the view reads x, 0 elsewhere. */
static void view_backwards(qb_check *c, qb_ctx *ctx, qb_tensor *x) {
    qb_kernels t = qb_cpu_kernels;
    t.accumulate_strided = counting_accumulate_strided;
    ctx->k = &t;
    qb_zero_grad(ctx);
    qb_zero_grad_flush(ctx); /* a gradient to add into (a marked one, the permute's backward would overwrite) */
    qb_ctx_step_reset(ctx);
    accumulate_calls = 0;
    int rc = qb_backward(ctx, qb_sum(ctx, qb_transpose(ctx, x, 0, 2)));
    qb_ctx_step_reset(ctx);
    rc = rc || qb_backward(ctx, qb_sum(ctx, qb_slice(ctx, x, 2, 1, 2)));
    CHECK(c, rc == 0 && accumulate_calls == 2, "permute and slice backwards run the table's accumulate_strided (%d calls): %s",
          accumulate_calls, ctx->err.msg);
    bool right = true;
    for (int64_t i = 0; i < 24; i++) right &= x->grad->data[i] == (i % 4 == 1 || i % 4 == 2 ? 2.0f : 1.0f);
    CHECK(c, right, "view gradients added back through the views");
    t.accumulate_strided = NULL;
    qb_ctx_step_reset(ctx);
    qb_backward(ctx, qb_sum(ctx, qb_slice(ctx, x, 1, 0, 2)));
    CHECK(c, failed_with(ctx, "slice: no cpu kernel (accumulate_strided)", NULL), "slice backward without the kernel: one uniform error");
    t = qb_cpu_kernels;
    t.copy_strided = NULL;
    qb_ctx_step_reset(ctx);
    CHECK(c, qb_contiguous(ctx, qb_transpose(ctx, x, 0, 1)) == NULL && failed_with(ctx, "contiguous: no cpu kernel (copy_strided)", NULL),
          "contiguous without the kernel");
    ctx->k = &qb_cpu_kernels;
    qb_ctx_step_reset(ctx);
}

/* Ops given an input on another device (a tensor struct claiming cuda) fail naming the op and both devices. */
static void device_checks(qb_check *c, qb_ctx *ctx) {
    for (int k = 0; k < 5; k++) {
        qb_ctx_step_reset(ctx);
        qb_tensor *a = qb_zeros(ctx, 2, (int64_t[]){3, 4}), *v = qb_zeros(ctx, 1, (int64_t[]){4});
        qb_tensor fa = *a, fv = *v;
        fa.device = fv.device = QB_CUDA;
        static const char *const what[5] = {"add: second input", "layernorm: bias", "linear: bias", "matmul: B", "gelu: the only input"};
        qb_tensor *r = k == 0   ? qb_add(ctx, a, &fa)
                       : k == 1 ? qb_layernorm(ctx, a, v, &fv, 1e-5f)
                       : k == 2 ? qb_linear(ctx, a, qb_zeros(ctx, 2, (int64_t[]){4, 4}), &fv)
                       : k == 3 ? qb_matmul(ctx, a, &fa, false, true)
                                : qb_gelu(ctx, &fa);
        const char *want = k == 4 ? "gelu: inputs on cuda but the context on cpu" : "inputs on cpu and cuda";
        CHECK(c, !r && failed_with(ctx, want, NULL), "%s on another device is refused", what[k]);
    }
    qb_ctx_step_reset(ctx);
}

/* Explicit memory calls. */
static void memory_calls(qb_check *c, qb_ctx *ctx) {
    qb_ctx_step_reset(ctx);
    float h[6] = {1, 2, 3, 4, 5, 6}, back[6] = {0};
    qb_tensor *t = qb_from_host(ctx, 2, (int64_t[]){3, 2}, h);
    qb_tensor row = qb_view_rows(t, 1, 2);
    CHECK(c, row.shape[0] == 2 && row.shape[1] == 2 && qb_to_host(ctx, &row, back) == 0 && back[0] == 3 && back[3] == 6,
          "row view [1, 3) of a [3, 2] tensor");
    qb_tensor one = qb_view_rows(t, 2, 1);
    qb_tensor *s = qb_sum(ctx, qb_reshape(ctx, &one, 1, (int64_t[]){2}));
    CHECK(c, qb_item(ctx, s) == 11.0f, "item of a sum: %s", ctx->err.msg);
    CHECK(c, isnan(qb_item(ctx, t)) && failed_with(ctx, "item", "[3, 2]"), "item of a [3, 2] tensor is an error");
    qb_ctx_step_reset(ctx);
    int32_t ids[3] = {7, -2, 9}, ids_back[3] = {0};
    int32_t *d = qb_upload_i32(ctx, ids, 3);
    CHECK(c, d && qb_download(ctx, ids_back, d, sizeof ids_back) == 0 && !memcmp(ids, ids_back, sizeof ids), "upload and download");
}

/* qb_params_pack zeroes the padding of both blocks. */
static void pack_padding(qb_check *c) {
    for (int rep = 0; rep < 8; rep++) {  /* leave freed garbage where the blocks will be allocated */
        void *junk[8];
        for (int k = 0; k < 8; k++) {
            junk[k] = malloc((size_t)(64 << k));
            memset(junk[k], 0xab, (size_t)(64 << k));
        }
        for (int k = 0; k < 8; k++) free(junk[k]);
    }
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    for (int k = 0; k < 3; k++) {
        char name[8];
        snprintf(name, sizeof name, "p%d", k);
        qb_fill(ctx, qb_param_new(ctx, name, 1, (int64_t[]){3}), 1.0f + (float)k);
    }
    CHECK(c, qb_params_pack(ctx) == 0 && ctx->params.block_numel == 48, "pack: %s", ctx->err.msg);
    int bad = 0;
    for (int64_t i = 0; i < ctx->params.block_numel; i++) {
        bool pad = i % 16 >= 3;
        bad += pad ? ctx->params.block_data[i] != 0.0f || ctx->params.block_grad[i] != 0.0f
                   : ctx->params.block_data[i] != 1.0f + (float)(i / 16) || ctx->params.block_grad[i] != 0.0f;
    }
    CHECK(c, bad == 0, "packed blocks: values kept, padding zero (%d wrong)", bad);
    qb_ctx_free(ctx);
}

/* linear with in = 0: y = bias; backward must not divide by in. */
static void linear_no_inputs(qb_check *c, qb_ctx *ctx) {
    qb_ctx_step_reset(ctx);
    qb_tensor *w = qb_param_new(ctx, "w0", 2, (int64_t[]){4, 0}), *b = qb_param_new(ctx, "b0", 1, (int64_t[]){4});
    qb_fill(ctx, b, 0.5f);
    qb_tensor *x = qb_zeros(ctx, 2, (int64_t[]){3, 0});
    x->requires_grad = true;
    qb_tensor *y = qb_linear(ctx, x, w, b);
    int rc = qb_backward(ctx, qb_sum(ctx, y));
    float sum = qb_item(ctx, qb_sum(ctx, y));
    CHECK(c, rc == 0 && sum == 6.0f && b->grad->data[0] == 3.0f && b->grad->data[3] == 3.0f,
          "linear [3, 0] x [4, 0]: y = bias (sum %g), dbias = rows (%g) %s", sum, b->grad->data[0], ctx->err.msg);
    qb_ctx_step_reset(ctx);
}

/* matmul of an empty batch with a shared B: B's fresh gradient is zero, not left unwritten. */
static void shared_b_empty_batch(qb_check *c, qb_ctx *ctx) {
    for (int step = 0; step < 2; step++) {  /* grow the arena, then fill it with NaN */
        qb_ctx_step_reset(ctx);
        qb_fill(ctx, qb_new(ctx, 1, (int64_t[]){4096}), NAN);
    }
    qb_ctx_step_reset(ctx);
    qb_tensor *a = qb_zeros(ctx, 3, (int64_t[]){0, 3, 4}), *b = qb_zeros(ctx, 2, (int64_t[]){4, 5});
    a->requires_grad = b->requires_grad = true;
    qb_tensor *y = qb_matmul(ctx, a, b, false, false);
    int rc = qb_backward(ctx, qb_sum(ctx, y));
    float g[20];
    CHECK(c, rc == 0 && b->grad && qb_to_host(ctx, b->grad, g) == 0, "backward of an empty batch: %s", ctx->err.msg);
    int bad = 0;
    for (int i = 0; i < 20; i++) bad += g[i] != 0.0f;
    CHECK(c, bad == 0, "shared B's gradient over an empty batch is zero (%d elements not)", bad);
    qb_ctx_step_reset(ctx);
}

int main(void) {
    qb_check chk = {0};
    pack_padding(&chk);
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    if (!ctx) qb_die("test_backend", &err);
    CHECK(&chk, ctx->k == &qb_cpu_kernels && ctx->dev == NULL && !strcmp(ctx->k->name, "cpu"), "a cpu context takes the cpu table");
    qb_kernels t = qb_cpu_kernels;
    t.layernorm = NULL;
    ctx->k = &t;
    qb_tensor *x = qb_zeros(ctx, 2, (int64_t[]){2, 8});
    CHECK(&chk, qb_layernorm(ctx, x, NULL, NULL, 1e-5f) == NULL && failed_with(ctx, "layernorm: no cpu kernel (layernorm)", NULL),
          "a NULL entry: one error naming the op, the device and the entry");
    ctx->k = &qb_cpu_kernels;
    qb_ctx_step_reset(ctx);
    qb_tensor *p = qb_param_new(ctx, "x", 3, (int64_t[]){2, 3, 4});
    view_backwards(&chk, ctx, p);
    device_checks(&chk, ctx);
    memory_calls(&chk, ctx);
    linear_no_inputs(&chk, ctx);
    shared_b_empty_batch(&chk, ctx);
    qb_ctx_free(ctx);
    return qb_check_finish(&chk, "kernel table");
}

/* test_engine.c: engine behaviour: the step arena's reuse of handed-back memory, steady-state memory, no-grad mode, gradient accumulation, lazy zero_grad, views sharing
 * storage, RNG and dropout independent of the thread count, and a tiny network trained to a stated loss. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "check.h"

/* y = W2 gelu(W1 x + b1) + b2; loss = mse(y, target). x [16, 4], target [16, 1] = sum of x^2 / 4. */
static qb_tensor *mlp_loss(qb_ctx *ctx, const float *x, const float *target) {
    qb_tensor *xt = qb_from_host(ctx, 2, (int64_t[]){16, 4}, x);
    qb_tensor *tt = qb_from_host(ctx, 2, (int64_t[]){16, 1}, target);
    qb_tensor *h = qb_gelu(ctx, qb_linear(ctx, xt, qb_param_find(ctx, "w1"), qb_param_find(ctx, "b1")));
    h = qb_dropout(ctx, h, 0.1f);
    qb_tensor *y = qb_linear(ctx, h, qb_param_find(ctx, "w2"), qb_param_find(ctx, "b2"));
    return qb_mse_loss(ctx, y, tt);
}

/* qb_arena_release: a handed-back range is taken by the next allocation that fits (best fit, cut from its front),
 * neighbours merge, the top of the block lowers `used`, the peak counts what was live, reset forgets the ranges. */
static void test_arena_release(qb_check *chk) {
    qb_arena a;
    if (qb_arena_init(&a, &qb_cpu_kernels, NULL, 1 << 16)) abort();
    char *p0 = qb_arena_alloc(&a, 1024), *p1 = qb_arena_alloc(&a, 4096), *p2 = qb_arena_alloc(&a, 1024), *p3 = qb_arena_alloc(&a, 256);
    size_t used = a.used;
    CHECK(chk, qb_arena_release(&a, p1, 4096) == 0 && a.used == used && a.n_holes == 1, "a middle range becomes a hole");
    CHECK(chk, qb_arena_release(&a, p0, 1000) == 0 && a.n_holes == 1 && a.holes[0].p == p0 && a.holes[0].n == 5120,
          "its neighbour merges with it (sizes rounded to 64)");
    char *q = qb_arena_alloc(&a, 512);
    CHECK(chk, q == p0 && a.used == used && a.holes[0].p == p0 + 512, "an allocation that fits takes the hole's front");
    CHECK(chk, qb_arena_release(&a, p3, 256) == 0 && a.used == used - 256, "the top range lowers used");
    CHECK(chk, qb_arena_release(&a, p2, 1024) == 0 && a.used == 512 && a.n_holes == 0, "the top merges with the hole below it");
    CHECK(chk, a.peak == used, "the peak is what was live at most (%zu, want %zu)", a.peak, used);
    qb_arena_alloc(&a, 64);
    char *r = qb_arena_alloc(&a, 128);
    qb_arena_release(&a, q, 512);
    CHECK(chk, qb_arena_reset(&a) == 0 && a.used == 0 && a.n_holes == 0 && qb_arena_alloc(&a, 128) == a.base, "reset forgets the holes");
    (void)r;
    qb_arena_free(&a);
}

/* qb_zero_grad marks the gradients without writing them; the backward overwrites or zero-fills what it reaches and
 * writes the zeros of the rest at its end; a flush (whole or a span of the block) writes what is still marked. */
static void test_lazy_zero_grad(qb_check *chk, const float *x, const float *target) {
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 5, &err);
    if (!ctx) qb_die("test_engine", &err);
    qb_tensor *w1 = qb_param_new(ctx, "w1", 2, (int64_t[]){32, 4}), *b1 = qb_param_new(ctx, "b1", 1, (int64_t[]){32});
    qb_tensor *w2 = qb_param_new(ctx, "w2", 2, (int64_t[]){1, 32}), *b2 = qb_param_new(ctx, "b2", 1, (int64_t[]){1});
    qb_tensor *unused = qb_param_new(ctx, "unused", 1, (int64_t[]){5});
    if (!unused || qb_fill_normal(ctx, w1, 0.0f, 0.5f) || qb_fill_normal(ctx, w2, 0.0f, 0.2f) || qb_params_pack(ctx)) qb_die("test_engine", &ctx->err);
    qb_tensor *params[5] = {w1, b1, w2, b2, unused};
    const int64_t n = ctx->params.block_numel;
    float *g[2];
    for (int rep = 0; rep < 2; rep++) {
        for (int p = 0; p < 5; p++)
            for (int64_t i = 0; i < qb_numel(params[p]); i++) params[p]->grad->data[i] = rep ? 0.0f : NAN;
        qb_zero_grad(ctx);
        CHECK(chk, ctx->params.n_grad_zero == 5 && (rep || isnan(w1->grad->data[0])), "zero_grad marks %d gradients and writes none",
              ctx->params.n_grad_zero);
        qb_ctx_step_reset(ctx);
        CHECK(chk, qb_backward(ctx, mlp_loss(ctx, x, target)) == 0 && ctx->params.n_grad_zero == 0, "backward: %s", ctx->err.msg);
        g[rep] = malloc((size_t)n * sizeof(float));
        memcpy(g[rep], ctx->params.block_grad, (size_t)n * sizeof(float));
    }
    CHECK(chk, memcmp(g[0], g[1], (size_t)n * sizeof(float)) == 0, "the backward writes every gradient: the old contents do not show");
    bool zeros = true;
    for (int64_t i = 0; i < 5; i++) zeros &= unused->grad->data[i] == 0.0f;
    CHECK(chk, zeros && w1->grad->data[0] != 0.0f, "a parameter the backward does not reach gets zeros");
    for (int p = 0; p < 5; p++)
        for (int64_t i = 0; i < qb_numel(params[p]); i++) params[p]->grad->data[i] = NAN;
    qb_zero_grad(ctx);
    int64_t first = w2->grad->data - ctx->params.block_grad;
    CHECK(chk, qb_zero_grad_flush_span(ctx, first, first + 31) == 0 && ctx->params.n_grad_zero == 4 && !w2->grad_zero && w2->grad->data[31] == 0.0f &&
               isnan(b1->grad->data[0]) && isnan(b2->grad->data[0]),
          "a span flush writes the zeros of the gradients in the span only");
    CHECK(chk, qb_zero_grad_flush(ctx) == 0 && ctx->params.n_grad_zero == 0, "flush: %s", ctx->err.msg);
    zeros = true;
    for (int p = 0; p < 5; p++)
        for (int64_t i = 0; i < qb_numel(params[p]); i++) zeros &= params[p]->grad->data[i] == 0.0f;
    CHECK(chk, zeros, "a flush writes the zeros of every marked gradient");
    free(g[0]);
    free(g[1]);
    qb_ctx_free(ctx);
}

int main(void) {
    qb_check chk = {0};
    test_arena_release(&chk);
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 5, &err);
    if (!ctx) qb_die("test_engine", &err);
    qb_tensor *w1 = qb_param_new(ctx, "w1", 2, (int64_t[]){32, 4});
    qb_tensor *b1 = qb_param_new(ctx, "b1", 1, (int64_t[]){32});
    qb_tensor *w2 = qb_param_new(ctx, "w2", 2, (int64_t[]){1, 32});
    qb_param_new(ctx, "b2", 1, (int64_t[]){1});
    qb_fill_normal(ctx, w1, 0.0f, 0.5f);
    qb_fill_normal(ctx, w2, 0.0f, 0.2f);
    (void)b1;
    float x[64], target[16];
    qb_rng_normal(x, 64, 0.0f, 1.0f, 11, 0);
    for (int r = 0; r < 16; r++) target[r] = (x[4 * r] * x[4 * r] + x[4 * r + 1] * x[4 * r + 1] + x[4 * r + 2] * x[4 * r + 2] + x[4 * r + 3] * x[4 * r + 3]) / 4;
    test_lazy_zero_grad(&chk, x, target);

    /* steady state: after the first steps, a step allocates nothing */
    ctx->training = true;
    size_t cap_after_2 = 0;
    float first = 0, last = 0;
    for (int step = 0; step < 300; step++) {
        qb_ctx_step_reset(ctx);
        qb_zero_grad(ctx);
        qb_tensor *loss = mlp_loss(ctx, x, target);
        if (qb_backward(ctx, loss)) qb_die("test_engine", &ctx->err);
        if (step == 0) first = loss->data[0];
        last = loss->data[0];
        for (int p = 0; p < ctx->params.n; p++) {  /* plain SGD */
            qb_tensor *t = ctx->params.items[p];
            for (int64_t i = 0; i < qb_numel(t); i++) t->data[i] -= 0.05f * t->grad->data[i];
        }
        if (step == 2) cap_after_2 = ctx->act.cap;
        if (step >= 3 && (ctx->act.n_spill || ctx->meta.n_spill)) break;
    }
    CHECK(&chk, ctx->act.n_spill == 0 && ctx->meta.n_spill == 0 && ctx->act.cap == cap_after_2,
          "no allocation in steady state (act spill %zu, cap %zu vs %zu)", ctx->act.n_spill, ctx->act.cap, cap_after_2);
    printf("tiny MLP regression: loss %.4f -> %.4f after 300 SGD steps\n", first, last);
    CHECK(&chk, last < 0.25f * first, "training reduces the loss to a quarter (%.4f -> %.4f)", first, last);

    /* packing moves parameters and gradients into one block each, values kept */
    float before[32 * 4], gbefore[32 * 4];
    memcpy(before, w1->data, sizeof before);
    memcpy(gbefore, w1->grad->data, sizeof gbefore);
    qb_ctx_step_reset(ctx);
    ctx->training = false;
    float loss_before = mlp_loss(ctx, x, target)->data[0];
    CHECK(&chk, qb_params_pack(ctx) == 0, "pack: %s", ctx->err.msg);
    qb_tensor *b2 = qb_param_find(ctx, "b2");
    CHECK(&chk, w1->data == ctx->params.block_data && b2->grad->data == ctx->params.block_grad + (128 + 32 + 32),
          "parameters laid out in creation order (64-byte aligned) in one block");
    CHECK(&chk, memcmp(before, w1->data, sizeof before) == 0 && memcmp(gbefore, w1->grad->data, sizeof gbefore) == 0,
          "values and gradients kept");
    qb_ctx_step_reset(ctx);
    float loss_after = mlp_loss(ctx, x, target)->data[0];
    CHECK(&chk, loss_after == loss_before && qb_params_pack(ctx) == 0 && w1->data == ctx->params.block_data,
          "same loss after packing (%.6f vs %.6f); packing twice works", loss_after, loss_before);
    ctx->training = true;

    /* no-grad mode records nothing */
    qb_ctx_step_reset(ctx);
    ctx->no_grad = true;
    qb_tensor *l = mlp_loss(ctx, x, target);
    CHECK(&chk, l && ctx->n_tape == 0 && !l->requires_grad, "no-grad mode records no op (tape %d)", ctx->n_tape);
    ctx->no_grad = false;
    ctx->training = false;

    /* gradients accumulate across backward calls until zero_grad */
    float g1[32 * 4], g2[32 * 4];
    qb_zero_grad(ctx);
    for (int rep = 0; rep < 2; rep++) {
        qb_ctx_step_reset(ctx);
        qb_backward(ctx, mlp_loss(ctx, x, target));
        memcpy(rep ? g2 : g1, w1->grad->data, sizeof g1);
    }
    double maxd = 0;
    for (int i = 0; i < 128; i++) maxd = fmax(maxd, fabs(g2[i] - 2 * g1[i]));
    CHECK(&chk, maxd < 1e-5, "second backward doubles the gradient (max diff %.3g)", maxd);
    qb_zero_grad(ctx);
    CHECK(&chk, qb_zero_grad_flush(ctx) == 0 && w1->grad->data[0] == 0.0f && w1->grad->data[127] == 0.0f, "zero_grad clears gradients");

    /* views share storage */
    qb_ctx_step_reset(ctx);
    qb_tensor *a = qb_zeros(ctx, 3, (int64_t[]){2, 3, 4});
    qb_tensor *p = qb_transpose(ctx, a, 1, 2);
    qb_tensor *s = qb_slice(ctx, a, 2, 1, 2);
    qb_tensor *r = qb_reshape(ctx, a, 2, (int64_t[]){6, 4});
    CHECK(&chk, p->data == a->data && s->data == a->data + 1 && r->data == a->data && !qb_is_contiguous(p),
          "transpose, slice and reshape are views");

    /* RNG and dropout do not depend on the thread count */
    enum { N = 100003 };
    float *u1 = malloc(N * sizeof(float)), *u2 = malloc(N * sizeof(float));
    omp_set_num_threads(1);
    qb_rng_normal(u1, N, 0, 1, 77, 5);
    omp_set_num_threads(2);
    qb_rng_normal(u2, N, 0, 1, 77, 5);
    CHECK(&chk, memcmp(u1, u2, N * sizeof(float)) == 0, "normal RNG identical with 1 and 2 threads");
    double mean = 0, var = 0;
    for (int i = 0; i < N; i++) mean += u1[i];
    mean /= N;
    for (int i = 0; i < N; i++) var += (u1[i] - mean) * (u1[i] - mean);
    var /= N;
    CHECK(&chk, fabs(mean) < 0.02 && fabs(var - 1) < 0.03, "normal RNG moments (mean %.4f, var %.4f)", mean, var);
    ctx->training = true;
    for (int rep = 0; rep < 2; rep++) {
        omp_set_num_threads(rep + 1);
        qb_ctx_step_reset(ctx);
        ctx->rng_counter = 1000;
        qb_tensor *ones = qb_new(ctx, 1, (int64_t[]){N});
        qb_fill(ctx, ones, 1.0f);
        qb_tensor *d = qb_dropout(ctx, ones, 0.25f);
        memcpy(rep ? u2 : u1, d->data, N * sizeof(float));
    }
    int kept = 0;
    for (int i = 0; i < N; i++) kept += u1[i] != 0.0f;
    CHECK(&chk, memcmp(u1, u2, N * sizeof(float)) == 0, "dropout mask identical with 1 and 2 threads");
    CHECK(&chk, fabs((double)kept / N - 0.75) < 0.01 && fabsf(u1[0] * (u1[0] != 0) - (u1[0] != 0) / 0.75f) < 1e-6f,
          "dropout keeps 75%% (%.4f) and scales kept values by 1/0.75", (double)kept / N);
    free(u1);
    free(u2);
    qb_ctx_free(ctx);
    return qb_check_finish(&chk, "autograd engine");
}

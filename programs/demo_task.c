/* demo_task.c: see demo_task.h. */
#include "demo_task.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "base/fileio.h"
#include "train/optim_adamw.h"

/* Two interleaved spirals: x [2P, 2], labels [2P] in {0, 1}. */
static void make_spirals(float *x, int32_t *labels, int64_t points, uint64_t seed) {
    for (int64_t i = 0; i < 2 * points; i++) {
        int64_t arm = i % 2, k = i / 2;
        double r = (double)k / (double)points * 3.0 + 0.2;
        double t = 2.5 * r + M_PI * (double)arm;
        float noise[2];
        qb_rng_normal(noise, 2, 0.0f, 0.03f, seed, 2 * (uint64_t)i * 2);
        x[2 * i] = (float)(r * cos(t)) / 3.0f + noise[0];
        x[2 * i + 1] = (float)(r * sin(t)) / 3.0f + noise[1];
        labels[i] = (int32_t)arm;
    }
}

int demo_task_run(const qat_config *c, qb_err *err) {
    qb_ctx *ctx = qat_config_ctx_new(c, err);
    if (!ctx) return -1;
    if (qat_config_apply_precision(c, ctx, err)) {
        qb_ctx_free(ctx);
        return -1;
    }
    int64_t n = 2 * c->demo_points, h = c->demo_hidden;
    float *x = malloc((size_t)n * 2 * sizeof(float)), *scores = malloc((size_t)n * 2 * sizeof(float));
    int32_t *labels = malloc((size_t)n * sizeof(int32_t));
    if (!x || !scores || !labels) {
        free(x);
        free(scores);
        free(labels);
        qb_ctx_free(ctx);
        return qb_errorf(err, "demo: out of memory");
    }
    make_spirals(x, labels, c->demo_points, (uint64_t)c->seed + 1);
    qb_tensor *w1 = qb_param_new(ctx, "fc1.weight", 2, (int64_t[]){h, 2});
    qb_tensor *b1 = qb_param_new(ctx, "fc1.bias", 1, (int64_t[]){h});
    qb_tensor *w2 = qb_param_new(ctx, "fc2.weight", 2, (int64_t[]){h, h});
    qb_tensor *b2 = qb_param_new(ctx, "fc2.bias", 1, (int64_t[]){h});
    qb_tensor *w3 = qb_param_new(ctx, "out.weight", 2, (int64_t[]){2, h});
    qb_tensor *b3 = qb_param_new(ctx, "out.bias", 1, (int64_t[]){2});
    if (!b3) goto fail;
    qb_fill_normal(ctx, w1, 0.0f, 1.0f);
    qb_fill_normal(ctx, w2, 0.0f, 1.0f / sqrtf((float)h));
    qb_fill_normal(ctx, w3, 0.0f, 1.0f / sqrtf((float)h));
    qb_adamw opt;
    if (qb_adamw_init(&opt, ctx, 0.9, 0.999, 1e-8, c->demo_weight_decay, err)) goto fail;
    float loss_v = NAN, first = NAN;
    double acc = 0.0;
    for (int64_t step = 1; step <= c->demo_steps; step++) {
        qb_ctx_step_reset(ctx);
        qb_zero_grad(ctx);
        qb_tensor *xt = qb_from_host(ctx, 2, (int64_t[]){n, 2}, x);
        qb_tensor *hid = qb_gelu(ctx, qb_linear(ctx, xt, w1, b1));
        hid = qb_gelu(ctx, qb_linear(ctx, hid, w2, b2));
        qb_tensor *logits = qb_linear(ctx, hid, w3, b3);
        qb_tensor *loss = qb_cross_entropy(ctx, logits, labels, -100);
        if (qb_backward(ctx, loss)) {
            qb_adamw_free(&opt);
            *err = ctx->err;
            goto fail;
        }
        float lr = (float)(c->demo_lr * 0.5 * (1.0 + cos(M_PI * (double)(step - 1) / (double)c->demo_steps)));
        loss_v = qb_item(ctx, loss);
        if (qb_to_host(ctx, logits, scores) || qb_adamw_step(&opt, ctx, lr)) {
            qb_adamw_free(&opt);
            *err = ctx->err;
            goto fail;
        }
        if (step == 1) first = loss_v;
        int correct = 0;
        for (int64_t i = 0; i < n; i++) correct += (scores[2 * i + 1] > scores[2 * i]) == (labels[i] == 1);
        acc = (double)correct / (double)n;
        if (step == 1 || step % 250 == 0 || step == c->demo_steps)
            printf("step %5lld  loss %.5f  accuracy %.4f  lr %.2e\n", (long long)step, loss_v, acc, lr);
    }
    qb_adamw_free(&opt);
    bool reached = loss_v <= c->demo_target_loss;
    printf("demo: two spirals (%lld points), loss %.5f -> %.5f, accuracy %.4f; target loss %.3g %s\n", (long long)n, first, loss_v, acc,
           c->demo_target_loss, reached ? "reached" : "NOT reached");
    if (qb_mkdir_p(c->output_dir, err)) goto fail;
    json_t *m = json_pack("{s:s, s:I, s:f, s:f, s:f, s:f, s:b}", "task", "demo", "steps", (json_int_t)c->demo_steps, "first_loss",
                          (double)first, "final_loss", (double)loss_v, "accuracy", acc, "target_loss", c->demo_target_loss, "reached",
                          reached);
    char *text = m ? json_dumps(m, JSON_INDENT(2)) : NULL;
    char path[1100];
    snprintf(path, sizeof path, "%s/demo_metrics.json", c->output_dir);
    int rc = text ? qb_write_file_atomic(path, text, strlen(text), err) : qb_errorf(err, "demo: cannot format metrics");
    free(text);
    json_decref(m);
    if (rc) goto fail;
    printf("demo: wrote %s\n", path);
    free(x);
    free(scores);
    free(labels);
    qb_ctx_free(ctx);
    if (!reached) return qb_errorf(err, "demo: final loss %.5f above target %.3g", loss_v, c->demo_target_loss);
    return 0;
fail:
    if (!err->failed && qb_ctx_failed(ctx)) *err = ctx->err;
    free(x);
    free(scores);
    free(labels);
    qb_ctx_free(ctx);
    return -1;
}


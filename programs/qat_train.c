/* qat_train.c: the qat-train program: one run config (INI) plus section.key=value overrides.
 * Tasks today: "demo" (trains a small network on two spirals with the engine and AdamW to a stated loss).
 * Calibration, QAT fine-tuning, evaluation and export join as the pipeline lands. */
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "autograd/autograd.h"
#include "base/fileio.h"
#include "run_config.h"
#include "train/optim_adamw.h"

typedef struct qat_config {
    char task[32];
    int64_t seed;
    int64_t threads;
    char output_dir[1024];
    int64_t demo_points;
    int64_t demo_hidden;
    int64_t demo_steps;
    double demo_lr;
    double demo_weight_decay;
    double demo_target_loss;
} qat_config;

#define KEY(sec, name, type, field, help) {sec, name, type, offsetof(qat_config, field), sizeof(((qat_config *)0)->field), help}
static const qb_cfg_key config_keys[] = {
    KEY("run", "task", QB_CFG_STRING, task, "what to run: demo"),
    KEY("run", "seed", QB_CFG_INT, seed, "RNG seed (initialisation, dropout, data order)"),
    KEY("run", "threads", QB_CFG_INT, threads, "OpenMP threads (0 = all cores)"),
    KEY("run", "output_dir", QB_CFG_STRING, output_dir, "directory for metrics and outputs"),
    KEY("demo", "points", QB_CFG_INT, demo_points, "points per spiral arm"),
    KEY("demo", "hidden", QB_CFG_INT, demo_hidden, "hidden width of the 2-layer GELU network"),
    KEY("demo", "steps", QB_CFG_INT, demo_steps, "full-batch AdamW steps"),
    KEY("demo", "lr", QB_CFG_FLOAT, demo_lr, "AdamW learning rate"),
    KEY("demo", "weight_decay", QB_CFG_FLOAT, demo_weight_decay, "AdamW weight decay"),
    KEY("demo", "target_loss", QB_CFG_FLOAT, demo_target_loss, "cross-entropy the run must reach (exit 1 otherwise)"),
};
static const int n_config_keys = (int)(sizeof config_keys / sizeof config_keys[0]);

static void config_defaults(qat_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->task, sizeof c->task, "demo");
    c->seed = 42;
    snprintf(c->output_dir, sizeof c->output_dir, "out/demo");
    c->demo_points = 200;
    c->demo_hidden = 64;
    c->demo_steps = 1500;
    c->demo_lr = 1e-2;
    c->demo_weight_decay = 0.01;
    c->demo_target_loss = 0.05;
}

static int config_validate(const qat_config *c, const char *path, qb_err *err) {
    if (strcmp(c->task, "demo") != 0) return qb_errorf(err, "%s: run.task: unknown task '%s' (expected: demo)", path, c->task);
    if (c->threads < 0) return qb_errorf(err, "%s: run.threads: must be >= 0, got %lld", path, (long long)c->threads);
    if (c->demo_points < 2 || c->demo_hidden < 1 || c->demo_steps < 1)
        return qb_errorf(err, "%s: demo.points, demo.hidden and demo.steps must be positive (points >= 2)", path);
    if (!(c->demo_lr > 0)) return qb_errorf(err, "%s: demo.lr: must be > 0", path);
    return 0;
}

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

static int run_demo(const qat_config *c, qb_err *err) {
    qb_ctx *ctx = qb_ctx_new(QB_CPU, (uint64_t)c->seed, err);
    if (!ctx) return -1;
    int64_t n = 2 * c->demo_points, h = c->demo_hidden;
    float *x = malloc((size_t)n * 2 * sizeof(float));
    int32_t *labels = malloc((size_t)n * sizeof(int32_t));
    if (!x || !labels) {
        free(x);
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
    if (qb_adamw_init(&opt, ctx, 0.9f, 0.999f, 1e-8f, (float)c->demo_weight_decay, err)) goto fail;
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
        qb_adamw_step(&opt, ctx, lr);
        loss_v = loss->data[0];
        if (step == 1) first = loss_v;
        int correct = 0;
        for (int64_t i = 0; i < n; i++) correct += (logits->data[2 * i + 1] > logits->data[2 * i]) == (labels[i] == 1);
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
    free(labels);
    qb_ctx_free(ctx);
    if (!reached) return qb_errorf(err, "demo: final loss %.5f above target %.3g", loss_v, c->demo_target_loss);
    return 0;
fail:
    if (!err->failed && qb_ctx_failed(ctx)) *err = ctx->err;
    free(x);
    free(labels);
    qb_ctx_free(ctx);
    return -1;
}

static void usage(FILE *out) {
    qat_config c;
    config_defaults(&c);
    fprintf(out, "usage: qat-train CONFIG.ini [section.key=value ...]\n       qat-train --help\n\nkeys and defaults:\n");
    qb_cfg_print(config_keys, n_config_keys, &c, out);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    qb_err err = {0};
    qat_config c;
    config_defaults(&c);
    if (qb_cfg_load_file(config_keys, n_config_keys, &c, argv[1], &err)) qb_die("qat-train", &err);
    for (int i = 2; i < argc; i++)
        if (qb_cfg_apply_override(config_keys, n_config_keys, &c, argv[i], &err)) qb_die("qat-train", &err);
    if (config_validate(&c, argv[1], &err)) qb_die("qat-train", &err);
    if (c.threads > 0) omp_set_num_threads((int)c.threads);
    if (run_demo(&c, &err)) qb_die("qat-train", &err);
    return 0;
}

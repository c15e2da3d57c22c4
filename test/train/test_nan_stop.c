/* test_nan_stop.c: a non-finite loss or gradient stops a training step with one error naming the step and the first
 * tensor that went bad, and leaves the parameters as they were. The NaN comes from a CPU kernel table with one entry
 * wrapped: GELU's forward (the loss goes bad: the first op output in tape order is named), or LayerNorm's parameter
 * gradients (the loss stays finite: the first bad gradient in parameter order is named, also with clipping on, which
 * must not spread the NaN over every gradient before the check). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/backend.h"
#include "check.h"
#include "model/heads.h"
#include "train/qa_train.h"
#include "tiny_qdqbert.h"

enum { ROWS = 4, LEN = 8 };

/* the kernels below call the CPU's own and then write a NaN into their output */
static int nan_gelu(qb_dev *d, qb_unary_kind kind, float *y, const float *x, int64_t n) {
    int rc = qb_cpu_kernels.unary(d, kind, y, x, n);
    if (kind == QB_UNARY_GELU && n > 0) y[n - 1] = NAN;
    return rc;
}

static int nan_ln_grad(qb_dev *d, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean, const float *rstd,
                       int64_t rows, int64_t h) {
    int rc = qb_cpu_kernels.layernorm_grad_params(d, dgamma, dbeta, dy, x, mean, rstd, rows, h);
    if (dgamma && h > 1) dgamma[1] = NAN;
    return rc;
}

/* One training step of the tiny model on a CPU table with `bad` in place; err gets the step's error. */
static int one_step(qb_check *c, const qb_kernels *k, double max_grad_norm, qb_qa_step_stats *st, qb_err *err) {
    qb_err setup = {0};
    qb_ctx *ctx = qb_ctx_new_on(k, NULL, QB_CPU, 3, &setup);
    qb_quant_recipe r;
    qb_quant_recipe_default(&r);
    qb_bert_model m;
    if (!CHECK(c, ctx && tiny_qdqbert_build(&m, ctx, &r, &setup) == 0, "build: %s", setup.msg)) {
        qb_ctx_free(ctx);
        return 0;
    }
    int32_t ids[ROWS * LEN], types[ROWS * LEN] = {0}, mask[ROWS * LEN], sp[ROWS], ep[ROWS];
    for (int i = 0; i < ROWS * LEN; i++) {
        ids[i] = 1 + (i * 5) % 37;
        mask[i] = 1;
    }
    for (int i = 0; i < ROWS; i++) sp[i] = 1 + i % 3, ep[i] = 2 + i % 3;
    qb_squad_features f = {.max_len = LEN, .n = ROWS, .input_ids = ids, .token_type_ids = types, .attention_mask = mask,
                           .start_positions = sp, .end_positions = ep};
    qb_qa_train_opts o = {.batch_size = 2, .max_steps = 2, .learning_rate = 1e-3, .scheduler = QB_LR_LINEAR, .adam_beta1 = 0.9,
                          .adam_beta2 = 0.999, .adam_epsilon = 1e-8, .max_grad_norm = max_grad_norm, .seed = 5};
    qb_qa_trainer t;
    memset(&t, 0, sizeof t);
    const qb_tensor *w = m.params[0];
    int64_t n = qb_numel(w);
    float *before = malloc((size_t)n * sizeof *before), *after = malloc((size_t)n * sizeof *after);
    int rc = -1;
    memset(st, 0, sizeof *st);
    if (CHECK(c, before && after && qb_qa_trainer_init(&t, &m, &f, &o, &setup) == 0 && qb_to_host(ctx, w, before) == 0, "trainer: %s",
              setup.msg)) {
        rc = qb_qa_load_batch(&t, 0, &t.batch, &setup) || qb_qa_train_step(&t, &t.batch, 1e-3, st, err);
        if (rc)
            CHECK(c, qb_to_host(ctx, w, after) == 0 && memcmp(before, after, (size_t)n * sizeof *before) == 0,
                  "%s unchanged by the failed step", w->name);
        qb_qa_trainer_free(&t);
    }
    free(before);
    free(after);
    qb_bert_free(&m);
    qb_ctx_free(ctx);
    return rc;
}

int main(void) {
    qb_check c = {0};
    qb_kernels bad_forward = qb_cpu_kernels, bad_backward = qb_cpu_kernels;
    bad_forward.unary = nan_gelu;
    bad_backward.layernorm_grad_params = nan_ln_grad;
    qb_qa_step_stats st = {0};
    qb_err err = {0};
    CHECK(&c, one_step(&c, &qb_cpu_kernels, 1.0, &st, &err) == 0 && isfinite(st.loss), "clean step: loss %g (%s)", (double)st.loss, err.msg);

    qb_err_clear(&err);
    int rc = one_step(&c, &bad_forward, 1.0, &st, &err);
    CHECK(&c, rc != 0 && isnan(st.loss) && strstr(err.msg, "train step 1: loss ") && strstr(err.msg, "first non-finite tensor: output of forward op") &&
                  strstr(err.msg, ", gelu") && !strchr(err.msg, '\n'),
          "NaN in the forward: %s", err.msg);

    for (int clip = 0; clip < 2; clip++) {
        qb_err_clear(&err);
        rc = one_step(&c, &bad_backward, clip ? 1.0 : 0.0, &st, &err);
        CHECK(&c, rc != 0 && strstr(err.msg, "train step 1: loss ") && isfinite(st.loss) && strstr(err.msg, "nan (not finite)") &&
                      strstr(err.msg, "first non-finite tensor: gradient of bert.embeddings.LayerNorm.weight (element 1)"),
              "NaN in a gradient, clipping %s: %s", clip ? "on" : "off", err.msg);
    }
    return qb_check_finish(&c, "nan stop");
}

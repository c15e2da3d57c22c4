/* test_cuda_train.c: whole QA training steps of the tiny QDQBert (test/train/tiny_qdqbert.h) on the CUDA device
 * against the CPU device, with the quantizers off (fp32 through the same graph) and on (calibrated amax):
 * - calibration (percentile activations, max weights per row) gives the same amax on both devices;
 * - step 1, written out (dropout on): loss, start and end logits, every parameter's gradient, the gradient norm, and
 *   every weight after clipping and the AdamW update;
 * - step 2 through the trainer (qb_qa_train_step): loss, norm and weights.
 * fp32 within 1e-5 relative (to the largest value of each tensor, and per element); gradients that are zero up to
 * rounding (the losses do not depend on qa_outputs.bias, the last LayerNorm bias or the key biases) within 1e-5 of the
 * largest gradient, and their weights within AdamW's step bound (compare_weights). Each line prints the largest
 * difference, and a summary gives the largest relative ones. The quantizers-on case needs the quant layer's CUDA kernels:
 * a missing one fails, naming it (QB_CUDA_ALLOW_MISSING=1: reported as skipped). `--quant off|on|both` picks the cases
 * (both by default). Runs on a real GPU or under the CUDA emulator; exits 77 where neither is there. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/cuda/backend.h"
#include "check.h"
#include "model/heads.h"
#include "train/calibrate.h"
#include "train/clip_grad.h"
#include "train/qa_train.h"
#include "tiny_qdqbert.h"

enum { ROWS = 8, LEN = 16, BATCH = 4, SEED = 13 };
#define TOL 1e-5
#define NOISE 1e-6 /* gradients below NOISE * max|g| are zero up to fp32 rounding */
#define LR 1e-3
#define MAX_GRAD_NORM 0.5

typedef struct run_out {
    float loss[2], logits[2 * BATCH * LEN];
    double norm[2];
    float *amax, *grads, *params, *params2;  /* grads and params after step 1, params2 after step 2 */
    int64_t n_amax, n_params;
    int n_enabled;                            /* quantizers enabled for the steps */
    int n_tensors;                            /* parameter tensors: names and sizes in the model's order */
    char (*names)[96];
    int64_t *sizes;
} run_out;

typedef struct worst {
    double amax, loss, logits, grads, params;  /* largest |cuda - cpu| / max|cpu| of each kind */
} worst;

static int ctx_fail(qb_ctx *ctx, qb_err *err, const char *what) { return qb_errorf(err, "%s: %s", what, ctx->err.msg); }

static float *alloc_floats(int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!p) abort();
    return p;
}

/* Every parameter (or its gradient) into out, in the model's order. */
static int params_to_host(qb_bert_model *m, bool grads, float *out, qb_err *err) {
    int64_t at = 0;
    for (int i = 0; i < m->n_params; i++) {
        const qb_tensor *p = m->params[i];
        if (qb_to_host(m->ctx, grads ? p->grad : p, out + at)) return ctx_fail(m->ctx, err, p->name);
        at += qb_numel(p);
    }
    return 0;
}

/* Step 1 as qb_qa_train_step runs it, with the logits and the gradients before clipping read out. */
static int first_step(qb_qa_trainer *t, run_out *o, qb_err *err) {
    qb_ctx *ctx = t->m->ctx;
    if (qb_qa_load_batch(t, 0, &t->batch, err)) return -1;
    qb_ctx_step_reset(ctx);
    ctx->training = true;
    ctx->no_grad = false;
    ctx->rng_counter = (uint64_t)1 << 36;
    qb_zero_grad(ctx);
    qb_bert_batch view = qb_qa_batch_view(&t->batch);
    qb_bert_output out;
    if (qb_bert_question_answering(t->m, &view, t->batch.start_positions, t->batch.end_positions, &out) ||
        qb_to_host(ctx, out.logits, o->logits) || qb_to_host(ctx, out.end_logits, o->logits + BATCH * LEN))
        return ctx_fail(ctx, err, "step 1 forward");
    o->loss[0] = qb_item(ctx, out.loss);
    if (qb_ctx_failed(ctx) || qb_backward(ctx, out.loss)) return ctx_fail(ctx, err, "step 1 backward");
    if (params_to_host(t->m, true, o->grads, err)) return -1;
    float *norm = qb_act_alloc(ctx, sizeof(float)), host_norm;
    if (!norm || qb_clip_grad_norm_dev(ctx, MAX_GRAD_NORM, norm) || qb_download(ctx, &host_norm, norm, sizeof host_norm) ||
        qb_adamw_step(&t->opt, ctx, (float)LR))
        return ctx_fail(ctx, err, "step 1 clipping and AdamW");
    o->norm[0] = host_norm;
    t->step = 1;
    return params_to_host(t->m, false, o->params, err);
}

/* Builds the tiny model on ctx, calibrates it when quant (on ctx's device), runs two steps. */
static int run(qb_ctx *ctx, bool quant, run_out *o, qb_err *err) {
    memset(o, 0, sizeof *o);
    qb_quant_recipe r;
    qb_quant_recipe_default(&r);
    r.disable = !quant;
    r.calibrator = QB_CALIBRATOR_PERCENTILE;
    r.percentile = 99.9;
    qb_bert_model m;
    if (tiny_qdqbert_build(&m, ctx, &r, err)) return -1;
    qb_squad_features f;
    int32_t ids[ROWS * LEN], types[ROWS * LEN], mask[ROWS * LEN], sp[ROWS], ep[ROWS];
    tiny_qdqbert_features(&f, ROWS, LEN, ids, types, mask, sp, ep);
    int rc = 0;
    if (quant) {
        qb_calib_opts co = {.num_samples = ROWS, .batch_size = BATCH, .seed = 3, .method = HIST_AMAX_PERCENTILE, .percentile = 99.9};
        rc = qb_calibrate(&m, &f, &co, NULL, err);
    }
    if (!rc) rc = qb_quant_configure(&m, &r, NULL, err);
    for (int i = 0; i < m.n_quant; i++) {
        o->n_amax += m.quant[i].tq.amax ? m.quant[i].tq.n_amax : 0;
        o->n_enabled += !m.quant[i].tq.disabled;
    }
    o->amax = alloc_floats(o->n_amax);
    for (int i = 0, at = 0; i < m.n_quant; i++)
        if (m.quant[i].tq.amax) {
            memcpy(o->amax + at, m.quant[i].tq.amax, (size_t)m.quant[i].tq.n_amax * sizeof(float));
            at += (int)m.quant[i].tq.n_amax;
        }
    o->n_tensors = m.n_params;
    o->names = calloc((size_t)m.n_params + 1, sizeof *o->names);
    o->sizes = calloc((size_t)m.n_params + 1, sizeof *o->sizes);
    if (!o->names || !o->sizes) abort();
    for (int i = 0; i < m.n_params; i++) {
        snprintf(o->names[i], sizeof o->names[i], "%s", m.params[i]->name);
        o->n_params += o->sizes[i] = qb_numel(m.params[i]);
    }
    o->grads = alloc_floats(o->n_params);
    o->params = alloc_floats(o->n_params);
    o->params2 = alloc_floats(o->n_params);
    qb_qa_train_opts to = {.batch_size = BATCH, .max_steps = 2, .learning_rate = LR, .scheduler = QB_LR_CONSTANT, .weight_decay = 0.01,
                           .adam_beta1 = 0.9, .adam_beta2 = 0.999, .adam_epsilon = 1e-8, .max_grad_norm = MAX_GRAD_NORM, .seed = 5};
    qb_qa_trainer t;
    memset(&t, 0, sizeof t);
    if (!rc) rc = qb_qa_trainer_init(&t, &m, &f, &to, err);
    if (!rc) rc = first_step(&t, o, err);
    qb_qa_step_stats st;
    if (!rc) rc = qb_qa_load_batch(&t, 1, &t.batch, err) || qb_qa_train_step(&t, &t.batch, LR, &st, err);
    if (!rc) {
        o->loss[1] = st.loss;
        o->norm[1] = st.grad_norm;
        rc = params_to_host(&m, false, o->params2, err);
    }
    qb_qa_trainer_free(&t);
    qb_bert_free(&m);
    return rc;
}

static void run_out_free(run_out *o) {
    free(o->amax);
    free(o->grads);
    free(o->params);
    free(o->params2);
    free(o->names);
    free(o->sizes);
}

static double max_abs(const float *x, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
    return m;
}

/* cuda vs cpu within TOL (relative to the largest |cpu| and per element); returns |cuda - cpu| / max|cpu|. */
static double compare(qb_check *chk, const char *what, const float *got, const float *want, int64_t n) {
    double scale = max_abs(want, n), diff = 0.0;
    qb_check_close(chk, what, got, want, n, TOL * scale + 1e-30, TOL);
    for (int64_t i = 0; i < n; i++) diff = fmax(diff, fabs((double)got[i] - (double)want[i]));
    return scale > 0 ? diff / scale : diff;
}

/* Weights after `steps` AdamW steps, cuda vs cpu: within TOL (relative to the tensor's largest weight, and per element)
 * where the step-1 gradient stands above rounding (|g| >= NOISE max|g|); elsewhere the gradient is zero up to rounding
 * (qa_outputs.bias, the last LayerNorm bias, the key biases: the losses do not depend on them) and AdamW's normalised
 * step follows the sign of the rounding, so only |difference| <= 2 lr (1 + weight decay) per step is asked there.
 * Returns the largest relative difference over the first kind. */
static double compare_weights(qb_check *chk, const char *what, const float *got, const float *want, const float *grad, int64_t n,
                              double gmax, int steps) {
    double scale = max_abs(want, n), diff = 0.0, noise_diff = 0.0, bound = 2.0 * LR * 1.01 * steps;
    int64_t bad = 0, at_worst = -1;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (isnan(d)) d = INFINITY;
        bool at_noise = fabs((double)grad[i]) < NOISE * gmax;
        if (at_noise) noise_diff = fmax(noise_diff, d);
        else if (d >= diff) diff = d, at_worst = i;
        if (d > (at_noise ? bound : TOL * scale + TOL * fabs((double)want[i]))) bad++;
    }
    return CHECK(chk, bad == 0, "%s: %lld of %lld outside the tolerance (max diff %.3g at %lld; at rounding-level gradients %.3g, bound %.3g)",
                 what, (long long)bad, (long long)n, diff, (long long)at_worst, noise_diff, bound)
               ? (scale > 0 ? diff / scale : diff)
               : INFINITY;
}

/* The two runs of one case side by side. */
static void compare_runs(qb_check *chk, const char *tag, const run_out *g, const run_out *c, worst *w) {
    char what[200];
    CHECK(chk, g->n_amax == c->n_amax && g->n_params == c->n_params && g->n_tensors == c->n_tensors && g->n_enabled == c->n_enabled,
          "%s: same layout (amax %lld/%lld, params %lld/%lld, quantizers enabled %d/%d)", tag, (long long)g->n_amax,
          (long long)c->n_amax, (long long)g->n_params, (long long)c->n_params, g->n_enabled, c->n_enabled);
    if (g->n_amax != c->n_amax || g->n_params != c->n_params || g->n_tensors != c->n_tensors) return;
    if (c->n_amax) {
        snprintf(what, sizeof what, "%s: calibrated amax (%d enabled)", tag, c->n_enabled);
        w->amax = fmax(w->amax, compare(chk, what, g->amax, c->amax, c->n_amax));
    }
    for (int s = 0; s < 2; s++) {
        snprintf(what, sizeof what, "%s: step %d loss", tag, s + 1);
        w->loss = fmax(w->loss, compare(chk, what, &g->loss[s], &c->loss[s], 1));
        float gn = (float)g->norm[s], cn = (float)c->norm[s];
        snprintf(what, sizeof what, "%s: step %d gradient norm", tag, s + 1);
        compare(chk, what, &gn, &cn, 1);
    }
    snprintf(what, sizeof what, "%s: step 1 start and end logits", tag);
    w->logits = fmax(w->logits, compare(chk, what, g->logits, c->logits, 2 * BATCH * LEN));
    double gmax = max_abs(c->grads, c->n_params);
    int64_t at = 0, noise = 0;
    for (int i = 0; i < c->n_tensors; i++) {
        int64_t n = c->sizes[i];
        double tmax = max_abs(c->grads + at, n);
        snprintf(what, sizeof what, "%s: grad %s%s", tag, c->names[i], tmax < NOISE * gmax ? " (zero up to rounding)" : "");
        if (tmax < NOISE * gmax) qb_check_close(chk, what, g->grads + at, c->grads + at, n, TOL * gmax, 0.0);
        else w->grads = fmax(w->grads, compare(chk, what, g->grads + at, c->grads + at, n));
        at += n;
    }
    for (int64_t i = 0; i < c->n_params; i++) noise += fabs((double)c->grads[i]) < NOISE * gmax;
    at = 0;
    for (int i = 0; i < c->n_tensors; i++) {
        int64_t n = c->sizes[i];
        snprintf(what, sizeof what, "%s: %s after AdamW step 1", tag, c->names[i]);
        w->params = fmax(w->params, compare_weights(chk, what, g->params + at, c->params + at, c->grads + at, n, gmax, 1));
        snprintf(what, sizeof what, "%s: %s after step 2", tag, c->names[i]);
        w->params = fmax(w->params, compare_weights(chk, what, g->params2 + at, c->params2 + at, c->grads + at, n, gmax, 2));
        at += n;
    }
    printf("%s: %lld of %lld gradient elements are zero, or zero up to rounding (|g| < %.0e max|g|): their weights are held to AdamW's step bound\n",
           tag, (long long)noise, (long long)c->n_params, NOISE);
    double moved = 0.0;
    for (int64_t i = 0; i < c->n_params; i++) moved = fmax(moved, fabs((double)c->params2[i] - (double)c->params[i]));
    CHECK(chk, moved > 0, "%s: the weights move in step 2 (max |change| %.3g)", tag, moved);
    printf("%s: max |cuda - cpu| / max|cpu|: amax %.3g, loss %.3g, logits %.3g, gradients %.3g, weights %.3g\n", tag, w->amax,
           w->loss, w->logits, w->grads, w->params);
}

/* One case: the same run on a fresh cpu and a fresh cuda context. */
static void run_case(qb_check *chk, bool quant, bool allow_missing) {
    const char *tag = quant ? "quantizers on" : "quantizers off";
    qb_err err = {0}, ec = {0}, eg = {0};
    qb_ctx *cpu = qb_ctx_new(QB_CPU, SEED, &err), *gpu = cpu ? qb_ctx_new(QB_CUDA, SEED, &err) : NULL;
    if (!gpu) qb_die("test_cuda_train", &err);
    run_out c, g;
    int rc_cpu = run(cpu, quant, &c, &ec), rc_gpu = run(gpu, quant, &g, &eg);
    if (rc_gpu && strstr(eg.msg, "no cuda kernel")) {
        if (allow_missing) qb_check_skip(chk, tag, eg.msg);
        else CHECK(chk, false, "%s: a kernel is missing on cuda: %s", tag, eg.msg);
    } else if (CHECK(chk, rc_cpu == 0 && rc_gpu == 0, "%s: cpu run (%s) and cuda run (%s)", tag, ec.msg, eg.msg)) {
        CHECK(chk, !quant || c.n_enabled > 0, "%s: %d quantizers enabled, %lld amax values", tag, c.n_enabled, (long long)c.n_amax);
        CHECK(chk, quant || c.n_enabled == 0, "%s: no quantizer enabled (%d)", tag, c.n_enabled);
        worst w = {0};
        compare_runs(chk, tag, &g, &c, &w);
    }
    run_out_free(&c);
    run_out_free(&g);
    qb_ctx_free(gpu);
    qb_ctx_free(cpu);
}

int main(int argc, char **argv) {
    qb_check chk = {0};
    const char *which = "both";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quant") && i + 1 < argc) which = argv[++i];
        else return fprintf(stderr, "usage: test_cuda_train [--quant off|on|both]\n"), 2;
    }
    bool off = !strcmp(which, "off") || !strcmp(which, "both"), on = !strcmp(which, "on") || !strcmp(which, "both");
    if (!off && !on) return fprintf(stderr, "test_cuda_train: --quant %s: expected off, on or both\n", which), 2;
    char info[256];
    qb_cuda_describe(info, sizeof info);
    printf("%s\n", info);
    if (qb_cuda_device_count() == 0) {
        qb_check_skip(&chk, "cuda training step", "no CUDA device (and not the emulated build)");
        return qb_check_finish(&chk, "cuda training step");
    }
    bool allow_missing = getenv("QB_CUDA_ALLOW_MISSING") && atoi(getenv("QB_CUDA_ALLOW_MISSING"));
    if (off) run_case(&chk, false, allow_missing);
    if (on) run_case(&chk, true, allow_missing);
    return qb_check_finish(&chk, "cuda training step");
}

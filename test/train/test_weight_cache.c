/* test_weight_cache.c: the weight fake-quant cache (quant.weight_cache, quant/weight_cache.h) of the tiny QDQBert
 * against the per-forward path, bit for bit:
 * - three QA training steps through the trainer with gradient accumulation 1 and 2 (dropout on): every step's loss,
 *   every parameter after every step, the last step's gradients, and two eval batches' logits after training; the cache
 *   is built once per optimizer step (not per micro-batch) and once for the eval batches, and the forward records the
 *   cached op, not fake_quant, for the weights; the first micro-batch's weight gradients go straight into w.grad (the
 *   mask applied in place to the rows with clipped weights: none in the first step, max-calibrated, some later);
 * - staleness: after each change that must invalidate it (a weight uploaded, filled, an amax changed in place or set,
 *   a quantizer disabled, its bit width changed, the parameters packed again, an AdamW step) the cached logits equal
 *   the per-forward ones and differ from before the change.
 * `--cuda` runs the same on the CUDA device (a GPU or the emulator; exits 77 where neither is there). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/cuda/backend.h"
#include "check.h"
#include "model/heads.h"
#include "train/calibrate.h"
#include "train/qa_train.h"
#include "tiny_qdqbert.h"

enum { ROWS = 12, LEN = 16, BATCH = 2, STEPS = 3, SEED = 13 };
#define LR 1e-2

static qb_check chk;
static qb_device device = QB_CPU;

typedef struct run_out {
    float loss[STEPS], logits[2][2 * BATCH * LEN];
    float *params[STEPS], *grads;
    int64_t n_params, builds_train, builds_eval;
    int cached_nodes, weight_fq_nodes;  /* on the last training forward's tape */
    int64_t clipped[STEPS], rows;       /* per step: rows of the cached weights with elements outside [-amax, amax] */
    int aliased;                        /* cached weights whose gradient went straight into w.grad (last tape) */
} run_out;

static void die(const char *what, const qb_err *err) {
    fprintf(stderr, "test_weight_cache: %s: %s\n", what, err->msg);
    exit(1);
}

static float *floats(int64_t n) {
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p) abort();
    return p;
}

static void params_to_host(qb_bert_model *m, bool grads, float *out) {
    int64_t at = 0;
    for (int i = 0; i < m->n_params; i++) {
        const qb_tensor *p = m->params[i];
        if (qb_to_host(m->ctx, grads ? p->grad : p, out + at)) die(p->name, &m->ctx->err);
        at += qb_numel(p);
    }
}

/* The tiny model on ctx with its matrices times weight_scale, calibrated (percentile activations, max weights per row)
 * and configured. */
static void build(qb_bert_model *m, qb_ctx *ctx, const qb_squad_features *f, float weight_scale) {
    qb_err err = {0};
    qb_quant_recipe r;
    qb_quant_recipe_default(&r);
    r.calibrator = QB_CALIBRATOR_PERCENTILE;
    r.percentile = 99.9;
    qb_calib_opts co = {.num_samples = ROWS, .batch_size = BATCH, .seed = 3, .method = HIST_AMAX_PERCENTILE, .percentile = 99.9};
    if (tiny_qdqbert_build(m, ctx, &r, &err)) die("build", &err);
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i]->ndim == 2 && qb_device_scale(ctx, m->params[i]->data, weight_scale, qb_numel(m->params[i]))) die("scale", &ctx->err);
    if (qb_calibrate(m, f, &co, NULL, &err) || qb_quant_configure(m, &r, NULL, &err)) die("calibrate", &err);
}

/* Start and end logits of features [first, first + BATCH) in eval mode into out. */
static void eval_logits(qb_bert_model *m, const qb_squad_features *f, int first, float *out) {
    qb_ctx *ctx = m->ctx;
    qb_ctx_step_reset(ctx);
    ctx->no_grad = true;
    ctx->training = false;
    qb_bert_batch b = {.batch = BATCH, .seq = LEN, .input_ids = f->input_ids + first * LEN, .attention_mask = f->attention_mask + first * LEN,
                       .token_type_ids = f->token_type_ids + first * LEN};
    qb_bert_output o;
    if (qb_bert_question_answering(m, &b, NULL, NULL, &o) || qb_to_host(ctx, o.logits, out) || qb_to_host(ctx, o.end_logits, out + BATCH * LEN))
        die("eval forward", &ctx->err);
    ctx->no_grad = false;
}

/* A context on the test's device and the features (static arrays: one set at a time). */
static qb_ctx *setup(qb_squad_features *f) {
    static int32_t ids[ROWS * LEN], types[ROWS * LEN], mask[ROWS * LEN], sp[ROWS], ep[ROWS];
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(device, SEED, &err);
    if (!ctx) die("context", &err);
    tiny_qdqbert_features(f, ROWS, LEN, ids, types, mask, sp, ep);
    return ctx;
}

static void run(bool cache, int accum, run_out *o) {
    memset(o, 0, sizeof *o);
    qb_err err = {0};
    qb_squad_features f;
    qb_bert_model m;
    qb_ctx *ctx = setup(&f);
    build(&m, ctx, &f, 1.0f);
    m.weight_cache = cache;
    for (int i = 0; i < m.n_params; i++) o->n_params += qb_numel(m.params[i]);
    qb_qa_train_opts to = {.batch_size = BATCH, .max_steps = STEPS, .learning_rate = LR, .scheduler = QB_LR_CONSTANT, .weight_decay = 0.01,
                           .adam_beta1 = 0.9, .adam_beta2 = 0.999, .adam_epsilon = 1e-8, .max_grad_norm = 1.0, .seed = 5,
                           .gradient_accumulation_steps = accum};
    qb_qa_trainer t;
    memset(&t, 0, sizeof t);
    if (qb_qa_trainer_init(&t, &m, &f, &to, &err)) die("trainer", &err);
    int64_t b0 = m.wcache.builds;
    for (int s = 0; s < STEPS; s++) {
        qb_qa_step_stats st;
        if (qb_qa_accumulated_step(&t, LR, &st, &err)) die("train step", &err);
        t.step++;
        uint8_t *flags = malloc((size_t)m.wcache.n_clipped);
        if (!flags || qb_download(ctx, flags, m.wcache.clipped_dev, (size_t)m.wcache.n_clipped)) die("clipped flags", &ctx->err);
        for (int64_t r = 0; r < m.wcache.n_clipped; r++) o->clipped[s] += flags[r];
        o->rows = m.wcache.n_clipped;
        free(flags);
        o->loss[s] = st.loss;
        o->params[s] = floats(o->n_params);
        params_to_host(&m, false, o->params[s]);
        if (s == STEPS - 1) {
            o->grads = floats(o->n_params);
            params_to_host(&m, true, o->grads);
            for (int k = 0; k < ctx->n_tape; k++) {
                o->cached_nodes += strcmp(ctx->tape[k]->op, "fake_quant_cached") == 0;
                o->aliased += strcmp(ctx->tape[k]->op, "fake_quant_cached") == 0 && ctx->tape[k]->out->grad == ctx->tape[k]->in[0]->grad;
                o->weight_fq_nodes += strcmp(ctx->tape[k]->op, "fake_quant") == 0 && ctx->tape[k]->in[0]->is_param;
            }
        }
    }
    o->builds_train = m.wcache.builds - b0;
    eval_logits(&m, &f, 0, o->logits[0]);
    eval_logits(&m, &f, BATCH, o->logits[1]);
    o->builds_eval = m.wcache.builds - b0 - o->builds_train;
    qb_qa_trainer_free(&t);
    qb_bert_free(&m);
    qb_ctx_free(ctx);
}

static void run_out_free(run_out *o) {
    for (int s = 0; s < STEPS; s++) free(o->params[s]);
    free(o->grads);
}

static bool same(const float *a, const float *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof(float)) == 0; }

static void training_case(int accum) {
    run_out c, u;
    run(true, accum, &c);
    run(false, accum, &u);
    int L = 2;
    CHECK(&chk, c.cached_nodes == 6 * L && c.weight_fq_nodes == 0, "accum %d: cached forward: %d cached weights, %d fake_quant weights (want %d, 0)",
          accum, c.cached_nodes, c.weight_fq_nodes, 6 * L);
    CHECK(&chk, u.cached_nodes == 0 && u.weight_fq_nodes == 6 * L, "accum %d: per-forward: %d cached weights, %d fake_quant weights (want 0, %d)",
          accum, u.cached_nodes, u.weight_fq_nodes, 6 * L);
    CHECK(&chk, c.clipped[0] == 0 && c.clipped[STEPS - 1] > 0 && c.clipped[STEPS - 1] < c.rows,
          "accum %d: rows with clipped weights per step %lld, %lld, %lld of %lld (want none in the first, max-calibrated, some later)",
          accum, (long long)c.clipped[0], (long long)c.clipped[1], (long long)c.clipped[2], (long long)c.rows);
    CHECK(&chk, c.aliased == (accum == 1 ? 6 * L : 0), "accum %d: %d weight gradients written straight into w.grad in the last micro-batch (want %d)",
          accum, c.aliased, accum == 1 ? 6 * L : 0);
    CHECK(&chk, c.builds_train == STEPS && c.builds_eval == 1, "accum %d: cache built %lld times in %d steps (want %d), %lld for 2 eval batches (want 1)",
          accum, (long long)c.builds_train, STEPS, STEPS, (long long)c.builds_eval);
    for (int s = 0; s < STEPS; s++) {
        CHECK(&chk, memcmp(&c.loss[s], &u.loss[s], sizeof(float)) == 0, "accum %d step %d: loss %.9g cached vs %.9g per forward", accum, s + 1,
              (double)c.loss[s], (double)u.loss[s]);
        CHECK(&chk, same(c.params[s], u.params[s], c.n_params), "accum %d step %d: parameters differ", accum, s + 1);
    }
    CHECK(&chk, !same(u.params[0], u.params[STEPS - 1], u.n_params), "accum %d: the weights changed over the steps", accum);
    CHECK(&chk, same(c.grads, u.grads, c.n_params), "accum %d: last step's gradients differ", accum);
    CHECK(&chk, same(c.logits[0], u.logits[0], 2 * BATCH * LEN) && same(c.logits[1], u.logits[1], 2 * BATCH * LEN),
          "accum %d: eval logits differ", accum);
    run_out_free(&c);
    run_out_free(&u);
}

/* Cached and per-forward logits of the same model now; the cached ones go to out. */
static void compare_now(qb_bert_model *m, const qb_squad_features *f, const char *what, float *out, const float *before) {
    float u[2 * BATCH * LEN];
    m->weight_cache = true;
    eval_logits(m, f, 0, out);
    m->weight_cache = false;
    eval_logits(m, f, 0, u);
    m->weight_cache = true;
    CHECK(&chk, same(out, u, 2 * BATCH * LEN), "%s: cached logits differ from the per-forward ones (a stale cache)", what);
    if (before) CHECK(&chk, !same(out, before, 2 * BATCH * LEN), "%s: the change did not change the logits", what);
}

static void staleness_case(void) {
    qb_err err = {0};
    qb_squad_features f;
    qb_bert_model m;
    qb_ctx *ctx = setup(&f);
    build(&m, ctx, &f, 40.0f); /* weights of std 0.8: every quantizer's grid shows in the logits */
    float a[2 * BATCH * LEN], b[2 * BATCH * LEN];
    compare_now(&m, &f, "calibrated", a, NULL);
    int64_t builds = m.wcache.builds;
    compare_now(&m, &f, "unchanged", b, NULL);
    CHECK(&chk, m.wcache.builds == builds && same(a, b, 2 * BATCH * LEN), "unchanged: rebuilt (%lld builds) or other logits",
          (long long)(m.wcache.builds - builds));

    qb_bert_linear *l = &m.layers[0].query;
    int64_t n = qb_numel(l->w);
    float *w = floats(n);
    if (qb_to_host(ctx, l->w, w)) die("weights", &ctx->err);
    for (int64_t i = 0; i < n; i++) w[i] *= 0.5f;
    if (qb_copy_from_host(ctx, l->w, w)) die("upload", &ctx->err);
    compare_now(&m, &f, "weight uploaded", b, a);
    qb_tensor rows = qb_view_rows(m.layers[1].inter.w, 0, 1);
    if (qb_fill(ctx, &rows, 0.25f)) die("fill", &ctx->err);
    compare_now(&m, &f, "weight row filled", a, b);

    tensor_quantizer *q = &m.layers[0].key.w_q->tq;
    for (int64_t k = 0; k < q->n_amax; k++) q->amax[k] *= 0.25f; /* in place, as quant_recipe clamps */
    compare_now(&m, &f, "amax changed in place", b, a);
    float one = 0.02f;
    if (qb_quantizer_set_amax(m.layers[1].value.w_q, &one, 1, &err)) die("set amax", &err);
    compare_now(&m, &f, "amax set per tensor", a, b);
    q->desc.num_bits = 4;
    compare_now(&m, &f, "num_bits 4", b, a);
    tensor_quantizer_disable(&m.layers[0].out.w_q->tq);
    compare_now(&m, &f, "a weight quantizer disabled", a, b);
    tensor_quantizer_enable(&m.layers[0].out.w_q->tq);
    if (qb_params_pack(ctx)) die("pack", &ctx->err);
    compare_now(&m, &f, "re-enabled and packed again", b, a);

    qb_adamw opt;
    if (qb_adamw_init(&opt, ctx, 0.9, 0.999, 1e-8, 0.5, &err)) die("adamw", &err);
    if (qb_adamw_step(&opt, ctx, 1e-1f)) die("adamw step", &ctx->err); /* zero gradients: the weight decay moves the weights */
    compare_now(&m, &f, "AdamW step", a, b);
    qb_adamw_free(&opt);
    free(w);
    qb_bert_free(&m);
    qb_ctx_free(ctx);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--cuda") == 0) {
        device = QB_CUDA;
        if (qb_cuda_device_count() == 0) {
            qb_check_skip(&chk, "weight cache on cuda", "no CUDA device (and not the emulated build)");
            return qb_check_finish(&chk, "weight_cache");
        }
    } else if (argc > 1) {
        return fprintf(stderr, "usage: test_weight_cache [--cuda]\n"), 2;
    }
    training_case(1);
    training_case(2);
    staleness_case();
    return qb_check_finish(&chk, "weight_cache");
}

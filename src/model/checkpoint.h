/* checkpoint.h: HF checkpoints in and out: parameters (names with or without the "bert." prefix) and quantizer
 * ranges as QDQBert "<quantizer>._amax" tensors ([] per tensor, [rows, 1] per channel), in safetensors files. */
#pragma once
#include "model/bert.h"

typedef struct qb_bert_load_report {
    char *newly_initialized;  /* "qa_outputs.weight, qa_outputs.bias": pooler/head tensors absent from the file, or NULL */
    char *unused;             /* checkpoint tensors the model does not use, comma-separated, or NULL */
    int n_params;             /* parameters loaded */
    int n_amax;               /* quantizer ranges loaded */
} qb_bert_load_report;

/* Loads a safetensors checkpoint into m: shapes must match the config, values must be finite; a missing embedding/encoder tensor is an
 * error, a missing pooler or head tensor keeps its initial value and is listed in rep (which may be NULL).
 * A quantizer's enabled flag is not changed; a per-channel quantizer given one amax becomes per tensor. */
int qb_bert_load_safetensors(qb_bert_model *m, const char *path, qb_bert_load_report *rep, qb_err *err);
/* Fails naming file, tensor and element when x [n] holds a NaN or an infinity ("what must be finite"). */
int qb_check_finite(const float *x, int64_t n, const char *file, const char *tensor, const char *what, qb_err *err);
/* Frees the report's strings. */
void qb_bert_load_report_free(qb_bert_load_report *rep);
/* Writes m's parameters and the amax of every calibrated quantizer under HF names (atomic). */
int qb_bert_save_safetensors(const qb_bert_model *m, const char *path, qb_err *err);
/* Writes dir/config.json and dir/model.safetensors (dir is created). */
int qb_bert_save_pretrained(const qb_bert_model *m, const char *dir, qb_err *err);
/* Reads dir/config.json, builds the model with the given head in ctx and loads dir/model.safetensors. */
int qb_bert_from_pretrained(qb_bert_model *m, qb_ctx *ctx, const char *dir, qb_bert_head head, const qb_bert_options *opt,
                            qb_bert_load_report *rep, qb_err *err);

/* hdf5_loader.h: a model back from an HDF5 export (hdf5_writer.h): int8 weights dequantized exactly as the forward's
 * fake quantization (q / float32(bound / amax)), float tensors as stored, and every quantizer enabled with the amax and
 * numerics stored for it (disabled when the file has none), so the forward computes what the exported model computed. */
#pragma once
#include <stdbool.h>
#include "model/bert.h"
#include "model/checkpoint.h"

/* True when path is a regular file that starts with the HDF5 signature. */
bool qb_hdf5_is_file(const char *path);
/* Reads the config.json stored in an export. */
int qb_hdf5_read_config(const char *path, qb_bert_config *cfg, qb_err *err);
/* Reads the export's config.json, builds the model with the given head in ctx and loads its tensors and quantizers;
 * missing pooler/head tensors keep their initial value and are listed in rep (may be NULL), like from_pretrained. */
int qb_hdf5_from_file(qb_bert_model *m, qb_ctx *ctx, const char *path, qb_bert_head head, const qb_bert_options *opt,
                      qb_bert_load_report *rep, qb_err *err);
/* Writes the tokenizer files stored in the export (tokenizer/<name>) into dir (created); an error when there are none. */
int qb_hdf5_extract_tokenizer(const char *path, const char *dir, qb_err *err);

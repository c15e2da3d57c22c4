/* hdf5_writer.h: the quantized model as one HDF5 file (layout in docs/hdf5-format.md): root datasets format_version,
 * config.json, quantization.json, tokenizer/<files>, vocab; one group per module in HF naming; quantized linear
 * weights as int8 [out, in] with weight_scale and weight_amax; every active quantizer's <stem>_amax and <stem>_scale;
 * everything else float32. Written atomically (temporary file, fsync, rename). */
#pragma once
#include <stdbool.h>
#include <stdio.h>
#include "model/bert.h"

#define QB_HDF5_FORMAT "qdqbert-int8"
#define QB_HDF5_FORMAT_VERSION 1
#define QB_HDF5_N_TOKENIZER_FILES 4

/* The tokenizer files an export stores (tokenizer/<name>) when the checkpoint has them. */
extern const char *const qb_hdf5_tokenizer_files[QB_HDF5_N_TOKENIZER_FILES];

typedef struct qb_hdf5_export_opts {
    const char *tokenizer_dir;  /* the qb_hdf5_tokenizer_files found there are stored; NULL stores none */
    const char *recipe_json;    /* the run's quantization settings (a JSON object) for quantization.json; NULL: null */
    bool int8_embeddings;       /* embedding tables as int8 rows, amax max|row| (lossy: the forward does not quantize them) */
    FILE *log;                  /* one summary line; NULL: quiet */
    const char *log_path;       /* the path the summary names (the final one when path is staged); NULL: path */
} qb_hdf5_export_opts;

/* Writes m to path; the active quantizers must all have an amax. Errors name the path (and strerror). */
int qb_hdf5_export(qb_bert_model *m, const qb_hdf5_export_opts *o, const char *path, qb_err *err);

/* calibrate.h: QDQBERT's calibration (QuestionAnsweringTrainer.calibrate): the model in eval mode without gradients,
 * every quantizer enabled with quantization off and statistics on, forward passes over num_samples shuffled training
 * features, then each quantizer's amax loaded from its calibrator (weights: max per row; activations: max or the
 * histogram method), quantization on and statistics off.
 * On N ranks batch j goes to rank j mod N; max calibrators are merged by max and histograms, their range agreed first
 * (range_first), by summing counts, so every rank ends with the amax of one process calibrating on all batches with
 * range_first, bit for bit, for every calibrator. */
#pragma once
#include <stdio.h>
#include "dist/comm.h"
#include "model/bert.h"
#include "train/squad_features.h"

typedef struct qb_calib_opts {
    int64_t num_samples;        /* 128 features (quant_trainer's calib_num) */
    int batch_size;             /* 8 (per_device_eval_batch_size) */
    uint64_t seed;              /* feature order */
    hist_amax_method method;    /* histogram calibrators: percentile, mse or entropy */
    double percentile;          /* 99.99 */
    qb_comm *comm;              /* the batches shared out over the ranks (NULL: one process) */
    bool range_first;           /* histograms: a first pass agrees each range (max|x| over all data), then one collects
                                 * on that fixed range; always so on several ranks, optional on one */
} qb_calib_opts;

/* Calibrates every quantizer of m on features f; statistics add to what the calibrators saw before. Progress goes to
 * log (may be NULL). The context's training and no_grad flags are restored; on failure so are every quantizer's
 * switches and amax. */
int qb_calibrate(qb_bert_model *m, const qb_squad_features *f, const qb_calib_opts *o, FILE *log, qb_err *err);

/* quant_recipe.h: HF QDQBERT quant_trainer.py's options: the quantizer descriptors they imply (--wprec, --aprec,
 * --quant-per-tensor, --calibrator) and configure_model (--quant-disable, --quant-disable-keyword,
 * --quant-disable-layer-module, --quant-enable-layer-module, --recalibrate-weights, --fuse-qkv, --clip-gelu).
 * Patterns are regular expressions searched in module and quantizer names as Python's re.search (POSIX extended
 * syntax; \d, \w and \s are accepted). */
#pragma once
#include <stdbool.h>
#include <stdio.h>
#include "model/bert.h"

typedef enum { QB_CALIBRATOR_MAX = 0, QB_CALIBRATOR_PERCENTILE, QB_CALIBRATOR_MSE, QB_CALIBRATOR_ENTROPY } qb_calibrator;

#define QB_QUANT_PATTERN_MAX 256

typedef struct qb_quant_recipe {
    qb_calibrator calibrator;      /* activations; weights always use max (per row) */
    double percentile;             /* 99.99 */
    int wprec, aprec;              /* weight / activation bits (8) */
    bool per_tensor;               /* weights per tensor instead of per row */
    hist_semantics histogram;      /* modelopt (pytorch-quantization 2.2) or pq 2.1 numpy histograms */
    bool disable;                  /* every quantizer off (FP32 through the QDQ graph) */
    char disable_keyword[QB_QUANT_PATTERN_MAX];       /* space-separated patterns */
    char disable_layer_module[QB_QUANT_PATTERN_MAX];  /* pattern after "layer.\d+." */
    char enable_layer_module[QB_QUANT_PATTERN_MAX];   /* pattern after "layer.\d+." */
    bool recalibrate_weights;      /* weight amax <- max|W| per row (or tensor) */
    bool fuse_qkv;                 /* matmul q/k/v amax <- their max (and q/k/v weights when per tensor) */
    double clip_gelu;              /* > 0: output.dense input amax <- min(amax, clip_gelu) */
} qb_quant_recipe;

/* quant_trainer's defaults: percentile 99.99 (the example's), 8 bits, per-row weights, max calibrator, all on. */
void qb_quant_recipe_default(qb_quant_recipe *r);
/* Parses a calibrator name: max, percentile, mse, entropy. */
int qb_calibrator_parse(const char *name, qb_calibrator *c, qb_err *err);
/* Name of a calibrator. */
const char *qb_calibrator_name(qb_calibrator c);
/* The histogram amax method of a calibrator (percentile for max, where it is not used). */
hist_amax_method qb_calibrator_hist_method(qb_calibrator c);
/* Checks the ranges and compiles the patterns once; errors name the option ("quant.aprec"). */
int qb_quant_recipe_validate(const qb_quant_recipe *r, qb_err *err);
/* The per-kind descriptors of the recipe, for building the model (set_default_quantizers in the reference). */
int qb_quant_recipe_defaults(const qb_quant_recipe *r, quant_defaults *d, qb_err *err);
/* configure_model(calib=False): every quantizer enabled, then disable, disable-keyword, disable-layer-module,
 * enable-layer-module, recalibrate-weights, fuse-qkv, clip-gelu in the reference's order. Prints a summary line to
 * log (may be NULL). */
int qb_quant_configure(qb_bert_model *m, const qb_quant_recipe *r, FILE *log, qb_err *err);
/* Counts quantizers: total, enabled, with an amax. */
void qb_quant_count(const qb_bert_model *m, int *total, int *enabled, int *with_amax);
/* Learned ranges for QAT: every enabled per-tensor quantizer with an amax gets a trainable range, a PACT amax
 * (QUANT_AMAX_LEARNABLE) or an LSQ scale (QUANT_AMAX_LSQ), a parameter of m's context that the optimizer created
 * afterwards trains; *count gets their number. Per-row quantizers keep their fixed ranges. */
int qb_quant_learn_ranges(qb_bert_model *m, quant_amax_mode mode, int *count, qb_err *err);
/* "none", "pact" or "lsq" -> QUANT_AMAX_CALIBRATED (none), QUANT_AMAX_LEARNABLE or QUANT_AMAX_LSQ. */
int qb_learn_ranges_parse(const char *name, quant_amax_mode *mode, qb_err *err);

/* export_quantizers.h: what the exporters need to know about a model's quantizers: which ones the forward applies,
 * that each has a fixed amax, their HDF5 names, the linear layers they sit on, and TensorRT's equal-scale rule. */
#pragma once
#include <stdbool.h>
#include <stdio.h>
#include "model/bert.h"

#define QB_EXPORT_MAX_LINEARS 8

/* True when the forward applies q: enabled and quantizing. */
bool qb_export_quant_active(const qb_quantizer *q);
/* Checks the active quantizers: each has an amax (the error lists those without one) and none learns its amax. */
int qb_export_check_quantizers(const qb_bert_model *m, qb_err *err);
/* Splits a quantizer name "a.b.c._input_quantizer" into its module group "a/b/c" and dataset stem "input"
 * ("_weight_quantizer" -> "weight", "matmul_q_input_quantizer" -> "matmul_q_input"). */
int qb_export_quant_path(const char *name, char *group, size_t group_n, char *stem, size_t stem_n, qb_err *err);
/* HF parameter name with '/' for '.' ("bert/embeddings/LayerNorm/weight"). */
void qb_export_param_path(const char *name, char *out, size_t n);
/* The model's pooler and head linears that exist (encoder layers are in m->layers); returns the count. */
int qb_export_head_linears(const qb_bert_model *m, const qb_bert_linear **out);
/* Prints each group of quantizers that read the same tensor (and so feed one fused TensorRT/FasterTransformer kernel)
 * with unequal amax; returns the number of such groups. */
int qb_export_report_unequal_scales(const qb_bert_model *m, const char *prefix, FILE *log);

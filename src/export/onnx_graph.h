/* onnx_graph.h: the model as an ONNX graph (opset 13) through protobuf-c and the onnx.proto of libonnx-dev.
 * Inputs input_ids, attention_mask, token_type_ids (int64 [batch_size, seq_len]); outputs per head.
 * Two modes:
 *   QB_ONNX_QDQ: linear weights as int8 initializers W^T [in, out] -> DequantizeLinear(axis 1, scale amax/bound per
 *     output channel, int8 zero point 0) -> MatMul, the integers of the forward's fake quantization; every active
 *     activation quantizer as QuantizeLinear -> DequantizeLinear (rank-0 scale amax/bound, int8 zero point 0; uint8 for
 *     unsigned). One pair serves the query/key/value inputs when their quantizers agree. Arithmetic follows our forward
 *     (scores * 1/sqrt(d), additive mask -FLT_MAX).
 *   QB_ONNX_HF: what HF's save_onnx (pytorch-quantization's use_fb_fake_quant + torch.onnx.export, opset 13) writes:
 *     float weights W [out, in] -> QuantizeLinear -> DequantizeLinear(axis 0) -> Transpose -> MatMul, one Q/DQ pair
 *     per quantizer, scores / sqrt(d), outputs output_start_logits / output_end_logits.
 * Supported: 8-bit quantizers, activations per tensor, signed full range or unsigned; narrow-range weights in QDQ mode.
 * Anything ONNX QDQ cannot express (other bit widths, narrow-range activations, zero amax) is an error. */
#pragma once
#include <stdio.h>
#include "model/bert.h"

typedef enum { QB_ONNX_QDQ = 0, QB_ONNX_HF } qb_onnx_mode;

typedef struct qb_onnx_export_opts {
    qb_onnx_mode mode;
    FILE *log;          /* Q/DQ counts and TensorRT's unequal-scale groups; NULL: quiet */
    const char *log_path; /* the path the log names (the final one when path is staged); NULL: path */
} qb_onnx_export_opts;

/* Writes m's graph to path atomically. Errors name the path or the quantizer. */
int qb_onnx_export(qb_bert_model *m, const qb_onnx_export_opts *o, const char *path, qb_err *err);
/* Mode by name: "qdq" or "hf". */
int qb_onnx_mode_parse(const char *name, qb_onnx_mode *mode, qb_err *err);

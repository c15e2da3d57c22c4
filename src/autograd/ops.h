/* ops.h: the differentiable ops. Each returns a new tensor (or a view), records itself on the tape when an input
 * requires grad, and returns NULL with ctx->err naming the op and shapes when an input is wrong.
 * Shapes: B batch, S sequence, H hidden, N heads, D head size, C classes. */
#pragma once
#include "autograd/graph.h"
#include "autograd/tensor.h"

/* ---- linear algebra (OpenBLAS sgemm on the CPU) */
/* C = op(A) @ op(B): A [..., M, K] (or [..., K, M] with trans_a), B [K, N] (or [N, K] with trans_b) shared by all
 * batches, or with the same leading dims as A. Inner matrices may be strided views (last stride 1). */
qb_tensor *qb_matmul(qb_ctx *ctx, qb_tensor *a, qb_tensor *b, bool trans_a, bool trans_b);
/* y = x @ W^T + bias: x [..., in], W [out, in], bias [out] or NULL (as torch.nn.functional.linear). */
qb_tensor *qb_linear(qb_ctx *ctx, qb_tensor *x, qb_tensor *w, qb_tensor *bias);
/* act(x @ W^T + bias) (act GELU, tanh GELU, tanh or ReLU): for the tanh GELU with a bias, where ctx->gemm_epilogue is on
 * and the device has gemm_epilogue, one GEMM with cuBLASLt's GELU_AUX_BIAS epilogue (the pre-activation kept for the
 * backward); else (also when x would go as a bf16 copy, see qb_mark_gemm_input) qb_linear and the activation op. */
qb_tensor *qb_linear_act(qb_ctx *ctx, qb_tensor *x, qb_tensor *w, qb_tensor *bias, qb_unary_kind act);

/* ---- elementwise (numpy broadcasting of b against a's shape) */
qb_tensor *qb_add(qb_ctx *ctx, qb_tensor *a, qb_tensor *b);
qb_tensor *qb_sub(qb_ctx *ctx, qb_tensor *a, qb_tensor *b);
qb_tensor *qb_mul(qb_ctx *ctx, qb_tensor *a, qb_tensor *b);
/* y = x * s. */
qb_tensor *qb_scale(qb_ctx *ctx, qb_tensor *x, float s);
/* y = x + bias over the last dim: x [..., H], bias [H]. */
qb_tensor *qb_bias_add(qb_ctx *ctx, qb_tensor *x, qb_tensor *bias);

/* ---- activations */
/* Exact GELU, x * Phi(x) (HF "gelu"). */
qb_tensor *qb_gelu(qb_ctx *ctx, qb_tensor *x);
/* Tanh-approximated GELU (HF "gelu_new"). */
qb_tensor *qb_gelu_tanh(qb_ctx *ctx, qb_tensor *x);
qb_tensor *qb_tanh(qb_ctx *ctx, qb_tensor *x);
qb_tensor *qb_relu(qb_ctx *ctx, qb_tensor *x);
/* act(x), act GELU, tanh GELU or ReLU, in the recompute buffer (qb_new_recomputed): not kept for the backward, which
 * recomputes it from x where it reads it (train.recompute_activation). */
qb_tensor *qb_activation_recomputed(qb_ctx *ctx, qb_unary_kind act, qb_tensor *x);

/* ---- normalisation, attention pieces */
/* Layer norm over the last dim: x [..., H], gamma/beta [H] (either may be NULL). */
qb_tensor *qb_layernorm(qb_ctx *ctx, qb_tensor *x, qb_tensor *gamma, qb_tensor *beta, float eps);
/* y = softmax(x * scale + mask) over the last dim; mask (no grad) broadcasts against x, or NULL. */
qb_tensor *qb_softmax(qb_ctx *ctx, qb_tensor *x, float scale, qb_tensor *mask);
/* Inverted dropout with drop probability p when ctx->training, identity otherwise. */
qb_tensor *qb_dropout(qb_ctx *ctx, qb_tensor *x, float p);
/* out [..., H] = weight[ids] : weight [V, H], ids int32 host array with the given shape (1 to 3 dims). */
qb_tensor *qb_embedding(qb_ctx *ctx, qb_tensor *weight, const int32_t *ids, int ndim, const int64_t *shape);
/* As qb_embedding, but ids equal to padding_idx get no gradient (torch.nn.Embedding(padding_idx=...)); -1: none. */
qb_tensor *qb_embedding_padded(qb_ctx *ctx, qb_tensor *weight, const int32_t *ids, int ndim, const int64_t *shape, int64_t padding_idx);

/* ---- shapes (views where the layout allows, copies otherwise) */
qb_tensor *qb_reshape(qb_ctx *ctx, qb_tensor *x, int ndim, const int64_t *shape);
/* Dims reordered: out dim i is input dim perm[i] (a view). */
qb_tensor *qb_permute(qb_ctx *ctx, qb_tensor *x, const int *perm);
qb_tensor *qb_transpose(qb_ctx *ctx, qb_tensor *x, int d0, int d1);
/* Elements [start, start+len) along dim (a view). */
qb_tensor *qb_slice(qb_ctx *ctx, qb_tensor *x, int dim, int64_t start, int64_t len);
/* A row-major copy (or x itself when it already is). */
qb_tensor *qb_contiguous(qb_ctx *ctx, qb_tensor *x);
/* [B, S, N*D] -> [B, N, S, D] (a view). */
qb_tensor *qb_split_heads(qb_ctx *ctx, qb_tensor *x, int n_heads);
/* [B, N, S, D] -> [B, S, N*D] (a copy). */
qb_tensor *qb_merge_heads(qb_ctx *ctx, qb_tensor *x);

/* ---- reductions and losses (scalars have shape [1]) */
qb_tensor *qb_sum(qb_ctx *ctx, qb_tensor *x);
qb_tensor *qb_mean(qb_ctx *ctx, qb_tensor *x);
/* Mean cross-entropy of logits [R, C] against int32 labels [R]; rows labelled ignore_index are skipped (as
 * torch.nn.CrossEntropyLoss; all rows ignored gives NaN, as PyTorch). */
qb_tensor *qb_cross_entropy(qb_ctx *ctx, qb_tensor *logits, const int32_t *labels, int32_t ignore_index);
/* Knowledge distillation: mean over rows of KL(softmax(teacher / T) || softmax(student / T)) for logits [R, C]
 * (F.kl_div(log_softmax(s / T), softmax(t / T), reduction="batchmean")); the teacher gets no gradient. */
qb_tensor *qb_distill_kl(qb_ctx *ctx, qb_tensor *student, qb_tensor *teacher, float temperature);
/* Mean squared error between a and b (same shape; b may require grad too). */
qb_tensor *qb_mse_loss(qb_ctx *ctx, qb_tensor *a, qb_tensor *b);
/* Mean binary cross-entropy with logits; targets same shape, no grad. */
qb_tensor *qb_bce_with_logits(qb_ctx *ctx, qb_tensor *logits, qb_tensor *targets);

/* backend.h: the kernel table of a device (one per device, as ggml's backends): every kernel that the ops, the
 * optimizer and gradient clipping run, as function pointers. A context takes its device's table once (qb_ctx_new);
 * shared code reaches tensor memory only through it. A NULL entry is a kernel the device does not have yet: calling it
 * through QB_KERNEL gives "<op>: no <device> kernel <entry>".
 *
 * Conventions of every entry:
 * - the first argument is the device state (stream, library handles, workspace; NULL on the CPU);
 * - float and int pointers are memory of the table's device (host memory on the CPU); shape, stride and descriptor
 *   arguments (int64_t arrays, structs passed by pointer) are host memory, read before the call returns;
 * - tensors are row-major and contiguous unless strides are given (in elements);
 * - keep is 1 to add into an output gradient, 0 to overwrite it (it may then be the upstream gradient's own buffer);
 * - returns 0, or -1 with a message in the device state (error_message).
 * Adding a kernel for a device: write it with the entry's typedef (e.g. `qb_k_layernorm qb_cuda_layernorm;` in that
 * device's kernels.h) and set the field in that device's table (one line). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qb_dev qb_dev;

typedef enum { QB_UNARY_GELU = 0, QB_UNARY_GELU_TANH, QB_UNARY_TANH, QB_UNARY_RELU } qb_unary_kind;
typedef enum { QB_BINARY_ADD = 0, QB_BINARY_SUB, QB_BINARY_MUL } qb_binary_kind;
/* GEMM compute precision (qb_ctx_set_precision): inputs rounded to TF32 or bf16 inside the product, fp32 accumulation,
 * fp32 inputs, outputs and master weights in every mode. */
typedef enum { QB_PREC_FP32 = 0, QB_PREC_TF32, QB_PREC_BF16 } qb_precision;

/* The CPU's fp32 GEMM library: oneDNN's sgemm (the default where the build has oneDNN) or OpenBLAS's. */
typedef enum { QB_CPU_GEMM_DEFAULT = 0, QB_CPU_GEMM_ONEDNN, QB_CPU_GEMM_OPENBLAS } qb_cpu_gemm_lib;

/* Batched GEMM: count[0] x count[1] products; a, b, c are each operand's element offsets between consecutive matrices
 * along those two dims (0: the same matrix for every product). When c is {0, 0} every product adds into the one C
 * (C = alpha * sum_p op(A_p) op(B_p) + beta * C, in product order); with no products C = beta * C. precision: the
 * context's (the op shells copy ctx->precision; the CPU's kernel reads it, CUDA's reads its device state).
 * a_bf16 / b_bf16 (precision bf16 only, both set or neither): the operands are stored as bf16 (uint16 bits, offsets
 * and leading dims in elements), made by `cast_bf16`, whose rounding is the one bf16 GEMMs apply to fp32 operands. */
typedef struct qb_gemm_batch {
    int64_t count[2];
    int64_t a[2], b[2], c[2];
    qb_precision precision;
    bool a_bf16, b_bf16;
    qb_cpu_gemm_lib cpu_gemm;  /* the CPU's fp32 library (the op shells copy ctx->cpu_gemm; other devices ignore it) */
} qb_gemm_batch;

/* What one GEMM does after its product (gemm_epilogue: cuBLASLt's epilogues on cuda), in row-major terms. */
typedef enum {
    QB_EPI_BIAS = 1,        /* C = alpha op(A) op(B) + bias[j] (beta 0) */
    QB_EPI_BIAS_GELU_TANH,  /* aux = alpha op(A) op(B) + bias[j], C = gelu_tanh(aux) (beta 0; C and aux [m, n], ld n) */
    QB_EPI_BGRAD,           /* C = alpha op(A) op(B) + beta C, bias_grad[i] += sum_l A[l, i] (ta, A [k, m] with lda m): a
                             * linear's bias gradient from its weight-gradient GEMM */
} qb_epilogue_kind;
typedef struct qb_gemm_epilogue {
    qb_epilogue_kind kind;
    const float *bias;  /* QB_EPI_BIAS*: [n] */
    float *aux;         /* QB_EPI_BIAS_GELU_TANH: the pre-activation out, [m, n] */
    float *bias_grad;   /* QB_EPI_BGRAD: [m] */
    bool fused;         /* out: the GEMM's own epilogue did it (else the device ran separate kernels, same definition) */
} qb_gemm_epilogue;

/* A parameter's floats in the packed blocks (parameters, gradients, AdamW moments share one layout). */
typedef struct qb_segment {
    int64_t offset, n;
    int32_t flags;  /* QB_SEG_* */
    int32_t unused;
} qb_segment;
#define QB_SEG_GRAD 1   /* has a gradient: the optimizer updates it, the gradient norm counts it */
#define QB_SEG_DECAY 2  /* AdamW applies weight decay */

/* torch.optim.AdamW's per-step scalars (formed in double, used as float). */
typedef struct qb_adamw_hyper {
    float w1;            /* 1 - beta1 */
    float b2, w2;        /* beta2, 1 - beta2 */
    float eps;
    float step_size;     /* lr / (1 - beta1^t) */
    float bc2_sqrt;      /* sqrt(1 - beta2^t) */
    float decay_factor;  /* 1 - lr * weight_decay (QB_SEG_DECAY segments) */
} qb_adamw_hyper;

/* ---- device settings */
/* Sets the GEMM compute precision of the device (NULL entry: fp32 only). */
typedef int qb_k_set_precision(qb_dev *d, qb_precision p);

/* ---- memory */
/* bytes of device memory (64-byte aligned; bytes 0 gives a valid block), or NULL when out of memory. */
typedef void *qb_k_alloc(qb_dev *d, size_t bytes);
/* Frees memory from alloc (NULL: nothing). */
typedef void qb_k_release(qb_dev *d, void *p);
/* dst[0..n) = value. */
typedef int qb_k_fill(qb_dev *d, float *dst, int64_t n, float value);
/* bytes from src to dst: host to device, device to host (complete when it returns), device to device. */
typedef int qb_k_memcpy(qb_dev *d, void *dst, const void *src, size_t bytes);
/* dst (contiguous, shape) = src read through src_stride: a strided view gathered (1 to 4 dims). */
typedef int qb_k_copy_strided(qb_dev *d, float *dst, const float *src, int ndim, const int64_t *shape, const int64_t *src_stride);
/* dst read through dst_stride += src (contiguous, shape): a view's gradient added back (1 to 4 dims). */
typedef int qb_k_accumulate_strided(qb_dev *d, float *dst, const int64_t *dst_stride, const float *src, int ndim, const int64_t *shape);
/* dst[i] += alpha * src[i]. */
typedef int qb_k_axpy(qb_dev *d, float *dst, const float *src, float alpha, int64_t n);
/* y[i] = x[i] * s (y may be x). */
typedef int qb_k_scale(qb_dev *d, float *y, const float *x, float s, int64_t n);
/* *used and *total bytes of the whole device's memory now (cudaMemGetInfo: total - free, by every process). */
typedef int qb_k_mem_info(qb_dev *d, size_t *used, size_t *total);

/* ---- linear algebra */
/* Row-major C = alpha * op(A) op(B) + beta * C, [m, k] x [k, n], leading dims lda/ldb/ldc, over a batch (see above). */
typedef int qb_k_gemm(qb_dev *d, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const void *a, int64_t lda,
                      const void *b, int64_t ldb, float beta, float *c, int64_t ldc, const qb_gemm_batch *batch);
/* y[i] = x[i] rounded to bf16 (nearest even, NaN kept quiet: the bf16 GEMMs' own rounding of an fp32 operand), n values. */
typedef int qb_k_cast_bf16(qb_dev *d, uint16_t *y, const float *x, int64_t n);
/* y[r, j] = bias[j] for rows x n. */
typedef int qb_k_bias_rows(qb_dev *d, float *y, const float *bias, int64_t rows, int64_t n);
/* dbias[j] += sum_r dy[r, j] over rows x n (the order over r fixed). */
typedef int qb_k_col_sum(qb_dev *d, float *dbias, const float *dy, int64_t rows, int64_t n);

/* One product C = op(A) op(B) with epilogue ep (alpha, beta, transposes and leading dims as gemm's). */
typedef int qb_k_gemm_epilogue(qb_dev *d, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                               const float *b, int64_t ldb, float beta, float *c, int64_t ldc, qb_gemm_epilogue *ep);

/* ---- elementwise: a and y [shape] contiguous; b read at sum_d idx_d * b_stride[d] (0 where b broadcasts). When
 * `rows`, b is contiguous and repeats every nb elements of a (same shape, or a suffix of a's shape). */
typedef int qb_k_binary(qb_dev *d, qb_binary_kind kind, float *y, const float *a, const float *b, int64_t n, int64_t nb, bool rows,
                        int ndim, const int64_t *shape, const int64_t *b_stride);
/* db += d(a op b)/db * dy reduced over the broadcast (db contiguous with b's shape, db_stride its broadcast strides against
 * a's shape; mul reads a). Order: nb == n elementwise, `rows` column sums, else sequential over a's elements. */
typedef int qb_k_binary_grad_b(qb_dev *d, qb_binary_kind kind, float *db, const float *dy, const float *a, int64_t n, int64_t nb,
                               bool rows, int ndim, const int64_t *shape, const int64_t *db_stride);
/* da = keep * da + dy * b (b broadcast through b_stride): the gradient of a * b for a. */
typedef int qb_k_mul_grad_a(qb_dev *d, float *da, float keep, const float *dy, const float *b, int64_t n, int ndim,
                            const int64_t *shape, const int64_t *b_stride);

/* ---- activations */
typedef int qb_k_unary(qb_dev *d, qb_unary_kind kind, float *y, const float *x, int64_t n);
/* dx = keep * dx + dy * act'(x) (tanh reads y = act(x)). */
typedef int qb_k_unary_grad(qb_dev *d, qb_unary_kind kind, float keep, float *dx, const float *dy, const float *x, const float *y, int64_t n);

/* ---- layer norm over rows x h (gamma, beta may be NULL: 1 and 0) */
/* y = (x - mean) * rstd * gamma + beta; writes mean[rows] and rstd[rows]. */
typedef int qb_k_layernorm(qb_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma, const float *beta,
                           int64_t rows, int64_t h, float eps);
/* dgamma += sum_r dy * xhat, dbeta += sum_r dy (either may be NULL). */
typedef int qb_k_layernorm_grad_params(qb_dev *d, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean,
                                       const float *rstd, int64_t rows, int64_t h);
/* dx = keep * dx + rstd * (dn - mean(dn) - xhat * mean(dn * xhat)), dn = dy * gamma. */
typedef int qb_k_layernorm_grad_input(qb_dev *d, float *dx, float keep, const float *dy, const float *x, const float *gamma,
                                      const float *mean, const float *rstd, int64_t rows, int64_t h);

/* ---- softmax over the last dim of x [shape4] (4 dims, leading 1s) */
/* y = softmax(x * scale + mask), mask read at mask_stride4 (0 where it broadcasts), or NULL. */
typedef int qb_k_softmax(qb_dev *d, float *y, const float *x, float scale, const float *mask, const int64_t *shape4,
                         const int64_t *mask_stride4);
/* dx = keep * dx + scale * y * (dy - sum(y * dy)) per row of c. */
typedef int qb_k_softmax_grad(qb_dev *d, float *dx, float keep, const float *y, const float *dy, float scale, int64_t rows, int64_t c);

/* ---- dropout: element i kept (times inv_keep) when qb_rng_uniform32(key, offset + i) >= p */
typedef int qb_k_dropout(qb_dev *d, float *y, const float *x, int64_t n, uint32_t key, uint64_t offset, float p, float inv_keep);
/* dx = keep * dx + dy * mask. */
typedef int qb_k_dropout_grad(qb_dev *d, float *dx, float keep, const float *dy, int64_t n, uint32_t key, uint64_t offset, float p,
                              float inv_keep);

/* ---- embedding: ids [n_ids] int32 in [0, rows), weight [rows, h] */
typedef int qb_k_embedding(qb_dev *d, float *y, const float *weight, const int32_t *ids, int64_t n_ids, int64_t h);
/* dweight[ids[t]] += dy[t] except ids equal to padding_idx (-1: none); deterministic (the same sums in the same order). */
typedef int qb_k_embedding_grad(qb_dev *d, float *dweight, const float *dy, const int32_t *ids, int64_t n_ids, int64_t h,
                                int64_t padding_idx);

/* ---- reductions to a device scalar y[0] (accumulated in double) */
typedef int qb_k_sum(qb_dev *d, float *y, const float *x, int64_t n, bool mean);
/* dx[i] += dy[0] * scale. */
typedef int qb_k_sum_grad(qb_dev *d, float *dx, const float *dy, float scale, int64_t n);

/* ---- losses: loss[0] written, dloss[0] read (device scalars); labels int32 device memory */
/* Mean over the `count` rows whose label is not ignore_index of lse - x[label] (NaN when count is 0); writes lse[rows]. */
typedef int qb_k_cross_entropy(qb_dev *d, float *loss, float *lse, const float *x, const int32_t *labels, int64_t rows, int64_t c,
                               int32_t ignore_index, int64_t count);
/* dx[r] += dloss / count * (softmax(x[r]) - onehot(label)) for rows not ignored. */
typedef int qb_k_cross_entropy_grad(qb_dev *d, float *dx, const float *x, const float *lse, const int32_t *labels, const float *dloss,
                                    int64_t rows, int64_t c, int32_t ignore_index, int64_t count);
/* Knowledge distillation: loss[0] = mean over rows of KL(softmax(t[r] * inv_t) || softmax(s[r] * inv_t)); writes the
 * log-sum-exps lse_s, lse_t [rows] of s * inv_t and t * inv_t. */
typedef int qb_k_distill_kl(qb_dev *d, float *loss, float *lse_s, float *lse_t, const float *s, const float *t, int64_t rows, int64_t c,
                            float inv_t);
/* ds[r] += dloss * inv_t / rows * (softmax(s[r] * inv_t) - softmax(t[r] * inv_t)). */
typedef int qb_k_distill_kl_grad(qb_dev *d, float *ds, const float *s, const float *t, const float *lse_s, const float *lse_t,
                                 const float *dloss, int64_t rows, int64_t c, float inv_t);
typedef int qb_k_mse(qb_dev *d, float *loss, const float *a, const float *b, int64_t n);
/* dt += (negate ? -1 : 1) * 2 dloss / n * (a - b). */
typedef int qb_k_mse_grad(qb_dev *d, float *dt, const float *a, const float *b, const float *dloss, bool negate, int64_t n);
typedef int qb_k_bce(qb_dev *d, float *loss, const float *x, const float *t, int64_t n);
/* dx += dloss / n * (sigmoid(x) - t). */
typedef int qb_k_bce_grad(qb_dev *d, float *dx, const float *x, const float *t, const float *dloss, int64_t n);

/* ---- optimizer and clipping over the packed blocks (numel floats; seg [n_seg] device memory, ascending disjoint offsets as
 * qb_params_layout makes them) */
/* torch AdamW on every QB_SEG_GRAD segment: w *= decay (QB_SEG_DECAY), m lerp g, v = b2 v + w2 g^2, w -= step m / (sqrt v / bc2 + eps). */
typedef int qb_k_adamw(qb_dev *d, float *w, float *m, float *v, const float *g, int64_t numel, const qb_segment *seg, int n_seg,
                       const qb_adamw_hyper *h);
/* norm[0] = float(sqrt(sum_s float(sqrt(sumsq_s))^2)) over QB_SEG_GRAD segments, sumsq_s (scratch [n_seg]) summed in double
 * over fixed chunks (the same bits whatever the thread count). */
typedef int qb_k_grad_norm(qb_dev *d, float *norm, double *sumsq, const float *g, int64_t numel, const qb_segment *seg, int n_seg);
/* g *= coef on QB_SEG_GRAD segments when coef = float(max_norm / (norm[0] + 1e-6)) is < 1 or NaN. */
typedef int qb_k_grad_clip(qb_dev *d, float *g, int64_t numel, const qb_segment *seg, int n_seg, const float *norm, double max_norm);

typedef struct qb_kernels {
    const char *name;        /* the device, for messages */
    bool host_memory;        /* device memory is host memory (the CPU) */
    const char *(*error_message)(qb_dev *d);  /* the last failure's message (NULL entry: none kept) */
    qb_k_set_precision *set_precision;
    qb_k_alloc *alloc;
    qb_k_release *release;
    qb_k_fill *fill;
    qb_k_memcpy *memcpy_h2d, *memcpy_d2h, *memcpy_d2d;
    qb_k_copy_strided *copy_strided;
    qb_k_accumulate_strided *accumulate_strided;
    qb_k_axpy *axpy;
    qb_k_scale *scale;
    qb_k_gemm *gemm;
    qb_k_cast_bf16 *cast_bf16;
    qb_k_bias_rows *bias_rows;
    qb_k_col_sum *col_sum;
    qb_k_gemm_epilogue *gemm_epilogue;  /* NULL: none (the cpu); the linear then runs gemm, bias_rows and col_sum */
    qb_k_binary *binary;
    qb_k_binary_grad_b *binary_grad_b;
    qb_k_mul_grad_a *mul_grad_a;
    qb_k_unary *unary;
    qb_k_unary_grad *unary_grad;
    qb_k_layernorm *layernorm;
    qb_k_layernorm_grad_params *layernorm_grad_params;
    qb_k_layernorm_grad_input *layernorm_grad_input;
    qb_k_softmax *softmax;
    qb_k_softmax_grad *softmax_grad;
    qb_k_dropout *dropout;
    qb_k_dropout_grad *dropout_grad;
    qb_k_embedding *embedding;
    qb_k_embedding_grad *embedding_grad;
    qb_k_sum *sum;
    qb_k_sum_grad *sum_grad;
    qb_k_cross_entropy *cross_entropy;
    qb_k_cross_entropy_grad *cross_entropy_grad;
    qb_k_distill_kl *distill_kl;
    qb_k_distill_kl_grad *distill_kl_grad;
    qb_k_mse *mse;
    qb_k_mse_grad *mse_grad;
    qb_k_bce *bce;
    qb_k_bce_grad *bce_grad;
    qb_k_adamw *adamw;
    qb_k_grad_norm *grad_norm;
    qb_k_grad_clip *grad_clip;
    qb_k_mem_info *mem_info;  /* NULL: the device's memory is not measured (the CPU: see peak RSS) */
} qb_kernels;

/* The tables: the CPU's (src/autograd/cpu/) and CUDA's (src/autograd/cuda/kernels.c; its entries are NULL in a build
 * without CUDA). */
extern const qb_kernels qb_cpu_kernels;
extern const qb_kernels qb_cuda_kernels;

#ifdef __cplusplus
}
#endif

/* quant_kernels.h: the quantization layer's kernel table, one per device (conventions of autograd/backend.h: device
 * state first, pointers into the device's memory, descriptors and shapes on the host, 0 or -1). Fake quantization of
 * x [outer, channels, inner] uses amax[c] for channel c (channels 1: per tensor), levels [qmin, qmax], scale
 * qmax / amax (0 when amax <= 2^-24), numerics of fake_quant.h. The histogram's growth and range logic stays on the
 * host (calib_histogram.c); the counting of a batch into given bins is the kernel. */
#pragma once
#include "autograd/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Statistics of |x| over the kept elements (not exact zeros when skip_zeros). */
typedef struct qb_abs_stats {
    float max, min;   /* 0 and +inf when nothing is kept */
    int64_t kept;
    int32_t bad;      /* NaN or Inf seen */
    int32_t unused;
} qb_abs_stats;

typedef enum {
    QB_HIST_LINEAR = 0,  /* torch.histc over [lo, hi]: bin (|x| - lo) * nbins / (hi - lo) in float32, hi in the last bin */
    QB_HIST_UNIFORM,     /* np.histogram, uniform float32 edges over [lo, hi]: float32 index, one-bin correction by edges_f32 */
    QB_HIST_EDGES,       /* np.histogram with float64 edges [nbins + 1]: bin by search ([e_k, e_k+1), last closed) */
} qb_hist_mode;

typedef struct qb_hist_bins {
    qb_hist_mode mode;
    int64_t nbins;
    bool skip_zeros;
    float lo, hi;              /* LINEAR, UNIFORM: values outside are skipped */
    const float *edges_f32;    /* UNIFORM: [nbins + 1], device memory */
    const double *edges;       /* EDGES: [nbins + 1], device memory; values outside [edges[0], edges[nbins]] skipped */
} qb_hist_bins;

/* y = fake_quant(x) per channel (y may be x). */
typedef int qb_qk_fake_quant(qb_dev *d, float *y, const float *x, int64_t outer, int64_t channels, int64_t inner, const float *amax,
                             float qmin, float qmax);
/* One tensor of a fake-quant block (qb_qk_fake_quant_block): src[src_off ..] viewed as [outer, channels, inner] written
 * to dst[dst_off ..], channel c with amax[amax_off + c] (channels 1: per tensor), levels [qmin, qmax]; its outer *
 * channels rows of inner elements have the flags clipped[clip_off ..]. Offsets in floats (clip_off: bytes). */
typedef struct qb_fq_segment {
    int64_t src_off, dst_off, amax_off, clip_off;
    int64_t outer, channels, inner;
    float qmin, qmax;
} qb_fq_segment;
/* dst = fake_quant(src) for every segment (seg [n_seg] in device memory; max_numel the largest segment's elements),
 * each element as qb_qk_fake_quant gives it, in one pass (one launch); clipped [n_clipped] (device memory, the segments'
 * rows) gets 1 for each row with an element failing |x| <= amax (clipped, or NaN: the clipped STE zeroes its
 * gradient), else 0. */
typedef int qb_qk_fake_quant_block(qb_dev *d, float *dst, const float *src, const float *amax, const qb_fq_segment *seg, int n_seg,
                                   int64_t max_numel, uint8_t *clipped, int64_t n_clipped);
/* g = (g where |x| <= amax[c], else 0) in place on the rows r of [outer * channels, inner] (channel r % channels) with
 * clipped[r] set; the other rows (the mask there is the identity) are not touched. */
typedef int qb_qk_fake_quant_mask_rows(qb_dev *d, float *g, const float *x, int64_t outer, int64_t channels, int64_t inner, const float *amax,
                                       const uint8_t *clipped);
/* dx = keep * dx + (dy where |x| <= amax[c], else 0): the clipped straight-through gradient (a clipped element gives 0
 * even when dy is not finite). */
typedef int qb_qk_fake_quant_grad(qb_dev *d, float *dx, float keep, const float *dy, const float *x, int64_t outer,
                                  int64_t channels, int64_t inner, const float *amax);
/* y = fake_quant(clip(x, -a, a), a), a = amax[0] (PACT). */
typedef int qb_qk_fake_quant_learnable(qb_dev *d, float *y, const float *x, int64_t n, const float *amax, float qmin, float qmax);
/* dx += dy where -a < x < a (dx may be NULL); damax[0] += sum(dy where x >= a) - sum(dy where x <= -a), summed in double
 * (damax may be NULL). */
typedef int qb_qk_fake_quant_learnable_grad(qb_dev *d, float *dx, float *damax, const float *dy, const float *x, int64_t n,
                                            const float *amax);
/* LSQ with scale s = scale[0] and zero point 0 (torch._fake_quantize_learnable_per_tensor_affine):
 * y = clamp(nearbyint(x * (1 / s)), qmin, qmax) * s. */
typedef int qb_qk_fake_quant_lsq(qb_dev *d, float *y, const float *x, int64_t n, const float *scale, float qmin, float qmax);
/* Its gradients: dx += dy where qmin <= q <= qmax (dx may be NULL); dscale[0] += grad_factor * sum of dy * ((y - x) / s
 * inside the range, qmin below it, qmax above it), summed in double (dscale may be NULL). */
typedef int qb_qk_fake_quant_lsq_grad(qb_dev *d, float *dx, float *dscale, const float *dy, const float *x, int64_t n, const float *scale,
                                      float qmin, float qmax, float grad_factor);
/* amax[c] = max |x| over outer and inner for each channel (0 for none); bad[0] = 1 when NaN or Inf was seen, else 0. */
typedef int qb_qk_amax_reduce(qb_dev *d, float *amax, int32_t *bad, const float *x, int64_t outer, int64_t channels, int64_t inner);
/* flag[0] = 1 when some x[i] < 0, else 0. */
typedef int qb_qk_any_negative(qb_dev *d, int32_t *flag, const float *x, int64_t n);
/* out[0] = statistics of |x|. */
typedef int qb_qk_abs_stats(qb_dev *d, qb_abs_stats *out, const float *x, int64_t n, bool skip_zeros);
/* counts[0..nbins) += the histogram of |x| in the given bins (exact zeros skipped when skip_zeros). */
typedef int qb_qk_histogram(qb_dev *d, int64_t *counts, const float *x, int64_t n, const qb_hist_bins *bins);

/* ---- fused ops (op_fused.c): a producer and the per-tensor fake quant of its output in one pass. */
/* A per-tensor fake quant: amax[0] in device memory (NULL: none), levels [qmin, qmax]. */
typedef struct qb_fq_point {
    const float *amax;
    float qmin, qmax;
} qb_fq_point;
/* Dropout inside a fused op: element i kept (times inv_keep) when qb_rng_uniform32(key, offset + i) >= p; off: none. */
typedef struct qb_fused_dropout {
    bool on;
    uint32_t key;
    uint64_t offset;
    float p, inv_keep;
} qb_fused_dropout;
/* y = softmax(x * scale + mask) (kept for the backward; shapes as autograd's softmax entry), z = fake_quant(y * keep(i))
 * with keep(i) the dropout's scale of element i (1 when off): the attention probabilities as the P @ V GEMM reads them. */
typedef int qb_qk_softmax_fq(qb_dev *d, float *y, float *z, const float *x, float scale, const float *mask, const int64_t *shape4,
                             const int64_t *mask_stride4, const qb_fused_dropout *drop, const qb_fq_point *fq);
/* dx = keep * dx + scale * y * (g - sum(y * g)) per row of c, g = (|y keep(i)| <= amax ? dz : 0) * keep(i): the STE mask
 * and the dropout mask recomputed from y, amax and the RNG. */
typedef int qb_qk_softmax_fq_grad(qb_dev *d, float *dx, float keep, const float *y, const float *dz, float scale, int64_t rows, int64_t c,
                                  const qb_fused_dropout *drop, const float *amax);
/* z = fake_quant(act(x)) (act(x) not stored). */
typedef int qb_qk_act_fq(qb_dev *d, qb_unary_kind kind, float *z, const float *x, int64_t n, const qb_fq_point *fq);
/* dx = keep * dx + (|act(x)| <= amax ? dz : 0) * act'(x), act(x) recomputed from x (ReLU passes dz through). */
typedef int qb_qk_act_fq_grad(qb_dev *d, qb_unary_kind kind, float keep, float *dx, const float *dz, const float *x, int64_t n,
                              const float *amax);
/* Residual add and layer norm over rows x h with both residual inputs fake-quantized: s = fake_quant(a, fa) +
 * fake_quant(r, fr) (kept), y = (s - mean) * rstd * gamma + beta (mean, rstd kept; gamma, beta may be NULL) and, when
 * fy->amax, yq = fake_quant(y, fy) for y's next quantized consumer, all in one pass over each row. */
typedef int qb_qk_add_fq_layernorm(qb_dev *d, float *y, float *yq, float *s, float *mean, float *rstd, const float *a, const float *r,
                                   const float *gamma, const float *beta, int64_t rows, int64_t h, float eps, const qb_fq_point *fa,
                                   const qb_fq_point *fr, const qb_fq_point *fy);
/* Its input gradients: ds = rstd * (dn - mean(dn) - shat * mean(dn * shat)), dn = dy * gamma, then
 * da = keep_a * da + (|a| <= amax_a ? ds : 0) and dr likewise (da or dr NULL: not wanted; da may be dy's buffer). */
typedef int qb_qk_add_fq_layernorm_grad(qb_dev *d, float *da, float keep_a, float *dr, float keep_r, const float *dy, const float *s,
                                        const float *a, const float *r, const float *gamma, const float *mean, const float *rstd,
                                        int64_t rows, int64_t h, const float *amax_a, const float *amax_r);
/* ---- the INT8 GEMM path (op_int8_gemm.c) */
/* q [batch, rows_out, ld] (int8, every element written, 0 in the padding) = the integer codes
 * clamp(rint(x * s), qmin, qmax) of x, s = qmax / amax[ch] (0 when amax <= 2^-24), read through view: 4 dims
 * {d0, d1, rows, cols} with element strides, batch = d0 * d1. Without transpose q[b, r, c] is element (r, c) of matrix
 * b (rows <= rows_out, cols <= ld), with it element (c, r) (cols <= rows_out, rows <= ld). ch = r, the input row
 * (n_amax = rows), or 0 (n_amax = 1). On a fake-quantized x (x = q / s) the codes are q exactly. */
typedef int qb_qk_quantize_s8(qb_dev *d, int8_t *q, const float *x, const int64_t shape[4], const int64_t stride[4], bool transpose,
                              int64_t rows_out, int64_t ld, const float *amax, int64_t n_amax, float qmin, float qmax);
/* c[p] = a[p] b[p]^T in int32 for p < batch: a [batch, m, k], b [batch, n, k], c [batch, m, n], int8 inputs, every
 * matrix dense; n and k multiples of 4 (cuBLASLt IMMA's rules). Exact (no overflow for k < 2^17). */
typedef int qb_qk_gemm_s8(qb_dev *d, int32_t *c, const int8_t *a, const int8_t *b, int64_t m, int64_t n, int64_t k, int64_t batch);
/* y[p, r, j] = acc[p, r, j] / (sa * sb[j]) + bias[j], rounded once from float64 (0 when a scale is 0), for p < batch,
 * r < m, j < n: acc [batch, m, ld] int32 (ld >= n), y [batch, m, n] (y may be acc itself when ld = n), sa = qmax_a /
 * amax_a[0], sb[j] = qmax_b / amax_b[n_amax_b == 1 ? 0 : j]; bias [n] or NULL. */
typedef int qb_qk_dequant_s32(qb_dev *d, float *y, const int32_t *acc, int64_t batch, int64_t m, int64_t n, int64_t ld,
                              const float *amax_a, float qmax_a, const float *amax_b, int64_t n_amax_b, float qmax_b, const float *bias);

typedef struct qb_quant_kernels {
    const char *name;
    qb_qk_fake_quant *fake_quant;
    qb_qk_fake_quant_grad *fake_quant_grad;
    qb_qk_fake_quant_block *fake_quant_block;
    qb_qk_fake_quant_mask_rows *fake_quant_mask_rows;
    qb_qk_fake_quant_learnable *fake_quant_learnable;
    qb_qk_fake_quant_learnable_grad *fake_quant_learnable_grad;
    qb_qk_fake_quant_lsq *fake_quant_lsq;
    qb_qk_fake_quant_lsq_grad *fake_quant_lsq_grad;
    qb_qk_amax_reduce *amax_reduce;
    qb_qk_any_negative *any_negative;
    qb_qk_abs_stats *abs_stats;
    qb_qk_histogram *histogram;
    qb_qk_softmax_fq *softmax_fq;
    qb_qk_softmax_fq_grad *softmax_fq_grad;
    qb_qk_act_fq *act_fq;
    qb_qk_act_fq_grad *act_fq_grad;
    qb_qk_add_fq_layernorm *add_fq_layernorm;
    qb_qk_add_fq_layernorm_grad *add_fq_layernorm_grad;
    qb_qk_quantize_s8 *quantize_s8;
    qb_qk_gemm_s8 *gemm_s8;
    qb_qk_dequant_s32 *dequant_s32;
} qb_quant_kernels;

/* The tables: the CPU's (src/quant/cpu/) and CUDA's (src/quant/cuda/kernels.c). */
extern const qb_quant_kernels qb_quant_cpu_kernels;
extern const qb_quant_kernels qb_quant_cuda_kernels;

#ifndef __cplusplus /* the host side (C only: kernel files include the types above) */
#include "autograd/tensor.h"

/* Where quantization kernels run: a device's quant and memory tables (alloc, copies, error messages) and its state. */
typedef struct qb_quant_exec {
    const qb_quant_kernels *qk;
    const qb_kernels *k;
    qb_dev *dev;
} qb_quant_exec;

/* The CPU (host memory, no context). */
qb_quant_exec qb_quant_exec_cpu(void);
/* The device of a context. */
qb_quant_exec qb_quant_exec_of(const qb_ctx *ctx);

/* Runs quant kernel `entry` on ex; 0, or -1 with err naming op and the device (as QB_KERNEL). */
#define QB_QKERNEL(err, ex, op, entry, ...) QB_TABLE_CALL(err, (ex)->qk, (ex)->k, (ex)->dev, op, entry, __VA_ARGS__)

/* Temporary device memory of ex (released with qb_quant_release); NULL with err set. */
void *qb_quant_alloc(const qb_quant_exec *ex, size_t bytes, const char *op, qb_err *err);
void qb_quant_release(const qb_quant_exec *ex, void *p);
/* Copies between host and ex's device memory. */
int qb_quant_download(const qb_quant_exec *ex, void *host, const void *src, size_t bytes, const char *op, qb_err *err);
int qb_quant_upload(const qb_quant_exec *ex, void *dst, const void *host, size_t bytes, const char *op, qb_err *err);

/* x [ndim dims] viewed as [outer, channels, inner] around axis (-1: one channel). */
void qb_channel_view(int ndim, const int64_t *shape, int axis, int64_t *outer, int64_t *channels, int64_t *inner);
#endif

#ifdef __cplusplus
}
#endif

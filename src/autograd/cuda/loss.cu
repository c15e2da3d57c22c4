/* loss.cu: cross-entropy (ignore_index), distillation KL, MSE and BCE-with-logits, forward and backward (the CPU's cpu/loss.c). Losses
 * are sums in double as the CPU's, reduced in a fixed order (strided per thread, then a shuffle tree, then the warps in
 * order; MSE and BCE in fixed chunks of blocks whose partials (qb_cuda_scratch) one block sums in order), so that they do
 * not depend on the order of threads or blocks. Cross-entropy: one warp per row for the log-sum-exp, one block for the
 * mean. Gradients: one thread per element. */
#include "autograd/cuda/cuda_compat.h"

#include "autograd/cuda/device_math.cuh"
#include "autograd/cuda/kernels.h"

#define ROW_WARPS 8        /* rows per block of the log-sum-exp */
#define SUM_THREADS 256    /* threads of a partial-sum block */
#define FINAL_THREADS 1024 /* threads of the one block that finishes a sum */
#define MAX_PARTIALS 1024  /* blocks of a partial sum */
#define ELEM_THREADS 256

/* The sum of v over the block (blockDim.x a multiple of 32), valid in thread 0; once per kernel. */
static __device__ double block_sum(double v) {
    __shared__ double warp_sum[32];
    v = qb_warp_sum(v);
    if ((threadIdx.x & 31) == 0) warp_sum[threadIdx.x >> 5] = v;
    __syncthreads();
    double s = 0.0;
    if (threadIdx.x == 0)
        for (unsigned w = 0; w < blockDim.x / 32; w++) s += warp_sum[w];
    return s;
}

static __device__ __forceinline__ float quiet_nan() { return __int_as_float(0x7fc00000); }

/* ---- cross-entropy */

/* lse[r] = max + log(sum exp(x - max)), the exponentials in double as the CPU. */
static __global__ void __launch_bounds__(ROW_WARPS * 32)
    cross_entropy_lse_kernel(float *__restrict__ lse, const float *__restrict__ x, int64_t rows, int64_t c) {
    int lane = threadIdx.x & 31;
    int64_t r = (int64_t)blockIdx.x * ROW_WARPS + (threadIdx.x >> 5);
    if (r >= rows) return;
    const float *xr = x + r * c;
    float mx = -INFINITY;
    for (int64_t j = lane; j < c; j += 32) mx = xr[j] > mx ? xr[j] : mx;
    mx = qb_warp_max(mx);
    double s = 0.0;
    for (int64_t j = lane; j < c; j += 32) s += exp((double)(xr[j] - mx));
    s = qb_warp_sum(s);
    if (lane == 0) lse[r] = mx + (float)log(s);
}

/* loss[0] = mean over the rows not ignored of lse - x[label] (NaN when count is 0). */
static __global__ void __launch_bounds__(FINAL_THREADS)
    cross_entropy_mean_kernel(float *__restrict__ loss, const float *__restrict__ lse, const float *__restrict__ x,
                              const int32_t *__restrict__ labels, int64_t rows, int64_t c, int32_t ignore_index, int64_t count) {
    double s = 0.0;
    for (int64_t r = threadIdx.x; r < rows; r += FINAL_THREADS)
        if (labels[r] != ignore_index) s += (double)lse[r] - x[r * c + labels[r]];
    s = block_sum(s);
    if (threadIdx.x == 0) loss[0] = count ? (float)(s / (double)count) : quiet_nan();
}

/* dx[r, j] += dloss / count * softmax(x[r])_j, then dx[r, label] -= dloss / count, rows not ignored. */
static __global__ void __launch_bounds__(ELEM_THREADS)
    cross_entropy_grad_kernel(float *__restrict__ dx, const float *__restrict__ x, const float *__restrict__ lse,
                              const int32_t *__restrict__ labels, const float *__restrict__ dloss, int64_t c, int32_t ignore_index,
                              int64_t count) {
    int64_t r = blockIdx.x, j = (int64_t)blockIdx.y * ELEM_THREADS + threadIdx.x;
    int32_t label = labels[r];
    if (j >= c || label == ignore_index) return;
    float g = dloss[0] / (float)count, v = dx[r * c + j] + g * expf(x[r * c + j] - lse[r]);
    if (j == label) v -= g;
    dx[r * c + j] = v;
}

extern "C" int qb_cuda_cross_entropy(qb_dev *d, float *loss, float *lse, const float *x, const int32_t *labels, int64_t rows, int64_t c,
                                     int32_t ignore_index, int64_t count) {
    cudaStream_t stream = (cudaStream_t)qb_cuda_stream(d);
    if (rows > 0 && c > 0)
        QB_LAUNCH(cross_entropy_lse_kernel, (unsigned)((rows + ROW_WARPS - 1) / ROW_WARPS), ROW_WARPS * 32, 0, stream, lse, x, rows, c);
    QB_LAUNCH(cross_entropy_mean_kernel, 1, FINAL_THREADS, 0, stream, loss, lse, x, labels, rows, c, ignore_index, count);
    return qb_cuda_status(d, "cross_entropy", cudaGetLastError());
}

extern "C" int qb_cuda_cross_entropy_grad(qb_dev *d, float *dx, const float *x, const float *lse, const int32_t *labels, const float *dloss,
                                          int64_t rows, int64_t c, int32_t ignore_index, int64_t count) {
    if (count == 0 || rows <= 0 || c <= 0) return 0;
    dim3 grid((unsigned)rows, (unsigned)((c + ELEM_THREADS - 1) / ELEM_THREADS));
    QB_LAUNCH(cross_entropy_grad_kernel, grid, ELEM_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), dx, x, lse, labels, dloss, c, ignore_index,
              count);
    return qb_cuda_status(d, "cross_entropy gradient", cudaGetLastError());
}

/* ---- MSE and BCE: loss[0] = sum_i term(i) / n */

struct mse_term {
    const float *a, *b;
    __device__ double operator()(int64_t i) const {
        double df = (double)a[i] - b[i];
        return df * df;
    }
};

struct bce_term {
    const float *x, *t;
    __device__ double operator()(int64_t i) const {
        float v = x[i];
        return (double)((v > 0.0f ? v : 0.0f) - v * t[i] + log1pf(expf(-fabsf(v))));
    }
};

/* Block b sums the terms of [b * per_block, (b + 1) * per_block): into partial[b], or (one block) loss[0] = sum / n. */
template <class Term>
static __global__ void __launch_bounds__(SUM_THREADS)
    loss_partial_kernel(double *__restrict__ partial, float *__restrict__ loss, Term term, int64_t n, int64_t per_block) {
    int64_t i0 = (int64_t)blockIdx.x * per_block, i1 = i0 + per_block < n ? i0 + per_block : n;
    double s = 0.0;
    for (int64_t i = i0 + threadIdx.x; i < i1; i += SUM_THREADS) s += term(i);
    s = block_sum(s);
    if (threadIdx.x != 0) return;
    if (partial)
        partial[blockIdx.x] = s;
    else
        loss[0] = (float)(s / (double)n);
}

/* loss[0] = sum of partial[0..blocks) / n. */
static __global__ void __launch_bounds__(FINAL_THREADS)
    loss_final_kernel(float *__restrict__ loss, const double *__restrict__ partial, int64_t blocks, int64_t n) {
    double s = 0.0;
    for (int64_t b = threadIdx.x; b < blocks; b += FINAL_THREADS) s += partial[b];
    s = block_sum(s);
    if (threadIdx.x == 0) loss[0] = (float)(s / (double)n);
}

/* The mean of term over n elements: chunks of at least 4096 elements, at most MAX_PARTIALS of them (the shape decides). */
template <class Term>
static int mean_of_terms(qb_dev *d, const char *what, float *loss, Term term, int64_t n) {
    cudaStream_t stream = (cudaStream_t)qb_cuda_stream(d);
    int64_t blocks = (n + 4095) / 4096;
    blocks = blocks < MAX_PARTIALS ? blocks : MAX_PARTIALS;
    int64_t per_block = (n + blocks - 1) / blocks;
    blocks = (n + per_block - 1) / per_block;
    double *partial = nullptr;
    if (blocks > 1) {
        partial = (double *)qb_cuda_scratch(d, (size_t)blocks * sizeof(double));
        if (!partial) return -1;
    }
    QB_LAUNCH((loss_partial_kernel<Term>), (unsigned)blocks, SUM_THREADS, 0, stream, partial, loss, term, n, per_block);
    if (blocks > 1) QB_LAUNCH(loss_final_kernel, 1, FINAL_THREADS, 0, stream, loss, partial, blocks, n);
    return qb_cuda_status(d, what, cudaGetLastError());
}

extern "C" int qb_cuda_mse(qb_dev *d, float *loss, const float *a, const float *b, int64_t n) {
    if (n <= 0) return qb_cuda_status(d, "mse_loss: no elements", cudaErrorInvalidValue);
    return mean_of_terms(d, "mse_loss", loss, mse_term{a, b}, n);
}

extern "C" int qb_cuda_bce(qb_dev *d, float *loss, const float *x, const float *t, int64_t n) {
    if (n <= 0) return qb_cuda_status(d, "bce_with_logits: no elements", cudaErrorInvalidValue);
    return mean_of_terms(d, "bce_with_logits", loss, bce_term{x, t}, n);
}

/* dt += sign * 2 dloss / n * (a - b). */
static __global__ void __launch_bounds__(ELEM_THREADS)
    mse_grad_kernel(float *__restrict__ dt, const float *__restrict__ a, const float *__restrict__ b, const float *__restrict__ dloss,
                    bool negate, int64_t n) {
    float g = 2.0f * dloss[0] / (float)n, sign = negate ? -g : g;
    for (int64_t i = (int64_t)blockIdx.x * ELEM_THREADS + threadIdx.x; i < n; i += (int64_t)gridDim.x * ELEM_THREADS)
        dt[i] += sign * (a[i] - b[i]);
}

/* dx += dloss / n * (sigmoid(x) - t). */
static __global__ void __launch_bounds__(ELEM_THREADS)
    bce_grad_kernel(float *__restrict__ dx, const float *__restrict__ x, const float *__restrict__ t, const float *__restrict__ dloss,
                    int64_t n) {
    float g = dloss[0] / (float)n;
    for (int64_t i = (int64_t)blockIdx.x * ELEM_THREADS + threadIdx.x; i < n; i += (int64_t)gridDim.x * ELEM_THREADS) {
        float sig = 1.0f / (1.0f + expf(-x[i]));
        dx[i] += g * (sig - t[i]);
    }
}

static unsigned elem_blocks(int64_t n) {
    int64_t b = (n + ELEM_THREADS - 1) / ELEM_THREADS;
    return (unsigned)(b < 16384 ? b : 16384);
}

extern "C" int qb_cuda_mse_grad(qb_dev *d, float *dt, const float *a, const float *b, const float *dloss, bool negate, int64_t n) {
    if (n <= 0) return 0;
    QB_LAUNCH(mse_grad_kernel, elem_blocks(n), ELEM_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), dt, a, b, dloss, negate, n);
    return qb_cuda_status(d, "mse_loss gradient", cudaGetLastError());
}

extern "C" int qb_cuda_bce_grad(qb_dev *d, float *dx, const float *x, const float *t, const float *dloss, int64_t n) {
    if (n <= 0) return 0;
    QB_LAUNCH(bce_grad_kernel, elem_blocks(n), ELEM_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), dx, x, t, dloss, n);
    return qb_cuda_status(d, "bce_with_logits gradient", cudaGetLastError());
}

/* ---- distillation KL (the CPU's qb_cpu_distill_kl) */

/* lse_s[r], lse_t[r]: log-sum-exps of s * k and t * k, one warp per row, the exponentials in double. */
static __global__ void __launch_bounds__(ROW_WARPS * 32)
    distill_lse_kernel(float *__restrict__ lse_s, float *__restrict__ lse_t, const float *__restrict__ s, const float *__restrict__ t,
                       int64_t rows, int64_t c, float k) {
    int lane = threadIdx.x & 31;
    int64_t r = (int64_t)blockIdx.x * ROW_WARPS + (threadIdx.x >> 5);
    if (r >= rows) return;
    for (int w = 0; w < 2; w++) {
        const float *xr = (w ? t : s) + r * c;
        float mx = -INFINITY;
        for (int64_t j = lane; j < c; j += 32) mx = xr[j] * k > mx ? xr[j] * k : mx;
        mx = qb_warp_max(mx);
        double sum = 0.0;
        for (int64_t j = lane; j < c; j += 32) sum += exp((double)(xr[j] * k - mx));
        sum = qb_warp_sum(sum);
        if (lane == 0) (w ? lse_t : lse_s)[r] = (float)((double)mx + log(sum));
    }
}

/* loss[0] = mean over rows of sum_j p_t (log p_t - log p_s); each thread takes whole rows, the block sums in order. */
static __global__ void __launch_bounds__(FINAL_THREADS)
    distill_mean_kernel(float *__restrict__ loss, const float *__restrict__ s, const float *__restrict__ t, const float *__restrict__ lse_s,
                        const float *__restrict__ lse_t, int64_t rows, int64_t c, float k) {
    double acc = 0.0;
    for (int64_t r = threadIdx.x; r < rows; r += FINAL_THREADS) {
        const float *sr = s + r * c, *tr = t + r * c;
        double kl = 0.0;
        for (int64_t j = 0; j < c; j++) {
            double log_pt = (double)(tr[j] * k) - (double)lse_t[r], log_ps = (double)(sr[j] * k) - (double)lse_s[r];
            kl += exp(log_pt) * (log_pt - log_ps);
        }
        acc += kl;
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) loss[0] = (float)(acc / (double)rows);
}

/* ds[r, j] += dloss * k / rows * (softmax(s * k) - softmax(t * k)). */
static __global__ void __launch_bounds__(ELEM_THREADS)
    distill_grad_kernel(float *__restrict__ ds, const float *__restrict__ s, const float *__restrict__ t, const float *__restrict__ lse_s,
                        const float *__restrict__ lse_t, const float *__restrict__ dloss, int64_t rows, int64_t c, float k) {
    int64_t r = blockIdx.x, j = (int64_t)blockIdx.y * ELEM_THREADS + threadIdx.x;
    if (j >= c) return;
    float g = dloss[0] * k / (float)rows;
    int64_t i = r * c + j;
    ds[i] += g * (expf(s[i] * k - lse_s[r]) - expf(t[i] * k - lse_t[r]));
}

extern "C" int qb_cuda_distill_kl(qb_dev *d, float *loss, float *lse_s, float *lse_t, const float *s, const float *t, int64_t rows, int64_t c,
                                  float inv_t) {
    cudaStream_t stream = (cudaStream_t)qb_cuda_stream(d);
    if (rows <= 0 || c <= 0) return 0;
    QB_LAUNCH(distill_lse_kernel, (unsigned)((rows + ROW_WARPS - 1) / ROW_WARPS), ROW_WARPS * 32, 0, stream, lse_s, lse_t, s, t, rows, c, inv_t);
    QB_LAUNCH(distill_mean_kernel, 1, FINAL_THREADS, 0, stream, loss, s, t, lse_s, lse_t, rows, c, inv_t);
    return qb_cuda_status(d, "distill_kl", cudaGetLastError());
}

extern "C" int qb_cuda_distill_kl_grad(qb_dev *d, float *ds, const float *s, const float *t, const float *lse_s, const float *lse_t,
                                       const float *dloss, int64_t rows, int64_t c, float inv_t) {
    if (rows <= 0 || c <= 0) return 0;
    dim3 grid((unsigned)rows, (unsigned)((c + ELEM_THREADS - 1) / ELEM_THREADS));
    QB_LAUNCH(distill_grad_kernel, grid, ELEM_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), ds, s, t, lse_s, lse_t, dloss, rows, c, inv_t);
    return qb_cuda_status(d, "distill_kl gradient", cudaGetLastError());
}

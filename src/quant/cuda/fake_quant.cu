/* fake_quant.cu: fake quantization per tensor and per channel, its clipped-STE gradient, the learnable (PACT) form
 * and the unsigned input check on the GPU: the element formulas of quant_math.h as the CPU kernels
 * (cpu/fake_quant.c), bit for bit, NaN results included (quant_host_nan). The learnable amax gradient is a float64
 * sum in a fixed order (per-block partials in the state's scratch, then one block): deterministic, within an ulp
 * of the CPU's float result after the cast (exact where the float64 sums are). */
#include "autograd/cuda/cuda_compat.h"

#include "quant/cuda/kernels.h"
#include "quant/cuda/quant_cuda.cuh"

/* Channel of element i of [outer, channels, inner] (channels 1: per tensor). */
template <class I>
__device__ static inline I channel_of(I i, I channels, I inner) {
    return channels == 1 ? 0 : (i / inner) % channels;
}

template <class I>
__global__ void __launch_bounds__(QB_CUDA_THREADS)
    fake_quant_kernel(float *y, const float *x, I n, I channels, I inner, const float *amax, float lo, float hi) {
    const float s0 = fake_quant_scale_of(amax[0], hi); /* per tensor: one scale */
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        const float s = channels == 1 ? s0 : fake_quant_scale_of(amax[channel_of(i, channels, inner)], hi), div = s == 0.0f ? 1.0f : s;
        const float xi = x[i], v = fake_quant_one(xi, s, div, lo, hi);
        y[i] = v == v ? v : quant_host_nan(xi, s);
    }
}

template <class I>
__global__ void __launch_bounds__(QB_CUDA_THREADS)
    fake_quant_grad_kernel(float *dx, bool accumulate, const float *dy, const float *x, I n, I channels, I inner, const float *amax) {
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        const float g = fabsf(x[i]) <= amax[channel_of(i, channels, inner)] ? dy[i] : 0.0f;
        dx[i] = accumulate ? quant_host_add(dx[i], g) : g;
    }
}

/* 32-bit indices where n and the grid stride fit. */
static bool small_index(int64_t n) { return n <= ((int64_t)1 << 31); }

extern "C" int qb_cuda_fake_quant(qb_dev *d, float *y, const float *x, int64_t outer, int64_t channels, int64_t inner, const float *amax,
                                  float qmin, float qmax) {
    const int64_t n = outer * channels * inner;
    if (n <= 0) return 0;
    const unsigned blocks = quant_blocks(n, QUANT_ITEMS);
    if (small_index(n))
        QB_LAUNCH((fake_quant_kernel<uint32_t>), blocks, QB_CUDA_THREADS, 0, quant_stream(d), y, x, (uint32_t)n, (uint32_t)channels,
                  (uint32_t)inner, amax, qmin, qmax);
    else
        QB_LAUNCH((fake_quant_kernel<int64_t>), blocks, QB_CUDA_THREADS, 0, quant_stream(d), y, x, n, channels, inner, amax, qmin, qmax);
    return qb_cuda_status(d, "fake_quant", cudaGetLastError());
}

/* Segment blockIdx.y of the block, grid-stride over its elements along x: fake_quant_kernel's element formula; an
 * element failing |x| <= amax sets its row's clipped flag (zeroed before the launch). */
template <class I>
__global__ void __launch_bounds__(QB_CUDA_THREADS)
    fake_quant_block_kernel(float *dst, const float *src, const float *amax, const qb_fq_segment *seg, uint8_t *clipped) {
    const qb_fq_segment sg = seg[blockIdx.y];
    const float *x = src + sg.src_off, *a = amax + sg.amax_off;
    float *y = dst + sg.dst_off;
    uint8_t *flag = clipped + sg.clip_off;
    const I n = (I)(sg.outer * sg.channels * sg.inner), channels = (I)sg.channels, inner = (I)sg.inner;
    const float s0 = fake_quant_scale_of(a[0], sg.qmax);
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        const float ai = a[channel_of(i, channels, inner)];
        const float s = channels == 1 ? s0 : fake_quant_scale_of(ai, sg.qmax), div = s == 0.0f ? 1.0f : s;
        const float xi = x[i], v = fake_quant_one(xi, s, div, sg.qmin, sg.qmax);
        y[i] = v == v ? v : quant_host_nan(xi, s);
        if (!(fabsf(xi) <= ai)) flag[i / inner] = 1;
    }
}

extern "C" int qb_cuda_fake_quant_block(qb_dev *d, float *dst, const float *src, const float *amax, const qb_fq_segment *seg, int n_seg,
                                        int64_t max_numel, uint8_t *clipped, int64_t n_clipped) {
    if (n_seg <= 0 || max_numel <= 0) return 0;
    if (n_seg > 65535) return qb_cuda_status(d, "fake_quant_block", cudaErrorInvalidValue);
    cudaError_t e = cudaMemsetAsync(clipped, 0, (size_t)n_clipped, quant_stream(d));
    if (e != cudaSuccess) return qb_cuda_status(d, "fake_quant_block", e);
    const dim3 grid(quant_blocks(max_numel, QUANT_ITEMS), (unsigned)n_seg);
    if (small_index(max_numel))
        QB_LAUNCH((fake_quant_block_kernel<uint32_t>), grid, QB_CUDA_THREADS, 0, quant_stream(d), dst, src, amax, seg, clipped);
    else
        QB_LAUNCH((fake_quant_block_kernel<int64_t>), grid, QB_CUDA_THREADS, 0, quant_stream(d), dst, src, amax, seg, clipped);
    return qb_cuda_status(d, "fake_quant_block", cudaGetLastError());
}

template <class I>
__global__ void __launch_bounds__(QB_CUDA_THREADS)
    fake_quant_mask_rows_kernel(float *g, const float *x, I n, I channels, I inner, const float *amax, const uint8_t *clipped) {
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x)
        if (clipped[i / inner] && !(fabsf(x[i]) <= amax[channel_of(i, channels, inner)])) g[i] = 0.0f;
}

extern "C" int qb_cuda_fake_quant_mask_rows(qb_dev *d, float *g, const float *x, int64_t outer, int64_t channels, int64_t inner,
                                            const float *amax, const uint8_t *clipped) {
    const int64_t n = outer * channels * inner;
    if (n <= 0) return 0;
    const unsigned blocks = quant_blocks(n, QUANT_ITEMS);
    if (small_index(n))
        QB_LAUNCH((fake_quant_mask_rows_kernel<uint32_t>), blocks, QB_CUDA_THREADS, 0, quant_stream(d), g, x, (uint32_t)n, (uint32_t)channels,
                  (uint32_t)inner, amax, clipped);
    else
        QB_LAUNCH((fake_quant_mask_rows_kernel<int64_t>), blocks, QB_CUDA_THREADS, 0, quant_stream(d), g, x, n, channels, inner, amax, clipped);
    return qb_cuda_status(d, "fake_quant_mask_rows", cudaGetLastError());
}

extern "C" int qb_cuda_fake_quant_grad(qb_dev *d, float *dx, float keep, const float *dy, const float *x, int64_t outer,
                                       int64_t channels, int64_t inner, const float *amax) {
    const int64_t n = outer * channels * inner;
    if (n <= 0) return 0;
    const unsigned blocks = quant_blocks(n, QUANT_ITEMS);
    const bool accumulate = keep != 0.0f;
    if (small_index(n))
        QB_LAUNCH((fake_quant_grad_kernel<uint32_t>), blocks, QB_CUDA_THREADS, 0, quant_stream(d), dx, accumulate, dy, x, (uint32_t)n,
                  (uint32_t)channels, (uint32_t)inner, amax);
    else
        QB_LAUNCH((fake_quant_grad_kernel<int64_t>), blocks, QB_CUDA_THREADS, 0, quant_stream(d), dx, accumulate, dy, x, n, channels, inner,
                  amax);
    return qb_cuda_status(d, "fake_quant_grad", cudaGetLastError());
}

/* y = fake_quant(clip(x, -a, a), a): the CPU's two passes in one. */
__global__ void __launch_bounds__(QB_CUDA_THREADS)
    fake_quant_learnable_kernel(float *y, const float *x, int64_t n, const float *amax, float lo, float hi) {
    const float a = amax[0], s = fake_quant_scale_of(a, hi), div = s == 0.0f ? 1.0f : s;
    QB_GRID_LOOP(i, n) {
        const float xi = x[i], c = xi < -a ? -a : xi > a ? a : xi, v = fake_quant_one(c, s, div, lo, hi);
        y[i] = v == v ? v : quant_host_nan(c, s);
    }
}

extern "C" int qb_cuda_fake_quant_learnable(qb_dev *d, float *y, const float *x, int64_t n, const float *amax, float qmin, float qmax) {
    if (n <= 0) return 0;
    QB_LAUNCH(fake_quant_learnable_kernel, quant_blocks(n, QUANT_ITEMS), QB_CUDA_THREADS, 0, quant_stream(d), y, x, n, amax, qmin, qmax);
    return qb_cuda_status(d, "fake_quant_learnable", cudaGetLastError());
}

/* dx += dy inside (-a, a); partial[block] = the block's float64 sum of the amax gradient terms (when partial). */
__global__ void __launch_bounds__(QB_CUDA_THREADS)
    learnable_grad_kernel(float *dx, double *partial, const float *dy, const float *x, int64_t n, const float *amax) {
    __shared__ double buf[32];
    const float a = amax[0];
    double acc = 0.0;
    QB_GRID_LOOP(i, n) {
        const float xi = x[i], g = dy[i];
        if (dx) dx[i] = quant_host_add(dx[i], xi > -a && xi < a ? g : 0.0f);
        acc += xi >= a ? g : xi <= -a ? -g : 0.0f;
    }
    if (!partial) return;
    acc = qb_block_sum(acc, buf);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

/* damax[0] += (float)(sum of partial[0..parts)), summed in a fixed order by one block. */
__global__ void __launch_bounds__(QB_CUDA_THREADS) learnable_grad_finish_kernel(float *damax, const double *partial, int parts) {
    __shared__ double buf[32];
    double acc = 0.0;
    for (int k = threadIdx.x; k < parts; k += blockDim.x) acc += partial[k];
    acc = qb_block_sum(acc, buf);
    if (threadIdx.x == 0) damax[0] = quant_host_add(damax[0], (float)acc);
}

extern "C" int qb_cuda_fake_quant_learnable_grad(qb_dev *d, float *dx, float *damax, const float *dy, const float *x, int64_t n,
                                                 const float *amax) {
    const unsigned blocks = quant_blocks(n, QUANT_ITEMS);
    double *partial = nullptr;
    if (damax && n > 0 && !(partial = (double *)qb_cuda_scratch(d, blocks * sizeof(double)))) return -1;
    if (n > 0 && (dx || damax))
        QB_LAUNCH(learnable_grad_kernel, blocks, QB_CUDA_THREADS, 0, quant_stream(d), dx, partial, dy, x, n, amax);
    if (damax && cudaPeekAtLastError() == cudaSuccess)
        QB_LAUNCH(learnable_grad_finish_kernel, 1, QB_CUDA_THREADS, 0, quant_stream(d), damax, partial, n > 0 ? (int)blocks : 0);
    return qb_cuda_status(d, "fake_quant_learnable_grad", cudaGetLastError());
}

/* LSQ: y = clamp(nearbyint(x * (1 / s)), qmin, qmax) * s (the CPU's qb_cpu_fake_quant_lsq). */
__global__ void __launch_bounds__(QB_CUDA_THREADS)
    fake_quant_lsq_kernel(float *y, const float *x, int64_t n, const float *scale, float lo, float hi) {
    const float s = scale[0], inv = 1.0f / s;
    QB_GRID_LOOP(i, n) {
        const float q = nearbyintf(__fmul_rn(x[i], inv));
        y[i] = __fmul_rn(q < lo ? lo : q > hi ? hi : q, s);
    }
}

extern "C" int qb_cuda_fake_quant_lsq(qb_dev *d, float *y, const float *x, int64_t n, const float *scale, float qmin, float qmax) {
    if (n <= 0) return 0;
    QB_LAUNCH(fake_quant_lsq_kernel, quant_blocks(n, QUANT_ITEMS), QB_CUDA_THREADS, 0, quant_stream(d), y, x, n, scale, qmin, qmax);
    return qb_cuda_status(d, "fake_quant_lsq", cudaGetLastError());
}

/* dx += dy inside the range; partial[block] = the block's float64 sum of the scale gradient terms (when partial). */
__global__ void __launch_bounds__(QB_CUDA_THREADS) lsq_grad_kernel(float *dx, double *partial, const float *dy, const float *x, int64_t n,
                                                                   const float *scale, float lo, float hi, float gf) {
    __shared__ double buf[32];
    const float s = scale[0], inv = 1.0f / s;
    double acc = 0.0;
    QB_GRID_LOOP(i, n) {
        const float xi = x[i], g = dy[i], q = nearbyintf(__fmul_rn(xi, inv));
        if (dx && q >= lo && q <= hi) dx[i] = quant_host_add(dx[i], g);
        const float ds = q < lo ? lo : q > hi ? hi : __fmul_rn(__fsub_rn(__fmul_rn(q, s), xi), inv);
        acc += (double)__fmul_rn(__fmul_rn(ds, g), gf);
    }
    if (!partial) return;
    acc = qb_block_sum(acc, buf);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

extern "C" int qb_cuda_fake_quant_lsq_grad(qb_dev *d, float *dx, float *dscale, const float *dy, const float *x, int64_t n, const float *scale,
                                           float qmin, float qmax, float grad_factor) {
    const unsigned blocks = quant_blocks(n, QUANT_ITEMS);
    double *partial = nullptr;
    if (dscale && n > 0 && !(partial = (double *)qb_cuda_scratch(d, blocks * sizeof(double)))) return -1;
    if (n > 0 && (dx || dscale))
        QB_LAUNCH(lsq_grad_kernel, blocks, QB_CUDA_THREADS, 0, quant_stream(d), dx, partial, dy, x, n, scale, qmin, qmax, grad_factor);
    if (dscale && cudaPeekAtLastError() == cudaSuccess)
        QB_LAUNCH(learnable_grad_finish_kernel, 1, QB_CUDA_THREADS, 0, quant_stream(d), dscale, partial, n > 0 ? (int)blocks : 0);
    return qb_cuda_status(d, "fake_quant_lsq_grad", cudaGetLastError());
}

__global__ void __launch_bounds__(QB_CUDA_THREADS) any_negative_kernel(int32_t *flag, const float *x, int64_t n) {
    int neg = 0;
    QB_GRID_LOOP(i, n) neg |= x[i] < 0.0f;
    if (__syncthreads_or(neg) && threadIdx.x == 0) flag[0] = 1;
}

extern "C" int qb_cuda_any_negative(qb_dev *d, int32_t *flag, const float *x, int64_t n) {
    cudaError_t e = cudaMemsetAsync(flag, 0, sizeof *flag, quant_stream(d));
    if (e == cudaSuccess && n > 0) {
        QB_LAUNCH(any_negative_kernel, quant_blocks(n, QUANT_ITEMS), QB_CUDA_THREADS, 0, quant_stream(d), flag, x, n);
        e = cudaGetLastError();
    }
    return qb_cuda_status(d, "any_negative", e);
}

/* calib_histogram.cu: statistics of |x| and the counting of a batch into histogram bins on the GPU, as
 * cpu/calib_histogram.c: the bins come from the shared functions of quant_math.h (the same float32 / float64
 * expressions), so the counts are the CPU's exactly; blocks count into shared memory when the bins fit, then add into
 * the 64-bit counts with integer atomics. */
#include "autograd/cuda/cuda_compat.h"

#include "quant/cuda/kernels.h"
#include "quant/cuda/quant_cuda.cuh"

#define HIST_SHARED_BINS 12288 /* 48 KiB of 32-bit block counts */
#define HIST_SHARED_BLOCKS 512 /* each block adds all its bins at the end */

__global__ void abs_stats_init_kernel(qb_abs_stats *out) {
    out->max = 0.0f;
    out->min = INFINITY;
    out->kept = 0;
    out->bad = 0;
    out->unused = 0;
}

__global__ void __launch_bounds__(QB_CUDA_THREADS) abs_stats_kernel(qb_abs_stats *out, const float *x, int64_t n, bool skip_zeros) {
    __shared__ float fbuf[32];
    __shared__ unsigned long long cbuf[32];
    float hi = 0.0f, lo = INFINITY;
    unsigned long long cnt = 0;
    int nonfinite = 0;
    QB_GRID_LOOP(i, n) {
        const float a = fabsf(x[i]);
        nonfinite |= !(a <= 3.402823466e38f);
        const bool keep = !(skip_zeros && a == 0.0f);
        cnt += keep;
        hi = keep && a > hi ? a : hi;
        lo = keep && a < lo ? a : lo;
    }
    hi = quant_block_extreme(hi, fbuf, true);
    lo = quant_block_extreme(lo, fbuf, false);
    cnt = qb_block_sum(cnt, cbuf);
    nonfinite = __syncthreads_or(nonfinite);
    if (threadIdx.x == 0) {
        atomicMax((int *)&out->max, __float_as_int(hi));
        atomicMin((int *)&out->min, __float_as_int(lo));
        if (cnt) atomicAdd((unsigned long long *)&out->kept, cnt);
        if (nonfinite) out->bad = 1;
    }
}

extern "C" int qb_cuda_abs_stats(qb_dev *d, qb_abs_stats *out, const float *x, int64_t n, bool skip_zeros) {
    cudaStream_t s = quant_stream(d);
    QB_LAUNCH(abs_stats_init_kernel, 1, 1, 0, s, out);
    if (n > 0) QB_LAUNCH(abs_stats_kernel, quant_blocks(n, QUANT_ITEMS), QB_CUDA_THREADS, 0, s, out, x, n, skip_zeros);
    return qb_cuda_status(d, "abs_stats", cudaGetLastError());
}

/* counts += the bins of x in mode; block counts in dynamic shared memory when in_shared (nb <= HIST_SHARED_BINS). */
__global__ void __launch_bounds__(QB_CUDA_THREADS)
    histogram_kernel(unsigned long long *counts, const float *x, int64_t n, int mode, int64_t nb, bool skip_zeros, float lo, float hi,
                     const float *ef, const double *e, bool in_shared) {
    QB_DYNAMIC_SHARED(unsigned, local);
    const float nbf = (float)nb, width = hi - lo;
    const double inv_w = mode == QB_HIST_EDGES ? hist_edges_inv_width(e) : 1.0;
    if (in_shared) {
        for (int64_t k = threadIdx.x; k < nb; k += blockDim.x) local[k] = 0;
        __syncthreads();
    }
    QB_GRID_LOOP(i, n) {
        const int64_t k = mode == QB_HIST_LINEAR    ? hist_bin_linear(x[i], skip_zeros, lo, hi, nbf, width, nb)
                          : mode == QB_HIST_UNIFORM ? hist_bin_uniform(x[i], skip_zeros, lo, hi, width, nbf, nb, ef)
                                                    : hist_bin_edges(x[i], skip_zeros, e, nb, inv_w);
        if (k < 0) continue;
        if (in_shared) atomicAdd(&local[k], 1u);
        else atomicAdd(&counts[k], 1ull);
    }
    if (in_shared) {
        __syncthreads();
        for (int64_t k = threadIdx.x; k < nb; k += blockDim.x)
            if (local[k]) atomicAdd(&counts[k], (unsigned long long)local[k]);
    }
}

extern "C" int qb_cuda_histogram(qb_dev *d, int64_t *counts, const float *x, int64_t n, const qb_hist_bins *b) {
    if (n <= 0 || b->nbins <= 0) return 0;
    unsigned blocks = quant_blocks(n, 16);
    /* 32-bit block counts: at most 2^31 elements a block */
    const bool in_shared = b->nbins <= HIST_SHARED_BINS && n / HIST_SHARED_BLOCKS < ((int64_t)1 << 31);
    if (in_shared && blocks > HIST_SHARED_BLOCKS) blocks = HIST_SHARED_BLOCKS;
    const size_t smem = in_shared ? (size_t)b->nbins * sizeof(unsigned) : 0;
    QB_LAUNCH(histogram_kernel, blocks, QB_CUDA_THREADS, smem, quant_stream(d), (unsigned long long *)counts, x, n, (int)b->mode, b->nbins,
              b->skip_zeros, b->lo, b->hi, b->mode == QB_HIST_UNIFORM ? b->edges_f32 : nullptr,
              b->mode == QB_HIST_EDGES ? b->edges : nullptr, in_shared);
    return qb_cuda_status(d, "histogram", cudaGetLastError());
}

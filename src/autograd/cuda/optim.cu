/* optim.cu: AdamW, the global gradient norm and clipping over the packed blocks, on device memory. The segment table
 * is device memory in ascending offset order (qb_params_layout); each block takes one fixed chunk of the packed block
 * and walks the segments that overlap it (found by binary search), so the launch never needs the table on the host.
 * AdamW and clipping round every operation as the CPU does (no contracted multiply-adds): the same bits as
 * cpu/optim.c. The norm: per (chunk, segment) double sums of squares in a fixed tree, added per segment in chunk order
 * into sumsq, then the segments' float norms squared and added in a fixed tree (no atomics). */
#include "autograd/cuda/cuda_compat.h"

#include "autograd/cuda/device_util.cuh"

#define OPT_CHUNK 8192 /* floats of the packed block per block of threads */

static unsigned chunks_of(int64_t numel) { return (unsigned)((numel + OPT_CHUNK - 1) / OPT_CHUNK); }

/* The first segment that ends after pos (segments ascending and disjoint). */
__device__ static int segment_at(const qb_segment *seg, int n_seg, int64_t pos) {
    int lo = 0, hi = n_seg;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (seg[mid].offset + seg[mid].n <= pos) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* [lo, hi): segment s within this block's chunk [c0, c1). */
__device__ static inline void overlap(const qb_segment &s, int64_t c0, int64_t c1, int64_t *lo, int64_t *hi) {
    *lo = s.offset > c0 ? s.offset : c0;
    *hi = s.offset + s.n < c1 ? s.offset + s.n : c1;
}

__global__ static void __launch_bounds__(QB_CUDA_THREADS) adamw_kernel(float *w, float *m, float *v, const float *g, int64_t numel,
                                                                        const qb_segment *seg, int n_seg, qb_adamw_hyper h) {
    int64_t c0 = (int64_t)blockIdx.x * OPT_CHUNK, c1 = c0 + OPT_CHUNK < numel ? c0 + OPT_CHUNK : numel;
    for (int s = segment_at(seg, n_seg, c0); s < n_seg && seg[s].offset < c1; s++) {
        qb_segment sg = seg[s];
        if (!(sg.flags & QB_SEG_GRAD)) continue;
        float keep = sg.flags & QB_SEG_DECAY ? h.decay_factor : 1.0f;
        int64_t lo, hi;
        overlap(sg, c0, c1, &lo, &hi);
        for (int64_t k = lo + threadIdx.x; k < hi; k += blockDim.x) {
            float gk = g[k], wk = __fmul_rn(w[k], keep), mk = m[k], vk = v[k];
            mk = __fadd_rn(mk, __fmul_rn(h.w1, __fsub_rn(gk, mk)));
            vk = __fadd_rn(__fmul_rn(vk, h.b2), __fmul_rn(__fmul_rn(h.w2, gk), gk));
            wk = __fsub_rn(wk, __fmul_rn(h.step_size, mk) / __fadd_rn(sqrtf(vk) / h.bc2_sqrt, h.eps));
            w[k] = wk;
            m[k] = mk;
            v[k] = vk;
        }
    }
}

extern "C" int qb_cuda_adamw(qb_dev *d, float *w, float *m, float *v, const float *g, int64_t numel, const qb_segment *seg, int n_seg,
                             const qb_adamw_hyper *h) {
    if (numel <= 0 || n_seg <= 0) return 0;
    QB_LAUNCH(adamw_kernel, chunks_of(numel), QB_CUDA_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), w, m, v, g, numel, seg, n_seg,
              *h);
    return qb_cuda_status(d, "adamw", cudaGetLastError());
}

/* partial[s + c]: the sum of squares of segment s within chunk c (unique: chunk ranges of later segments start no
 * earlier than where earlier ones end). */
__global__ static void __launch_bounds__(QB_CUDA_THREADS) norm_chunk_kernel(double *partial, const float *g, int64_t numel, const qb_segment *seg,
                                                                             int n_seg) {
    __shared__ double warp_sums[32];
    int64_t c0 = (int64_t)blockIdx.x * OPT_CHUNK, c1 = c0 + OPT_CHUNK < numel ? c0 + OPT_CHUNK : numel;
    for (int s = segment_at(seg, n_seg, c0); s < n_seg && seg[s].offset < c1; s++) {
        qb_segment sg = seg[s];
        if (!(sg.flags & QB_SEG_GRAD) || sg.n <= 0) continue;
        int64_t lo, hi;
        overlap(sg, c0, c1, &lo, &hi);
        double ss = 0.0;
        for (int64_t k = lo + threadIdx.x; k < hi; k += blockDim.x) ss += (double)g[k] * (double)g[k];
        ss = qb_block_sum(ss, warp_sums);
        if (threadIdx.x == 0) partial[(int64_t)s + blockIdx.x] = ss;
    }
}

/* Block s: sumsq[s] = the chunk partials of segment s (0 without a gradient). */
__global__ static void __launch_bounds__(QB_CUDA_THREADS) norm_segment_kernel(double *sumsq, const double *partial, const qb_segment *seg) {
    __shared__ double warp_sums[32];
    int s = blockIdx.x;
    qb_segment sg = seg[s];
    double ss = 0.0;
    if ((sg.flags & QB_SEG_GRAD) && sg.n > 0) {
        int64_t first = sg.offset / OPT_CHUNK, last = (sg.offset + sg.n - 1) / OPT_CHUNK;
        for (int64_t c = first + threadIdx.x; c <= last; c += blockDim.x) ss += partial[s + c];
    }
    ss = qb_block_sum(ss, warp_sums);
    if (threadIdx.x == 0) sumsq[s] = ss;
}

/* norm[0] = float(sqrt(sum_s float(sqrt(sumsq_s))^2)) over the segments with a gradient. */
__global__ static void __launch_bounds__(QB_CUDA_THREADS) norm_total_kernel(float *norm, const double *sumsq, const qb_segment *seg, int n_seg) {
    __shared__ double warp_sums[32];
    double total = 0.0;
    for (int s = threadIdx.x; s < n_seg; s += blockDim.x) {
        if (!(seg[s].flags & QB_SEG_GRAD)) continue;
        double pn = (double)(float)sqrt(sumsq[s]);
        total += pn * pn;
    }
    total = qb_block_sum(total, warp_sums);
    if (threadIdx.x == 0) norm[0] = (float)sqrt(total);
}

extern "C" int qb_cuda_grad_norm(qb_dev *d, float *norm, double *sumsq, const float *g, int64_t numel, const qb_segment *seg, int n_seg) {
    cudaStream_t st = (cudaStream_t)qb_cuda_stream(d);
    if (numel <= 0 || n_seg <= 0) {
        if (n_seg > 0 && cudaMemsetAsync(sumsq, 0, (size_t)n_seg * sizeof(double), st) != cudaSuccess)
            return qb_cuda_status(d, "grad_norm", cudaGetLastError());
        return qb_cuda_status(d, "grad_norm", cudaMemsetAsync(norm, 0, sizeof(float), st));
    }
    unsigned chunks = chunks_of(numel);
    double *partial = (double *)qb_cuda_scratch(d, ((size_t)chunks + (size_t)n_seg) * sizeof(double));
    if (!partial) return -1;
    QB_LAUNCH(norm_chunk_kernel, chunks, QB_CUDA_THREADS, 0, st, partial, g, numel, seg, n_seg);
    if (cudaPeekAtLastError() == cudaSuccess) QB_LAUNCH(norm_segment_kernel, (unsigned)n_seg, QB_CUDA_THREADS, 0, st, sumsq, partial, seg);
    if (cudaPeekAtLastError() == cudaSuccess) QB_LAUNCH(norm_total_kernel, 1, QB_CUDA_THREADS, 0, st, norm, sumsq, seg, n_seg);
    return qb_cuda_status(d, "grad_norm", cudaGetLastError());
}

__global__ static void __launch_bounds__(QB_CUDA_THREADS) clip_kernel(float *g, int64_t numel, const qb_segment *seg, int n_seg, const float *norm,
                                                                       double max_norm) {
    float coef = (float)(max_norm / ((double)norm[0] + 1e-6));
    if (!(coef < 1.0f) && coef == coef) return;
    int64_t c0 = (int64_t)blockIdx.x * OPT_CHUNK, c1 = c0 + OPT_CHUNK < numel ? c0 + OPT_CHUNK : numel;
    for (int s = segment_at(seg, n_seg, c0); s < n_seg && seg[s].offset < c1; s++) {
        qb_segment sg = seg[s];
        if (!(sg.flags & QB_SEG_GRAD)) continue;
        int64_t lo, hi;
        overlap(sg, c0, c1, &lo, &hi);
        for (int64_t k = lo + threadIdx.x; k < hi; k += blockDim.x) g[k] *= coef;
    }
}

extern "C" int qb_cuda_grad_clip(qb_dev *d, float *g, int64_t numel, const qb_segment *seg, int n_seg, const float *norm, double max_norm) {
    if (numel <= 0 || n_seg <= 0) return 0;
    QB_LAUNCH(clip_kernel, chunks_of(numel), QB_CUDA_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), g, numel, seg, n_seg, norm,
              max_norm);
    return qb_cuda_status(d, "grad_clip", cudaGetLastError());
}

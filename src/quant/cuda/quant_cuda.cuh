/* quant_cuda.cuh: launch geometry, block reductions and the host's NaN rules for the quant layer's CUDA kernels
 * (include after autograd/cuda/cuda_compat.h). */
#pragma once
#include <stdint.h>
#include "autograd/cuda/kernels.h"
#include "quant/quant_kernels.h"
#include "quant/quant_math.h"

#define QUANT_THREADS 256      /* threads of every quant kernel block (a multiple of 32) */
#define QUANT_MAX_BLOCKS 4096  /* grid-stride loops beyond this many blocks */

/* Blocks of QUANT_THREADS for n elements with `per_thread` elements a thread, 1 to QUANT_MAX_BLOCKS. */
static inline unsigned quant_blocks(int64_t n, int64_t per_thread) {
    int64_t b = (n + QUANT_THREADS * per_thread - 1) / (QUANT_THREADS * per_thread);
    return (unsigned)(b < 1 ? 1 : b > QUANT_MAX_BLOCKS ? QUANT_MAX_BLOCKS : b);
}

static inline cudaStream_t quant_stream(qb_dev *d) { return (cudaStream_t)qb_cuda_stream(d); }

struct quant_max_op {
    __device__ float operator()(float a, float b) const { return a > b ? a : b; }
};
struct quant_min_op {
    __device__ float operator()(float a, float b) const { return a < b ? a : b; }
};
template <class T>
struct quant_sum_op {
    __device__ T operator()(T a, T b) const { return a + b; }
};

/* op over the block's values v (every thread calls it; blockDim.x a multiple of 32), valid in thread 0: the warps
 * reduce by shuffles in a fixed tree (deterministic for sums), their results meet in buf (shared, 32 slots), warp 0
 * reduces them; buf is free again on return. */
template <class T, class Op>
__device__ T quant_block_reduce(T v, T *buf, T identity, Op op) {
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (unsigned o = 16; o > 0; o >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, o));
    if (lane == 0) buf[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? buf[lane] : identity;
        for (unsigned o = 16; o > 0; o >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, o));
    }
    __syncthreads();
    return v;
}

/* The NaN an x86-64 host gives where the result of an operation on a and b is NaN: the NaN operand quieted, else the
 * default NaN (sign set, 0xffc00000: inf * 0, inf - inf). A GPU gives the canonical 0x7fffffff instead; this keeps
 * NaN results bit-identical to the CPU kernels. When both are NaN an SSE instruction returns its first source, which
 * is the compiler's choice for a commutative add: b's here, as GCC 12 orders `dx[i] += dy-term` in the CPU kernels
 * (test_cuda_quant checks it). */
__device__ static inline float quant_host_nan(float a, float b) {
    if (b != b) return __int_as_float(__float_as_int(b) | 0x00400000);
    if (a != a) return __int_as_float(__float_as_int(a) | 0x00400000);
    return __int_as_float((int)0xffc00000u);
}

/* a + b with the host's NaN bits (b the term added to an accumulated a). */
__device__ static inline float quant_host_add(float a, float b) {
    const float r = a + b;
    return r == r ? r : quant_host_nan(a, b);
}

/* quant_cuda.cuh: launch sizes, block maxima and minima and the host's NaN rules for the quant layer's CUDA kernels
 * (include after autograd/cuda/cuda_compat.h; sums, grid loops and thread counts are device_util.cuh's). */
#pragma once
#include <stdint.h>
#include "autograd/cuda/device_util.cuh"
#include "quant/quant_kernels.h"
#include "quant/quant_math.h"

#define QUANT_ITEMS 4          /* elements a thread at least */
#define QUANT_MAX_BLOCKS 4096  /* grid-stride loops beyond this many blocks (reductions: their partials) */

/* Blocks of QB_CUDA_THREADS for n elements at `per_thread` elements a thread, 1 to QUANT_MAX_BLOCKS. */
static inline unsigned quant_blocks(int64_t n, int64_t per_thread) {
    const unsigned b = qb_cuda_blocks(n, QB_CUDA_THREADS * per_thread);
    return b > QUANT_MAX_BLOCKS ? QUANT_MAX_BLOCKS : b;
}

static inline cudaStream_t quant_stream(qb_dev *d) { return (cudaStream_t)qb_cuda_stream(d); }

/* The maximum (is_max) or minimum of v over the block's threads, valid in thread 0, NaN lanes ignored unless all
 * are; every thread calls it (blockDim.x a multiple of 32); `partial` holds 32 values and may be reused after it. */
__device__ inline float quant_block_extreme(float v, float *partial, bool is_max) {
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) {
        const float w = __shfl_down_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, w) : fminf(v, w);
    }
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (blockDim.x >> 5) ? partial[lane] : partial[0];
        for (int o = 16; o > 0; o >>= 1) {
            const float w = __shfl_down_sync(0xffffffffu, v, o);
            v = is_max ? fmaxf(v, w) : fminf(v, w);
        }
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

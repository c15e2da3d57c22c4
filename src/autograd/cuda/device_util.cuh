/* device_util.cuh: launch sizes, grid-stride loops and fixed-order block reductions shared by the kernel files
 * (include after cuda_compat.h). Every reduction here adds in an order fixed by the launch shape alone, so a kernel's
 * result has the same bits on every run. */
#pragma once
#include <stdint.h>

#include "autograd/cuda/kernels.h"

#define QB_CUDA_THREADS 256            /* threads of a 1-d block */
#define QB_CUDA_MAX_BLOCKS (1 << 20)   /* 1-d grids beyond this loop (grid-stride) */

/* Blocks covering n items at `per_block` items a block, at least 1, at most QB_CUDA_MAX_BLOCKS. */
static inline unsigned qb_cuda_blocks(int64_t n, int64_t per_block) {
    int64_t b = (n + per_block - 1) / per_block;
    return (unsigned)(b < 1 ? 1 : b > QB_CUDA_MAX_BLOCKS ? QB_CUDA_MAX_BLOCKS : b);
}

/* i over [0, n) across the whole 1-d grid. */
#define QB_GRID_LOOP(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* A shape and strides right-aligned into 4 dims (leading 1s, stride 0), passed to kernels by value. */
struct qb_view4 {
    int64_t shape[4], stride[4];
};

/* The view of ndim (1 to 4) dims; *n: its element count. */
static inline qb_view4 qb_view4_of(int ndim, const int64_t *shape, const int64_t *stride, int64_t *n) {
    qb_view4 v;
    int off = 4 - ndim;
    *n = 1;
    for (int d = 0; d < 4; d++) {
        v.shape[d] = d < off ? 1 : shape[d - off];
        v.stride[d] = d < off ? 0 : stride[d - off];
        *n *= v.shape[d];
    }
    return v;
}

/* The strided offset of row-major element i of the shape. */
__device__ inline int64_t qb_view4_offset(const qb_view4 &v, int64_t i) {
    int64_t off = 0;
    for (int d = 3; d >= 0; d--) {
        off += (i % v.shape[d]) * v.stride[d];
        i /= v.shape[d];
    }
    return off;
}

/* Sum of v over the block's threads, valid in thread 0: each warp adds down a tree, then warp 0 adds the warp sums
 * the same way. Every thread of the block calls it (blockDim.x a multiple of 32); `partial` holds 32 values and may
 * be reused after the call. */
template <class T>
__device__ inline T qb_block_sum(T v, T *partial) {
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (blockDim.x >> 5) ? partial[lane] : (T)0;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    }
    __syncthreads();
    return v;
}

/* out[j] += sign * sum_r dy[r, j] (* a[r, j] when a is given) over rows x n, in an order fixed by rows and n
 * (matmul.cu; column blocks of row chunks, the chunks' sums added in chunk order; scratch from the state). */
int qb_cuda_column_sums(qb_dev *d, const char *what, float *out, const float *dy, const float *a, int64_t rows, int64_t n,
                        float sign);

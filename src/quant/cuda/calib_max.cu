/* calib_max.cu: max|x| per channel of [outer, channels, inner] with the NaN/Inf flag on the GPU, as cpu/calib_max.c
 * (a maximum of non-negative floats, NaN skipped: exact in any order). Grid: one column of blocks per channel, each
 * block reduces its share of the channel and merges it by an integer atomicMax on the float's bits. */
#include "autograd/cuda/cuda_compat.h"

#include "quant/cuda/kernels.h"
#include "quant/cuda/quant_cuda.cuh"

template <class I>
__global__ void __launch_bounds__(QB_CUDA_THREADS)
    amax_reduce_kernel(float *amax, int32_t *bad, const float *x, I outer, I channels, I inner) {
    __shared__ float buf[32];
    const I c = blockIdx.x, m = outer * inner;
    float mx = 0.0f;
    int nonfinite = 0;
    for (I j = (I)blockIdx.y * blockDim.x + threadIdx.x; j < m; j += (I)gridDim.y * blockDim.x) {
        const I idx = channels == 1 ? j : ((j / inner) * channels + c) * inner + j % inner;
        const float a = fabsf(x[idx]);
        nonfinite |= !(a <= 3.402823466e38f);
        mx = a > mx ? a : mx;
    }
    mx = quant_block_extreme(mx, buf, true);
    nonfinite = __syncthreads_or(nonfinite);
    if (threadIdx.x == 0) {
        atomicMax((int *)&amax[c], __float_as_int(mx));
        if (nonfinite) bad[0] = 1;
    }
}

extern "C" int qb_cuda_amax_reduce(qb_dev *d, float *amax, int32_t *bad, const float *x, int64_t outer, int64_t channels, int64_t inner) {
    cudaStream_t s = quant_stream(d);
    cudaError_t e = cudaMemsetAsync(amax, 0, (size_t)channels * sizeof(float), s);
    if (e == cudaSuccess) e = cudaMemsetAsync(bad, 0, sizeof *bad, s);
    const int64_t m = outer * inner;
    if (e == cudaSuccess && channels > 0 && m > 0) {
        int64_t per_channel = QUANT_MAX_BLOCKS / channels, need = (int64_t)quant_blocks(m, QUANT_ITEMS);
        const unsigned splits = (unsigned)(need < per_channel ? need : per_channel < 1 ? 1 : per_channel);
        const unsigned threads = m >= QB_CUDA_THREADS ? QB_CUDA_THREADS : (unsigned)(m + 31) / 32 * 32; /* short channels: fewer */
        const dim3 grid((unsigned)channels, splits);
        if (outer * channels * inner < ((int64_t)1 << 31)) /* 32-bit indices, the grid stride included */
            QB_LAUNCH((amax_reduce_kernel<uint32_t>), grid, threads, 0, s, amax, bad, x, (uint32_t)outer, (uint32_t)channels, (uint32_t)inner);
        else
            QB_LAUNCH((amax_reduce_kernel<int64_t>), grid, threads, 0, s, amax, bad, x, outer, channels, inner);
        e = cudaGetLastError();
    }
    return qb_cuda_status(d, "amax_reduce", e);
}

/* dropout.cu: inverted dropout from the counter RNG of autograd/rng.h, forward and backward (the CPU's cpu/dropout.c):
 * element i is kept (times inv_keep) when qb_rng_uniform32(key, offset + i) >= p, the same mask bit for bit as the
 * CPU. Four elements a thread (one float4 where aligned), a grid-stride loop. */
#include "autograd/cuda/cuda_compat.h"

#include "autograd/cuda/device_math.cuh"
#include "autograd/cuda/kernels.h"
#include "autograd/rng.h"

#define DROPOUT_THREADS 256
#define DROPOUT_MAX_BLOCKS 16384

/* GRAD: out = keep * out + in * mask (out may be in's buffer); else out = in * mask. */
template <bool GRAD>
static __global__ void __launch_bounds__(DROPOUT_THREADS)
    dropout_kernel(float *out, float keep, const float *in, int64_t n, uint32_t key, uint64_t offset, float p, float inv_keep, bool vec) {
    int64_t step = (int64_t)gridDim.x * DROPOUT_THREADS * 4;
    for (int64_t j = ((int64_t)blockIdx.x * DROPOUT_THREADS + threadIdx.x) * 4; j < n; j += step) {
        float a[4], o[4];
        qb_load4(a, in, j, n, vec);
        if (GRAD) qb_load4(o, out, j, n, vec);
        for (int k = 0; k < 4; k++) {
            float s = qb_rng_uniform32(key, offset + (uint64_t)(j + k)) >= p ? inv_keep : 0.0f;
            o[k] = GRAD ? keep * o[k] + a[k] * s : a[k] * s;
        }
        qb_store4(out, o, j, n, vec);
    }
}

static unsigned dropout_blocks(int64_t n) {
    int64_t b = (n + DROPOUT_THREADS * 4 - 1) / (DROPOUT_THREADS * 4);
    return (unsigned)(b < DROPOUT_MAX_BLOCKS ? b : DROPOUT_MAX_BLOCKS);
}

extern "C" int qb_cuda_dropout(qb_dev *d, float *y, const float *x, int64_t n, uint32_t key, uint64_t offset, float p, float inv_keep) {
    if (n <= 0) return 0;
    bool vec = n % 4 == 0 && qb_aligned16(y) && qb_aligned16(x);
    QB_LAUNCH(dropout_kernel<false>, dropout_blocks(n), DROPOUT_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), y, 0.0f, x, n, key, offset,
              p, inv_keep, vec);
    return qb_cuda_status(d, "dropout", cudaGetLastError());
}

extern "C" int qb_cuda_dropout_grad(qb_dev *d, float *dx, float keep, const float *dy, int64_t n, uint32_t key, uint64_t offset, float p,
                                    float inv_keep) {
    if (n <= 0) return 0;
    bool vec = n % 4 == 0 && qb_aligned16(dx) && qb_aligned16(dy);
    QB_LAUNCH(dropout_kernel<true>, dropout_blocks(n), DROPOUT_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), dx, keep, dy, n, key, offset,
              p, inv_keep, vec);
    return qb_cuda_status(d, "dropout gradient", cudaGetLastError());
}

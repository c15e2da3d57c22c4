/* elementwise.cu: add, sub, mul with broadcasting (forward, gradients) and scale on device memory. Forward and the
 * gradient of a: one thread per element. The gradient of b: elementwise when b is as large as a; column sums (the
 * shared column reduction of matmul.cu) when b repeats over a's rows; else one thread per element of b adding its
 * broadcast elements in a's element order, as the CPU does (no atomics: the same bits on every run). */
#include "autograd/cuda/cuda_compat.h"

#include "autograd/cuda/device_util.cuh"

/* a's shape with b's strides against it (0 where b broadcasts). */
static qb_view4 bcast_of(int ndim, const int64_t *shape, const int64_t *b_stride) {
    int64_t n;
    return qb_view4_of(ndim, shape, b_stride, &n);
}

__device__ static inline float apply(qb_binary_kind kind, float a, float b) {
    return kind == QB_BINARY_ADD ? a + b : kind == QB_BINARY_SUB ? a - b : a * b;
}

__global__ static void __launch_bounds__(QB_CUDA_THREADS) binary_rows_kernel(qb_binary_kind kind, float *y, const float *a, const float *b,
                                                                              int64_t n, int64_t nb) {
    QB_GRID_LOOP(i, n) y[i] = apply(kind, a[i], b[i % nb]);
}

__global__ static void __launch_bounds__(QB_CUDA_THREADS) binary_bcast_kernel(qb_binary_kind kind, float *y, const float *a, const float *b,
                                                                               int64_t n, qb_view4 v) {
    QB_GRID_LOOP(i, n) y[i] = apply(kind, a[i], b[qb_view4_offset(v, i)]);
}

extern "C" int qb_cuda_binary(qb_dev *d, qb_binary_kind kind, float *y, const float *a, const float *b, int64_t n, int64_t nb, bool rows,
                              int ndim, const int64_t *shape, const int64_t *b_stride) {
    if (n <= 0) return 0;
    cudaStream_t s = (cudaStream_t)qb_cuda_stream(d);
    unsigned blocks = qb_cuda_blocks(n, QB_CUDA_THREADS);
    if (rows) QB_LAUNCH(binary_rows_kernel, blocks, QB_CUDA_THREADS, 0, s, kind, y, a, b, n, nb > 0 ? nb : 1);
    else QB_LAUNCH(binary_bcast_kernel, blocks, QB_CUDA_THREADS, 0, s, kind, y, a, b, n, bcast_of(ndim, shape, b_stride));
    return qb_cuda_status(d, "binary", cudaGetLastError());
}

/* db[i] += sign * dy[i] (* a[i]) */
__global__ static void __launch_bounds__(QB_CUDA_THREADS) grad_b_same_kernel(float *db, const float *dy, const float *a, float sign, int64_t n) {
    QB_GRID_LOOP(i, n) db[i] += sign * dy[i] * (a ? a[i] : 1.0f);
}

/* One thread per element j of b: the elements of a broadcast onto it are the dims where b's stride is 0 (reduced),
 * the others fixed by j; they are visited in a's element order. */
__global__ static void __launch_bounds__(QB_CUDA_THREADS) grad_b_bcast_kernel(float *db, const float *dy, const float *a, float sign,
                                                                               int64_t nb, qb_view4 v) {
    int64_t a_stride[4], red_extent[4], red_count = 1;
    int64_t st = 1;
    for (int dd = 3; dd >= 0; dd--) {
        a_stride[dd] = st;
        st *= v.shape[dd];
        bool reduced = v.stride[dd] == 0 && v.shape[dd] > 1;
        red_extent[dd] = reduced ? v.shape[dd] : 1;
        red_count *= red_extent[dd];
    }
    QB_GRID_LOOP(j, nb) {
        int64_t base = 0;
        for (int dd = 0; dd < 4; dd++)
            if (red_extent[dd] == 1 && v.shape[dd] > 1) base += ((j / v.stride[dd]) % v.shape[dd]) * a_stride[dd];
        float acc = db[j];
        for (int64_t t = 0; t < red_count; t++) {
            int64_t off = base, r = t;
            for (int dd = 3; dd >= 0; dd--) {
                if (red_extent[dd] == 1) continue;
                off += (r % red_extent[dd]) * a_stride[dd];
                r /= red_extent[dd];
            }
            acc += sign * dy[off] * (a ? a[off] : 1.0f);
        }
        db[j] = acc;
    }
}

extern "C" int qb_cuda_binary_grad_b(qb_dev *d, qb_binary_kind kind, float *db, const float *dy, const float *a, int64_t n, int64_t nb,
                                     bool rows, int ndim, const int64_t *shape, const int64_t *db_stride) {
    if (n <= 0 || nb <= 0) return 0;
    float sign = kind == QB_BINARY_SUB ? -1.0f : 1.0f;
    const float *mul = kind == QB_BINARY_MUL ? a : nullptr;
    cudaStream_t s = (cudaStream_t)qb_cuda_stream(d);
    if (nb == n) {
        QB_LAUNCH(grad_b_same_kernel, qb_cuda_blocks(n, QB_CUDA_THREADS), QB_CUDA_THREADS, 0, s, db, dy, mul, sign, n);
    } else if (rows) {
        return qb_cuda_column_sums(d, "binary_grad_b", db, dy, mul, n / nb, nb, sign);
    } else {
        QB_LAUNCH(grad_b_bcast_kernel, qb_cuda_blocks(nb, QB_CUDA_THREADS), QB_CUDA_THREADS, 0, s, db, dy, mul, sign, nb,
                  bcast_of(ndim, shape, db_stride));
    }
    return qb_cuda_status(d, "binary_grad_b", cudaGetLastError());
}

__global__ static void __launch_bounds__(QB_CUDA_THREADS) mul_grad_a_kernel(float *da, float keep, const float *dy, const float *b, int64_t n,
                                                                             qb_view4 v) {
    QB_GRID_LOOP(i, n) da[i] = keep * da[i] + dy[i] * b[qb_view4_offset(v, i)];
}

extern "C" int qb_cuda_mul_grad_a(qb_dev *d, float *da, float keep, const float *dy, const float *b, int64_t n, int ndim, const int64_t *shape,
                                  const int64_t *b_stride) {
    if (n <= 0) return 0;
    QB_LAUNCH(mul_grad_a_kernel, qb_cuda_blocks(n, QB_CUDA_THREADS), QB_CUDA_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), da, keep, dy, b, n,
              bcast_of(ndim, shape, b_stride));
    return qb_cuda_status(d, "mul_grad_a", cudaGetLastError());
}

__global__ static void __launch_bounds__(QB_CUDA_THREADS) scale_kernel(float *y, const float *x, float s, int64_t n) {
    QB_GRID_LOOP(i, n) y[i] = x[i] * s;
}

extern "C" int qb_cuda_scale(qb_dev *d, float *y, const float *x, float s, int64_t n) {
    if (n <= 0) return 0;
    QB_LAUNCH(scale_kernel, qb_cuda_blocks(n, QB_CUDA_THREADS), QB_CUDA_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), y, x, s, n);
    return qb_cuda_status(d, "scale", cudaGetLastError());
}

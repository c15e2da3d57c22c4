/* softmax.cu: softmax over the last dim of x * scale + mask, forward and backward (the CPU's cpu/softmax.c). One warp
 * per row, lanes over the row 4 floats at a time; the row maximum and sums by warp shuffles. The forward reads x three
 * times (maximum, sum, output; the row stays in L1) and writes y once. */
#include "autograd/cuda/cuda_compat.h"

#include "autograd/cuda/device_math.cuh"
#include "autograd/cuda/kernels.h"

#define ROW_WARPS 8 /* rows per block */

/* Where a row of x finds its mask: dims of x (d1, d2 of the leading three) and the mask's strides (0: broadcast). */
struct mask_map {
    int64_t d1, d2;
    int64_t stride[4];
    bool vec; /* float4 loads: unit stride along the row, every row 16-byte aligned */
};

/* v[k] = x[j + k] * scale + mask[(j + k) * stride] (no mask: 0). */
static __device__ __forceinline__ void masked_logits(float v[4], const float *xr, const float *mr, const mask_map &mm, float scale,
                                                     int64_t j, int64_t c, bool vec) {
    float m[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    qb_load4(v, xr, j, c, vec);
    if (mr && mm.stride[3] == 0)
        m[0] = m[1] = m[2] = m[3] = mr[0];
    else if (mr && mm.vec)
        qb_load4(m, mr, j, c, true);
    else if (mr)
        for (int k = 0; k < 4; k++) m[k] = j + k < c ? mr[(j + k) * mm.stride[3]] : 0.0f;
    for (int k = 0; k < 4; k++) v[k] = v[k] * scale + m[k];
}

static __global__ void __launch_bounds__(ROW_WARPS * 32)
    softmax_forward_kernel(float *__restrict__ y, const float *__restrict__ x, float scale, const float *__restrict__ mask, mask_map mm,
                           int64_t rows, int64_t c, bool vec) {
    int lane = threadIdx.x & 31;
    int64_t r = (int64_t)blockIdx.x * ROW_WARPS + (threadIdx.x >> 5);
    if (r >= rows) return;
    int64_t i2 = r % mm.d2, i1 = (r / mm.d2) % mm.d1, i0 = r / (mm.d2 * mm.d1);
    const float *mr = mask ? mask + i0 * mm.stride[0] + i1 * mm.stride[1] + i2 * mm.stride[2] : nullptr;
    const float *xr = x + r * c;
    float *yr = y + r * c;
    float v[4], mx = -INFINITY;
    for (int64_t j = lane * 4; j < c; j += 128) {
        masked_logits(v, xr, mr, mm, scale, j, c, vec);
        for (int k = 0; k < 4; k++)
            if (j + k < c && v[k] > mx) mx = v[k];
    }
    mx = qb_warp_max(mx);
    float sum = 0.0f;
    for (int64_t j = lane * 4; j < c; j += 128) {
        masked_logits(v, xr, mr, mm, scale, j, c, vec);
        for (int k = 0; k < 4; k++)
            if (j + k < c) sum += expf(v[k] - mx);
    }
    float inv = 1.0f / qb_warp_sum(sum);
    for (int64_t j = lane * 4; j < c; j += 128) {
        masked_logits(v, xr, mr, mm, scale, j, c, vec);
        for (int k = 0; k < 4; k++) v[k] = expf(v[k] - mx) * inv;
        qb_store4(yr, v, j, c, vec);
    }
}

/* dx = keep * dx + scale * y * (dy - sum(y * dy)) per row; dx may be dy's buffer. */
static __global__ void __launch_bounds__(ROW_WARPS * 32)
    softmax_grad_kernel(float *dx, float keep, const float *__restrict__ y, const float *dy, float scale, int64_t rows, int64_t c, bool vec) {
    int lane = threadIdx.x & 31;
    int64_t r = (int64_t)blockIdx.x * ROW_WARPS + (threadIdx.x >> 5);
    if (r >= rows) return;
    const float *yr = y + r * c, *dyr = dy + r * c;
    float *dxr = dx + r * c;
    float a[4], g[4], dot = 0.0f;
    for (int64_t j = lane * 4; j < c; j += 128) {
        qb_load4(a, yr, j, c, vec);
        qb_load4(g, dyr, j, c, vec);
        for (int k = 0; k < 4; k++)
            if (j + k < c) dot += a[k] * g[k];
    }
    dot = qb_warp_sum(dot);
    for (int64_t j = lane * 4; j < c; j += 128) {
        float o[4];
        qb_load4(a, yr, j, c, vec);
        qb_load4(g, dyr, j, c, vec);
        qb_load4(o, dxr, j, c, vec);
        for (int k = 0; k < 4; k++) o[k] = keep * o[k] + scale * a[k] * (g[k] - dot);
        qb_store4(dxr, o, j, c, vec);
    }
}

static unsigned row_blocks(int64_t rows) { return (unsigned)((rows + ROW_WARPS - 1) / ROW_WARPS); }

extern "C" int qb_cuda_softmax(qb_dev *d, float *y, const float *x, float scale, const float *mask, const int64_t *shape4,
                               const int64_t *mask_stride4) {
    int64_t c = shape4[3], rows = shape4[0] * shape4[1] * shape4[2];
    if (rows <= 0 || c <= 0) return 0;
    mask_map mm = {shape4[1], shape4[2], {0, 0, 0, 0}, false};
    if (mask) {
        for (int k = 0; k < 4; k++) mm.stride[k] = mask_stride4[k];
        mm.vec = c % 4 == 0 && mm.stride[3] == 1 && mm.stride[0] % 4 == 0 && mm.stride[1] % 4 == 0 && mm.stride[2] % 4 == 0 &&
                 qb_aligned16(mask);
    }
    bool vec = c % 4 == 0 && qb_aligned16(x) && qb_aligned16(y);
    QB_LAUNCH(softmax_forward_kernel, row_blocks(rows), ROW_WARPS * 32, 0, (cudaStream_t)qb_cuda_stream(d), y, x, scale, mask, mm, rows,
              c, vec);
    return qb_cuda_status(d, "softmax", cudaGetLastError());
}

extern "C" int qb_cuda_softmax_grad(qb_dev *d, float *dx, float keep, const float *y, const float *dy, float scale, int64_t rows,
                                    int64_t c) {
    if (rows <= 0 || c <= 0) return 0;
    bool vec = c % 4 == 0 && qb_aligned16(dx) && qb_aligned16(y) && qb_aligned16(dy);
    QB_LAUNCH(softmax_grad_kernel, row_blocks(rows), ROW_WARPS * 32, 0, (cudaStream_t)qb_cuda_stream(d), dx, keep, y, dy, scale, rows,
              c, vec);
    return qb_cuda_status(d, "softmax gradient", cudaGetLastError());
}

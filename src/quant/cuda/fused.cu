/* fused.cu: the fused ops' CUDA kernels (op_fused.c; the CPU's cpu/fused.c): softmax + dropout + fake quant and its
 * gradient (one warp per row), activation + fake quant and its gradient (one thread per element), residual add of two
 * fake-quantized inputs + layer norm (+ the output's fake quant) and its input gradient (one warp per row). Fake quant
 * and its STE are quant_math.h's element; sums and transcendental functions are the GPU's (the suite compares with the
 * CPU within a tolerance, as for the unfused softmax, activation and layer norm kernels). */
#include "autograd/cuda/cuda_compat.h"

#include "autograd/cuda/act_math.cuh"
#include "autograd/cuda/device_math.cuh"
#include "autograd/rng.h"
#include "quant/cuda/kernels.h"
#include "quant/cuda/quant_cuda.cuh"

#define ROW_WARPS 8 /* rows per block of the row kernels */

static unsigned row_blocks(int64_t rows) { return (unsigned)((rows + ROW_WARPS - 1) / ROW_WARPS); }

/* A fake-quant point as the kernels use it: scale, divisor, levels. */
struct fq_scale {
    float s, div, lo, hi;
};

__device__ static inline fq_scale fq_of(const float *amax, float lo, float hi) {
    const float s = fake_quant_scale_of(amax[0], hi);
    return {s, s == 0.0f ? 1.0f : s, lo, hi};
}

__device__ static inline float fq_apply(const fq_scale &f, float x) {
    const float v = fake_quant_one(x, f.s, f.div, f.lo, f.hi);
    return v == v ? v : quant_host_nan(x, f.s);
}

__device__ static inline float drop_scale(const qb_fused_dropout &dp, uint64_t i) {
    return qb_rng_uniform32(dp.key, dp.offset + i) >= dp.p ? dp.inv_keep : 0.0f;
}

/* ---- softmax, dropout, fake quant */

struct mask_map {
    int64_t d1, d2;
    int64_t stride[4];
};

static __global__ void __launch_bounds__(ROW_WARPS * 32)
    softmax_fq_kernel(float *__restrict__ y, float *__restrict__ z, const float *__restrict__ x, float scale, const float *__restrict__ mask,
                      mask_map mm, int64_t rows, int64_t c, qb_fused_dropout drop, const float *amax, float lo, float hi) {
    int lane = threadIdx.x & 31;
    int64_t r = (int64_t)blockIdx.x * ROW_WARPS + (threadIdx.x >> 5);
    if (r >= rows) return;
    int64_t i2 = r % mm.d2, i1 = (r / mm.d2) % mm.d1, i0 = r / (mm.d2 * mm.d1);
    const float *mr = mask ? mask + i0 * mm.stride[0] + i1 * mm.stride[1] + i2 * mm.stride[2] : nullptr;
    const float *xr = x + r * c;
    float *yr = y + r * c, *zr = z + r * c;
    float mx = -INFINITY;
    for (int64_t j = lane; j < c; j += 32) {
        float v = xr[j] * scale + (mr ? mr[j * mm.stride[3]] : 0.0f);
        if (v > mx) mx = v;
    }
    mx = qb_warp_max(mx);
    float sum = 0.0f;
    for (int64_t j = lane; j < c; j += 32) sum += expf(xr[j] * scale + (mr ? mr[j * mm.stride[3]] : 0.0f) - mx);
    const float inv = 1.0f / qb_warp_sum(sum);
    const fq_scale f = fq_of(amax, lo, hi);
    for (int64_t j = lane; j < c; j += 32) {
        float p = expf(xr[j] * scale + (mr ? mr[j * mm.stride[3]] : 0.0f) - mx) * inv;
        yr[j] = p;
        zr[j] = fq_apply(f, drop.on ? p * drop_scale(drop, (uint64_t)(r * c + j)) : p);
    }
}

__device__ static inline float softmax_fq_upstream(const qb_fused_dropout &drop, float y, float dz, float amax, uint64_t i) {
    if (!drop.on) return fabsf(y) <= amax ? dz : 0.0f;
    const float k = drop_scale(drop, i), t = fabsf(y * k) <= amax ? dz : 0.0f;
    return t * k;
}

/* dx may be dz's buffer: each lane reads its elements before writing them. */
static __global__ void __launch_bounds__(ROW_WARPS * 32)
    softmax_fq_grad_kernel(float *dx, float keep, const float *__restrict__ y, const float *dz, float scale, int64_t rows, int64_t c,
                           qb_fused_dropout drop, const float *__restrict__ amaxp) {
    int lane = threadIdx.x & 31;
    int64_t r = (int64_t)blockIdx.x * ROW_WARPS + (threadIdx.x >> 5);
    if (r >= rows) return;
    const float *yr = y + r * c, *dzr = dz + r * c, amax = amaxp[0];
    float *dxr = dx + r * c, dot = 0.0f;
    for (int64_t j = lane; j < c; j += 32) dot += yr[j] * softmax_fq_upstream(drop, yr[j], dzr[j], amax, (uint64_t)(r * c + j));
    dot = qb_warp_sum(dot);
    for (int64_t j = lane; j < c; j += 32) {
        float u = softmax_fq_upstream(drop, yr[j], dzr[j], amax, (uint64_t)(r * c + j));
        dxr[j] = keep * dxr[j] + scale * yr[j] * (u - dot);
    }
}

extern "C" int qb_cuda_softmax_fq(qb_dev *d, float *y, float *z, const float *x, float scale, const float *mask, const int64_t *shape4,
                                  const int64_t *mask_stride4, const qb_fused_dropout *drop, const qb_fq_point *fq) {
    int64_t c = shape4[3], rows = shape4[0] * shape4[1] * shape4[2];
    if (rows <= 0 || c <= 0) return 0;
    mask_map mm = {shape4[1], shape4[2], {0, 0, 0, 0}};
    for (int k = 0; mask && k < 4; k++) mm.stride[k] = mask_stride4[k];
    qb_fused_dropout dp = drop ? *drop : qb_fused_dropout{};
    QB_LAUNCH(softmax_fq_kernel, row_blocks(rows), ROW_WARPS * 32, 0, quant_stream(d), y, z, x, scale, mask, mm, rows, c, dp, fq->amax,
              fq->qmin, fq->qmax);
    return qb_cuda_status(d, "softmax_fq", cudaGetLastError());
}

extern "C" int qb_cuda_softmax_fq_grad(qb_dev *d, float *dx, float keep, const float *y, const float *dz, float scale, int64_t rows,
                                       int64_t c, const qb_fused_dropout *drop, const float *amax) {
    if (rows <= 0 || c <= 0) return 0;
    qb_fused_dropout dp = drop ? *drop : qb_fused_dropout{};
    QB_LAUNCH(softmax_fq_grad_kernel, row_blocks(rows), ROW_WARPS * 32, 0, quant_stream(d), dx, keep, y, dz, scale, rows, c, dp, amax);
    return qb_cuda_status(d, "softmax_fq_grad", cudaGetLastError());
}

/* ---- activation, fake quant */

__global__ static void __launch_bounds__(QB_CUDA_THREADS)
    act_fq_kernel(qb_unary_kind k, float *z, const float *x, int64_t n, const float *amax, float lo, float hi) {
    const fq_scale f = fq_of(amax, lo, hi);
    QB_GRID_LOOP(i, n) z[i] = fq_apply(f, qb_act(k, x[i]));
}

__global__ static void __launch_bounds__(QB_CUDA_THREADS)
    act_fq_grad_kernel(qb_unary_kind k, float keep, float *dx, const float *dz, const float *x, int64_t n, const float *amaxp) {
    const float amax = amaxp[0];
    QB_GRID_LOOP(i, n) {
        const float xi = x[i], y = qb_act(k, xi), t = fabsf(y) <= amax ? dz[i] : 0.0f;
        const float g = k == QB_UNARY_RELU ? (xi > 0.0f ? t : 0.0f) : t * qb_act_grad(k, xi, y);
        dx[i] = keep * dx[i] + g;
    }
}

extern "C" int qb_cuda_act_fq(qb_dev *d, qb_unary_kind kind, float *z, const float *x, int64_t n, const qb_fq_point *fq) {
    if (n <= 0) return 0;
    QB_LAUNCH(act_fq_kernel, qb_cuda_blocks(n, QB_CUDA_THREADS), QB_CUDA_THREADS, 0, quant_stream(d), kind, z, x, n, fq->amax, fq->qmin,
              fq->qmax);
    return qb_cuda_status(d, "act_fq", cudaGetLastError());
}

extern "C" int qb_cuda_act_fq_grad(qb_dev *d, qb_unary_kind kind, float keep, float *dx, const float *dz, const float *x, int64_t n,
                                   const float *amax) {
    if (n <= 0) return 0;
    QB_LAUNCH(act_fq_grad_kernel, qb_cuda_blocks(n, QB_CUDA_THREADS), QB_CUDA_THREADS, 0, quant_stream(d), kind, keep, dx, dz, x, n, amax);
    return qb_cuda_status(d, "act_fq_grad", cudaGetLastError());
}

/* ---- residual add of two fake-quantized inputs, layer norm, output fake quant */

struct fq_levels {
    float lo, hi;
};

static __global__ void __launch_bounds__(ROW_WARPS * 32)
    add_fq_layernorm_kernel(float *__restrict__ y, float *__restrict__ yq, float *__restrict__ s, float *__restrict__ mean,
                            float *__restrict__ rstd, const float *__restrict__ a, const float *__restrict__ res,
                            const float *__restrict__ gamma, const float *__restrict__ beta, int64_t rows, int64_t h, float eps,
                            const float *amax_a, fq_levels la, const float *amax_r, fq_levels lr, const float *amax_y, fq_levels ly) {
    int lane = threadIdx.x & 31;
    int64_t r = (int64_t)blockIdx.x * ROW_WARPS + (threadIdx.x >> 5);
    if (r >= rows) return;
    const fq_scale fa = fq_of(amax_a, la.lo, la.hi), fr = fq_of(amax_r, lr.lo, lr.hi);
    const float *ar = a + r * h, *rr = res + r * h;
    float *sr = s + r * h, *yr = y + r * h, sum = 0.0f;
    for (int64_t j = lane; j < h; j += 32) {
        float v = fq_apply(fa, ar[j]) + fq_apply(fr, rr[j]);
        sr[j] = v;
        sum += v;
    }
    float m = qb_warp_sum(sum) / (float)h, var = 0.0f;
    for (int64_t j = lane; j < h; j += 32) var += (sr[j] - m) * (sr[j] - m);
    float rs = 1.0f / sqrtf(qb_warp_sum(var) / (float)h + eps);
    if (lane == 0) {
        mean[r] = m;
        rstd[r] = rs;
    }
    const fq_scale fy = yq ? fq_of(amax_y, ly.lo, ly.hi) : fq_scale{};
    for (int64_t j = lane; j < h; j += 32) {
        float o = (sr[j] - m) * rs * (gamma ? gamma[j] : 1.0f) + (beta ? beta[j] : 0.0f);
        yr[j] = o;
        if (yq) yq[r * h + j] = fq_apply(fy, o);
    }
}

/* da may be dy's buffer: each lane reads its elements before writing them. */
static __global__ void __launch_bounds__(ROW_WARPS * 32)
    add_fq_layernorm_grad_kernel(float *da, float keep_a, float *dr, float keep_r, const float *dy, const float *__restrict__ s,
                                 const float *__restrict__ a, const float *__restrict__ res, const float *__restrict__ gamma,
                                 const float *__restrict__ mean, const float *__restrict__ rstd, int64_t rows, int64_t h,
                                 const float *amax_a, const float *amax_r) {
    int lane = threadIdx.x & 31;
    int64_t r = (int64_t)blockIdx.x * ROW_WARPS + (threadIdx.x >> 5);
    if (r >= rows) return;
    const float *sr = s + r * h, *dyr = dy + r * h;
    float m = mean[r], rs = rstd[r], sum_dn = 0.0f, sum_dn_n = 0.0f;
    for (int64_t j = lane; j < h; j += 32) {
        float dn = dyr[j] * (gamma ? gamma[j] : 1.0f);
        sum_dn += dn;
        sum_dn_n += dn * (sr[j] - m) * rs;
    }
    float ma = qb_warp_sum(sum_dn) / (float)h, mb = qb_warp_sum(sum_dn_n) / (float)h;
    const float aa = amax_a ? amax_a[0] : 0.0f, arr = amax_r ? amax_r[0] : 0.0f;
    for (int64_t j = lane; j < h; j += 32) {
        const int64_t i = r * h + j;
        float dn = dyr[j] * (gamma ? gamma[j] : 1.0f), ds = rs * (dn - ma - (sr[j] - m) * rs * mb);
        if (dr) {
            float t = fabsf(res[i]) <= arr ? ds : 0.0f;
            dr[i] = keep_r != 0.0f ? quant_host_add(dr[i], t) : t;
        }
        if (da) {
            float t = fabsf(a[i]) <= aa ? ds : 0.0f;
            da[i] = keep_a != 0.0f ? quant_host_add(da[i], t) : t;
        }
    }
}

extern "C" int qb_cuda_add_fq_layernorm(qb_dev *d, float *y, float *yq, float *s, float *mean, float *rstd, const float *a, const float *r,
                                        const float *gamma, const float *beta, int64_t rows, int64_t h, float eps, const qb_fq_point *fa,
                                        const qb_fq_point *fr, const qb_fq_point *fy) {
    if (rows <= 0 || h <= 0) return 0;
    const bool with_yq = fy && fy->amax && yq;
    QB_LAUNCH(add_fq_layernorm_kernel, row_blocks(rows), ROW_WARPS * 32, 0, quant_stream(d), y, with_yq ? yq : nullptr, s, mean, rstd, a,
              r, gamma, beta, rows, h, eps, fa->amax, fq_levels{fa->qmin, fa->qmax}, fr->amax, fq_levels{fr->qmin, fr->qmax},
              with_yq ? fy->amax : nullptr, with_yq ? fq_levels{fy->qmin, fy->qmax} : fq_levels{0.0f, 0.0f});
    return qb_cuda_status(d, "add_fq_layernorm", cudaGetLastError());
}

extern "C" int qb_cuda_add_fq_layernorm_grad(qb_dev *d, float *da, float keep_a, float *dr, float keep_r, const float *dy, const float *s,
                                             const float *a, const float *r, const float *gamma, const float *mean, const float *rstd,
                                             int64_t rows, int64_t h, const float *amax_a, const float *amax_r) {
    if (rows <= 0 || h <= 0 || (!da && !dr)) return 0;
    QB_LAUNCH(add_fq_layernorm_grad_kernel, row_blocks(rows), ROW_WARPS * 32, 0, quant_stream(d), da, keep_a, dr, keep_r, dy, s, a, r, gamma,
              mean, rstd, rows, h, amax_a, amax_r);
    return qb_cuda_status(d, "add_fq_layernorm_grad", cudaGetLastError());
}

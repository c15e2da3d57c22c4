/* device_math.cuh: device helpers of the kernel files: full-warp reductions and 4-float row chunks (one float4 where
 * the row is 16-byte aligned and its length a multiple of 4, else 4 guarded scalars). Include after cuda_compat.h. */
#pragma once
#include <stdint.h>

#define QB_FULL_MASK 0xffffffffu

/* Sum over the 32 lanes (xor butterfly: every lane gets the same bits). Every lane of the warp must call it. */
static __device__ __forceinline__ float qb_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(QB_FULL_MASK, v, o);
    return v;
}

static __device__ __forceinline__ double qb_warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(QB_FULL_MASK, v, o);
    return v;
}

/* Maximum over the 32 lanes (NaN lanes ignored, as fmaxf). */
static __device__ __forceinline__ float qb_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(QB_FULL_MASK, v, o));
    return v;
}

/* True when p is 16-byte aligned (host side: decides the float4 path of a kernel). */
static inline bool qb_aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

/* a[k] = p[j + k] for j + k < n (0 beyond); vec: one float4 load (p + j aligned, n a multiple of 4). */
static __device__ __forceinline__ void qb_load4(float a[4], const float *p, int64_t j, int64_t n, bool vec) {
    if (vec) {
        float4 v = *reinterpret_cast<const float4 *>(p + j);
        a[0] = v.x, a[1] = v.y, a[2] = v.z, a[3] = v.w;
        return;
    }
    for (int k = 0; k < 4; k++) a[k] = j + k < n ? p[j + k] : 0.0f;
}

/* p[j + k] = a[k] for j + k < n; vec as qb_load4. */
static __device__ __forceinline__ void qb_store4(float *p, const float a[4], int64_t j, int64_t n, bool vec) {
    if (vec) {
        *reinterpret_cast<float4 *>(p + j) = make_float4(a[0], a[1], a[2], a[3]);
        return;
    }
    for (int k = 0; k < 4; k++)
        if (j + k < n) p[j + k] = a[k];
}

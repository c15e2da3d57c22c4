/* test_emu_kernels.cu: kernels written as plain CUDA, checked against loops on the host: block reduction with static
 * shared memory, warp-shuffle reductions and scans, votes, dynamic shared memory, atomics (histogram, float max by CAS),
 * a grid-stride loop, a 2-D tiled transpose, 3-D blocks, early exits before a barrier, by-value arguments,
 * __constant__ and __device__ variables, bf16. */
#include "emu_check.h"

#include <algorithm>
#include <cstdint>

constexpr int BLOCK = 256;

__global__ void block_sum(const float *x, float *out, int n) {
    __shared__ float s[BLOCK];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    s[threadIdx.x] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if ((int)threadIdx.x < stride) s[threadIdx.x] += s[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = s[0];
}

/* the same in a template (launched as QB_LAUNCH((block_sum_t<...>), ...)) */
template <int THREADS, typename T>
__global__ void block_sum_t(const T *x, T *out, int n) {
    __shared__ T s[THREADS];
    int i = blockIdx.x * THREADS + threadIdx.x;
    s[threadIdx.x] = i < n ? x[i] : T(0);
    __syncthreads();
    for (int stride = THREADS / 2; stride > 0; stride /= 2) {
        if ((int)threadIdx.x < stride) s[threadIdx.x] += s[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = s[0];
}

__device__ __forceinline__ float warp_reduce_sum(float v) {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    return v;
}

/* per-warp sums by __shfl_down_sync, butterfly all-reduce by __shfl_xor_sync (every lane must hold the total) */
__global__ void __launch_bounds__(256) warp_sums(const float *__restrict__ x, float *__restrict__ down,
                                                 float *__restrict__ xor_all, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    float v = i < n ? x[i] : 0.0f;
    float s = warp_reduce_sum(v);
    float b = v;
    for (int m = 1; m < 32; m *= 2) b += __shfl_xor_sync(0xffffffffu, b, m);
    int warp = i / 32, lane = threadIdx.x % 32;
    if (lane == 0) down[warp] = s;
    xor_all[i] = b;
}

/* inclusive scan in each warp (__shfl_up_sync), broadcast of lane 3 in each half-warp (width 16) */
__global__ void warp_scan(const int *x, int *scan, int *bcast) {
    int i = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x % 32;
    int v = x[i];
    for (int d = 1; d < 32; d *= 2) {
        int u = __shfl_up_sync(0xffffffffu, v, d);
        if (lane >= d) v += u;
    }
    scan[i] = v;
    bcast[i] = __shfl_sync(0xffffffffu, x[i], 3, 16);
}

/* votes and the counting barrier */
__global__ void votes(const int *pred, unsigned *ballot, int *any, int *all, int *count) {
    int i = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x % 32;
    int p = pred[i];
    unsigned b = __ballot_sync(0xffffffffu, p);
    int a = __any_sync(0xffffffffu, p), l = __all_sync(0xffffffffu, p);
    int c = __syncthreads_count(p);
    if (lane == 0) {
        ballot[i / 32] = b;
        any[i / 32] = a;
        all[i / 32] = l;
    }
    if (threadIdx.x == 0) count[blockIdx.x] = c;
}

/* reverses each block's slice through dynamic shared memory */
__global__ void reverse_block(const float *x, float *y) {
    QB_DYNAMIC_SHARED(float, buf);
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    buf[threadIdx.x] = x[i];
    __syncthreads();
    y[i] = buf[blockDim.x - 1 - threadIdx.x];
}

/* fills and sums 64 KiB of dynamic shared memory (needs cudaFuncSetAttribute) */
__global__ void big_smem(float *out, int count) {
    QB_DYNAMIC_SHARED(float, buf);
    for (int j = threadIdx.x; j < count; j += blockDim.x) buf[j] = (float)(j % 16);
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0;
        for (int j = 0; j < count; j++) s += buf[j];
        out[blockIdx.x] = s;
    }
}

__device__ float atomic_max_float(float *addr, float v) {
    int *a = (int *)addr;
    int old = *a, assumed;
    do {
        assumed = old;
        if (__int_as_float(assumed) >= v) break;
        old = atomicCAS(a, assumed, __float_as_int(v));
    } while (old != assumed);
    return __int_as_float(old);
}

/* histogram in shared memory, flushed with global atomics; amax by CAS; min/max/exch on ints */
__global__ void histogram(const float *x, int n, unsigned *hist, float *amax, int *imin, int *imax, int *last) {
    __shared__ unsigned local[16];
    if (threadIdx.x < 16) local[threadIdx.x] = 0;
    __syncthreads();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int bin = min(15, max(0, (int)((x[i] + 1.0f) * 8.0f)));
        atomicAdd(&local[bin], 1u);
        atomic_max_float(amax, fabsf(x[i]));
        atomicMin(imin, __float2int_rn(x[i] * 1000.0f));
        atomicMax(imax, __float2int_rn(x[i] * 1000.0f));
        atomicExch(last, 7);
    }
    __syncthreads();
    if (threadIdx.x < 16) atomicAdd(&hist[threadIdx.x], local[threadIdx.x]);
}

/* y = a x + y over n elements with a grid far smaller than n */
__global__ void saxpy_grid_stride(int n, float a, const float *x, float *y) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) y[i] = a * x[i] + y[i];
}

/* out (cols x rows) = transpose of in (rows x cols), 32 x 32 tiles, 32 x 8 threads */
__global__ void transpose(const float *in, float *out, int rows, int cols) {
    __shared__ float tile[32][33];
    int x = blockIdx.x * 32 + threadIdx.x, y = blockIdx.y * 32 + threadIdx.y;
    for (int j = 0; j < 32; j += 8)
        if (x < cols && y + j < rows) tile[threadIdx.y + j][threadIdx.x] = in[(y + j) * cols + x];
    __syncthreads();
    x = blockIdx.y * 32 + threadIdx.x;
    y = blockIdx.x * 32 + threadIdx.y;
    for (int j = 0; j < 32; j += 8)
        if (x < rows && y + j < cols) out[(y + j) * rows + x] = tile[threadIdx.x][threadIdx.y + j];
}

/* a 3-D block of 4 x 3 x 4 = 48 threads (a partial second warp) and a 3-D grid */
__global__ void ids3d(int *out) {
    __shared__ int s[48];
    int t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    s[t] = t;
    __syncthreads();
    int b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    out[b * 48 + t] = s[47 - t] + 1000 * b;
}

/* threads past n leave before the barrier; the others still meet there */
__global__ void early_exit(const float *x, float *y, int n) {
    __shared__ float s[BLOCK];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    s[threadIdx.x] = x[i];
    __syncthreads();
    int last = min((int)blockDim.x, n - (int)(blockIdx.x * blockDim.x)) - 1;
    y[i] = s[last - threadIdx.x];
}

struct Affine {
    float scale, shift;
};

/* by-value parameters: each thread changes its own copies */
__global__ void by_value(float *y, int n, Affine f) {
    y += blockIdx.x * blockDim.x;
    n -= blockIdx.x * blockDim.x;
    f.shift += 1.0f;
    if ((int)threadIdx.x < n) y[threadIdx.x] = f.scale * (float)(blockIdx.x * blockDim.x + threadIdx.x) + f.shift;
}

__constant__ float c_scale[2];
__host__ __device__ inline float twice(float v) { return 2.0f * v; }
__global__ void use_constant(float *y) { y[threadIdx.x] = twice(c_scale[threadIdx.x % 2]); }

__device__ int g_noop_runs;
__global__ void noop() { atomicAdd(&g_noop_runs, 1); }

__global__ void bf16_round_trip(const float *x, float *y, __nv_bfloat16 *b, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    __nv_bfloat16 h = __float2bfloat16(x[i]);
    b[i] = h;
    y[i] = __bfloat162float(h);
}

static float bf16_reference(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

int main() {
    require_device("test_emu_kernels");
    const int n = 5000, blocks = (n + BLOCK - 1) / BLOCK;
    std::vector<float> xh = test_values(n, 1);

    { /* block reduction, plain and template */
        DeviceBuffer<float> x(xh), out(blocks), out_t(blocks);
        QB_LAUNCH(block_sum, blocks, BLOCK, 0, 0, x.ptr, out.ptr, n);
        QB_LAUNCH((block_sum_t<BLOCK, float>), blocks, BLOCK, 0, 0, x.ptr, out_t.ptr, n);
        CUDA_OK(launch_result());
        std::vector<double> want(blocks, 0.0);
        for (int i = 0; i < n; i++) want[i / BLOCK] += xh[i];
        std::vector<float> got = out.download(), got_t = out_t.download();
        EXPECT(max_rel_err(got.data(), want.data(), blocks) < 1e-5, "block sums: %g", max_rel_err(got.data(), want.data(), blocks));
        EXPECT(max_rel_err(got_t.data(), want.data(), blocks) < 1e-5, "template block sums");
        std::vector<int> xi(n), want_i((n + 127) / 128, 0);
        for (int i = 0; i < n; i++) xi[i] = i % 7 - 3, want_i[i / 128] += xi[i];
        DeviceBuffer<int> xd(xi), oi((n + 127) / 128);
        QB_LAUNCH((block_sum_t<128, int>), (n + 127) / 128, 128, 0, 0, xd.ptr, oi.ptr, n);
        CUDA_OK(launch_result());
        std::vector<int> got_i = oi.download();
        EXPECT(std::equal(got_i.begin(), got_i.end(), want_i.begin()), "int template block sums");
    }
    { /* warp shuffles */
        int m = blocks * BLOCK;
        DeviceBuffer<float> x(xh), down(m / 32), all(m);
        QB_LAUNCH(warp_sums, blocks, BLOCK, 0, 0, x.ptr, down.ptr, all.ptr, n);
        CUDA_OK(launch_result());
        std::vector<double> want(m / 32, 0.0);
        for (int i = 0; i < n; i++) want[i / 32] += xh[i];
        std::vector<float> d = down.download(), a = all.download();
        EXPECT(max_rel_err(d.data(), want.data(), m / 32) < 1e-5, "__shfl_down_sync warp sums");
        std::vector<double> want_all(m);
        for (int i = 0; i < m; i++) want_all[i] = want[i / 32];
        EXPECT(max_rel_err(a.data(), want_all.data(), m) < 1e-5, "__shfl_xor_sync all-reduce");

        std::vector<int> xi(BLOCK * 2);
        for (size_t i = 0; i < xi.size(); i++) xi[i] = (int)(i * 7 % 11);
        DeviceBuffer<int> xs(xi), scan(xi.size()), bcast(xi.size());
        QB_LAUNCH(warp_scan, 2, BLOCK, 0, 0, xs.ptr, scan.ptr, bcast.ptr);
        CUDA_OK(launch_result());
        std::vector<int> sc = scan.download(), bc = bcast.download();
        bool scan_ok = true, bcast_ok = true;
        for (size_t i = 0; i < xi.size(); i++) {
            int s = 0;
            for (size_t j = i / 32 * 32; j <= i; j++) s += xi[j];
            scan_ok &= sc[i] == s;
            bcast_ok &= bc[i] == xi[i / 16 * 16 + 3];
        }
        EXPECT(scan_ok, "__shfl_up_sync inclusive scan");
        EXPECT(bcast_ok, "__shfl_sync with width 16");
    }
    { /* votes */
        std::vector<int> p(BLOCK * 2);
        for (size_t i = 0; i < p.size(); i++) p[i] = i < 32 ? 1 : i < 64 ? 0 : (int)(i % 3 == 0);
        DeviceBuffer<int> pd(p), any(16), all(16), count(2);
        DeviceBuffer<unsigned> ballot(16);
        QB_LAUNCH(votes, 2, BLOCK, 0, 0, pd.ptr, ballot.ptr, any.ptr, all.ptr, count.ptr);
        CUDA_OK(launch_result());
        std::vector<unsigned> b = ballot.download();
        std::vector<int> an = any.download(), al = all.download(), c = count.download();
        bool ok = true;
        for (int w = 0; w < 16; w++) {
            unsigned want = 0;
            for (int l = 0; l < 32; l++) want |= (unsigned)(p[w * 32 + l] != 0) << l;
            ok &= b[w] == want && an[w] == (want != 0) && al[w] == (want == 0xffffffffu);
        }
        EXPECT(ok, "__ballot_sync / __any_sync / __all_sync");
        int c0 = 0, c1 = 0;
        for (int i = 0; i < BLOCK; i++) c0 += p[i] != 0, c1 += p[BLOCK + i] != 0;
        EXPECT(c[0] == c0 && c[1] == c1, "__syncthreads_count: %d %d, want %d %d", c[0], c[1], c0, c1);
    }
    { /* dynamic shared memory, also above 48 KiB after cudaFuncSetAttribute */
        DeviceBuffer<float> x(xh), y(n);
        int threads = 200, nb = n / threads;
        QB_LAUNCH(reverse_block, nb, threads, threads * sizeof(float), 0, x.ptr, y.ptr);
        CUDA_OK(launch_result());
        std::vector<float> got = y.download();
        bool ok = true;
        for (int i = 0; i < nb * threads; i++) ok &= got[i] == xh[i / threads * threads + threads - 1 - i % threads];
        EXPECT(ok, "reverse through dynamic shared memory");
        int count = 16384;
        CUDA_OK(cudaFuncSetAttribute(big_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, count * (int)sizeof(float)));
        DeviceBuffer<float> out(3);
        QB_LAUNCH(big_smem, 3, 128, count * sizeof(float), 0, out.ptr, count);
        CUDA_OK(launch_result());
        std::vector<float> s = out.download();
        double want = count / 16 * 120.0;
        EXPECT(s[0] == (float)want && s[2] == (float)want, "64 KiB dynamic shared memory: %g, want %g", s[0], want);
    }
    { /* atomics */
        DeviceBuffer<float> x(xh), amax(std::vector<float>{0.0f});
        DeviceBuffer<unsigned> hist(std::vector<unsigned>(16, 0));
        DeviceBuffer<int> imin(std::vector<int>{1 << 30}), imax(std::vector<int>{-(1 << 30)}), last(1);
        QB_LAUNCH(histogram, 7, 96, 0, 0, x.ptr, n, hist.ptr, amax.ptr, imin.ptr, imax.ptr, last.ptr);
        CUDA_OK(launch_result());
        std::vector<unsigned> h = hist.download(), want(16, 0);
        float am = 0;
        int mn = 1 << 30, mx = -(1 << 30);
        for (float v : xh) {
            want[std::min(15, std::max(0, (int)((v + 1.0f) * 8.0f)))]++;
            am = std::max(am, std::fabs(v));
            mn = std::min(mn, (int)std::nearbyint(v * 1000.0f));
            mx = std::max(mx, (int)std::nearbyint(v * 1000.0f));
        }
        EXPECT(h == want, "histogram");
        EXPECT(amax.download()[0] == am, "amax by atomicCAS: %g, want %g", amax.download()[0], am);
        EXPECT(imin.download()[0] == mn && imax.download()[0] == mx, "atomicMin / atomicMax");
        EXPECT(last.download()[0] == 7, "atomicExch");
    }
    { /* grid-stride loop */
        std::vector<float> yh = test_values(n, 2);
        DeviceBuffer<float> x(xh), y(yh);
        QB_LAUNCH(saxpy_grid_stride, 3, 64, 0, 0, n, 2.5f, x.ptr, y.ptr);
        CUDA_OK(launch_result());
        std::vector<float> got = y.download();
        bool ok = true;
        for (int i = 0; i < n; i++) ok &= got[i] == 2.5f * xh[i] + yh[i];
        EXPECT(ok, "grid-stride saxpy");
    }
    { /* 2-D grid: transpose of a 70 x 45 matrix */
        int rows = 70, cols = 45;
        std::vector<float> in = test_values((size_t)rows * cols, 3);
        DeviceBuffer<float> a(in), t((size_t)rows * cols);
        QB_LAUNCH(transpose, dim3((cols + 31) / 32, (rows + 31) / 32), dim3(32, 8), 0, 0, a.ptr, t.ptr, rows, cols);
        CUDA_OK(launch_result());
        std::vector<float> got = t.download();
        bool ok = true;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) ok &= got[(size_t)c * rows + r] == in[(size_t)r * cols + c];
        EXPECT(ok, "tiled transpose on a 2-D grid");
    }
    { /* 3-D block and grid */
        DeviceBuffer<int> out(48 * 12);
        QB_LAUNCH(ids3d, dim3(2, 3, 2), dim3(4, 3, 4), 0, 0, out.ptr);
        CUDA_OK(launch_result());
        std::vector<int> got = out.download();
        bool ok = true;
        for (int b = 0; b < 12; b++)
            for (int t = 0; t < 48; t++) ok &= got[b * 48 + t] == 47 - t + 1000 * b;
        EXPECT(ok, "3-D block and grid indices");
    }
    { /* exits before a barrier */
        int m = 1000;
        DeviceBuffer<float> x(xh), y(m);
        QB_LAUNCH(early_exit, (m + BLOCK - 1) / BLOCK, BLOCK, 0, 0, x.ptr, y.ptr, m);
        CUDA_OK(launch_result());
        std::vector<float> got = y.download();
        bool ok = true;
        for (int i = 0; i < m; i++) {
            int base = i / BLOCK * BLOCK, last = std::min(BLOCK, m - base) - 1;
            ok &= got[i] == xh[base + last - (i - base)];
        }
        EXPECT(ok, "threads that return before __syncthreads");
    }
    { /* by-value arguments */
        int m = 300;
        DeviceBuffer<float> y(m);
        QB_LAUNCH(by_value, 2, 256, 0, 0, y.ptr, m, Affine{2.0f, 0.5f});
        CUDA_OK(launch_result());
        std::vector<float> got = y.download();
        bool ok = true;
        for (int i = 0; i < m; i++) ok &= got[i] == 2.0f * (float)i + 1.5f;
        EXPECT(ok, "kernel parameters are per-thread copies");
    }
    { /* a kernel without parameters, a __device__ variable */
        QB_LAUNCH(noop, 3, 5, 0, 0);
        CUDA_OK(launch_result());
        int runs = 0;
        CUDA_OK(cudaMemcpyFromSymbol(&runs, g_noop_runs, sizeof runs));
        EXPECT(runs == 15, "kernel without parameters ran %d times", runs);
    }
    { /* __constant__ memory, a __host__ __device__ function */
        float scale[2] = {1.5f, -4.0f};
        CUDA_OK(cudaMemcpyToSymbol(c_scale, scale, sizeof scale));
        DeviceBuffer<float> y(8);
        QB_LAUNCH(use_constant, 1, 8, 0, 0, y.ptr);
        CUDA_OK(launch_result());
        std::vector<float> got = y.download();
        EXPECT(got[0] == 3.0f && got[7] == -8.0f && twice(2.0f) == 4.0f, "__constant__ and __host__ __device__");
    }
    { /* bf16 */
        std::vector<float> v = xh;
        v[0] = 1.00390625f; /* a tie: rounds to even (1.0) */
        v[1] = 1.01171875f; /* a tie: rounds to even (1.015625) */
        DeviceBuffer<float> x(v), y(n);
        DeviceBuffer<__nv_bfloat16> b(n);
        QB_LAUNCH(bf16_round_trip, blocks, BLOCK, 0, 0, x.ptr, y.ptr, b.ptr, n);
        CUDA_OK(launch_result());
        std::vector<float> got = y.download();
        bool ok = true;
        for (int i = 0; i < n; i++) ok &= got[i] == bf16_reference(v[i]);
        EXPECT(ok, "__float2bfloat16 rounds to nearest even");
    }
    return finish("test_emu_kernels");
}

/* test_emu_race.cu: the emulator finds missing barriers. Each thread of neighbour_sum reads the shared slot its left
 * neighbour wrote; without the __syncthreads between write and read the result depends on the order of the threads.
 * Run in index order (seed 0) the broken kernel happens to be right; under the shuffled orders of the suite (seeds 1
 * and 2, or 1..4 when QB_CUDA_EMU_SEED is unset) it must be wrong while the correct kernel stays right. The same for a
 * warp-synchronous reduction without __syncwarp, and deadlocks are reported. Emulator only: on a GPU a race is not
 * reproducible, so under nvcc this test skips. */
#include "emu_check.h"

#ifdef QB_CUDA_EMU
constexpr int BLOCK = 128;

__global__ void neighbour_sum(const float *x, float *y, int n) {
    __shared__ float s[BLOCK];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    s[threadIdx.x] = i < n ? x[i] : 0.0f;
    __syncthreads();
    if (i < n) y[i] = s[threadIdx.x] + (threadIdx.x > 0 ? s[threadIdx.x - 1] : 0.0f);
}

__global__ void neighbour_sum_no_barrier(const float *x, float *y, int n) {
    __shared__ float s[BLOCK];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    s[threadIdx.x] = i < n ? x[i] : 0.0f;
    /* missing __syncthreads() */
    if (i < n) y[i] = s[threadIdx.x] + (threadIdx.x > 0 ? s[threadIdx.x - 1] : 0.0f);
}

/* tree reduction of 64 values by one warp, with or without __syncwarp between the reads and writes of a step */
template <bool SYNC>
__device__ void warp_tail(float *s, int t) {
    for (int stride = 16; stride > 0; stride /= 2) {
        float v = s[t] + s[t + stride];
        if (SYNC) __syncwarp();
        s[t] = v;
        if (SYNC) __syncwarp();
    }
}

__global__ void reduce64(const float *x, float *out, int with_syncwarp) {
    __shared__ float s[64];
    int t = threadIdx.x;
    s[t] = x[blockIdx.x * 64 + t] + x[blockIdx.x * 64 + t + 32];
    s[t + 32] = 0.0f;
    __syncthreads();
    if (with_syncwarp)
        warp_tail<true>(s, t);
    else
        warp_tail<false>(s, t);
    if (t == 0) out[blockIdx.x] = s[0];
}

/* lanes 0-15 shuffle with a full mask while lanes 16-31 wait at __syncthreads: a deadlock */
__global__ void mask_deadlock(float *y) {
    float v = (float)threadIdx.x;
    if (threadIdx.x < 16)
        v = __shfl_xor_sync(0xffffffffu, v, 1);
    else
        __syncthreads();
    y[threadIdx.x] = v;
}

/* a mask that leaves out the calling lane */
__global__ void bad_mask(float *y) { y[threadIdx.x] = __shfl_sync(0x1u, 1.0f, 0); }

/* f dies of a signal with needle in its stderr (kept in *err) */
template <class F>
static bool dies_with(F f, const char *needle, std::string *err) {
    bool signaled = false;
    *err = child_stderr(f, &signaled);
    return signaled && err->find(needle) != std::string::npos;
}

int main() {
    require_device("test_emu_race");
    const int n = 1000, blocks = (n + BLOCK - 1) / BLOCK;
    std::vector<float> xh = test_values(n, 5), want(n);
    for (int i = 0; i < n; i++) want[i] = xh[i] + (i % BLOCK ? xh[i - 1] : 0.0f);
    DeviceBuffer<float> x(xh), y(n);
    auto run = [&](bool broken, uint64_t seed) {
        qbemu::set_seed(seed);
        CUDA_OK(cudaMemset(y.ptr, 0, n * sizeof(float)));
        if (broken)
            QB_LAUNCH(neighbour_sum_no_barrier, blocks, BLOCK, 0, 0, x.ptr, y.ptr, n);
        else
            QB_LAUNCH(neighbour_sum, blocks, BLOCK, 0, 0, x.ptr, y.ptr, n);
        CUDA_OK(launch_result());
        std::vector<float> got = y.download();
        int wrong = 0;
        for (int i = 0; i < n; i++) wrong += !(got[i] == want[i]);
        return wrong;
    };
    uint64_t env_seed = qbemu::seed();
    std::vector<uint64_t> seeds;
    if (env_seed)
        seeds = {env_seed};
    else
        seeds = {1, 2, 3, 4};

    EXPECT(run(true, 0) == 0, "in index order the broken kernel happens to give the right sums");
    for (uint64_t s : seeds) {
        int good = run(false, s), bad = run(true, s);
        printf("seed %llu: kernel with the barrier %d wrong, without it %d of %d wrong\n", (unsigned long long)s,
               good, bad, n);
        EXPECT(good == 0, "neighbour_sum with __syncthreads under seed %llu", (unsigned long long)s);
        EXPECT(bad > 0, "the missing __syncthreads shows under seed %llu", (unsigned long long)s);
    }

    std::vector<float> xr = test_values(64 * 8, 6), wr(8, 0.0f);
    for (int b = 0; b < 8; b++) {
        std::vector<float> s(xr.begin() + b * 64, xr.begin() + b * 64 + 64);
        for (int stride = 32; stride > 0; stride /= 2)
            for (int t = 0; t < stride; t++) s[t] += s[t + stride];
        wr[b] = s[0];
    }
    DeviceBuffer<float> xd(xr), out(8);
    for (uint64_t s : seeds) {
        qbemu::set_seed(s);
        QB_LAUNCH(reduce64, 8, 32, 0, 0, xd.ptr, out.ptr, 1);
        CUDA_OK(launch_result());
        std::vector<float> good = out.download();
        QB_LAUNCH(reduce64, 8, 32, 0, 0, xd.ptr, out.ptr, 0);
        CUDA_OK(launch_result());
        std::vector<float> bad = out.download();
        EXPECT(max_rel_err(good.data(), wr.data(), 8) < 1e-5, "warp reduction with __syncwarp, seed %llu",
               (unsigned long long)s);
        EXPECT(!(max_rel_err(bad.data(), wr.data(), 8) < 1e-5), "warp reduction without __syncwarp is wrong, seed %llu",
               (unsigned long long)s);
    }
    qbemu::set_seed(env_seed);

    std::string err;
    EXPECT(dies_with(
               [] {
                   DeviceBuffer<float> y32(32);
                   QB_LAUNCH(mask_deadlock, 1, 32, 0, 0, y32.ptr);
               },
               "deadlock in kernel mask_deadlock", &err),
           "a warp mask naming lanes at __syncthreads is reported as a deadlock: %s", err.c_str());
    err.clear();
    EXPECT(dies_with(
               [] {
                   DeviceBuffer<float> y32(32);
                   QB_LAUNCH(bad_mask, 1, 32, 0, 0, y32.ptr);
               },
               "does not include the calling lane", &err),
           "a mask without the calling lane is reported: %s", err.c_str());
    return finish("test_emu_race");
}
#else
int main() {
    printf("SKIP test_emu_race: races are shown by the emulator's shuffled thread order (-Dgpu_emu=true)\n");
    return 77;
}
#endif

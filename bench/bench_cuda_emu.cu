/* bench_cuda_emu.cu: speed of the CPU CUDA emulator (-Dgpu_emu=true), medians of 7 runs; the peer is the same work
 * as a plain host loop. Cases: an element-wise kernel over 1M threads (no barriers), a 256-thread block with 8
 * __syncthreads, a 1-thread block doing barriers (two fiber switches and one scheduler round each), an empty launch. */
#include "autograd/cuda/cuda_compat.h"

#include <cstdio>
#include <vector>

#include "bench_util.h"

__global__ void axpy(float *y, const float *x, float a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] += a * x[i];
}

__global__ void rotate(float *out, int rounds) {
    __shared__ float s[256];
    float v = (float)threadIdx.x;
    for (int r = 0; r < rounds; r++) {
        s[threadIdx.x] = v;
        __syncthreads();
        v = s[(threadIdx.x + 1) % 256];
        __syncthreads();
    }
    out[blockIdx.x * 256 + threadIdx.x] = v;
}

__global__ void barriers(int n) {
    for (int i = 0; i < n; i++) __syncthreads();
}

__global__ void empty() {}

template <class F>
static double median_seconds(F f) {
    double t[7];
    f();
    for (double &x : t) {
        double t0 = bench_now();
        f();
        x = bench_now() - t0;
    }
    return bench_median(t, 7);
}

int main() {
    const int n = 1 << 20, blocks = 64;
    float *x, *y, *o;
    cudaMalloc((void **)&x, n * sizeof(float));
    cudaMalloc((void **)&y, n * sizeof(float));
    cudaMalloc((void **)&o, blocks * 256 * sizeof(float));
    cudaMemset(x, 0, n * sizeof(float));
    cudaMemset(y, 0, n * sizeof(float));
    std::vector<float> hx(n, 1.0f), hy(n, 0.0f);

    double emu = median_seconds([&] { QB_LAUNCH(axpy, n / 256, 256, 0, 0, y, x, 2.0f, n); });
    double host = median_seconds([&] {
        for (int i = 0; i < n; i++) hy[i] += 2.0f * hx[i];
    });
    printf("element-wise, 1M threads:        %8.2f ms   (%.1f ns a thread; %.0fx a host loop)\n", emu * 1e3,
           emu / n * 1e9, emu / host);
    emu = median_seconds([&] { QB_LAUNCH(rotate, blocks, 256, 0, 0, o, 4); });
    printf("256-thread block, 8 barriers:    %8.2f us a block (%.1f ns a thread and barrier)\n", emu / blocks * 1e6,
           emu / (blocks * 256.0 * 9) * 1e9);
    emu = median_seconds([&] { QB_LAUNCH(barriers, 1, 1, 0, 0, 100000); });
    printf("1-thread barrier round trip:     %8.1f ns\n", emu / 100000 * 1e9);
    emu = median_seconds([&] {
        for (int i = 0; i < 10000; i++) QB_LAUNCH(empty, 1, 1, 0, 0);
    });
    printf("empty launch <<<1, 1>>>:         %8.2f us\n", emu / 10000 * 1e6);
    printf("%s\n", cudaGetErrorString(cudaGetLastError()));
    cudaFree(x);
    cudaFree(y);
    cudaFree(o);
    return 0;
}

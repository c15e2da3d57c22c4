/* backend.cu: CUDA runtime, cuBLAS and cuBLASLt set-up, memory and small utility kernels. */
#include "autograd/cuda/cuda_compat.h"

#include "autograd/cuda/backend.h"

#include <cstdio>
#include <cstdlib>

struct qb_cuda_state {
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasLtHandle_t blaslt;
};

extern "C" int qb_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

extern "C" void qb_cuda_describe(char *buf, size_t n) {
    int rt = 0, drv = 0;
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);
    snprintf(buf, n, "cuda runtime %d, driver %d, cuBLASLt %zu, devices %d", rt, drv, cublasLtGetVersion(),
             qb_cuda_device_count());
}

extern "C" void *qb_cuda_init(char *msg, size_t n) {
    int count = qb_cuda_device_count();
    if (count == 0) {
        snprintf(msg, n, "no CUDA device visible");
        return nullptr;
    }
    qb_cuda_state *s = (qb_cuda_state *)calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, n, "out of host memory");
        return nullptr;
    }
    cudaError_t ce = cudaSetDevice(0);
    if (ce == cudaSuccess) ce = cudaStreamCreate(&s->stream);
    if (ce != cudaSuccess) {
        snprintf(msg, n, "cuda set-up failed: %s", cudaGetErrorString(ce));
        free(s);
        return nullptr;
    }
    if (cublasCreate(&s->blas) != CUBLAS_STATUS_SUCCESS || cublasLtCreate(&s->blaslt) != CUBLAS_STATUS_SUCCESS) {
        snprintf(msg, n, "cuBLAS/cuBLASLt initialisation failed");
        cudaStreamDestroy(s->stream);
        free(s);
        return nullptr;
    }
    cublasSetStream(s->blas, s->stream);
    return s;
}

extern "C" void qb_cuda_shutdown(void *state) {
    qb_cuda_state *s = (qb_cuda_state *)state;
    if (!s) return;
    cublasLtDestroy(s->blaslt);
    cublasDestroy(s->blas);
    cudaStreamDestroy(s->stream);
    free(s);
}

extern "C" void *qb_cuda_malloc(size_t bytes) {
    void *p = nullptr;
    if (cudaMalloc(&p, bytes) != cudaSuccess) return nullptr;
    return p;
}

extern "C" void qb_cuda_free(void *p) { cudaFree(p); }

extern "C" int qb_cuda_memcpy_h2d(void *dst, const void *src, size_t bytes) {
    return cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice) == cudaSuccess ? 0 : -1;
}

extern "C" int qb_cuda_memcpy_d2h(void *dst, const void *src, size_t bytes) {
    return cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost) == cudaSuccess ? 0 : -1;
}

__global__ static void fill_kernel(float *dst, int64_t n, float value) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = value;
}

extern "C" int qb_cuda_fill(float *dst, int64_t n, float value) {
    if (n <= 0) return 0;
    int threads = 256;
    int64_t blocks = (n + threads - 1) / threads;
    QB_LAUNCH(fill_kernel, (unsigned)blocks, threads, 0, 0, dst, n, value);
    return cudaGetLastError() == cudaSuccess ? 0 : -1;
}

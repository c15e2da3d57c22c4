/* backend.cu: CUDA runtime, cuBLAS and cuBLASLt set-up, memory and small utility kernels. */
#include "autograd/cuda/cuda_compat.h"

#include "autograd/cuda/backend.h"

#include <cstdio>
#include <cstdlib>

#define QB_CUDA_WORKSPACE_BYTES ((size_t)32 << 20) /* cuBLASLt workspace */

struct qb_dev {
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasLtHandle_t blaslt;
    void *workspace;
    size_t workspace_bytes;
    void *scratch;  /* kernels' temporaries (qb_cuda_scratch): grown when a new shape needs more, never shrunk */
    size_t scratch_bytes;
    qb_precision precision;  /* GEMM compute precision (qb_cuda_set_precision) */
    char msg[512];  /* the last failure */
};

/* Records a failed CUDA call in the state; returns -1. */
static int cuda_fail(qb_dev *d, const char *what, cudaError_t e) {
    snprintf(d->msg, sizeof d->msg, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
    return -1;
}

static int cuda_status(qb_dev *d, const char *what, cudaError_t e) { return e == cudaSuccess ? 0 : cuda_fail(d, what, e); }

extern "C" const char *qb_cuda_error_message(qb_dev *d) { return d->msg; }

extern "C" int qb_cuda_status(qb_dev *d, const char *what, int cuda_error) { return cuda_status(d, what, (cudaError_t)cuda_error); }

extern "C" int qb_cuda_blas_status(qb_dev *d, const char *what, int status) {
    cublasStatus_t st = (cublasStatus_t)status;
    if (st == CUBLAS_STATUS_SUCCESS) return 0;
    snprintf(d->msg, sizeof d->msg, "%s: %s (%s)", what, cublasGetStatusString(st), cublasGetStatusName(st));
    return -1;
}

extern "C" void *qb_cuda_stream(qb_dev *d) { return d->stream; }

extern "C" void *qb_cuda_blas(qb_dev *d) { return d->blas; }

extern "C" void *qb_cuda_blaslt(qb_dev *d) { return d->blaslt; }

extern "C" void *qb_cuda_workspace(qb_dev *d, size_t *bytes) {
    *bytes = d->workspace_bytes;
    return d->workspace;
}

extern "C" void *qb_cuda_scratch(qb_dev *d, size_t bytes) {
    if (bytes <= d->scratch_bytes) return d->scratch;
    size_t want = bytes > 2 * d->scratch_bytes ? bytes : 2 * d->scratch_bytes;
    cudaError_t e = d->scratch ? cudaFree(d->scratch) : cudaSuccess; /* cudaFree waits for the kernels using it */
    d->scratch = nullptr;
    d->scratch_bytes = 0;
    if (e == cudaSuccess) e = cudaMalloc(&d->scratch, want);
    if (e != cudaSuccess) {
        d->scratch = nullptr;
        cuda_fail(d, "kernel scratch memory", e);
        return nullptr;
    }
    d->scratch_bytes = want;
    return d->scratch;
}

extern "C" int qb_cuda_set_precision(qb_dev *d, qb_precision p) {
    d->precision = p;
    return 0;
}

extern "C" qb_precision qb_cuda_precision(qb_dev *d) { return d->precision; }

extern "C" const char *qb_cuda_last_error(void) { return cudaGetErrorString(cudaGetLastError()); }

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

extern "C" qb_dev *qb_cuda_init(int ordinal, char *msg, size_t n) {
    int count = qb_cuda_device_count();
    if (count == 0) {
        snprintf(msg, n, "no CUDA device visible");
        return nullptr;
    }
    if (ordinal < 0 || ordinal >= count) {
        snprintf(msg, n, "device %d: only %d CUDA device%s visible", ordinal, count, count == 1 ? "" : "s");
        return nullptr;
    }
    qb_dev *s = (qb_dev *)calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, n, "out of host memory");
        return nullptr;
    }
    cudaError_t ce = cudaSetDevice(ordinal);
    if (ce == cudaSuccess) ce = cudaStreamCreate(&s->stream);
    if (ce != cudaSuccess) {
        snprintf(msg, n, "cuda set-up failed: %s", cudaGetErrorString(ce));
        free(s);
        return nullptr;
    }
    cublasStatus_t bs = cublasCreate(&s->blas);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        snprintf(msg, n, "cuBLAS initialisation failed: %s", cublasGetStatusString(bs));
        cudaStreamDestroy(s->stream);
        free(s);
        return nullptr;
    }
    bs = cublasLtCreate(&s->blaslt);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        snprintf(msg, n, "cuBLASLt initialisation failed: %s", cublasGetStatusString(bs));
        cublasDestroy(s->blas);
        cudaStreamDestroy(s->stream);
        free(s);
        return nullptr;
    }
    ce = cudaMalloc(&s->workspace, QB_CUDA_WORKSPACE_BYTES);
    if (ce != cudaSuccess) {
        snprintf(msg, n, "cuBLASLt workspace of %zu bytes: %s", QB_CUDA_WORKSPACE_BYTES, cudaGetErrorString(ce));
        cublasLtDestroy(s->blaslt);
        cublasDestroy(s->blas);
        cudaStreamDestroy(s->stream);
        free(s);
        return nullptr;
    }
    s->workspace_bytes = QB_CUDA_WORKSPACE_BYTES;
    cublasSetStream(s->blas, s->stream);
    return s;
}

extern "C" void qb_cuda_shutdown(qb_dev *s) {
    if (!s) return;
    cudaFree(s->scratch);
    cudaFree(s->workspace);
    cublasLtDestroy(s->blaslt);
    cublasDestroy(s->blas);
    cudaStreamDestroy(s->stream);
    free(s);
}

extern "C" int qb_cuda_mem_info(qb_dev *d, size_t *used, size_t *total) {
    size_t free_b = 0, total_b = 0;
    if (cuda_status(d, "cudaMemGetInfo", cudaMemGetInfo(&free_b, &total_b))) return -1;
    *used = total_b - free_b;
    *total = total_b;
    return 0;
}

extern "C" void *qb_cuda_malloc(size_t bytes) {
    void *p = nullptr;
    if (cudaMalloc(&p, bytes) != cudaSuccess) return nullptr;
    return p;
}

extern "C" void qb_cuda_free(void *p) { cudaFree(p); }

extern "C" int qb_cuda_memcpy_h2d(qb_dev *d, void *dst, const void *src, size_t bytes) {
    return cuda_status(d, "copy host to device", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, d->stream));
}

extern "C" int qb_cuda_memcpy_d2h(qb_dev *d, void *dst, const void *src, size_t bytes) {
    if (cuda_status(d, "copy device to host", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, d->stream))) return -1;
    return cuda_status(d, "copy device to host (stream)", cudaStreamSynchronize(d->stream));
}

extern "C" int qb_cuda_memcpy_d2d(qb_dev *d, void *dst, const void *src, size_t bytes) {
    return cuda_status(d, "copy device to device", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, d->stream));
}

__global__ static void fill_kernel(float *dst, int64_t n, float value) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = value;
}

extern "C" int qb_cuda_fill(qb_dev *d, float *dst, int64_t n, float value) {
    if (n <= 0) return 0;
    int threads = 256;
    int64_t blocks = (n + threads - 1) / threads;
    QB_LAUNCH(fill_kernel, (unsigned)blocks, threads, 0, d->stream, dst, n, value);
    return cuda_status(d, "fill", cudaGetLastError());
}

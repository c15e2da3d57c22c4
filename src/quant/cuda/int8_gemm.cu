/* int8_gemm.cu: the INT8 GEMM path on the GPU: integer codes of a fake-quantized tensor (the element formula of
 * quant_math.h, as cpu/int8_gemm.c), the int8 x int8 -> int32 product through cuBLASLt IMMA (CUDA_R_8I inputs,
 * CUBLAS_COMPUTE_32I, int32 C/D, the "TN" column-major layout: row-major c = a b^T is column-major c^T = b a^T with
 * cuBLASLt's A = our b transposed and its B = our a, leading dims k, k and n, multiples of 4 as the shell pads them),
 * and the dequantization with bias in float64 (one rounding, as the CPU). */
#include "autograd/cuda/cuda_compat.h"

#include "quant/cuda/kernels.h"
#include "quant/cuda/quant_cuda.cuh"

#include <cstdio>

struct quantize_view {
    int64_t shape[4], stride[4];
};

__global__ void __launch_bounds__(QB_CUDA_THREADS) quantize_s8_kernel(int8_t *q, const float *x, quantize_view v, bool transpose,
                                                                       int64_t rows_out, int64_t ld, int64_t total, const float *amax,
                                                                       int64_t n_amax, float qmin, float qmax) {
    QB_GRID_LOOP(t, total) {
        const int64_t i = t % ld, o = (t / ld) % rows_out, p = t / (ld * rows_out);
        const int64_t r = transpose ? i : o, c = transpose ? o : i;
        int8_t code = 0;
        if (r < v.shape[2] && c < v.shape[3]) {
            const float *xm = x + (p / v.shape[1]) * v.stride[0] + (p % v.shape[1]) * v.stride[1];
            const float s = fake_quant_scale_of(amax[n_amax == 1 ? 0 : r], qmax);
            const float f = fake_quant_one(xm[r * v.stride[2] + c * v.stride[3]], s, 1.0f, qmin, qmax);
            code = f == f ? (int8_t)f : 0; /* NaN: 0, as the CPU */
        }
        q[t] = code;
    }
}

extern "C" int qb_cuda_quantize_s8(qb_dev *d, int8_t *q, const float *x, const int64_t shape[4], const int64_t stride[4], bool transpose,
                                   int64_t rows_out, int64_t ld, const float *amax, int64_t n_amax, float qmin, float qmax) {
    const int64_t total = shape[0] * shape[1] * rows_out * ld;
    if (total <= 0) return 0;
    quantize_view v;
    for (int k = 0; k < 4; k++) {
        v.shape[k] = shape[k];
        v.stride[k] = stride[k];
    }
    QB_LAUNCH(quantize_s8_kernel, quant_blocks(total, QUANT_ITEMS), QB_CUDA_THREADS, 0, quant_stream(d), q, x, v, transpose, rows_out, ld,
              total, amax, n_amax, qmin, qmax);
    return qb_cuda_status(d, "quantize_s8", cudaGetLastError());
}

/* A column-major int8 or int32 layout of rows x cols, leading dim ld, strided batch. */
static cublasStatus_t layout(cublasLtMatrixLayoutOpaque_t *l, cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int64_t stride,
                             int32_t batch) {
    cublasStatus_t s = cublasLtMatrixLayoutInit(l, type, (uint64_t)rows, (uint64_t)cols, ld);
    if (s == CUBLAS_STATUS_SUCCESS && batch > 1) {
        s = cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch);
        if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride);
    }
    return s;
}

extern "C" int qb_cuda_gemm_s8(qb_dev *d, int32_t *c, const int8_t *a, const int8_t *b, int64_t m, int64_t n, int64_t k, int64_t batch) {
    if (m <= 0 || n <= 0 || batch <= 0) return 0;
    char what[160];
    snprintf(what, sizeof what, "gemm_s8 m %lld n %lld k %lld batch %lld (cuBLASLt IMMA)", (long long)m, (long long)n, (long long)k,
             (long long)batch);
    if (k <= 0) return qb_cuda_status(d, what, cudaMemsetAsync(c, 0, (size_t)(batch * m * n) * sizeof(int32_t), quant_stream(d)));
    if (n % 4 || k % 4 || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX || batch > INT32_MAX)
        return qb_cuda_blas_status(d, what, CUBLAS_STATUS_NOT_SUPPORTED);
    cublasLtHandle_t lt = (cublasLtHandle_t)qb_cuda_blaslt(d);
    size_t ws_bytes;
    void *ws = qb_cuda_workspace(d, &ws_bytes);
    cublasLtMatmulDescOpaque_t op;
    cublasLtMatrixLayoutOpaque_t la, lb, lc;
    cublasLtMatmulPreferenceOpaque_t pref;
    const cublasOperation_t opa = CUBLAS_OP_T, opb = CUBLAS_OP_N;
    const int32_t nb = (int32_t)batch, alpha = 1, beta = 0;
    cublasStatus_t s = cublasLtMatmulDescInit(&op, CUBLAS_COMPUTE_32I, CUDA_R_32I);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulDescSetAttribute(&op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulDescSetAttribute(&op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb);
    /* cuBLASLt's A: our b stored [n, k] = column-major k x n; its B: our a [m, k] = column-major k x m; D: c^T n x m */
    if (s == CUBLAS_STATUS_SUCCESS) s = layout(&la, CUDA_R_8I, k, n, k, n * k, nb);
    if (s == CUBLAS_STATUS_SUCCESS) s = layout(&lb, CUDA_R_8I, k, m, k, m * k, nb);
    if (s == CUBLAS_STATUS_SUCCESS) s = layout(&lc, CUDA_R_32I, n, m, n, m * n, nb);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulPreferenceInit(&pref);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof ws_bytes);
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulAlgoGetHeuristic(lt, &op, &la, &lb, &lc, &lc, &pref, 1, &heur, &found);
    if (s == CUBLAS_STATUS_SUCCESS && found < 1) s = CUBLAS_STATUS_NOT_SUPPORTED;
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmul(lt, &op, &alpha, b, &la, a, &lb, &beta, c, &lc, c, &lc, &heur.algo, ws, ws_bytes, quant_stream(d));
    if (qb_cuda_blas_status(d, what, s)) return -1;
    return qb_cuda_status(d, what, cudaGetLastError());
}

__global__ void __launch_bounds__(QB_CUDA_THREADS) dequant_s32_kernel(float *y, const int32_t *acc, int64_t total, int64_t n, int64_t ld,
                                                                       const float *amax_a, float qmax_a, const float *amax_b,
                                                                       int64_t n_amax_b, float qmax_b, const float *bias) {
    const double sa = fake_quant_scale_of(amax_a[0], qmax_a);
    QB_GRID_LOOP(t, total) {
        const int64_t r = t / n, j = t % n;
        const double s = sa * (double)fake_quant_scale_of(amax_b[n_amax_b == 1 ? 0 : j], qmax_b);
        const int32_t a = acc[r * ld + j];
        const double v = s == 0.0 ? 0.0 : (double)a / s;
        y[t] = (float)(v + (bias ? (double)bias[j] : 0.0));
    }
}

extern "C" int qb_cuda_dequant_s32(qb_dev *d, float *y, const int32_t *acc, int64_t batch, int64_t m, int64_t n, int64_t ld,
                                   const float *amax_a, float qmax_a, const float *amax_b, int64_t n_amax_b, float qmax_b,
                                   const float *bias) {
    const int64_t total = batch * m * n;
    if (total <= 0) return 0;
    if (ld != n && (const void *)y == (const void *)acc) return qb_cuda_status(d, "dequant_s32 (in place needs ld = n)", cudaErrorInvalidValue);
    QB_LAUNCH(dequant_s32_kernel, quant_blocks(total, QUANT_ITEMS), QB_CUDA_THREADS, 0, quant_stream(d), y, acc, total, n, ld, amax_a, qmax_a,
              amax_b, n_amax_b, qmax_b, bias);
    return qb_cuda_status(d, "dequant_s32", cudaGetLastError());
}

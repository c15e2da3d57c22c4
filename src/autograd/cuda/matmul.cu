/* matmul.cu: batched GEMM through cuBLASLt, one GEMM with a cuBLASLt epilogue (bias, bias + tanh GELU, bias gradient),
 * bias rows and bias column sums, on device memory.
 *
 * GEMM: row-major C = alpha op(A) op(B) + beta C is the column-major product C^T = op(B)^T op(A)^T, so cuBLASLt gets B
 * as its first operand and A as its second, with the transposes as given. Descriptors live on the stack; the
 * workspace is the state's. The 2-dim batch becomes one cuBLASLt call whenever one stride per operand describes it
 * (strided batch, stride 0 for a shared operand), a shared B with stacked A and C one taller product, else one
 * strided-batch call per index of the first batch dim. A shared output (c offsets {0, 0}) is one product over the
 * concatenated inner dims when the operands are stacked along k (the shared-weight gradients), else one call per
 * product with beta for the first and 1 after, in product order. k = 0 and an empty shared batch scale C by beta.
 * Compute type from the state's precision: 32F, 32F_FAST_TF32 or 32F_FAST_16BF (inputs rounded inside the product,
 * fp32 accumulate); bf16 operands (qb_gemm_batch a_bf16 = b_bf16, precision bf16: from cast_bf16) are CUDA_R_16BF
 * layouts with CUBLAS_COMPUTE_32F and fp32 C/D. */
#include "autograd/cuda/cuda_compat.h"

#include "autograd/cuda/device_util.cuh"

#include <climits>
#include <cstdio>

/* ---- C = beta C over a batch of count[0] x count[1] matrices (k = 0, or no products into a shared C) */

__global__ static void __launch_bounds__(QB_CUDA_THREADS) scale_c_kernel(float *c, int64_t m, int64_t n, int64_t ldc, float beta, int64_t count1,
                                                                          int64_t off0, int64_t off1, int64_t total) {
    QB_GRID_LOOP(i, total) {
        int64_t p = i / (m * n), e = i % (m * n);
        float *x = c + (p / count1) * off0 + (p % count1) * off1 + (e / n) * ldc + e % n;
        *x = beta == 0.0f ? 0.0f : beta * *x;
    }
}

static int scale_c(qb_dev *d, int64_t m, int64_t n, float beta, float *c, int64_t ldc, const int64_t count[2], const int64_t off[2]) {
    int64_t total = m * n * count[0] * count[1];
    if (beta == 1.0f || total <= 0) return 0;
    QB_LAUNCH(scale_c_kernel, qb_cuda_blocks(total, QB_CUDA_THREADS), QB_CUDA_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), c, m, n, ldc, beta,
              count[1], off[0], off[1], total);
    return qb_cuda_status(d, "gemm (C = beta C)", cudaGetLastError());
}

/* ---- bf16 operands: x rounded to nearest even, NaN kept quiet (the bits of the CPU's cast_bf16) */

__global__ static void __launch_bounds__(QB_CUDA_THREADS) cast_bf16_kernel(uint16_t *y, const float *x, int64_t n) {
    QB_GRID_LOOP(i, n) {
        uint32_t u = __float_as_uint(x[i]);
        y[i] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : (u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
}

extern "C" int qb_cuda_cast_bf16(qb_dev *d, uint16_t *y, const float *x, int64_t n) {
    if (n <= 0) return 0;
    QB_LAUNCH(cast_bf16_kernel, qb_cuda_blocks(n, QB_CUDA_THREADS), QB_CUDA_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), y, x, n);
    return qb_cuda_status(d, "cast_bf16", cudaGetLastError());
}

/* ---- one cuBLASLt call */

/* The largest power of two (at most 256) dividing the address and, in a batch, the byte stride between matrices. */
static uint32_t alignment(const void *p, int64_t stride, int64_t batch, size_t elem) {
    uintptr_t v = (uintptr_t)p | 256u;
    if (batch > 1 && stride) v |= (uintptr_t)stride * elem;
    return (uint32_t)(v & (~v + 1));
}

static cublasComputeType_t compute_type(qb_precision p, bool bf16_operands) {
    if (bf16_operands) return CUBLAS_COMPUTE_32F;
    return p == QB_PREC_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : p == QB_PREC_BF16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F;
}

/* A row-major matrix of `rows` x `cols` with leading dim ld as cuBLASLt's column-major cols x rows, batched. */
static cublasStatus_t layout(cublasLtMatrixLayoutOpaque_t *l, cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int64_t stride,
                             int32_t batch) {
    if (rows == 1 && ld < cols) ld = cols; /* one row: its leading dim is never used */
    cublasStatus_t s = cublasLtMatrixLayoutInit(l, type, (uint64_t)cols, (uint64_t)rows, ld);
    if (s == CUBLAS_STATUS_SUCCESS && batch > 1) {
        s = cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch);
        if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride);
    }
    return s;
}

/* A cuBLASLt epilogue of one call: bias (BIAS: [rows of D] = our n; BGRADB: [columns of D] = our m) and aux (ld aux_ld). */
struct lt_epilogue {
    cublasLtEpilogue_t kind;
    const void *bias;
    void *aux;
    int64_t aux_ld;
};

static cublasStatus_t set_epilogue(cublasLtMatmulDescOpaque_t *op, const lt_epilogue *ep) {
    cublasStatus_t s = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep->kind, sizeof ep->kind);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &ep->bias, sizeof ep->bias);
    if (s == CUBLAS_STATUS_SUCCESS && ep->aux) {
        s = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &ep->aux, sizeof ep->aux);
        if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ep->aux_ld, sizeof ep->aux_ld);
    }
    return s;
}

/* Row-major C_p = alpha op(A_p) op(B_p) + beta C_p for p < batch, X_p = X + p * sx; m, n, k > 0; A and B fp32, or both
 * bf16 (bf16); then epilogue ep (NULL: none). 0, -1 with the state's error, or 1 when cuBLASLt has no algorithm for ep
 * (nothing ran, no error kept). */
static int lt_matmul(qb_dev *d, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const void *a, int64_t lda, int64_t sa,
                     const void *b, int64_t ldb, int64_t sb, float beta, float *c, int64_t ldc, int64_t sc, int64_t batch, bool bf16,
                     const lt_epilogue *ep) {
    char what[160];
    snprintf(what, sizeof what, "gemm %c%c m %lld n %lld k %lld batch %lld%s (cuBLASLt)", ta ? 't' : 'n', tb ? 't' : 'n', (long long)m,
             (long long)n, (long long)k, (long long)batch, bf16 ? " bf16 A/B" : "");
    cudaDataType_t ab_type = bf16 ? CUDA_R_16BF : CUDA_R_32F;
    size_t ab_size = bf16 ? 2 : sizeof(float);
    if (batch > INT32_MAX || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return qb_cuda_blas_status(d, what, CUBLAS_STATUS_NOT_SUPPORTED);
    cublasLtHandle_t lt = (cublasLtHandle_t)qb_cuda_blaslt(d);
    size_t ws_bytes;
    void *ws = qb_cuda_workspace(d, &ws_bytes);
    cublasLtMatmulDescOpaque_t op;
    cublasLtMatrixLayoutOpaque_t la, lb, lc;
    cublasLtMatmulPreferenceOpaque_t pref;
    cublasOperation_t opa = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    uint32_t align_a = alignment(b, sb, batch, ab_size), align_b = alignment(a, sa, batch, ab_size),
             align_c = alignment(c, sc, batch, sizeof(float));
    int32_t nb = (int32_t)batch;
    cublasStatus_t s = cublasLtMatmulDescInit(&op, compute_type(qb_cuda_precision(d), bf16), CUDA_R_32F);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulDescSetAttribute(&op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulDescSetAttribute(&op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb);
    if (ep && s == CUBLAS_STATUS_SUCCESS) s = set_epilogue(&op, ep);
    /* cuBLASLt's A is our B (stored [k, n], or [n, k] when tb), its B our A (stored [m, k], or [k, m] when ta) */
    if (s == CUBLAS_STATUS_SUCCESS) s = layout(&la, ab_type, tb ? n : k, tb ? k : n, ldb, sb, nb);
    if (s == CUBLAS_STATUS_SUCCESS) s = layout(&lb, ab_type, ta ? k : m, ta ? m : k, lda, sa, nb);
    if (s == CUBLAS_STATUS_SUCCESS) s = layout(&lc, CUDA_R_32F, m, n, ldc, sc, nb);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulPreferenceInit(&pref);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof ws_bytes);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a, sizeof align_a);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b, sizeof align_b);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c, sizeof align_c);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(&pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c, sizeof align_c);
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulAlgoGetHeuristic(lt, &op, &la, &lb, &lc, &lc, &pref, 1, &heur, &found);
    if (s == CUBLAS_STATUS_SUCCESS && found < 1) s = CUBLAS_STATUS_NOT_SUPPORTED;
    if (ep && (s == CUBLAS_STATUS_NOT_SUPPORTED || s == CUBLAS_STATUS_INVALID_VALUE)) return 1; /* no algorithm with this epilogue */
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmul(lt, &op, &alpha, b, &la, a, &lb, &beta, c, &lc, c, &lc, &heur.algo, ws, ws_bytes, (cudaStream_t)qb_cuda_stream(d));
    if (qb_cuda_blas_status(d, what, s)) return -1;
    return qb_cuda_status(d, what, cudaGetLastError());
}

static int lt_gemm(qb_dev *d, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const void *a, int64_t lda, int64_t sa,
                   const void *b, int64_t ldb, int64_t sb, float beta, float *c, int64_t ldc, int64_t sc, int64_t batch, bool bf16) {
    return lt_matmul(d, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch, bf16, nullptr);
}

/* ---- the batch */

/* The one stride that gives product p's offset as p * stride over both batch dims, or -1. */
static int64_t flat_stride(const int64_t off[2], const int64_t count[2]) {
    if (count[0] == 1) return off[1];
    if (count[1] == 1 || off[0] == count[1] * off[1]) return count[1] == 1 ? off[0] : off[1];
    return -1;
}

static inline int64_t batch_off(const int64_t off[2], const int64_t count[2], int64_t p) {
    return (p / count[1]) * off[0] + (p % count[1]) * off[1];
}

/* Element `off` of an operand of fp32 or bf16 values. */
static inline const void *element(const void *x, bool bf16, int64_t off) {
    return bf16 ? (const void *)((const uint16_t *)x + off) : (const void *)((const float *)x + off);
}

extern "C" int qb_cuda_gemm(qb_dev *d, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const void *a, int64_t lda,
                            const void *b, int64_t ldb, float beta, float *c, int64_t ldc, const qb_gemm_batch *bt) {
    static const int64_t one[2] = {1, 1}, none[2] = {0, 0};
    const int64_t *count = bt->count;
    int64_t batch = count[0] * count[1];
    bool shared = bt->c[0] == 0 && bt->c[1] == 0, h = bt->a_bf16;
    if (bt->a_bf16 != bt->b_bf16 || (h && qb_cuda_precision(d) != QB_PREC_BF16))
        return qb_cuda_blas_status(d, "gemm: bf16 operands need both A and B in bf16 and precision bf16", CUBLAS_STATUS_INVALID_VALUE);
    if (m <= 0 || n <= 0) return 0;
    if (batch <= 0) return shared ? scale_c(d, m, n, beta, c, ldc, one, none) : 0;
    if (k <= 0) return scale_c(d, m, n, beta, c, ldc, shared ? one : count, bt->c);
    if (batch == 1) return lt_gemm(d, ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1, h);
    int64_t sa = flat_stride(bt->a, count), sb = flat_stride(bt->b, count), sc = flat_stride(bt->c, count);
    if (shared) {
        /* sum_p op(A_p) op(B_p) = [op(A_0) .. op(A_P-1)] [op(B_0); ..; op(B_P-1)] when the operands are stacked along k */
        bool a_k = sa >= 0 && (ta ? sa == k * lda : sa == k && lda >= batch * k);
        bool b_k = sb >= 0 && (tb ? sb == k && ldb >= batch * k : sb == k * ldb);
        if (a_k && b_k) return lt_gemm(d, ta, tb, m, n, batch * k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1, h);
        for (int64_t p = 0; p < batch; p++)
            if (lt_gemm(d, ta, tb, m, n, k, alpha, element(a, h, batch_off(bt->a, count, p)), lda, 0, element(b, h, batch_off(bt->b, count, p)),
                        ldb, 0, p == 0 ? beta : 1.0f, c, ldc, 0, 1, h))
                return -1;
        return 0;
    }
    if ((bt->c[0] == 0 && count[0] > 1) || (bt->c[1] == 0 && count[1] > 1)) {
        char what[96];
        snprintf(what, sizeof what, "gemm: a batch of %lld x %lld products with output offsets {%lld, %lld}", (long long)count[0],
                 (long long)count[1], (long long)bt->c[0], (long long)bt->c[1]);
        return qb_cuda_blas_status(d, what, CUBLAS_STATUS_INVALID_VALUE);
    }
    if (sb == 0 && !ta && sa == m * lda && sc == m * ldc) /* a shared B: the stacked rows of every A_p in one product */
        return lt_gemm(d, false, tb, batch * m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1, h);
    if (sa >= 0 && sb >= 0 && sc >= 0) return lt_gemm(d, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch, h);
    for (int64_t p0 = 0; p0 < count[0]; p0++)
        if (lt_gemm(d, ta, tb, m, n, k, alpha, element(a, h, p0 * bt->a[0]), lda, bt->a[1], element(b, h, p0 * bt->b[0]), ldb, bt->b[1], beta,
                    c + p0 * bt->c[0], ldc, bt->c[1], count[1], h))
            return -1;
    return 0;
}

/* ---- one product with an epilogue: cuBLASLt's (BIAS, GELU_AUX_BIAS, BGRADB) where it has an algorithm for it, else
 * the same definition by separate kernels (bias rows as C, the CUDA GELU, col_sum) */

extern "C" int qb_cuda_gemm_epilogue(qb_dev *d, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                                     int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc, qb_gemm_epilogue *ep) {
    bool gelu = ep->kind == QB_EPI_BIAS_GELU_TANH, bgrad = ep->kind == QB_EPI_BGRAD;
    ep->fused = false;
    if (bgrad ? !ta || lda != m || !ep->bias_grad : beta != 0.0f || ldc != n || !ep->bias || (gelu && !ep->aux))
        return qb_cuda_blas_status(d, "gemm_epilogue: bias kinds need beta 0, ldc n and a bias (GELU an aux); the bias gradient ta and lda m",
                                   CUBLAS_STATUS_INVALID_VALUE);
    if (m <= 0 || n <= 0) return 0;
    float *grad = nullptr;
    if (k > 0) {
        lt_epilogue le = {CUBLASLT_EPILOGUE_BIAS, ep->bias, nullptr, 0};
        if (gelu) le = {CUBLASLT_EPILOGUE_GELU_AUX_BIAS, ep->bias, ep->aux, n};
        if (bgrad) {
            if (!(grad = (float *)qb_cuda_scratch(d, (size_t)m * sizeof(float)))) return -1;
            le = {CUBLASLT_EPILOGUE_BGRADB, grad, nullptr, 0}; /* cuBLASLt's B is our A: sum over k of op(B), one per column of D */
        }
        int rc = lt_matmul(d, ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1, false, &le);
        if (rc < 0) return -1;
        if (rc == 0) {
            ep->fused = true;
            return bgrad ? qb_cuda_axpy(d, ep->bias_grad, grad, 1.0f, m) : 0; /* cuBLASLt writes the sums; we add them */
        }
    }
    const qb_gemm_batch one = {{1, 1}, {0, 0}, {0, 0}, {0, 0}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}; /* the precision is the state's */
    if (bgrad) return qb_cuda_gemm(d, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, &one) ? -1 : qb_cuda_col_sum(d, ep->bias_grad, a, k, m);
    float *pre = gelu ? ep->aux : c;
    if (qb_cuda_bias_rows(d, pre, ep->bias, m, n) || qb_cuda_gemm(d, ta, tb, m, n, k, alpha, a, lda, b, ldb, 1.0f, pre, n, &one)) return -1;
    return gelu ? qb_cuda_unary(d, QB_UNARY_GELU_TANH, c, pre, m * n) : 0;
}

/* ---- bias */

__global__ static void __launch_bounds__(QB_CUDA_THREADS) bias_rows_kernel(float *y, const float *bias, int64_t total, int64_t n) {
    QB_GRID_LOOP(i, total) y[i] = bias[i % n];
}

extern "C" int qb_cuda_bias_rows(qb_dev *d, float *y, const float *bias, int64_t rows, int64_t n) {
    if (rows <= 0 || n <= 0) return 0;
    QB_LAUNCH(bias_rows_kernel, qb_cuda_blocks(rows * n, QB_CUDA_THREADS), QB_CUDA_THREADS, 0, (cudaStream_t)qb_cuda_stream(d), y, bias, rows * n,
              n);
    return qb_cuda_status(d, "bias_rows", cudaGetLastError());
}

/* ---- column sums: blocks of COL_TILE columns x one chunk of rows; COL_WARPS warps split the chunk's rows and add
 * their sums in warp order; with one chunk the block adds into out, else the chunks' sums go to scratch and a second
 * kernel adds them in chunk order. */
#define COL_TILE 32
#define COL_WARPS 8
#define COL_CHUNK_ROWS 256  /* rows a chunk at least */
#define COL_MAX_CHUNKS 4096

__global__ static void __launch_bounds__(COL_TILE *COL_WARPS) col_chunk_kernel(float *partial, float *out, const float *dy, const float *a,
                                                                                int64_t rows, int64_t n, int64_t chunk_rows, float sign) {
    __shared__ float part[COL_WARPS][COL_TILE + 1];
    int64_t j = (int64_t)blockIdx.x * COL_TILE + threadIdx.x;
    int64_t r0 = (int64_t)blockIdx.y * chunk_rows, r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
    float s = 0.0f;
    if (j < n)
        for (int64_t r = r0 + threadIdx.y; r < r1; r += COL_WARPS) s += dy[r * n + j] * (a ? a[r * n + j] : 1.0f);
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y != 0 || j >= n) return;
    float t = part[0][threadIdx.x];
    for (int w = 1; w < COL_WARPS; w++) t += part[w][threadIdx.x];
    if (gridDim.y == 1) out[j] += sign * t;
    else partial[(int64_t)blockIdx.y * n + j] = t;
}

__global__ static void __launch_bounds__(QB_CUDA_THREADS) col_final_kernel(float *out, const float *partial, int64_t chunks, int64_t n, float sign) {
    QB_GRID_LOOP(j, n) {
        float t = 0.0f;
        for (int64_t c = 0; c < chunks; c++) t += partial[c * n + j];
        out[j] += sign * t;
    }
}

int qb_cuda_column_sums(qb_dev *d, const char *what, float *out, const float *dy, const float *a, int64_t rows, int64_t n, float sign) {
    if (rows <= 0 || n <= 0) return 0;
    int64_t chunk_rows = (rows + COL_MAX_CHUNKS - 1) / COL_MAX_CHUNKS;
    if (chunk_rows < COL_CHUNK_ROWS) chunk_rows = COL_CHUNK_ROWS;
    int64_t chunks = (rows + chunk_rows - 1) / chunk_rows, tiles = (n + COL_TILE - 1) / COL_TILE;
    float *partial = nullptr;
    if (chunks > 1 && !(partial = (float *)qb_cuda_scratch(d, (size_t)(chunks * n) * sizeof(float)))) return -1;
    cudaStream_t s = (cudaStream_t)qb_cuda_stream(d);
    QB_LAUNCH(col_chunk_kernel, dim3((unsigned)tiles, (unsigned)chunks), dim3(COL_TILE, COL_WARPS), 0, s, partial, out, dy, a, rows, n,
              chunk_rows, sign);
    if (chunks > 1 && cudaPeekAtLastError() == cudaSuccess)
        QB_LAUNCH(col_final_kernel, qb_cuda_blocks(n, QB_CUDA_THREADS), QB_CUDA_THREADS, 0, s, out, partial, chunks, n, sign);
    return qb_cuda_status(d, what, cudaGetLastError());
}

extern "C" int qb_cuda_col_sum(qb_dev *d, float *dbias, const float *dy, int64_t rows, int64_t n) {
    return qb_cuda_column_sums(d, "col_sum", dbias, dy, nullptr, rows, n, 1.0f);
}

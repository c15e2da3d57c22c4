/* matmul.c: batched sgemm (oneDNN's or OpenBLAS's; bf16 in gemm_bf16.c), bias rows and bias column sums, on host memory. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include "autograd/cpu/kernels.h"
#ifdef QB_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

/* Batches of small products run one sgemm per thread (OpenBLAS and oneDNN run single-threaded inside a parallel
 * region) instead of one multi-threaded sgemm after another; each batch writes its own output. */
#define SMALL_GEMM_FLOPS (1 << 22)

/* Row-major sgemm: C = alpha * op(A) op(B) + beta * C. */
/* C = beta * C (m x n, leading dim ldc): a product with no inner dim. */
static void scale_c(int64_t m, int64_t n, float beta, float *c, int64_t ldc) {
    if (beta == 1.0f) return;
    for (int64_t r = 0; r < m; r++)
        for (int64_t j = 0; j < n; j++) c[r * ldc + j] = beta == 0.0f ? 0.0f : beta * c[r * ldc + j];
}

bool qb_cpu_have_onednn(void) {
#ifdef QB_HAVE_DNNL
    return true;
#else
    return false;
#endif
}

void qb_cpu_gemm_describe(qb_cpu_gemm_lib lib, char *buf, size_t n) {
#ifdef QB_HAVE_DNNL
    if (lib != QB_CPU_GEMM_OPENBLAS) {
        const dnnl_version_t *v = dnnl_version();
        snprintf(buf, n, "oneDNN %d.%d.%d sgemm", v->major, v->minor, v->patch);
        return;
    }
#endif
    (void)lib;
    snprintf(buf, n, "OpenBLAS sgemm");
}

#ifdef QB_HAVE_DNNL
/* The leading dim of a rows x cols matrix as oneDNN checks it: one row reads no stride (a size-1 dim's may be smaller). */
static inline int64_t one_row_ld(int64_t rows, int64_t cols, int64_t ld) { return rows == 1 && ld < cols ? cols : ld; }
#endif

/* One product through lib; 0, or -1 when oneDNN fails. */
static int gemm1(qb_cpu_gemm_lib lib, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m == 0 || n == 0) return 0;
    if (k == 0) {
        scale_c(m, n, beta, c, ldc);
        return 0;
    }
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    if (ldc < 1) ldc = 1;
#ifdef QB_HAVE_DNNL
    if (lib != QB_CPU_GEMM_OPENBLAS)
        return dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, one_row_ld(ta ? k : m, ta ? m : k, lda), b,
                          one_row_ld(tb ? n : k, tb ? k : n, ldb), beta, c, one_row_ld(m, n, ldc)) == dnnl_success
                   ? 0
                   : -1;
#else
    (void)lib;
#endif
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n,
                (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
    return 0;
}

/* Offset of product p along two batch dims of count[1] inner products each. */
static inline int64_t batch_off(const int64_t *off, const int64_t *count, int64_t p) {
    return (p / count[1]) * off[0] + (p % count[1]) * off[1];
}

int qb_cpu_gemm(qb_dev *d, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const void *a_any, int64_t lda,
                const void *b_any, int64_t ldb, float beta, float *c, int64_t ldc, const qb_gemm_batch *bt) {
    (void)d;
    int64_t batch = bt->count[0] * bt->count[1];
    bool shared_c = bt->c[0] == 0 && bt->c[1] == 0;
    if ((bt->a_bf16 || bt->b_bf16) && bt->precision != QB_PREC_BF16) return -1;
    if (bt->precision == QB_PREC_BF16 && m > 0 && n > 0 && k > 0 && batch > 0)
        return qb_cpu_gemm_bf16(ta, tb, m, n, k, alpha, a_any, lda, b_any, ldb, beta, c, ldc, bt);
    const float *a = a_any, *b = b_any;
    qb_cpu_gemm_lib lib = bt->cpu_gemm;
    int failed = 0;
    if (batch == 1) {
        failed = gemm1(lib, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    } else if (shared_c) {  /* every product adds into one C, in order */
        if (batch == 0) scale_c(m, n, beta, c, ldc);
        for (int64_t p = 0; p < batch && !failed; p++)
            failed = gemm1(lib, ta, tb, m, n, k, alpha, a + batch_off(bt->a, bt->count, p), lda, b + batch_off(bt->b, bt->count, p), ldb,
                           p == 0 ? beta : 1.0f, c, ldc);
    } else {
#pragma omp parallel for schedule(static) reduction(| : failed) if (batch > 1 && m * n * k < SMALL_GEMM_FLOPS)
        for (int64_t p = 0; p < batch; p++)
            failed |= gemm1(lib, ta, tb, m, n, k, alpha, a + batch_off(bt->a, bt->count, p), lda, b + batch_off(bt->b, bt->count, p), ldb,
                            beta, c + batch_off(bt->c, bt->count, p), ldc);
    }
    return failed ? -1 : 0;
}

int qb_cpu_bias_rows(qb_dev *d, float *yp, const float *bp, int64_t rows, int64_t out) {
    (void)d;
#pragma omp parallel for schedule(static) if (rows * out > 65536)
    for (int64_t r = 0; r < rows; r++) memcpy(yp + r * out, bp, (size_t)out * sizeof *bp);
    return 0;
}

/* Each thread sums one contiguous stripe of columns down all rows, in row order (the same sums as one thread). */
int qb_cpu_col_sum(qb_dev *d, float *dbp, const float *dy, int64_t rows, int64_t out) {
    (void)d;
#pragma omp parallel if (rows * out > 65536)
    {
        int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t per = ((out + nt - 1) / nt + 15) / 16 * 16;
        int64_t o0 = t * per < out ? t * per : out, o1 = o0 + per < out ? o0 + per : out;
        float *restrict acc = dbp;
        for (int64_t r = 0; r < rows; r++) {
            const float *restrict row = dy + r * out;
#pragma omp simd
            for (int64_t o = o0; o < o1; o++) acc[o] += row[o];
        }
    }
    return 0;
}

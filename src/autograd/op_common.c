/* op_common.c: see op_internal.h. */
#include <cblas.h>
#include "autograd/op_internal.h"

void qb_accumulate(float *dst, const float *src, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

void qb_accumulate_scaled(float *dst, const float *src, float alpha, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) dst[i] += alpha * src[i];
}

void qb_strided_accumulate(float *dst, const int64_t *dst_stride, const float *src, int ndim, const int64_t *shape) {
    int64_t sh[4] = {1, 1, 1, 1}, st[4] = {0, 0, 0, 0};
    int off = 4 - ndim;
    for (int d = 0; d < ndim; d++) {
        sh[off + d] = shape[d];
        st[off + d] = dst_stride[d];
    }
    int64_t rows = sh[0] * sh[1] * sh[2];
#pragma omp parallel for schedule(static) if (rows * sh[3] > 65536)
    for (int64_t r = 0; r < rows; r++) {
        int64_t c = r % sh[2], b = (r / sh[2]) % sh[1], a = r / (sh[2] * sh[1]);
        float *d = dst + a * st[0] + b * st[1] + c * st[2];
        const float *s = src + r * sh[3];
        for (int64_t e = 0; e < sh[3]; e++) d[e * st[3]] += s[e];
    }
}

void qb_gemm_cpu(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m == 0 || n == 0) return;
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    if (ldc < 1) ldc = 1;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n,
                (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

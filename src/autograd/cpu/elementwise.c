/* elementwise.c: add, sub, mul with broadcasting (forward, gradients) and scale, on host memory. */
#include "autograd/cpu/kernels.h"
#include "autograd/cpu/simd_math.h"

/* Offset into b of a's flat (row-major) element index i. */
static inline int64_t bcast_offset(int64_t i, int nd, const int64_t *shape, const int64_t *bst) {
    int64_t off = 0;
    for (int d = nd - 1; d >= 0; d--) {
        off += (i % shape[d]) * bst[d];
        i /= shape[d];
    }
    return off;
}

static inline float ew_apply(qb_binary_kind kind, float a, float b) {
    return kind == QB_BINARY_ADD ? a + b : kind == QB_BINARY_SUB ? a - b : a * b;
}

/* y = a (op) b: b the same size as a, repeating over a's rows, or broadcast by strides bst. */
QB_MULTIVERSION static void ew_forward_cpu(qb_binary_kind kind, float *restrict y, const float *restrict a, const float *restrict b,
                                           int64_t cnt, int64_t nb, bool flat, int ndim, const int64_t *shape, const int64_t *bst) {
    if (flat) {
        int64_t rows = cnt / (nb ? nb : 1);
#pragma omp parallel for schedule(static) if (cnt > 65536)
        for (int64_t r = 0; r < rows; r++)
#pragma omp simd
            for (int64_t j = 0; j < nb; j++) y[r * nb + j] = ew_apply(kind, a[r * nb + j], b[j]);
        return;
    }
    int64_t w = ndim > 0 ? shape[ndim - 1] : 1, ws = ndim > 0 ? bst[ndim - 1] : 0, nrow = w ? cnt / w : 0;
#pragma omp parallel for schedule(static) if (cnt > 65536)
    for (int64_t r = 0; r < nrow; r++) {
        const float *br = b + bcast_offset(r * w, ndim, shape, bst);
        for (int64_t j = 0; j < w; j++) y[r * w + j] = ew_apply(kind, a[r * w + j], br[j * ws]);
    }
}

int qb_cpu_binary(qb_dev *d, qb_binary_kind kind, float *y, const float *a, const float *b, int64_t n, int64_t nb, bool rows,
                  int ndim, const int64_t *shape, const int64_t *b_stride) {
    (void)d;
    ew_forward_cpu(kind, y, a, b, n, nb, rows, ndim, shape, b_stride);
    return 0;
}

#define GRAD_B_COLS 64

/* g += sign * column sums of dy (times a for mul) over cnt / nb rows of nb; each column sums its rows in order. */
QB_MULTIVERSION static void grad_b_rows_cpu(qb_binary_kind kind, float *restrict g, const float *restrict dy, const float *restrict a,
                                            int64_t cnt, int64_t nb, float sign) {
    int64_t nr = cnt / nb, nblk = (nb + GRAD_B_COLS - 1) / GRAD_B_COLS;
    bool mul = kind == QB_BINARY_MUL;
#pragma omp parallel for schedule(static) if (cnt > 65536)
    for (int64_t bk = 0; bk < nblk; bk++) {
        int64_t j0 = bk * GRAD_B_COLS, w = nb - j0 < GRAD_B_COLS ? nb - j0 : GRAD_B_COLS;
        float s[GRAD_B_COLS] = {0.0f};
        for (int64_t r = 0; r < nr; r++) {
            const float *dyr = dy + r * nb + j0, *ar = a + r * nb + j0;
#pragma omp simd
            for (int64_t j = 0; j < w; j++) s[j] += dyr[j] * (mul ? ar[j] : 1.0f);
        }
        for (int64_t j = 0; j < w; j++) g[j0 + j] += sign * s[j];
    }
}

int qb_cpu_binary_grad_b(qb_dev *d, qb_binary_kind kind, float *g, const float *dy, const float *a, int64_t cnt, int64_t nb,
                         bool rows, int ndim, const int64_t *shape, const int64_t *bst) {
    (void)d;
    float sign = kind == QB_BINARY_SUB ? -1.0f : 1.0f;
    if (nb == cnt) {
#pragma omp parallel for schedule(static) if (cnt > 65536)
        for (int64_t i = 0; i < cnt; i++) g[i] += sign * dy[i] * (kind == QB_BINARY_MUL ? a[i] : 1.0f);
    } else if (rows) {
        if (nb > 0) grad_b_rows_cpu(kind, g, dy, a, cnt, nb, sign);
    } else {
        int64_t w = ndim > 0 ? shape[ndim - 1] : 1, ws = ndim > 0 ? bst[ndim - 1] : 0, nrow = w ? cnt / w : 0;
        for (int64_t r = 0; r < nrow; r++) {
            float *gr = g + bcast_offset(r * w, ndim, shape, bst);
            for (int64_t j = 0; j < w; j++) gr[j * ws] += sign * dy[r * w + j] * (kind == QB_BINARY_MUL ? a[r * w + j] : 1.0f);
        }
    }
    return 0;
}

int qb_cpu_mul_grad_a(qb_dev *d, float *g, float keep, const float *dy, const float *b, int64_t cnt, int ndim, const int64_t *shape,
                      const int64_t *bst) {
    (void)d;
    int64_t w = ndim > 0 ? shape[ndim - 1] : 1, ws = ndim > 0 ? bst[ndim - 1] : 0, nrow = w ? cnt / w : 0;
#pragma omp parallel for schedule(static) if (cnt > 65536)
    for (int64_t r = 0; r < nrow; r++) {
        const float *br = b + bcast_offset(r * w, ndim, shape, bst);
        for (int64_t j = 0; j < w; j++) g[r * w + j] = keep * g[r * w + j] + dy[r * w + j] * br[j * ws];
    }
    return 0;
}

int qb_cpu_scale(qb_dev *d, float *y, const float *x, float s, int64_t cnt) {
    (void)d;
#pragma omp parallel for schedule(static) if (cnt > 65536)
    for (int64_t i = 0; i < cnt; i++) y[i] = x[i] * s;
    return 0;
}

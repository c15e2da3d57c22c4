/* softmax.c: softmax over the last dim of x * scale + mask, forward and backward, on host memory. */
#include <math.h>
#include "autograd/cpu/kernels.h"
#include "autograd/cpu/simd_math.h"
#include "autograd/cpu/softmax_row.h"

int qb_cpu_softmax(qb_dev *d, float *y, const float *x, float scale, const float *mp, const int64_t *sh, const int64_t *mst) {
    (void)d;
    int64_t c = sh[3], rows = sh[0] * sh[1] * sh[2];
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t i2 = r % sh[2], i1 = (r / sh[2]) % sh[1], i0 = r / (sh[2] * sh[1]);
        const float *mr = mp ? mp + i0 * mst[0] + i1 * mst[1] + i2 * mst[2] : NULL;
        qb_softmax_row(y + r * c, x + r * c, mr, mst[3], scale, c);
    }
    return 0;
}

int qb_cpu_softmax_grad(qb_dev *d, float *g, float keep, const float *yp, const float *dy, float scale, int64_t rows, int64_t c) {
    (void)d;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = yp + r * c, *dyr = dy + r * c;
        float dot = 0.0f;
        for (int64_t j = 0; j < c; j++) dot += yr[j] * dyr[j];
        for (int64_t j = 0; j < c; j++) g[r * c + j] = keep * g[r * c + j] + scale * yr[j] * (dyr[j] - dot);
    }
    return 0;
}

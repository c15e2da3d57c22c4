/* shape.c: strided gather (contiguous) and strided accumulate (view backwards) on host memory. */
#include "autograd/cpu/kernels.h"

/* Shape and strides right-aligned into 4 dims (leading 1s, stride 0). */
static void to4(int ndim, const int64_t *shape, const int64_t *stride, int64_t *sh, int64_t *st) {
    int off = 4 - ndim;
    for (int d = 0; d < 4; d++) {
        sh[d] = 1;
        st[d] = 0;
    }
    for (int d = 0; d < ndim; d++) {
        sh[off + d] = shape[d];
        st[off + d] = stride[d];
    }
}

int qb_cpu_copy_strided(qb_dev *dv, float *dst, const float *src, int ndim, const int64_t *shape, const int64_t *src_stride) {
    (void)dv;
    int64_t sh[4], st[4];
    to4(ndim, shape, src_stride, sh, st);
    int64_t rows = sh[0] * sh[1] * sh[2];
#pragma omp parallel for schedule(static) if (rows * sh[3] > 65536)
    for (int64_t r = 0; r < rows; r++) {
        int64_t c = r % sh[2], b = (r / sh[2]) % sh[1], a = r / (sh[2] * sh[1]);
        const float *s = src + a * st[0] + b * st[1] + c * st[2];
        float *d = dst + r * sh[3];
        for (int64_t e = 0; e < sh[3]; e++) d[e] = s[e * st[3]];
    }
    return 0;
}

int qb_cpu_accumulate_strided(qb_dev *dv, float *dst, const int64_t *dst_stride, const float *src, int ndim, const int64_t *shape) {
    (void)dv;
    int64_t sh[4], st[4];
    to4(ndim, shape, dst_stride, sh, st);
    int64_t rows = sh[0] * sh[1] * sh[2];
#pragma omp parallel for schedule(static) if (rows * sh[3] > 65536)
    for (int64_t r = 0; r < rows; r++) {
        int64_t c = r % sh[2], b = (r / sh[2]) % sh[1], a = r / (sh[2] * sh[1]);
        float *d = dst + a * st[0] + b * st[1] + c * st[2];
        const float *s = src + r * sh[3];
        for (int64_t e = 0; e < sh[3]; e++) d[e * st[3]] += s[e];
    }
    return 0;
}

/* memory.c: allocation, fill, copies and axpy on host memory. */
#include <stdlib.h>
#include <string.h>
#include "autograd/cpu/kernels.h"

void *qb_cpu_alloc(qb_dev *d, size_t bytes) {
    (void)d;
    if (bytes == 0) bytes = 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, (bytes + 63) & ~(size_t)63) != 0) return NULL;
    return p;
}

void qb_cpu_release(qb_dev *d, void *p) {
    (void)d;
    free(p);
}

const char *qb_cpu_error_message(qb_dev *d) {
    (void)d;
    return "out of host memory";
}

int qb_cpu_fill(qb_dev *d, float *x, int64_t n, float value) {
    (void)d;
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) x[i] = value;
    return 0;
}

int qb_cpu_memcpy(qb_dev *d, void *dst, const void *src, size_t bytes) {
    (void)d;
    if (bytes) memcpy(dst, src, bytes);
    return 0;
}

int qb_cpu_axpy(qb_dev *d, float *dst, const float *src, float alpha, int64_t n) {
    (void)d;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) dst[i] += alpha * src[i];
    return 0;
}

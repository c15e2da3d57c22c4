/* device.c: see device.h. */
#include "autograd/device.h"

#include <stdlib.h>
#include "autograd/cuda/backend.h"

void *qb_device_malloc(qb_device dev, size_t bytes) {
    if (bytes == 0) bytes = 64;
    if (dev == QB_CUDA) return qb_cuda_malloc(bytes);
    void *p = NULL;
    if (posix_memalign(&p, 64, (bytes + 63) & ~(size_t)63) != 0) return NULL;
    return p;
}

void qb_device_free(qb_device dev, void *p) {
    if (!p) return;
    if (dev == QB_CUDA) qb_cuda_free(p);
    else free(p);
}

const char *qb_device_name(qb_device dev) { return dev == QB_CUDA ? "cuda" : "cpu"; }

/* embedding.c: embedding lookup and its deterministic scatter-add gradient, on host memory. */
#include <string.h>
#include "autograd/cpu/kernels.h"

int qb_cpu_embedding(qb_dev *d, float *y, const float *weight, const int32_t *ids, int64_t cnt, int64_t h) {
    (void)d;
#pragma omp parallel for schedule(static) if (cnt * h > 65536)
    for (int64_t t = 0; t < cnt; t++) memcpy(y + t * h, weight + (int64_t)ids[t] * h, (size_t)h * sizeof(float));
    return 0;
}

int qb_cpu_embedding_grad(qb_dev *d, float *g, const float *dy, const int32_t *ids, int64_t cnt, int64_t h, int64_t pad) {
    (void)d;
    /* columns split across threads: each id row is summed in the same order whatever the thread count */
#pragma omp parallel for schedule(static)
    for (int64_t j0 = 0; j0 < h; j0 += 16) {
        int64_t j1 = j0 + 16 < h ? j0 + 16 : h;
        for (int64_t t = 0; t < cnt; t++) {
            if (ids[t] == pad) continue;
            for (int64_t j = j0; j < j1; j++) g[(int64_t)ids[t] * h + j] += dy[t * h + j];
        }
    }
    return 0;
}

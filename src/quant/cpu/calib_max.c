/* calib_max.c: max|x| per channel with a NaN/Inf flag, on host memory. */
#include <math.h>
#include "quant/cpu/kernels.h"

int qb_cpu_amax_reduce(qb_dev *d, float *amax, int32_t *bad, const float *x, int64_t outer, int64_t channels, int64_t inner) {
    (void)d;
    int nonfinite = 0;
    for (int64_t c = 0; c < channels; c++) amax[c] = 0.0f;
    if (channels == 1) {
        const int64_t n = outer * inner;
        float m = 0.0f;
#pragma omp parallel for simd schedule(static) reduction(max : m) reduction(| : nonfinite) if (n > 32768)
        for (int64_t i = 0; i < n; i++) {
            float a = fabsf(x[i]);
            nonfinite |= !(a <= 3.402823466e38f);
            m = a > m ? a : m;
        }
        amax[0] = m;
    } else {
#pragma omp parallel for schedule(static) reduction(| : nonfinite) if (outer * channels * inner > 32768)
        for (int64_t c = 0; c < channels; c++) {
            float m = 0.0f;
            for (int64_t o = 0; o < outer; o++) {
                const float *row = x + (o * channels + c) * inner;
                for (int64_t i = 0; i < inner; i++) {
                    float a = fabsf(row[i]);
                    nonfinite |= !(a <= 3.402823466e38f);
                    m = a > m ? a : m;
                }
            }
            amax[c] = m;
        }
    }
    bad[0] = nonfinite != 0;
    return 0;
}

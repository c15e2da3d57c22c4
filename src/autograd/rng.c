/* rng.c: see rng.h. */
#include "autograd/rng.h"

#include <math.h>

void qb_rng_normal(float *out, int64_t n, float mean, float std, uint64_t seed, uint64_t offset) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        uint64_t c = offset + 2 * (uint64_t)i;
        double u1 = ((double)(qb_rng_bits(seed, c) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
        double u2 = (double)(qb_rng_bits(seed, c + 1) >> 11) * (1.0 / 9007199254740992.0);
        out[i] = mean + std * (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
    }
}

void qb_rng_fill_uniform(float *out, int64_t n, float lo, float hi, uint64_t seed, uint64_t offset) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = lo + (hi - lo) * qb_rng_uniform(seed, offset + (uint64_t)i);
}

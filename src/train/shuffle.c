/* shuffle.c: see shuffle.h. */
#include "train/shuffle.h"

#include "autograd/rng.h"

void qb_permutation(int64_t *idx, int64_t n, uint64_t seed, uint64_t stream) {
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    uint64_t base = stream << 40;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(qb_rng_bits(seed, base + (uint64_t)i) % (uint64_t)(i + 1));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

/* shuffle.h: seeded permutations for data order (one per epoch; the same for the same seed and stream). */
#pragma once
#include <stdint.h>

/* Fills idx with a permutation of 0..n-1 (Fisher-Yates) drawn from stream `stream` of seed. */
void qb_permutation(int64_t *idx, int64_t n, uint64_t seed, uint64_t stream);

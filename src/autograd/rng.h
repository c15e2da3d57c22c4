/* rng.h: a counter-based RNG: value i of stream (seed, offset) does not depend on thread count or order. */
#pragma once
#include <stdint.h>

/* 64 random bits for counter `i` under `seed` (splitmix64 of a keyed counter). */
static inline uint64_t qb_rng_bits(uint64_t seed, uint64_t i) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + i * 0xD1B54A32D192ED03ull + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform float in [0, 1) with 24 random bits. */
static inline float qb_rng_uniform(uint64_t seed, uint64_t i) {
    return (float)(qb_rng_bits(seed, i) >> 40) * (1.0f / 16777216.0f);
}

/* Fills out[0..n) with N(mean, std) from counters offset..offset+n (Box-Muller, two counters per value). */
void qb_rng_normal(float *out, int64_t n, float mean, float std, uint64_t seed, uint64_t offset);
/* Fills out[0..n) with U[lo, hi) from counters offset..offset+n. */
void qb_rng_fill_uniform(float *out, int64_t n, float lo, float hi, uint64_t seed, uint64_t offset);

/* rng.h: a counter-based RNG: value i of stream (seed, offset) does not depend on thread count or order. */
#pragma once
#include <stdint.h>

/* The inline generators below also run in CUDA kernels (the same bits on both sides). */
#ifdef __CUDACC__
#define QB_RNG_FN static inline __host__ __device__
#else
#define QB_RNG_FN static inline
#endif

/* 64 random bits for counter `i` under `seed` (splitmix64 of a keyed counter). */
QB_RNG_FN uint64_t qb_rng_bits(uint64_t seed, uint64_t i) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + i * 0xD1B54A32D192ED03ull + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform float in [0, 1) with 24 random bits. */
QB_RNG_FN float qb_rng_uniform(uint64_t seed, uint64_t i) {
    return (float)(qb_rng_bits(seed, i) >> 40) * (1.0f / 16777216.0f);
}

/* 32 random bits for counter `i` under a 32-bit key: 32-bit arithmetic only, so loops over i vectorise
 * (used for dropout masks). The key comes from qb_rng_key32. */
QB_RNG_FN uint32_t qb_rng_bits32(uint32_t key, uint64_t i) {
    uint32_t h = (uint32_t)i * 0x9E3779B1u ^ (uint32_t)(i >> 32) * 0x85EBCA77u ^ key;
    h ^= h >> 16;
    h *= 0x7FEB352Du;
    h ^= h >> 15;
    h *= 0x846CA68Bu;
    h ^= h >> 16;
    return h;
}

/* The 32-bit key of a 64-bit seed. */
QB_RNG_FN uint32_t qb_rng_key32(uint64_t seed) { return (uint32_t)(qb_rng_bits(seed, 0x5EEDull) >> 32); }

/* Uniform float in [0, 1) with 24 random bits from qb_rng_bits32. */
QB_RNG_FN float qb_rng_uniform32(uint32_t key, uint64_t i) { return (float)(qb_rng_bits32(key, i) >> 8) * (1.0f / 16777216.0f); }

/* Fills out[0..n) with N(mean, std) from counters offset..offset+n (Box-Muller, two counters per value). */
void qb_rng_normal(float *out, int64_t n, float mean, float std, uint64_t seed, uint64_t offset);
/* Fills out[0..n) with U[lo, hi) from counters offset..offset+n. */
void qb_rng_fill_uniform(float *out, int64_t n, float lo, float hi, uint64_t seed, uint64_t offset);

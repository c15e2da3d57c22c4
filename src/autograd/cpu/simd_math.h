/* simd_math.h: declares glibc's libmvec vector variants of the float math functions, so loops marked
 * `omp simd` call them (4 to 16 lanes) instead of the scalar functions; accuracy within 4 ulp (libmvec's bound). */
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

#pragma omp declare simd notinbranch
float erff(float);
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float tanhf(float);
#pragma omp declare simd notinbranch
float logf(float);
#pragma omp declare simd notinbranch
float log1pf(float);

/* Compiles a hot loop function for AVX-512, AVX2 and baseline x86-64, picked at load time. */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define QB_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define QB_MULTIVERSION
#endif
/* QB_MULTIVERSION for a static function defined in a header and called from several files: clang 14 gives every file's
 * copy one global resolver symbol (a multiple definition at link time), so under clang it is compiled once, baseline. */
#ifdef __clang__
#define QB_MULTIVERSION_IN_HEADER
#else
#define QB_MULTIVERSION_IN_HEADER QB_MULTIVERSION
#endif

/* expf declared without side effects (errno is never read here): loops that call it and also select (fake_quant_one's
 * clamps) still if-convert and vectorise, as they do with erff. */
#pragma omp declare simd notinbranch
__attribute__((const)) float qb_expf_pure(float) __asm__("expf");

/* expf(v), with 0 for v < -87 (where the result is below FLT_MIN): libmvec's vector expf computes an underflowing lane
 * by a scalar call (errno, about 20x the vector cost), as the masked keys of every softmax row do. Bit selects, no
 * branch, so loops that call it still vectorise; NaN stays NaN. */
static inline float qb_expf_flush(float v) {
    uint32_t keep = 0u - (uint32_t)!(v < -87.0f), vb, cb, eb;
    float c = -87.0f, w, e;
    memcpy(&vb, &v, sizeof vb);
    memcpy(&cb, &c, sizeof cb);
    vb = (vb & keep) | (cb & ~keep);
    memcpy(&w, &vb, sizeof w);
    e = qb_expf_pure(w);
    memcpy(&eb, &e, sizeof eb);
    eb &= keep;
    memcpy(&e, &eb, sizeof e);
    return e;
}

/* simd_math.h: declares glibc's libmvec vector variants of the float math functions, so loops marked
 * `omp simd` call them (4 to 16 lanes) instead of the scalar functions; accuracy within 4 ulp (libmvec's bound). */
#pragma once
#include <math.h>

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

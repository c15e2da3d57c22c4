/* softmax_row.h: one row of the CPU's softmax, shared by softmax.c and the fused softmax + fake quant of
 * src/quant/cpu/fused.c so that both give the same bits (include simd_math.h first for the vector expf and
 * QB_MULTIVERSION_IN_HEADER; only files that call it include it). */
#pragma once
#include <math.h>
#include <stdint.h>

/* yr = softmax(xr * scale + mr[j * mstride]) over c (mr NULL: no mask); a max pass, an exp-and-sum pass, a scale pass.
 * Compiled per ISA (QB_MULTIVERSION_IN_HEADER) and called, not inlined, so that every caller gets the same vector width and bits. */
QB_MULTIVERSION_IN_HEADER static void qb_softmax_row(float *restrict yr, const float *restrict xr, const float *restrict mr,
                                                     int64_t mstride, float scale, int64_t c) {
    float mx = -INFINITY;
    if (!mr) {
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < c; j++) {
            float v = xr[j] * scale + 0.0f;
            yr[j] = v;
            mx = v > mx ? v : mx;
        }
    } else if (mstride == 1) {
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < c; j++) {
            float v = xr[j] * scale + mr[j];
            yr[j] = v;
            mx = v > mx ? v : mx;
        }
    } else {
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < c; j++) {
            float v = xr[j] * scale + mr[j * mstride];
            yr[j] = v;
            mx = v > mx ? v : mx;
        }
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < c; j++) {
        float e = qb_expf_flush(yr[j] - mx);
        yr[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t j = 0; j < c; j++) yr[j] *= inv;
}

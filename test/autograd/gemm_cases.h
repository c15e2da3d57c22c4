/* gemm_cases.h: the CPU GEMM test cases (the model's shapes: transposes, alpha and beta, batches of strided head views,
 * a shared operand, shared outputs, odd leading dims) with their operand spans and random inputs; shared by
 * test_cpu_bf16 and test_cpu_gemm. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include "autograd/autograd.h"

typedef struct gemm_case {
    const char *name;
    bool ta, tb;
    int64_t m, n, k, lda, ldb, ldc;
    qb_gemm_batch bt;
    float alpha, beta;
} gemm_case;

#define ONE {{1, 1}, {0, 0}, {0, 0}, {0, 0}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}
static const gemm_case cases[] = {
    {"linear forward 256x768x768 (nt, beta 1)", false, true, 256, 768, 768, 768, 768, 768, ONE, 1.0f, 1.0f},
    {"linear dW 768x384x256 (tn, beta 1)", true, false, 768, 384, 256, 768, 384, 384, ONE, 1.0f, 1.0f},
    {"ffn dx 128x384x1536 (nn)", false, false, 128, 384, 1536, 1536, 384, 384, ONE, 1.0f, 0.0f},
    {"odd leading dims (tt, alpha 2, beta -1)", true, true, 19, 23, 33, 37, 35, 31, ONE, 2.0f, -1.0f},
    {"attention scores [2, 12] on head views (nt)", false, true, 128, 128, 64, 768, 768, 128,
     {{2, 12}, {128 * 768, 64}, {128 * 768, 64}, {12 * 128 * 128, 128 * 128}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 0.125f, 0.0f},
    {"head-view gradient [2, 12] dV = P^T dC (tn, beta 1)", true, false, 128, 64, 128, 128, 64, 768,
     {{2, 12}, {12 * 128 * 128, 128 * 128}, {12 * 128 * 64, 128 * 64}, {128 * 768, 64}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 1.0f, 1.0f},
    {"shared B over a batch (nn, [2, 3])", false, false, 20, 16, 24, 24, 16, 16,
     {{2, 3}, {3 * 20 * 24, 20 * 24}, {0, 0}, {3 * 20 * 16, 20 * 16}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 1.0f, 0.0f},
    {"shared A over a batch (tn, [2, 3])", true, false, 20, 16, 24, 20, 16, 16,
     {{2, 3}, {0, 0}, {3 * 24 * 16, 24 * 16}, {3 * 20 * 16, 20 * 16}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 1.0f, 0.0f},
    {"shared output, in product order (tn, [3, 4], alpha 0.75, beta 0.5)", true, false, 64, 96, 32, 64, 96, 96,
     {{3, 4}, {4 * (32 * 64 + 16), 32 * 64 + 16}, {4 * 32 * 96, 32 * 96}, {0, 0}, QB_PREC_FP32, false, false, QB_CPU_GEMM_DEFAULT}, 0.75f, 0.5f},
};
static const int n_cases = (int)(sizeof cases / sizeof cases[0]);

static int64_t span(const int64_t off[2], const int64_t count[2], int64_t rows, int64_t cols, int64_t ld) {
    return (count[0] - 1) * off[0] + (count[1] - 1) * off[1] + (rows - 1) * ld + cols;
}

/* The element spans of case g's A, B and C over its batch (a shared C: one matrix). */
static inline void gemm_case_spans(const gemm_case *g, int64_t *na, int64_t *nb, int64_t *nc) {
    static const int64_t one[2] = {1, 1};
    bool shared = g->bt.c[0] == 0 && g->bt.c[1] == 0;
    *na = span(g->bt.a, g->bt.count, g->ta ? g->k : g->m, g->ta ? g->m : g->k, g->lda);
    *nb = span(g->bt.b, g->bt.count, g->tb ? g->n : g->k, g->tb ? g->k : g->n, g->ldb);
    *nc = span(g->bt.c, shared ? one : g->bt.count, g->m, g->n, g->ldc);
}

static float *randn(int64_t n, uint64_t seed) {
    float *x = malloc((size_t)n * sizeof(float));
    if (!x) abort();
    qb_rng_normal(x, n, 0.0f, 1.0f, seed, 0);
    return x;
}

/* bench_gemm.h: GEMM GFLOP/s over the linear-layer shapes of one BERT training step (tokens x out x in for the
 * attention projections and both FFN layers; forward y = x W^T, backward dx = dy W and dW = dy^T x), through any
 * GEMM given as a callback; and the PyTorch peer's rate on the same shapes (bench/bench_gemm_torch.py).
 * Shared by bench_model and bench_gemm. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_util.h"

/* Row-major C[m,n] = op(A)[m,k] op(B)[k,n]; a and b hold elements of the callback's own type. */
typedef void (*bench_gemm_fn)(void *ctx, bool ta, bool tb, int m, int n, int k, const void *a, int lda, const void *b, int ldb,
                              float *c, int ldc);

/* GFLOP/s over the step's shapes: per shape and layout, the median of `reps` timed calls after one warm-up;
 * elem: bytes per input element (4 for fp32, 2 for bf16). Returns -1 when out of memory. */
static inline double bench_gemm_rate(bench_gemm_fn fn, void *ctx, size_t elem, int64_t tokens, int64_t h, int64_t inter, int reps) {
    int64_t shapes[3][3] = {{tokens, h, h}, {tokens, inter, h}, {tokens, h, inter}};
    size_t big = (size_t)(tokens > inter ? tokens : inter) * (size_t)(inter > h ? inter : h);
    unsigned char *a = malloc(big * elem), *b = malloc(big * elem);
    float *c = malloc(big * sizeof(float));
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return -1;
    }
    for (size_t i = 0; i < big * elem; i++) a[i] = b[i] = (unsigned char)(elem == 4 ? (i % 4 == 3 ? 0x3c : 0) : (i % 2 ? 0x3c : 0));
    memset(c, 0, big * sizeof(float));
    double flops = 0, secs = 0, t[64];
    if (reps > 64) reps = 64;
    for (int s = 0; s < 3; s++)
        for (int l = 0; l < 3; l++) {
            int m = (int)shapes[s][0], n = (int)shapes[s][1], k = (int)shapes[s][2];
            for (int r = -1; r < reps; r++) {
                double t0 = bench_now();
                if (l == 0) fn(ctx, false, true, m, n, k, a, k, b, k, c, n);       /* y = x W^T */
                else if (l == 1) fn(ctx, false, false, m, k, n, a, n, b, k, c, k); /* dx = dy W */
                else fn(ctx, true, false, n, k, m, a, n, b, k, c, k);               /* dW = dy^T x */
                if (r >= 0) t[r] = bench_now() - t0;
            }
            secs += bench_median(t, reps);
            flops += 2.0 * m * n * k;
        }
    free(a);
    free(b);
    free(c);
    return flops / secs * 1e-9;
}

/* Runs bench/bench_gemm_torch.py with $QB_TORCH_PYTHON on the same shapes; fills its fp32 and bf16 GFLOP/s and its
 * version line. Returns 0, or -1 when the peer is not configured or failed. */
static inline int bench_gemm_torch(int64_t tokens, int64_t h, int64_t inter, int reps, double *fp32, double *bf16, char *version,
                                   size_t version_n) {
    const char *py = getenv("QB_TORCH_PYTHON"), *root = getenv("QB_SOURCE_ROOT");
    if (!py || !*py) return -1;
    char cmd[4400], line[512];
    snprintf(cmd, sizeof cmd, "%s %s/bench/bench_gemm_torch.py %lld %lld %lld %d", py, root ? root : ".", (long long)tokens,
             (long long)h, (long long)inter, reps);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    int got = 0;
    while (fgets(line, sizeof line, p)) {
        if (sscanf(line, "torch_gemm fp32 %lf bf16 %lf", fp32, bf16) == 2) got = 1;
        else if (!strncmp(line, "torch ", 6) && version) snprintf(version, version_n, "%.*s", (int)strcspn(line, "\n"), line);
    }
    return pclose(p) == 0 && got ? 0 : -1;
}

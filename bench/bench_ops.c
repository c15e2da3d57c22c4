/* bench_ops.c: engine ops on BERT-base shapes next to OpenBLAS's own sgemm rate and memcpy bandwidth, measured in
 * the same run. Prints medians over repeats. Run: ./build/bench/bench_ops [repeats]
 * Optional peer: QB_TORCH_PYTHON=/path/to/python runs bench/bench_ops_torch.py on the same shapes afterwards. */
#include "bench_util.h"
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "autograd/autograd.h"
#include "base/blas_core.h"

typedef struct bench_env {
    qb_ctx *ctx;
    int repeats;
    double sgemm_gflops, memcpy_gbs;
} bench_env;

/* Runs fn (forward, and backward when with_grad) `repeats` times after one warm-up; returns the median seconds of
 * forward and backward separately. */
typedef qb_tensor *(*op_fn)(qb_ctx *ctx, qb_tensor **in);

static void time_op(bench_env *b, const char *name, op_fn fn, int n_in, int64_t shapes[][4], const int *ndims, double flops_fwd,
                    double bytes_fwd, double flops_bwd, double bytes_bwd) {
    double tf[64], tb[64];
    int reps = b->repeats < 64 ? b->repeats : 64;
    for (int r = -1; r < reps; r++) {
        qb_ctx_step_reset(b->ctx);
        qb_tensor *in[4];
        for (int i = 0; i < n_in; i++) {
            in[i] = qb_new(b->ctx, ndims[i], shapes[i]);
            qb_fill_normal(b->ctx, in[i], 0.0f, 1.0f);
            in[i]->requires_grad = true;
        }
        double t0 = bench_now();
        qb_tensor *out = fn(b->ctx, in);
        double t1 = bench_now();
        if (!out) {
            fprintf(stderr, "bench %s: %s\n", name, b->ctx->err.msg);
            exit(1);
        }
        qb_tensor *g = qb_grad(b->ctx, out);
        qb_fill(b->ctx, g, 1.0f);
        double t2 = bench_now();
        for (int k = b->ctx->n_tape - 1; k >= 0; k--) b->ctx->tape[k]->backward(b->ctx, b->ctx->tape[k]);
        double t3 = bench_now();
        if (r >= 0) {
            tf[r] = t1 - t0;
            tb[r] = t3 - t2;
        }
    }
    double f = bench_median(tf, reps), bw = bench_median(tb, reps);
    if (flops_fwd > 0)
        printf("%-26s fwd %8.3f ms %7.1f GFLOP/s (%4.0f%% of sgemm)   bwd %8.3f ms %7.1f GFLOP/s (%4.0f%% of sgemm)\n", name, 1e3 * f,
               flops_fwd / f * 1e-9, 100 * flops_fwd / f * 1e-9 / b->sgemm_gflops, 1e3 * bw, flops_bwd / bw * 1e-9,
               100 * flops_bwd / bw * 1e-9 / b->sgemm_gflops);
    else
        printf("%-26s fwd %8.3f ms %7.1f GB/s    (%4.0f%% of memcpy)   bwd %8.3f ms %7.1f GB/s    (%4.0f%% of memcpy)\n", name, 1e3 * f,
               bytes_fwd / f * 1e-9, 100 * bytes_fwd / f * 1e-9 / b->memcpy_gbs, 1e3 * bw, bytes_bwd / bw * 1e-9,
               100 * bytes_bwd / bw * 1e-9 / b->memcpy_gbs);
}

static qb_tensor *op_linear(qb_ctx *c, qb_tensor **in) { return qb_linear(c, in[0], in[1], in[2]); }
static qb_tensor *op_attn_scores(qb_ctx *c, qb_tensor **in) { return qb_matmul(c, in[0], in[1], false, true); }
static qb_tensor *op_add(qb_ctx *c, qb_tensor **in) { return qb_add(c, in[0], in[1]); }
static qb_tensor *op_gelu(qb_ctx *c, qb_tensor **in) { return qb_gelu(c, in[0]); }
static qb_tensor *op_layernorm(qb_ctx *c, qb_tensor **in) { return qb_layernorm(c, in[0], in[1], in[2], 1e-12f); }
static qb_tensor *op_softmax(qb_ctx *c, qb_tensor **in) { return qb_softmax(c, in[0], 0.125f, NULL); }
static qb_tensor *op_dropout(qb_ctx *c, qb_tensor **in) { return qb_dropout(c, in[0], 0.1f); }

int main(int argc, char **argv) {
    int repeats = argc > 1 ? atoi(argv[1]) : 7;
    if (repeats < 1) repeats = 1;
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    if (!ctx) qb_die("bench_ops", &err);
    ctx->training = true;
    bench_env b = {ctx, repeats, 0, 0};
    char blas[1024];
    qb_blas_core_summary(blas, sizeof blas);
    printf("threads %d, %s\n", omp_get_max_threads(), blas);

    /* peak references: OpenBLAS sgemm on the FFN shape, memcpy on 12 MiB */
    const int64_t M = 1024, K = 768, N = 3072;
    float *A = malloc(M * K * 4), *B = malloc(N * K * 4), *C = malloc(M * N * 4);
    qb_rng_fill_uniform(A, M * K, -1, 1, 1, 0);
    qb_rng_fill_uniform(B, N * K, -1, 1, 2, 0);
    double t[64];
    for (int r = -1; r < repeats && r < 64; r++) {
        double t0 = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
        if (r >= 0) t[r] = bench_now() - t0;
    }
    b.sgemm_gflops = 2.0 * M * N * K / bench_median(t, repeats < 64 ? repeats : 64) * 1e-9;
    size_t bytes = (size_t)M * N * 4;
    float *D = malloc(bytes);
    for (int r = -1; r < repeats && r < 64; r++) {
        double t0 = bench_now();
        memcpy(D, C, bytes);
        if (r >= 0) t[r] = bench_now() - t0;
    }
    b.memcpy_gbs = 2.0 * (double)bytes / bench_median(t, repeats < 64 ? repeats : 64) * 1e-9;
    printf("reference: OpenBLAS sgemm %dx%dx%d %.1f GFLOP/s; memcpy %.1f GB/s (read+write, %zu MiB)\n\n", (int)M, (int)N, (int)K,
           b.sgemm_gflops, b.memcpy_gbs, bytes >> 20);
    free(A);
    free(B);
    free(C);
    free(D);

    double f = 2.0 * M * N * K;
    time_op(&b, "linear 1024x768->3072", op_linear, 3, (int64_t[][4]){{M, K}, {N, K}, {N}}, (int[]){2, 2, 1}, f, 0, 2 * f, 0);
    time_op(&b, "linear 1024x3072->768", op_linear, 3, (int64_t[][4]){{M, N}, {K, N}, {K}}, (int[]){2, 2, 1}, f, 0, 2 * f, 0);
    double fa = 2.0 * 96 * 128 * 128 * 64;
    time_op(&b, "attn QK^T [8,12,128,64]", op_attn_scores, 2, (int64_t[][4]){{8, 12, 128, 64}, {8, 12, 128, 64}}, (int[]){4, 4}, fa, 0,
            2 * fa, 0);
    double e = (double)M * K * 4;  /* bytes of one [1024, 768] float tensor */
    time_op(&b, "add [1024,768]", op_add, 2, (int64_t[][4]){{M, K}, {M, K}}, (int[]){2, 2}, 0, 3 * e, 0, 4 * e);
    double e4 = (double)M * N * 4;
    time_op(&b, "gelu [1024,3072]", op_gelu, 1, (int64_t[][4]){{M, N}}, (int[]){2}, 0, 2 * e4, 0, 4 * e4);
    time_op(&b, "layernorm [1024,768]", op_layernorm, 3, (int64_t[][4]){{M, K}, {K}, {K}}, (int[]){2, 1, 1}, 0, 2 * e, 0, 5 * e);
    double es = 96.0 * 128 * 128 * 4;
    time_op(&b, "softmax [8,12,128,128]", op_softmax, 1, (int64_t[][4]){{8, 12, 128, 128}}, (int[]){4}, 0, 2 * es, 0, 4 * es);
    time_op(&b, "dropout [1024,3072]", op_dropout, 1, (int64_t[][4]){{M, N}}, (int[]){2}, 0, 2 * e4, 0, 3 * e4);
    qb_ctx_free(ctx);

    const char *py = getenv("QB_TORCH_PYTHON");
    if (py && *py) {
        char cmd[4200];
        const char *root = getenv("QB_SOURCE_ROOT");
        snprintf(cmd, sizeof cmd, "%s %s/bench/bench_ops_torch.py %d", py, root ? root : ".", repeats);
        printf("\npeer (PyTorch, same machine, same thread count):\n");
        fflush(stdout);
        if (system(cmd) != 0) fprintf(stderr, "bench_ops: the PyTorch peer failed\n");
    }
    return 0;
}

/* bench_quant.c: fake-quant forward+backward throughput next to memcpy bandwidth, and calibration collection
 * throughput, on BERT-base activation sizes. Usage: bench_quant [reps] */
#include "bench_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "quant/quant.h"

static void fill(float *x, int64_t n) {
    uint64_t s = 42;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = ((float)((s >> 40) & 0xFFFFFF) / 16777216.0f - 0.5f) * 8.0f;
    }
}

int main(int argc, char **argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 10;
    const int64_t sizes[2][3] = {{8, 128, 768}, {8, 128, 3072}};
    quant_desc d = quant_desc_default();
    qb_err err = {0};
    printf("%-14s %10s %10s %12s %12s %12s %14s %14s %12s\n", "tensor", "memcpy", "fq_fwd", "fq_bwd", "fq_fwd+bwd",
           "op_fwd+bwd", "hist_modelopt", "hist_pq21", "max_calib");
    printf("%-14s %10s %10s %12s %12s %12s %14s %14s %12s\n", "", "GB/s", "GB/s", "GB/s", "GB/s", "GB/s", "Melem/s",
           "Melem/s", "Melem/s");
    for (int s = 0; s < 2; s++) {
        const int64_t n = sizes[s][0] * sizes[s][1] * sizes[s][2];
        const size_t bytes = (size_t)n * sizeof(float);
        float *x = malloc(bytes), *y = malloc(bytes), *gy = malloc(bytes), *gx = malloc(bytes);
        if (!x || !y || !gy || !gx) return 1;
        fill(x, n);
        fill(gy, n);
        memset(gx, 0, bytes);
        double t_cpy = 1e9, t_fwd = 1e9, t_bwd = 1e9, t_op = 1e9, t_hm = 1e9, t_hn = 1e9, t_max = 1e9;
        for (int r = 0; r < reps + 1; r++) {
            double t0 = bench_now();
            memcpy(y, x, bytes);
            double t1 = bench_now();
            fake_quant_per_tensor(y, x, n, 3.5f, &d);
            double t2 = bench_now();
            fake_quant_ste_backward_per_tensor(gx, gy, x, n, 3.5f, 1.0f);
            double t3 = bench_now();
            if (r) {
                t_cpy = t1 - t0 < t_cpy ? t1 - t0 : t_cpy;
                t_fwd = t2 - t1 < t_fwd ? t2 - t1 : t_fwd;
                t_bwd = t3 - t2 < t_bwd ? t3 - t2 : t_bwd;
            }
        }
        qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
        if (!ctx) return 1;
        qb_tensor *xp = qb_param_new(ctx, "x", 3, sizes[s]);
        qb_copy_from_host(ctx, xp, x);
        const float amax = 3.5f;
        for (int r = 0; r < reps + 1; r++) {
            qb_ctx_step_reset(ctx);
            double t0 = bench_now();
            qb_tensor *out = qb_fake_quant(ctx, xp, &amax, 1, &d);
            if (!out || qb_backward_with_grad(ctx, out, gy)) {
                fprintf(stderr, "bench_quant: %s\n", ctx->err.msg);
                return 1;
            }
            double t1 = bench_now();
            if (r) t_op = t1 - t0 < t_op ? t1 - t0 : t_op;
        }
        qb_ctx_free(ctx);
        quant_desc hd = d;
        hd.calib = CALIB_HISTOGRAM;
        for (int r = 0; r < reps + 1; r++) {
            calib_histogram hm, hn;
            hd.hist_semantics = HIST_MODELOPT;
            calib_histogram_init(&hm, &hd);
            hd.hist_semantics = HIST_PQ21_NUMPY;
            calib_histogram_init(&hn, &hd);
            calib_max cm;
            calib_max_init(&cm, -1);
            double t0 = bench_now();
            calib_histogram_collect(&hm, x, n, "bench", &err);
            double t1 = bench_now();
            calib_histogram_collect(&hn, x, n, "bench", &err);
            double t2 = bench_now();
            calib_max_collect(&cm, x, 3, sizes[s], "bench", &err);
            double t3 = bench_now();
            if (r) {
                t_hm = t1 - t0 < t_hm ? t1 - t0 : t_hm;
                t_hn = t2 - t1 < t_hn ? t2 - t1 : t_hn;
                t_max = t3 - t2 < t_max ? t3 - t2 : t_max;
            }
            calib_histogram_free(&hm);
            calib_histogram_free(&hn);
            calib_max_free(&cm);
        }
        if (err.failed) {
            fprintf(stderr, "bench_quant: %s\n", err.msg);
            return 1;
        }
        char name[32];
        snprintf(name, sizeof name, "%lldx%lldx%lld", (long long)sizes[s][0], (long long)sizes[s][1],
                 (long long)sizes[s][2]);
        const double gb = (double)bytes / 1e9;
        /* bytes moved: memcpy and forward read x, write y; backward reads x, gy, gx and writes gx */
        printf("%-14s %10.2f %10.2f %12.2f %12.2f %12.2f %14.1f %14.1f %12.1f\n", name, 2 * gb / t_cpy, 2 * gb / t_fwd,
               4 * gb / t_bwd, 6 * gb / (t_fwd + t_bwd), 6 * gb / t_op, (double)n / t_hm / 1e6, (double)n / t_hn / 1e6,
               (double)n / t_max / 1e6);
        free(x);
        free(y);
        free(gy);
        free(gx);
    }
    return 0;
}

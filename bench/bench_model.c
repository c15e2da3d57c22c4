/* bench_model.c: one BERT QA training step (forward + backward, dropout on) at BERT-base size, quantizers off and
 * on, next to OpenBLAS's sgemm rate on the model's GEMM shapes measured in the same run. Prints median ms/step,
 * achieved GFLOP/s, the fraction of the sgemm-bound limit, and peak RSS.
 * Run: OMP_NUM_THREADS=2 ./build/bench/bench_model [--quant 0|1] [--steps N] [--layers L] [--batch B] [--seq S] [--profile 1]
 * Peer: bench/bench_model_torch.py with the same arguments (same thread count). */
#include "bench_util.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "model/heads.h"

/* sgemm GFLOP/s over the step's GEMM shapes (tokens x out x in, forward and both backward layouts). */
static double sgemm_rate(int64_t tokens, int64_t h, int64_t inter) {
    int64_t shapes[3][3] = {{tokens, h, h}, {tokens, inter, h}, {tokens, h, inter}};
    size_t big = (size_t)(tokens > inter ? tokens : inter) * (size_t)(inter > h ? inter : h);
    float *a = calloc(big, sizeof(float)), *b = calloc(big, sizeof(float)), *c = calloc(big, sizeof(float));
    if (!a || !b || !c) exit(1);
    for (size_t i = 0; i < big; i++) a[i] = b[i] = (float)(i % 7) * 0.01f;
    double flops = 0, secs = 0;
    for (int rep = 0; rep < 4; rep++)
        for (int s = 0; s < 3; s++) {
            int m = (int)shapes[s][0], n = (int)shapes[s][1], k = (int)shapes[s][2];
            for (int l = 0; l < 3; l++) {  /* y = x W^T, dx = dy W, dW = dy^T x */
                double t0 = bench_now();
                if (l == 0) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
                else if (l == 1) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, k, n, 1.0f, a, n, b, k, 0.0f, c, k);
                else cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, m, 1.0f, a, n, b, k, 0.0f, c, k);
                double t = bench_now() - t0;
                if (rep) {
                    secs += t;
                    flops += 2.0 * m * n * k;
                }
            }
        }
    free(a);
    free(b);
    free(c);
    return flops / secs * 1e-9;
}

int main(int argc, char **argv) {
    int quant = 0, steps = 5, layers = 12, batch = 8, seq = 128, profile = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--quant")) quant = v;
        else if (!strcmp(argv[i], "--steps")) steps = v;
        else if (!strcmp(argv[i], "--layers")) layers = v;
        else if (!strcmp(argv[i], "--batch")) batch = v;
        else if (!strcmp(argv[i], "--seq")) seq = v;
        else if (!strcmp(argv[i], "--profile")) profile = v;
        else {
            fprintf(stderr, "bench_model: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (steps < 1 || steps > 100) steps = 5;
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 42, &err);
    if (!ctx) qb_die("bench_model", &err);
    qb_bert_config cfg;
    qb_bert_config_default(&cfg);
    cfg.num_hidden_layers = layers;
    qb_bert_model m;
    if (qb_bert_init(&m, ctx, &cfg, QB_BERT_QUESTION_ANSWERING, NULL)) qb_die("bench_model", &ctx->err);
    if (quant) {  /* ranges as after calibration: weights per row, activations per tensor */
        for (int i = 0; i < m.n_quant; i++) {
            qb_quantizer *q = &m.quant[i];
            float *amax = malloc((size_t)q->channels * sizeof(float));
            for (int64_t r = 0; r < q->channels; r++) amax[r] = qb_quantizer_per_channel(q) ? 0.08f : 8.0f;
            if (qb_quantizer_set_amax(q, amax, q->channels, &err)) qb_die("bench_model", &err);
            free(amax);
        }
        qb_bert_quant_enable(&m, "*", true);
    }
    int64_t tokens = (int64_t)batch * seq, H = cfg.hidden_size, inter = cfg.intermediate_size;
    int32_t *ids = malloc((size_t)tokens * sizeof(int32_t)), start[64], end[64];
    for (int64_t t = 0; t < tokens; t++) ids[t] = 1000 + (int32_t)((t * 7919) % 20000);
    for (int b = 0; b < batch && b < 64; b++) {
        start[b] = (b * 13) % seq;
        end[b] = (b * 17 + 5) % seq;
    }
    qb_bert_batch in = {.batch = batch, .seq = seq, .input_ids = ids};
    ctx->training = true;
    double per_layer = 2.0 * tokens * (4.0 * H * H + 2.0 * H * inter) + 4.0 * batch * (double)seq * seq * H;
    double flops = 3.0 * (layers * per_layer + 2.0 * tokens * H * 2);
    double t[100];
    for (int s = -2; s < steps; s++) {  /* two warm-up steps: the first grows the arena, the second first-touches it */
        double t0 = bench_now();
        qb_ctx_step_reset(ctx);
        qb_zero_grad(ctx);
        if (profile && s == steps - 1) qb_profile_start(ctx);
        qb_bert_output out;
        if (qb_bert_question_answering(&m, &in, start, end, &out) || qb_backward(ctx, out.loss)) qb_die("bench_model", &ctx->err);
        if (s >= 0) t[s] = bench_now() - t0;
        if (getenv("QB_BENCH_VERBOSE"))
            fprintf(stderr, "step %d: %.1f ms (arena %zu MiB, spilled %zu blocks)\n", s, 1e3 * (bench_now() - t0), ctx->act.cap >> 20,
                    ctx->act.n_spill);
    }
    if (profile) qb_profile_report(ctx, stdout);
    qsort(t, (size_t)steps, sizeof *t, bench_cmp_double);
    double med = t[steps / 2];
    double rate = sgemm_rate(tokens, H, inter);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("qdqbert  %-6s layers %d batch %d seq %d threads %d: %8.1f ms/step  %6.1f GFLOP/s  sgemm %6.1f GFLOP/s  "
           "%4.0f%% of sgemm-bound  peak RSS %6.0f MiB\n",
           quant ? "quant" : "fp32", layers, batch, seq, openblas_get_num_threads(), 1e3 * med, flops / med * 1e-9, rate,
           100.0 * flops / med * 1e-9 / rate, ru.ru_maxrss / 1024.0);
    free(ids);
    qb_bert_free(&m);
    qb_ctx_free(ctx);
    return 0;
}

/* bench_model.c: one BERT QA training step (forward + backward, dropout on) at BERT-base or MiniLM size, quantizers
 * off or on, next to the sgemm rate on the model's GEMM shapes measured in the same run (OpenBLAS's, the step's own
 * library's when that is another (run.cpu_gemm: oneDNN by default), and PyTorch's when the peer runs). Prints median ms/step, achieved GFLOP/s, the fraction of the sgemm-bound limit, peak RSS,
 * and the peer's step with the ratio.
 * Run: OMP_NUM_THREADS=2 ./build/bench/bench_model [--config base|minilm] [--quant 0|1] [--precision fp32|bf16] [--steps N]
 *      [--layers L] [--batch B] [--seq S] [--profile 1] [--weight-cache 0|1] [--accum A]   (--help for details)
 * Peer: bench/bench_model_torch.py with the same arguments, run from here in the same run when QB_TORCH_PYTHON is set. */
#include "bench_gemm.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "autograd/cpu/kernels.h"
#include "base/blas_core.h"
#include "model/heads.h"

/* The CPU kernel table's fp32 GEMM through the library *(qb_cpu_gemm_lib *)ctx. */
static void cpu_table_sgemm(void *ctx, bool ta, bool tb, int m, int n, int k, const void *a, int lda, const void *b, int ldb, float *c,
                            int ldc) {
    qb_gemm_batch one = {{1, 1}, {0, 0}, {0, 0}, {0, 0}, QB_PREC_FP32, false, false, *(const qb_cpu_gemm_lib *)ctx};
    if (qb_cpu_kernels.gemm(NULL, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc, &one)) {
        fprintf(stderr, "bench_model: the cpu GEMM failed\n");
        exit(1);
    }
}

static void usage(FILE *out) {
    fprintf(out, "usage: bench_model [--config base|minilm] [--quant 0|1] [--precision fp32|bf16] [--steps N] [--layers L] [--batch B]\n"
                 "                   [--seq S] [--profile 1] [--fuse MASK] [--weight-cache 0|1] [--accum A] [--recompute 0|1]\n"
                 "  One BERT QA training step (forward + backward, dropout on), median of N steps after two warm-ups.\n"
                 "  --config base: BERT-base (12 layers, hidden 768, intermediate 3072, 12 heads), batch 8 (default)\n"
                 "  --config minilm: MiniLM-L6-H384 (6 layers, hidden 384, intermediate 1536, 12 heads), batch 12, as\n"
                 "                   configs/squad_minilm_qat.ini; --layers/--batch/--seq override the config's\n"
                 "  --quant 1: QDQBERT's fake quantizers on (calibrated ranges); --profile 1: per-op times of the last step\n"
                 "  --fuse MASK: the fused fake-quant ops used (default 15, all; 0: unfused, quant.fuse = false): 1 softmax +\n"
                 "               dropout + fq, 2 GELU + fq, 4 residual add + fq + layer norm, 8 (with 4) its output's fq\n"
                 "  --weight-cache 0: fake-quantize the weights in every forward (quant.weight_cache = false; default 1: once\n"
                 "                   per weight change, in one kernel call); --accum A: the weights change (the parameter\n"
                 "                   version AdamW bumps) every A steps, as with gradient accumulation A (default 1; AdamW\n"
                 "                   itself is not run, so that the step is forward + backward only)\n"
                 "  --recompute 1: train.recompute_activation (output.dense's input recomputed in the backward, not kept)\n"
                 "  Memory: the step arena's peak (and the recompute buffer) is printed with the step time.\n"
                 "  --precision bf16: GEMMs with bf16 inputs and fp32 accumulation (oneDNN; fp32 weights and fake quant);\n"
                 "                    the peer then runs under torch.autocast(\"cpu\", dtype=torch.bfloat16)\n"
                 "  Threads: OMP_NUM_THREADS. With QB_TORCH_PYTHON=python (and QB_SOURCE_ROOT=checkout) the PyTorch peer\n"
                 "  (bench/bench_model_torch.py) runs the same step in the same run, and the sgemm bound is taken from the\n"
                 "  fastest of OpenBLAS's, the step's own (run.cpu_gemm's library: QB_CPU_GEMM=onednn|openblas) and PyTorch's GEMM\n"
                 "  on the step's shapes (bench/bench_gemm_torch.py).\n");
}

/* Runs bench/bench_model_torch.py with the same arguments; returns its median ms/step (its line echoed) and its
 * median CPU ms/step in *cpu_ms, or -1. */
static double torch_step_ms(const char *config, int quant, const char *precision, int steps, int layers, int batch, int seq,
                            double *cpu_ms) {
    const char *py = getenv("QB_TORCH_PYTHON"), *root = getenv("QB_SOURCE_ROOT");
    if (!py || !*py) return -1;
    char cmd[4400], line[1024];
    snprintf(cmd, sizeof cmd, "%s %s/bench/bench_model_torch.py --config %s --quant %d --precision %s --steps %d --layers %d --batch %d --seq %d",
             py, root ? root : ".", config, quant, precision, steps, layers, batch, seq);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    double ms = -1;
    while (fgets(line, sizeof line, p)) {
        char *at = strstr(line, "ms/step");
        if (!strncmp(line, "pytorch ", 8) && at) {
            fputs(line, stdout);
            char *colon = strrchr(line, ':'), *cpu = strstr(line, " cpu ");
            if (colon && colon < at) ms = atof(colon + 1);
            if (cpu) *cpu_ms = atof(cpu + 5);
        }
    }
    return pclose(p) == 0 ? ms : -1;
}

int main(int argc, char **argv) {
    int quant = 0, steps = 5, layers = 0, batch = 0, seq = 128, profile = 0, fuse = QB_FUSE_ALL, weight_cache = 1, accum = 1, recompute = 0;
    const char *config = "base", *precision = "fp32";
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_model: %s needs a value (see --help)\n", argv[i]);
            return 2;
        }
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--config")) {
            config = argv[i + 1];
            if (strcmp(config, "base") && strcmp(config, "minilm")) {
                fprintf(stderr, "bench_model: --config %s: expected base or minilm\n", config);
                return 2;
            }
        } else if (!strcmp(argv[i], "--precision")) {
            precision = argv[i + 1];
            if (strcmp(precision, "fp32") && strcmp(precision, "bf16")) {
                fprintf(stderr, "bench_model: --precision %s: expected fp32 or bf16\n", precision);
                return 2;
            }
        } else if (!strcmp(argv[i], "--quant")) quant = v;
        else if (!strcmp(argv[i], "--steps")) steps = v;
        else if (!strcmp(argv[i], "--layers")) layers = v;
        else if (!strcmp(argv[i], "--batch")) batch = v;
        else if (!strcmp(argv[i], "--seq")) seq = v;
        else if (!strcmp(argv[i], "--profile")) profile = v;
        else if (!strcmp(argv[i], "--recompute")) recompute = v;
        else if (!strcmp(argv[i], "--fuse")) fuse = (int)strtol(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--weight-cache")) weight_cache = v;
        else if (!strcmp(argv[i], "--accum")) accum = v > 0 ? v : 1;
        else {
            fprintf(stderr, "bench_model: unknown option %s (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (steps < 1 || steps > 100) steps = 5;
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 42, &err);
    if (!ctx) qb_die("bench_model", &err);
    qb_precision prec = QB_PREC_FP32;
    qb_precision_parse(precision, &prec);
    if (qb_ctx_set_precision(ctx, prec)) qb_die("bench_model", &ctx->err);
    qb_bert_config cfg;
    qb_bert_config_default(&cfg);
    bool minilm = !strcmp(config, "minilm");
    if (minilm) {
        cfg.num_hidden_layers = 6;
        cfg.hidden_size = 384;
        cfg.intermediate_size = 1536;
        cfg.num_attention_heads = 12;
    }
    if (layers > 0) cfg.num_hidden_layers = layers;
    layers = cfg.num_hidden_layers;
    if (batch <= 0) batch = minilm ? 12 : 8;
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
    m.fuse = (unsigned)fuse & QB_FUSE_ALL;
    m.weight_cache = weight_cache != 0;
    m.recompute_act = recompute != 0;
    char fuse_label[64];
    snprintf(fuse_label, sizeof fuse_label, " fuse %d wcache %d accum %d", (int)m.fuse, (int)m.weight_cache, accum);
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
    double t[100], cpu[100];
    for (int s = -2; s < steps; s++) {  /* two warm-up steps: the first grows the arena, the second first-touches it */
        double t0 = bench_now(), c0 = bench_cpu_now();
        qb_ctx_step_reset(ctx);
        if ((s + 2) % accum == 0) qb_params_touch(ctx); /* an optimizer step's weight change */
        qb_zero_grad(ctx);
        if (profile && s == steps - 1) qb_profile_start(ctx);
        qb_bert_output out;
        if (qb_bert_question_answering(&m, &in, start, end, &out) || qb_backward(ctx, out.loss)) qb_die("bench_model", &ctx->err);
        if (s >= 0) {
            t[s] = bench_now() - t0;
            cpu[s] = bench_cpu_now() - c0;
        }
        if (getenv("QB_BENCH_VERBOSE"))
            fprintf(stderr, "step %d: %.1f ms (arena %zu MiB, spilled %zu blocks)\n", s, 1e3 * (bench_now() - t0), ctx->act.cap >> 20,
                    ctx->act.n_spill);
    }
    if (profile) qb_profile_report(ctx, stdout);
    double med = bench_median(t, steps), cpu_med = bench_median(cpu, steps);
    qb_cpu_gemm_lib lib = ctx->cpu_gemm, openblas = QB_CPU_GEMM_OPENBLAS;
    double rate_openblas = bench_gemm_rate(cpu_table_sgemm, &openblas, 4, tokens, H, inter, 5), rate = rate_openblas;
    char lib_name[64], rate_label[160];
    qb_cpu_gemm_describe(lib, lib_name, sizeof lib_name);
    snprintf(rate_label, sizeof rate_label, "OpenBLAS sgemm %6.1f GFLOP/s", rate_openblas);
    if (lib != QB_CPU_GEMM_OPENBLAS) {
        double rate_lib = bench_gemm_rate(cpu_table_sgemm, &lib, 4, tokens, H, inter, 5);
        snprintf(rate_label, sizeof rate_label, "OpenBLAS sgemm %6.1f GFLOP/s  %s (ours) %6.1f GFLOP/s", rate_openblas, lib_name, rate_lib);
        if (rate_lib > rate) rate = rate_lib;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    qb_memory_stats mem;
    qb_ctx_memory(ctx, &mem);
    char blas[1024];
    qb_blas_core_summary(blas, sizeof blas);
    printf("%s\n", blas);
    printf("qdqbert  %-6s%s %-4s %-6s layers %d batch %d seq %d threads %d: %8.1f ms/step  %6.1f GFLOP/s  %s  "
           "%4.0f%% of the faster  cpu %8.1f ms/step  peak RSS %6.0f MiB  activation arena peak %6.1f MiB\n",
           quant ? "quant" : "fp32", quant ? fuse_label : "", precision, config, layers, batch, seq, openblas_get_num_threads(), 1e3 * med, flops / med * 1e-9, rate_label,
           100.0 * flops / med * 1e-9 / rate, 1e3 * cpu_med, ru.ru_maxrss / 1024.0, mem.act_peak / 1048576.0);
    printf("memory   recompute buffer %.1f MiB (train.recompute_activation %s)\n", mem.recompute / 1048576.0, recompute ? "on" : "off");
    fflush(stdout);
    char nthreads[16];
    snprintf(nthreads, sizeof nthreads, "%d", openblas_get_num_threads());
    setenv("OMP_NUM_THREADS", nthreads, 1);
    double peer_cpu_ms = -1, peer_ms = torch_step_ms(config, quant, precision, steps, layers, batch, seq, &peer_cpu_ms), peer_fp32 = -1, peer_bf16 = -1;
    char version[256] = "";
    if (peer_ms > 0 && bench_gemm_torch(tokens, H, inter, 5, &peer_fp32, &peer_bf16, version, sizeof version) == 0) {
        double best = peer_fp32 > rate ? peer_fp32 : rate;
        printf("peer     %s; its sgemm %.1f GFLOP/s (bf16 %.1f) on the same shapes\n", version, peer_fp32, peer_bf16);
        printf("ratio    ours %.2fx PyTorch's step (%.1f vs %.1f ms; CPU time %.2fx); hardware limit: the faster sgemm (%s, %.1f "
               "GFLOP/s): ours at %.0f%% of its bound\n",
               peer_ms / (1e3 * med), 1e3 * med, peer_ms, peer_cpu_ms / (1e3 * cpu_med), peer_fp32 > rate ? "PyTorch" : rate > rate_openblas ? lib_name : "OpenBLAS", best,
               100.0 * flops / med * 1e-9 / best);
    } else if (getenv("QB_TORCH_PYTHON"))
        fprintf(stderr, "bench_model: the PyTorch peer failed (QB_TORCH_PYTHON=%s)\n", getenv("QB_TORCH_PYTHON"));
    free(ids);
    qb_bert_free(&m);
    qb_ctx_free(ctx);
    return 0;
}

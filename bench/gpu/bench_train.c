/* bench_train.c: BERT QA training steps on one device (bench/gpu/train_bench.sh runs it next to its PyTorch peer,
 * bench/gpu/bench_train_torch.py): forward, backward, gradient clipping and AdamW on random weights and token ids, the
 * median of N timed steps after warm-ups (each step ends with the loss read back, so the time covers the device's
 * work). Prints a human line and "RESULT {json}": sequences/s, model FLOPs (6 x GEMM parameters + 12 x layers x seq x
 * hidden per token), MFU against --peak-tflops, and memory: the device's high-water mark (cudaMemGetInfo), the step
 * arena's plan and peak, parameters, AdamW moments.
 * Run: bench_train_gpu [--device cuda|cpu] [--precision fp32|tf32|bf16] [--quant 0|1] [--int8 0|1] [--layers 12]
 *      [--hidden 768] [--heads 12] [--inter 3072] [--batch 32] [--seq 128] [--steps 10] [--warmup 3] [--vocab 30522]
 *      [--peak-tflops 989.4] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "../bench_util.h"
#include "model/heads.h"
#include "train/clip_grad.h"
#include "train/optim_adamw.h"


static void die(const char *what, const qb_err *err) {
    fprintf(stderr, "bench_train_gpu: %s: %s\n", what, err->msg);
    exit(1);
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench_train_gpu [--device cuda|cpu] [--precision fp32|tf32|bf16] [--quant 0|1] [--int8 0|1] [--layers L]\n"
               "                       [--hidden H] [--heads N] [--inter I] [--batch B] [--seq S] [--steps N] [--warmup W]\n"
               "                       [--vocab V] [--peak-tflops T]\n"
               "  BERT QA training steps (forward, backward, clip 1.0, AdamW) on random weights; defaults: BERT-base, batch 32,\n"
               "  seq 128, bf16 on cuda, 10 steps after 3 warm-ups, MFU against 989.4 TFLOPS (H200 dense BF16).\n"
               "  --quant 1: QDQBERT's quantizers on (fixed ranges as after calibration); --int8 1: quant.int8_gemm.\n"
               "  --epilogue 0: run.gemm_epilogue = false (cuBLASLt bias epilogues off; default 1); --recompute 1:\n"
               "  train.recompute_activation.\n");
}

int main(int argc, char **argv) {
    const char *device = "cuda", *precision = "bf16";
    int quant = 0, int8 = 0, epilogue = 1, recompute = 0, vocab = 30522, layers = 12, hidden = 768, heads = 12, inter = 3072, batch = 32, seq = 128, steps = 10, warmup = 3;
    double peak_tflops = 989.4;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(stdout), 0;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_train_gpu: %s needs a value (see --help)\n", argv[i]);
            return 2;
        }
        const char *k = argv[i], *v = argv[i + 1];
        int *ip = !strcmp(k, "--quant") ? &quant : !strcmp(k, "--int8") ? &int8 : !strcmp(k, "--layers") ? &layers
                  : !strcmp(k, "--hidden") ? &hidden : !strcmp(k, "--heads") ? &heads : !strcmp(k, "--inter") ? &inter
                  : !strcmp(k, "--batch") ? &batch : !strcmp(k, "--seq") ? &seq : !strcmp(k, "--steps") ? &steps
                  : !strcmp(k, "--warmup") ? &warmup : !strcmp(k, "--vocab") ? &vocab : !strcmp(k, "--epilogue") ? &epilogue
                  : !strcmp(k, "--recompute") ? &recompute : NULL;
        if (ip) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 0 || n > 1 << 20) {
                fprintf(stderr, "bench_train_gpu: %s %s: expected a count\n", k, v);
                return 2;
            }
            *ip = (int)n;
        } else if (!strcmp(k, "--device")) device = v;
        else if (!strcmp(k, "--precision")) precision = v;
        else if (!strcmp(k, "--peak-tflops")) peak_tflops = atof(v);
        else {
            fprintf(stderr, "bench_train_gpu: unknown option %s (see --help)\n", k);
            return 2;
        }
    }
    if (steps < 1 || steps > 1000 || batch < 1 || seq < 2 || layers < 1 || vocab < 2) {
        fprintf(stderr, "bench_train_gpu: need steps in [1, 1000], batch >= 1, seq >= 2, layers >= 1, vocab >= 2\n");
        return 2;
    }
    qb_err err = {0};
    qb_device dev = !strcmp(device, "cpu") ? QB_CPU : QB_CUDA;
    if (strcmp(device, "cpu") && strcmp(device, "cuda")) {
        fprintf(stderr, "bench_train_gpu: --device %s: expected cuda or cpu\n", device);
        return 2;
    }
    qb_ctx *ctx = qb_ctx_new(dev, 42, &err);
    if (!ctx) die("context", &err);
    qb_precision prec;
    if (qb_precision_parse(precision, &prec)) {
        fprintf(stderr, "bench_train_gpu: --precision %s: expected fp32, tf32 or bf16\n", precision);
        return 2;
    }
    if (qb_ctx_set_precision(ctx, prec)) die("precision", &ctx->err);
    qb_bert_config cfg;
    qb_bert_config_default(&cfg);
    cfg.num_hidden_layers = layers;
    cfg.hidden_size = hidden;
    cfg.num_attention_heads = heads;
    cfg.intermediate_size = inter;
    cfg.vocab_size = vocab;
    if (seq > cfg.max_position_embeddings) cfg.max_position_embeddings = seq;
    qb_bert_model m;
    if (qb_bert_init(&m, ctx, &cfg, QB_BERT_QUESTION_ANSWERING, NULL)) die("model", &ctx->err);
    if (quant) { /* ranges as after calibration: weights per row, activations per tensor */
        for (int i = 0; i < m.n_quant; i++) {
            qb_quantizer *q = &m.quant[i];
            float *amax = malloc((size_t)q->channels * sizeof(float));
            for (int64_t r = 0; r < q->channels; r++) amax[r] = qb_quantizer_per_channel(q) ? 0.08f : 8.0f;
            if (qb_quantizer_set_amax(q, amax, q->channels, &err)) die("quantizer", &err);
            free(amax);
        }
        qb_bert_quant_enable(&m, "*", true);
    }
    m.int8_gemm = int8 != 0;
    m.recompute_act = recompute != 0;
    ctx->gemm_epilogue = epilogue != 0;
    qb_adamw opt;
    if (qb_adamw_init(&opt, ctx, 0.9, 0.999, 1e-8, 0.01, &err)) die("AdamW", &err);
    const int64_t tokens = (int64_t)batch * seq;
    int32_t *ids = malloc((size_t)tokens * sizeof(int32_t)), *start = malloc((size_t)batch * 4), *end = malloc((size_t)batch * 4);
    for (int64_t t = 0; t < tokens; t++) ids[t] = (int32_t)((1000 + (t * 7919) % 20000) % vocab);
    for (int b = 0; b < batch; b++) {
        start[b] = (b * 13) % seq;
        end[b] = (b * 17 + 5) % seq;
    }
    qb_bert_batch in = {.batch = batch, .seq = seq, .input_ids = ids};
    ctx->training = true;
    double *t = malloc((size_t)steps * sizeof(double)), first_loss = 0, last_loss = 0;
    for (int s = -warmup; s < steps; s++) {
        const double t0 = bench_now();
        if (qb_ctx_step_reset(ctx)) die("step", &ctx->err);
        qb_zero_grad(ctx);
        qb_bert_output out;
        float *norm = qb_act_alloc(ctx, sizeof(float));
        if (!norm || qb_bert_question_answering(&m, &in, start, end, &out) || qb_backward(ctx, out.loss) ||
            qb_clip_grad_norm_dev(ctx, 1.0, norm) || qb_adamw_step(&opt, ctx, 1e-5f))
            die("training step", &ctx->err);
        const double loss = qb_item(ctx, out.loss); /* waits for the device */
        if (qb_ctx_failed(ctx)) die("loss", &ctx->err);
        if (s == -warmup) first_loss = loss;
        last_loss = loss;
        if (s >= 0) t[s] = bench_now() - t0;
    }
    qb_ctx_step_reset(ctx); /* samples the device's memory with the last step's still held */
    const double med = bench_median(t, steps);
    const double gemm_params = (double)layers * (4.0 * hidden * hidden + 2.0 * hidden * inter) + 2.0 * hidden;
    const double flops = (double)tokens * (6.0 * gemm_params + 12.0 * layers * (double)seq * hidden);
    const double seq_s = batch / med, mfu = flops / med / (peak_tflops * 1e12);
    qb_memory_stats ms;
    qb_ctx_memory(ctx, &ms);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double mib = 1.0 / (1 << 20), moments = 2.0 * (double)opt.numel * sizeof(float) * mib;
    printf("qdqbert %s %s quant %d int8 %d layers %d hidden %d batch %d seq %d: %.2f ms/step, %.1f seq/s, %.1f TFLOP/s, MFU %.1f%% of %.1f "
           "TFLOPS; device peak %.0f MiB, arena %.0f MiB (planned %.0f), params+grads %.0f MiB, AdamW %.0f MiB, RSS %.0f MiB; loss %.4f -> "
           "%.4f\n",
           device, precision, quant, int8, layers, hidden, batch, seq, 1e3 * med, seq_s, flops / med * 1e-12, 100 * mfu, peak_tflops,
           ms.device_used_peak * mib, ms.act_peak * mib, ms.act_planned * mib, ms.params * mib, moments, ru.ru_maxrss / 1024.0, first_loss,
           last_loss);
    printf("RESULT {\"impl\": \"qdqbert\", \"device\": \"%s\", \"precision\": \"%s\", \"quant\": %d, \"int8\": %d, \"layers\": %d, \"hidden\": %d, "
           "\"batch\": %d, \"seq\": %d, \"steps\": %d, \"ms_step\": %.4f, \"seq_s\": %.3f, \"flops_step\": %.6g, \"mfu\": %.6g, "
           "\"device_peak_mib\": %.1f, \"arena_peak_mib\": %.1f, \"arena_planned_mib\": %.1f, \"params_grads_mib\": %.1f, "
           "\"adamw_mib\": %.1f, \"rss_mib\": %.1f, \"first_loss\": %.6f, \"last_loss\": %.6f}\n",
           device, precision, quant, int8, layers, hidden, batch, seq, steps, 1e3 * med, seq_s, flops, mfu, ms.device_used_peak * mib,
           ms.act_peak * mib, ms.act_planned * mib, ms.params * mib, moments, ru.ru_maxrss / 1024.0, first_loss, last_loss);
    free(t);
    free(ids);
    free(start);
    free(end);
    qb_adamw_free(&opt);
    qb_bert_free(&m);
    qb_ctx_free(ctx);
    return 0;
}

/* test_bf16_act.c: precision bf16 with the inputs of the linears and of probs @ V kept only as bf16 copies (their fp32
 * memory handed back to the step arena after the GEMMs), on a small BERT QA training step (dropout, padding), float and QDQBERT (fused ops):
 * - logits, loss and every parameter gradient bit for bit those of the same step with the fp32 inputs kept
 *   (qb_bert_model.keep_f32_inputs): the handed-back memory is reused and overwritten, so a GEMM or backward that still
 *   read it would differ;
 * - the activation arena's peak: the fp32 step's with the inputs kept (unmarked inputs stay fp32, nothing else is
 *   stored), and below it handing them back by at least a quarter of their fp32 bytes (half is the most: each leaves its
 *   bf16 copy; how much of the rest later allocations reuse depends on their sizes); printed in MiB;
 * - against fp32: the same loss within 2e-2 relative, and some logit different (bf16 ran).
 * Exits 77 where the cpu or build has no bf16 GEMM. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/cpu/kernels.h"
#include "check.h"
#include "model/heads.h"

static qb_check chk;

enum { B = 4, S = 24, H = 64, I = 128, L = 2, NH = 4 };

typedef struct step_out {
    float start[B * S], end[B * S], loss;
    float **grads;
    int64_t *numel;
    int n;
    size_t act_peak;
} step_out;

static void run(qb_precision prec, bool quant, bool keep, step_out *o) {
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 5, &err);
    if (!ctx) qb_die("test_bf16_act", &err);
    if (qb_ctx_set_precision(ctx, prec)) qb_die("test_bf16_act", &ctx->err);
    qb_bert_config cfg;
    qb_bert_config_default(&cfg);
    cfg.vocab_size = 97;
    cfg.hidden_size = H;
    cfg.num_hidden_layers = L;
    cfg.num_attention_heads = NH;
    cfg.intermediate_size = I;
    cfg.max_position_embeddings = 40;
    qb_bert_model m;
    if (qb_bert_init(&m, ctx, &cfg, QB_BERT_QUESTION_ANSWERING, NULL)) qb_die("test_bf16_act", &ctx->err);
    if (quant) {
        for (int i = 0; i < m.n_quant; i++) {
            qb_quantizer *q = &m.quant[i];
            float amax[I];
            for (int64_t r = 0; r < q->channels; r++) amax[r] = qb_quantizer_per_channel(q) ? 0.05f + 0.001f * (float)(r % 50) : 0.6f + 0.05f * (float)(i % 7);
            if (qb_quantizer_set_amax(q, amax, q->channels, &err)) qb_die("test_bf16_act", &err);
        }
        qb_bert_quant_enable(&m, "*", true);
    }
    m.keep_f32_inputs = keep;
    int32_t ids[B * S], mask[B * S], start[B] = {1, 5, 17, 20}, end[B] = {4, 9, 18, 22};
    for (int t = 0; t < B * S; t++) {
        ids[t] = 1 + (t * 37) % 96;
        mask[t] = t % S < S - 3 * (t / S) ? 1 : 0;
    }
    qb_bert_batch in = {.batch = B, .seq = S, .input_ids = ids, .attention_mask = mask};
    ctx->training = true;
    qb_bert_output out;
    if (qb_bert_question_answering(&m, &in, start, end, &out) || qb_backward(ctx, out.loss)) qb_die("test_bf16_act", &ctx->err);
    qb_to_host(ctx, out.logits, o->start);
    qb_to_host(ctx, out.end_logits, o->end);
    o->loss = qb_item(ctx, out.loss);
    qb_memory_stats ms;
    qb_ctx_memory(ctx, &ms);
    o->act_peak = ms.act_peak;
    o->n = m.n_params;
    o->grads = calloc((size_t)m.n_params, sizeof *o->grads);
    o->numel = calloc((size_t)m.n_params, sizeof *o->numel);
    for (int i = 0; i < m.n_params; i++) {
        qb_tensor *p = m.params[i];
        o->numel[i] = qb_numel(p);
        o->grads[i] = calloc((size_t)qb_numel(p), sizeof(float));
        if (p->grad) qb_to_host(ctx, p->grad, o->grads[i]);
    }
    qb_bert_free(&m);
    qb_ctx_free(ctx);
}

static void step_free(step_out *o) {
    for (int i = 0; i < o->n; i++) free(o->grads[i]);
    free(o->grads);
    free(o->numel);
}

static int64_t differ(const float *a, const float *b, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += memcmp(a + i, b + i, sizeof(float)) != 0;
    return bad;
}

int main(void) {
    const char *why = qb_cpu_bf16_unavailable();
    if (why) {
        printf("SKIP: bf16 GEMMs on the cpu: %s\n", why);
        return 77;
    }
    for (int quant = 0; quant < 2; quant++) {
        const char *name = quant ? "QDQBERT" : "float BERT";
        step_out kept, freed, f32;
        run(QB_PREC_BF16, quant, true, &kept);
        run(QB_PREC_BF16, quant, false, &freed);
        run(QB_PREC_FP32, quant, false, &f32);
        CHECK(&chk, memcmp(&kept.loss, &freed.loss, sizeof(float)) == 0, "%s: loss %.9g with fp32 inputs handed back vs %.9g kept", name,
              (double)freed.loss, (double)kept.loss);
        CHECK(&chk, differ(kept.start, freed.start, B * S) == 0 && differ(kept.end, freed.end, B * S) == 0, "%s: logits differ", name);
        int bad_params = 0;
        for (int i = 0; i < kept.n; i++) bad_params += differ(kept.grads[i], freed.grads[i], kept.numel[i]) != 0;
        CHECK(&chk, bad_params == 0, "%s: %d of %d parameter gradients differ with the fp32 inputs handed back", name, bad_params, kept.n);
        /* handed back per layer: the GELU (or act_fq) output [B, S, I] and the attention probabilities after dropout
         * [B, N, S, S]; with quantizers also the fake-quantized query/key/value, attention-output and intermediate
         * inputs, 3 x [B, S, H] */
        size_t handed = (size_t)L * B * S * (I + NH * S + (quant ? 3 * H : 0)) * sizeof(float);
        CHECK(&chk, kept.act_peak == f32.act_peak, "%s: activation peak %zu bytes in bf16 with the fp32 inputs kept, %zu in fp32", name,
              kept.act_peak, f32.act_peak);
        CHECK(&chk, freed.act_peak + handed / 4 <= kept.act_peak, "%s: activation peak %zu bytes handing back vs %zu kept (want at least %zu less)",
              name, freed.act_peak, kept.act_peak, handed / 4);
        printf("%s (%d layers, hidden %d, intermediate %d, batch %d, seq %d): activation arena peak fp32 %.3f MiB, bf16 with fp32 "
               "inputs kept %.3f MiB, bf16 handing them back %.3f MiB\n",
               name, L, H, I, B, S, f32.act_peak / 1048576.0, kept.act_peak / 1048576.0, freed.act_peak / 1048576.0);
        double rel = fabs((double)freed.loss - f32.loss) / fabs((double)f32.loss);
        CHECK(&chk, rel < 2e-2, "%s: bf16 loss %.6g vs fp32 %.6g (relative %.3g)", name, (double)freed.loss, (double)f32.loss, rel);
        CHECK(&chk, differ(freed.start, f32.start, B * S) > 0, "%s: bf16 logits equal fp32's (bf16 did not run)", name);
        step_free(&kept);
        step_free(&freed);
        step_free(&f32);
    }
    return qb_check_finish(&chk, "test_bf16_act");
}

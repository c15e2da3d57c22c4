/* test_recompute.c: train.recompute_activation (qb_bert_model.recompute_act) against the stored path: a QDQBERT QA
 * training step (dropout on, padding mask, fixed ranges) gives the same logits, loss and parameter gradients bit for
 * bit, for the fused GELU + fake quant (GELU, tanh GELU, ReLU), with every quantizer off (the plain activation), and
 * with output.dense's input quantizer dynamic (not fusable: nothing recomputed); the step arena is smaller by exactly
 * one output.dense input per layer where it is recomputed, and the recompute buffer holds one. `--cuda`: the same on
 * the CUDA device (emulated in CI), also with the cuBLASLt epilogues on. */
#include <stdlib.h>
#include <string.h>
#include "autograd/cuda/backend.h"
#include "check.h"
#include "model/heads.h"

static qb_check chk;
static bool on_cuda;

enum { B = 3, S = 19, L = 3, H = 32, I = 48 };

typedef struct step_out {
    float start[B * S], end[B * S], loss;
    float **grads;
    int64_t *numel;
    int n, recomputed_nodes;
    size_t act_peak, recompute_bytes;
} step_out;

typedef enum { QUANT_FUSED, QUANT_OFF, QUANT_OUT_DYNAMIC } variant;

static void run(bool recompute, bool epilogue, qb_bert_act act, variant v, step_out *o) {
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(on_cuda ? QB_CUDA : QB_CPU, 5, &err);
    if (!ctx) qb_die("test_recompute", &err);
    ctx->gemm_epilogue = epilogue;
    qb_bert_config cfg;
    qb_bert_config_default(&cfg);
    cfg.vocab_size = 97;
    cfg.hidden_size = H;
    cfg.num_hidden_layers = L;
    cfg.num_attention_heads = 4;
    cfg.intermediate_size = I;
    cfg.max_position_embeddings = 40;
    cfg.hidden_act = act;
    qb_bert_model m;
    if (qb_bert_init(&m, ctx, &cfg, QB_BERT_QUESTION_ANSWERING, NULL)) qb_die("test_recompute", &ctx->err);
    m.recompute_act = recompute;
    for (int i = 0; i < m.n_quant; i++) {
        qb_quantizer *q = &m.quant[i];
        float amax[64];
        for (int64_t r = 0; r < q->channels; r++) amax[r] = qb_quantizer_per_channel(q) ? 0.05f + 0.001f * (float)r : 0.6f + 0.05f * (float)(i % 7);
        if (qb_quantizer_set_amax(q, amax, q->channels, &err)) qb_die("test_recompute", &err);
    }
    qb_bert_quant_enable(&m, "*", v != QUANT_OFF);
    if (v == QUANT_OUT_DYNAMIC)
        for (int l = 0; l < L; l++) {
            char name[128];
            snprintf(name, sizeof name, "bert.encoder.layer.%d.output.dense._input_quantizer", l);
            qb_quantizer *q = qb_bert_quantizer(&m, name);
            free(q->tq.amax);
            q->tq.amax = NULL; /* dynamic amax: the unfused fake quant, which reads the activation in its backward */
        }
    int32_t ids[B * S], mask[B * S], start[B] = {1, 5, 17}, end[B] = {4, 9, 18};
    for (int t = 0; t < B * S; t++) {
        ids[t] = 1 + (t * 37) % 96;
        mask[t] = t % S < S - 3 * (t / S) ? 1 : 0;
    }
    qb_bert_batch in = {.batch = B, .seq = S, .input_ids = ids, .attention_mask = mask};
    ctx->training = true;
    qb_bert_output out;
    if (qb_bert_question_answering(&m, &in, start, end, &out) || qb_backward(ctx, out.loss)) qb_die("test_recompute", &ctx->err);
    o->recomputed_nodes = 0;
    for (int i = 0; i < ctx->n_tape; i++) o->recomputed_nodes += ctx->tape[i]->recompute != NULL;
    qb_to_host(ctx, out.logits, o->start);
    qb_to_host(ctx, out.end_logits, o->end);
    o->loss = qb_item(ctx, out.loss);
    qb_memory_stats ms;
    qb_ctx_memory(ctx, &ms);
    o->act_peak = ms.act_peak;
    o->recompute_bytes = ms.recompute;
    o->n = m.n_params;
    o->grads = calloc((size_t)m.n_params, sizeof *o->grads);
    o->numel = calloc((size_t)m.n_params, sizeof *o->numel);
    for (int i = 0; i < m.n_params; i++) {
        qb_tensor *p = m.params[i];
        o->numel[i] = qb_numel(p);
        o->grads[i] = calloc((size_t)qb_numel(p), sizeof(float));
        if (p->grad) qb_to_host(ctx, p->grad, o->grads[i]);
    }
    if (qb_ctx_failed(ctx)) qb_die("test_recompute", &ctx->err);
    qb_bert_free(&m);
    qb_ctx_free(ctx);
}

static int64_t differ(const float *a, const float *b, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += memcmp(a + i, b + i, sizeof(float)) != 0;
    return bad;
}

int main(int argc, char **argv) {
    on_cuda = argc > 1 && strcmp(argv[1], "--cuda") == 0;
    if (on_cuda && qb_cuda_device_count() == 0) {
        qb_check_skip(&chk, "recompute on cuda", "no CUDA device (and not the emulated build)");
        return qb_check_finish(&chk, "test_recompute");
    }
    static const struct { qb_bert_act act; variant v; const char *name; } cases[] = {
        {QB_ACT_GELU, QUANT_FUSED, "gelu, act_fq"},      {QB_ACT_GELU_TANH, QUANT_FUSED, "gelu_new, act_fq"},
        {QB_ACT_RELU, QUANT_FUSED, "relu, act_fq"},      {QB_ACT_GELU, QUANT_OFF, "gelu, quantizers off"},
        {QB_ACT_GELU_TANH, QUANT_OFF, "gelu_new, quantizers off"}, {QB_ACT_GELU, QUANT_OUT_DYNAMIC, "gelu, output.dense input dynamic"}};
    const size_t h_bytes = ((size_t)B * S * I * sizeof(float) + 63) & ~(size_t)63; /* one output.dense input in the arena */
    for (int epi = 0; epi < (on_cuda ? 2 : 1); epi++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            step_out r, s;
            char name[128];
            snprintf(name, sizeof name, "%s%s", cases[c].name, on_cuda ? (epi ? ", epilogues on" : ", epilogues off") : "");
            run(true, epi, cases[c].act, cases[c].v, &r);
            run(false, epi, cases[c].act, cases[c].v, &s);
            /* stored, the tanh GELU of a plain linear is cuBLASLt's epilogue, recomputed our kernel: the same bits only on the
             * cpu's kernels (the emulator), within fp32 rounding on a GPU */
            bool exact = !(epi && cases[c].act == QB_ACT_GELU_TANH && cases[c].v == QUANT_OFF);
            int want = cases[c].v == QUANT_OUT_DYNAMIC ? 0 : L;
            CHECK(&chk, r.recomputed_nodes == want && s.recomputed_nodes == 0, "%s: %d recomputed nodes (want %d), %d without the option",
                  name, r.recomputed_nodes, want, s.recomputed_nodes);
            int bad_params = 0, nonzero = 0;
            if (exact) {
                CHECK(&chk, memcmp(&r.loss, &s.loss, sizeof(float)) == 0, "%s: loss %.9g recomputed vs %.9g stored", name, (double)r.loss,
                      (double)s.loss);
                CHECK(&chk, differ(r.start, s.start, B * S) == 0 && differ(r.end, s.end, B * S) == 0, "%s: logits differ", name);
            } else {
                qb_check_close(&chk, name, &r.loss, &s.loss, 1, 1e-6, 1e-5);
                qb_check_close(&chk, name, r.start, s.start, B * S, 1e-5, 1e-4);
            }
            for (int i = 0; i < r.n; i++) {
                if (exact) bad_params += differ(r.grads[i], s.grads[i], r.numel[i]) != 0;
                else qb_check_close(&chk, name, r.grads[i], s.grads[i], r.numel[i], 1e-5, 1e-3);
                for (int64_t k = 0; k < r.numel[i]; k++)
                    if (r.grads[i][k] != 0.0f) {
                        nonzero++;
                        break;
                    }
            }
            CHECK(&chk, bad_params == 0, "%s: %d of %d parameter gradients differ", name, bad_params, r.n);
            CHECK(&chk, nonzero > r.n / 2, "%s: only %d of %d gradients are non-zero", name, nonzero, r.n);
            size_t saved = want ? (size_t)L * h_bytes : 0;
            CHECK(&chk, s.act_peak - r.act_peak == saved && r.recompute_bytes == (want ? (size_t)B * S * I * sizeof(float) : 0),
                  "%s: step arena %zu vs %zu bytes stored (want %zu fewer), recompute buffer %zu", name, r.act_peak, s.act_peak, saved,
                  r.recompute_bytes);
            for (int i = 0; i < r.n; i++) free(r.grads[i]), free(s.grads[i]);
            free(r.grads), free(s.grads), free(r.numel), free(s.numel);
        }
    return qb_check_finish(&chk, "test_recompute");
}

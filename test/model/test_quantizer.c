/* test_quantizer.c: the model's quantization points (src/quant's tensor_quantizer under QDQBert names): fake quant
 * per tensor and per row with the clipped straight-through gradient, amax counts, disabled pass-through, dynamic amax
 * before calibration, and max calibration through a model forward (QDQBERT's calibration flow). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "model/bert.h"

static void calibration_through_model(qb_check *c, qb_ctx *ctx) {
    qb_bert_config cfg;
    qb_bert_config_default(&cfg);
    cfg.vocab_size = 50;
    cfg.hidden_size = 16;
    cfg.num_hidden_layers = 2;
    cfg.num_attention_heads = 2;
    cfg.intermediate_size = 32;
    cfg.max_position_embeddings = 16;
    qb_bert_model m;
    if (!CHECK(c, qb_bert_init(&m, ctx, &cfg, QB_BERT_QUESTION_ANSWERING, NULL) == 0, "init: %s", ctx->err.msg)) return;
    CHECK(c, m.n_quant == 40, "20 quantizers a layer: %d", m.n_quant);
    qb_bert_quant_enable(&m, "*", true);
    for (int i = 0; i < m.n_quant; i++) {  /* calibrate: statistics on, fake quant off (quant_trainer's flow) */
        tensor_quantizer_enable_calib(&m.quant[i].tq);
        tensor_quantizer_disable_quant(&m.quant[i].tq);
    }
    int32_t ids[2 * 8];
    for (int t = 0; t < 16; t++) ids[t] = (t * 7) % 50;
    qb_bert_batch b = {.batch = 2, .seq = 8, .input_ids = ids};
    ctx->no_grad = true;
    qb_ctx_step_reset(ctx);
    bool fwd = qb_bert_forward(&m, &b) != NULL;
    ctx->no_grad = false;
    if (!CHECK(c, fwd, "calibration forward: %s", ctx->err.msg)) return;
    qb_err err = {0};
    int loaded = 0;
    for (int i = 0; i < m.n_quant; i++) {
        loaded += tensor_quantizer_load_calib_amax(&m.quant[i].tq, HIST_AMAX_PERCENTILE, 99.99, &err) == 0;
        tensor_quantizer_disable_calib(&m.quant[i].tq);
        tensor_quantizer_enable_quant(&m.quant[i].tq);
    }
    CHECK(c, loaded == 40, "every quantizer calibrated (%d): %s", loaded, err.msg);
    qb_quantizer *wq = qb_bert_quantizer(&m, "bert.encoder.layer.1.intermediate.dense._weight_quantizer");
    qb_tensor *w = m.layers[1].inter.w;
    bool rows_ok = wq && wq->tq.n_amax == 32;
    for (int r = 0; rows_ok && r < 32; r++) {
        float mx = 0;
        for (int k = 0; k < 16; k++) mx = fmaxf(mx, fabsf(w->data[r * 16 + k]));
        rows_ok = wq->tq.amax[r] == mx;
    }
    CHECK(c, rows_ok, "weight amax = max|W| of each row");
    qb_quantizer *q = qb_bert_quantizer(&m, "bert.encoder.layer.0.attention.self.query._input_quantizer");
    qb_quantizer *k = qb_bert_quantizer(&m, "bert.encoder.layer.0.attention.self.key._input_quantizer");
    qb_quantizer *a = qb_bert_quantizer(&m, "bert.encoder.layer.0.attention.self.matmul_a_input_quantizer");
    CHECK(c, q && k && q->tq.amax && k->tq.amax && q->tq.amax[0] == k->tq.amax[0] && q->tq.amax[0] > 0,
          "query and key inputs see the same tensor");
    CHECK(c, a && a->tq.amax && a->tq.amax[0] > 0 && a->tq.amax[0] <= 1.0f, "attention probabilities amax in (0, 1]");
    qb_ctx_step_reset(ctx);
    CHECK(c, qb_bert_forward(&m, &b) != NULL, "quantized forward after calibration: %s", ctx->err.msg);
    qb_bert_free(&m);
}

int main(void) {
    qb_check c = {0};
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    if (!CHECK(&c, ctx != NULL, "%s", err.msg)) return qb_check_finish(&c, "model quantizer");
    quant_defaults d;
    quant_defaults_init(&d);

    /* per tensor, amax 127: s = 1, so y = clamp(rint(x), -128, 127) */
    qb_quantizer q;
    CHECK(&c, qb_quantizer_init(&q, "t._input_quantizer", &d.kind[QUANT_KIND_LINEAR_INPUT], 1, &err) == 0, "%s", err.msg);
    q.tq.disabled = false;
    float amax = 127.0f;
    CHECK(&c, qb_quantizer_set_amax(&q, &amax, 1, &err) == 0, "%s", err.msg);
    float x[8] = {0.5f, 1.5f, 2.5f, -2.5f, 127.0f, 127.4f, -130.0f, 300.0f};
    float want[8] = {0.0f, 2.0f, 2.0f, -2.0f, 127.0f, 127.0f, -128.0f, 127.0f};
    int64_t shape[1] = {8};
    qb_tensor *xt = qb_from_host(ctx, 1, shape, x);
    xt->requires_grad = true;
    qb_tensor *y = qb_quantizer_apply(ctx, &q, xt);
    float got[8];
    if (CHECK(&c, y && qb_to_host(ctx, y, got) == 0, "apply: %s", ctx->err.msg)) qb_check_close(&c, "per tensor, ties to even, clamp", got, want, 8, 0, 0);
    /* STE: gradient where |x| <= amax (127.0 included, 127.4 and beyond clipped) */
    float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1}, gwant[8] = {1, 1, 1, 1, 1, 0, 0, 0};
    if (CHECK(&c, y && qb_backward_with_grad(ctx, y, ones) == 0 && xt->grad, "backward: %s", ctx->err.msg))
        qb_check_close(&c, "clipped straight-through gradient", xt->grad->data, gwant, 8, 0, 0);

    /* per row with a zero-range row; dequantized by dividing by s */
    qb_ctx_step_reset(ctx);
    qb_quantizer w;
    CHECK(&c, qb_quantizer_init(&w, "t._weight_quantizer", &d.kind[QUANT_KIND_LINEAR_WEIGHT], 2, &err) == 0, "%s", err.msg);
    w.tq.disabled = false;
    float wa[2] = {0.3f, 0.0f}, wx[6] = {0.1f, -0.31f, 0.2f, 1.0f, -1.0f, 0.0f};
    CHECK(&c, qb_quantizer_set_amax(&w, wa, 2, &err) == 0, "%s", err.msg);
    int64_t wshape[2] = {2, 3};
    y = qb_quantizer_apply(ctx, &w, qb_from_host(ctx, 2, wshape, wx));
    float s = 127.0f / 0.3f, wwant[6] = {rintf(0.1f * s) / s, -128.0f / s, rintf(0.2f * s) / s, 0, 0, 0};
    if (CHECK(&c, y && qb_to_host(ctx, y, got) == 0, "per row: %s", ctx->err.msg)) qb_check_close(&c, "per row, zero range row", got, wwant, 6, 0, 0);
    CHECK(&c, qb_quantizer_set_amax(&w, wa, 3, &err) != 0 && strstr(err.msg, "t._weight_quantizer: 3 amax values given, want 2 or 1"), "count: %s", err.msg);
    CHECK(&c, qb_quantizer_set_amax(&w, wa, 1, &err) == 0 && !qb_quantizer_per_channel(&w) && w.channels == 1, "one amax makes it per tensor");

    /* disabled: x itself; enabled without amax: dynamic max|x| (the reference's behaviour before calibration) */
    qb_ctx_step_reset(ctx);
    qb_tensor *x2 = qb_from_host(ctx, 1, shape, x);
    q.tq.disabled = true;
    CHECK(&c, qb_quantizer_apply(ctx, &q, x2) == x2, "disabled passes through");
    qb_quantizer none;
    qb_quantizer_init(&none, "t.matmul_a_input_quantizer", &d.kind[QUANT_KIND_MATMUL_INPUT], 1, &err);
    none.tq.disabled = false;
    y = qb_quantizer_apply(ctx, &none, x2);
    float s2 = 127.0f / 300.0f, dwant[8];
    for (int i = 0; i < 8; i++) dwant[i] = rintf(x[i] * s2) / s2;
    if (CHECK(&c, y && qb_to_host(ctx, y, got) == 0, "dynamic: %s", ctx->err.msg)) qb_check_close(&c, "dynamic amax = max|x|", got, dwant, 8, 0, 0);
    qb_quantizer_free(&q);
    qb_quantizer_free(&w);
    qb_quantizer_free(&none);
    CHECK(&c, qb_quantizer_init(&none, "t.x", &(quant_desc){.num_bits = 1}, 1, &err) != 0 && strstr(err.msg, "t.x"), "bad descriptor names the quantizer: %s", err.msg);

    qb_ctx_step_reset(ctx);
    calibration_through_model(&c, ctx);
    qb_ctx_free(ctx);
    return qb_check_finish(&c, "model quantizer");
}

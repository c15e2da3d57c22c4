/* test_parity.c: every head, the QA gradients, the fake-quantized QA forward and a save/load round trip on the tiny
 * random checkpoint, against transformers (fixtures by test/ref/gen_model_tiny.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "expect.h"
#include "model/checkpoint.h"
#include "model/heads.h"

#define LOGIT_TOL 1e-5
#define QUANT_TOL 1e-4
#define GRAD_REL_TOL 1e-4
/* gradients that are zero in exact arithmetic (key biases, biases feeding a softmax shift) are float noise in both
 * implementations: when PyTorch's largest entry is below GRAD_ZERO they are compared with absolute tolerance GRAD_ZERO */
#define GRAD_ZERO 1e-6

typedef struct inputs {
    qb_safetensors f;
    int32_t *ids, *mask, *types, *mlm, *lm, *cls, *nsp, *tok, *start, *end, *mc_ids, *mc_mask, *mc_labels;
    float *multi, *reg;
    int B, S;
} inputs;

static void inputs_free(inputs *in) {
    int32_t *ints[] = {in->ids, in->mask, in->types, in->mlm, in->lm, in->cls, in->nsp, in->tok, in->start, in->end,
                       in->mc_ids, in->mc_mask, in->mc_labels};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) free(ints[i]);
    free(in->multi);
    free(in->reg);
    qb_st_close(&in->f);
}

static void edit_decoder(qb_bert_config *c) { c->is_decoder = true; }
static void edit_multi_label(qb_bert_config *c) { c->problem_type = QB_PROBLEM_MULTI_LABEL; }

/* Runs one head on the fixture inputs and compares logits (and end logits) and loss with transformers. */
static void check_head(qb_check *c, inputs *in, const char *key, const char *dir, qb_bert_head head, void (*edit)(qb_bert_config *),
                       const qb_bert_labels *labels) {
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    qb_bert_model m;
    if (!CHECK(c, ctx && expect_model(&m, ctx, dir, head, edit, &err) == 0, "%s: %s", key, err.msg)) {
        if (ctx) qb_ctx_free(ctx);
        return;
    }
    ctx->no_grad = true;
    qb_bert_batch b = {.batch = in->B, .seq = in->S, .input_ids = in->ids, .attention_mask = in->mask, .token_type_ids = in->types};
    int choices = 0;
    if (head == QB_BERT_MULTIPLE_CHOICE) {
        choices = 3;
        b = (qb_bert_batch){.batch = 2 * choices, .seq = in->S, .input_ids = in->mc_ids, .attention_mask = in->mc_mask};
    }
    qb_bert_output out;
    int rc = qb_bert_run(&m, &b, choices, labels, &out);
    if (CHECK(c, rc == 0, "%s: %s", key, ctx->err.msg)) {
        char name[128];
        if (head == QB_BERT_MODEL) {
            expect_close(c, ctx, out.hidden, &in->f, "model.hidden", LOGIT_TOL);
            expect_close(c, ctx, out.pooled, &in->f, "model.pooled", LOGIT_TOL);
        } else {
            snprintf(name, sizeof name, "%s.logits", key);
            expect_close(c, ctx, out.logits, &in->f, name, LOGIT_TOL);
            snprintf(name, sizeof name, "%s.loss", key);
            expect_close(c, ctx, out.loss, &in->f, name, LOGIT_TOL);
        }
        if (head == QB_BERT_QUESTION_ANSWERING) expect_close(c, ctx, out.end_logits, &in->f, "qa.end_logits", LOGIT_TOL);
    }
    qb_bert_free(&m);
    qb_ctx_free(ctx);
}

/* One QA loss step in eval mode: every parameter's gradient against PyTorch's, relative to its largest entry. */
static void check_qa_grads(qb_check *c, inputs *in) {
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    qb_bert_model m;
    if (!CHECK(c, ctx && expect_model(&m, ctx, "test/model/fixtures/tiny", QB_BERT_QUESTION_ANSWERING, NULL, &err) == 0, "grads: %s", err.msg)) {
        if (ctx) qb_ctx_free(ctx);
        return;
    }
    qb_bert_batch b = {.batch = in->B, .seq = in->S, .input_ids = in->ids, .attention_mask = in->mask, .token_type_ids = in->types};
    qb_bert_output out;
    qb_zero_grad(ctx);
    bool ok = CHECK(c, qb_bert_question_answering(&m, &b, in->start, in->end, &out) == 0 && qb_backward(ctx, out.loss) == 0,
                    "grads: %s", ctx->err.msg);
    double worst = 0.0;
    int n_zero = 0;
    for (int i = 0; ok && i < m.n_params; i++) {
        qb_tensor *p = m.params[i];
        char name[300];
        snprintf(name, sizeof name, "grad.%s", p->name);
        int64_t n = 0;
        float *want = expect_f32(c, &in->f, name, &n);
        if (!want) continue;
        float *got = malloc((size_t)n * sizeof(float));
        if (CHECK(c, got && n == qb_numel(p) && p->grad && qb_to_host(ctx, p->grad, got) == 0, "%s: no gradient", name)) {
            double gmax = 0.0, dmax = 0.0;
            for (int64_t k = 0; k < n; k++) {
                gmax = fmax(gmax, fabs(want[k]));
                dmax = fmax(dmax, fabs((double)got[k] - want[k]));
            }
            if (gmax >= GRAD_ZERO) {
                worst = fmax(worst, dmax / gmax);
                CHECK(c, dmax <= GRAD_REL_TOL * gmax, "%s: max abs diff %.3g > 1e-4 x largest gradient %.3g", name, dmax, gmax);
            } else {
                n_zero++;
                CHECK(c, dmax <= GRAD_ZERO, "%s: zero gradient (largest %.3g) differs by %.3g", name, gmax, dmax);
            }
        }
        free(got);
        free(want);
    }
    printf("     %-48s n=%-8d worst maxdiff/max|grad| = %.3g (%d zero-gradient tensors)\n", "qa gradients (all parameters)", m.n_params,
           worst, n_zero);
    qb_bert_free(&m);
    qb_ctx_free(ctx);
}

/* QA with all 40 quantizers on, amax from the checkpoint (per-row weights), against PyTorch fake quantization. */
static void check_quant(qb_check *c, inputs *in, const char *save_to) {
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 1, &err);
    qb_bert_model m;
    if (!CHECK(c, ctx && expect_model(&m, ctx, "test/model/fixtures/tiny", QB_BERT_QUESTION_ANSWERING, NULL, &err) == 0, "quant: %s", err.msg)) {
        if (ctx) qb_ctx_free(ctx);
        return;
    }
    CHECK(c, m.n_quant == 40, "quantizers: %d, want 20 per layer", m.n_quant);
    CHECK(c, qb_bert_quant_enable(&m, "*", true) == 40, "enable all");
    int per_row = 0, calibrated = 0;
    for (int i = 0; i < m.n_quant; i++) {
        per_row += qb_quantizer_per_channel(&m.quant[i]);
        calibrated += m.quant[i].tq.amax != NULL;
    }
    CHECK(c, per_row == 12 && calibrated == 40, "per-row weight quantizers %d (want 12), with amax %d (want 40)", per_row, calibrated);
    CHECK(c, qb_bert_quantizer(&m, "bert.encoder.layer.1.attention.self.matmul_a_input_quantizer") != NULL, "named quantizer");
    ctx->no_grad = true;
    qb_bert_batch b = {.batch = in->B, .seq = in->S, .input_ids = in->ids, .attention_mask = in->mask, .token_type_ids = in->types};
    qb_bert_output out;
    if (CHECK(c, qb_bert_question_answering(&m, &b, in->start, in->end, &out) == 0, "quant: %s", ctx->err.msg)) {
        expect_close(c, ctx, out.logits, &in->f, "quant.logits", QUANT_TOL);
        expect_close(c, ctx, out.end_logits, &in->f, "quant.end_logits", QUANT_TOL);
        expect_close(c, ctx, out.loss, &in->f, "quant.loss", QUANT_TOL);
    }
    /* switched off by pattern: back to the float model */
    CHECK(c, qb_bert_quant_enable(&m, "*", false) == 40, "disable all");
    qb_ctx_step_reset(ctx);
    if (CHECK(c, qb_bert_question_answering(&m, &b, in->start, in->end, &out) == 0, "float: %s", ctx->err.msg))
        expect_close(c, ctx, out.logits, &in->f, "qa.logits", LOGIT_TOL);
    CHECK(c, qb_bert_quant_enable(&m, "bert.encoder.layer.0.*", true) == 20, "pattern enables one layer's 20");

    /* round trip: save (params + amax) -> load into a fresh context -> identical outputs */
    qb_bert_quant_enable(&m, "*", true);
    qb_ctx_step_reset(ctx);
    float *before = NULL, *after = NULL;
    int64_t n = in->B * in->S;
    if (qb_bert_question_answering(&m, &b, NULL, NULL, &out) == 0 && (before = malloc((size_t)n * sizeof(float))))
        qb_to_host(ctx, out.logits, before);
    bool saved = CHECK(c, qb_bert_save_pretrained(&m, save_to, &err) == 0, "save: %s", err.msg);
    qb_ctx *ctx2 = qb_ctx_new(QB_CPU, 2, &err);
    qb_bert_model m2;
    qb_bert_load_report rep;
    if (saved && CHECK(c, ctx2 && qb_bert_from_pretrained(&m2, ctx2, save_to, QB_BERT_QUESTION_ANSWERING, NULL, &rep, &err) == 0, "load: %s", err.msg)) {
        CHECK(c, rep.n_amax == 40 && rep.n_params == m.n_params && !rep.newly_initialized && !rep.unused,
              "round trip loaded %d amax, %d params (want 40, %d), new %s, unused %s", rep.n_amax, rep.n_params, m.n_params,
              rep.newly_initialized ? rep.newly_initialized : "-", rep.unused ? rep.unused : "-");
        bool same_amax = true;
        for (int i = 0; i < m.n_quant; i++)
            same_amax = same_amax && m2.quant[i].tq.n_amax == m.quant[i].tq.n_amax &&
                        memcmp(m2.quant[i].tq.amax, m.quant[i].tq.amax, (size_t)m.quant[i].tq.n_amax * sizeof(float)) == 0;
        CHECK(c, same_amax, "round trip: amax identical");
        qb_bert_quant_enable(&m2, "*", true);
        ctx2->no_grad = true;
        if (CHECK(c, qb_bert_question_answering(&m2, &b, NULL, NULL, &out) == 0, "reload: %s", ctx2->err.msg) &&
            (after = malloc((size_t)n * sizeof(float))) && qb_to_host(ctx2, out.logits, after) == 0 && before)
            CHECK(c, memcmp(before, after, (size_t)n * sizeof(float)) == 0, "round trip: outputs bit-identical");
        qb_bert_load_report_free(&rep);
        qb_bert_free(&m2);
    }
    if (ctx2) qb_ctx_free(ctx2);
    free(before);
    free(after);
    qb_bert_free(&m);
    qb_ctx_free(ctx);
}

int main(void) {
    qb_check c = {0};
    inputs in = {0};
    qb_err err = {0};
    if (!CHECK(&c, qb_st_open(&in.f, qb_test_path("test/model/fixtures/tiny/expected.safetensors"), &err) == 0, "%s", err.msg))
        return qb_check_finish(&c, "model parity");
    int64_t n = 0, nb = 0;
    in.ids = expect_i32(&c, &in.f, "in.input_ids", &n);
    in.start = expect_i32(&c, &in.f, "in.start_positions", &nb);
    in.B = (int)nb;
    in.S = nb ? (int)(n / nb) : 0;
    in.mask = expect_i32(&c, &in.f, "in.attention_mask", NULL);
    in.types = expect_i32(&c, &in.f, "in.token_type_ids", NULL);
    in.mlm = expect_i32(&c, &in.f, "in.mlm_labels", NULL);
    in.lm = expect_i32(&c, &in.f, "in.lm_labels", NULL);
    in.cls = expect_i32(&c, &in.f, "in.cls_labels", NULL);
    in.nsp = expect_i32(&c, &in.f, "in.nsp_labels", NULL);
    in.tok = expect_i32(&c, &in.f, "in.tok_labels", NULL);
    in.end = expect_i32(&c, &in.f, "in.end_positions", NULL);
    in.mc_ids = expect_i32(&c, &in.f, "in.mc_input_ids", NULL);
    in.mc_mask = expect_i32(&c, &in.f, "in.mc_attention_mask", NULL);
    in.mc_labels = expect_i32(&c, &in.f, "in.mc_labels", NULL);
    in.multi = expect_f32(&c, &in.f, "in.multi_labels", NULL);
    in.reg = expect_f32(&c, &in.f, "in.reg_labels", NULL);
    if (c.failed) {
        inputs_free(&in);
        return qb_check_finish(&c, "model parity");
    }
    const char *tiny = "test/model/fixtures/tiny", *tiny1 = "test/model/fixtures/tiny1";
    check_head(&c, &in, "model", tiny, QB_BERT_MODEL, NULL, NULL);
    check_head(&c, &in, "masked_lm", tiny, QB_BERT_MASKED_LM, NULL, &(qb_bert_labels){.ids = in.mlm});
    check_head(&c, &in, "lm_head", tiny, QB_BERT_LM_HEAD, edit_decoder, &(qb_bert_labels){.ids = in.lm});
    check_head(&c, &in, "seq_cls", tiny, QB_BERT_SEQUENCE_CLS, NULL, &(qb_bert_labels){.ids = in.cls});
    check_head(&c, &in, "seq_cls_multi", tiny, QB_BERT_SEQUENCE_CLS, edit_multi_label, &(qb_bert_labels){.values = in.multi});
    check_head(&c, &in, "seq_cls_reg", tiny1, QB_BERT_SEQUENCE_CLS, NULL, &(qb_bert_labels){.values = in.reg});
    check_head(&c, &in, "nsp", tiny, QB_BERT_NEXT_SENTENCE, NULL, &(qb_bert_labels){.ids = in.nsp});
    check_head(&c, &in, "multiple_choice", tiny1, QB_BERT_MULTIPLE_CHOICE, NULL, &(qb_bert_labels){.ids = in.mc_labels});
    check_head(&c, &in, "token_cls", tiny, QB_BERT_TOKEN_CLS, NULL, &(qb_bert_labels){.ids = in.tok});
    check_head(&c, &in, "qa", tiny, QB_BERT_QUESTION_ANSWERING, NULL,
               &(qb_bert_labels){.start_positions = in.start, .end_positions = in.end});
    check_qa_grads(&c, &in);
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/qb_model_roundtrip.%d", (int)getpid());
    check_quant(&c, &in, dir);
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    rmdir(dir);
    inputs_free(&in);
    return qb_check_finish(&c, "model parity");
}

/* test_quant_recipe.c: quant_trainer's options on a small random QDQBert model: descriptors (--wprec/--aprec,
 * --quant-per-tensor, --calibrator), --quant-disable, --quant-disable-keyword (module and quantizer names, regex),
 * --quant-disable-layer-module / --quant-enable-layer-module ("layer.\d+." prefix), --recalibrate-weights, --fuse-qkv,
 * --clip-gelu, bad options naming the key, and a failed calibration leaving the quantizers as they were. */
#include <math.h>
#include <string.h>
#include "check.h"
#include "train/calibrate.h"
#include "tiny_qdqbert.h"
#include "train/quant_recipe.h"

static bool enabled(qb_bert_model *m, const char *name) {
    qb_quantizer *q = qb_bert_quantizer(m, name);
    return q && !q->tq.disabled;
}

static int count_enabled(qb_bert_model *m) {
    int t, e, a;
    qb_quant_count(m, &t, &e, &a);
    return e;
}

static void set_all_amax(qb_bert_model *m, float v) {
    qb_err err = {0};
    for (int i = 0; i < m->n_quant; i++) {
        float a[16];
        for (int k = 0; k < 16; k++) a[k] = v + 0.01f * (float)i;
        qb_quantizer_set_amax(&m->quant[i], a, m->quant[i].channels, &err);
    }
}

/* A calibration that fails (an input id outside the vocabulary) puts every quantizer's switches and amax back. */
static void calibrate_failure(qb_check *c, qb_ctx *ctx) {
    qb_err err = {0};
    qb_quant_recipe r;
    qb_quant_recipe_default(&r);
    qb_bert_model m;
    if (!CHECK(c, tiny_qdqbert_build(&m, ctx, &r, &err) == 0, "build for calibration: %s", err.msg)) return;
    set_all_amax(&m, 2.0f);
    qb_bert_quant_enable(&m, "*", true);
    qb_bert_quant_enable(&m, "*.attention.self.key.*", false);
    enum { ROWS = 2, LEN = 8 };
    int32_t ids[ROWS * LEN], types[ROWS * LEN] = {0}, mask[ROWS * LEN], pos[ROWS] = {0, 0};
    for (int i = 0; i < ROWS * LEN; i++) {
        ids[i] = 1 + i % 30;
        mask[i] = 1;
    }
    ids[LEN + 3] = 99;  /* the vocabulary has 40 ids */
    qb_squad_features f = {.max_len = LEN, .n = ROWS, .input_ids = ids, .token_type_ids = types, .attention_mask = mask,
                           .start_positions = pos, .end_positions = pos};
    bool was_disabled[64];
    float was_amax[64];
    for (int i = 0; i < m.n_quant && i < 64; i++) {
        was_disabled[i] = m.quant[i].tq.disabled;
        was_amax[i] = m.quant[i].tq.amax[0];
    }
    qb_calib_opts o = {.num_samples = ROWS, .batch_size = 1, .seed = 1, .method = HIST_AMAX_PERCENTILE, .percentile = 99.9};
    int rc = qb_calibrate(&m, &f, &o, NULL, &err);
    CHECK(c, rc != 0 && strstr(err.msg, "embedding: id 99"), "calibration on a bad id fails: %s", err.msg);
    int changed = 0;
    for (int i = 0; i < m.n_quant && i < 64; i++) {
        const tensor_quantizer *q = &m.quant[i].tq;
        changed += q->disabled != was_disabled[i] || q->calib_on || !q->quant_on || q->amax[0] != was_amax[i];
    }
    CHECK(c, m.n_quant <= 64 && changed == 0, "after a failed calibration every quantizer is as before (%d of %d changed)", changed,
          m.n_quant);
    qb_bert_free(&m);
}

int main(void) {
    qb_check c = {0};
    qb_err err = {0};
    qb_ctx *ctx = qb_ctx_new(QB_CPU, 3, &err);
    if (!ctx) qb_die("test_quant_recipe", &err);
    qb_quant_recipe r;
    qb_quant_recipe_default(&r);
    r.calibrator = QB_CALIBRATOR_PERCENTILE;
    r.wprec = 6;
    r.aprec = 4;
    qb_bert_model m;
    if (!CHECK(&c, tiny_qdqbert_build(&m, ctx, &r, &err) == 0, "build: %s", err.msg)) return qb_check_finish(&c, "quant recipe");
    qb_quantizer *wq = qb_bert_quantizer(&m, "bert.encoder.layer.0.attention.self.query._weight_quantizer");
    qb_quantizer *aq = qb_bert_quantizer(&m, "bert.encoder.layer.0.attention.self.matmul_a_input_quantizer");
    qb_quantizer *rq = qb_bert_quantizer(&m, "bert.encoder.layer.1.output.add_residual_input_quantizer");
    CHECK(&c, wq && wq->tq.desc.num_bits == 6 && wq->tq.desc.axis == 0 && wq->tq.desc.calib == CALIB_MAX, "weights: wprec bits, per row, max");
    CHECK(&c, aq && aq->tq.desc.num_bits == 4 && aq->tq.desc.calib == CALIB_HISTOGRAM && aq->tq.desc.axis == -1,
          "matmul inputs: aprec bits, histogram, per tensor");
    CHECK(&c, rq && rq->tq.desc.num_bits == 4 && rq->tq.desc.calib == CALIB_HISTOGRAM, "residual inputs: aprec bits, histogram");

    CHECK(&c, qb_quant_configure(&m, &r, NULL, &err) == 0 && count_enabled(&m) == 40, "all 40 enabled by default: %s", err.msg);
    r.disable = true;
    CHECK(&c, qb_quant_configure(&m, &r, NULL, &err) == 0 && count_enabled(&m) == 0, "quant-disable turns every quantizer off");
    snprintf(r.enable_layer_module, sizeof r.enable_layer_module, "attention.self");
    CHECK(&c, qb_quant_configure(&m, &r, NULL, &err) == 0 && count_enabled(&m) == 20, "enable-layer-module attention.self after disable: %d",
          count_enabled(&m));
    CHECK(&c, enabled(&m, "bert.encoder.layer.1.attention.self.matmul_k_input_quantizer") &&
              enabled(&m, "bert.encoder.layer.0.attention.self.value._weight_quantizer") &&
              !enabled(&m, "bert.encoder.layer.0.attention.output.dense._input_quantizer"), "the 10 attention.self quantizers of each layer");
    r.disable = false;
    r.enable_layer_module[0] = '\0';
    snprintf(r.disable_keyword, sizeof r.disable_keyword, "intermediate matmul_[qk]");
    CHECK(&c, qb_quant_configure(&m, &r, NULL, &err) == 0 && count_enabled(&m) == 32, "disable-keyword 'intermediate matmul_[qk]': %d enabled",
          count_enabled(&m));
    CHECK(&c, !enabled(&m, "bert.encoder.layer.0.intermediate.dense._input_quantizer") &&
              !enabled(&m, "bert.encoder.layer.1.intermediate.dense._weight_quantizer") &&
              !enabled(&m, "bert.encoder.layer.1.attention.self.matmul_q_input_quantizer") &&
              enabled(&m, "bert.encoder.layer.1.attention.self.matmul_v_input_quantizer"), "keyword hits QuantLinear modules (both quantizers) and quantizer names");
    r.disable_keyword[0] = '\0';
    snprintf(r.disable_layer_module, sizeof r.disable_layer_module, "output");
    CHECK(&c, qb_quant_configure(&m, &r, NULL, &err) == 0, "%s", err.msg);
    CHECK(&c, !enabled(&m, "bert.encoder.layer.0.output.dense._input_quantizer") &&
              !enabled(&m, "bert.encoder.layer.1.output.add_local_input_quantizer") &&
              enabled(&m, "bert.encoder.layer.0.attention.output.dense._input_quantizer") && count_enabled(&m) == 32,
          "disable-layer-module output: layer.N.output.* only (%d enabled)", count_enabled(&m));
    r.disable_layer_module[0] = '\0';

    set_all_amax(&m, 5.0f);
    r.clip_gelu = 2.5;
    r.fuse_qkv = true;
    r.recalibrate_weights = true;
    CHECK(&c, qb_quant_configure(&m, &r, NULL, &err) == 0, "fuse/clip/recalibrate: %s", err.msg);
    qb_quantizer *gelu = qb_bert_quantizer(&m, "bert.encoder.layer.1.output.dense._input_quantizer");
    qb_quantizer *attn_out = qb_bert_quantizer(&m, "bert.encoder.layer.1.attention.output.dense._input_quantizer");
    CHECK(&c, gelu->tq.amax[0] == 2.5f && attn_out->tq.amax[0] > 5.0f, "clip-gelu clips output.dense's input only");
    float mq = qb_bert_quantizer(&m, "bert.encoder.layer.0.attention.self.matmul_q_input_quantizer")->tq.amax[0];
    float mk = qb_bert_quantizer(&m, "bert.encoder.layer.0.attention.self.matmul_k_input_quantizer")->tq.amax[0];
    float mv = qb_bert_quantizer(&m, "bert.encoder.layer.0.attention.self.matmul_v_input_quantizer")->tq.amax[0];
    float want = 5.0f + 0.01f * (float)QB_Q_MATMUL_V;
    CHECK(&c, mq == want && mk == want && mv == want, "fuse-qkv: q/k/v matmul amax = their max (%g %g %g, want %g)", mq, mk, mv, want);
    qb_tensor *w = m.layers[1].inter.w;
    qb_quantizer *iw = m.layers[1].inter.w_q;
    bool rows = iw->tq.n_amax == 16;
    for (int64_t row = 0; rows && row < 16; row++) {
        float mx = 0.0f;
        for (int k = 0; k < 8; k++) mx = fmaxf(mx, fabsf(w->data[row * 8 + k]));
        rows = iw->tq.amax[row] == mx;
    }
    CHECK(&c, rows, "recalibrate-weights: amax = max|W| of each row");
    qb_bert_free(&m);

    /* per-tensor weights: one amax, and fuse-qkv also fuses the q/k/v weights */
    qb_ctx_free(ctx);
    ctx = qb_ctx_new(QB_CPU, 3, &err);
    qb_quant_recipe_default(&r);
    r.per_tensor = true;
    r.fuse_qkv = true;
    if (CHECK(&c, tiny_qdqbert_build(&m, ctx, &r, &err) == 0, "build per tensor: %s", err.msg)) {
        set_all_amax(&m, 1.0f);
        CHECK(&c, qb_quant_configure(&m, &r, NULL, &err) == 0, "%s", err.msg);
        float wqv = qb_bert_quantizer(&m, "bert.encoder.layer.1.attention.self.query._weight_quantizer")->tq.amax[0];
        float wvv = qb_bert_quantizer(&m, "bert.encoder.layer.1.attention.self.value._weight_quantizer")->tq.amax[0];
        CHECK(&c, wqv == wvv && wqv == 1.0f + 0.01f * (float)(QB_Q_PER_LAYER + QB_Q_VALUE_WEIGHT), "per-tensor q/k/v weights fused (%g %g)", wqv, wvv);
        qb_bert_free(&m);
    }
    r.clip_gelu = 1.0;
    r.fuse_qkv = false;
    if (tiny_qdqbert_build(&m, ctx, &r, &err) == 0) {
        CHECK(&c, qb_quant_configure(&m, &r, NULL, &err) != 0 && strstr(err.msg, "quant.clip_gelu") && strstr(err.msg, "no amax"),
              "clip-gelu before calibration: %s", err.msg);
        qb_bert_free(&m);
    }

    qb_quant_recipe_default(&r);
    qb_err e2 = {0};
    r.aprec = 1;
    CHECK(&c, qb_quant_recipe_validate(&r, &e2) != 0 && strstr(e2.msg, "quant.aprec"), "bad aprec: %s", e2.msg);
    qb_quant_recipe_default(&r);
    qb_err e3 = {0};
    snprintf(r.disable_keyword, sizeof r.disable_keyword, "ok (unclosed");
    CHECK(&c, qb_quant_recipe_validate(&r, &e3) != 0 && strstr(e3.msg, "quant.disable_keyword") && strstr(e3.msg, "(unclosed"),
          "bad regex named: %s", e3.msg);
    /* patterns whose repetitions (commas separate patterns, so counts have one number) would make regcomp's tree explode (a fuzzer's find: 2 GB for "r++...+") */
    static const struct { const char *pattern, *why; } explode[] = {
        {"pr++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++", "multiple repeat"},
        {"a*+", "multiple repeat"}, {"a{2}{3}", "multiple repeat"}, {"(a+)*?+", "multiple repeat"},
        {"((a{100}){100}){100}", "expand to more than 16384 terms"}, {"(x|y){20000}", "expand to more than"},
        {"((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))", "nested deeper than 32"},
    };
    for (size_t i = 0; i < sizeof explode / sizeof explode[0]; i++) {
        qb_quant_recipe_default(&r);
        qb_err ex = {0};
        snprintf(r.disable_keyword, sizeof r.disable_keyword, "%s", explode[i].pattern);
        CHECK(&c, qb_quant_recipe_validate(&r, &ex) != 0 && strstr(ex.msg, "quant.disable_keyword") && strstr(ex.msg, explode[i].why),
              "pattern %s refused: %s", explode[i].pattern, ex.msg);
    }
    static const char *const fine[] = {"a+?", "attention.(self|output){2}", "[]+]+x", "a{3}b", "(q|k|v){100}_x", "\\d+\\.\\d*"};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        qb_quant_recipe_default(&r);
        qb_err ok = {0};
        snprintf(r.enable_layer_module, sizeof r.enable_layer_module, "%s", fine[i]);
        CHECK(&c, qb_quant_recipe_validate(&r, &ok) == 0, "pattern %s taken: %s", fine[i], ok.msg);
    }
    qb_calibrator cal;
    qb_err e4 = {0};
    CHECK(&c, qb_calibrator_parse("entropy", &cal, &e4) == 0 && cal == QB_CALIBRATOR_ENTROPY && qb_calibrator_parse("minmax", &cal, &e4) != 0 &&
              strstr(e4.msg, "'minmax'"), "calibrator names: %s", e4.msg);
    calibrate_failure(&c, ctx);
    qb_ctx_free(ctx);
    return qb_check_finish(&c, "quant recipe");
}

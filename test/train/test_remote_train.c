/* test_remote_train.c: QAT of a small random BertForQuestionAnswering on the remote test device (memory the host
 * cannot read, test/common/remote_device.h) equals the same run on the CPU bit for bit: dynamic-amax forward,
 * histogram (percentile) and max calibration, three training steps with dropout, clipping and AdamW (losses, gradient
 * norms, parameters), and the checkpoint files (model and optimizer state). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/fileio.h"
#include "check.h"
#include "model/heads.h"
#include "remote_device.h"
#include "train/calibrate.h"
#include "train/qa_train.h"
#include "tiny_qdqbert.h"

enum { ROWS = 6, LEN = 8, STEPS = 3 };

typedef struct run_out {
    float dyn_logits[2 * LEN];
    float loss[STEPS];
    double norm[STEPS];
    float *params, *amax;
    int64_t n_params, n_amax;
} run_out;

static void features(qb_squad_features *f, int32_t *ids, int32_t *types, int32_t *mask, int32_t *sp, int32_t *ep) {
    for (int i = 0; i < ROWS * LEN; i++) {
        ids[i] = 1 + (i * 7) % 37;
        types[i] = i % LEN >= LEN / 2;
        mask[i] = i % LEN < LEN - 1 - (i / LEN) % 3;
    }
    for (int r = 0; r < ROWS; r++) {
        sp[r] = 1 + r % 4;
        ep[r] = 2 + r % 4;
    }
    *f = (qb_squad_features){.max_len = LEN, .n = ROWS, .input_ids = ids, .token_type_ids = types, .attention_mask = mask,
                             .start_positions = sp, .end_positions = ep};
}

/* The whole run on ctx; the checkpoint goes to dir. */
static int run(qb_ctx *ctx, const char *dir, run_out *o, qb_err *err) {
    memset(o, 0, sizeof *o);
    qb_quant_recipe r;
    qb_quant_recipe_default(&r);
    r.calibrator = QB_CALIBRATOR_PERCENTILE;
    qb_bert_model m;
    if (tiny_qdqbert_build(&m, ctx, &r, err)) return -1;
    qb_squad_features f;
    int32_t ids[ROWS * LEN], types[ROWS * LEN], mask[ROWS * LEN], sp[ROWS], ep[ROWS];
    features(&f, ids, types, mask, sp, ep);
    int rc = 0;
    /* quantizers on before calibration: dynamic max|x| */
    qb_bert_quant_enable(&m, "*", true);
    qb_ctx_step_reset(ctx);
    ctx->no_grad = true;
    qb_bert_batch b = {.batch = 1, .seq = LEN, .input_ids = ids, .token_type_ids = types, .attention_mask = mask};
    qb_bert_output out;
    if (qb_bert_question_answering(&m, &b, NULL, NULL, &out) || qb_to_host(ctx, out.logits, o->dyn_logits) ||
        qb_to_host(ctx, out.end_logits, o->dyn_logits + LEN))
        rc = qb_errorf(err, "dynamic forward: %s", ctx->err.msg);
    ctx->no_grad = false;
    qb_calib_opts co = {.num_samples = 4, .batch_size = 2, .seed = 3, .method = HIST_AMAX_PERCENTILE, .percentile = 99.9};
    if (!rc) rc = qb_calibrate(&m, &f, &co, NULL, err);
    qb_qa_train_opts to = {.batch_size = 2, .max_steps = STEPS, .learning_rate = 1e-3, .scheduler = QB_LR_LINEAR, .weight_decay = 0.01,
                           .adam_beta1 = 0.9, .adam_beta2 = 0.999, .adam_epsilon = 1e-8, .max_grad_norm = 0.5, .seed = 5};
    qb_qa_trainer t;
    memset(&t, 0, sizeof t);
    if (!rc) rc = qb_qa_trainer_init(&t, &m, &f, &to, err);
    for (int s = 0; !rc && s < STEPS; s++) {
        qb_qa_step_stats st;
        rc = qb_qa_load_batch(&t, s, &t.batch, err) || qb_qa_train_step(&t, &t.batch, 1e-3, &st, err);
        o->loss[s] = st.loss;
        o->norm[s] = st.grad_norm;
        t.step++;
    }
    if (!rc) rc = qb_qa_trainer_save(&t, dir, err);
    for (int i = 0; i < m.n_params; i++) o->n_params += qb_numel(m.params[i]);
    for (int i = 0; i < m.n_quant; i++) o->n_amax += m.quant[i].tq.n_amax;
    o->params = malloc((size_t)o->n_params * sizeof(float));
    o->amax = malloc((size_t)(o->n_amax + 1) * sizeof(float));
    int64_t at = 0;
    for (int i = 0; !rc && i < m.n_params; i++) {
        rc = qb_to_host(ctx, m.params[i], o->params + at) ? qb_errorf(err, "%s", ctx->err.msg) : 0;
        at += qb_numel(m.params[i]);
    }
    at = 0;
    for (int i = 0; !rc && i < m.n_quant; i++) {
        if (m.quant[i].tq.amax) memcpy(o->amax + at, m.quant[i].tq.amax, (size_t)m.quant[i].tq.n_amax * sizeof(float));
        at += m.quant[i].tq.n_amax;
    }
    qb_qa_trainer_free(&t);
    qb_bert_free(&m);
    return rc;
}

static bool same_file(const char *a_dir, const char *b_dir, const char *name) {
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/%s", a_dir, name);
    snprintf(pb, sizeof pb, "%s/%s", b_dir, name);
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    qb_err err = {0};
    bool same = !qb_read_file(pa, &a, &na, &err) && !qb_read_file(pb, &b, &nb, &err) && na == nb && memcmp(a, b, na) == 0;
    free(a);
    free(b);
    return same;
}

static void remove_dir(const char *dir) {
    static const char *const files[] = {"config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

int main(void) {
    qb_check c = {0};
    qb_err err = {0};
    char dir_cpu[] = "/tmp/qb_remote_cpu_XXXXXX", dir_rem[] = "/tmp/qb_remote_rem_XXXXXX";
    if (!mkdtemp(dir_cpu) || !mkdtemp(dir_rem)) return 1;
    qb_ctx *cpu = qb_ctx_new(QB_CPU, 11, &err), *rem = cpu ? remote_ctx_new(11, &err) : NULL;
    if (!rem) qb_die("test_remote_train", &err);
    run_out a, b;
    qb_err ea = {0}, eb = {0};
    int ra = run(cpu, dir_cpu, &a, &ea), rb = run(rem, dir_rem, &b, &eb);
    if (CHECK(&c, ra == 0 && rb == 0, "cpu run (%s) and remote run (%s)", ea.msg, eb.msg)) {
        CHECK(&c, !memcmp(a.dyn_logits, b.dyn_logits, sizeof a.dyn_logits), "dynamic-amax forward equal");
        CHECK(&c, a.n_amax == b.n_amax && !memcmp(a.amax, b.amax, (size_t)a.n_amax * sizeof(float)), "calibrated amax equal (%lld values)",
              (long long)a.n_amax);
        for (int s = 0; s < STEPS; s++)
            CHECK(&c, isfinite(a.loss[s]) && !memcmp(&a.loss[s], &b.loss[s], sizeof(float)) && a.norm[s] == b.norm[s],
                  "step %d: loss %.7g vs %.7g, norm %.7g vs %.7g",
                  s + 1, (double)a.loss[s], (double)b.loss[s], a.norm[s], b.norm[s]);
        CHECK(&c, a.n_params == b.n_params && !memcmp(a.params, b.params, (size_t)a.n_params * sizeof(float)),
              "parameters after training equal (%lld floats)", (long long)a.n_params);
        CHECK(&c, same_file(dir_cpu, dir_rem, "model.safetensors") && same_file(dir_cpu, dir_rem, "optimizer.safetensors"),
              "checkpoint files identical (model and optimizer state)");
    }
    free(a.params);
    free(a.amax);
    free(b.params);
    free(b.amax);
    remove_dir(dir_cpu);
    remove_dir(dir_rem);
    qb_ctx_free(rem);
    qb_ctx_free(cpu);
    return qb_check_finish(&c, "remote training");
}

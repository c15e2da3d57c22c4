/* dist_rank.c: one rank of the data-parallel tests (test_dist.sh starts it with mpirun -np 2 or alone): QAT of the
 * tiny QDQBert on fixed features, calibration with every calibrator, a NaN on one rank, and the comparisons of the
 * files rank 0 writes.
 *   dist_rank train OUT BATCH STEPS SAVE_STEPS EPS [RESUME]   OUT/params.bin, OUT/losses.bin, checkpoints in OUT
 *   dist_rank calib OUT RANGE_FIRST                           OUT/amax-{max,percentile,mse,entropy}.bin
 *   dist_rank nan OUT                                         rank 1 trains with a NaN weight
 *   dist_rank compare-train A B RTOL                          parameters and losses of two train runs
 *   dist_rank compare-calib A B                               amax of two calib runs, bit for bit
 *   dist_rank compare-resume FULL RESUMED RTOL                losses of the resumed steps */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "autograd/cuda/backend.h"
#include "base/fileio.h"
#include "dist/comm.h"
#include "model/checkpoint.h"
#include "train/calibrate.h"
#include "train/qa_train.h"
#include "../train/tiny_qdqbert.h"

enum { ROWS = 24, LEN = 8 };

typedef struct features_buf {
    int32_t ids[ROWS * LEN], types[ROWS * LEN], mask[ROWS * LEN], sp[ROWS], ep[ROWS];
    qb_squad_features f;
} features_buf;

static void features(features_buf *b) {
    for (int i = 0; i < ROWS * LEN; i++) {
        b->ids[i] = 1 + (i * 7 + (i / LEN) * 5) % 37;
        b->types[i] = i % LEN >= LEN / 2;
        b->mask[i] = i % LEN < LEN - 1 - (i / LEN) % 3;
    }
    for (int r = 0; r < ROWS; r++) {
        b->sp[r] = 1 + r % 4;
        b->ep[r] = 2 + r % 5;
    }
    b->f = (qb_squad_features){.max_len = LEN, .n = ROWS, .input_ids = b->ids, .token_type_ids = b->types, .attention_mask = b->mask,
                               .start_positions = b->sp, .end_positions = b->ep};
}

static _Noreturn void die(qb_comm *c, const qb_err *err) {
    fprintf(stderr, "dist_rank: rank %d/%d: %s\n", c->rank, c->size, err->msg);
    if (c->size > 1) qb_comm_abort(c, 1);
    exit(1);
}

static void no_dropout(qb_bert_model *m) {
    m->cfg.hidden_dropout_prob = 0.0;
    m->cfg.attention_probs_dropout_prob = 0.0;
}

static int write_floats(const char *dir, const char *name, const float *v, int64_t n, qb_err *err) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return qb_write_file_atomic(path, v, (size_t)n * sizeof(float), err);
}

/* The model: the tiny random one (quantizers calibrated by max on rank-shared data), or a checkpoint. */
static int build(qb_bert_model *m, qb_ctx *ctx, const char *from, qb_err *err) {
    qb_quant_recipe r;
    qb_quant_recipe_default(&r);
    if (!from) return tiny_qdqbert_build(m, ctx, &r, err);
    quant_defaults d;
    if (qb_quant_recipe_defaults(&r, &d, err)) return -1;
    qb_bert_options opt = {.quant = &d};
    qb_bert_load_report rep = {0};
    int rc = qb_bert_from_pretrained(m, ctx, from, QB_BERT_QUESTION_ANSWERING, &opt, &rep, err);
    qb_bert_load_report_free(&rep);
    return rc;
}

static int train(qb_comm *c, int argc, char **argv, bool poison, qb_err *err) {
    const char *out = argv[2];
    int batch = argc > 3 ? atoi(argv[3]) : 2, steps = argc > 4 ? atoi(argv[4]) : 5, save = argc > 5 ? atoi(argv[5]) : 0;
    double eps = argc > 6 ? atof(argv[6]) : 1e-8;
    const char *resume = argc > 7 ? argv[7] : NULL;
    features_buf fb;
    features(&fb);
    /* QB_TEST_DEVICE=cuda: each rank on its GPU (cuda:local rank), the nccl backend; QB_TEST_ACCUM: accumulation steps */
    const char *dev = getenv("QB_TEST_DEVICE"), *accum = getenv("QB_TEST_ACCUM");
    bool cuda = dev && strcmp(dev, "cuda") == 0;
    int ordinal = 0;
    if (cuda && (qb_comm_gpu_ordinal(c, -1, qb_cuda_device_count(), &ordinal, err) || qb_comm_use_gpu(c, ordinal, err))) return -1;
    if (c->rank == 0) printf("dist_rank: %d rank%s, %s backend, device %s:%d\n", c->size, c->size > 1 ? "s" : "", c->be->name, cuda ? "cuda" : "cpu", ordinal);
    qb_ctx *ctx = cuda ? qb_ctx_new_cuda(ordinal, 7, err) : qb_ctx_new(QB_CPU, 7, err);
    if (!ctx) return -1;
    qb_bert_model m;
    if (build(&m, ctx, resume, err)) return -1;
    no_dropout(&m);
    int rc = 0;
    if (poison && c->rank == 1) {
        float nan = NAN;
        rc = qb_upload(ctx, m.params[m.n_params - 1]->data, &nan, sizeof nan) ? qb_errorf(err, "%s", ctx->err.msg) : 0; /* qa_outputs.bias */
    }
    qb_qa_train_opts o = {.batch_size = batch, .max_steps = steps, .learning_rate = 1e-4, .scheduler = QB_LR_LINEAR, .warmup_steps = 1,
                          .weight_decay = 0.01, .adam_beta1 = 0.9, .adam_beta2 = 0.999, .adam_epsilon = eps, .max_grad_norm = 1.0,
                          .seed = 5, .logging_steps = 1, .save_steps = save, .output_dir = out, .log = stdout, .comm = c,
                          .gradient_accumulation_steps = accum ? atoi(accum) : 0};
    qb_qa_trainer t;
    memset(&t, 0, sizeof t);
    if (!rc) rc = qb_qa_trainer_init(&t, &m, &fb.f, &o, err);
    if (!rc && resume) rc = qb_qa_trainer_resume(&t, resume, err);
    if (!rc) rc = qb_qa_train(&t, 0, err);
    if (!rc && c->rank == 0 && c->be->device_buffers)
        printf("dist_rank: %lld of %lld gradient buckets started during the backward pass\n", (long long)t.sync.hooked_starts, (long long)t.sync.starts);
    if (!rc && c->rank == 0) {
        float *p = malloc((size_t)ctx->params.block_numel * sizeof(float));
        rc = !p || qb_download(ctx, p, ctx->params.block_data, (size_t)ctx->params.block_numel * sizeof(float))
                 ? qb_errorf(err, "reading the parameters: %s", ctx->err.msg)
                 : write_floats(out, "params.bin", p, ctx->params.block_numel, err);
        free(p);
        if (!rc) rc = t.n_losses < t.total_steps ? qb_errorf(err, "%lld losses for %lld steps", (long long)t.n_losses, (long long)t.total_steps)
                                                 : write_floats(out, "losses.bin", t.losses, t.total_steps, err);
    }
    qb_qa_trainer_free(&t);
    qb_bert_free(&m);
    qb_ctx_free(ctx);
    return rc;
}

static const char *const calib_names[] = {"max", "percentile", "mse", "entropy"};

static int calib(qb_comm *c, int argc, char **argv, qb_err *err) {
    const char *out = argv[2];
    bool range_first = argc > 3 && atoi(argv[3]);
    features_buf fb;
    features(&fb);
    int rc = c->rank == 0 ? qb_mkdir_p(out, err) : 0;
    for (int k = 0; k < 4 && !rc; k++) {
        qb_ctx *ctx = qb_ctx_new(QB_CPU, 7, err);
        if (!ctx) return -1;
        qb_quant_recipe r;
        qb_quant_recipe_default(&r);
        r.calibrator = (qb_calibrator)k;
        r.percentile = 99.0;
        qb_bert_model m;
        if (tiny_qdqbert_build(&m, ctx, &r, err)) return -1;
        qb_calib_opts o = {.num_samples = ROWS, .batch_size = 3, .seed = 9, .method = qb_calibrator_hist_method(r.calibrator),
                           .percentile = r.percentile, .comm = c, .range_first = range_first};
        rc = qb_calibrate(&m, &fb.f, &o, c->rank == 0 ? stdout : NULL, err);
        int64_t n = 0, at = 0;
        for (int i = 0; i < m.n_quant; i++) n += m.quant[i].tq.n_amax;
        float *a = malloc(((size_t)n + 1) * sizeof *a);
        for (int i = 0; a && !rc && i < m.n_quant; i++) {
            memcpy(a + at, m.quant[i].tq.amax, (size_t)m.quant[i].tq.n_amax * sizeof(float));
            at += m.quant[i].tq.n_amax;
        }
        char name[64];
        snprintf(name, sizeof name, "amax-%s.bin", calib_names[k]);
        if (!rc && c->rank == 0) rc = !a ? qb_errorf(err, "out of memory") : write_floats(out, name, a, n, err);
        free(a);
        qb_bert_free(&m);
        qb_ctx_free(ctx);
    }
    return rc;
}

static float *read_floats(const char *dir, const char *name, int64_t *n) {
    char path[1024], *text = NULL;
    size_t len = 0;
    qb_err err = {0};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (qb_read_file(path, &text, &len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    *n = (int64_t)(len / sizeof(float));
    return (float *)text;
}

/* Largest |a - b| / max(|a|, |b|, floor), and whether all are equal bit for bit. */
static double max_rel(const float *a, const float *b, int64_t n, double floor, bool *same, double *abs_max) {
    double worst = 0.0;
    *same = true;
    *abs_max = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(a[i]) && isnan(b[i])) continue;
        double d = fabs((double)a[i] - (double)b[i]), s = fmax(fabs((double)a[i]), fabs((double)b[i]));
        *same &= memcmp(&a[i], &b[i], sizeof(float)) == 0;
        *abs_max = fmax(*abs_max, d);
        worst = fmax(worst, d / fmax(s, floor));
    }
    return worst;
}

static int compare_train(char **argv) {
    int64_t na, nb, la, lb;
    float *pa = read_floats(argv[2], "params.bin", &na), *pb = read_floats(argv[3], "params.bin", &nb);
    float *xa = read_floats(argv[2], "losses.bin", &la), *xb = read_floats(argv[3], "losses.bin", &lb);
    double rtol = atof(argv[4]), amax_p, amax_l;
    bool same_p, same_l;
    if (na != nb || la != lb) return free(pa), free(pb), free(xa), free(xb), fprintf(stderr, "FAIL: sizes differ (%lld/%lld params, %lld/%lld steps)\n", (long long)na, (long long)nb, (long long)la, (long long)lb), 1;
    double rp = max_rel(pa, pb, na, 1e-4, &same_p, &amax_p), rl = max_rel(xa, xb, la, 1e-6, &same_l, &amax_l);
    printf("parameters (%lld floats): max relative difference %.3g (max abs %.3g)%s\n", (long long)na, rp, amax_p, same_p ? ", bit-identical" : "");
    printf("losses (%lld steps): max relative difference %.3g%s\n", (long long)la, rl, same_l ? ", bit-identical" : "");
    for (int64_t s = 0; s < la; s++) printf("  step %lld: loss %.9g vs %.9g\n", (long long)s + 1, (double)xa[s], (double)xb[s]);
    int bad = !(rp <= rtol) || !(rl <= rtol);
    for (int64_t s = 0; s < la; s++) bad |= !isfinite(xa[s]);
    printf("%s: within %.0e relative\n", bad ? "FAIL" : "ok", rtol);
    free(pa);
    free(pb);
    free(xa);
    free(xb);
    return bad;
}

static int compare_calib(char **argv) {
    int bad = 0;
    for (int k = 0; k < 4; k++) {
        char name[64];
        snprintf(name, sizeof name, "amax-%s.bin", calib_names[k]);
        int64_t na, nb;
        float *a = read_floats(argv[2], name, &na), *b = read_floats(argv[3], name, &nb);
        bool same = na == nb;
        double abs_max = 0.0, rel = same ? max_rel(a, b, na, 1e-12, &same, &abs_max) : INFINITY;
        printf("%-10s %lld amax: %s (max relative difference %.3g)\n", calib_names[k], (long long)na, same ? "bit-identical" : "DIFFER", rel);
        bad |= !same;
        free(a);
        free(b);
    }
    return bad;
}

static int compare_resume(char **argv) {
    int64_t la, lb;
    float *full = read_floats(argv[2], "losses.bin", &la), *res = read_floats(argv[3], "losses.bin", &lb);
    double rtol = atof(argv[4]), worst = 0.0;
    int bad = la != lb, resumed = 0;
    for (int64_t s = 0; !bad && s < la; s++) {
        if (isnan(res[s])) continue;
        resumed++;
        double d = fabs((double)full[s] - (double)res[s]) / fabs((double)full[s]);
        worst = fmax(worst, d);
        printf("  step %lld: loss %.9g (2 ranks) vs %.9g (resumed on 1 rank)\n", (long long)s + 1, (double)full[s], (double)res[s]);
    }
    bad |= resumed == 0 || !(worst <= rtol);
    printf("%s: %d resumed steps, max relative loss difference %.3g\n", bad ? "FAIL" : "ok", resumed, worst);
    free(full);
    free(res);
    return bad;
}

int main(int argc, char **argv) {
    if (argc < 3) return fprintf(stderr, "usage: dist_rank train|calib|nan|compare-* ...\n"), 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argv[1];
    if (!strcmp(mode, "compare-train") && argc > 4) return compare_train(argv);
    if (!strcmp(mode, "compare-calib") && argc > 3) return compare_calib(argv);
    if (!strcmp(mode, "compare-resume") && argc > 4) return compare_resume(argv);
    qb_err err = {0};
    qb_comm c;
    if (qb_comm_open(&c, &err)) die(&c, &err);
    if (c.rank == 0) printf("dist_rank %s: %d ranks (%s, %s)\n", mode, c.size, c.launcher, c.be->name);
    int rc = !strcmp(mode, "train") ? train(&c, argc, argv, false, &err)
             : !strcmp(mode, "nan") ? train(&c, argc, argv, true, &err)
             : !strcmp(mode, "calib") ? calib(&c, argc, argv, &err)
                                      : qb_errorf(&err, "unknown mode %s", mode);
    if (rc) die(&c, &err);
    qb_comm_close(&c);
    return 0;
}

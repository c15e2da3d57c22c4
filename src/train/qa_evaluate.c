/* qa_evaluate.c: see qa_evaluate.h. */
#include "train/qa_evaluate.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/fileio.h"
#include "model/heads.h"
#include "train/qa_batch.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *const qb_qa_eval_files[] = {"predictions.json", "nbest_predictions.json", "null_odds.json", "eval_results.json", NULL};

int qb_qa_logits(qb_bert_model *m, const qb_squad_features *f, int batch_size, float *start, float *end, qb_err *err) {
    if (batch_size < 1) return qb_errorf(err, "evaluate: batch size %d", batch_size);
    qb_ctx *ctx = m->ctx;
    qb_qa_batch b;
    int64_t *rows = malloc((size_t)batch_size * sizeof *rows);
    if (!rows) return qb_errorf(err, "evaluate: out of memory");
    if (qb_qa_batch_init(&b, batch_size, f->max_len, err)) return free(rows), -1;
    bool training = ctx->training, no_grad = ctx->no_grad;
    ctx->training = false;
    ctx->no_grad = true;
    int rc = 0;
    for (int64_t done = 0; done < f->n && !rc; done += b.batch) {
        int n = (int)(f->n - done < batch_size ? f->n - done : batch_size);
        for (int r = 0; r < n; r++) rows[r] = done + r;
        qb_qa_batch_gather(&b, f, rows, n);
        qb_bert_batch view = qb_qa_batch_view(&b);
        qb_bert_output out;
        qb_ctx_step_reset(ctx);
        size_t at = (size_t)done * (size_t)f->max_len;
        if (qb_bert_question_answering(m, &view, NULL, NULL, &out) || qb_to_host(ctx, out.logits, start + at) ||
            qb_to_host(ctx, out.end_logits, end + at))
            rc = qb_errorf(err, "evaluate: %s", ctx->err.msg);
    }
    qb_ctx_step_reset(ctx);
    ctx->training = training;
    ctx->no_grad = no_grad;
    qb_qa_batch_free(&b);
    free(rows);
    return rc;
}

/* Non-finite logits would rank answers arbitrarily and cannot be written as JSON: name the first feature with one. */
static int check_logits(const qb_squad_set *set, const qb_squad_features *f, const float *start, const float *end, qb_err *err) {
    for (int64_t fi = 0; fi < f->n; fi++)
        for (int k = 0; k < 2; k++) {
            const float *l = (k ? end : start) + (size_t)fi * (size_t)f->max_len;
            for (int j = 0; j < f->max_len; j++)
                if (!isfinite(l[j])) {
                    int64_t ex = f->example[fi];
                    return qb_errorf(err, "evaluate: feature %lld (question %s): %s logit at token %d is %s (not finite)", (long long)fi,
                                     ex >= 0 && ex < set->n ? set->ex[ex].id : "?", k ? "end" : "start", j,
                                     isnan(l[j]) ? "nan" : l[j] > 0 ? "inf" : "-inf");
                }
        }
    return 0;
}

static int write_results(const qb_qa_eval_result *r, bool v2, const char *dir, qb_err *err) {
    json_t *j = json_object();
    const qb_squad_scores *s = &r->scores;
    int bad = !j;
    bad |= json_object_set_new(j, v2 ? "eval_exact" : "eval_exact_match", json_real(s->exact));
    bad |= json_object_set_new(j, "eval_f1", json_real(s->f1));
    if (v2) {
        bad |= json_object_set_new(j, "eval_HasAns_exact", json_real(s->has_ans_exact));
        bad |= json_object_set_new(j, "eval_HasAns_f1", json_real(s->has_ans_f1));
        bad |= json_object_set_new(j, "eval_NoAns_exact", json_real(s->no_ans_exact));
        bad |= json_object_set_new(j, "eval_NoAns_f1", json_real(s->no_ans_f1));
    }
    bad |= json_object_set_new(j, "eval_examples", json_integer(r->n_examples));
    bad |= json_object_set_new(j, "eval_samples", json_integer(r->n_features));
    bad |= json_object_set_new(j, "eval_runtime", json_real(r->seconds));
    bad |= json_object_set_new(j, "eval_samples_per_second", json_real(r->seconds > 0 ? (double)r->n_features / r->seconds : 0.0));
    char *text = bad ? NULL : json_dumps(j, JSON_INDENT(4) | JSON_REAL_PRECISION(17));
    json_decref(j);
    if (!text) return qb_errorf(err, "evaluate: out of memory formatting eval_results.json");
    char path[4096];
    snprintf(path, sizeof path, "%s/eval_results.json", dir);
    int rc = qb_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

int qb_qa_evaluate(qb_bert_model *m, const qb_squad_set *set, const qb_squad_features *f, const qb_qa_eval_opts *o,
                   qb_qa_eval_result *out, qb_err *err) {
    memset(out, 0, sizeof *out);
    if (f->n < 1) return qb_errorf(err, "evaluate: no dev features");
    double t0 = now();
    size_t cells = (size_t)f->n * (size_t)f->max_len;
    float *start = malloc(cells * sizeof(float)), *end = malloc(cells * sizeof(float));
    char **texts = calloc((size_t)set->n + 1, sizeof *texts);
    qb_squad_predictions preds = {0};
    int rc = start && end && texts ? 0 : qb_errorf(err, "evaluate: out of memory");
    bool v2 = set->version && strncmp(set->version, "v2", 2) == 0;
    qb_squad_postprocess_opts post = o->post;
    post.version_2 = v2;
    if (!rc) rc = qb_qa_logits(m, f, o->batch_size, start, end, err);
    if (!rc) rc = check_logits(set, f, start, end, err);
    if (!rc) rc = qb_squad_postprocess(set, f, start, end, &post, &preds, err);
    for (int64_t i = 0; !rc && i < preds.n; i++) texts[preds.p[i].example] = preds.p[i].text;
    if (!rc) rc = v2 ? qb_squad_evaluate_v2(set, texts, NULL, 1.0, &out->scores, err)
                     : qb_squad_evaluate_v1(set, texts, &out->scores, NULL, NULL, err);
    out->n_features = f->n;
    out->n_examples = preds.n;
    out->seconds = now() - t0;
    if (!rc && o->output_dir) rc = qb_squad_predictions_write(set, &preds, o->output_dir, NULL, err);
    if (!rc && o->output_dir) rc = write_results(out, v2, o->output_dir, err);
    qb_squad_predictions_free(&preds);
    free(texts);
    free(start);
    free(end);
    return rc;
}

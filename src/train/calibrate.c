/* calibrate.c: see calibrate.h. */
#include "train/calibrate.h"

#include <stdlib.h>
#include <string.h>
#include "model/heads.h"
#include "train/qa_batch.h"
#include "train/shuffle.h"

#define CALIB_STREAM 0x63616c6962ull /* "calib": the data-order stream of the seed */

/* A quantizer's switches and amax before calibration. */
typedef struct saved_state {
    bool disabled, calib_on, quant_on;
    float *amax;
    int64_t n_amax;
} saved_state;

/* Copies every quantizer's switches and amax; NULL when out of memory. */
static saved_state *save_quantizers(const qb_bert_model *m) {
    saved_state *s = calloc((size_t)m->n_quant + 1, sizeof *s);
    for (int i = 0; s && i < m->n_quant; i++) {
        const tensor_quantizer *q = &m->quant[i].tq;
        s[i] = (saved_state){.disabled = q->disabled, .calib_on = q->calib_on, .quant_on = q->quant_on, .n_amax = q->n_amax};
        if (!q->amax) continue;
        s[i].amax = malloc((size_t)q->n_amax * sizeof(float));
        if (!s[i].amax) {
            while (i-- > 0) free(s[i].amax);
            free(s);
            return NULL;
        }
        memcpy(s[i].amax, q->amax, (size_t)q->n_amax * sizeof(float));
    }
    return s;
}

/* On failure puts the saved switches and amax back (the calibrators keep what they saw); frees the copies. */
static void restore_quantizers(qb_bert_model *m, saved_state *s, bool failed) {
    for (int i = 0; i < m->n_quant; i++) {
        tensor_quantizer *q = &m->quant[i].tq;
        if (failed) {
            q->disabled = s[i].disabled;
            q->calib_on = s[i].calib_on;
            q->quant_on = s[i].quant_on;
            free(q->amax);
            q->amax = s[i].amax;
            q->n_amax = s[i].n_amax;
        } else {
            free(s[i].amax);
        }
    }
    free(s);
}

int qb_calibrate(qb_bert_model *m, const qb_squad_features *f, const qb_calib_opts *o, FILE *log, qb_err *err) {
    if (f->n < 1) return qb_errorf(err, "calibrate: no training features");
    if (o->num_samples < 1 || o->batch_size < 1)
        return qb_errorf(err, "calibrate: num_samples %lld and batch_size %d must be positive", (long long)o->num_samples, o->batch_size);
    qb_ctx *ctx = m->ctx;
    /* whole batches until num_samples are seen, as QuestionAnsweringTrainer.calibrate stops at (step+1)*bs >= calib_num */
    int64_t want = o->num_samples < f->n ? o->num_samples : f->n;  /* <= f->n first: the rounding cannot overflow */
    want = (want + o->batch_size - 1) / o->batch_size * o->batch_size;
    int64_t n = want < f->n ? want : f->n;
    int64_t *order = malloc((size_t)f->n * sizeof *order);
    qb_qa_batch b;
    if (!order) return qb_errorf(err, "calibrate: out of memory");
    if (qb_qa_batch_init(&b, o->batch_size, f->max_len, err)) return free(order), -1;
    qb_permutation(order, f->n, o->seed, CALIB_STREAM);
    saved_state *saved = save_quantizers(m);
    if (!saved) return qb_qa_batch_free(&b), free(order), qb_errorf(err, "calibrate: out of memory");
    for (int i = 0; i < m->n_quant; i++) {
        tensor_quantizer *q = &m->quant[i].tq;
        tensor_quantizer_enable(q);
        tensor_quantizer_disable_quant(q);
        tensor_quantizer_enable_calib(q);
    }
    bool training = ctx->training, no_grad = ctx->no_grad;
    ctx->training = false;
    ctx->no_grad = true;
    int rc = 0;
    for (int64_t done = 0; done < n && !rc; done += b.batch) {
        int rows = (int)(n - done < o->batch_size ? n - done : o->batch_size);
        qb_qa_batch_gather(&b, f, order + done, rows);
        qb_bert_batch view = qb_qa_batch_view(&b);
        qb_bert_output out;
        qb_ctx_step_reset(ctx);
        if (qb_bert_question_answering(m, &view, NULL, NULL, &out)) rc = qb_errorf(err, "calibrate: %s", ctx->err.msg);
    }
    qb_ctx_step_reset(ctx);
    ctx->training = training;
    ctx->no_grad = no_grad;
    for (int i = 0; i < m->n_quant && !rc; i++) {
        tensor_quantizer *q = &m->quant[i].tq;
        rc = tensor_quantizer_load_calib_amax(q, o->method, o->percentile, err);
        tensor_quantizer_enable_quant(q);
        tensor_quantizer_disable_calib(q);
    }
    if (!rc && log) fprintf(log, "calibrate: %lld features in batches of %d, %d quantizers calibrated\n", (long long)n, o->batch_size, m->n_quant);
    restore_quantizers(m, saved, rc != 0);
    qb_qa_batch_free(&b);
    free(order);
    return rc;
}

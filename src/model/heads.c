/* heads.c: see heads.h. */
#include "model/heads.h"
#include <string.h>

static int want_head(qb_bert_model *m, qb_bert_head head) {
    if (m->head == head) return 0;
    return qb_errorf(&m->ctx->err, "%s called on a %s", qb_bert_head_class(head), qb_bert_head_class(m->head));
}

static int finish(qb_bert_model *m, qb_bert_output *out) {
    (void)out;
    return qb_ctx_failed(m->ctx) ? -1 : 0;
}

int qb_bert_model_forward(qb_bert_model *m, const qb_bert_batch *b, qb_bert_output *out) {
    memset(out, 0, sizeof *out);
    if (want_head(m, QB_BERT_MODEL)) return -1;
    out->hidden = qb_bert_forward(m, b);
    out->pooled = qb_bert_pool(m, out->hidden);
    return finish(m, out);
}

/* cls.predictions: transform (dense, activation, LayerNorm) then the tied decoder: [B, S, H] -> [B, S, V]. */
static qb_tensor *lm_logits(qb_bert_model *m, qb_tensor *hidden) {
    qb_ctx *ctx = m->ctx;
    qb_tensor *h = qb_bert_linear_forward(m, &m->lm_transform, hidden);
    switch (m->cfg.hidden_act) {
    case QB_ACT_GELU: h = qb_gelu(ctx, h); break;
    case QB_ACT_GELU_TANH: h = qb_gelu_tanh(ctx, h); break;
    case QB_ACT_RELU: h = qb_relu(ctx, h); break;
    }
    h = qb_layernorm(ctx, h, m->lm_ln_w, m->lm_ln_b, m->cfg.layer_norm_eps);
    return qb_bert_linear_forward(m, &m->lm_decoder, h);
}

/* Mean CE of logits [R, C] (any leading dims, flattened) against labels [R]. */
static qb_tensor *ce(qb_ctx *ctx, qb_tensor *logits, const int32_t *labels, int32_t ignore) {
    if (!logits) return NULL;
    int64_t c = logits->shape[logits->ndim - 1], shape[2] = {qb_numel(logits) / c, c};
    return qb_cross_entropy(ctx, qb_reshape(ctx, logits, 2, shape), labels, ignore);
}

int qb_bert_masked_lm(qb_bert_model *m, const qb_bert_batch *b, const int32_t *labels, qb_bert_output *out) {
    memset(out, 0, sizeof *out);
    if (want_head(m, QB_BERT_MASKED_LM)) return -1;
    out->hidden = qb_bert_forward(m, b);
    out->logits = lm_logits(m, out->hidden);
    if (labels) out->loss = ce(m->ctx, out->logits, labels, QB_IGNORE_INDEX);
    return finish(m, out);
}

int qb_bert_lm_head(qb_bert_model *m, const qb_bert_batch *b, const int32_t *labels, qb_bert_output *out) {
    memset(out, 0, sizeof *out);
    if (want_head(m, QB_BERT_LM_HEAD)) return -1;
    out->hidden = qb_bert_forward(m, b);
    out->logits = lm_logits(m, out->hidden);
    if (labels && out->logits) {
        int64_t B = b->batch, S = b->seq;
        int32_t *shifted = qb_meta_alloc(m->ctx, (size_t)(B * S) * sizeof(int32_t));
        if (!shifted) return -1;
        for (int64_t r = 0; r < B; r++)
            for (int64_t s = 0; s < S; s++) shifted[r * S + s] = s + 1 < S ? labels[r * S + s + 1] : QB_IGNORE_INDEX;
        out->loss = ce(m->ctx, out->logits, shifted, QB_IGNORE_INDEX);
    }
    return finish(m, out);
}

int qb_bert_sequence_classification(qb_bert_model *m, const qb_bert_batch *b, const qb_bert_labels *labels, qb_bert_output *out) {
    memset(out, 0, sizeof *out);
    if (want_head(m, QB_BERT_SEQUENCE_CLS)) return -1;
    qb_ctx *ctx = m->ctx;
    out->hidden = qb_bert_forward(m, b);
    out->pooled = qb_bert_pool(m, out->hidden);
    out->logits = qb_bert_linear_forward(m, &m->classifier, qb_dropout(ctx, out->pooled, m->cfg.classifier_dropout));
    if (!labels || (!labels->ids && !labels->values) || !out->logits) return finish(m, out);
    qb_problem_type pt = m->cfg.problem_type;
    if (pt == QB_PROBLEM_AUTO)
        pt = m->cfg.num_labels == 1 ? QB_PROBLEM_REGRESSION : labels->ids ? QB_PROBLEM_SINGLE_LABEL : QB_PROBLEM_MULTI_LABEL;
    if (pt == QB_PROBLEM_SINGLE_LABEL) {
        if (!labels->ids) return qb_errorf(&ctx->err, "sequence classification: single-label loss needs integer labels");
        out->loss = ce(ctx, out->logits, labels->ids, QB_IGNORE_INDEX);
    } else {
        if (!labels->values) return qb_errorf(&ctx->err, "sequence classification: regression and multi-label losses need float labels");
        qb_tensor *target = qb_from_host(ctx, out->logits->ndim, out->logits->shape, labels->values);
        out->loss = pt == QB_PROBLEM_REGRESSION ? qb_mse_loss(ctx, out->logits, target) : qb_bce_with_logits(ctx, out->logits, target);
    }
    return finish(m, out);
}

int qb_bert_next_sentence(qb_bert_model *m, const qb_bert_batch *b, const int32_t *labels, qb_bert_output *out) {
    memset(out, 0, sizeof *out);
    if (want_head(m, QB_BERT_NEXT_SENTENCE)) return -1;
    out->hidden = qb_bert_forward(m, b);
    out->pooled = qb_bert_pool(m, out->hidden);
    out->logits = qb_bert_linear_forward(m, &m->classifier, out->pooled);
    if (labels) out->loss = ce(m->ctx, out->logits, labels, QB_IGNORE_INDEX);
    return finish(m, out);
}

int qb_bert_multiple_choice(qb_bert_model *m, const qb_bert_batch *b, int choices, const int32_t *labels, qb_bert_output *out) {
    memset(out, 0, sizeof *out);
    if (want_head(m, QB_BERT_MULTIPLE_CHOICE)) return -1;
    qb_ctx *ctx = m->ctx;
    if (choices <= 0 || b->batch % choices)
        return qb_errorf(&ctx->err, "multiple choice: %d rows are not a multiple of %d choices", b->batch, choices);
    out->hidden = qb_bert_forward(m, b);
    out->pooled = qb_bert_pool(m, out->hidden);
    qb_tensor *scores = qb_bert_linear_forward(m, &m->classifier, qb_dropout(ctx, out->pooled, m->cfg.classifier_dropout));
    int64_t shape[2] = {b->batch / choices, choices};
    out->logits = qb_reshape(ctx, scores, 2, shape);
    if (labels) out->loss = ce(ctx, out->logits, labels, QB_IGNORE_INDEX);
    return finish(m, out);
}

int qb_bert_token_classification(qb_bert_model *m, const qb_bert_batch *b, const int32_t *labels, qb_bert_output *out) {
    memset(out, 0, sizeof *out);
    if (want_head(m, QB_BERT_TOKEN_CLS)) return -1;
    qb_ctx *ctx = m->ctx;
    out->hidden = qb_bert_forward(m, b);
    out->logits = qb_bert_linear_forward(m, &m->classifier, qb_dropout(ctx, out->hidden, m->cfg.classifier_dropout));
    if (labels) out->loss = ce(ctx, out->logits, labels, QB_IGNORE_INDEX);
    return finish(m, out);
}

/* Positions clamped to [0, S] as transformers does; S is then the ignored index. */
static int32_t *clamp_positions(qb_ctx *ctx, const int32_t *pos, int64_t B, int32_t S) {
    int32_t *c = qb_meta_alloc(ctx, (size_t)B * sizeof(int32_t));
    if (c)
        for (int64_t i = 0; i < B; i++) c[i] = pos[i] < 0 ? 0 : pos[i] > S ? S : pos[i];
    return c;
}

int qb_bert_question_answering(qb_bert_model *m, const qb_bert_batch *b, const int32_t *start_positions,
                               const int32_t *end_positions, qb_bert_output *out) {
    memset(out, 0, sizeof *out);
    if (want_head(m, QB_BERT_QUESTION_ANSWERING)) return -1;
    qb_ctx *ctx = m->ctx;
    int64_t B = b->batch, S = b->seq, shape[2] = {B, S};
    out->hidden = qb_bert_forward(m, b);
    qb_tensor *logits = qb_bert_linear_forward(m, &m->classifier, out->hidden); /* [B, S, 2] */
    out->logits = qb_contiguous(ctx, qb_reshape(ctx, qb_slice(ctx, logits, 2, 0, 1), 2, shape));
    out->end_logits = qb_contiguous(ctx, qb_reshape(ctx, qb_slice(ctx, logits, 2, 1, 1), 2, shape));
    if (start_positions && end_positions && out->logits) {
        int32_t *sp = clamp_positions(ctx, start_positions, B, (int32_t)S);
        int32_t *ep = clamp_positions(ctx, end_positions, B, (int32_t)S);
        if (!sp || !ep) return -1;
        qb_tensor *ls = qb_cross_entropy(ctx, out->logits, sp, (int32_t)S);
        qb_tensor *le = qb_cross_entropy(ctx, out->end_logits, ep, (int32_t)S);
        out->loss = qb_scale(ctx, qb_add(ctx, ls, le), 0.5f);
    }
    return finish(m, out);
}

int qb_bert_run(qb_bert_model *m, const qb_bert_batch *b, int choices, const qb_bert_labels *labels, qb_bert_output *out) {
    static const qb_bert_labels none = {0};
    const qb_bert_labels *l = labels ? labels : &none;
    switch (m->head) {
    case QB_BERT_MODEL: return qb_bert_model_forward(m, b, out);
    case QB_BERT_MASKED_LM: return qb_bert_masked_lm(m, b, l->ids, out);
    case QB_BERT_LM_HEAD: return qb_bert_lm_head(m, b, l->ids, out);
    case QB_BERT_SEQUENCE_CLS: return qb_bert_sequence_classification(m, b, labels, out);
    case QB_BERT_NEXT_SENTENCE: return qb_bert_next_sentence(m, b, l->ids, out);
    case QB_BERT_MULTIPLE_CHOICE: return qb_bert_multiple_choice(m, b, choices, l->ids, out);
    case QB_BERT_TOKEN_CLS: return qb_bert_token_classification(m, b, l->ids, out);
    case QB_BERT_QUESTION_ANSWERING: return qb_bert_question_answering(m, b, l->start_positions, l->end_positions, out);
    }
    return qb_errorf(&m->ctx->err, "unknown head %d", (int)m->head);
}

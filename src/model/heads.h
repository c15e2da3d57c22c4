/* heads.h: the task heads on top of BERT, with transformers' semantics and losses. Each fills out (hidden, pooled
 * where the model has a pooler, logits, loss when labels are given) and returns 0, or -1 with ctx->err set.
 * Integer labels equal to -100 are ignored where transformers ignores them (LM, token classification). */
#pragma once
#include "model/bert.h"

#define QB_IGNORE_INDEX (-100)

typedef struct qb_bert_labels {
    const int32_t *ids;              /* class ids: [B] sequence/NSP, [B / choices] multiple choice, [B, S] LM and token */
    const float *values;             /* float targets [B, num_labels]: regression and multi-label classification */
    const int32_t *start_positions;  /* [B] question answering (clamped to [0, S]; S is ignored) */
    const int32_t *end_positions;    /* [B] */
} qb_bert_labels;

/* BertModel: last hidden state [B, S, H] and pooler output [B, H]. */
int qb_bert_model_forward(qb_bert_model *m, const qb_bert_batch *b, qb_bert_output *out);
/* BertForMaskedLM: logits [B, S, V] (decoder tied to the word embeddings); loss = CE over labels [B, S]. */
int qb_bert_masked_lm(qb_bert_model *m, const qb_bert_batch *b, const int32_t *labels, qb_bert_output *out);
/* BertLMHeadModel (causal mask): logits [B, S, V]; loss = CE of logits[:, s] against labels[:, s + 1]. */
int qb_bert_lm_head(qb_bert_model *m, const qb_bert_batch *b, const int32_t *labels, qb_bert_output *out);
/* BertForSequenceClassification: logits [B, C]; loss MSE (regression, labels->values), CE (single label,
 * labels->ids) or BCE-with-logits (multi label, labels->values), following config.problem_type. */
int qb_bert_sequence_classification(qb_bert_model *m, const qb_bert_batch *b, const qb_bert_labels *labels, qb_bert_output *out);
/* BertForNextSentencePrediction: logits [B, 2]; loss = CE over labels [B]. */
int qb_bert_next_sentence(qb_bert_model *m, const qb_bert_batch *b, const int32_t *labels, qb_bert_output *out);
/* BertForMultipleChoice: b holds B * choices rows; logits [B, choices]; loss = CE over labels [B]. */
int qb_bert_multiple_choice(qb_bert_model *m, const qb_bert_batch *b, int choices, const int32_t *labels, qb_bert_output *out);
/* BertForTokenClassification: logits [B, S, C]; loss = CE over labels [B, S]. */
int qb_bert_token_classification(qb_bert_model *m, const qb_bert_batch *b, const int32_t *labels, qb_bert_output *out);
/* BertForQuestionAnswering: logits = start [B, S], end_logits [B, S]; loss = mean of the two CEs. */
int qb_bert_question_answering(qb_bert_model *m, const qb_bert_batch *b, const int32_t *start_positions,
                               const int32_t *end_positions, qb_bert_output *out);
/* Runs the model's own head (choices is used by multiple choice only; labels may be NULL). */
int qb_bert_run(qb_bert_model *m, const qb_bert_batch *b, int choices, const qb_bert_labels *labels, qb_bert_output *out);

/* qa_batch.h: rows of SQuAD features gathered into one contiguous model batch (inputs and answer positions). */
#pragma once
#include "model/bert.h"
#include "train/squad_features.h"

typedef struct qb_qa_batch {
    int batch, seq, cap;               /* rows in use, tokens per row, rows allocated */
    int32_t *input_ids, *attention_mask, *token_type_ids; /* [cap, seq] */
    int32_t *start_positions, *end_positions;             /* [cap] */
} qb_qa_batch;

/* Allocates room for cap rows of f->max_len tokens. */
int qb_qa_batch_init(qb_qa_batch *b, int cap, int seq, qb_err *err);
/* Copies features rows[0..n) (n <= cap) into the batch. */
void qb_qa_batch_gather(qb_qa_batch *b, const qb_squad_features *f, const int64_t *rows, int n);
/* The model's view of the batch (no copy). */
qb_bert_batch qb_qa_batch_view(const qb_qa_batch *b);
/* Frees the arrays. */
void qb_qa_batch_free(qb_qa_batch *b);

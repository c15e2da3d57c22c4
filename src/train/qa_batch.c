/* qa_batch.c: see qa_batch.h. */
#include "train/qa_batch.h"

#include <stdlib.h>
#include <string.h>

int qb_qa_batch_init(qb_qa_batch *b, int cap, int seq, qb_err *err) {
    memset(b, 0, sizeof *b);
    if (cap < 1 || seq < 1) return qb_errorf(err, "qa batch: %d rows of %d tokens", cap, seq);
    size_t cells = (size_t)cap * (size_t)seq;
    b->cap = cap;
    b->seq = seq;
    b->input_ids = malloc(cells * sizeof(int32_t));
    b->attention_mask = malloc(cells * sizeof(int32_t));
    b->token_type_ids = malloc(cells * sizeof(int32_t));
    b->start_positions = malloc((size_t)cap * sizeof(int32_t));
    b->end_positions = malloc((size_t)cap * sizeof(int32_t));
    if (!b->input_ids || !b->attention_mask || !b->token_type_ids || !b->start_positions || !b->end_positions) {
        qb_qa_batch_free(b);
        return qb_errorf(err, "qa batch: out of memory for %d x %d tokens", cap, seq);
    }
    return 0;
}

void qb_qa_batch_gather(qb_qa_batch *b, const qb_squad_features *f, const int64_t *rows, int n) {
    int S = b->seq;
    b->batch = n;
    for (int r = 0; r < n; r++) {
        size_t src = (size_t)rows[r] * (size_t)f->max_len, dst = (size_t)r * (size_t)S;
        memcpy(b->input_ids + dst, f->input_ids + src, (size_t)S * sizeof(int32_t));
        memcpy(b->attention_mask + dst, f->attention_mask + src, (size_t)S * sizeof(int32_t));
        memcpy(b->token_type_ids + dst, f->token_type_ids + src, (size_t)S * sizeof(int32_t));
        b->start_positions[r] = f->start_positions[rows[r]];
        b->end_positions[r] = f->end_positions[rows[r]];
    }
}

qb_bert_batch qb_qa_batch_view(const qb_qa_batch *b) {
    return (qb_bert_batch){.batch = b->batch, .seq = b->seq, .input_ids = b->input_ids,
                           .attention_mask = b->attention_mask, .token_type_ids = b->token_type_ids};
}

void qb_qa_batch_free(qb_qa_batch *b) {
    free(b->input_ids);
    free(b->attention_mask);
    free(b->token_type_ids);
    free(b->start_positions);
    free(b->end_positions);
    memset(b, 0, sizeof *b);
}

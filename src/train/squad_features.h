/* squad_features.h: SQuAD model inputs as HF run_qa.py builds them: question (left-stripped) first, only the
 * context truncated into doc_stride windows, padded to max_seq_length, start/end token positions and the
 * character offsets used to map predictions back to the context. */
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "text/tokenizer.h"
#include "train/squad_data.h"

typedef struct qb_squad_feature_opts {
    int max_seq_length;   /* 384 */
    int doc_stride;       /* 128: tokens shared by consecutive windows */
    int max_query_length; /* 0 = question not truncated, as run_qa does; N > 0 keeps its first N tokens */
} qb_squad_feature_opts;

typedef struct qb_squad_features {
    int max_len;
    int64_t n, cap;
    int32_t *input_ids, *token_type_ids, *attention_mask; /* n x max_len */
    int32_t *offsets;                  /* n x max_len x 2: characters of the question or context, (0,0) otherwise */
    int8_t *sequence_ids;              /* n x max_len: 0 question, 1 context, -1 special or padding */
    int32_t *start_positions, *end_positions; /* first answer's tokens; the [CLS] index when not inside the window */
    int64_t *example;                  /* example index in the set */
} qb_squad_features;

/* Appends the features of examples idx[0, n_idx) (all examples when idx is NULL) to out. */
int qb_squad_features_build(const qb_tokenizer *tok, const qb_squad_set *set, const int64_t *idx, int64_t n_idx,
                            const qb_squad_feature_opts *o, qb_squad_features *out, qb_err *err);
/* Frees the arrays. */
void qb_squad_features_free(qb_squad_features *f);

/* squad_postprocess.h: start/end logits to answer texts as HF's utils_qa.postprocess_qa_predictions does
 * (n-best spans over context tokens, null score for v2.0), and its predictions / n-best / null-odds JSON files. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "base/error.h"
#include "train/squad_data.h"
#include "train/squad_features.h"

typedef struct qb_squad_postprocess_opts {
    int n_best_size;                 /* 20 */
    int max_answer_length;           /* 30 tokens */
    bool version_2;                  /* SQuAD v2.0: consider the null answer */
    float null_score_diff_threshold; /* v2.0: predict "" when null score - best span score exceeds it (0.0) */
} qb_squad_postprocess_opts;

typedef struct qb_squad_nbest {
    char *text;
    float start_logit, end_logit;
    double probability; /* softmax of the n-best scores */
} qb_squad_nbest;

typedef struct qb_squad_prediction {
    int64_t example;     /* index in the set */
    char *text;          /* the predicted answer ("" for no answer in v2.0) */
    float score_diff;    /* v2.0: null score minus the best non-null span's logits */
    int32_t n_nbest;
    qb_squad_nbest *nbest;
} qb_squad_prediction;

typedef struct qb_squad_predictions {
    qb_squad_prediction *p; /* one per example that has features, in feature order */
    int64_t n;
    bool version_2;
} qb_squad_predictions;

/* Predictions from logits (f->n rows of f->max_len each) for the examples the features cover. */
int qb_squad_postprocess(const qb_squad_set *set, const qb_squad_features *f, const float *start_logits,
                         const float *end_logits, const qb_squad_postprocess_opts *o, qb_squad_predictions *out,
                         qb_err *err);
/* Writes dir/[prefix_]predictions.json, nbest_predictions.json and, for v2.0, null_odds.json (atomically). */
int qb_squad_predictions_write(const qb_squad_set *set, const qb_squad_predictions *p, const char *dir,
                               const char *prefix, qb_err *err);
/* Frees the predictions. */
void qb_squad_predictions_free(qb_squad_predictions *p);

/* squad_eval.h: the official SQuAD evaluation: v1.1's EM/F1 (max over gold answers, unanswered questions score 0)
 * and v2.0's (empty gold for unanswerable questions, HasAns/NoAns splits, no-answer probability threshold). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "base/error.h"
#include "train/squad_data.h"

typedef struct qb_squad_scores {
    double exact, f1;   /* percentages */
    int64_t total;      /* v1.1: all questions; v2.0: questions with a prediction */
    double has_ans_exact, has_ans_f1, no_ans_exact, no_ans_f1; /* v2.0 only */
    int64_t has_ans_total, no_ans_total;
    int64_t n_missing;  /* questions without a prediction */
    bool has_best;      /* v2.0 with na_probs: the script's find_all_best_thresh below */
    double best_exact, best_exact_thresh, best_f1, best_f1_thresh;
} qb_squad_scores;

/* Official answer normalisation (lower case, drop ASCII punctuation and the words a/an/the, fold whitespace) into a
 * malloc'd string. */
int qb_squad_normalize_answer(const char *s, char **out, qb_err *err);
/* v1.1 exact match (0/1) and F1 of one prediction against one gold answer. */
int qb_squad_em_f1(const char *pred, const char *gold, bool v2, int *em, double *f1, qb_err *err);
/* Loads a predictions JSON object {id: text} into texts aligned with set (NULL where missing); ids not in set are ignored. */
int qb_squad_pred_texts_load(const char *path, const qb_squad_set *set, char ***texts, qb_err *err);
/* Frees texts from qb_squad_pred_texts_load. */
void qb_squad_pred_texts_free(char **texts, int64_t n);
/* evaluate-v1.1: preds aligned with set (NULL = unanswered); per_em/per_f1 (may be NULL) get each question's scores. */
int qb_squad_evaluate_v1(const qb_squad_set *set, char *const *preds, qb_squad_scores *out, int *per_em, double *per_f1,
                         qb_err *err);
/* evaluate-v2.0: na_probs aligned with set (NULL = all 0.0), a question counts as no-answer when its probability
 * exceeds na_prob_thresh (1.0 by default in the script). Every question needs a prediction. With na_probs, also the
 * best EM/F1 over all thresholds and those thresholds (the script's --na-prob-file output). */
int qb_squad_evaluate_v2(const qb_squad_set *set, char *const *preds, const double *na_probs, double na_prob_thresh,
                         qb_squad_scores *out, qb_err *err);

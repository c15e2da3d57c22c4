/* qa_evaluate.h: SQuAD evaluation of a question-answering model as HF run_qa's do_eval: logits over the dev features in
 * eval mode (no dropout, no gradients), utils_qa post-processing, the official EM/F1, and predictions.json,
 * nbest_predictions.json and eval_results.json written atomically. */
#pragma once
#include "model/bert.h"
#include "train/squad_eval.h"
#include "train/squad_postprocess.h"

typedef struct qb_qa_eval_opts {
    int batch_size;                  /* features per forward pass */
    qb_squad_postprocess_opts post;  /* n_best_size 20, max_answer_length 30 (version_2 follows the set) */
    const char *output_dir;          /* where the files go; NULL writes none */
} qb_qa_eval_opts;

typedef struct qb_qa_eval_result {
    qb_squad_scores scores;          /* exact and f1 in percent */
    int64_t n_features, n_examples;
    double seconds;                  /* model forward passes and post-processing */
} qb_qa_eval_result;

/* The files of an evaluation, as a unit: a new evaluation in a directory replaces all of them. */
extern const char *const qb_qa_eval_files[];

/* Start and end logits [f->n, f->max_len] of every feature (eval mode; flags of the context restored). */
int qb_qa_logits(qb_bert_model *m, const qb_squad_features *f, int batch_size, float *start, float *end, qb_err *err);
/* Evaluates m on the examples of set covered by features f and writes the files to o->output_dir. Questions of set
 * without features score 0, as the official script does. Non-finite logits are an error naming the feature. */
int qb_qa_evaluate(qb_bert_model *m, const qb_squad_set *set, const qb_squad_features *f, const qb_qa_eval_opts *o,
                   qb_qa_eval_result *out, qb_err *err);

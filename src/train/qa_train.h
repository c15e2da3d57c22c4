/* qa_train.h: QAT fine-tuning of BertForQuestionAnswering on SQuAD features as HF Trainer does it for the QDQBERT
 * example: batches of shuffled features (a new permutation each epoch from the seed), dropout on, AdamW with the
 * no-decay rule, an lr schedule with warmup, global-norm clipping; logs to stdout and dir/metrics.jsonl, checkpoints
 * every save_steps (dir/checkpoint-N) and at the end (dir), each resumable with the same losses.
 * The step (forward, backward, clipping, update) is separate from data loading and logging. Dropout masks depend
 * only on (seed, step), so a resumed run repeats an uninterrupted one bit for bit.
 * With a communicator of N ranks, a step's global batch is batch_size x N rows of the shared permutation, each rank
 * its slice; gradients and loss are averaged over the global batch, so every rank takes the same step (rank r draws
 * dropout from its own stream). Checkpoints record the global batch, so one taken on N ranks resumes on M ranks with
 * the same global batch. Rank 0 alone logs and writes checkpoints. */
#pragma once
#include <stdio.h>
#include "dist/comm.h"
#include "model/bert.h"
#include "train/data_parallel.h"
#include "train/lr_schedule.h"
#include "train/optim_adamw.h"
#include "train/qa_batch.h"
#include "train/squad_features.h"

/* Steps a run may plan: dropout streams are (step + 1) << 36 in a 64-bit counter. */
#define QB_QA_MAX_STEPS ((int64_t)1 << 28)
/* An evaluation during training: EM and F1 (percent) of m at global step `step`. */
typedef int (*qb_qa_eval_fn)(void *user, qb_bert_model *m, int64_t step, double *exact_match, double *f1, qb_err *err);

typedef struct qb_qa_train_opts {
    int batch_size;              /* 12 */
    double epochs;               /* 2 */
    int64_t max_steps;           /* > 0: overrides epochs */
    double learning_rate;        /* 4e-5 */
    qb_lr_kind scheduler;        /* cosine (run_quant_qa forces it) */
    int64_t warmup_steps;        /* > 0 wins over warmup_ratio */
    double warmup_ratio;
    double weight_decay, adam_beta1, adam_beta2, adam_epsilon;  /* 0, 0.9, 0.999, 1e-8 */
    double max_grad_norm;        /* 1.0; <= 0 turns clipping off */
    uint64_t seed;
    int64_t logging_steps;       /* log every N steps (and the first and last) */
    int64_t save_steps;          /* 0: only the final checkpoint */
    const char *output_dir;      /* NULL: nothing written */
    const char *tokenizer_dir;   /* tokenizer files copied into every checkpoint (NULL: none) */
    FILE *log;                   /* progress lines (NULL: quiet) */
    qb_comm *comm;               /* data parallelism: batch_size rows per rank (NULL: one process) */
    bool live_progress;          /* redraw a progress line in place on log (a terminal) */
    bool tensorboard;            /* TensorBoard event files (needs output_dir) */
    const char *logging_dir;     /* where they go; NULL or "": output_dir/runs/<date>_<host> (HF's default) */
    int gradient_accumulation_steps; /* micro-batches of batch_size per optimizer step (0 or 1: none) */
    bool disable_dropout;        /* train without dropout */
    int64_t eval_steps;          /* > 0: evaluate every N steps (and at the last step with load_best_model_at_end) */
    qb_qa_eval_fn evaluate;      /* the evaluation (needed with eval_steps) */
    void *eval_user;
    bool load_best_model_at_end; /* end with the weights of the best evaluated checkpoint (save_steps multiple of eval_steps) */
    bool best_by_exact_match;    /* metric_for_best_model: exact_match (default f1) */
    int64_t save_total_limit;    /* > 0: keep at most N checkpoint-* directories (the best one is kept) */
    qb_bert_model *teacher;      /* knowledge distillation from this model's logits (NULL: none) */
    double kd_alpha;             /* loss = a T^2 KL(teacher/T || student/T) + (1 - a) CE, on start and end logits */
    double kd_temperature;
} qb_qa_train_opts;

typedef struct qb_qa_step_stats {
    float loss;
    double grad_norm;            /* before clipping */
} qb_qa_step_stats;

typedef struct qb_qa_trainer {
    qb_bert_model *m;
    const qb_squad_features *f;
    qb_qa_train_opts o;
    qb_adamw opt;
    qb_lr_schedule sched;
    int64_t steps_per_epoch, total_steps;
    int64_t step;                /* optimizer steps taken (global step) */
    int64_t resumed_from;        /* global step the run resumed at (0 for a fresh run) */
    int64_t *order, order_epoch; /* the current epoch's permutation */
    qb_qa_batch batch;
    int global_rows;             /* rows of the current global batch over all ranks (batch.batch on this one) */
    int world, rank;             /* of o.comm (1, 0 without one) */
    qb_grad_sync sync;
    float *losses;               /* [n_losses]: each step's loss; NaN before a resume point and after the last step run */
    int64_t n_losses;
    int accum;                   /* micro-batches per step */
    int64_t best_step;           /* the evaluated checkpoint with the best metric (0: none yet) */
    double best_metric;
    float *teacher_host;         /* [2, batch_size, max_len]: the teacher's start and end logits of a micro-batch */
} qb_qa_trainer;

/* Sets up the optimizer over m's context, the schedule and the data order; checks the options. */
int qb_qa_trainer_init(qb_qa_trainer *t, qb_bert_model *m, const qb_squad_features *f, const qb_qa_train_opts *o, qb_err *err);
/* Continues from a checkpoint written by this trainer (its model already loaded into m): optimizer state and step;
 * seed, batch size and feature count must match the run's. */
int qb_qa_trainer_resume(qb_qa_trainer *t, const char *checkpoint_dir, qb_err *err);
/* Data: gathers the features of global step `step` into b (the epoch's permutation, in order). */
int qb_qa_load_batch(qb_qa_trainer *t, int64_t step, qb_qa_batch *b, qb_err *err);
/* Data: micro-batch k (of accum) of global step `step`: rows [(step mod steps_per_epoch) * accum + k) * batch_size, ...)
 * of the epoch's permutation; b->batch is 0 past the epoch's end. */
int qb_qa_load_micro_batch(qb_qa_trainer *t, int64_t step, int k, qb_qa_batch *b, qb_err *err);
/* One optimizer step on a batch: forward with dropout, loss, backward, clipping, AdamW at lr. On several ranks b is
 * not used: the step is qb_qa_accumulated_step's (this rank's share of global step t->step). */
int qb_qa_train_step(qb_qa_trainer *t, const qb_qa_batch *b, double lr, qb_qa_step_stats *s, qb_err *err);
/* One optimizer step of global step t->step over its accum micro-batches: each micro-batch's loss weighted by its
 * share of the step's rows, gradients summed (the step's large batch within fp32 rounding), then clipping and AdamW.
 * On several ranks each rank takes its rows of every micro-batch and the gradients are all-reduced once, after (or,
 * on a GPU backend, during) the last backward pass. QB_GRAD_OVERLAP=0 starts the all-reduce after it. */
int qb_qa_accumulated_step(qb_qa_trainer *t, double lr, qb_qa_step_stats *s, qb_err *err);
/* Writes a resumable checkpoint of the current state into dir, as a unit (staged beside it, then renamed in). */
int qb_qa_trainer_save(qb_qa_trainer *t, const char *dir, qb_err *err);
/* Runs the steps left (to total_steps or stop_at, whichever is first; stop_at <= 0 means total), logging and saving
 * checkpoint-N units and, at the end, the model in output_dir (one unit with the rest of output_dir carried over). A
 * non-finite loss or gradient stops the run naming the step and the first tensor that went bad; checkpoints stay. */
int qb_qa_train(qb_qa_trainer *t, int64_t stop_at, qb_err *err);
/* Frees the trainer (not the model). */
void qb_qa_trainer_free(qb_qa_trainer *t);

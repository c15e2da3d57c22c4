/* lr_schedule.h: HF Trainer learning-rate schedules (transformers' get_scheduler): linear, cosine, constant and
 * constant_with_warmup, each with a linear warmup. */
#pragma once
#include <stdint.h>
#include "base/error.h"

typedef enum { QB_LR_LINEAR = 0, QB_LR_COSINE, QB_LR_CONSTANT, QB_LR_CONSTANT_WITH_WARMUP } qb_lr_kind;

typedef struct qb_lr_schedule {
    qb_lr_kind kind;
    double base_lr;
    int64_t warmup_steps;
    int64_t total_steps;
} qb_lr_schedule;

/* Parses an HF lr_scheduler_type name ("linear", "cosine", "constant", "constant_with_warmup"). */
int qb_lr_kind_parse(const char *name, qb_lr_kind *kind, qb_err *err);
/* HF name of a schedule kind. */
const char *qb_lr_kind_name(qb_lr_kind kind);
/* Warmup steps as TrainingArguments: warmup_steps when > 0, else ceil(total_steps * warmup_ratio). */
int64_t qb_lr_warmup_steps(int64_t warmup_steps, double warmup_ratio, int64_t total_steps);
/* Learning rate of the optimizer step taken after `step` scheduler steps (step 0 is the first update). */
double qb_lr_at(const qb_lr_schedule *s, int64_t step);

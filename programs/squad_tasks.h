/* squad_tasks.h: qat-train's SQuAD tasks, as HF QDQBERT's run_quant_qa.py runs them: calibrate (pretrained checkpoint
 * in, calibrated checkpoint out), train (QAT fine-tuning), eval (predictions, EM/F1) and qat (all three). */
#pragma once
#include "base/error.h"
#include "dist/comm.h"
#include "qat_config.h"

/* Runs c->task (calibrate, train, eval or qat); src names where bad values came from. On several ranks of comm every
 * rank computes its share and rank 0 alone writes files (the others wait for it where they read them back). */
int squad_task_run(const qat_config *c, const qat_config_source *src, qb_comm *comm, qb_err *err);

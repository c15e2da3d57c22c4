/* qa_distill.h: knowledge distillation for question answering (the QAT + KD recipe of FasterTransformer's BERT
 * quantization example): loss = alpha T^2 (KL_start + KL_end) / 2 + (1 - alpha) CE, where KL_x is
 * KL(softmax(teacher_x / T) || softmax(student_x / T)) averaged over the rows (batchmean) and CE the model's own
 * (start + end) / 2 cross-entropy. */
#pragma once
#include "autograd/autograd.h"

/* The distillation loss from the student's logits start, end [B, S] (with grad), the teacher's t_start, t_end [B, S]
 * (no grad) and the student's cross-entropy ce [1]; NULL with ctx->err set. */
qb_tensor *qb_qa_distill_loss(qb_ctx *ctx, qb_tensor *start, qb_tensor *end, qb_tensor *t_start, qb_tensor *t_end, qb_tensor *ce, float alpha,
                              float temperature);
